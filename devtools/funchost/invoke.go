package funchost

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
)

// invocationInput is what a trigger hands to invoke.
type invocationInput struct {
	data     map[string]any
	metadata map[string]any
	reason   string
	// queue trigger details, for events
	queue        string
	messageID    string
	dequeueCount int64
	// httpTrigger: the caller maps the http output to the response
	httpTrigger bool
}

// sysMetadata is the "sys" binding data every invocation carries.
func sysMetadata(fn *function) map[string]any {
	return map[string]any{
		"MethodName": fn.Name,
		"UtcNow":     netUTCDate(time.Now()),
		"RandGuid":   newUUID(),
	}
}

// invoke sends one invocation to the handler, processes Logs and applies
// the (non-http) output bindings when it succeeded.
func (h *Host) invoke(ctx context.Context, fn *function, in invocationInput) *Result {
	h.beginInvocation(fn.Name)
	defer h.endInvocation(fn.Name)

	id := newUUID()
	res := &Result{Function: fn.Name, InvocationID: id}
	start := time.Now()
	h.logf("Executing 'Functions.%s' (Reason='%s', Id=%s)", fn.Name, in.reason, id)
	if in.metadata == nil {
		in.metadata = map[string]any{}
	}
	in.metadata["sys"] = sysMetadata(fn)
	res.Request = marshalJSON(map[string]any{"Data": in.data, "Metadata": in.metadata})

	err := h.callHandler(ctx, fn, id, res)
	if err == nil {
		for _, line := range res.Logs {
			h.logf("[%s] %s", fn.Name, readable(line))
		}
		if !in.httpTrigger {
			err = h.applyOutputs(ctx, fn, res)
		} else {
			h.warnUnknownOutputs(fn, res)
			err = h.applyQueueOutputs(ctx, fn, res)
		}
	}
	res.Duration = time.Since(start)
	res.Err = err
	res.OK = err == nil
	if res.OK {
		h.logf("Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)", fn.Name, id, res.Duration.Milliseconds())
	} else {
		h.logf("Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)\n  %v", fn.Name, id, res.Duration.Milliseconds(), err)
	}
	h.emit(Event{Kind: EventInvocation, Function: fn.Name, InvocationID: id, Queue: in.queue, MessageID: in.messageID,
		DequeueCount: in.dequeueCount, OK: res.OK, Err: res.Err, Duration: res.Duration, Logs: res.Logs, Result: res})
	return res
}

// invocationResponse is the handler's answer. Like Newtonsoft.Json, Go
// matches these names case-insensitively.
type invocationResponse struct {
	Outputs     map[string]json.RawMessage `json:"Outputs"`
	Logs        []json.RawMessage          `json:"Logs"`
	ReturnValue json.RawMessage            `json:"ReturnValue"`
}

