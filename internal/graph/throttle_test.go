package graph_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/internal/graph"
)

// A 429 told to one shard holds the others the process runs: after a throttled $batch (the app is
// throttled) and after a throttled sub-request (a duplicate delivery of the same shard names the
// same mailboxes), nothing reaches Graph before the Retry-After.
func TestThrottleHoldsEveryShardOfTheProcess(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults graphsim.Faults
		second func(first []string) []string // the users of the shard that starts meanwhile
	}{
		{"whole batch", graphsim.Faults{BatchThrottleFraction: 1, ThrottleRetryAfter: 2, PunishEarlyRetries: true},
			func([]string) []string { return emails(800)[400:] }},
		{"sub-requests", graphsim.Faults{ThrottleFraction: 1, ThrottleRetryAfter: 2, PunishEarlyRetries: true},
			func(first []string) []string { return first }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, graphsim.DefaultScenario())
			if err := sim.SetFaults(tc.faults); err != nil {
				t.Fatal(err)
			}
			// The first shard waits out its Retry-After once it has read the 429s: start the second then.
			waiting := make(chan struct{})
			var once sync.Once
			c := newClientWith(t, sim, func(cfg *graph.Config) {
				cfg.Sleep = func(ctx context.Context, d time.Duration) error {
					once.Do(func() { close(waiting) })
					timer := time.NewTimer(d)
					defer timer.Stop()
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-timer.C:
						return nil
					}
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			first := emails(800)[:400]
			done := make(chan error, 1)
			go func() {
				_, err := c.GetSchedules(ctx, first, window())
				done <- err
			}()
			<-waiting
			if err := sim.SetFaults(graphsim.Faults{PunishEarlyRetries: true}); err != nil {
				t.Fatal(err)
			}
			res, err := c.GetSchedules(ctx, tc.second(first), window())
			if err != nil || len(res.Availability) != 400 {
				t.Fatalf("second shard: %d users, %v", len(res.Availability), err)
			}
			if err := <-done; err != nil {
				t.Fatalf("first shard: %v", err)
			}
			if st := sim.Stats(); st.EarlyRetries != 0 {
				t.Fatalf("%d requests before their Retry-After", st.EarlyRetries)
			}
		})
	}
}
