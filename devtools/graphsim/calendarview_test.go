package graphsim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// viewURL is a calendarView sub-request URL as the mscalendar plugin builds it (getCalendarViewURL).
func viewURL(mailbox string, start, end time.Time, extra ...string) string {
	q := url.Values{}
	q.Set("startDateTime", start.Format(time.RFC3339))
	q.Set("endDateTime", end.Format(time.RFC3339))
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return "/Users/" + url.PathEscape(mailbox) + "/calendarView?" + q.Encode()
}

type viewAnswer struct {
	Value []struct {
		Subject     string `json:"subject"`
		ShowAs      string `json:"showAs"`
		IsAllDay    bool   `json:"isAllDay"`
		IsCancelled bool   `json:"isCancelled"`
		Sensitivity string `json:"sensitivity"`
		ICalUID     string `json:"iCalUId"`
		Start       struct {
			DateTime string `json:"dateTime"`
			TimeZone string `json:"timeZone"`
		} `json:"start"`
		End struct {
			DateTime string `json:"dateTime"`
			TimeZone string `json:"timeZone"`
		} `json:"end"`
		ResponseStatus struct {
			Response string `json:"response"`
		} `json:"responseStatus"`
	} `json:"value"`
	NextLink string `json:"@odata.nextLink"`
	Error    *struct {
		Code string `json:"code"`
	} `json:"error"`
}

func viewScenario() *Scenario {
	at := func(h, m int) time.Time {
		return testDay.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
	}
	return &Scenario{Generator: Generator{Disabled: true}, Mailboxes: map[string]*Mailbox{
		"ann@contoso.example": {Events: []Event{
			{Status: StatusBusy, Start: at(8, 30), End: at(9, 30), Subject: "Design review"},
			{Status: StatusTentative, Start: at(9, 45), End: at(10, 15), Subject: "Secret", IsPrivate: true},
			{Status: StatusFree, Start: at(9, 50), End: at(9, 55), Subject: "Free slot"},
			{Status: StatusBusy, Start: at(10, 0), End: at(11, 0), Subject: "After the window"},
		}},
		"oof@contoso.example":        {Events: []Event{{Status: StatusOOF, Start: testDay, End: testDay.AddDate(0, 0, 1), Subject: "Vacation"}}},
		"ghost@contoso.example":      {Missing: true},
		"unlicensed@contoso.example": {Unlicensed: true},
		"nofb@contoso.example":       {ScheduleError: "ErrorNoFreeBusyAccess", Events: []Event{{Status: StatusBusy, Start: at(9, 0), End: at(9, 30)}}},
	}}
}

