package funchost

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var echoHandlerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "funchost-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	echoHandlerBin = filepath.Join(dir, "echohandler")
	cmd := exec.Command("go", "build", "-o", echoHandlerBin, "./testdata/echohandler")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building testdata/echohandler:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// logSink collects host logs and forwards them to t.Log while the test runs.
type logSink struct {
	t      *testing.T
	mu     sync.Mutex
	lines  []string
	closed atomic.Bool
}

func (s *logSink) logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	s.mu.Lock()
	s.lines = append(s.lines, line)
	s.mu.Unlock()
	if !s.closed.Load() {
		s.t.Log(line)
	}
}

func (s *logSink) contains(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

func storageConnString() string {
	if cs := os.Getenv("AZURE_STORAGE_CONNECTION_STRING"); cs != "" {
		return cs
	}
	return "UseDevelopmentStorage=true"
}

func randSuffix() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type testHost struct {
	*Host
	logs     *logSink
	in, out  string
	settings map[string]string
}

// startTestHost starts testdata/app with the echo handler and unique queue
// names.
func startTestHost(t *testing.T, mutate func(*Options)) *testHost {
	t.Helper()
	sfx := randSuffix()
	settings := map[string]string{
		"AzureWebJobsStorage": storageConnString(),
		"QueueConn":           storageConnString(),
		"TIMER_SCHEDULE":      "0 */5 * * * *",
		"IN_QUEUE":            "fh-in-" + sfx,
		"OUT_QUEUE":           "fh-out-" + sfx,
		"ECHO_MARKER":         "marker-" + sfx,
	}
	sink := &logSink{t: t}
	opts := Options{
		AppDir:        "testdata/app",
		HandlerPath:   echoHandlerBin,
		Settings:      settings,
		HTTPAddr:      "127.0.0.1:0",
		Logf:          sink.logf,
		DisableTimers: true,
		Overrides:     &QueueOverrides{MaxPollingInterval: Ptr(200 * time.Millisecond)},
	}
	if mutate != nil {
		mutate(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		sink.closed.Store(true)
	})
	return &testHost{Host: h, logs: sink, in: settings["IN_QUEUE"], out: settings["OUT_QUEUE"], settings: opts.Settings}
}

// echoed is what the echo handler returns in ReturnValue.
type echoed struct {
	Payload struct {
		Data     map[string]json.RawMessage
		Metadata map[string]json.RawMessage
	}
	Headers http.Header
	Path    string
}

func decodeEcho(t *testing.T, raw json.RawMessage) echoed {
	t.Helper()
	var e echoed
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("decoding echo %s: %v", raw, err)
	}
	return e
}

