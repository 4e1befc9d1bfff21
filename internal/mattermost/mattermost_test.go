package mattermost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"
)

// The real server is exercised by the e2e suites; these pin down retries, which the test server
// (rate limiting off, never failing) does not trigger.
func TestRetriesThrottlingAndServerErrors(t *testing.T) {
	var calls atomic.Int32
	var mu sync.Mutex
	var throttledAt, retriedAt time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch calls.Add(1) {
		case 1:
			throttledAt = time.Now()
			w.Header().Set("X-Ratelimit-Reset", "1")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		case 2:
			retriedAt = time.Now()
			w.WriteHeader(http.StatusBadGateway)
		default:
			_, _ = w.Write([]byte(`{"user_id":"u","status":"online"}`))
		}
	}))
	defer srv.Close()
	c := New(srv.URL, "token", nil)
	if _, err := c.SetStatus(context.Background(), "u", StatusChange{Status: "online"}); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 || c.Writes.Load() != 3 {
		t.Fatalf("%d calls, %d counted", calls.Load(), c.Writes.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	if waited := retriedAt.Sub(throttledAt); waited < time.Second {
		t.Fatalf("retried %v after a 429 with Retry-After 1", waited)
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
	_, err := New(srv.URL, "token", nil).SetStatus(context.Background(), "u", StatusChange{Status: "dnd", DNDEnd: time.Now().Add(time.Hour)})
	if err == nil || calls.Load() != 1 {
		t.Fatalf("403: %v after %d calls", err, calls.Load())
	}
	if e, ok := err.(*Error); !ok || e.Status != 403 {
		t.Fatalf("error %#v", err)
	}
}

// statusServer keeps one status row the way Mattermost does for PUT dnd (remembering the status it
// replaces) and can lose the answer to the first PUT after applying it.
type statusServer struct {
	mu            sync.Mutex
	status, prev  string
	end           int64
	puts          int
	loseFirst     bool
	failFirstOnly bool
}

func (s *statusServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method == http.MethodPut {
		s.puts++
		if s.failFirstOnly && s.puts == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // not applied
			return
		}
		var in struct {
			Status string `json:"status"`
			End    int64  `json:"dnd_end_time"`
		}
		_ = json.NewDecoder(r.Body).Decode(&in)
		if in.Status == "dnd" {
			s.prev, s.end = s.status, in.End
		}
		s.status = in.Status
		if s.loseFirst && s.puts == 1 {
			w.WriteHeader(http.StatusBadGateway) // applied, answer lost
			return
		}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"user_id": "u", "status": s.status, "dnd_end_time": s.end})
}

func TestDNDIsNotRepeatedAfterALostAnswer(t *testing.T) {
	s := &statusServer{status: "online", loseFirst: true}
	srv := httptest.NewServer(s)
	defer srv.Close()
	end := time.Now().Add(time.Hour).Truncate(time.Second)
	if _, err := New(srv.URL, "token", nil).SetStatus(context.Background(), "u", StatusChange{Status: "dnd", DNDEnd: end}); err != nil {
		t.Fatal(err)
	}
	if s.puts != 1 || s.prev != "online" {
		t.Fatalf("%d PUTs, remembered %q: a repeated dnd PUT would remember dnd as the status to return to", s.puts, s.prev)
	}
}

func TestDNDIsRetriedWhenItDidNotLand(t *testing.T) {
	s := &statusServer{status: "away", failFirstOnly: true}
	srv := httptest.NewServer(s)
	defer srv.Close()
	end := time.Now().Add(time.Hour).Truncate(time.Second)
	if _, err := New(srv.URL, "token", nil).SetStatus(context.Background(), "u", StatusChange{Status: "dnd", DNDEnd: end}); err != nil {
		t.Fatal(err)
	}
	if s.puts != 2 || s.status != "dnd" || s.prev != "away" || s.end != end.Unix() {
		t.Fatalf("%d PUTs, row %s prev %s end %d", s.puts, s.status, s.prev, s.end)
	}
}