func TestCalendarViewInBatch(t *testing.T) {
	s := startSim(t, Config{Scenario: viewScenario()})
	tok := fetchToken(t, s)
	from, to := testDay.Add(9*time.Hour), testDay.Add(10*time.Hour)
	var reqs []any
	for _, mb := range []string{"ann@contoso.example", "ghost@contoso.example", "unlicensed@contoso.example", "oof@contoso.example", "nofb@contoso.example"} {
		reqs = append(reqs, map[string]any{"id": mb, "method": "GET", "url": viewURL(mb, from, to, "$top", "20"), "headers": map[string]string{}, "body": nil})
	}
	r, br := postBatch(t, s, tok, map[string]any{"requests": reqs})
	if r.status != http.StatusOK || len(br.Responses) != 5 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	byID := br.byID()
	answer := func(id string, status int) viewAnswer {
		t.Helper()
		sub := br.Responses[byID[id]]
		var a viewAnswer
		if err := json.Unmarshal(sub.Body, &a); err != nil {
			t.Fatalf("%s: %s: %v", id, sub.Body, err)
		}
		if sub.Status != status {
			t.Fatalf("%s: status %d, want %d: %s", id, sub.Status, status, sub.Body)
		}
		return a
	}

	ann := answer("ann@contoso.example", http.StatusOK)
	if len(ann.Value) != 3 || ann.NextLink != "" {
		t.Fatalf("ann: %+v", ann)
	}
	busy, tent, free := ann.Value[0], ann.Value[1], ann.Value[2]
	if busy.Subject != "Design review" || busy.ShowAs != "busy" || busy.IsAllDay || busy.IsCancelled || busy.Sensitivity != "normal" ||
		busy.Start.DateTime != "2026-11-22T08:30:00.0000000" || busy.Start.TimeZone != "UTC" ||
		busy.End.DateTime != "2026-11-22T09:30:00.0000000" || busy.End.TimeZone != "UTC" || busy.ResponseStatus.Response != "accepted" || busy.ICalUID == "" {
		t.Fatalf("busy event %+v", busy)
	}
	if tent.ShowAs != "tentative" || tent.Sensitivity != "private" || tent.Subject != "" || tent.ResponseStatus.Response != "tentativelyAccepted" {
		t.Fatalf("private tentative event %+v", tent)
	}
	if free.ShowAs != "free" || free.Subject != "Free slot" {
		t.Fatalf("free event %+v", free)
	}
	if oof := answer("oof@contoso.example", http.StatusOK); len(oof.Value) != 1 || oof.Value[0].ShowAs != "oof" || !oof.Value[0].IsAllDay {
		t.Fatalf("oof: %+v", oof)
	}
	// A free/busy sharing error is getSchedule's: the calendar itself is read.
	if nofb := answer("nofb@contoso.example", http.StatusOK); len(nofb.Value) != 1 {
		t.Fatalf("nofb: %+v", nofb)
	}
	if a := answer("ghost@contoso.example", http.StatusNotFound); a.Error == nil || a.Error.Code != "ErrorItemNotFound" {
		t.Fatalf("ghost: %+v", a)
	}
	if a := answer("unlicensed@contoso.example", http.StatusNotFound); a.Error == nil || a.Error.Code != "MailboxNotEnabledForRESTAPI" {
		t.Fatalf("unlicensed: %+v", a)
	}

	st := s.Stats()
	if st.Requests["$batch"] != 1 || st.SubRequests != 5 || st.CalendarViewCalls != 3 || st.SubStatuses[200] != 3 || st.SubStatuses[404] != 2 || st.GetScheduleCalls != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCalendarViewPagingDirectAndErrors(t *testing.T) {
	s := startSim(t, Config{Scenario: viewScenario()})
	tok := fetchToken(t, s)
	from, to := testDay.Add(9*time.Hour), testDay.Add(10*time.Hour)

	// Direct, one at a time: Graph's nextLink pages on.
	r := doJSON(t, s, "GET", "/v1.0"+viewURL("ann@contoso.example", from, to, "$top", "2"), tok, nil, nil)
	var a viewAnswer
	if err := json.Unmarshal(r.body, &a); err != nil || r.status != http.StatusOK || len(a.Value) != 2 || a.NextLink == "" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	next, err := url.Parse(a.NextLink)
	if err != nil {
		t.Fatal(err)
	}
	r = doJSON(t, s, "GET", next.RequestURI(), tok, nil, nil)
	a = viewAnswer{}
	if err := json.Unmarshal(r.body, &a); err != nil || r.status != http.StatusOK || len(a.Value) != 1 || a.NextLink != "" || a.Value[0].ShowAs != "free" {
		t.Fatalf("page 2: %d %s", r.status, r.body)
	}
	// Offsets in the bounds, and a time zone asked for.
	cet := time.FixedZone("CET", 3600)
	r = doJSON(t, s, "GET", "/v1.0"+viewURL("ann@contoso.example", from.In(cet), to.In(cet)), tok, nil,
		map[string]string{"Prefer": `outlook.timezone="Europe/Berlin"`})
	a = viewAnswer{}
	if err := json.Unmarshal(r.body, &a); err != nil || r.status != http.StatusOK || len(a.Value) != 3 ||
		a.Value[0].Start.DateTime != "2026-11-22T09:30:00.0000000" || a.Value[0].Start.TimeZone != "Europe/Berlin" {
		t.Fatalf("offsets: %d %s", r.status, r.body)
	}
	if st := s.Stats(); st.Requests["calendarView"] != 3 || st.CalendarViewCalls != 3 {
		t.Fatalf("stats %+v", st)
	}

	for name, c := range map[string]struct {
		method, path string
		status       int
	}{
		"no window":  {"GET", "/v1.0/users/ann@contoso.example/calendarView", http.StatusBadRequest},
		"bad bound":  {"GET", "/v1.0/users/ann@contoso.example/calendarView?startDateTime=soon&endDateTime=later", http.StatusBadRequest},
		"backwards":  {"GET", "/v1.0" + viewURL("ann@contoso.example", to, from), http.StatusBadRequest},
		"bad $top":   {"GET", "/v1.0" + viewURL("ann@contoso.example", from, to, "$top", "0"), http.StatusBadRequest},
		"POST":       {"POST", "/v1.0" + viewURL("ann@contoso.example", from, to), http.StatusMethodNotAllowed},
		"missing":    {"GET", "/v1.0" + viewURL("ghost@contoso.example", from, to), http.StatusNotFound},
		"no token":   {"GET", "/v1.0" + viewURL("ann@contoso.example", from, to), http.StatusUnauthorized},
		"calendar/…": {"GET", "/v1.0/users/ann@contoso.example/calendar/calendarView?" + url.Values{"startDateTime": {"2026-11-22T09:00:00"}, "endDateTime": {"2026-11-22T10:00:00"}}.Encode(), http.StatusOK},
	} {
		token := tok
		if name == "no token" {
			token = ""
		}
		if r := doJSON(t, s, c.method, c.path, token, nil, nil); r.status != c.status {
			t.Errorf("%s: %d, want %d: %s", name, r.status, c.status, r.body)
		}
	}
}

// calendarView sub-requests are throttled on their mailbox as getSchedule's are.
func TestCalendarViewThrottledPerMailbox(t *testing.T) {
	s := startSim(t, Config{Scenario: viewScenario(), MailboxConcurrency: 2})
	tok := fetchToken(t, s)
	from, to := testDay.Add(9*time.Hour), testDay.Add(10*time.Hour)
	var reqs []any
	for i, top := range []string{"1", "2", "3"} {
		reqs = append(reqs, map[string]any{"id": top, "method": "GET", "url": viewURL("ann@contoso.example", from.Add(time.Duration(i)*time.Minute), to, "$top", top)})
	}
	r, br := postBatch(t, s, tok, map[string]any{"requests": reqs})
	if r.status != http.StatusOK || br.statuses()[200] != 2 || br.statuses()[429] != 1 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if third := br.Responses[br.byID()["3"]]; third.Status != 429 || third.Headers["Retry-After"] == "" {
		t.Fatalf("third: %+v", third)
	}
	if st := s.Stats(); st.Throttled != 1 || st.ThrottledByReason["concurrency"] != 1 || st.CalendarViewCalls != 2 {
		t.Fatalf("stats %+v", st)
	}
}
