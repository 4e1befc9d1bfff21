package graph_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/internal/calendar"
	"github.com/calstatus/calstatus/internal/graph"
)

// One sub-response with a text body (the SDK's own batch parsing would fail all 20 on it) costs
// only its 20 users, in the same single $batch call.
func TestTextSubResponseCostsOnlyItsUsers(t *testing.T) {
	sim := startSim(t, graphsim.DefaultScenario())
	list := emails(400)
	if err := sim.SetFaults(graphsim.Faults{TextBodyMailboxes: []string{list[40]}}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, sim)
	res, err := c.GetSchedules(context.Background(), list, window())
	if err != nil {
		t.Fatal(err)
	}
	if calls := sim.Stats().Requests["$batch"]; calls != 1 || res.Calls != 1 {
		t.Fatalf("%d $batch calls (client says %d), want 1", calls, res.Calls)
	}
	if len(res.Availability) != 380 || len(res.Failures) != 20 {
		t.Fatalf("%d answered, %d failures; want 380 and 20", len(res.Availability), len(res.Failures))
	}
	t.Logf("first failure: %+v", res.Failures[0])
	for i, f := range res.Failures {
		if f.Class != "malformed" || f.Mailbox != list[40] || f.Email != list[40+i] || !strings.Contains(f.Message, "not JSON") {
			t.Fatalf("failure %+v", f)
		}
	}
}

// A sub-response whose body is the base64 of its JSON answer is read like any other.
func TestBase64SubResponseIsDecoded(t *testing.T) {
	sc := graphsim.DefaultScenario()
	sim := startSim(t, sc)
	list := emails(40)
	if err := sim.SetFaults(graphsim.Faults{Base64BodyMailboxes: []string{list[0]}}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, sim)
	w := window()
	res, err := c.GetSchedules(context.Background(), list, w)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Availability) != 40 || len(res.Failures) != 0 || res.Calls != 1 {
		t.Fatalf("%d answered, %d failures %+v, %d calls", len(res.Availability), len(res.Failures), res.Failures, res.Calls)
	}
	for _, e := range list[:20] {
		if got, want := res.Availability[e].At(w.Start).Status, calendar.ParseStatus(sc.StatusAt(e, w.Start)); got != want {
			t.Fatalf("%s: %s, calendar says %s", e, got, want)
		}
	}
}

// A user with an unreadable item gets no availability (not "free"), and only that user.
func TestMalformedItemFailsOnlyItsUser(t *testing.T) {
	w := window()
	list := emails(20)
	sc := graphsim.DefaultScenario()
	sc.Mailboxes = map[string]*graphsim.Mailbox{list[5]: {Events: []graphsim.Event{
		{Status: graphsim.StatusBusy, Start: w.Start.Add(-time.Hour), End: w.Start.Add(time.Hour), Subject: "Review"},
	}}}
	sim := startSim(t, sc)
	if err := sim.SetFaults(graphsim.Faults{MalformedItemAddresses: []string{list[5]}}); err != nil {
		t.Fatal(err)
	}
	res, err := newClient(t, sim).GetSchedules(context.Background(), list, w)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("failures: %+v", res.Failures)
	if _, ok := res.Availability[list[5]]; ok || len(res.Availability) != 19 {
		t.Fatalf("%d answered; the user with the unreadable item must have no availability", len(res.Availability))
	}
	if len(res.Failures) != 1 || res.Failures[0].Email != list[5] || res.Failures[0].Class != "malformed" ||
		!strings.Contains(res.Failures[0].Message, `"not a date"`) || strings.Contains(res.Failures[0].Message, "Review") {
		t.Fatalf("failures %+v", res.Failures)
	}
}

// A mailbox that hides its items is read from its availability view: one period per run of slots.
func TestHiddenItemsReadFromView(t *testing.T) {
	start := time.Now().UTC().Truncate(time.Minute)
	w := graph.Window{Start: start, End: start.Add(30 * time.Minute)}
	list := emails(3)
	sc := graphsim.DefaultScenario()
	sc.Mailboxes = map[string]*graphsim.Mailbox{list[1]: {HideItems: true, Events: []graphsim.Event{
		{Status: graphsim.StatusBusy, Start: start.Add(-30 * time.Minute), End: start.Add(12 * time.Minute)},
		{Status: graphsim.StatusTentative, Start: start.Add(20 * time.Minute), End: start.Add(25 * time.Minute)},
	}}}
	sim := startSim(t, sc)
	res, err := newClient(t, sim).GetSchedules(context.Background(), list, w)
	if err != nil || len(res.Failures) != 0 {
		t.Fatalf("%v %+v", err, res.Failures)
	}
	av := res.Availability[list[1]]
	want := []calendar.Event{ // view "222010" at 5 minutes
		{Start: start, End: start.Add(15 * time.Minute), Status: calendar.Busy, FromView: true},
		{Start: start.Add(20 * time.Minute), End: start.Add(25 * time.Minute), Status: calendar.Tentative, FromView: true},
	}
	if len(av.Items) != len(want) || len(av.Events) != len(want) {
		t.Fatalf("items %+v, events %+v", av.Items, av.Events)
	}
	for i := range want {
		if !sameEvent(av.Items[i], want[i]) || !sameEvent(av.Events[i], want[i]) {
			t.Fatalf("period %d: item %+v, event %+v, want %+v", i, av.Items[i], av.Events[i], want[i])
		}
	}
	for _, e := range res.Availability[list[0]].Items {
		if e.FromView {
			t.Fatalf("%+v: a mailbox with items is read from them", e)
		}
	}
}

func sameEvent(a, b calendar.Event) bool {
	return a.Start.Equal(b.Start) && a.End.Equal(b.End) && a.Status == b.Status && a.FromView == b.FromView
}
