package graph_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/internal/calendar"
	"github.com/calstatus/calstatus/internal/graph"
)

// These tests run the real azidentity and msgraph SDK code paths against the Graph simulator.

func newClient(t *testing.T, sim *graphsim.Server) *graph.Client {
	t.Helper()
	return newClientWith(t, sim, func(*graph.Config) {})
}

// newClientWith is newClient with its Config adjusted by set.
func newClientWith(t *testing.T, sim *graphsim.Server, set func(*graph.Config)) *graph.Client {
	t.Helper()
	cred, err := graph.NewCredential(graph.CredentialConfig{TenantID: sim.TenantID(), ClientID: sim.ClientID(),
		ClientSecret: sim.ClientSecret(), AuthorityHost: sim.URL(), Transport: sim.Client()})
	if err != nil {
		t.Fatal(err)
	}
	cfg := graph.Config{BaseURL: sim.GraphURL(), Credential: cred, Transport: sim.Client().Transport}
	set(&cfg)
	c, err := graph.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func startSim(t *testing.T, sc *graphsim.Scenario) *graphsim.Server {
	t.Helper()
	sim, err := graphsim.Start(graphsim.Config{Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

func emails(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("user%05d@contoso.example", i)
	}
	return out
}

func window() graph.Window {
	now := time.Now().UTC().Truncate(time.Minute)
	return graph.Window{Start: now, End: now.Add(10 * time.Minute)}
}

// fixedWindow makes the simulator's fault draws, seeded by request content, the same on every run,
// so tests with injected fault fractions are deterministic.
func fixedWindow() graph.Window {
	start := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	return graph.Window{Start: start, End: start.Add(10 * time.Minute)}
}

func TestOneBatchPer400Users(t *testing.T) {
	sc := graphsim.DefaultScenario()
	sim := startSim(t, sc)
	c := newClient(t, sim)
	for _, n := range []int{1, 400, 1000} {
		sim.ResetStats()
		res, err := c.GetSchedules(context.Background(), emails(n), window())
		if err != nil {
			t.Fatal(err)
		}
		want := (n + 399) / 400
		if got := sim.Stats().Requests["$batch"]; int(got) != want || res.Calls != want {
			t.Fatalf("%d users: %d $batch calls (client says %d), want %d", n, got, res.Calls, want)
		}
		if len(res.Availability) != n || len(res.Failures) != 0 {
			t.Fatalf("%d users: %d answered, %d failures %+v", n, len(res.Availability), len(res.Failures), res.Failures[:min(3, len(res.Failures))])
		}
		if m := sim.Stats().MaxConcurrent; m > 1 {
			t.Fatalf("a mailbox was used by %d sub-requests at once: each sub-request must name its own", m)
		}
	}
}

func TestAvailabilityMatchesCalendar(t *testing.T) {
	sc := graphsim.DefaultScenario()
	sim := startSim(t, sc)
	c := newClient(t, sim)
	w := window()
	list := emails(200)
	res, err := c.GetSchedules(context.Background(), list, w)
	if err != nil {
		t.Fatal(err)
	}
	busy := 0
	for _, e := range list {
		got := res.Availability[e].At(w.Start).Status
		want := calendar.ParseStatus(sc.StatusAt(e, w.Start))
		if got != want {
			t.Fatalf("%s at %v: got %s, calendar says %s", e, w.Start, got, want)
		}
		if got != calendar.Free {
			busy++
		}
	}
	if busy == 0 {
		t.Fatal("no user busy: the scenario has meetings for about 40% of the time")
	}
}

func TestPerScheduleErrorsAreClassified(t *testing.T) {
	sc := graphsim.DefaultScenario()
	sc.Mailboxes = map[string]*graphsim.Mailbox{
		"user00003@contoso.example": {Missing: true},
		"user00004@contoso.example": {ScheduleError: "ErrorNoFreeBusyAccess"},
	}
	sim := startSim(t, sc)
	c := newClient(t, sim)
	res, err := c.GetSchedules(context.Background(), emails(20), window())
	if err != nil {
		t.Fatal(err)
	}
	classes := map[string]string{}
	for _, f := range res.Failures {
		classes[f.Email] = f.Class
	}
	if classes["user00003@contoso.example"] != "not_found" || classes["user00004@contoso.example"] != "no_access" || len(res.Availability) != 18 {
		t.Fatalf("failures %+v, %d answered", res.Failures, len(res.Availability))
	}
}

func TestWrongSecretFailsClearly(t *testing.T) {
	sim := startSim(t, graphsim.DefaultScenario())
	cred, err := graph.NewCredential(graph.CredentialConfig{TenantID: sim.TenantID(), ClientID: sim.ClientID(),
		ClientSecret: "wrong", AuthorityHost: sim.URL(), Transport: sim.Client()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := graph.New(graph.Config{BaseURL: sim.GraphURL(), Credential: cred, Transport: sim.Client().Transport, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetSchedules(context.Background(), emails(3), window())
	if err == nil || !strings.Contains(err.Error(), "AADSTS7000215") {
		t.Fatalf("want an error naming AADSTS7000215, got %v", err)
	}
	t.Logf("wrong secret: %v", err)
	var authErr *azidentity.AuthenticationFailedError
	if !errors.As(err, &authErr) || strings.Count(err.Error(), "graph: ") != 1 || strings.Contains(err.Error(), "\n") {
		t.Fatalf("want one line, prefixed once, wrapping azidentity's error: %q", err)
	}
	if sim.Stats().Requests["$batch"] != 0 {
		t.Fatal("a $batch was sent without a token")
	}
}

func TestTenThousandUsersIn25Calls(t *testing.T) {
	sim := startSim(t, graphsim.DefaultScenario())
	c := newClient(t, sim)
	res, err := c.GetSchedules(context.Background(), emails(10_000), window())
	if err != nil {
		t.Fatal(err)
	}
	st := sim.Stats()
	t.Logf("10,000 users: %d $batch calls, %d sub-requests", st.Requests["$batch"], st.SubRequests)
	if st.Requests["$batch"] != 25 || st.SubRequests != 500 || len(res.Availability) != 10_000 {
		t.Fatalf("%d $batch calls, %d sub-requests, %d users answered; want 25, 500, 10000",
			st.Requests["$batch"], st.SubRequests, len(res.Availability))
	}
}

func TestThrottledSubRequestsWaitForRetryAfter(t *testing.T) {
	sim := startSim(t, graphsim.DefaultScenario())
	if err := sim.SetFaults(graphsim.Faults{Seed: 7, ThrottleFraction: 0.1, ThrottleRetryAfter: 1, PunishEarlyRetries: true}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, sim)
	start := time.Now()
	list := emails(4_000)
	res, err := c.GetSchedules(context.Background(), list, fixedWindow())
	if err != nil {
		t.Fatal(err)
	}
	st := sim.Stats()
	t.Logf("4,000 users, 10%% throttled: %d $batch calls, %d throttled, %d early retries, %v",
		st.Requests["$batch"], st.Throttled, st.EarlyRetries, time.Since(start).Round(time.Millisecond))
	if st.SubRequests == 0 || float64(st.Throttled)/float64(st.SubRequests) < 0.05 {
		t.Fatalf("simulator throttled %d of %d sub-requests, want about 10%%", st.Throttled, st.SubRequests)
	}
	if st.EarlyRetries != 0 || st.EarlyRetriesSameRequest != 0 {
		t.Fatalf("%d requests re-sent before their Retry-After", st.EarlyRetries)
	}
	if res.Throttled != int(st.Throttled) || res.Retries != int(st.Throttled) || res.Calls != int(st.Requests["$batch"]) {
		t.Fatalf("reported %d throttled, %d retries, %d calls; the simulator saw %d throttled, %d $batch calls",
			res.Throttled, res.Retries, res.Calls, st.Throttled, st.Requests["$batch"])
	}
	if len(res.Availability) != len(list) || len(res.Failures) != 0 {
		t.Fatalf("%d of %d users resolved, %d failures", len(res.Availability), len(list), len(res.Failures))
	}
	if time.Since(start) < time.Second {
		t.Fatal("finished before the 1 s Retry-After could have passed")
	}
}

func TestWholeBatchThrottleHonoursRetryAfter(t *testing.T) {
	sim := startSim(t, graphsim.DefaultScenario())
	// The first $batch is refused whole with 429 and Retry-After 1; then the throttling lifts.
	if err := sim.SetFaults(graphsim.Faults{BatchThrottleFraction: 1, ThrottleRetryAfter: 1, PunishEarlyRetries: true}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for sim.Stats().ThrottledByReason["batch"] == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		_ = sim.SetFaults(graphsim.Faults{PunishEarlyRetries: true})
	}()
	c := newClient(t, sim)
	start := time.Now()
	res, err := c.GetSchedules(context.Background(), emails(1_200), window())
	if err != nil {
		t.Fatal(err)
	}
	st := sim.Stats()
	if st.ThrottledByReason["batch"] != 1 || st.EarlyRetries != 0 || len(res.Availability) != 1_200 {
		t.Fatalf("%d batches throttled, %d early retries, %d users resolved", st.ThrottledByReason["batch"], st.EarlyRetries, len(res.Availability))
	}
	if time.Since(start) < time.Second {
		t.Fatal("finished before the batch's Retry-After had passed")
	}
}

func TestUnknownUsersAndUnlicensedMailbox(t *testing.T) {
	sc := graphsim.DefaultScenario()
	list := emails(400)
	sc.Mailboxes = map[string]*graphsim.Mailbox{}
	for i := 0; i < len(list); i += 20 { // 5% unknown users, one per sub-request, never the first
		sc.Mailboxes[list[i+7]] = &graphsim.Mailbox{Missing: true}
	}
	sc.Mailboxes[list[40]] = &graphsim.Mailbox{Unlicensed: true} // the URL mailbox of sub-request 3
	sc.Mailboxes[list[61]] = &graphsim.Mailbox{ScheduleError: "ErrorSomethingNew"}
	sim := startSim(t, sc)
	c := newClient(t, sim)
	res, err := c.GetSchedules(context.Background(), list, window())
	if err != nil {
		t.Fatal(err)
	}
	classes := map[string]int{}
	for _, f := range res.Failures {
		classes[f.Class]++
		if f.Class == "unknown" && (f.Code != "ErrorSomethingNew" || f.Email != list[61]) {
			t.Fatalf("unknown error not reported in full: %+v", f)
		}
	}
	t.Logf("failures by class: %v; %d users resolved", classes, len(res.Availability))
	if classes["not_found"] != 21 || classes["unknown"] != 1 || len(res.Failures) != 22 {
		t.Fatalf("failures by class %v, want 20 unknown users + the unlicensed one as not_found, 1 unknown", classes)
	}
	if len(res.Availability) != 400-22 {
		t.Fatalf("%d users resolved, want 378: the unlicensed mailbox's sub-request lost its other users", len(res.Availability))
	}
	for _, e := range list[41:60] {
		if _, ok := res.Availability[e]; !ok && sc.Mailboxes[e] == nil {
			t.Fatalf("%s, in the sub-request whose URL mailbox is unlicensed, was lost", e)
		}
	}
}

func TestPersistentServerErrorsFailWithinBudget(t *testing.T) {
	sim := startSim(t, graphsim.DefaultScenario())
	list := emails(400)
	// One sub-request's mailbox fails forever; the rest of the batch is fine.
	if err := sim.SetFaults(graphsim.Faults{FailMailboxes: []string{list[20]}}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, sim)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	res, err := c.GetSchedules(ctx, list, window())
	if err == nil {
		t.Fatal("no error although a sub-request never succeeded")
	}
	calls := sim.Stats().Requests["$batch"]
	t.Logf("persistent 503: gave up after %v and %d $batch calls: %v", time.Since(start).Round(time.Millisecond), calls, err)
	if calls > 4 || time.Since(start) > 20*time.Second {
		t.Fatalf("%d calls in %v: retries are not bounded", calls, time.Since(start))
	}
	if !strings.HasPrefix(err.Error(), "graph: ") || strings.Count(err.Error(), "graph: ") != 1 || !strings.Contains(err.Error(), "503") {
		t.Fatalf("error %q: want it prefixed once and naming the status", err)
	}
	if len(res.Availability) != 380 {
		t.Fatalf("%d users resolved; the 380 users of healthy sub-requests must be kept", len(res.Availability))
	}
	// The whole batch failing: the same bound.
	sim.ResetStats()
	if err := sim.SetFaults(graphsim.Faults{BatchServerErrorFraction: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetSchedules(ctx, list, window()); err == nil || sim.Stats().Requests["$batch"] > 4 {
		t.Fatalf("whole-batch 5xx: err %v after %d calls", err, sim.Stats().Requests["$batch"])
	}
}

func TestSubRequestServerErrorsAreRetried(t *testing.T) {
	sim := startSim(t, graphsim.DefaultScenario())
	if err := sim.SetFaults(graphsim.Faults{Seed: 11, ServerErrorFraction: 0.2}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, sim)
	res, err := c.GetSchedules(context.Background(), emails(2_000), fixedWindow())
	if err != nil {
		t.Fatal(err)
	}
	st := sim.Stats()
	t.Logf("2,000 users, 20%% sub-request 5xx: %d injected, %d $batch calls", st.ServerErrors, st.Requests["$batch"])
	if st.ServerErrors == 0 || len(res.Availability) != 2_000 {
		t.Fatalf("%d 5xx injected, %d users resolved", st.ServerErrors, len(res.Availability))
	}
	if st.Requests["$batch"] > 5*4 {
		t.Fatalf("%d $batch calls for 5 batches: retries are not grouped", st.Requests["$batch"])
	}
}

func TestMailboxRateLimit(t *testing.T) {
	sim, err := graphsim.Start(graphsim.Config{Scenario: graphsim.DefaultScenario(), MailboxRateLimit: 2, MailboxRateWindow: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	c := newClient(t, sim)
	list := emails(40)
	for i := 0; i < 5; i++ { // from the third call on, over 2 requests per second per mailbox
		res, err := c.GetSchedules(context.Background(), list, window())
		if err != nil || len(res.Availability) != 40 {
			t.Fatalf("call %d: %v, %d resolved", i, err, len(res.Availability))
		}
	}
	st := sim.Stats()
	if st.ThrottledByReason["rate"] == 0 || st.EarlyRetries != 0 {
		t.Fatalf("rate throttling: %d throttled, %d early retries", st.ThrottledByReason["rate"], st.EarlyRetries)
	}
}

func TestRefusedURLMailboxIsNotNamedAgain(t *testing.T) {
	sc := graphsim.DefaultScenario()
	list := emails(400)
	sc.Mailboxes = map[string]*graphsim.Mailbox{list[40]: {Missing: true}} // the URL mailbox of sub-request 3
	sim := startSim(t, sc)
	c := newClient(t, sim)
	for i, want := range []int64{2, 1} { // the refused sub-request sent again, then named through another user
		sim.ResetStats()
		res, err := c.GetSchedules(context.Background(), list, window())
		if err != nil {
			t.Fatal(err)
		}
		if got := sim.Stats().Requests["$batch"]; got != want || len(res.Availability) != 399 {
			t.Fatalf("call %d: %d $batch calls and %d users resolved; want %d and 399", i+1, got, len(res.Availability), want)
		}
	}
}

func TestRerouteSkipsMailboxesRefusedBefore(t *testing.T) {
	sc := graphsim.DefaultScenario()
	list := emails(40)
	sc.Mailboxes = map[string]*graphsim.Mailbox{list[0]: {Missing: true}, list[20]: {Missing: true}}
	sim := startSim(t, sc)
	c := newClient(t, sim)
	if _, err := c.GetSchedules(context.Background(), list[:20], window()); err != nil { // learns list[0]
		t.Fatal(err)
	}
	// A sub-request whose first user has no mailbox and whose second is the one refused before:
	// sent again through the third, not the known-refused second.
	sim.ResetStats()
	res, err := c.GetSchedules(context.Background(), append([]string{list[20], list[0]}, list[21:39]...), window())
	if err != nil {
		t.Fatal(err)
	}
	if got := sim.Stats().Requests["$batch"]; got != 2 || len(res.Availability) != 18 {
		t.Fatalf("%d $batch calls and %d users resolved; want 2 and 18", got, len(res.Availability))
	}
}

// Mattermost hands a shard's users over in any order: the sub-requests still hold the same users
// every call, so the mailboxes refused in a URL are met once, not again by new sub-requests.
func TestAShardInAnotherOrderMeetsNoNewRefusal(t *testing.T) {
	sc := graphsim.DefaultScenario()
	list := emails(400)
	sc.Mailboxes = map[string]*graphsim.Mailbox{}
	for i := 0; i < len(list); i += 3 { // a third without a mailbox
		sc.Mailboxes[list[i]] = &graphsim.Mailbox{Missing: true}
	}
	sim := startSim(t, sc)
	c := newClient(t, sim)
	rng := rand.New(rand.NewPCG(1, 2))
	for call := 1; call <= 3; call++ {
		shuffled := slices.Clone(list)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		sim.ResetStats()
		if _, err := c.GetSchedules(context.Background(), shuffled, window()); err != nil {
			t.Fatal(err)
		}
		if got := sim.Stats().Requests["$batch"]; call > 1 && got != 1 {
			t.Fatalf("call %d, the same users in another order: %d $batch calls, want 1", call, got)
		}
	}
}
