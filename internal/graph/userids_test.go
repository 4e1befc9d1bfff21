package graph_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/internal/graph"
)

// directory has users at every address of contoso.example (the generator's), and some listed:
// UPNs that are not their mail, mail that is not their UPN, no user at all.
func directory(list []string) *graphsim.Scenario {
	sc := &graphsim.Scenario{Generator: graphsim.Generator{Seed: 1, Domain: "contoso.example"}, Mailboxes: map[string]*graphsim.Mailbox{}}
	for i, e := range list {
		switch i % 8 {
		case 1: // found by mail only: the UPN is another address
			local, _, _ := strings.Cut(e, "@")
			sc.Mailboxes[e] = &graphsim.Mailbox{UserPrincipalName: local + "@contoso.onmicrosoft.example"}
		case 2: // found by UPN only: the mail is another address
			sc.Mailboxes[e] = &graphsim.Mailbox{Mail: "alias." + e}
		case 3: // no user
			sc.Mailboxes[e] = &graphsim.Mailbox{Missing: true}
		case 4: // an id of the scenario's
			sc.Mailboxes[e] = &graphsim.Mailbox{ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i)}
		}
	}
	return sc
}

func TestLookup40UsersInOneBatch(t *testing.T) {
	list := emails(36)
	list = append(list, "someone@fabrikam.example", "Mixed.Case@Contoso.example", "user00000@contoso.example", "not-an-address")
	sim := startSimWith(t, graphsim.Config{Scenario: directory(list[:36]), Roles: presenceRoles})
	c := newClient(t, sim)
	res, err := c.LookupUserIDs(context.Background(), list)
	if err != nil {
		t.Fatal(err)
	}
	st := sim.Stats()
	t.Logf("40 emails: %d found, %d not found, %d failures; %d $batch calls, %d lookups", len(res.IDs), len(res.NotFound), len(res.Failures), st.Requests["$batch"], st.UserQueries)
	// 38 distinct addresses, by UPN and by mail in filters of 15: 6 lookups, one $batch.
	if res.Calls != 1 || st.Requests["$batch"] != 1 || st.UserQueries != 6 {
		t.Fatalf("%d calls (simulator: %d $batch, %d lookups)", res.Calls, st.Requests["$batch"], st.UserQueries)
	}
	sc := sim.Scenario()
	var wantNotFound []string
	for i, e := range list[:36] {
		switch {
		case i%8 == 3:
			wantNotFound = append(wantNotFound, e)
		case i%8 == 4:
			if res.IDs[e] != fmt.Sprintf("00000000-0000-4000-8000-%012d", i) {
				t.Fatalf("%s: %q, want the scenario's id", e, res.IDs[e])
			}
		default:
			if id, _ := sc.UserID(e); res.IDs[e] != graphsim.ObjectID(e) || id != res.IDs[e] {
				t.Fatalf("%s (case %d): %q, want %q", e, i%8, res.IDs[e], graphsim.ObjectID(e))
			}
		}
	}
	if res.IDs["mixed.case@contoso.example"] != graphsim.ObjectID("mixed.case@contoso.example") || len(res.IDs) != 36-len(wantNotFound)+1 {
		t.Fatalf("%d found: %v", len(res.IDs), res.IDs)
	}
	wantNotFound = append(wantNotFound, "someone@fabrikam.example")
	slices.Sort(wantNotFound)
	slices.Sort(res.NotFound)
	if !slices.Equal(res.NotFound, wantNotFound) {
		t.Fatalf("not found %v, want %v", res.NotFound, wantNotFound)
	}
	if len(res.Failures) != 1 || res.Failures[0].Email != "not-an-address" || res.Failures[0].Class != "invalid" {
		t.Fatalf("failures %+v", res.Failures)
	}

	// The ids found are the ones presence is asked by.
	ids := make([]string, 0, len(res.IDs))
	for _, id := range res.IDs {
		ids = append(ids, id)
	}
	pr, err := c.GetPresences(context.Background(), ids)
	if err != nil || len(pr.Presence) != len(ids) || len(pr.Failures) != 0 {
		t.Fatalf("presence of the users found: %d of %d, failures %+v, %v", len(pr.Presence), len(ids), pr.Failures, err)
	}

	// 300 addresses fit one $batch (20 lookups of 15), 301 take two.
	for n, calls := range map[int]int{150: 1, 151: 2} {
		sim.ResetStats()
		res, err := c.LookupUserIDs(context.Background(), emails(n))
		if err != nil || res.Calls != calls || len(res.IDs)+len(res.NotFound) != n {
			t.Fatalf("%d emails: %d calls, %d found, %d not found, %v", n, res.Calls, len(res.IDs), len(res.NotFound), err)
		}
	}
	// Nothing to look up: no call.
	sim.ResetStats()
	if res, err := c.LookupUserIDs(context.Background(), nil); err != nil || res.Calls != 0 || sim.Stats().Requests["$batch"] != 0 {
		t.Fatalf("no emails: %+v %v", res, err)
	}
}

