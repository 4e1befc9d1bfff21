package graph

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/calstatus/calstatus/internal/calendar"
)

func TestParseBatchBodies(t *testing.T) {
	answer := `{"value":[]}`
	b64 := base64.StdEncoding.EncodeToString([]byte(answer))
	for _, tc := range []struct {
		name, sub string
		// want
		id, body, problem string
		status            int
	}{
		{name: "object", sub: `{"id":"1","status":200,"body":{"value":[]}}`, id: "1", status: 200, body: answer},
		{name: "base64 of JSON", sub: `{"id":"2","status":200,"body":"` + b64 + `"}`, id: "2", status: 200, body: answer},
		{name: "text", sub: `{"id":"3","status":200,"body":"Service says hello"}`, id: "3", status: 200, problem: "not JSON"},
		{name: "base64 of text", sub: `{"id":"4","status":200,"body":"` + base64.StdEncoding.EncodeToString([]byte("hello")) + `"}`, id: "4", status: 200, problem: "not JSON"},
		{name: "number", sub: `{"id":"5","status":200,"body":42}`, id: "5", status: 200, problem: "not JSON"},
		{name: "no body", sub: `{"id":"6","status":204}`, id: "6", status: 204},
		{name: "null body", sub: `{"id":"7","status":200,"body":null}`, id: "7", status: 200},
		{name: "unreadable, id kept", sub: `{"id":"8","status":"200","body":{}}`, id: "8", problem: "unreadable sub-response"},
		{name: "no status", sub: `{"id":"10","body":{}}`, id: "10", body: "{}", problem: "without a status"},
		{name: "error text", sub: `{"id":"9","status":503,"body":"Service Unavailable"}`, id: "9", status: 503, problem: "not JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			subs, err := parseBatch([]byte(`{"responses":[` + tc.sub + `]}`))
			if err != nil || len(subs) != 1 {
				t.Fatalf("%v, %d sub-responses", err, len(subs))
			}
			s := subs[0]
			if s.id != tc.id || s.status != tc.status || string(s.body) != tc.body {
				t.Fatalf("got id %q status %d body %q, want %q %d %q", s.id, s.status, s.body, tc.id, tc.status, tc.body)
			}
			if (tc.problem == "") != (s.problem == "") || !strings.Contains(s.problem, tc.problem) {
				t.Fatalf("problem %q, want one with %q", s.problem, tc.problem)
			}
		})
	}
	for _, bad := range []string{``, `[]`, `{"value":[]}`, `<html>`} {
		if _, err := parseBatch([]byte(bad)); err == nil {
			t.Fatalf("%q read as a $batch answer", bad)
		}
	}
}

func TestSubResponseRetryAfter(t *testing.T) {
	for _, h := range []string{`{"Retry-After":"7"}`, `{"retry-after":"7"}`, `{"Retry-After":7}`} {
		subs, err := parseBatch([]byte(`{"responses":[{"id":"1","status":429,"headers":` + h + `,"body":{"error":{"code":"TooManyRequests"}}}]}`))
		if err != nil || subs[0].retryAfter() != 7*time.Second {
			t.Fatalf("%s: %v, %v", h, err, subs[0].retryAfter())
		}
		if status, ra := errorStatus(subs[0].err()); status != 429 || ra != 7*time.Second {
			t.Fatalf("%s: %d %v", h, status, ra)
		}
	}
}

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

// item is a scheduleItem in the wire format (UTC, 7-digit fractions as Graph writes them).
func item(status string, from, to int, extra string) string {
	f := func(t time.Time) string {
		return `{"dateTime":"` + t.Format("2006-01-02T15:04:05.0000000") + `","timeZone":"UTC"}`
	}
	return `{"status":"` + status + `","start":` + f(at(from)) + `,"end":` + f(at(to)) + extra + `}`
}

