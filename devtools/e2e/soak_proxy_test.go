package e2e

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// faultyMM stands between calstatus and the real Mattermost server for the soak. calstatus is given
// a made-up token, which the proxy swaps for the real one (so the soak can look for it everywhere
// calstatus writes); while told to, the proxy answers a share of calls 429 (with Retry-After, as
// Mattermost's rate limiter does) or 503 without forwarding them, and counts calls sent again before
// their Retry-After.
//
// A call is "sent again" when the same request comes back on the connection that was throttled (a
// client retries one call at a time on its connection), or, for a write, on another one once the
// client had time to read the 429 (sentGrace): writes are never made twice at once (a claim holds
// the user). The same read from another run — a duplicate delivery of the shard working in step —
// may have been on its way before anyone knew, held up for any time on this 2-core machine (the
// CI's v6 soak saw one arrive 970 ms after the 429 on another connection, though the client holds
// every call of its process until a Retry-After: internal/mattermost's tests check that), so such
// a read is counted only on the throttled connection, and only after sentGrace: the run may have
// waited for a connection and been given the throttled one the moment its 429 was read.
type faultyMM struct {
	srv       *httptest.Server
	fakeToken string

	mu                        sync.Mutex
	throttle, unavailable     float64       // shares of calls answered 429 / 503
	retryAfter                time.Duration // the Retry-After of a 429
	blockedUntil              map[[32]byte]throttledCall
	calls, throttled, refused int
	earlyRetries              int
	earlyExamples             []string
}

// throttledCall is a call answered 429: when it may come again, when and on which connection it
// was answered.
type throttledCall struct {
	until, answered time.Time
	conn            string
}

// sentGrace is how long after a 429 the same call may still arrive on another connection without
// being a retry: sent before the client read the answer.
const sentGrace = 250 * time.Millisecond

func newFaultyMM(t *testing.T, target, realToken, fakeToken string) *faultyMM {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultyMM{fakeToken: fakeToken, retryAfter: time.Second, blockedUntil: map[[32]byte]throttledCall{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " "); strings.EqualFold(scheme, "bearer") && tok == fakeToken {
			r.Header.Set("Authorization", "Bearer "+realToken) // Client4 writes "BEARER"
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		key := sha256.Sum256(append([]byte(r.Method+" "+r.URL.RequestURI()+"\n"), body...))
		now := time.Now()
		p.mu.Lock()
		p.calls++
		if tc, ok := p.blockedUntil[key]; ok {
			switch {
			case !now.Before(tc.until):
				delete(p.blockedUntil, key)
			case r.RemoteAddr == tc.conn && !isRead(r) || now.After(tc.answered.Add(sentGrace)) && (r.RemoteAddr == tc.conn || !isRead(r)):
				p.earlyRetries++
				p.earlyExamples = append(p.earlyExamples, fmt.Sprintf("%s %s again %v after its 429 (Retry-After %v), same connection %t",
					r.Method, r.URL.Path, now.Sub(tc.answered).Round(time.Millisecond), p.retryAfter, r.RemoteAddr == tc.conn))
				delete(p.blockedUntil, key)
			}
			// Otherwise another run's copy already on its way: the throttled call is still watched.
		}
		x := rand.Float64()
		switch {
		case x < p.throttle:
			p.throttled++
			p.blockedUntil[key] = throttledCall{until: now.Add(p.retryAfter), answered: now, conn: r.RemoteAddr}
			secs := strconv.Itoa(int(p.retryAfter / time.Second))
			p.mu.Unlock()
			w.Header().Set("Retry-After", secs)
			w.Header().Set("X-Ratelimit-Reset", secs)
			w.WriteHeader(http.StatusTooManyRequests)
			return
		case x < p.throttle+p.unavailable:
			p.refused++
			p.mu.Unlock()
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// isRead reports whether a call only reads: a GET, or a POST of ids to read (users, statuses).
func isRead(r *http.Request) bool {
	return r.Method == http.MethodGet || r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/ids")
}

// set changes the shares of calls answered 429 and 503.
func (p *faultyMM) set(throttle, unavailable float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.throttle, p.unavailable = throttle, unavailable
}

// counts returns the calls seen, those answered 429 and 503, the calls repeated early and a few of
// them described.
func (p *faultyMM) counts() (calls, throttled, refused, early int, examples []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls, p.throttled, p.refused, p.earlyRetries, append([]string(nil), p.earlyExamples[:min(len(p.earlyExamples), 12)]...)
}