func TestViaIsReportedWhenTheDNDFails(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			_, _ = w.Write([]byte(`{"user_id":"u","status":"away"}`))
			return
		}
		w.WriteHeader(http.StatusBadRequest)
	}))
	defer srv.Close()
	via, err := New(srv.URL, "token", nil).SetStatus(context.Background(), "u", StatusChange{Via: "away", Status: "dnd", DNDEnd: time.Now()})
	if err == nil || !via {
		t.Fatalf("via %v, err %v: want the via reported done and the error", via, err)
	}
}

// Client4 takes no context: a hung Mattermost must still release a call at the caller's deadline,
// not at the HTTP client's 30 seconds.
func TestCallsEndAtTheContextsDeadline(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release // hangs
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := New(srv.URL, "token", nil).Statuses(ctx, []string{"u"})
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("a hung server held the call %v (err %v): want it ended at the context's deadline", time.Since(start), err)
	}
}

// A 429 holds every call the process makes, not only the one throttled: the limit is the token's.
func TestThrottlingHoldsEveryCall(t *testing.T) {
	var mu sync.Mutex
	var throttledAt time.Time
	var early []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case throttledAt.IsZero():
			throttledAt = time.Now()
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		case time.Since(throttledAt) < time.Second:
			early = append(early, r.Method+" "+r.URL.Path)
		}
		_, _ = w.Write([]byte(`{"user_id":"u","status":"online"}`))
	}))
	defer srv.Close()
	c := New(srv.URL, "token", nil)
	first := make(chan error, 1)
	go func() {
		_, err := c.SetStatus(context.Background(), "u1", StatusChange{Status: "online"})
		first <- err
	}()
	for c.heldUntil.Load() == 0 { // the first call has read its 429
		time.Sleep(time.Millisecond)
	}
	if _, err := c.SetStatus(context.Background(), "u2", StatusChange{Status: "away"}); err != nil {
		t.Fatal(err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(early) > 0 {
		t.Fatalf("calls before the Retry-After: %v", early)
	}
}

// A custom status for an event that ended while its shard ran is not sent; one that is goes as one
// patch of the user's props, the others as read kept (a patch replaces them all).
func TestCustomStatusIsOnePatchOfTheProps(t *testing.T) {
	rec := newPatchRecorder(t, nil)
	c := New(rec.url, "token", nil)
	ctx := context.Background()
	u := toUser(&model.User{Id: "u", Props: model.StringMap{"last_search_pointer": "3", model.UserPropsKeyCustomStatus: `{"text":"old"}`}})
	if err := c.SetCustomStatus(ctx, u, CustomStatus{Emoji: "calendar", Text: "In a meeting", ExpiresAt: time.Now().Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if calls, _ := rec.seen(); len(calls) != 0 {
		t.Fatalf("calls %v for a custom status expiring in a second: want none", calls)
	}
	end := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	if err := c.SetCustomStatus(ctx, u, CustomStatus{Emoji: "calendar", Text: "In a meeting", ExpiresAt: end}); err != nil {
		t.Fatal(err)
	}
	calls, sent := rec.seen()
	if len(calls) != 1 || calls[0] != "PUT /api/v4/users/u/patch" {
		t.Fatalf("calls %v for a custom status expiring in an hour: want one patch", calls)
	}
	var cs model.CustomStatus
	if err := json.Unmarshal([]byte(sent.Props[model.UserPropsKeyCustomStatus]), &cs); err != nil {
		t.Fatal(err)
	}
	if len(sent.Props) != 2 || sent.Props["last_search_pointer"] != "3" || cs.Text != "In a meeting" || cs.Duration != "date_and_time" || !cs.ExpiresAt.Equal(end) {
		t.Fatalf("props sent %v: want the other prop kept and the custom status until %v", sent.Props, end)
	}
	if sent.NotifyProps != nil || sent.Username != nil || sent.Email != nil {
		t.Fatalf("patch %+v: want only the props", sent)
	}
}

func TestMayHaveLanded(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&Error{Op: "set custom status", Err: errors.New("timeout")}, true},
		{fmt.Errorf("wrapped: %w", &Error{Status: http.StatusBadGateway}), true},
		{&Error{Status: http.StatusServiceUnavailable}, true},
		{&Error{Status: http.StatusTooManyRequests}, false},
		{&Error{Status: http.StatusBadRequest}, false},
		{errors.New("not a call"), false},
	} {
		if got := MayHaveLanded(c.err); got != c.want {
			t.Errorf("MayHaveLanded(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestMayHaveLandedCountsEveryAttempt(t *testing.T) {
	// A 502 (which a proxy answers for a change the server made), then only 429s: the call fails,
	// and may have landed.
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	c := New(srv.URL, "token", nil)
	c.attempts = 3
	for _, ch := range []StatusChange{{Status: "away"}, {Status: "dnd", DNDEnd: time.Now().Add(time.Hour)}} {
		calls.Store(0)
		_, err := c.SetStatus(context.Background(), "u", ch)
		var e *Error
		if !errors.As(err, &e) || ch.Status == "away" && e.Status != http.StatusTooManyRequests {
			t.Fatalf("%s: %v; want the last attempt's 429", ch.Status, err)
		}
		if !MayHaveLanded(err) {
			t.Fatalf("%s: a 502 then 429s read as not landed: %v", ch.Status, err)
		}
	}
	// Only refusals: not landed.
	refused := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTooManyRequests) }))
	defer refused.Close()
	c = New(refused.URL, "token", nil)
	c.attempts = 2
	if _, err := c.SetStatus(context.Background(), "u", StatusChange{Status: "away"}); err == nil || MayHaveLanded(err) {
		t.Fatalf("429s only: %v, may have landed %v", err, MayHaveLanded(err))
	}
}