func TestTimerInvocation(t *testing.T) {
	h := startTestHost(t, nil)

	var timer FunctionInfo
	for _, f := range h.Functions() {
		if f.Name == "TimerFn" {
			timer = f
		}
	}
	if timer.Schedule != "0 */5 * * * *" || timer.Trigger != "timerTrigger" {
		t.Fatalf("TimerFn info = %+v (schedule should be resolved from %%TIMER_SCHEDULE%%)", timer)
	}
	if n := timer.NextRun; n.Second() != 0 || n.Minute()%5 != 0 || time.Until(n) > 5*time.Minute || time.Until(n) <= 0 {
		t.Errorf("NextRun = %v", n)
	}

	ctx := context.Background()
	res, err := h.RunFunction(ctx, "TimerFn")
	if err != nil {
		t.Fatalf("RunFunction: %v", err)
	}
	if !res.OK || res.InvocationID == "" || len(res.Logs) != 1 || res.Logs[0] != "hello from TimerFn" {
		t.Fatalf("result = %+v", res)
	}
	if !h.logs.contains("[TimerFn] hello from TimerFn") || !h.logs.contains("Executed 'Functions.TimerFn' (Succeeded, Id="+res.InvocationID) {
		t.Error("handler Logs / invocation end not logged")
	}
	e := decodeEcho(t, res.ReturnValue)
	if e.Path != "/TimerFn" {
		t.Errorf("path = %q", e.Path)
	}
	if got := e.Headers.Get("X-Azure-Functions-InvocationId"); got != res.InvocationID {
		t.Errorf("invocation id header = %q, want %q", got, res.InvocationID)
	}
	if ua := e.Headers.Get("User-Agent"); !strings.HasPrefix(ua, "Azure-Functions-Host/4.") {
		t.Errorf("User-Agent = %q", ua)
	}
	if ct := e.Headers.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
	var timerData struct {
		Schedule       map[string]any
		ScheduleStatus *struct{ Last, Next, LastUpdated string }
		IsPastDue      *bool
	}
	if err := json.Unmarshal(e.Payload.Data["myTimer"], &timerData); err != nil {
		t.Fatalf("Data.myTimer = %s: %v", e.Payload.Data["myTimer"], err)
	}
	if timerData.Schedule["AdjustForDST"] != true || timerData.IsPastDue == nil || *timerData.IsPastDue {
		t.Errorf("Data.myTimer = %s", e.Payload.Data["myTimer"])
	}
	if st := timerData.ScheduleStatus; st == nil || st.Last != "0001-01-01T00:00:00" || !strings.HasSuffix(st.Next, ":00+00:00") {
		t.Errorf("ScheduleStatus = %s", e.Payload.Data["myTimer"])
	}
	var sys struct{ MethodName, UtcNow, RandGuid string }
	if err := json.Unmarshal(e.Payload.Metadata["sys"], &sys); err != nil || sys.MethodName != "TimerFn" || !strings.HasSuffix(sys.UtcNow, "Z") || len(sys.RandGuid) != 36 {
		t.Errorf("Metadata.sys = %s", e.Payload.Metadata["sys"])
	}
	if len(e.Payload.Metadata) != 1 {
		t.Errorf("timer Metadata = %v, want only sys", e.Payload.Metadata)
	}

	// A schedule more frequent than once a minute has no monitor:
	// ScheduleStatus is null. PlainTimer's handler answers text/plain, which
	// the real host cannot read: the invocation fails.
	res, err = h.RunFunction(ctx, "PlainTimer")
	if err == nil || !strings.Contains(err.Error(), "No MediaTypeFormatter is available") || res.OK {
		t.Errorf("PlainTimer err = %v", err)
	}
	var plain struct {
		Data map[string]map[string]json.RawMessage
	}
	json.Unmarshal(res.Request, &plain)
	if s := string(plain.Data["t"]["ScheduleStatus"]); s != "null" {
		t.Errorf("ScheduleStatus for */10s = %s, want null", s)
	}

	if _, err := h.RunFunction(ctx, "NoSuchFunction"); err == nil {
		t.Error("unknown function accepted")
	}
}

func TestFunctionTimeout(t *testing.T) {
	h := startTestHost(t, func(o *Options) {
		o.Settings["AzureFunctionsJobHost__functionTimeout"] = "00:00:01"
	})
	// SlowTimer takes 3 s: only an enforced 1 s timeout makes this invocation fail.
	_, err := h.RunFunction(context.Background(), "SlowTimer")
	if err == nil || !strings.Contains(err.Error(), "Timeout value of 00:00:01 exceeded by function 'Functions.SlowTimer'") {
		t.Fatalf("err = %v", err)
	}
}

func TestHandlerEnvironment(t *testing.T) {
	h := startTestHost(t, nil)
	if !h.logs.contains("[handler] echohandler starting; ECHO_MARKER=" + h.settings["ECHO_MARKER"]) {
		t.Error("app settings not passed to the handler as environment variables")
	}
}

func TestMissingSetting(t *testing.T) {
	opts := Options{
		AppDir:       "testdata/app",
		FunctionsDir: "testdata/badfns",
		HandlerPath:  echoHandlerBin,
		Settings:     map[string]string{"AzureWebJobsStorage": storageConnString()},
		HTTPAddr:     "127.0.0.1:0",
		Logf:         t.Logf,
	}
	_, err := Start(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "BadFn") || !strings.Contains(err.Error(), "'%NOT_DEFINED_SETTING%' does not resolve to a value") {
		t.Fatalf("Start err = %v", err)
	}

	// Like the real host: with the error tolerated, the other functions run.
	opts.TolerateFunctionErrors = true
	h, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	fns := h.Functions()
	if len(fns) != 1 || fns[0].Name != "GoodHttp" {
		t.Fatalf("functions = %+v", fns)
	}
	resp, err := http.Get(h.HTTPURL() + "/api/GoodHttp")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Errorf("GoodHttp status = %d", resp.StatusCode)
	}
}

