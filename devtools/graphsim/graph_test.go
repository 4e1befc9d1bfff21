package graphsim

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	jsonserialization "github.com/microsoft/kiota-serialization-json-go"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

func at(h, m int) time.Time {
	return testDay.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
}

func wireScenario() *Scenario {
	return &Scenario{
		Generator: Generator{Seed: 42, BusyFraction: 0.4, Domain: "contoso.example"},
		Mailboxes: map[string]*Mailbox{
			"Alice@Contoso.example": {Events: []Event{
				{Status: "busy", Start: at(10, 30), End: at(11, 0), Subject: "Design review", Location: "Room 1"},
				{Status: "tentative", Start: at(11, 0), End: at(11, 30), Subject: "Maybe", Location: "Teams"},
				{Status: "busy", Start: at(11, 15), End: at(11, 45), Subject: "Secret", Location: "Hidden", IsPrivate: true},
			}},
			"bob@contoso.example":     {Events: []Event{{Status: "oof", Start: testDay, End: testDay.AddDate(0, 0, 1), Subject: "Vacation"}}},
			"ghost@contoso.example":   {Missing: true},
			"nolic@contoso.example":   {Unlicensed: true},
			"private@contoso.example": {ScheduleError: "ErrorNoFreeBusyAccess"},
			"proxy@contoso.example":   {ScheduleError: "ErrorProxyRequestNotAllowed"},
			"shared@contoso.example":  {ID: "6a1b2c3d-0000-4000-8000-000000000001", PathError: "MailboxNotEnabledForRESTAPI"},
			"room@contoso.example":    {ID: "6a1b2c3d-0000-4000-8000-000000000002"},
		},
	}
}

