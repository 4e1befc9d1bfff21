package funchost

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
)

var (
	azuriteOnce sync.Once
	azuriteSvc  *azqueue.ServiceClient
	azuriteErr  error
)

// redact hides AccountKey/SharedAccessSignature values of a connection string.
func redact(cs string) string {
	parts := strings.Split(cs, ";")
	for i, p := range parts {
		if k, _, ok := strings.Cut(p, "="); ok && (strings.EqualFold(k, "AccountKey") || strings.EqualFold(k, "SharedAccessSignature")) {
			parts[i] = k + "=***"
		}
	}
	return strings.Join(parts, ";")
}

// requireAzurite returns a service client for the test storage account and
// fails the test (it does not skip) when it is unreachable. Under -short
// (make unit) it skips the test without touching storage.
func requireAzurite(t *testing.T) *azqueue.ServiceClient {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Azurite (the test stack's storage): skipped under -short; run without -short (make test) to include it")
	}
	cs := storageConnString()
	azuriteOnce.Do(func() {
		opts := &azqueue.ClientOptions{}
		opts.Retry.MaxRetries = -1 // fail fast
		azuriteSvc, azuriteErr = azqueue.NewServiceClientFromConnectionString(expandConnectionString(cs), opts)
		if azuriteErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, azuriteErr = azuriteSvc.GetServiceProperties(ctx, nil)
	})
	if azuriteErr != nil {
		t.Fatalf("queue tests need Azurite (or a storage account) at %q (AZURE_STORAGE_CONNECTION_STRING, default UseDevelopmentStorage=true → 127.0.0.1:10001), but it is unreachable: %v\n"+
			"Start it with `devtools/stack/stack.sh up`, or: npm install --prefix /tmp/azurite azurite@3.35.0 && "+
			"/tmp/azurite/node_modules/.bin/azurite --silent --disableTelemetry --skipApiVersionCheck --loose --location /tmp/azurite/data", redact(cs), azuriteErr)
	}
	return azuriteSvc
}

func createQueue(t *testing.T, svc *azqueue.ServiceClient, name string) *azqueue.QueueClient {
	t.Helper()
	qc := svc.NewQueueClient(name)
	if _, err := qc.Create(context.Background(), nil); err != nil {
		t.Fatalf("create queue %s: %v", name, err)
	}
	t.Cleanup(func() { qc.Delete(context.Background(), nil) })
	return qc
}

func enqueue(t *testing.T, qc *azqueue.QueueClient, text string) string {
	t.Helper()
	resp, err := qc.EnqueueMessage(context.Background(), text, nil)
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	return *resp.Messages[0].MessageID
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// drain dequeues every message of a queue (raw text).
func drain(t *testing.T, qc *azqueue.QueueClient) []string {
	t.Helper()
	var out []string
	n := int32(32)
	for {
		resp, err := qc.DequeueMessages(context.Background(), &azqueue.DequeueMessagesOptions{NumberOfMessages: &n})
		if err != nil {
			t.Fatalf("dequeue: %v", err)
		}
		if len(resp.Messages) == 0 {
			return out
		}
		for _, m := range resp.Messages {
			out = append(out, *m.MessageText)
			qc.DeleteMessage(context.Background(), *m.MessageID, *m.PopReceipt, nil)
		}
	}
}

// waitEvents collects events until done says so.
func waitEvents(t *testing.T, h *testHost, timeout time.Duration, done func([]Event) bool) []Event {
	t.Helper()
	var evs []Event
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-h.Events():
			evs = append(evs, ev)
			if done(evs) {
				return evs
			}
		case <-deadline:
			t.Fatalf("timed out; events so far: %+v", evs)
		}
	}
}

func count(evs []Event, kind EventKind, fn string) int {
	n := 0
	for _, e := range evs {
		if e.Kind == kind && (fn == "" || e.Function == fn) {
			n++
		}
	}
	return n
}