func (h *Host) callHandler(ctx context.Context, fn *function, id string, res *Result) error {
	timeout := h.cfg.FunctionTimeout
	cctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	hc := h.handler.Load() // the process this invocation goes to, even if KillHandler swaps it
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, hc.url+"/"+fn.Name, bytes.NewReader(res.Request))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("X-Azure-Functions-InvocationId", id)
	req.Header.Set("X-Azure-Functions-HostVersion", HostVersion)
	req.Header.Set("User-Agent", "Azure-Functions-Host/"+HostVersion)
	resp, err := hc.client.Do(req)
	if err == nil {
		res.StatusCode = resp.StatusCode
		res.Response, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err != nil {
		if timeout > 0 && errors.Is(cctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return fmt.Errorf("Timeout value of %s exceeded by function 'Functions.%s' (Id: '%s'). Initiating cancellation. (In Azure the host then restarts.)", formatTimeSpan(timeout), fn.Name, id)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("invocation cancelled (host shutting down): %w", err)
		}
		select {
		case <-hc.proc.exited:
			return fmt.Errorf("the custom handler process is not running (exited: %v): %w", hc.proc.waitErr, err)
		default:
		}
		return fmt.Errorf("sending the invocation to the custom handler: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// The real host calls EnsureSuccessStatusCode: the body (and its Logs)
		// never reach Application Insights. We show it to help debugging.
		return fmt.Errorf("Response status code does not indicate success: %d (%s). [funchost: body, which the real host discards: %s]",
			resp.StatusCode, http.StatusText(resp.StatusCode), truncate(string(res.Response), 2000))
	}
	// The host reads the answer with ReadAsAsync<HttpScriptInvocationResult>,
	// whose JSON formatter only accepts application/json and text/json.
	ct := resp.Header.Get("Content-Type")
	mt := "application/octet-stream"
	if ct != "" {
		if m, _, err := mime.ParseMediaType(ct); err == nil {
			mt = strings.ToLower(m)
		} else {
			mt = ct
		}
	}
	if mt != "application/json" && mt != "text/json" {
		return fmt.Errorf("No MediaTypeFormatter is available to read an object of type 'HttpScriptInvocationResult' from content with media type '%s'. (funchost: the handler must answer with Content-Type: application/json)", mt)
	}
	if len(bytes.TrimSpace(res.Response)) == 0 || string(bytes.TrimSpace(res.Response)) == "null" {
		return errors.New("the custom handler answered with an empty body; the host needs a JSON object {\"Outputs\":{...},\"Logs\":[...],\"ReturnValue\":...} (an empty answer fails the invocation in Azure)")
	}
	var ir invocationResponse
	if err := json.Unmarshal(res.Response, &ir); err != nil {
		return fmt.Errorf("the custom handler's answer is not a valid invocation response: %v; body: %s", err, truncate(string(res.Response), 2000))
	}
	res.Outputs = ir.Outputs
	res.ReturnValue = ir.ReturnValue
	for _, l := range ir.Logs {
		res.Logs = append(res.Logs, rawToString(l))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// outputValue finds the handler's value for an output binding: Outputs
// (case-insensitive name) or ReturnValue for "$return".
func outputValue(res *Result, b Binding) (json.RawMessage, bool) {
	if b.Name == "$return" {
		if len(res.ReturnValue) == 0 {
			return nil, false
		}
		return res.ReturnValue, true
	}
	for k, v := range res.Outputs {
		if strings.EqualFold(k, b.Name) {
			return v, true
		}
	}
	return nil, false
}

// warnUnknownOutputs logs Outputs entries that match no output binding; the
// real host silently ignores them.
func (h *Host) warnUnknownOutputs(fn *function, res *Result) {
	for k := range res.Outputs {
		found := false
		for _, b := range fn.outputs {
			if strings.EqualFold(b.Name, k) {
				found = true
			}
		}
		if !found {
			h.logf("funchost: WARNING %s: Outputs.%s matches no output binding in function.json; the host ignores it", fn.Name, k)
		}
	}
}

func (h *Host) applyOutputs(ctx context.Context, fn *function, res *Result) error {
	h.warnUnknownOutputs(fn, res)
	for _, b := range fn.outputs {
		if strings.EqualFold(b.Type, "http") {
			if _, ok := outputValue(res, b); ok {
				h.logf("funchost: WARNING %s: http output %q set by a non-HTTP invocation; ignored", fn.Name, b.Name)
			}
		}
	}
	return h.applyQueueOutputs(ctx, fn, res)
}

func (h *Host) applyQueueOutputs(ctx context.Context, fn *function, res *Result) error {
	for _, b := range fn.outputs {
		if !strings.EqualFold(b.Type, "queue") {
			continue
		}
		raw, ok := outputValue(res, b)
		if !ok {
			continue
		}
		msgs, warns, err := queueMessagesFor(raw)
		for _, w := range warns {
			h.logf("funchost: WARNING %s: output %q: %s", fn.Name, b.Name, w)
		}
		if err != nil {
			return fmt.Errorf("Error while handling parameter %s after function returned: %w", b.Name, err)
		}
		if len(msgs) == 0 {
			continue
		}
		// Output bindings are flushed even if the host is stopping.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err = h.enqueue(wctx, b.connStr, b.QueueName, msgs)
		cancel()
		if err != nil {
			return fmt.Errorf("Error while handling parameter %s after function returned: writing to queue '%s': %w", b.Name, b.QueueName, err)
		}
	}
	return nil
}

// queueMessagesFor turns an output binding value into message payloads the
// way the host does: an array gives one message per element, an object its
// JSON, a string its text — except that a string which is valid base64 is
// base64-decoded first (host quirk), so its decoded bytes are enqueued.
func queueMessagesFor(raw json.RawMessage) ([][]byte, []string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil, nil
	}
	var warns []string
	one := func(v json.RawMessage) ([]byte, bool) {
		v = bytes.TrimSpace(v)
		switch {
		case len(v) == 0 || string(v) == "null":
			return nil, false
		case v[0] == '"':
			var s string
			_ = json.Unmarshal(v, &s)
			if b, ok := dotnetBase64(s); ok {
				warns = append(warns, fmt.Sprintf("the string %q is valid base64, so the host base64-decodes it and enqueues the %d decoded bytes instead of the text (emit a JSON object instead)", truncate(s, 80), len(b)))
				return b, true
			}
			return []byte(s), true
		default:
			var buf bytes.Buffer
			if err := json.Compact(&buf, v); err != nil {
				return v, true
			}
			return buf.Bytes(), true
		}
	}
	var out [][]byte
	if raw[0] == '[' {
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			return nil, nil, err
		}
		for _, e := range elems {
			if m, ok := one(e); ok {
				out = append(out, m)
			}
		}
		return out, warns, nil
	}
	if m, ok := one(raw); ok {
		out = append(out, m)
	}
	return out, warns, nil
}

// dotnetBase64 decodes s if Convert.FromBase64String would accept it
// (whitespace ignored, length a multiple of 4, standard alphabet, padding).
func dotnetBase64(s string) ([]byte, bool) {
	clean := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, s)
	if len(clean) == 0 || len(clean)%4 != 0 {
		return nil, false
	}
	b, err := base64.StdEncoding.DecodeString(clean)
	if err != nil {
		return nil, false
	}
	return b, true
}

