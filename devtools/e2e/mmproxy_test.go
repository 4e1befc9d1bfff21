package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// mmProxy stands between calstatus and the real Mattermost server and, for status PUTs it is told
// about, loses the answer (after the server applied the change) or fails without forwarding: the
// faults of a network between the two.
type mmProxy struct {
	srv *httptest.Server
	mu  sync.Mutex
	// rule decides for the n-th (from 1) status PUT of a user what happens to it.
	rule func(userID, status string, n int) proxyAction
	// refuseIf, when set, refuses (503, not forwarded) any other request it matches; loseIf
	// forwards it and loses the answer (502); throttleIf answers 429 with Retry-After 1, not
	// forwarded.
	refuseIf, loseIf, throttleIf func(r *http.Request) bool
	puts                         map[string][]string // user → statuses PUT through (forwarded or not)
}

type proxyAction int

const (
	forward    proxyAction = iota
	loseAnswer             // forwarded; the client gets 502
	refuse                 // not forwarded; the client gets 503
)

func newMMProxy(t *testing.T, target string) *mmProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &mmProxy{puts: map[string][]string{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		userID, isStatus := statusPut(r)
		if !isStatus {
			p.mu.Lock()
			refused := p.refuseIf != nil && p.refuseIf(r)
			lost := !refused && p.loseIf != nil && p.loseIf(r)
			throttled := !refused && !lost && p.throttleIf != nil && p.throttleIf(r)
			p.mu.Unlock()
			switch {
			case refused:
				w.WriteHeader(http.StatusServiceUnavailable)
			case lost:
				rp.ServeHTTP(httptest.NewRecorder(), r)
				w.WriteHeader(http.StatusBadGateway)
			case throttled:
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
			default:
				rp.ServeHTTP(w, r)
			}
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var st struct {
			Status string `json:"status"`
		}
		_ = json.Unmarshal(body, &st)
		p.mu.Lock()
		p.puts[userID] = append(p.puts[userID], st.Status)
		action := forward
		if p.rule != nil {
			action = p.rule(userID, st.Status, len(p.puts[userID]))
		}
		p.mu.Unlock()
		switch action {
		case refuse:
			w.WriteHeader(http.StatusServiceUnavailable)
		case loseAnswer:
			rp.ServeHTTP(httptest.NewRecorder(), r)
			w.WriteHeader(http.StatusBadGateway)
		default:
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// statusPut recognises PUT /api/v4/users/{id}/status.
func statusPut(r *http.Request) (string, bool) {
	if r.Method != http.MethodPut {
		return "", false
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/v4/users/")
	if !ok {
		return "", false
	}
	id, tail, _ := strings.Cut(rest, "/")
	return id, tail == "status"
}

func (p *mmProxy) putsOf(userID string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.puts[userID]...)
}