func TestQueueDeliveryQuirks(t *testing.T) {
	svc := requireAzurite(t)
	h := startTestHost(t, nil)
	in := createQueue(t, svc, h.in)
	createQueue(t, svc, h.out)

	text := `{"hello":"wörld","n":1,"s":"<a&b>"}`
	id := enqueue(t, in, b64(text))
	evs := waitEvents(t, h, 10*time.Second, func(e []Event) bool { return count(e, EventInvocation, "QueueFn") == 1 })
	ev := evs[len(evs)-1]
	if !ev.OK || ev.MessageID != id || ev.DequeueCount != 1 || ev.Queue != h.in {
		t.Fatalf("event = %+v", ev)
	}
	if ev.Logs[1] != "text="+text || ev.Logs[2] != "dequeueCount=1" {
		t.Errorf("handler decoded %q", ev.Logs)
	}
	e := decodeEcho(t, ev.Result.ReturnValue)

	// Data.msg: a JSON string whose content is the JSON-quoted message text.
	var once, twice string
	if err := json.Unmarshal(e.Payload.Data["msg"], &once); err != nil {
		t.Fatalf("Data.msg = %s is not a string", e.Payload.Data["msg"])
	}
	if err := json.Unmarshal([]byte(once), &twice); err != nil || twice != text {
		t.Errorf("Data.msg = %s; decoded once %q, twice %q", e.Payload.Data["msg"], once, twice)
	}
	// Metadata quirks.
	md := e.Payload.Metadata
	if s := string(md["DequeueCount"]); s != `"1"` {
		t.Errorf("DequeueCount = %s, want \"1\"", s)
	}
	if s := string(md["Id"]); s != `"\"`+id+`\""` {
		t.Errorf("Id = %s, want the id with escaped quotes", s)
	}
	for _, k := range []string{"PopReceipt", "InsertionTime", "ExpirationTime", "NextVisibleTime"} {
		var s string
		if err := json.Unmarshal(md[k], &s); err != nil || !strings.HasPrefix(s, `"`) || !strings.HasSuffix(s, `"`) {
			t.Errorf("Metadata.%s = %s, want a double-encoded string", k, md[k])
		}
	}
	var ins string
	json.Unmarshal(md["InsertionTime"], &ins)
	if _, err := time.Parse(`"2006-01-02T15:04:05-07:00"`, ins); err != nil {
		t.Errorf("InsertionTime %s: %v", ins, err)
	}
	if _, ok := md["QueueTrigger"]; ok {
		t.Error("Metadata has QueueTrigger (the host drops *trigger keys)")
	}
	var sys struct{ MethodName string }
	if json.Unmarshal(md["sys"], &sys); sys.MethodName != "QueueFn" {
		t.Errorf("sys = %s", md["sys"])
	}
	if err := waitIdle(h, h.in); err != nil {
		t.Fatal(err)
	}
}

func waitIdle(h *testHost, q string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return h.WaitIdle(ctx, q)
}

func TestQueueOutputBindings(t *testing.T) {
	svc := requireAzurite(t)
	h := startTestHost(t, nil)
	in := createQueue(t, svc, h.in)
	out := svc.NewQueueClient(h.out) // created by the output binding
	t.Cleanup(func() { out.Delete(context.Background(), nil) })

	enqueue(t, in, b64(`{"emit":[{"n":1},{"n":2},{"n":3}]}`))
	enqueue(t, in, b64(`{"emit":{"single":true}}`))
	enqueue(t, in, b64(`{"emit":"test"}`))
	enqueue(t, in, b64(`{"emit":"plain text"}`))
	enqueue(t, in, b64(`{"emit":[{"n":4}],"fail":true}`)) // failed: outputs not applied
	waitEvents(t, h, 10*time.Second, func(e []Event) bool { return count(e, EventInvocation, "QueueFn") >= 5 })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := h.WaitIdle(ctx, ""); err == nil {
		t.Fatal("WaitIdle returned although a failed message is waiting for retry")
	} else if !strings.Contains(err.Error(), "deadline") {
		t.Fatal(err)
	}

	raw := drain(t, out)
	var decoded []string
	for _, r := range raw {
		b, err := base64.StdEncoding.DecodeString(r)
		if err != nil {
			t.Fatalf("output message %q is not base64 (messageEncoding base64)", r)
		}
		decoded = append(decoded, string(b))
	}
	sort.Strings(decoded)
	want := []string{"plain text", "\xb5\xeb\x2d", `{"n":1}`, `{"n":2}`, `{"n":3}`, `{"single":true}`}
	sort.Strings(want)
	if strings.Join(decoded, "|") != strings.Join(want, "|") {
		t.Errorf("output messages = %q, want %q", decoded, want)
	}
	// The "test" quirk: stored text equals the original string.
	found := false
	for _, r := range raw {
		found = found || r == "test"
	}
	if !found || !h.logs.contains(`the string "test" is valid base64`) {
		t.Errorf("base64 quirk: raw %q, warning logged %v", raw, h.logs.contains(`"test" is valid base64`))
	}
}

