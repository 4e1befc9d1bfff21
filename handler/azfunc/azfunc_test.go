package azfunc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Payloads in the shapes the Functions host sends (see FACTS.md: values may be JSON-encoded twice).
const (
	timerPayload  = `{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":{"Last":"2026-11-22T10:00:00.0041+00:00","Next":"2026-11-22T10:05:00+00:00","LastUpdated":"2026-11-22T10:00:00.0041+00:00"},"IsPastDue":false}},"Metadata":{"sys":{"MethodName":"SyncTimer","UtcNow":"2026-11-22T10:05:00.01Z","RandGuid":"0b4f6a29-5b19-4bd2-a2e2-2c62c1c5a3f1"}}}`
	timerMinValue = `{"Data":{"timer":"{\"Schedule\":{\"AdjustForDST\":true},\"ScheduleStatus\":{\"Last\":\"0001-01-01T00:00:00\",\"Next\":\"2026-11-22T10:05:00\",\"LastUpdated\":\"0001-01-01T00:00:00\"},\"IsPastDue\":false}"},"Metadata":{}}`
	timerFirstRun = `{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":true}},"Metadata":{}}`
	queueTwice    = `{"Data":{"msg":"\"{\\\"v\\\":1,\\\"cycle\\\":\\\"c1\\\"}\""},"Metadata":{"DequeueCount":"\"3\"","ExpirationTime":"\"2026-11-29T10:00:00+00:00\"","Id":"\"5b0b1f5e-9c52-4d6c-9a27-0d7b0c1e2f3a\"","InsertionTime":"\"2026-11-22T10:00:00+00:00\"","NextVisibleTime":"\"2026-11-22T10:10:00+00:00\"","PopReceipt":"\"AgAAAAMAAAAAAAAA\"","sys":{"MethodName":"SyncShard","UtcNow":"2026-11-22T10:00:01Z"}}}`
	queueOnce     = `{"Data":{"msg":"{\"v\":1,\"cycle\":\"c1\"}"},"Metadata":{"DequeueCount":1,"Id":"abc","PopReceipt":"pr"}}`
	queueObject   = `{"Data":{"msg":{"v":1,"cycle":"c1"}},"Metadata":{"DequeueCount":"1"}}`
	httpPayload   = `{"Data":{"req":{"Url":"http://localhost:7071/api/status?x=1","Method":"POST","Query":{"x":"1"},"Headers":{"Content-Type":["application/json"],"X-Thing":["a","b"]},"Params":{"id":"42"},"Identities":[],"Body":"{\"hello\":\"world\"}"}},"Metadata":{}}`
)

func decode(t *testing.T, s string) *Invocation {
	t.Helper()
	inv, err := DecodeInvocation(strings.NewReader(s))
	if err != nil {
		t.Fatalf("DecodeInvocation: %v", err)
	}
	return inv
}

func TestTimer(t *testing.T) {
	ti, err := decode(t, timerPayload).Timer("timer")
	if err != nil {
		t.Fatal(err)
	}
	if ti.IsPastDue || ti.ScheduleStatus == nil || !ti.ScheduleStatus.Next.Equal(time.Date(2026, 11, 22, 10, 5, 0, 0, time.UTC)) {
		t.Fatalf("timer = %+v", ti)
	}
	ti, err = decode(t, timerMinValue).Timer("timer")
	if err != nil || !ti.ScheduleStatus.Last.IsZero() || !ti.ScheduleStatus.Next.Equal(time.Date(2026, 11, 22, 10, 5, 0, 0, time.UTC)) {
		t.Fatalf(".NET dates without offset: %+v, %v", ti.ScheduleStatus, err)
	}
	ti, err = decode(t, timerFirstRun).Timer("timer")
	if err != nil || !ti.IsPastDue || ti.ScheduleStatus != nil {
		t.Fatalf("first run: %+v, %v", ti, err)
	}
}