func TestLookupForbidden(t *testing.T) {
	sim := startSimWith(t, graphsim.Config{Scenario: directory(emails(20)), Roles: []string{"Calendars.ReadBasic.All", "Presence.Read.All"}})
	c := newClient(t, sim)
	res, err := c.LookupUserIDs(context.Background(), emails(20))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.IDs) != 0 || len(res.NotFound) != 0 || len(res.Failures) != 20 || res.Calls != 1 {
		t.Fatalf("%d found, %d not found, %d failures, %d calls", len(res.IDs), len(res.NotFound), len(res.Failures), res.Calls)
	}
	for _, f := range res.Failures {
		if f.Class != "forbidden" || f.Code != "Authorization_RequestDenied" || f.Status != 403 {
			t.Fatalf("failure %+v", f)
		}
	}
	// User.Read.All does as well as User.ReadBasic.All.
	sim.SetRoles([]string{"User.Read.All"})
	c = newClient(t, sim) // a new token
	if res, err := c.LookupUserIDs(context.Background(), emails(20)); err != nil || len(res.IDs)+len(res.NotFound) != 20 {
		t.Fatalf("User.Read.All: %+v, %v", res, err)
	}
}

// Throttled lookups go again after their Retry-After, alone; none comes early.
func TestLookupThrottledSubRequests(t *testing.T) {
	list := emails(150)
	sim := startSimWith(t, graphsim.Config{Scenario: directory(list), Roles: presenceRoles,
		Faults: graphsim.Faults{Seed: 5, FaultEndpoints: []string{"users"}, ThrottleFraction: 0.3, ThrottleRetryAfter: 1, PunishEarlyRetries: true}})
	var waits sleeps
	c := newClientWith(t, sim, func(cfg *graph.Config) { cfg.Sleep = waits.sleep })
	res, err := c.LookupUserIDs(context.Background(), list)
	if err != nil {
		t.Fatal(err)
	}
	st := sim.Stats()
	t.Logf("150 emails, 30%% of lookups throttled: %d calls, %d retries, %d throttled, waited %v", res.Calls, res.Retries, res.Throttled, waits.total())
	if res.Throttled == 0 || res.Throttled != int(st.Throttled) || res.Retries != res.Throttled || res.Calls != int(st.Requests["$batch"]) || st.EarlyRetries != 0 {
		t.Fatalf("reported %d throttled, %d retries, %d calls; simulator: %d throttled, %d $batch, %d early", res.Throttled, res.Retries, res.Calls, st.Throttled, st.Requests["$batch"], st.EarlyRetries)
	}
	if len(res.IDs)+len(res.NotFound) != 150 || len(res.Failures) != 0 {
		t.Fatalf("%d found, %d not found, %d failures", len(res.IDs), len(res.NotFound), len(res.Failures))
	}
}

func TestLookupHungBatchIsRetried(t *testing.T) {
	sim := startSimWith(t, graphsim.Config{Scenario: directory(emails(20)), Roles: presenceRoles,
		Faults: graphsim.Faults{FaultEndpoints: []string{"users"}, HangFraction: 1}})
	go func() {
		for sim.Stats().Hung == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		_ = sim.SetFaults(graphsim.Faults{})
	}()
	c := newClientWith(t, sim, func(cfg *graph.Config) { cfg.AttemptTimeout = 200 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := c.LookupUserIDs(ctx, emails(20))
	if err != nil {
		t.Fatal(err)
	}
	if st := sim.Stats(); len(res.IDs)+len(res.NotFound) != 20 || res.Calls != 2 || res.Retries != 4 || st.Hung != 1 {
		t.Fatalf("%d found, %d not found, %d calls, %d retries; %d hung", len(res.IDs), len(res.NotFound), res.Calls, res.Retries, st.Hung)
	}
}

// inFlight counts the $batch calls a client has open at once.
type inFlight struct {
	next      http.RoundTripper
	mu        sync.Mutex
	now, most int
}

func (f *inFlight) RoundTrip(r *http.Request) (*http.Response, error) {
	batch := strings.HasSuffix(r.URL.Path, "/$batch")
	if batch {
		f.mu.Lock()
		f.now++
		f.most = max(f.most, f.now)
		f.mu.Unlock()
		defer func() { f.mu.Lock(); f.now--; f.mu.Unlock() }()
	}
	return f.next.RoundTrip(r)
}

// A shard's 400 users are 54 lookups, three $batch calls: sent at once, so a first cycle's
// presence call waits for one Graph round trip, not three.
func TestLookup400UsersSendsItsBatchesAtOnce(t *testing.T) {
	list := emails(400)
	sim := startSimWith(t, graphsim.Config{Scenario: directory(list), Roles: presenceRoles, BatchLatency: time.Second})
	tr := &inFlight{next: sim.Client().Transport}
	c := newClientWith(t, sim, func(cfg *graph.Config) { cfg.Transport = tr })
	res, err := c.LookupUserIDs(context.Background(), list)
	if err != nil {
		t.Fatal(err)
	}
	if res.Calls != 3 || len(res.IDs)+len(res.NotFound) != 400 || len(res.Failures) != 0 {
		t.Fatalf("%d calls, %d found, %d not found, %d failures", res.Calls, len(res.IDs), len(res.NotFound), len(res.Failures))
	}
	if tr.most != 3 {
		t.Fatalf("at most %d $batch calls at once, want the 3 together", tr.most)
	}
}