func TestQueueRetryAndPoison(t *testing.T) {
	svc := requireAzurite(t)
	h := startTestHost(t, func(o *Options) {
		o.Overrides = &QueueOverrides{VisibilityTimeout: Ptr(time.Duration(0)), MaxDequeueCount: Ptr(3), MaxPollingInterval: Ptr(200 * time.Millisecond)}
	})
	in := createQueue(t, svc, h.in)
	poison := svc.NewQueueClient(h.in + "-poison")
	t.Cleanup(func() { poison.Delete(context.Background(), nil) })

	original := b64(`{"fail":true,"tag":"poison-me"}`)
	id := enqueue(t, in, original)
	evs := waitEvents(t, h, 15*time.Second, func(e []Event) bool { return count(e, EventPoison, "") == 1 })

	var dcs []int64
	for _, e := range evs {
		if e.Kind == EventInvocation {
			if e.OK || e.MessageID != id {
				t.Errorf("unexpected invocation event %+v", e)
			}
			dcs = append(dcs, e.DequeueCount)
		}
	}
	if len(dcs) != 3 || dcs[0] != 1 || dcs[1] != 2 || dcs[2] != 3 {
		t.Errorf("dequeue counts = %v, want [1 2 3]", dcs)
	}
	if n := count(evs, EventRetry, "QueueFn"); n != 2 {
		t.Errorf("%d retry events, want 2", n)
	}
	if err := waitIdle(h, h.in); err != nil {
		t.Fatal(err)
	}
	got := drain(t, poison)
	if len(got) != 1 || got[0] != original {
		t.Errorf("poison queue = %q, want [%q]", got, original)
	}
	if !h.logs.contains("Message has reached MaxDequeueCount of 3. Moving message to queue '" + h.in + "-poison'") {
		t.Error("poison not logged")
	}

	// A message that is not valid base64 goes straight to the poison queue.
	enqueue(t, in, "not base64 {json}")
	waitEvents(t, h, 10*time.Second, func(e []Event) bool { return count(e, EventPoison, "") == 1 })
	if got := drain(t, poison); len(got) != 1 || got[0] != "not base64 {json}" {
		t.Errorf("poison queue = %q", got)
	}
}

func TestQueueBatchConcurrency(t *testing.T) {
	svc := requireAzurite(t)
	h := startTestHost(t, nil)
	in := createQueue(t, svc, h.in)
	for i := 0; i < 6; i++ {
		enqueue(t, in, b64(`{"sleepMs":700}`))
	}
	evs := waitEvents(t, h, 20*time.Second, func(e []Event) bool { return count(e, EventInvocation, "QueueFn") == 6 })
	// The invocations' own intervals overlap when messages are processed concurrently (no wall-clock
	// bound, which a loaded machine could miss).
	type span struct{ from, to time.Time }
	var spans []span
	for _, e := range evs {
		if e.Kind == EventInvocation && e.Function == "QueueFn" {
			spans = append(spans, span{e.Time.Add(-e.Duration), e.Time})
		}
	}
	most := 0
	for _, a := range spans {
		n := 0
		for _, b := range spans {
			if b.from.Before(a.to) && a.from.Before(b.to) {
				n++
			}
		}
		most = max(most, n)
	}
	if most < 2 {
		t.Errorf("6 messages of 700 ms never ran at the same time: not processed concurrently")
	}
	if err := waitIdle(h, h.in); err != nil {
		t.Fatal(err)
	}
}

func TestRunQueueFunctionWithInput(t *testing.T) {
	h := startTestHost(t, nil)
	res, err := h.RunFunctionInput(context.Background(), "QueueFn", `{"x":1}`)
	if err != nil {
		t.Fatal(err)
	}
	if res.Logs[1] != `text={"x":1}` {
		t.Errorf("logs = %q", res.Logs)
	}
}
