// Package azfunc speaks the Azure Functions custom-handler protocol: it decodes the invocations the
// Functions host POSTs to /<FunctionName> and encodes the answers it expects. It is the only place that
// sees raw invocation JSON; business code gets typed values and a structured logger.
//
// The host is known to JSON-encode non-HTTP values twice (queue data as a quoted string of JSON,
// DequeueCount as "1", Id and PopReceipt with extra quotes), so every field is decoded defensively.
package azfunc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// MaxInvocationBytes bounds what we read from the host; queue messages are at most 64 KB and
// HTTP bodies we accept are small.
const MaxInvocationBytes = 4 << 20

// Invocation is one decoded request from the host.
type Invocation struct {
	Data     map[string]json.RawMessage
	Metadata map[string]json.RawMessage
	// InvocationID comes from the X-Azure-Functions-InvocationId header when the host sends it.
	InvocationID string
}

// InputError marks malformed input from the host or from a message: the handler answers 400 and
// changes nothing.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

func inputErrorf(format string, args ...any) error {
	return &InputError{Err: fmt.Errorf(format, args...)}
}

// DecodeInvocation reads the host's {"Data":{...},"Metadata":{...}} envelope.
func DecodeInvocation(r io.Reader) (*Invocation, error) {
	body, err := io.ReadAll(io.LimitReader(r, MaxInvocationBytes+1))
	if err != nil {
		return nil, inputErrorf("reading invocation: %v", err)
	}
	if len(body) > MaxInvocationBytes {
		return nil, inputErrorf("invocation larger than %d bytes", MaxInvocationBytes)
	}
	var env struct {
		Data     map[string]json.RawMessage `json:"Data"`
		Metadata map[string]json.RawMessage `json:"Metadata"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&env); err != nil {
		return nil, inputErrorf("invocation is not a JSON object with Data and Metadata: %v", err)
	}
	if env.Data == nil {
		return nil, inputErrorf("invocation has no Data")
	}
	if env.Metadata == nil {
		env.Metadata = map[string]json.RawMessage{}
	}
	return &Invocation{Data: env.Data, Metadata: env.Metadata}, nil
}

// unwrapString peels JSON string layers: `"\"{\\\"a\\\":1}\""` → `{"a":1}`. Values that are not
// strings are returned as they are.
func unwrapString(raw json.RawMessage) json.RawMessage {
	for i := 0; i < 3; i++ {
		trimmed := bytes.TrimSpace(raw)
		if len(trimmed) == 0 || trimmed[0] != '"' {
			return trimmed
		}
		var s string
		if err := json.Unmarshal(trimmed, &s); err != nil {
			return trimmed
		}
		raw = json.RawMessage(s)
	}
	return raw
}

// text returns a metadata value as plain text, whatever number of quote layers it came with.
func text(raw json.RawMessage) string {
	v := bytes.TrimSpace(raw)
	for len(v) > 0 && v[0] == '"' {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			break
		}
		v = []byte(s)
	}
	if string(v) == "null" {
		return ""
	}
	return string(v)
}

func (inv *Invocation) binding(name string) (json.RawMessage, error) {
	raw, ok := inv.Data[name]
	if !ok {
		keys := make([]string, 0, len(inv.Data))
		for k := range inv.Data {
			keys = append(keys, k)
		}
		return nil, inputErrorf("invocation has no input binding %q (has %s)", name, strings.Join(keys, ", "))
	}
	return raw, nil
}

// TimerInfo is a timer trigger's input.
type TimerInfo struct {
	IsPastDue      bool
	ScheduleStatus *ScheduleStatus
}

// ScheduleStatus is the host's record of the timer's last and next occurrences (null on first run).
type ScheduleStatus struct {
	Last, Next, LastUpdated time.Time
}

// parseTime reads the host's .NET date strings: RFC 3339, or without an offset (then UTC), with up
// to seven fractional digits; DateTime.MinValue ("0001-01-01T00:00:00") is the zero time.
func parseTime(raw json.RawMessage) (time.Time, error) {
	v := text(raw)
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.9999999", "01/02/2006 15:04:05"} {
		if t, err := time.Parse(layout, v); err == nil {
			if t.Year() <= 1 {
				return time.Time{}, nil
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a date", v)
}

// Timer decodes the timer binding named name.
func (inv *Invocation) Timer(name string) (TimerInfo, error) {
	raw, err := inv.binding(name)
	if err != nil {
		return TimerInfo{}, err
	}
	var t struct {
		IsPastDue      json.RawMessage `json:"IsPastDue"`
		ScheduleStatus json.RawMessage `json:"ScheduleStatus"`
	}
	if err := json.Unmarshal(unwrapString(raw), &t); err != nil {
		return TimerInfo{}, inputErrorf("timer binding %q: %v", name, err)
	}
	info := TimerInfo{IsPastDue: strings.EqualFold(text(t.IsPastDue), "true")}
	if s := unwrapString(t.ScheduleStatus); len(s) > 0 && string(s) != "null" {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(s, &raw); err != nil {
			return TimerInfo{}, inputErrorf("timer binding %q ScheduleStatus: %v", name, err)
		}
		var st ScheduleStatus
		for key, dst := range map[string]*time.Time{"Last": &st.Last, "Next": &st.Next, "LastUpdated": &st.LastUpdated} {
			if *dst, err = parseTime(raw[key]); err != nil {
				return TimerInfo{}, inputErrorf("timer binding %q ScheduleStatus.%s: %v", name, key, err)
			}
		}
		info.ScheduleStatus = &st
	}
	return info, nil
}

// QueueMessage is a queue trigger's input with its metadata.
type QueueMessage struct {
	ID              string
	PopReceipt      string
	DequeueCount    int
	InsertionTime   time.Time
	ExpirationTime  time.Time
	NextVisibleTime time.Time
	// Body is the message text: JSON for every message calstatus writes.
	Body []byte
}

// QueueMessage decodes the queue trigger binding named name.
func (inv *Invocation) QueueMessage(name string) (QueueMessage, error) {
	raw, err := inv.binding(name)
	if err != nil {
		return QueueMessage{}, err
	}
	body := unwrapString(raw)
	if len(body) == 0 {
		return QueueMessage{}, inputErrorf("queue binding %q is empty", name)
	}
	msg := QueueMessage{
		Body:       []byte(body),
		ID:         text(inv.Metadata["Id"]),
		PopReceipt: text(inv.Metadata["PopReceipt"]),
	}
	if dc := text(inv.Metadata["DequeueCount"]); dc != "" {
		n, err := strconv.Atoi(dc)
		if err != nil {
			return QueueMessage{}, inputErrorf("queue metadata DequeueCount %q is not a number", dc)
		}
		msg.DequeueCount = n
	}
	for key, dst := range map[string]*time.Time{
		"InsertionTime": &msg.InsertionTime, "ExpirationTime": &msg.ExpirationTime, "NextVisibleTime": &msg.NextVisibleTime,
	} {
		t, err := parseTime(inv.Metadata[key])
		if err != nil {
			return QueueMessage{}, inputErrorf("queue metadata %s: %v", key, err)
		}
		*dst = t
	}
	return msg, nil
}

// HTTPRequest is an HTTP trigger's input (without request forwarding).
type HTTPRequest struct {
	URL     string
	Method  string
	Query   map[string]string
	Headers map[string][]string
	Params  map[string]string
	Body    []byte
	// Caller is who the platform says made the request: App Service authentication's user
	// (X-MS-CLIENT-PRINCIPAL-NAME, a header outside requests cannot set), else the name of the key
	// the host accepted (its identity's keyid claim) as `function key "default"`; "" when neither
	// says (an anonymous function, or a local host without keys).
	Caller string
}

// keyIDClaim is the claim naming the key the host accepted, in the identity it gives a request
// authorised by a key (authentication type WebJobsAuthLevel).
const keyIDClaim = "http://schemas.microsoft.com/2017/07/functions/claims/keyid"

// identity is one of the request's identities as the host serialises them (.NET ClaimsIdentity).
type identity struct {
	Claims []struct{ Type, Value string }
}

// caller is HTTPRequest.Caller from the headers and the host's identities.
func caller(r HTTPRequest, identities json.RawMessage) string {
	if name := strings.TrimSpace(r.Header("X-MS-CLIENT-PRINCIPAL-NAME")); name != "" {
		return name
	}
	var ids []identity
	_ = json.Unmarshal(unwrapString(identities), &ids) // unreadable: no key named
	for _, id := range ids {
		for _, c := range id.Claims {
			if c.Type == keyIDClaim && c.Value != "" {
				return `function key "` + c.Value + `"`
			}
		}
	}
	return ""
}

// Header returns the first value of a header, matched case-insensitively.
func (r HTTPRequest) Header(name string) string {
	for k, v := range r.Headers {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// HTTPRequest decodes the HTTP trigger binding named name.
func (inv *Invocation) HTTPRequest(name string) (HTTPRequest, error) {
	raw, err := inv.binding(name)
	if err != nil {
		return HTTPRequest{}, err
	}
	var r struct {
		URL        string                     `json:"Url"`
		Method     string                     `json:"Method"`
		Query      map[string]json.RawMessage `json:"Query"`
		Headers    map[string]json.RawMessage `json:"Headers"`
		Params     map[string]json.RawMessage `json:"Params"`
		Identities json.RawMessage            `json:"Identities"`
		Body       json.RawMessage            `json:"Body"`
	}
	if err := json.Unmarshal(unwrapString(raw), &r); err != nil {
		return HTTPRequest{}, inputErrorf("http binding %q: %v", name, err)
	}
	req := HTTPRequest{URL: r.URL, Method: strings.ToUpper(r.Method), Query: map[string]string{},
		Headers: map[string][]string{}, Params: map[string]string{}}
	for k, v := range r.Query {
		req.Query[k] = text(v)
	}
	for k, v := range r.Params {
		req.Params[k] = text(v)
	}
	for k, v := range r.Headers {
		var many []string
		if err := json.Unmarshal(v, &many); err != nil {
			many = []string{text(v)}
		}
		req.Headers[k] = many
	}
	req.Caller = caller(req, r.Identities)
	// The body arrives as a JSON string of the raw body, or as the parsed JSON value itself.
	if b := bytes.TrimSpace(r.Body); len(b) > 0 && string(b) != "null" {
		if b[0] == '"' {
			var s string
			if err := json.Unmarshal(b, &s); err != nil {
				return HTTPRequest{}, inputErrorf("http binding %q body: %v", name, err)
			}
			req.Body = []byte(s)
		} else {
			req.Body = b
		}
	}
	return req, nil
}

// HTTPResponse is what an HTTP output binding returns to the caller.
type HTTPResponse struct {
	StatusCode int               `json:"statusCode"`
	Body       string            `json:"body"`
	Headers    map[string]string `json:"headers,omitempty"`
}

// Response is the handler's answer to one invocation.
type Response struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
}

// ErrNoOutput is returned by SetOutput for an empty binding name.
var ErrNoOutput = errors.New("azfunc: output binding name is empty")