// Me and RolePermissions read what the self-check needs of the token without writing anything.
func TestMeAndRolePermissions(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/api/v4/users/me":
			_, _ = w.Write([]byte(`{"id":"bot0000000000000000000000a","username":"calstatus","roles":"system_user system_admin","is_bot":true}`))
		case r.Method == http.MethodPost && r.URL.Path == "/api/v4/roles/names":
			var names []string
			_ = json.NewDecoder(r.Body).Decode(&names)
			if fmt.Sprint(names) != "[system_user system_admin]" {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			_, _ = w.Write([]byte(`[{"name":"system_user","permissions":["create_team"]},{"name":"system_admin","permissions":["edit_other_users","manage_system"]}]`))
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	c := New(srv.URL, "token", nil)
	me, err := c.Me(context.Background())
	if err != nil || me.ID != "bot0000000000000000000000a" || me.Username != "calstatus" || !me.Bot || fmt.Sprint(me.Roles) != "[system_user system_admin]" {
		t.Fatalf("me %+v (%v)", me, err)
	}
	perms, err := c.RolePermissions(context.Background(), me.Roles)
	if err != nil || !perms["edit_other_users"] || !perms["create_team"] || len(perms) != 3 {
		t.Fatalf("permissions %v (%v)", perms, err)
	}
	if c.Writes.Load() != 0 {
		t.Fatal("a write")
	}
}

// Writes are bounded per process, reads are not, and a hung write gives its slot back after its
// attempt's timeout rather than holding it for the caller's whole budget.
func TestWritesAreBoundedAndAHungOneLetsGo(t *testing.T) {
	var mu sync.Mutex
	inFlight := map[string]int{}
	most := map[string]int{}
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := "read"
		if r.Method == http.MethodPut {
			kind = "write"
		}
		mu.Lock()
		inFlight[kind]++
		most[kind] = max(most[kind], inFlight[kind])
		mu.Unlock()
		defer func() {
			mu.Lock()
			inFlight[kind]--
			mu.Unlock()
		}()
		if strings.HasSuffix(r.URL.Path, "/hung/patch") {
			select {
			case <-hang:
			case <-r.Context().Done():
			}
			return
		}
		time.Sleep(30 * time.Millisecond)
		_, _ = w.Write([]byte(`{"id":"u"}`))
	}))
	defer srv.Close()
	defer close(hang)
	c := New(srv.URL, "token", nil)
	c.BoundWrites(3)
	c.writeTimeout = 200 * time.Millisecond
	c.attempts = 1
	ctx := context.Background()
	cs := CustomStatus{Text: "In a meeting", ExpiresAt: time.Now().Add(time.Hour)}

	// 20 writes and 20 reads at once: at most 3 writes in flight, the reads beside them.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(2)
		go func() { defer wg.Done(); _ = c.SetCustomStatus(ctx, User{ID: fmt.Sprint("u", i)}, cs) }()
		go func() { defer wg.Done(); _, _ = c.UsersUncached(ctx, []string{fmt.Sprint("u", i)}) }()
	}
	wg.Wait()
	mu.Lock()
	writes, reads := most["write"], most["read"]
	mu.Unlock()
	if writes > 3 || writes < 2 {
		t.Fatalf("%d writes in flight at once, bound 3", writes)
	}
	if reads <= 3 {
		t.Fatalf("at most %d reads at once: reads must not wait for the write bound", reads)
	}
	if c.WriteBound() != 3 {
		t.Fatalf("WriteBound %d", c.WriteBound())
	}

	// With one slot, a hung write holds it only for its attempt's timeout: the writes queued
	// behind it are made well within their budget.
	c.BoundWrites(1)
	budget, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	hungErr := make(chan error, 1)
	go func() { hungErr <- c.SetCustomStatus(budget, User{ID: "hung"}, cs) }()
	time.Sleep(20 * time.Millisecond) // the hung write has the slot
	for i := range 5 {
		if err := c.SetCustomStatus(budget, User{ID: fmt.Sprint("v", i)}, cs); err != nil {
			t.Fatalf("write %d behind a hung one: %v", i, err)
		}
	}
	if err := <-hungErr; err == nil || !MayHaveLanded(err) {
		t.Fatalf("hung write: %v; want a timeout that may have landed", err)
	}
}

