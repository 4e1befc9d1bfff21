package mattermost

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// The real server is exercised by the e2e suites; this pins down the retry behaviour, which the
// test server (rate limiting off) never triggers.
func TestRetriesThrottlingAndServerErrors(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			w.Header().Set("X-Ratelimit-Reset", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		case 2:
			w.WriteHeader(http.StatusBadGateway)
		default:
			_, _ = w.Write([]byte(`{"user_id":"u","status":"dnd"}`))
		}
	}))
	defer srv.Close()
	c := New(srv.URL, "token", nil)
	start := time.Now()
	if err := c.SetStatus(context.Background(), "u", "dnd", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 || c.Writes.Load() != 3 {
		t.Fatalf("%d calls, %d counted", calls.Load(), c.Writes.Load())
	}
	if time.Since(start) < 500*time.Millisecond {
		t.Fatal("did not wait after 429")
	}
}

func TestDoesNotRetryClientErrors(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"id":"api.context.permissions.app_error","message":"You do not have the appropriate permissions.","status_code":403}`))
	}))
	defer srv.Close()
	err := New(srv.URL, "token", nil).SetStatus(context.Background(), "u", "dnd", time.Time{})
	if err == nil || calls.Load() != 1 {
		t.Fatalf("403: %v after %d calls", err, calls.Load())
	}
	if e, ok := err.(*Error); !ok || e.Status != 403 {
		t.Fatalf("error %#v", err)
	}
}
