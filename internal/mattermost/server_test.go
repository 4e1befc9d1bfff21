package mattermost

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestServerForVersion(t *testing.T) {
	for _, tc := range []struct {
		header  string
		version string
		expiry  time.Duration
		ends    bool
	}{
		{"6.7.2.6.7.2.abc123.false", "6.7.2", 5 * time.Minute, false},
		{"10.0.1", "10.0.1", 5 * time.Minute, false},
		{"10.5.2.10.5.2.ff.true", "10.5.2", 5 * time.Minute, false},
		{"10.6.0", "10.6.0", time.Minute, true},
		{"10.11.3.12345.0a1b.true", "10.11.3", time.Minute, true},
		{"11.1.0", "11.1.0", time.Minute, true},
		{"", "", 5 * time.Minute, false},
		{"dev", "", 5 * time.Minute, false},
		{"x.y.z", "", 5 * time.Minute, false},
	} {
		s := ServerFor(tc.header)
		if s.Version != tc.version || s.DNDExpiry != tc.expiry || s.EndsAlwaysRead != tc.ends {
			t.Errorf("ServerFor(%q) = %+v, want version %q expiry %v ends %v", tc.header, s, tc.version, tc.expiry, tc.ends)
		}
	}
}

func TestServerIsReadThenKept(t *testing.T) {
	var pings, configs atomic.Int32
	fail := atomic.Bool{}
	fail.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Version-Id", "10.11.3.123.abc.false")
		if r.URL.Path == "/api/v4/config/client" {
			configs.Add(1)
			_, _ = w.Write([]byte(`{"EnableCustomUserStatuses":"false"}`))
			return
		}
		pings.Add(1)
		if fail.Load() {
			w.WriteHeader(http.StatusForbidden) // refused: not retried, and not remembered
			return
		}
		_, _ = w.Write([]byte(`{"status":"OK"}`))
	}))
	defer srv.Close()
	c := New(srv.URL, "token", nil)
	if s, err := c.Server(context.Background()); err == nil || s.EndsAlwaysRead {
		t.Fatalf("a failed read: %+v, %v; want an error and the oldest behaviour", s, err)
	}
	fail.Store(false)
	for range 3 {
		s, err := c.Server(context.Background())
		if err != nil || s.Version != "10.11.3" || s.DNDExpiry != time.Minute || !s.CustomOff {
			t.Fatalf("%+v, %v", s, err)
		}
	}
	if n, m := pings.Load(), configs.Load(); n != 2 || m != 1 {
		t.Fatalf("%d pings and %d config reads, want 2 and 1 (the failed ping, then one read kept)", n, m)
	}
	c.serverAt = c.serverAt.Add(-serverTTL) // as if read serverTTL ago
	if _, err := c.Server(context.Background()); err != nil || pings.Load() != 3 {
		t.Fatalf("after serverTTL: %v, %d pings; want it read again", err, pings.Load())
	}
}
