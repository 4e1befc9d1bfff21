package graph

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/calstatus/calstatus/internal/calendar"
)

// subResponse is one answer of a $batch, its body made ready to read.
type subResponse struct {
	id      string
	status  int // 0 when the sub-response itself could not be read
	headers map[string]string
	body    []byte // the body as JSON (a base64 string decoded); nil when absent or unreadable
	raw     []byte // the body as sent (the whole sub-response if that could not be read)
	problem string // why the body cannot be read; "" when it can or there is none
}

func (s subResponse) ok() bool { return s.status >= 200 && s.status <= 299 }

// retryAfter reads the sub-response's own Retry-After header (any casing).
func (s subResponse) retryAfter() time.Duration {
	for k, v := range s.headers {
		if strings.EqualFold(k, "Retry-After") {
			return parseRetryAfter(v)
		}
	}
	return 0
}

// err describes an error sub-response.
func (s subResponse) err() error {
	code, msg := errorCodeMessage(s.body)
	return &statusError{status: s.status, code: code, message: msg, retryAfter: s.retryAfter()}
}

// parseBatch reads a $batch answer, {"responses":[{id,status,headers,body}…]}. Each
// sub-response is read on its own, so one that cannot be read costs only its own users; an error
// means the answer as a whole is unreadable.
func parseBatch(data []byte) ([]subResponse, error) {
	var envelope struct {
		Responses []json.RawMessage `json:"responses"`
	}
	if err := json.Unmarshal(data, &envelope); err != nil {
		return nil, err
	}
	if envelope.Responses == nil {
		return nil, errors.New(`no "responses"`)
	}
	subs := make([]subResponse, 0, len(envelope.Responses))
	for _, raw := range envelope.Responses {
		subs = append(subs, parseSubResponse(raw))
	}
	return subs, nil
}

func parseSubResponse(raw json.RawMessage) subResponse {
	var wire struct {
		ID      string                     `json:"id"`
		Status  int                        `json:"status"`
		Headers map[string]json.RawMessage `json:"headers"`
		Body    json.RawMessage            `json:"body"`
	}
	if err := json.Unmarshal(raw, &wire); err != nil {
		// Still name the sub-request when its id can be read, so its users learn why.
		var named struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(raw, &named)
		return subResponse{id: named.ID, raw: raw, problem: "unreadable sub-response: " + err.Error()}
	}
	sub := subResponse{id: wire.ID, status: wire.Status, headers: map[string]string{}, raw: wire.Body}
	for k, v := range wire.Headers {
		var s string
		if json.Unmarshal(v, &s) != nil {
			s = string(v) // a number (Retry-After: 5) or something odd, kept as written
		}
		sub.headers[k] = s
	}
	sub.body, sub.problem = readBody(wire.Body)
	if sub.status == 0 {
		sub.problem = "sub-response without a status"
	}
	return sub
}

// readBody returns a sub-response body as JSON. Graph sends a JSON answer as an object and other
// content as a string: base64-encoded for some content types, else plain text. A string is decoded
// when it is base64 of JSON; otherwise problem says why the body cannot be read.
func readBody(raw json.RawMessage) (body []byte, problem string) {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 || string(b) == "null" {
		return nil, ""
	}
	switch b[0] {
	case '{', '[':
		return b, ""
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, "body: " + err.Error()
		}
		if dec, err := base64.StdEncoding.DecodeString(s); err == nil && json.Valid(dec) {
			return dec, ""
		}
		return nil, fmt.Sprintf("body is a string, not JSON nor base64 of JSON: %q", cut(s, 100))
	}
	return nil, fmt.Sprintf("body is %s, not JSON", cut(string(b), 100))
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// scheduleInfo is one schedule of a getSchedule answer. Read from JSON rather than the SDK's
// model because the model maps status strings case-sensitively and Graph's casing varies.
type scheduleInfo struct {
	ScheduleID       string         `json:"scheduleId"`
	AvailabilityView string         `json:"availabilityView"`
	ScheduleItems    []scheduleItem `json:"scheduleItems"`
	Error            *struct {
		ResponseCode string `json:"responseCode"`
		Message      string `json:"message"`
	} `json:"error"`
}

type scheduleItem struct {
	Status    string       `json:"status"`
	Start     wireDateTime `json:"start"`
	End       wireDateTime `json:"end"`
	Subject   string       `json:"subject"`
	IsPrivate bool         `json:"isPrivate"`
}

type wireDateTime struct {
	DateTime string `json:"dateTime"`
	TimeZone string `json:"timeZone"`
}

