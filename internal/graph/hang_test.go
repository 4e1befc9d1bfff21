package graph_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/internal/graph"
)

// A $batch that Graph accepts and never answers costs one AttemptTimeout, not the invocation.
func TestHungBatchIsRetried(t *testing.T) {
	sim := startSim(t, graphsim.DefaultScenario())
	// The first $batch hangs; then Graph answers again.
	if err := sim.SetFaults(graphsim.Faults{BatchHangFraction: 1}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for sim.Stats().Hung == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		_ = sim.SetFaults(graphsim.Faults{})
	}()
	c := newClientWith(t, sim, func(cfg *graph.Config) { cfg.AttemptTimeout = 200 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	list := emails(800)
	res, err := c.GetSchedules(ctx, list, window())
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	st := sim.Stats()
	t.Logf("hung first $batch: %d users in %v, %d calls, %d retries, %d hung", len(res.Availability), took.Round(time.Millisecond), res.Calls, res.Retries, st.Hung)
	if len(res.Availability) != len(list) || len(res.Failures) != 0 {
		t.Fatalf("%d of %d users resolved, %d failures", len(res.Availability), len(list), len(res.Failures))
	}
	if st.Hung != 1 || res.Retries < 1 || res.Calls != int(st.Requests["$batch"]) {
		t.Fatalf("%d hung, %d retries, %d calls (simulator saw %d)", st.Hung, res.Retries, res.Calls, st.Requests["$batch"])
	}
	if took > 5*time.Second {
		t.Fatalf("took %v: the hung call was not given up after its AttemptTimeout", took)
	}
}

// Graph never answering: GetSchedules gives up by the context's deadline (default AttemptTimeout,
// longer than the deadline) or after MaxAttempts short attempts, with an error saying so.
func TestAlwaysHungBatchFailsInTime(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration // AttemptTimeout; 0 for the default
		budget  time.Duration // the invocation's deadline
		says    string
		hung    int64
	}{
		{"invocation deadline", 0, 1500 * time.Millisecond, "context deadline exceeded", 1},
		// 4 attempts with backoffs of at most 0.5, 1 and 2 s (+ coalescing) fit well in 10 s.
		{"attempts exhausted", 100 * time.Millisecond, 10 * time.Second, "$batch failed 4 times: no answer to the $batch within 100ms", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, graphsim.DefaultScenario())
			if err := sim.SetFaults(graphsim.Faults{BatchHangFraction: 1}); err != nil {
				t.Fatal(err)
			}
			c := newClientWith(t, sim, func(cfg *graph.Config) { cfg.AttemptTimeout = tc.timeout })
			ctx, cancel := context.WithTimeout(context.Background(), tc.budget)
			defer cancel()
			start := time.Now()
			res, err := c.GetSchedules(ctx, emails(40), window())
			took := time.Since(start)
			t.Logf("gave up after %v: %v", took.Round(time.Millisecond), err)
			if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), tc.says) || len(res.Availability) != 0 {
				t.Fatalf("err %v, %d resolved; want an error saying %q", err, len(res.Availability), tc.says)
			}
			if !strings.HasPrefix(err.Error(), "graph: ") || strings.Count(err.Error(), "graph: ") != 1 {
				t.Fatalf("error %q: want it prefixed once", err)
			}
			if took > tc.budget+500*time.Millisecond {
				t.Fatalf("returned %v after the deadline", took-tc.budget)
			}
			if h := sim.Stats().Hung; h != tc.hung {
				t.Fatalf("%d calls hung, want %d", h, tc.hung)
			}
		})
	}
}
