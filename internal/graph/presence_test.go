package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/internal/graph"
)

// presenceRoles are the permissions calstatus asks for with presence on.
var presenceRoles = []string{"Calendars.ReadBasic.All", "Presence.Read.All", "User.Read.All"}

func startSimWith(t *testing.T, cfg graphsim.Config) *graphsim.Server {
	t.Helper()
	sim, err := graphsim.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

// teamsScenario has n users with nothing on their calendars, the first few in Teams states of
// their own now.
func teamsScenario(n int) *graphsim.Scenario {
	now := time.Now().UTC()
	sc := &graphsim.Scenario{Generator: graphsim.Generator{Disabled: true}, Mailboxes: map[string]*graphsim.Mailbox{}}
	for _, e := range emails(n) {
		sc.Mailboxes[e] = &graphsim.Mailbox{Events: []graphsim.Event{}}
	}
	list := emails(n)
	around := func(activity string) []graphsim.PresenceWindow {
		return []graphsim.PresenceWindow{{Start: now.Add(-time.Hour), End: now.Add(time.Hour), Activity: activity}}
	}
	sc.Mailboxes[list[0]].Presence = around("InACall")
	sc.Mailboxes[list[1]].Presence = around("Presenting")
	sc.Mailboxes[list[2]].AutomaticReplies = []graphsim.AutomaticReplies{{Start: now.Add(-time.Hour), End: now.Add(24 * time.Hour), Message: outlookReply}}
	sc.Mailboxes[list[3]].NoTeams = true
	return sc
}

// outlookReply is an automatic reply as Outlook stores it, and autoReply its plain text.
const (
	outlookReply = "<html>\r\n<head>\r\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\r\n" +
		"<style type=\"text/css\" style=\"display:none;\"> P {margin-top:0;margin-bottom:0;} </style>\r\n</head>\r\n" +
		"<body dir=\"ltr\">\r\n<div style=\"font-family: Calibri, Arial, Helvetica, sans-serif; font-size: 12pt;\">\r\n" +
		"Back on <b>Monday</b>.<br>\r\n</div>\r\n<div>For anything urgent, contact Sam &amp; Alex.</div>\r\n</body>\r\n</html>\r\n"
	autoReply = "Back on Monday.\nFor anything urgent, contact Sam & Alex."
)

// oofSettings is a RoundTripper that replaces the outOfOfficeSettings of the users in set in
// getPresencesByUserId answers: Graph answers what the simulator does not make, such as a message
// kept while automatic replies are off.
type oofSettings struct {
	base http.RoundTripper
	set  map[string]string // object id → outOfOfficeSettings JSON
}

func (o oofSettings) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := o.base.RoundTrip(req)
	if err != nil || !strings.HasSuffix(req.URL.Path, "/getPresencesByUserId") || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var answer map[string]any
	if err := json.Unmarshal(body, &answer); err != nil {
		return nil, err
	}
	values, _ := answer["value"].([]any)
	for _, v := range values {
		p, _ := v.(map[string]any)
		if id, _ := p["id"].(string); o.set[id] != "" {
			p["outOfOfficeSettings"] = json.RawMessage(o.set[id])
		}
	}
	if body, err = json.Marshal(answer); err != nil {
		return nil, err
	}
	resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}

func objectIDs(list []string) []string {
	ids := make([]string, len(list))
	for i, e := range list {
		ids[i] = graphsim.ObjectID(e)
	}
	return ids
}