func TestGetScheduleWireFormat(t *testing.T) {
	s := startSim(t, Config{Scenario: wireScenario()})
	tok := fetchToken(t, s)
	r := doJSON(t, s, "POST", "/v1.0/users/room@contoso.example/calendar/getSchedule", tok,
		scheduleBody(at(10, 0), at(12, 0), 15, "alice@contoso.example", "bob@contoso.example"), nil)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	mustContain(t, r.header.Get("Content-Type"), "application/json")
	var got any
	_ = json.Unmarshal(r.body, &got)
	wantJSON := `{
	  "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(microsoft.graph.scheduleInformation)",
	  "value": [
	    {"scheduleId": "alice@contoso.example", "availabilityView": "00221220",
	     "scheduleItems": [
	       {"isPrivate": false, "status": "busy", "subject": "Design review", "location": "Room 1",
	        "start": {"dateTime": "2026-11-22T10:30:00.0000000", "timeZone": "UTC"},
	        "end": {"dateTime": "2026-11-22T11:00:00.0000000", "timeZone": "UTC"}},
	       {"isPrivate": false, "status": "tentative", "subject": "Maybe", "location": "Teams",
	        "start": {"dateTime": "2026-11-22T11:00:00.0000000", "timeZone": "UTC"},
	        "end": {"dateTime": "2026-11-22T11:30:00.0000000", "timeZone": "UTC"}},
	       {"isPrivate": true, "status": "busy",
	        "start": {"dateTime": "2026-11-22T11:15:00.0000000", "timeZone": "UTC"},
	        "end": {"dateTime": "2026-11-22T11:45:00.0000000", "timeZone": "UTC"}}
	     ],
	     "workingHours": {"daysOfWeek": ["monday","tuesday","wednesday","thursday","friday"],
	       "startTime": "08:00:00.0000000", "endTime": "17:00:00.0000000", "timeZone": {"name": "UTC"}}},
	    {"scheduleId": "bob@contoso.example", "availabilityView": "33333333",
	     "scheduleItems": [
	       {"isPrivate": false, "status": "oof", "subject": "Vacation",
	        "start": {"dateTime": "2026-11-22T00:00:00.0000000", "timeZone": "UTC"},
	        "end": {"dateTime": "2026-11-23T00:00:00.0000000", "timeZone": "UTC"}}
	     ],
	     "workingHours": {"daysOfWeek": ["monday","tuesday","wednesday","thursday","friday"],
	       "startTime": "08:00:00.0000000", "endTime": "17:00:00.0000000", "timeZone": {"name": "UTC"}}}
	  ]
	}`
	var want any
	if err := json.Unmarshal([]byte(wantJSON), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got\n%s", r.body)
	}

	// The SDK's own model decodes it.
	node, err := jsonserialization.NewJsonParseNode(r.body)
	if err != nil {
		t.Fatal(err)
	}
	v, err := node.GetObjectValue(users.CreateItemCalendarGetSchedulePostResponseFromDiscriminatorValue)
	if err != nil {
		t.Fatal(err)
	}
	infos := v.(users.ItemCalendarGetSchedulePostResponseable).GetValue()
	if len(infos) != 2 || *infos[0].GetScheduleId() != "alice@contoso.example" || *infos[0].GetAvailabilityView() != "00221220" {
		t.Fatalf("decoded %+v", infos)
	}
	items := infos[0].GetScheduleItems()
	if len(items) != 3 || items[2].GetSubject() != nil || !*items[2].GetIsPrivate() || items[0].GetStatus().String() != "busy" ||
		*items[1].GetStart().GetDateTime() != "2026-11-22T11:00:00.0000000" || *items[1].GetStart().GetTimeZone() != "UTC" {
		t.Fatalf("items %+v", items)
	}
	if infos[1].GetScheduleItems()[0].GetStatus().String() != "oof" {
		t.Fatalf("bob status %v", infos[1].GetScheduleItems()[0].GetStatus())
	}
	if st := s.Stats(); st.GetScheduleCalls != 1 || st.SchedulesLookedUp != 2 || st.ScheduleLookups["alice@contoso.example"] != 1 || st.Requests["getSchedule"] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestGetSchedulePascalCaseAndPrefer(t *testing.T) {
	s := startSim(t, Config{Scenario: wireScenario()})
	tok := fetchToken(t, s)
	// msgraph-sdk-go serializes the action parameters in PascalCase.
	body := `{"AvailabilityViewInterval":30,"EndTime":{"dateTime":"2026-11-22T12:00:00","timeZone":"UTC"},"Schedules":["alice@contoso.example"],"StartTime":{"dateTime":"2026-11-22T10:00:00","timeZone":"UTC"}}`
	r := doJSON(t, s, "POST", "/v1.0/users/room@contoso.example/calendar/getSchedule", tok, body, map[string]string{"Prefer": `outlook.timezone="UTC"`})
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if v := r.json(t)["value"].([]any)[0].(map[string]any)["availabilityView"]; v != "0222" {
		t.Fatalf("view %v", v)
	}
	r = doJSON(t, s, "POST", "/v1.0/users/room@contoso.example/calendar/getSchedule", tok, body, map[string]string{"Prefer": `outlook.timezone="Mars/Olympus"`})
	if r.status != 400 {
		t.Fatalf("bad Prefer tz: %d", r.status)
	}
	// Addressed by id.
	r = doJSON(t, s, "POST", "/v1.0/users/6a1b2c3d-0000-4000-8000-000000000002/calendar/getSchedule", tok, body, nil)
	if r.status != 200 {
		t.Fatalf("by id: %d %s", r.status, r.body)
	}
}

func TestGetScheduleValidation(t *testing.T) {
	s := startSim(t, Config{Scenario: wireScenario()})
	tok := fetchToken(t, s)
	path := "/v1.0/users/room@contoso.example/calendar/getSchedule"
	check := func(name string, body any, wantStatus int, wantCode string) {
		t.Helper()
		r := doJSON(t, s, "POST", path, tok, body, nil)
		if r.status != wantStatus {
			t.Fatalf("%s: %d %s", name, r.status, r.body)
		}
		if code := r.json(t)["error"].(map[string]any)["code"]; code != wantCode {
			t.Fatalf("%s: code %v", name, code)
		}
	}
	many := make([]string, 21)
	for i := range many {
		many[i] = "u" + string(rune('a'+i)) + "@contoso.example"
	}
	check("21 schedules", scheduleBody(at(10, 0), at(11, 0), 15, many...), 400, "ErrorInvalidParameter")
	check("62 days", scheduleBody(testDay, testDay.AddDate(0, 0, 62), 60, "alice@contoso.example"), 400, "ErrorInvalidTimeInterval")
	check("interval 4", scheduleBody(at(10, 0), at(11, 0), 4, "alice@contoso.example"), 400, "ErrorInvalidParameter")
	check("interval 1441", scheduleBody(at(10, 0), at(11, 0), 1441, "alice@contoso.example"), 400, "ErrorInvalidParameter")
	check("end before start", scheduleBody(at(11, 0), at(10, 0), 15, "alice@contoso.example"), 400, "ErrorInvalidTimeInterval")
	bad := scheduleBody(at(10, 0), at(11, 0), 15, "alice@contoso.example")
	bad["startTime"] = map[string]string{"dateTime": "2026-11-22T10:00:00", "timeZone": "Nowhere Standard Time"}
	check("bad tz", bad, 400, "ErrorInvalidParameter")
	check("not json", "{", 400, "BadRequest")
	// 61 days is fine; 20 schedules is fine.
	if r := doJSON(t, s, "POST", path, tok, scheduleBody(testDay, testDay.AddDate(0, 0, 61), 1440, many[:20]...), nil); r.status != 200 {
		t.Fatalf("61 days / 20 schedules: %d %s", r.status, r.body)
	}

	// Mailbox in the URL.
	body := scheduleBody(at(10, 0), at(11, 0), 15, "alice@contoso.example")
	for _, c := range []struct{ path, code string }{
		{"/v1.0/users/ghost@contoso.example/calendar/getSchedule", "ErrorItemNotFound"},
		{"/v1.0/users/someone@fabrikam.example/calendar/getSchedule", "ErrorItemNotFound"},
		{"/v1.0/users/nolic@contoso.example/calendar/getSchedule", "MailboxNotEnabledForRESTAPI"},
		{"/v1.0/users/6a1b2c3d-0000-4000-8000-000000000001/calendar/getSchedule", "MailboxNotEnabledForRESTAPI"},
	} {
		r := doJSON(t, s, "POST", c.path, tok, body, nil)
		if r.status != 404 || r.json(t)["error"].(map[string]any)["code"] != c.code {
			t.Fatalf("%s: %d %s", c.path, r.status, r.body)
		}
	}
	r := doJSON(t, s, "POST", "/v1.0/me/calendar/getSchedule", tok, body, nil)
	if r.status != 400 {
		t.Fatalf("/me: %d", r.status)
	}
	r = doJSON(t, s, "GET", path, tok, nil, nil)
	if r.status != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", r.status)
	}
	// No calendar permission in the token.
	s2 := startSim(t, Config{Scenario: wireScenario(), Roles: []string{"User.Read.All"}})
	tok2 := fetchToken(t, s2)
	if r := doJSON(t, s2, "POST", path, tok2, body, nil); r.status != 403 {
		t.Fatalf("no role: %d %s", r.status, r.body)
	}
}

