package graph_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/internal/calendar"
	"github.com/calstatus/calstatus/internal/graph"
)

// These tests run the real azidentity and msgraph SDK code paths against the Graph simulator.

func newClient(t *testing.T, sim *graphsim.Server) *graph.Client {
	t.Helper()
	cred, err := graph.NewCredential(graph.CredentialConfig{TenantID: sim.TenantID(), ClientID: sim.ClientID(),
		ClientSecret: sim.ClientSecret(), AuthorityHost: sim.URL(), Transport: sim.Client()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := graph.New(graph.Config{BaseURL: sim.GraphURL(), Credential: cred, Transport: sim.Client().Transport})
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
	if sim.Stats().Requests["$batch"] != 0 {
		t.Fatal("a $batch was sent without a token")
	}
}