func TestPresenceAnswered(t *testing.T) {
	sc := teamsScenario(7)
	list := emails(7)
	now := time.Now().UTC()
	// Out of office by the calendar only: isOutOfOffice true, message null.
	sc.Mailboxes[list[5]].Events = []graphsim.Event{{Status: graphsim.StatusOOF, Start: now.Add(-time.Hour), End: now.Add(time.Hour)}}
	sim := startSimWith(t, graphsim.Config{Scenario: sc, Roles: presenceRoles})
	// Automatic replies written but off (scheduled for later): a message, isOutOfOffice false.
	c := newClientWith(t, sim, func(cfg *graph.Config) {
		cfg.Transport = oofSettings{base: cfg.Transport, set: map[string]string{
			graphsim.ObjectID(list[6]): `{"isOutOfOffice": false, "message": "<p>Away next week</p>"}`,
		}}
	})
	unknown := "7e0c4b1a-2d3f-4e5a-8b6c-9d0e1f2a3b4c"
	ids := append(objectIDs(list), unknown, "user00000@contoso.example", strings.ToUpper(graphsim.ObjectID(list[0])))
	res, err := c.GetPresences(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]graph.Presence{
		graphsim.ObjectID(list[0]): {Availability: "Busy", Activity: "InACall"},
		graphsim.ObjectID(list[1]): {Availability: "DoNotDisturb", Activity: "Presenting"},
		graphsim.ObjectID(list[2]): {Availability: "Available", Activity: "OutOfOffice", OutOfOffice: true, OOFMessage: outlookReply, AutoReply: autoReply},
		graphsim.ObjectID(list[3]): {Availability: "PresenceUnknown", Activity: "PresenceUnknown"},
		graphsim.ObjectID(list[4]): {Availability: "Available", Activity: "Available"},
		graphsim.ObjectID(list[5]): {Availability: "Available", Activity: "OutOfOffice", OutOfOffice: true},
		graphsim.ObjectID(list[6]): {Availability: "Available", Activity: "Available", OOFMessage: "<p>Away next week</p>"},
	}
	if len(res.Presence) != len(want) {
		t.Fatalf("presence %+v", res.Presence)
	}
	for id, p := range want {
		if res.Presence[id] != p {
			t.Fatalf("%s: %+v, want %+v", id, res.Presence[id], p)
		}
	}
	classes := map[string]string{}
	for _, f := range res.Failures {
		classes[f.Email] = f.Class
	}
	if len(res.Failures) != 2 || classes[unknown] != "not_found" || classes["user00000@contoso.example"] != "invalid" {
		t.Fatalf("failures %+v", res.Failures)
	}
	if st := sim.Stats(); res.Calls != 1 || st.PresenceCalls != 1 || st.PresenceIDs != 8 {
		t.Fatalf("%d calls; simulator saw %d calls for %d ids", res.Calls, st.PresenceCalls, st.PresenceIDs)
	}

	// Nothing to ask: no call.
	sim.ResetStats()
	res, err = c.GetPresences(context.Background(), nil)
	if err != nil || res.Calls != 0 || len(res.Presence) != 0 || sim.Stats().Requests["getPresencesByUserId"] != 0 {
		t.Fatalf("no ids: %+v, %v", res, err)
	}
	// Only ids that are none: no call either.
	res, err = c.GetPresences(context.Background(), []string{"alice", ""})
	if err != nil || res.Calls != 0 || len(res.Failures) != 2 || res.Failures[0].Class != "invalid" || sim.Stats().Requests["getPresencesByUserId"] != 0 {
		t.Fatalf("invalid ids: %+v, %v", res, err)
	}
}

func TestPresence651IDsInTwoCalls(t *testing.T) {
	sim := startSimWith(t, graphsim.Config{Scenario: teamsScenario(651), Roles: presenceRoles})
	c := newClient(t, sim)
	res, err := c.GetPresences(context.Background(), objectIDs(emails(651)))
	if err != nil {
		t.Fatal(err)
	}
	st := sim.Stats()
	if res.Calls != 2 || st.PresenceCalls != 2 || st.PresenceIDs != 651 || len(res.Presence) != 651 || len(res.Failures) != 0 {
		t.Fatalf("%d calls (simulator: %d for %d ids), %d answered, %d failures", res.Calls, st.PresenceCalls, st.PresenceIDs, len(res.Presence), len(res.Failures))
	}
	// 650 fit one.
	sim.ResetStats()
	if res, err := c.GetPresences(context.Background(), objectIDs(emails(650))); err != nil || res.Calls != 1 || sim.Stats().PresenceCalls != 1 {
		t.Fatalf("650 ids: %d calls, %v", res.Calls, err)
	}
}

