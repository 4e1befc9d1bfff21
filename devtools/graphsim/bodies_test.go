package graphsim

import (
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"
)

// TextBodyMailboxes and Base64BodyMailboxes change only the listed sub-requests' bodies.
func TestStringSubResponseBodies(t *testing.T) {
	s := startSim(t, Config{Scenario: &Scenario{Generator: Generator{Seed: 1, Domain: "contoso.example"}}})
	tok := fetchToken(t, s)
	mailboxes := usersN(20, "u%02d@contoso.example")
	if err := s.SetFaults(Faults{TextBodyMailboxes: []string{"U03@contoso.example"}, Base64BodyMailboxes: []string{mailboxes[5]}}); err != nil {
		t.Fatal(err)
	}
	r, br := postBatch(t, s, tok, batchOf(mailboxes, testDay, one))
	if r.status != 200 || br.statuses()[200] != 20 {
		t.Fatalf("%d %v", r.status, br.statuses())
	}
	for _, resp := range br.Responses {
		var obj map[string]any
		var str string
		switch resp.ID {
		case "4": // u03
			if err := json.Unmarshal(resp.Body, &str); err != nil || str != textBody || resp.Headers["Content-Type"] != "text/plain; charset=utf-8" {
				t.Fatalf("text body: %s %v (%v)", resp.Body, resp.Headers, err)
			}
		case "6": // u05
			if err := json.Unmarshal(resp.Body, &str); err != nil {
				t.Fatalf("base64 body is not a string: %s", resp.Body)
			}
			dec, err := base64.StdEncoding.DecodeString(str)
			if err != nil || json.Unmarshal(dec, &obj) != nil || obj["value"] == nil {
				t.Fatalf("base64 body does not decode to the answer: %q (%v)", dec, err)
			}
		default:
			if err := json.Unmarshal(resp.Body, &obj); err != nil || obj["value"] == nil {
				t.Fatalf("sub-response %s: %s", resp.ID, resp.Body)
			}
		}
	}
}

// MalformedItemAddresses spoils one schedule's first item; HideItems leaves only the view.
func TestMalformedAndHiddenItems(t *testing.T) {
	busy := []Event{{Status: StatusBusy, Start: testDay.Add(9 * time.Hour), End: testDay.Add(10 * time.Hour)}}
	sc := &Scenario{Generator: Generator{Disabled: true}, Mailboxes: map[string]*Mailbox{
		"a@contoso.example": {Events: busy},
		"b@contoso.example": {Events: busy},
		"c@contoso.example": {Events: busy, HideItems: true},
	}}
	s := startSim(t, Config{Scenario: sc})
	tok := fetchToken(t, s)
	if err := s.SetFaults(Faults{MalformedItemAddresses: []string{"B@contoso.example"}}); err != nil {
		t.Fatal(err)
	}
	r := doJSON(t, s, "POST", "/v1.0/users/a@contoso.example/calendar/getSchedule", tok,
		scheduleBody(testDay.Add(9*time.Hour), testDay.Add(10*time.Hour), 15, "a@contoso.example", "b@contoso.example", "c@contoso.example"), nil)
	var got struct {
		Value []struct {
			ScheduleID       string `json:"scheduleId"`
			AvailabilityView string `json:"availabilityView"`
			ScheduleItems    []struct {
				Start dateTimeOut `json:"start"`
			} `json:"scheduleItems"`
		} `json:"value"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil || r.status != 200 || len(got.Value) != 3 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	a, b, c := got.Value[0], got.Value[1], got.Value[2]
	if len(a.ScheduleItems) != 1 || a.ScheduleItems[0].Start.DateTime != "2026-11-22T09:00:00.0000000" {
		t.Fatalf("a: %+v", a)
	}
	if len(b.ScheduleItems) != 1 || b.ScheduleItems[0].Start.DateTime != "not a date" {
		t.Fatalf("b: %+v", b)
	}
	if len(c.ScheduleItems) != 0 || c.AvailabilityView != "2222" {
		t.Fatalf("c: %+v", c)
	}
}