func TestQueueMessageShapes(t *testing.T) {
	for name, payload := range map[string]string{"twice": queueTwice, "once": queueOnce, "object": queueObject} {
		t.Run(name, func(t *testing.T) {
			m, err := decode(t, payload).QueueMessage("msg")
			if err != nil {
				t.Fatal(err)
			}
			var body struct {
				V     int    `json:"v"`
				Cycle string `json:"cycle"`
			}
			if err := json.Unmarshal(m.Body, &body); err != nil || body.V != 1 || body.Cycle != "c1" {
				t.Fatalf("body %q: %+v %v", m.Body, body, err)
			}
			if m.DequeueCount < 1 {
				t.Fatalf("dequeue count %d", m.DequeueCount)
			}
		})
	}
	m, _ := decode(t, queueTwice).QueueMessage("msg")
	if m.ID != "5b0b1f5e-9c52-4d6c-9a27-0d7b0c1e2f3a" || m.PopReceipt != "AgAAAAMAAAAAAAAA" || m.DequeueCount != 3 {
		t.Fatalf("metadata not unquoted: %+v", m)
	}
	if !m.InsertionTime.Equal(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("insertion time %v", m.InsertionTime)
	}
}

func TestHTTPRequest(t *testing.T) {
	r, err := decode(t, httpPayload).HTTPRequest("req")
	if err != nil {
		t.Fatal(err)
	}
	if r.Method != "POST" || r.Query["x"] != "1" || r.Params["id"] != "42" || string(r.Body) != `{"hello":"world"}` {
		t.Fatalf("request = %+v", r)
	}
	if r.Header("content-type") != "application/json" || len(r.Headers["X-Thing"]) != 2 {
		t.Fatalf("headers = %v", r.Headers)
	}
}

// The identities the host gives a request are .NET ClaimsIdentity objects serialised by Newtonsoft
// (azure-functions-host, HttpRequestExtensions.GetRequestAsJObject); a request authorised by a key
// carries one of type WebJobsAuthLevel whose keyid claim names the key.
const keyIdentities = `[{"AuthenticationType":"WebJobsAuthLevel","IsAuthenticated":true,"Actor":null,"BootstrapContext":null,` +
	`"Claims":[{"Issuer":"LOCAL AUTHORITY","OriginalIssuer":"LOCAL AUTHORITY","Properties":{},` +
	`"Type":"http://schemas.microsoft.com/2017/07/functions/claims/authlevel","Value":"Function","ValueType":"http://www.w3.org/2001/XMLSchema#string"},` +
	`{"Issuer":"LOCAL AUTHORITY","OriginalIssuer":"LOCAL AUTHORITY","Properties":{},` +
	`"Type":"http://schemas.microsoft.com/2017/07/functions/claims/keyid","Value":"default","ValueType":"http://www.w3.org/2001/XMLSchema#string"}],` +
	`"Label":null,"Name":null,"NameClaimType":"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",` +
	`"RoleClaimType":"http://schemas.microsoft.com/ws/2008/06/identity/claims/role"}]`