// sleeps records the waits the client asked Config.Sleep for, and waits them.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (s *sleeps) total() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sum time.Duration
	for _, d := range s.d {
		sum += d
	}
	return sum
}

// Over the app's presence limit: Graph answers 429 with Retry-After, which is waited out through
// Config.Sleep before the call goes again.
func TestPresenceThrottledThenAnswered(t *testing.T) {
	sim := startSimWith(t, graphsim.Config{Scenario: teamsScenario(5), Roles: presenceRoles, PresenceRateLimit: 1, PresenceRateWindow: time.Second,
		Faults: graphsim.Faults{PunishEarlyRetries: true}})
	var waits sleeps
	c := newClientWith(t, sim, func(cfg *graph.Config) { cfg.Sleep = waits.sleep })
	ids := objectIDs(emails(3))
	if res, err := c.GetPresences(context.Background(), ids); err != nil || res.Throttled != 0 {
		t.Fatalf("first call: %+v, %v", res, err)
	}
	res, err := c.GetPresences(context.Background(), ids) // within the second: over the limit
	if err != nil {
		t.Fatal(err)
	}
	st := sim.Stats()
	t.Logf("throttled once: %d calls, %d retries, waited %v", res.Calls, res.Retries, waits.total())
	if len(res.Presence) != 3 || len(res.Failures) != 0 || res.Calls != 2 || res.Retries != 1 || res.Throttled != 1 {
		t.Fatalf("%d answered, failures %+v, %d calls, %d retries, %d throttled", len(res.Presence), res.Failures, res.Calls, res.Retries, res.Throttled)
	}
	if st.ThrottledByReason["presenceRate"] != 1 || st.EarlyRetries != 0 {
		t.Fatalf("simulator: %d throttled, %d early retries", st.ThrottledByReason["presenceRate"], st.EarlyRetries)
	}
	if waits.total() < 500*time.Millisecond { // Retry-After: 1, asked for at most a second earlier
		t.Fatalf("waited %v through Config.Sleep", waits.total())
	}
}

// A Retry-After past the invocation's deadline: the ids fail as throttled, the caller carries on.
func TestPresenceRetryPastDeadlineFails(t *testing.T) {
	sim := startSimWith(t, graphsim.Config{Scenario: teamsScenario(5), Roles: presenceRoles, PresenceRateLimit: 1, PresenceRateWindow: time.Minute})
	c := newClient(t, sim)
	ids := objectIDs(emails(3))
	if _, err := c.GetPresences(context.Background(), ids); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := c.GetPresences(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failures) != 3 || res.Failures[0].Class != "throttled" || res.Throttled != 1 || res.Calls != 1 {
		t.Fatalf("failures %+v, %d throttled, %d calls", res.Failures, res.Throttled, res.Calls)
	}
	t.Logf("failure: %+v", res.Failures[0])
	// The hold is the process's: a call now waits too, and is given up the same way without a call.
	res, err = c.GetPresences(ctx, ids)
	if err != nil || res.Calls != 0 || len(res.Failures) != 3 || res.Failures[0].Class != "throttled" {
		t.Fatalf("held: %+v, %v", res, err)
	}
}

// Without Presence.Read.All every id is a "forbidden" failure, not an error, and the call is not
// repeated.
func TestPresenceForbidden(t *testing.T) {
	sim := startSimWith(t, graphsim.Config{Scenario: teamsScenario(5), Roles: []string{"Calendars.ReadBasic.All"}})
	c := newClient(t, sim)
	ids := objectIDs(emails(3))
	res, err := c.GetPresences(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Presence) != 0 || len(res.Failures) != 3 || res.Calls != 1 || sim.Stats().PresenceCalls != 1 {
		t.Fatalf("%+v", res)
	}
	for _, f := range res.Failures {
		if f.Class != "forbidden" || f.Status != 403 || f.Code != "Forbidden" || !strings.Contains(f.Message, "Presence.Read.All") {
			t.Fatalf("failure %+v", f)
		}
	}
	// The calendar is still read.
	if r, err := c.GetSchedules(context.Background(), emails(3), window()); err != nil || len(r.Availability) != 3 {
		t.Fatalf("getSchedule: %v", err)
	}
}

