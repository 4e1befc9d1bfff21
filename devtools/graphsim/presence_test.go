package graphsim

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var presenceTestRoles = []string{"Calendars.ReadBasic.All", "Presence.Read.All", "User.Read.All"}

func presenceScenario() *Scenario {
	return &Scenario{
		Generator: Generator{Seed: 42, Disabled: true},
		Mailboxes: map[string]*Mailbox{
			"alice@contoso.example": {
				Events: []Event{{Status: StatusBusy, Start: at(10, 0), End: at(11, 0), Subject: "Design review"}},
				Presence: []PresenceWindow{
					{Start: at(9, 0), End: at(9, 30), Activity: "InACall"},
					{Start: at(10, 15), End: at(10, 45), Availability: "Busy", Activity: "InAConferenceCall"},
					{Start: at(10, 20), End: at(10, 30), Availability: "DoNotDisturb", Activity: "Presenting"},
				},
			},
			"bob@contoso.example": {
				AutomaticReplies: []AutomaticReplies{{Start: at(8, 0), End: at(18, 0), Message: "<p>Away until <b>Monday</b>.</p>"}},
				Presence:         []PresenceWindow{{Start: at(12, 0), End: at(12, 30), Activity: "InACall"}},
			},
			"carol@contoso.example": {Events: []Event{{Status: StatusOOF, Start: testDay, End: testDay.AddDate(0, 0, 1), Subject: "Vacation"}}},
			"erin@contoso.example":  {NoTeams: true},
			"frank@contoso.example": {ID: "0b7a6c5d-4e3f-4a2b-9c1d-0e9f8a7b6c5d"},
			"ghost@contoso.example": {Missing: true},
		},
	}
}

func presenceBody(ids ...string) map[string]any { return map[string]any{"ids": ids} }

type presenceAnswer struct {
	Value []Presence `json:"value"`
}

func postPresences(t *testing.T, s *Server, tok string, ids ...string) (httpResult, map[string]Presence) {
	t.Helper()
	r := doJSON(t, s, "POST", "/v1.0/communications/getPresencesByUserId", tok, presenceBody(ids...), nil)
	out := map[string]Presence{}
	if r.status == http.StatusOK {
		var a presenceAnswer
		if err := json.Unmarshal(r.body, &a); err != nil {
			t.Fatalf("%s: %v", r.body, err)
		}
		for _, p := range a.Value {
			out[p.ID] = p
		}
	}
	return r, out
}