func TestHTTPRequestCaller(t *testing.T) {
	for name, c := range map[string]struct{ headers, identities, want string }{
		"local host, no keys":  {`{}`, `[]`, ""},
		"no identities at all": {`{}`, `null`, ""},
		"function key":         {`{}`, keyIdentities, `function key "default"`},
		"App Service user":     {`{"X-MS-CLIENT-PRINCIPAL-NAME":["admin@contoso.example"]}`, keyIdentities, "admin@contoso.example"},
		"unreadable":           {`{}`, `{"not":"a list"}`, ""},
	} {
		t.Run(name, func(t *testing.T) {
			payload := `{"Data":{"req":{"Url":"https://app.example/api/Status","Method":"POST","Headers":` + c.headers +
				`,"Identities":` + c.identities + `,"Body":"action=pause"}},"Metadata":{}}`
			r, err := decode(t, payload).HTTPRequest("req")
			if err != nil || r.Caller != c.want {
				t.Fatalf("caller %q (%v), want %q", r.Caller, err, c.want)
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	for name, payload := range map[string]string{
		"not json":        `hello`,
		"no data":         `{"Metadata":{}}`,
		"array":           `[1,2]`,
		"missing binding": `{"Data":{"other":"x"},"Metadata":{}}`,
		"bad count":       `{"Data":{"msg":"{}"},"Metadata":{"DequeueCount":"many"}}`,
		"empty message":   `{"Data":{"msg":""},"Metadata":{}}`,
	} {
		t.Run(name, func(t *testing.T) {
			inv, err := DecodeInvocation(strings.NewReader(payload))
			if err == nil {
				_, err = inv.QueueMessage("msg")
			}
			var in *InputError
			if !errors.As(err, &in) {
				t.Fatalf("want InputError, got %v", err)
			}
		})
	}
}

func post(t *testing.T, h http.Handler, body string) (int, Response) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/Fn", strings.NewReader(body))
	req.Header.Set("X-Azure-Functions-InvocationId", "inv-1")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var resp Response
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatalf("response is not JSON: %q", rec.Body.String())
	}
	return rec.Code, resp
}

func TestServeQueueOutputsAndLogs(t *testing.T) {
	s := &Server{Stderr: &bytes.Buffer{}}
	h := s.Queue("msg", func(ctx context.Context, c *Call, m QueueMessage) error {
		if c.InvocationID != "inv-1" {
			t.Errorf("invocation id %q", c.InvocationID)
		}
		c.Log.Info("shard done", "users", 400, "changed", 3)
		return c.SetOutput("out", []map[string]int{{"a": 1}, {"a": 2}})
	})
	code, resp := post(t, h, queueTwice)
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	if len(resp.Logs) != 1 || resp.Logs[0] != `{"level":"INFO","msg":"shard done","users":400,"changed":3}` {
		t.Fatalf("logs %q", resp.Logs)
	}
	if out, ok := resp.Outputs["out"].([]any); !ok || len(out) != 2 {
		t.Fatalf("outputs %v", resp.Outputs)
	}
}

func TestServeFailures(t *testing.T) {
	stderr := &bytes.Buffer{}
	s := &Server{Stderr: stderr}
	h := s.Queue("msg", func(ctx context.Context, c *Call, m QueueMessage) error {
		_ = c.SetOutput("out", map[string]int{"a": 1})
		return errors.New("graph unavailable")
	})
	code, resp := post(t, h, queueOnce)
	if code != 500 || len(resp.Outputs) != 0 {
		t.Fatalf("status %d outputs %v", code, resp.Outputs)
	}
	if !strings.Contains(stderr.String(), "graph unavailable") {
		t.Fatalf("failure not echoed to stderr: %q", stderr.String())
	}
	code, _ = post(t, h, `{"Data":`)
	if code != 400 {
		t.Fatalf("malformed invocation: status %d", code)
	}
}

func TestServeHTTP(t *testing.T) {
	s := &Server{}
	h := s.HTTP("req", "res", func(ctx context.Context, c *Call, r HTTPRequest) (HTTPResponse, error) {
		return HTTPResponse{StatusCode: 201, Body: "made " + r.Params["id"]}, nil
	})
	code, resp := post(t, h, httpPayload)
	res, _ := resp.Outputs["res"].(map[string]any)
	if code != 200 || res["statusCode"] != float64(201) || res["body"] != "made 42" {
		t.Fatalf("status %d outputs %v", code, resp.Outputs)
	}
	ret := s.HTTP("req", "$return", func(ctx context.Context, c *Call, r HTTPRequest) (HTTPResponse, error) {
		return HTTPResponse{}, errors.New("boom")
	})
	_, resp = post(t, ret, httpPayload)
	if rv, _ := resp.ReturnValue.(map[string]any); rv["statusCode"] != float64(500) {
		t.Fatalf("return value %v", resp.ReturnValue)
	}
}

func TestFailedInvocationLinesKeepTheirFieldsOnStderr(t *testing.T) {
	got := tagged(`{"level":"ERROR","msg":"shard done","outcome":"failed"}`, "SyncShard", "abc")
	var m map[string]any
	if err := json.Unmarshal([]byte(got), &m); err != nil || m["msg"] != "shard done" || m["function"] != "SyncShard" || m["invocation"] != "abc" {
		t.Fatalf("tagged line %s (%v)", got, err)
	}
	if got := tagged("not json", "SyncShard", "abc"); got != "SyncShard invocation=abc not json" {
		t.Fatalf("plain line %q", got)
	}
}