// A call Graph accepts and never answers costs one AttemptTimeout, then goes again.
func TestPresenceHungCallIsRetried(t *testing.T) {
	sim := startSimWith(t, graphsim.Config{Scenario: teamsScenario(5), Roles: presenceRoles,
		Faults: graphsim.Faults{FaultEndpoints: []string{"getPresencesByUserId"}, HangFraction: 1}})
	go func() {
		for sim.Stats().Hung == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		_ = sim.SetFaults(graphsim.Faults{})
	}()
	c := newClientWith(t, sim, func(cfg *graph.Config) { cfg.AttemptTimeout = 200 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := c.GetPresences(ctx, objectIDs(emails(3)))
	if err != nil {
		t.Fatal(err)
	}
	if st := sim.Stats(); len(res.Presence) != 3 || res.Calls != 2 || res.Retries != 1 || st.Hung != 1 || st.PresenceCalls != 1 {
		t.Fatalf("%d answered, %d calls, %d retries; simulator: %d hung, %d answered calls", len(res.Presence), res.Calls, res.Retries, st.Hung, st.PresenceCalls)
	}

	// Never answering: the ids fail after MaxAttempts, as Graph not answering ("graph").
	sim.SetFaults(graphsim.Faults{FaultEndpoints: []string{"getPresencesByUserId"}, HangFraction: 1})
	res, err = c.GetPresences(ctx, objectIDs(emails(3)))
	if err != nil || res.Calls != 4 || len(res.Failures) != 3 || res.Failures[0].Class != "graph" || !strings.Contains(res.Failures[0].Message, "no answer to getPresencesByUserId within 200ms") {
		t.Fatalf("always hung: %+v, %v", res, err)
	}
}

func TestPresenceServerErrorsAreRetried(t *testing.T) {
	sim := startSimWith(t, graphsim.Config{Scenario: teamsScenario(5), Roles: presenceRoles,
		Faults: graphsim.Faults{FaultEndpoints: []string{"getPresencesByUserId"}, ServerErrorFraction: 1}})
	c := newClient(t, sim)
	res, err := c.GetPresences(context.Background(), objectIDs(emails(3)))
	if err != nil || res.Calls != 4 || len(res.Failures) != 3 || res.Failures[0].Class != "server" {
		t.Fatalf("%+v, %v", res, err)
	}
	t.Logf("after 4 calls: %+v", res.Failures[0])
}

func TestPresenceErrors(t *testing.T) {
	sim := startSimWith(t, graphsim.Config{Scenario: teamsScenario(5), Roles: presenceRoles})
	cred, err := graph.NewCredential(graph.CredentialConfig{TenantID: sim.TenantID(), ClientID: sim.ClientID(),
		ClientSecret: "wrong", AuthorityHost: sim.URL(), Transport: sim.Client()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := graph.New(graph.Config{BaseURL: sim.GraphURL(), Credential: cred, Transport: sim.Client().Transport})
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"presence": func() error { _, err := c.GetPresences(context.Background(), objectIDs(emails(3))); return err },
		"lookup":   func() error { _, err := c.LookupUserIDs(context.Background(), emails(3)); return err },
	} {
		err := call()
		if !graph.IsCredentialError(err) || !strings.Contains(err.Error(), "AADSTS7000215") || strings.Count(err.Error(), "graph: ") != 1 || !strings.HasPrefix(err.Error(), "graph: ") {
			t.Fatalf("%s, wrong secret: %v", name, err)
		}
		t.Logf("%s, wrong secret: %v", name, err)
	}
	if st := sim.Stats(); st.Requests["getPresencesByUserId"] != 0 || st.Requests["$batch"] != 0 {
		t.Fatal("a call went out without a token")
	}

	// The context ended: an error, saying so.
	good := newClient(t, sim)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = good.GetPresences(ctx, objectIDs(emails(3)))
	if !errors.Is(err, context.Canceled) || strings.Count(err.Error(), "graph: ") != 1 {
		t.Fatalf("cancelled: %v", err)
	}
}