func TestPresenceWireFormat(t *testing.T) {
	clock := newFakeClock(at(10, 25))
	s := startSim(t, Config{Scenario: presenceScenario(), Now: clock.Now, Roles: presenceTestRoles})
	tok := fetchToken(t, s)
	unknown := "6f1e2d3c-4b5a-4697-8877-665544332211"
	r := doJSON(t, s, "POST", "/v1.0/communications/getPresencesByUserId", tok, presenceBody(
		ObjectID("alice@contoso.example"), ObjectID("Bob@Contoso.example"), unknown, ObjectID("ghost@contoso.example"),
		ObjectID("carol@contoso.example"), strings.ToUpper(ObjectID("alice@contoso.example"))), nil)
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	mustContain(t, r.header.Get("Content-Type"), "application/json")
	var got any
	_ = json.Unmarshal(r.body, &got)
	want := `{
	  "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(microsoft.graph.presence)",
	  "value": [
	    {"id": "` + ObjectID("alice@contoso.example") + `", "availability": "DoNotDisturb", "activity": "Presenting",
	     "outOfOfficeSettings": {"isOutOfOffice": false, "message": null}},
	    {"id": "` + ObjectID("bob@contoso.example") + `", "availability": "Available", "activity": "OutOfOffice",
	     "outOfOfficeSettings": {"isOutOfOffice": true, "message": "<p>Away until <b>Monday</b>.</p>"}},
	    {"id": "` + ObjectID("carol@contoso.example") + `", "availability": "Available", "activity": "OutOfOffice",
	     "outOfOfficeSettings": {"isOutOfOffice": true, "message": null}}
	  ]
	}`
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, w) {
		t.Fatalf("got\n%s", r.body)
	}

	// Over the day: a call, a meeting, a conference call with a presentation in it, the meeting
	// again, nothing; automatic replies with a call in them.
	alice, bob := ObjectID("alice@contoso.example"), ObjectID("bob@contoso.example")
	for _, c := range []struct {
		at                 time.Time
		id, avail, act     string
		outOfOffice, noMsg bool
	}{
		{at(9, 10), alice, "Busy", "InACall", false, true},
		{at(9, 45), alice, "Available", "Available", false, true},
		{at(10, 5), alice, "Busy", "InAMeeting", false, true},
		{at(10, 16), alice, "Busy", "InAConferenceCall", false, true},
		{at(10, 35), alice, "Busy", "InAConferenceCall", false, true},
		{at(10, 50), alice, "Busy", "InAMeeting", false, true},
		{at(11, 0), alice, "Available", "Available", false, true},
		{at(12, 10), bob, "Busy", "InACall", true, false},
		{at(18, 0), bob, "Available", "Available", false, true},
	} {
		clock.Advance(c.at.Sub(clock.Now()))
		tok := fetchToken(t, s) // the day outlasts a token
		_, ps := postPresences(t, s, tok, c.id)
		p := ps[c.id]
		if p.Availability != c.avail || p.Activity != c.act || p.OutOfOfficeSettings.IsOutOfOffice != c.outOfOffice || (p.OutOfOfficeSettings.Message == nil) != c.noMsg {
			t.Fatalf("%s at %s: %+v", c.id, c.at.Format("15:04"), p)
		}
	}

	// No Teams; an id the scenario sets.
	_, ps := postPresences(t, s, fetchToken(t, s), ObjectID("erin@contoso.example"), "0B7A6C5D-4E3F-4A2B-9C1D-0E9F8A7B6C5D", ObjectID("frank@contoso.example"))
	if p := ps[ObjectID("erin@contoso.example")]; p.Availability != "PresenceUnknown" || p.Activity != "PresenceUnknown" {
		t.Fatalf("erin: %+v", p)
	}
	if len(ps) != 2 || ps["0b7a6c5d-4e3f-4a2b-9c1d-0e9f8a7b6c5d"].Activity != "Available" {
		t.Fatalf("frank is known by the id the scenario gives, only: %+v", ps)
	}
	st := s.Stats()
	if st.PresenceCalls != 11 || st.Requests["getPresencesByUserId"] != 11 || st.PresenceIDs != 6+9+3 || st.GetScheduleCalls != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPresenceLimitsAndPermission(t *testing.T) {
	s := startSim(t, Config{Scenario: presenceScenario(), Roles: presenceTestRoles})
	tok := fetchToken(t, s)
	ids := make([]string, 651)
	for i := range ids {
		ids[i] = ObjectID(fmt.Sprintf("u%d@contoso.example", i))
	}
	check := func(name string, r httpResult, status int, code, says string) {
		t.Helper()
		if r.status != status {
			t.Fatalf("%s: %d %s", name, r.status, r.body)
		}
		e := r.json(t)["error"].(map[string]any)
		inner, _ := e["innerError"].(map[string]any)
		if e["code"] != code || !strings.Contains(e["message"].(string), says) || inner["request-id"] == "" || inner["date"] == "" {
			t.Fatalf("%s: %s", name, r.body)
		}
	}
	path := "/v1.0/communications/getPresencesByUserId"
	check("651 ids", doJSON(t, s, "POST", path, tok, presenceBody(ids...), nil), 400, "BadRequest", "(651) exceeds the maximum of 650")
	if r, ps := postPresences(t, s, tok, ids[:650]...); r.status != 200 || len(ps) != 0 {
		t.Fatalf("650 ids of no user: %d, %d answered", r.status, len(ps))
	}
	check("not a GUID", doJSON(t, s, "POST", path, tok, presenceBody(ids[0], "alice@contoso.example"), nil), 400, "BadRequest", "'alice@contoso.example'")
	check("no ids", doJSON(t, s, "POST", path, tok, presenceBody(), nil), 400, "BadRequest", "at least one")
	check("not JSON", doJSON(t, s, "POST", path, tok, "{", nil), 400, "BadRequest", "JSON")
	check("GET", doJSON(t, s, "GET", path, tok, nil, nil), 405, "BadRequest", "not allowed")
	// The SDK may send the parameter in another casing.
	if r := doJSON(t, s, "POST", path, tok, `{"Ids":["`+ObjectID("alice@contoso.example")+`"]}`, nil); r.status != 200 || len(r.json(t)["value"].([]any)) != 1 {
		t.Fatalf("Ids: %d %s", r.status, r.body)
	}

	// Without Presence.Read.All: 403, whichever way the call comes.
	s.SetRoles([]string{"Calendars.ReadBasic.All", "User.Read.All"})
	tok2 := fetchToken(t, s)
	check("no role", doJSON(t, s, "POST", path, tok2, presenceBody(ids[0]), nil), 403, "Forbidden", "API requires one of 'Presence.Read.All, Presence.ReadWrite.All'. Roles on the request 'Calendars.ReadBasic.All, User.Read.All'")
	_, br := postBatch(t, s, tok2, map[string]any{"requests": []any{presenceStep("1", ids[0])}})
	if len(br.Responses) != 1 || br.Responses[0].Status != 403 {
		t.Fatalf("in a $batch: %+v", br)
	}
	// A token issued before keeps its roles, as Entra's do.
	if r, _ := postPresences(t, s, tok, ids[0]); r.status != 200 {
		t.Fatalf("old token: %d", r.status)
	}
	s.SetRoles([]string{"Presence.ReadWrite.All"})
	if r, _ := postPresences(t, s, fetchToken(t, s), ids[0]); r.status != 200 {
		t.Fatalf("Presence.ReadWrite.All: %d", r.status)
	}
	// The default roles are calstatus' without presence.
	s3 := startSim(t, Config{Scenario: presenceScenario()})
	check("default roles", doJSON(t, s3, "POST", path, fetchToken(t, s3), presenceBody(ids[0]), nil), 403, "Forbidden", "Presence.Read.All")
}