func TestInterpret(t *testing.T) {
	w := Window{Start: t0, End: at(30)}
	const who = "a@contoso.example"
	schedule := func(rest string) string { return `{"value":[{"scheduleId":"A@contoso.example",` + rest + `}]}` }
	for _, tc := range []struct {
		name   string
		body   string
		items  []calendar.Event // nil: no availability expected
		events []calendar.Event
		class  string // the failure expected for the user, if any
		msg    string
	}{
		{
			name: "items",
			body: schedule(`"availabilityView":"222222","scheduleItems":[` +
				item("Busy", 0, 20, `,"subject":"Planning"`) + `,` +
				item("oof", 10, 30, `,"subject":"Away","isPrivate":true`) + `,` +
				item("free", 25, 30, "") + `]`),
			items: []calendar.Event{
				{Start: at(0), End: at(20), Status: calendar.Busy, Subject: "Planning"},
				{Start: at(10), End: at(30), Status: calendar.OutOfOffice, Private: true},
			},
			events: []calendar.Event{
				{Start: at(0), End: at(10), Status: calendar.Busy, Subject: "Planning"},
				{Start: at(10), End: at(30), Status: calendar.OutOfOffice, Private: true},
			},
		},
		{
			name:   "view when no items: one period per run, FromView",
			body:   schedule(`"availabilityView":"2201x4","scheduleItems":[]`),
			items:  []calendar.Event{{Start: at(0), End: at(10), Status: calendar.Busy, FromView: true}, {Start: at(15), End: at(20), Status: calendar.Tentative, FromView: true}, {Start: at(25), End: at(30), Status: calendar.WorkingElsewhere, FromView: true}},
			events: []calendar.Event{{Start: at(0), End: at(10), Status: calendar.Busy, FromView: true}, {Start: at(15), End: at(20), Status: calendar.Tentative, FromView: true}, {Start: at(25), End: at(30), Status: calendar.WorkingElsewhere, FromView: true}},
		},
		{
			name:   "view clipped to the window",
			body:   schedule(`"availabilityView":"0000033"`),
			items:  []calendar.Event{{Start: at(25), End: at(30), Status: calendar.OutOfOffice, FromView: true}},
			events: []calendar.Event{{Start: at(25), End: at(30), Status: calendar.OutOfOffice, FromView: true}},
		},
		{
			name:  "free view",
			body:  schedule(`"availabilityView":"000000"`),
			items: []calendar.Event{},
		},
		{
			name:  "bad date",
			body:  schedule(`"scheduleItems":[` + item("busy", 0, 10, "") + `,{"status":"busy","start":{"dateTime":"soon","timeZone":"UTC"},"end":{"dateTime":"2026-11-23T09:20:00","timeZone":"UTC"},"subject":"Secret"}]`),
			class: "malformed", msg: `item 2 of 2: start: dateTime: parsing time "soon"`,
		},
		{
			name:  "bad time zone",
			body:  schedule(`"scheduleItems":[{"status":"busy","start":{"dateTime":"2026-11-23T09:00:00","timeZone":"Pacific Standard Time"},"end":{"dateTime":"2026-11-23T10:00:00","timeZone":"UTC"}}]`),
			class: "malformed", msg: `start: time zone "Pacific Standard Time", asked for UTC`,
		},
		{
			name:  "no end",
			body:  schedule(`"scheduleItems":[{"status":"busy","start":{"dateTime":"2026-11-23T09:00:00","timeZone":"UTC"}}]`),
			class: "malformed", msg: "end: no dateTime",
		},
		{
			name:  "ends before it starts",
			body:  schedule(`"scheduleItems":[` + item("busy", 20, 10, "") + `]`),
			class: "malformed", msg: "before it starts",
		},
		{
			name:  "wrong type in the schedule",
			body:  schedule(`"scheduleItems":[{"status":"busy","isPrivate":"yes"}]`),
			class: "malformed", msg: "schedule: json",
		},
		{
			name:  "schedule error",
			body:  schedule(`"error":{"responseCode":"ErrorNoFreeBusyAccess","message":"no access"}`),
			class: "no_access", msg: "no access",
		},
		{
			name:  "not in the answer",
			body:  `{"value":[]}`,
			class: "missing",
		},
		{
			name:  "not an answer",
			body:  `[1,2]`,
			class: "malformed", msg: "getSchedule answer",
		},
		{
			name:  "empty",
			body:  ``,
			class: "malformed", msg: "without a body",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := Result{Availability: map[string]calendar.Availability{}}
			sr := &subRequest{emails: []string{who}, mailbox: who}
			interpret(sr, 200, []byte(tc.body), w, 5, &res)
			av, ok := res.Availability[who]
			if tc.class != "" {
				if ok || len(res.Failures) != 1 {
					t.Fatalf("availability %v %+v, failures %+v: want only a %s failure", ok, av, res.Failures, tc.class)
				}
				f := res.Failures[0]
				if f.Class != tc.class || f.Email != who || f.Mailbox != who || !strings.Contains(f.Message, tc.msg) {
					t.Fatalf("failure %+v, want class %s with %q", f, tc.class, tc.msg)
				}
				if strings.Contains(f.Message+f.Detail, "Secret") {
					t.Fatalf("failure %+v shows a meeting subject", f)
				}
				return
			}
			if !ok || len(res.Failures) != 0 {
				t.Fatalf("no availability (%v) or failures %+v", ok, res.Failures)
			}
			assertEvents(t, "items", av.Items, tc.items)
			assertEvents(t, "events", av.Events, tc.events)
		})
	}
}

func assertEvents(t *testing.T, what string, got, want []calendar.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %+v, want %+v", what, got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.Start.Equal(w.Start) || !g.End.Equal(w.End) || g.Status != w.Status || g.Subject != w.Subject || g.Private != w.Private || g.FromView != w.FromView {
			t.Fatalf("%s[%d]: %+v, want %+v", what, i, g, w)
		}
	}
}
