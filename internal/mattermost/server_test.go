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

func TestServerIsReadOncePerProcess(t *testing.T) {
	var pings atomic.Int32
	fail := atomic.Bool{}
	fail.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pings.Add(1)
		w.Header().Set("X-Version-Id", "10.11.3.123.abc.false")
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
		if err != nil || s.Version != "10.11.3" || s.DNDExpiry != time.Minute {
			t.Fatalf("%+v, %v", s, err)
		}
	}
	if n := pings.Load(); n != 2 {
		t.Fatalf("%d pings, want 2 (the failed one, then one remembered)", n)
	}
}