func presenceStep(id string, ids ...string) map[string]any {
	return map[string]any{"id": id, "method": "POST", "url": "/communications/getPresencesByUserId",
		"headers": map[string]string{"Content-Type": "application/json"}, "body": presenceBody(ids...)}
}

func TestPresenceInBatchIsCountedApart(t *testing.T) {
	s := startSim(t, Config{Scenario: presenceScenario(), Roles: presenceTestRoles, Now: newFakeClock(at(10, 25)).Now})
	tok := fetchToken(t, s)
	reqs := []any{
		presenceStep("p1", ObjectID("alice@contoso.example"), ObjectID("bob@contoso.example")),
		presenceStep("p2", ObjectID("carol@contoso.example")),
		batchOf([]string{"alice@contoso.example"}, testDay, func(int) []string { return []string{"bob@contoso.example"} })["requests"].([]any)[0],
	}
	r, br := postBatch(t, s, tok, map[string]any{"requests": reqs})
	if r.status != 200 || br.statuses()[200] != 3 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var a presenceAnswer
	if err := json.Unmarshal(br.Responses[br.byID()["p1"]].Body, &a); err != nil || len(a.Value) != 2 || a.Value[0].Activity != "Presenting" {
		t.Fatalf("p1: %s", br.Responses[br.byID()["p1"]].Body)
	}
	st := s.Stats()
	if st.PresenceCalls != 2 || st.PresenceIDs != 3 || st.GetScheduleCalls != 1 || st.SubRequests != 3 || st.Requests["getPresencesByUserId"] != 0 {
		t.Fatalf("stats %+v", st)
	}
	if st.MaxConcurrent != 1 || len(st.MaxConcurrentPerMailbox) != 1 {
		t.Fatalf("presence counted as a mailbox: %+v", st.MaxConcurrentPerMailbox)
	}
}