func TestPerScheduleErrors(t *testing.T) {
	s := startSim(t, Config{Scenario: wireScenario()})
	tok := fetchToken(t, s)
	addrs := []string{"ghost@contoso.example", "alice@contoso.example", "nolic@contoso.example", "private@contoso.example",
		"proxy@contoso.example", "x@fabrikam.example", "Generated.User@CONTOSO.example"}
	r := doJSON(t, s, "POST", "/v1.0/users/alice@contoso.example/calendar/getSchedule", tok, scheduleBody(at(10, 0), at(12, 0), 30, addrs...), nil)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	vals := r.json(t)["value"].([]any)
	want := []string{"ErrorMailRecipientNotFound", "", "ErrorMailRecipientNotFound", "ErrorNoFreeBusyAccess", "ErrorProxyRequestNotAllowed", "ErrorMailRecipientNotFound", ""}
	for i, v := range vals {
		m := v.(map[string]any)
		if m["scheduleId"] != addrs[i] {
			t.Fatalf("order: %d %v", i, m["scheduleId"])
		}
		code := ""
		if e, ok := m["error"].(map[string]any); ok {
			code, _ = e["responseCode"].(string)
			if e["message"] == "" {
				t.Fatal("empty message")
			}
			if _, has := m["availabilityView"]; has {
				t.Fatalf("error entry has availabilityView: %v", m)
			}
		} else if len(m["availabilityView"].(string)) != 4 {
			t.Fatalf("view %v", m)
		}
		if code != want[i] {
			t.Fatalf("%s: code %q want %q", addrs[i], code, want[i])
		}
	}
	mustContain(t, string(r.body), "The specified emailAddress is invalid or no mailbox was found")
}

func TestAvailabilityViewMatchesStatusAt(t *testing.T) {
	sc := &Scenario{Generator: Generator{Seed: 7, BusyFraction: 0.5}}
	s := startSim(t, Config{Scenario: sc})
	tok := fetchToken(t, s)
	users := []string{"u1@x.example", "u2@x.example", "u3@x.example", "u4@x.example", "u5@x.example"}
	from := testDay.Add(-2 * time.Hour)
	r := doJSON(t, s, "POST", "/v1.0/users/u1@x.example/calendar/getSchedule", tok, scheduleBody(from, from.Add(28*time.Hour), 5, users...), nil)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	digit := map[string]byte{"free": '0', "tentative": '1', "busy": '2', "oof": '3', "workingElsewhere": '4'}
	for i, v := range r.json(t)["value"].([]any) {
		view := v.(map[string]any)["availabilityView"].(string)
		if len(view) != 28*12 {
			t.Fatalf("len %d", len(view))
		}
		for k := 0; k < len(view); k++ {
			st := sc.StatusAt(users[i], from.Add(time.Duration(k)*5*time.Minute))
			if view[k] != digit[st] {
				t.Fatalf("%s slot %d: view %c, StatusAt %s", users[i], k, view[k], st)
			}
		}
	}
	if !strings.ContainsAny(string(r.body), "2") {
		t.Fatal("no busy at all")
	}
}