// interpret reads a getSchedule answer for the users of sr: availability for those answered
// readably, a Failure for every other one. Each schedule is read on its own, so one unreadable
// schedule costs only its user.
func interpret(sr *subRequest, status int, body []byte, w Window, interval int, res *Result) {
	if len(body) == 0 {
		failAll(sr, malformedFailure(status, "getSchedule answer without a body", nil), res)
		return
	}
	var answer struct {
		Value []json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		failAll(sr, malformedFailure(status, "getSchedule answer: "+err.Error(), body), res)
		return
	}
	answered := map[string]bool{}
	for _, raw := range answer.Value {
		var s scheduleInfo
		err := json.Unmarshal(raw, &s) // on a wrong type, the fields it could read are kept
		email := strings.ToLower(s.ScheduleID)
		if email == "" {
			continue // whose it is cannot be told; its user is reported missing below
		}
		answered[email] = true
		fail := func(f Failure) {
			f.Email, f.Mailbox = email, sr.mailbox
			res.Failures = append(res.Failures, f)
		}
		if err != nil {
			fail(malformedFailure(status, "schedule: "+err.Error(), nil))
			continue
		}
		if s.Error != nil {
			fail(Failure{Class: classify(0, s.Error.ResponseCode), Code: s.Error.ResponseCode, Message: s.Error.Message, Status: status})
			continue
		}
		events, err := s.events(w, interval)
		if err != nil {
			// Not the raw schedule as Detail: it holds meeting subjects.
			fail(malformedFailure(status, err.Error(), nil))
			continue
		}
		res.Availability[email] = calendar.NewAvailability(email, events)
	}
	for _, e := range sr.emails {
		if !answered[strings.ToLower(e)] {
			res.Failures = append(res.Failures, Failure{Email: strings.ToLower(e), Mailbox: sr.mailbox, Class: "missing", Message: "not in getSchedule answer", Status: status})
		}
	}
}

// events reads the schedule's items, or its availability view when it has none (the mailbox's
// sharing settings hide them). One unreadable item fails the whole schedule: using the others
// could show a user who is in a meeting as free, and give them their previous status back.
func (s scheduleInfo) events(w Window, interval int) ([]calendar.Event, error) {
	if len(s.ScheduleItems) == 0 {
		return fromView(s.AvailabilityView, w, interval), nil
	}
	events := make([]calendar.Event, 0, len(s.ScheduleItems))
	for i, it := range s.ScheduleItems {
		e, err := it.event()
		if err != nil {
			return nil, fmt.Errorf("schedule item %d of %d: %w", i+1, len(s.ScheduleItems), err)
		}
		events = append(events, e)
	}
	return events, nil
}

func (it scheduleItem) event() (calendar.Event, error) {
	start, err := it.Start.time()
	if err != nil {
		return calendar.Event{}, fmt.Errorf("start: %w", err)
	}
	end, err := it.End.time()
	if err != nil {
		return calendar.Event{}, fmt.Errorf("end: %w", err)
	}
	if end.Before(start) {
		return calendar.Event{}, fmt.Errorf("ends (%s) before it starts (%s)", it.End.DateTime, it.Start.DateTime)
	}
	return calendar.Event{Start: start, End: end, Status: calendar.ParseStatus(it.Status), Subject: it.Subject, Private: it.IsPrivate}, nil
}

// time reads a dateTimeTimeZone; the request asked for UTC (Prefer: outlook.timezone="UTC").
func (d wireDateTime) time() (time.Time, error) { return ParseDateTime(d.DateTime, d.TimeZone) }

// ParseDateTime reads a Graph dateTimeTimeZone (dateTime "2026-12-03T09:00:00.0000000") asked for
// in UTC: any other time zone is an error.
func ParseDateTime(dateTime, timeZone string) (time.Time, error) {
	if timeZone != "" && !strings.EqualFold(timeZone, "UTC") {
		return time.Time{}, fmt.Errorf("time zone %q, asked for UTC", timeZone)
	}
	if strings.TrimSpace(dateTime) == "" {
		return time.Time{}, errors.New("no dateTime")
	}
	t, err := time.Parse("2006-01-02T15:04:05.9999999", strings.TrimSuffix(dateTime, "Z"))
	if err != nil {
		return time.Time{}, fmt.Errorf("dateTime: %w", err)
	}
	return t, nil
}

// fromView turns an availabilityView ("0022…", one digit per interval from the window's start)
// into one period per run of equal digits, marked FromView, so a period ends where its run ends.
// Free (0) and unknown digits give no period; the last slot is clipped to the window.
func fromView(view string, w Window, interval int) []calendar.Event {
	if interval <= 0 {
		return nil
	}
	step := time.Duration(interval) * time.Minute
	origin := w.Start.UTC().Truncate(time.Second) // the start as sent (dateTimeLayout)
	slots := []rune(view)
	var out []calendar.Event
	for i := 0; i < len(slots); {
		j := i + 1
		for j < len(slots) && slots[j] == slots[i] {
			j++
		}
		st := calendar.ParseStatus(string(slots[i]))
		from, to := origin.Add(time.Duration(i)*step), origin.Add(time.Duration(j)*step)
		if !w.End.IsZero() && to.After(w.End) {
			to = w.End.UTC()
		}
		if st != calendar.Free && st != calendar.Unknown && to.After(from) {
			out = append(out, calendar.Event{Start: from, End: to, Status: st, FromView: true})
		}
		i = j
	}
	return out
}
