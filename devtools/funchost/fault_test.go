package funchost

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitLog waits until a log line contains sub.
func waitLog(t *testing.T, h *testHost, sub string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !h.logs.contains(sub) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line containing %q", sub)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestKillHandler(t *testing.T) {
	svc := requireAzurite(t)
	h := startTestHost(t, func(o *Options) {
		o.Overrides = &QueueOverrides{VisibilityTimeout: Ptr(time.Duration(0)), MaxPollingInterval: Ptr(200 * time.Millisecond)}
	})
	in := createQueue(t, svc, h.in)
	oldURL, oldDone := h.HandlerURL(), h.HandlerDone()

	// Invocations racing with the restart (for the race detector); they may fail.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			h.RunFunction(context.Background(), "TimerFn")
			_, _ = h.HandlerURL(), h.HandlerErr()
		}
	}()

	id := enqueue(t, in, b64(`{"hang":"kill-me"}`))
	waitLog(t, h, "[handler] hanging kill-me")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.KillHandler(ctx); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()

	select {
	case <-oldDone:
	default:
		t.Error("the killed process's HandlerDone is not closed")
	}
	select {
	case <-h.HandlerDone():
		t.Fatalf("the new handler exited: %v", h.HandlerErr())
	default:
	}
	if h.HandlerURL() == oldURL {
		t.Errorf("HandlerURL unchanged after the restart: %s", oldURL)
	}

	// The hung invocation fails; the retry (possibly more than one, if it
	// raced with the restart) succeeds on the new process.
	done := func(e Event) bool { return e.Kind == EventInvocation && e.MessageID == id && e.OK }
	evs := waitEvents(t, h, 20*time.Second, func(evs []Event) bool { return done(evs[len(evs)-1]) })
	var tries []Event
	retries, restarts := 0, 0
	for _, e := range evs {
		switch {
		case e.Kind == EventHandlerExit:
			t.Errorf("EventHandlerExit for a deliberate kill: %+v", e)
		case e.Kind == EventHandlerRestart:
			restarts++
		case e.Kind == EventRetry && e.MessageID == id:
			retries++
		case e.Kind == EventInvocation && e.MessageID == id:
			tries = append(tries, e)
		}
	}
	if n := len(tries); n < 2 || retries != n-1 || restarts != 1 {
		t.Fatalf("%d invocations, %d retries, %d restart events", n, retries, restarts)
	}
	if e := tries[0]; e.OK || e.DequeueCount != 1 || e.Err == nil {
		t.Errorf("the killed invocation = %+v", e)
	}
	for i, e := range tries {
		if e.DequeueCount != int64(i+1) || e.OK != (i == len(tries)-1) {
			t.Errorf("try %d = %+v", i+1, e)
		}
	}

	if res, err := h.RunFunctionInput(context.Background(), "QueueFn", `{"after":1}`); err != nil || !res.OK {
		t.Errorf("invocation after the restart: %v", err)
	}
	if !h.logs.contains("funchost: restarting the custom handler (killed)") || h.logs.contains("exited unexpectedly") {
		t.Error("restart not logged, or the kill logged as an unexpected exit")
	}
	if err := waitIdle(h, h.in); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case e := <-h.Events():
			if e.Kind == EventHandlerExit {
				t.Errorf("EventHandlerExit for a deliberate kill: %+v", e)
			}
			continue
		default:
		}
		break
	}
}

func TestPauseQueues(t *testing.T) {
	svc := requireAzurite(t)
	// A slow poll: only the wake-ups (enqueue, ResumeQueues) get messages promptly.
	h := startTestHost(t, func(o *Options) {
		o.Overrides = &QueueOverrides{MaxPollingInterval: Ptr(20 * time.Second)}
	})
	in := createQueue(t, svc, h.in)
	ctx := context.Background()
	conn := h.listeners[0].connStr
	put := func(text string) {
		t.Helper()
		if err := h.enqueue(ctx, conn, h.in, [][]byte{[]byte(text)}); err != nil {
			t.Fatal(err)
		}
	}

	// A running invocation finishes normally while paused.
	put(`{"sleepMs":1000,"tag":"running"}`)
	waitLog(t, h, "Executing 'Functions.QueueFn'")
	h.PauseQueues()
	put(`{"tag":"paused"}`) // wakes the listener, which must not dequeue it
	evs := waitEvents(t, h, 10*time.Second, func(e []Event) bool { return count(e, EventInvocation, "QueueFn") == 1 })
	if e := evs[len(evs)-1]; !e.OK || !strings.Contains(strings.Join(e.Logs, " "), `"running"`) {
		t.Errorf("running invocation = %+v", e)
	}
	select {
	case e := <-h.Events():
		t.Fatalf("event while paused: %+v", e)
	case <-time.After(time.Second):
	}
	props, err := in.GetProperties(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := props.ApproximateMessagesCount; n == nil || *n != 1 {
		t.Errorf("queue length while paused = %v, want 1", n)
	}

	h.ResumeQueues()
	evs = waitEvents(t, h, 5*time.Second, func(e []Event) bool { return count(e, EventInvocation, "QueueFn") == 1 })
	if e := evs[len(evs)-1]; !e.OK || !strings.Contains(strings.Join(e.Logs, " "), `"paused"`) {
		t.Errorf("invocation after resume = %+v", e)
	}
	if err := waitIdle(h, h.in); err != nil {
		t.Fatal(err)
	}
}
