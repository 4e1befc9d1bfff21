package e2e

import (
	"bytes"
	"crypto/sha256"
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
type faultyMM struct {
	srv       *httptest.Server
	fakeToken string

	mu                        sync.Mutex
	throttle, unavailable     float64                // shares of calls answered 429 / 503
	retryAfter                time.Duration          // the Retry-After of a 429
	blockedUntil              map[[32]byte]time.Time // a throttled call → when it may come again
	calls, throttled, refused int
	earlyRetries              int
}

func newFaultyMM(t *testing.T, target, realToken, fakeToken string) *faultyMM {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultyMM{fakeToken: fakeToken, retryAfter: time.Second, blockedUntil: map[[32]byte]time.Time{}}
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
		if until, ok := p.blockedUntil[key]; ok {
			if now.Before(until) {
				p.earlyRetries++
			}
			delete(p.blockedUntil, key)
		}
		x := rand.Float64()
		switch {
		case x < p.throttle:
			p.throttled++
			p.blockedUntil[key] = now.Add(p.retryAfter)
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

// set changes the shares of calls answered 429 and 503.
func (p *faultyMM) set(throttle, unavailable float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.throttle, p.unavailable = throttle, unavailable
}

// counts returns the calls seen, those answered 429 and 503, and the calls repeated early.
func (p *faultyMM) counts() (calls, throttled, refused, early int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls, p.throttled, p.refused, p.earlyRetries
}