// getPresencesByUserId is limited per app (1,500 per 30 s by default), direct or batched, and
// leaves getSchedule alone.
func TestPresenceAppRateLimit(t *testing.T) {
	clock := newFakeClock(at(10, 0))
	s := startSim(t, Config{Scenario: presenceScenario(), Roles: presenceTestRoles, Now: clock.Now, PresenceRateLimit: 3, PresenceRateWindow: 30 * time.Second})
	tok := fetchToken(t, s)
	id := ObjectID("alice@contoso.example")
	for i := range 2 {
		if r, _ := postPresences(t, s, tok, id); r.status != 200 {
			t.Fatalf("call %d: %d", i, r.status)
		}
		clock.Advance(10 * time.Second)
	}
	// The third goes through in a $batch with a fourth, which is refused until the first ages out.
	_, br := postBatch(t, s, tok, map[string]any{"requests": []any{presenceStep("a", id), presenceStep("b", ObjectID("bob@contoso.example"))}})
	if st := br.statuses(); st[200] != 1 || st[429] != 1 {
		t.Fatalf("batch: %v", st)
	}
	clock.Advance(inFlight)
	r, _ := postPresences(t, s, tok, id)
	if r.status != 429 || r.header.Get("Retry-After") != "10" || r.json(t)["error"].(map[string]any)["code"] != "TooManyRequests" {
		t.Fatalf("over the limit: %d %v %s", r.status, r.header, r.body)
	}
	if r := doJSON(t, s, "POST", "/v1.0/users/alice@contoso.example/calendar/getSchedule", tok, scheduleBody(at(10, 0), at(11, 0), 15, "alice@contoso.example"), nil); r.status != 200 {
		t.Fatalf("getSchedule throttled with presence: %d", r.status)
	}
	clock.Advance(5 * time.Second)
	postPresences(t, s, tok, id)
	// The last two came before the Retry-After given to the batch's second call.
	st := s.Stats()
	if st.ThrottledByReason["presenceRate"] != 3 || st.EarlyRetries != 2 || st.PresenceCalls != 3 {
		t.Fatalf("stats %+v", st)
	}
	clock.Advance(6 * time.Second)
	if r, _ := postPresences(t, s, tok, id); r.status != 200 {
		t.Fatalf("after the window: %d", r.status)
	}
}