// Where custom statuses are turned off the server refuses DELETE …/status/custom: one calstatus
// set before is taken out of the user's props instead, the others kept.
func TestClearCustomStatusWhereTurnedOff(t *testing.T) {
	rec := newPatchRecorder(t, func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("X-Version-Id", "10.11.3")
		switch r.URL.Path {
		case "/api/v4/config/client":
			_, _ = w.Write([]byte(`{"EnableCustomUserStatuses":"false"}`))
			return true
		case "/api/v4/system/ping":
			_, _ = w.Write([]byte(`{"status":"OK"}`))
			return true
		}
		return false
	})
	c := New(rec.url, "token", nil)
	ctx := context.Background()
	u := toUser(&model.User{Id: "u", Props: model.StringMap{"last_search_pointer": "3", model.UserPropsKeyCustomStatus: `{"text":"In a meeting"}`}})
	if s, err := c.Server(ctx); err != nil || !s.CustomOff {
		t.Fatalf("server %+v, %v", s, err)
	}
	if err := c.ClearCustomStatus(ctx, u); err != nil {
		t.Fatal(err)
	}
	calls, sent := rec.seen()
	if len(calls) != 1 || calls[0] != "PUT /api/v4/users/u/patch" {
		t.Fatalf("calls %v: want one patch", calls)
	}
	if _, ok := sent.Props[model.UserPropsKeyCustomStatus]; ok || sent.Props["last_search_pointer"] != "3" || len(sent.Props) != 1 {
		t.Fatalf("props sent %v: want the custom status out, the rest kept", sent.Props)
	}
}

// patchRecorder is a Mattermost stand-in that records every call and the last patch sent; answer,
// when set, answers the calls it takes (returning true) before they are recorded.
type patchRecorder struct {
	url   string
	mu    sync.Mutex
	calls []string
	sent  model.UserPatch
}

func newPatchRecorder(t *testing.T, answer func(w http.ResponseWriter, r *http.Request) bool) *patchRecorder {
	rec := &patchRecorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if answer != nil && answer(w, r) {
			return
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		rec.calls = append(rec.calls, r.Method+" "+r.URL.Path)
		_ = json.NewDecoder(r.Body).Decode(&rec.sent)
		_, _ = w.Write([]byte(`{"id":"u"}`))
	}))
	t.Cleanup(srv.Close)
	rec.url = srv.URL
	return rec
}

// seen returns the calls recorded and the last patch sent.
func (rec *patchRecorder) seen() ([]string, model.UserPatch) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]string(nil), rec.calls...), rec.sent
}