func TestHTTPTrigger(t *testing.T) {
	h := startTestHost(t, nil)
	base := h.HTTPURL()

	req, _ := http.NewRequest("POST", base+"/api/items/42?a=1&b=x&b=y", strings.NewReader(`{"k":"v"}`))
	req.Header.Set("X-Test", "hello")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 || resp.Header.Get("X-Echo") != "yes" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d headers %v body %s", resp.StatusCode, resp.Header, body)
	}
	var got struct {
		Method string
		Query  map[string]string
		Params map[string]string
		Body   string
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	if got.Method != "POST" || got.Query["a"] != "1" || got.Query["b"] != "x,y" || got.Params["id"] != "42" || len(got.Params) != 1 || got.Body != `{"k":"v"}` {
		t.Errorf("echo = %+v", got)
	}

	// The request object as the handler saw it.
	var ev Event
	for ev = range h.Events() {
		if ev.Function == "HttpFn" {
			break
		}
	}
	e := decodeEcho(t, ev.Result.ReturnValue)
	var reqObj struct {
		Url        string
		Method     string
		Headers    map[string][]string
		Identities []any
	}
	if err := json.Unmarshal(e.Payload.Data["req"], &reqObj); err != nil {
		t.Fatal(err)
	}
	if reqObj.Url != base+"/api/items/42?a=1&b=x&b=y" || reqObj.Headers["X-Test"][0] != "hello" || reqObj.Identities == nil {
		t.Errorf("Data.req = %s", e.Payload.Data["req"])
	}
	if s := string(e.Payload.Metadata["id"]); s != `"\"42\""` {
		t.Errorf("Metadata.id = %s (route params are double-encoded like other binding data)", s)
	}

	// Optional parameter, GET.
	resp, err = http.Get(base + "/api/items/7/extra")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 || !strings.Contains(string(body), `"opt":"extra"`) {
		t.Errorf("optional param: %d %s", resp.StatusCode, body)
	}

	// $return http output, default route = function name.
	resp, err = http.Get(base + "/api/HttpReturn")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "plain GET" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("$return: %d %q %v", resp.StatusCode, body, resp.Header)
	}

	// Method filter and unknown routes → 404.
	for _, c := range []struct{ method, path string }{{"DELETE", "/api/items/1"}, {"GET", "/api/nope"}, {"GET", "/items/1"}} {
		req, _ := http.NewRequest(c.method, base+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("%s %s = %d, want 404", c.method, c.path, resp.StatusCode)
		}
	}

	// Host status and the admin "run now" endpoint.
	resp, err = http.Get(base + "/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET / = %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Post(base+"/admin/functions/TimerFn", "application/json", strings.NewReader(`{"input":""}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("admin invoke = %d", resp.StatusCode)
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-h.Events():
			if ev.Function == "TimerFn" && ev.Kind == EventInvocation {
				if !ev.OK {
					t.Errorf("admin-invoked TimerFn failed: %v", ev.Err)
				}
				return
			}
		case <-timeout:
			t.Fatal("admin-invoked TimerFn never ran")
		}
	}
}

func TestHandlerStartupFailure(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "broken")
	os.WriteFile(script, []byte("#!/bin/sh\necho boom: cannot start >&2\nexit 3\n"), 0o755)
	_, err := Start(context.Background(), Options{
		AppDir: "testdata/app", HandlerPath: script, HTTPAddr: "127.0.0.1:0", Logf: t.Logf,
		Settings: map[string]string{"AzureWebJobsStorage": storageConnString(), "QueueConn": storageConnString(),
			"TIMER_SCHEDULE": "0 0 * * * *", "IN_QUEUE": "aaa", "OUT_QUEUE": "bbb"},
	})
	if err == nil || !strings.Contains(err.Error(), "boom: cannot start") {
		t.Fatalf("err = %v", err)
	}
}

func TestHandlerExit(t *testing.T) {
	h := startTestHost(t, nil)
	_, err := h.RunFunctionInput(context.Background(), "QueueFn", "exit")
	if err == nil {
		t.Fatal("invocation that killed the handler succeeded")
	}
	select {
	case <-h.HandlerDone():
	case <-time.After(5 * time.Second):
		t.Fatal("HandlerDone not closed")
	}
	if herr := h.HandlerErr(); herr == nil || !strings.Contains(herr.Error(), "exit status 7") {
		t.Errorf("HandlerErr = %v", herr)
	}
	waitFor := time.After(5 * time.Second)
	for {
		select {
		case ev := <-h.Events():
			if ev.Kind == EventHandlerExit {
				if !h.logs.contains("custom handler process exited unexpectedly") {
					t.Error("exit not logged")
				}
				return
			}
		case <-waitFor:
			t.Fatal("no handler-exit event")
		}
	}
}

func TestForwardingHTTP(t *testing.T) {
	h, err := Start(context.Background(), Options{
		AppDir: "testdata/fwdapp", FunctionsDir: "testdata/badfns", TolerateFunctionErrors: true,
		HandlerPath: echoHandlerBin, HTTPAddr: "127.0.0.1:0", Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	resp, err := http.Get(h.HTTPURL() + "/GoodHttp?q=1") // routePrefix ""
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "forwarded GET /GoodHttp?q=1 id=") || len(body) < len("forwarded GET /GoodHttp?q=1 id=")+36 {
		t.Errorf("forwarded: %d %q", resp.StatusCode, body)
	}
}