func TestPresenceFaultsByEndpoint(t *testing.T) {
	clock := newFakeClock(at(10, 0))
	s := startSim(t, Config{Scenario: presenceScenario(), Roles: presenceTestRoles, Now: clock.Now})
	tok := fetchToken(t, s)
	id := ObjectID("alice@contoso.example")
	schedule := func() int {
		return doJSON(t, s, "POST", "/v1.0/users/alice@contoso.example/calendar/getSchedule", tok, scheduleBody(at(10, 0), at(11, 0), 15, "alice@contoso.example"), nil).status
	}
	lookup := func() int {
		return doJSON(t, s, "GET", "/v1.0/users?"+filterQuery("mail eq 'alice@contoso.example'"), tok, nil, nil).status
	}

	if err := s.SetFaults(Faults{FaultEndpoints: []string{"getPresencesByUserId"}, ThrottleFraction: 1, ThrottleRetryAfter: 7}); err != nil {
		t.Fatal(err)
	}
	if r, _ := postPresences(t, s, tok, id); r.status != 429 || r.header.Get("Retry-After") != "7" {
		t.Fatalf("throttled presence: %d %v", r.status, r.header)
	}
	if st, lk := schedule(), lookup(); st != 200 || lk != 200 {
		t.Fatalf("other endpoints: getSchedule %d, users %d", st, lk)
	}
	clock.Advance(7 * time.Second)

	s.SetFaults(Faults{FaultEndpoints: []string{"users"}, ServerErrorFraction: 1, ServerErrorStatuses: []int{503}})
	if lk := lookup(); lk != 503 {
		t.Fatalf("users: %d", lk)
	}
	if r, _ := postPresences(t, s, tok, id); r.status != 200 || schedule() != 200 {
		t.Fatalf("presence %d", r.status)
	}

	// Hanging: a direct call is held until the client gives up; a sub-request holds its batch.
	s.ResetStats()
	s.SetFaults(Faults{FaultEndpoints: []string{"getPresencesByUserId", "users"}, HangFraction: 1})
	send := func(method, path string, body any) error {
		var b []byte
		if body != nil {
			b, _ = json.Marshal(body)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, method, s.URL()+path, strings.NewReader(string(b)))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := s.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := send("POST", "/v1.0/communications/getPresencesByUserId", presenceBody(id)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("presence answered: %v", err)
	}
	lookupStep := map[string]any{"id": "u", "method": "GET", "url": "/users?" + filterQuery("mail eq 'alice@contoso.example'")}
	if err := send("POST", "/v1.0/$batch", map[string]any{"requests": []any{lookupStep}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("batch with a lookup answered: %v", err)
	}
	if schedule() != 200 {
		t.Fatal("getSchedule hung with presence")
	}
	if st := s.Stats(); st.Hung != 2 || st.PresenceCalls != 0 || st.UserQueries != 0 {
		t.Fatalf("stats %+v", st)
	}

	// Slow.
	s.SetFaults(Faults{EndpointLatency: map[string]Duration{"getPresencesByUserId": Duration(100 * time.Millisecond)}})
	start := time.Now()
	if r, _ := postPresences(t, s, tok, id); r.status != 200 || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("presence latency: %d after %v", r.status, time.Since(start))
	}

	for _, bad := range []Faults{{FaultEndpoints: []string{"presence"}}, {EndpointLatency: map[string]Duration{"getschedule": 1}}, {HangFraction: 1.5}} {
		if err := s.SetFaults(bad); err == nil {
			t.Fatalf("accepted %+v", bad)
		}
	}
	// Faults naming no endpoint hit every endpoint, as before endpoints could be named.
	s.SetFaults(Faults{ServerErrorFraction: 1, ServerErrorStatuses: []int{500}})
	if r, _ := postPresences(t, s, tok, id); r.status != 500 || schedule() != 500 || lookup() != 500 {
		t.Fatalf("unnamed faults: presence %d", r.status)
	}
}

// A generated user's id is known once the simulator met their address (a lookup, a schedule), and
// their presence follows their generated calendar.
func TestPresenceOfGeneratedUsers(t *testing.T) {
	now := at(10, 0)
	s := startSim(t, Config{Scenario: &Scenario{Generator: Generator{Seed: 3, Domain: "contoso.example"}}, Roles: presenceTestRoles, Now: newFakeClock(now).Now})
	tok := fetchToken(t, s)
	a, b := "gen.a@contoso.example", "gen.b@contoso.example"
	if _, ps := postPresences(t, s, tok, ObjectID(a), ObjectID(b)); len(ps) != 0 {
		t.Fatalf("unmet users answered: %+v", ps)
	}
	if r := doJSON(t, s, "GET", "/v1.0/users?"+filterQuery("mail eq '"+a+"'"), tok, nil, nil); r.status != 200 {
		t.Fatal(r.status)
	}
	doJSON(t, s, "POST", "/v1.0/users/"+b+"/calendar/getSchedule", tok, scheduleBody(at(10, 0), at(11, 0), 15, b), nil)
	_, ps := postPresences(t, s, tok, ObjectID(a), ObjectID(b), ObjectID("x@fabrikam.example"))
	if len(ps) != 2 {
		t.Fatalf("answered %+v", ps)
	}
	activities := map[string]int{}
	for i := range 200 {
		email := fmt.Sprintf("gen%03d@contoso.example", i)
		doJSON(t, s, "GET", "/v1.0/users?"+filterQuery("mail eq '"+email+"'"), tok, nil, nil)
		_, ps := postPresences(t, s, tok, ObjectID(email))
		p := ps[ObjectID(email)]
		want := "Available"
		switch s.Scenario().StatusAt(email, now) {
		case StatusBusy:
			want = "InAMeeting"
		case StatusOOF:
			want = "OutOfOffice"
		}
		if p.Activity != want {
			t.Fatalf("%s: %+v, calendar says %s", email, p, s.Scenario().StatusAt(email, now))
		}
		activities[p.Activity]++
	}
	if activities["InAMeeting"] == 0 || activities["Available"] == 0 {
		t.Fatalf("activities %v", activities)
	}
}

func mustDecode(t *testing.T, b64 string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPresenceScenarioJSON(t *testing.T) {
	sc, err := ParseScenario([]byte(`{"generator":{"disabled":true},"mailboxes":{
	  "ann@contoso.example":{"userPrincipalName":"ann.lee@contoso.onmicrosoft.example",
	    "presence":[{"start":"2026-11-22T10:00:00Z","end":"2026-11-22T10:30:00","activity":"inacall"},
	                {"start":"2026-11-22T11:00:00Z","end":"2026-11-22T11:30:00Z","availability":"donotdisturb","activity":"presenting"},
	                {"start":"2026-11-22T12:00:00Z","end":"2026-11-22T12:30:00Z","activity":"SomethingNew"}],
	    "automaticReplies":[{"start":"2026-11-23","end":"2026-11-30","message":"<p>Away</p>"}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at             time.Time
		avail, act     string
		outOfOffice    bool
		message        string
		emailOrID      string
		wantNoSuchUser bool
	}{
		{at(10, 10), "Busy", "InACall", false, "", "ann@contoso.example", false},
		{at(11, 10), "DoNotDisturb", "Presenting", false, "", "ann.lee@contoso.onmicrosoft.example", false},
		{at(12, 10), "Available", "SomethingNew", false, "", ObjectID("ann@contoso.example"), false},
		{testDay.AddDate(0, 0, 2), "Available", "OutOfOffice", true, "<p>Away</p>", "ann@contoso.example", false},
		{at(10, 10), "", "", false, "", "nobody@contoso.example", true},
	} {
		p, ok := sc.PresenceAt(c.emailOrID, c.at)
		if !ok != c.wantNoSuchUser {
			t.Fatalf("%s: user %v", c.emailOrID, ok)
		}
		if !ok {
			continue
		}
		msg := ""
		if p.OutOfOfficeSettings.Message != nil {
			msg = *p.OutOfOfficeSettings.Message
		}
		if p.Availability != c.avail || p.Activity != c.act || p.OutOfOfficeSettings.IsOutOfOffice != c.outOfOffice || msg != c.message || p.ID != ObjectID("ann@contoso.example") {
			t.Fatalf("%s at %v: %+v", c.emailOrID, c.at, p)
		}
	}
	if id, ok := sc.UserID("ANN.LEE@contoso.onmicrosoft.example"); !ok || id != ObjectID("ann@contoso.example") {
		t.Fatalf("UserID %q %v", id, ok)
	}

	for name, js := range map[string]string{
		"no activity":        `{"mailboxes":{"a@b.c":{"presence":[{"start":"2026-11-22T10:00:00Z","end":"2026-11-22T11:00:00Z"}]}}}`,
		"bad availability":   `{"mailboxes":{"a@b.c":{"presence":[{"start":"2026-11-22T10:00:00Z","end":"2026-11-22T11:00:00Z","availability":"Sleepy","activity":"InACall"}]}}}`,
		"presence backwards": `{"mailboxes":{"a@b.c":{"presence":[{"start":"2026-11-22T10:00:00Z","end":"2026-11-22T09:00:00Z","activity":"InACall"}]}}}`,
		"replies backwards":  `{"mailboxes":{"a@b.c":{"automaticReplies":[{"start":"2026-11-22T10:00:00Z","end":"2026-11-22T10:00:00Z","message":"x"}]}}}`,
		"unknown field":      `{"mailboxes":{"a@b.c":{"automaticReplies":[{"start":"2026-11-22T10:00:00Z","end":"2026-11-22T11:00:00Z","mesage":"x"}]}}}`,
		"UPN not an address": `{"mailboxes":{"a@b.c":{"userPrincipalName":"a"}}}`,
		"same UPN twice":     `{"mailboxes":{"a@b.c":{},"b@b.c":{"userPrincipalName":"A@b.c"}}}`,
		"same mail twice":    `{"mailboxes":{"a@b.c":{"mail":"x@b.c"},"b@b.c":{"mail":"x@b.c"}}}`,
	} {
		if _, err := ParseScenario([]byte(js)); err == nil {
			t.Fatalf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	// A missing mailbox is no user, so its address may be another's UPN.
	if _, err := ParseScenario([]byte(`{"mailboxes":{"a@b.c":{"missing":true},"b@b.c":{"userPrincipalName":"a@b.c"}}}`)); err != nil {
		t.Fatal(err)
	}
	// Go-built scenarios are checked too.
	bad := &Scenario{Mailboxes: map[string]*Mailbox{"a@b.c": {Presence: []PresenceWindow{{Start: at(10, 0), End: at(11, 0)}}}}}
	if _, err := Start(Config{Scenario: bad}); err == nil {
		t.Fatal("presence without an activity accepted")
	}

	// demo.json keeps its meaning, and a scenario file with presence loads.
	demo, err := LoadScenario(filepath.Join("testdata", "demo.json"))
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := demo.PresenceAt("conference.room@contoso.example", time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC)); !ok || p.Activity != "InAMeeting" || p.ID != "5b1e4c8a-3f2d-4e6b-9a7c-0d1e2f3a4b5c" {
		t.Fatalf("demo: %+v %v", p, ok)
	}
	if _, ok := demo.PresenceAt("missing.user@contoso.example", testDay); ok {
		t.Fatal("a missing mailbox has presence")
	}
	p := filepath.Join(t.TempDir(), "s.json")
	os.WriteFile(p, []byte(`{"mailboxes":{"a@b.c":{"presence":[{"start":"2026-11-22T10:00:00Z","end":"2026-11-22T11:00:00Z","activity":"InAConferenceCall"}]}}}`), 0o644)
	if sc, err := LoadScenario(p); err != nil || sc.Mailboxes["a@b.c"].Presence[0].Activity != "InAConferenceCall" {
		t.Fatalf("%v", err)
	}
}

func TestPresenceAdminHTTP(t *testing.T) {
	s := startSim(t, Config{})
	r := doJSON(t, s, "PUT", "/_sim/scenario", "", `{"generator":{"disabled":true},"mailboxes":{"a@contoso.example":{
	  "presence":[{"start":"2026-11-22T10:00:00Z","end":"2026-11-22T11:00:00Z","activity":"InACall"}],
	  "automaticReplies":[{"start":"2026-11-22T00:00:00Z","end":"2026-11-23T00:00:00Z","message":"<p>Off</p>"}]}}}`, nil)
	if r.status != 204 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	r = doJSON(t, s, "GET", "/_sim/presence?email=A@contoso.example&at=2026-11-22T10:30:00Z", "", nil, nil)
	var p Presence
	if err := json.Unmarshal(r.body, &p); err != nil || r.status != 200 || p.Activity != "InACall" || p.ID != ObjectID("a@contoso.example") ||
		!p.OutOfOfficeSettings.IsOutOfOffice || *p.OutOfOfficeSettings.Message != "<p>Off</p>" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	r = doJSON(t, s, "GET", "/_sim/presence?id="+ObjectID("a@contoso.example")+"&at=2026-11-22T11:30:00Z", "", nil, nil)
	if json.Unmarshal(r.body, &p) != nil || p.Activity != "OutOfOffice" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if r := doJSON(t, s, "GET", "/_sim/presence?email=b@contoso.example", "", nil, nil); r.status != 404 {
		t.Fatalf("no such user: %d", r.status)
	}

	r = doJSON(t, s, "PUT", "/_sim/roles", "", `["Calendars.ReadBasic.All","Presence.Read.All"]`, nil)
	if r.status != 200 || !reflect.DeepEqual(s.Roles(), []string{"Calendars.ReadBasic.All", "Presence.Read.All"}) {
		t.Fatalf("%d %s", r.status, r.body)
	}
	tok := fetchToken(t, s)
	if r, ps := postPresences(t, s, tok, ObjectID("a@contoso.example")); r.status != 200 || len(ps) != 1 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	// The roles are in the token, where calstatus' self-check reads them.
	payload := strings.Split(tok, ".")[1]
	mustContain(t, mustDecode(t, payload), `"roles":["Calendars.ReadBasic.All","Presence.Read.All"]`)
}