// RunFunction invokes a non-HTTP function now, synchronously, like Core
// Tools' POST /admin/functions/<name> with no input: a timer fires with its
// current schedule status; a queue function gets an empty message. Outputs
// are applied when it succeeds. The error is Result.Err (or a lookup error).
func (h *Host) RunFunction(ctx context.Context, name string) (Result, error) {
	return h.RunFunctionInput(ctx, name, "")
}

// RunFunctionInput is RunFunction with an input: for a queue function, the
// message text (no real queue message is involved, so there is no retry).
func (h *Host) RunFunctionInput(ctx context.Context, name, input string) (Result, error) {
	fn, err := h.lookup(name)
	if err != nil {
		return Result{}, err
	}
	res, err := h.runNow(ctx, fn, input)
	if err != nil {
		return Result{}, err
	}
	return *res, res.Err
}

func (h *Host) runNow(ctx context.Context, fn *function, input string) (*Result, error) {
	switch fn.triggerType() {
	case "timertrigger":
		return h.fireTimer(ctx, fn, false, "This function was programmatically called via the host APIs.", false), nil
	case "queuetrigger":
		now := time.Now().UTC()
		meta := map[string]any{
			"DequeueCount":    doubleEncode(0),
			"Id":              doubleEncode(newUUID()),
			"InsertionTime":   doubleEncode(netDate(now)),
			"ExpirationTime":  doubleEncode(netDate(now.Add(7 * 24 * time.Hour))),
			"NextVisibleTime": doubleEncode(netDate(now)),
		}
		data := map[string]any{fn.trigger.Name: queueTriggerValue(fn, []byte(input))}
		return h.invoke(ctx, fn, invocationInput{data: data, metadata: meta, reason: "This function was programmatically called via the host APIs.", queue: fn.Queue}), nil
	default:
		return nil, fmt.Errorf("funchost: %s is an HTTP function; call it at %s", fn.Name, fn.URL)
	}
}

// queueTriggerValue is Data.<name> for a queue message: the host sends the
// message text through JsonConvert.SerializeObject, so the handler receives
// a JSON string whose content is the JSON-quoted text. With dataType
// "binary" it is the base64 of the bytes instead.
func queueTriggerValue(fn *function, body []byte) any {
	if strings.EqualFold(fn.trigger.DataType, "binary") {
		return base64.StdEncoding.EncodeToString(body)
	}
	return doubleEncode(strings.ToValidUTF8(string(body), "\uFFFD"))
}
