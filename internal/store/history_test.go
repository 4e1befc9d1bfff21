package store

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/calstatus/calstatus/devtools/teststack"
	"github.com/calstatus/calstatus/internal/azstorage"
)

// This test runs against Azurite (started by the test stack). It lives in package store so it can
// write plan rows without RecordCycle, which would also move the shared "latest cycle" pointer
// other tests and the local stack read.

func openInternal(t *testing.T) *Store {
	t.Helper()
	env := teststack.Require(t)
	s, err := Open(context.Background(), azstorage.Account{ConnectionString: env.StorageConnectionString})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCyclesReadsPlansAndShardsSinceATime(t *testing.T) {
	s := openInternal(t)
	ctx := context.Background()
	// Cycle ids far in the past (nobody else asks for 2001) with this run's own suffix.
	run := runSuffix(3)
	base := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC).Add(time.Duration(time.Now().UnixNano()%1e6) * time.Second)
	id := func(at time.Time, n int) string { return at.Format(cycleIDTime) + "-" + run + string(rune('a'+n)) }

	type cycle struct {
		plan   CycleReport
		shards []ShardReport
	}
	at := []time.Time{base.Add(-time.Hour), base.Add(-time.Second), base, base.Add(10 * time.Minute), base.Add(5 * time.Minute)}
	var cycles []cycle
	for i, t0 := range at {
		c := cycle{plan: CycleReport{CycleID: id(t0, i), Started: t0, Users: 800 + i, Shards: 2}}
		if i != 4 { // the last one has no shard rows yet
			c.shards = []ShardReport{
				{CycleID: c.plan.CycleID, Shard: 1, Users: 400 + i, Changed: 7, Failed: 1, Failures: map[string]int{"throttled": 1},
					FailedUsers: []FailedUser{{User: "alice", Class: "throttled"}}, GraphCalls: 3, Throttled: 2, Outcome: "failed", Error: "graph: 503 <b>down</b>", ErrorClass: "graph",
					Duration: 1500 * time.Millisecond, Finished: t0.Add(40 * time.Second), Attempt: 2},
				{CycleID: c.plan.CycleID, Shard: 0, Users: 400, Changed: 2, GraphCalls: 1, Outcome: "ok",
					Duration: 900 * time.Millisecond, Finished: t0.Add(20 * time.Second), Attempt: 1},
			}
		}
		cycles = append(cycles, c)
	}
	t.Cleanup(func() {
		for _, c := range cycles {
			_, _ = s.cycles.DeleteEntity(context.Background(), c.plan.CycleID, "plan", nil)
			for _, r := range c.shards {
				_, _ = s.cycles.DeleteEntity(context.Background(), c.plan.CycleID, shardRowKey(r.Shard), nil)
			}
		}
	})
	for _, c := range cycles {
		// What RecordCycle writes, without its "last-cycle" row.
		if err := s.upsertCycleRow(ctx, c.plan.CycleID, "plan", map[string]any{"Started": aztables.EDMDateTime(c.plan.Started.UTC()),
			"Users": int32(c.plan.Users), "Shards": int32(c.plan.Shards)}); err != nil {
			t.Fatal(err)
		}
		for _, r := range c.shards {
			if err := s.RecordShard(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
	}

	got, err := s.Cycles(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	var mine []CycleHistory
	for i, h := range got {
		if i > 0 && h.Plan.Started.Before(got[i-1].Plan.Started) {
			t.Fatalf("not sorted by start: %s after %s", h.Plan.CycleID, got[i-1].Plan.CycleID)
		}
		if h.Plan.CycleID == "" || strings.HasPrefix(h.Plan.CycleID, "maintenance") {
			t.Fatalf("not a cycle: %+v", h.Plan)
		}
		if strings.Contains(h.Plan.CycleID, "-"+run) {
			mine = append(mine, h)
		}
	}
	// Started before since (an hour, a second): left out. The rest, oldest first.
	want := []cycle{cycles[2], cycles[4], cycles[3]}
	if len(mine) != len(want) {
		t.Fatalf("got %d of this run's cycles, want %d: %+v", len(mine), len(want), mine)
	}
	for i, w := range want {
		h := mine[i]
		if h.Plan.CycleID != w.plan.CycleID || !h.Plan.Started.Equal(w.plan.Started) || h.Plan.Users != w.plan.Users || h.Plan.Shards != 2 {
			t.Fatalf("cycle %d: plan %+v, want %+v", i, h.Plan, w.plan)
		}
		if len(h.Shards) != len(w.shards) {
			t.Fatalf("cycle %s: %d shard rows, want %d", h.Plan.CycleID, len(h.Shards), len(w.shards))
		}
		for j, r := range h.Shards {
			if r.Shard != j {
				t.Fatalf("cycle %s: shard rows not sorted: %+v", h.Plan.CycleID, h.Shards)
			}
		}
	}
	f := mine[0].Shards[1]
	if f.CycleID != cycles[2].plan.CycleID || f.Outcome != "failed" || f.Error != "graph: 503 <b>down</b>" || f.ErrorClass != "graph" ||
		f.Failures["throttled"] != 1 || !slices.Equal(f.FailedUsers, []FailedUser{{User: "alice", Class: "throttled"}}) || f.GraphCalls != 3 || f.Throttled != 2 || f.Changed != 7 || f.Duration != 1500*time.Millisecond ||
		!f.Finished.Equal(base.Add(40*time.Second)) || f.Attempt != 2 {
		t.Fatalf("shard row read back as %+v", f)
	}

	// Nothing recorded since: no cycles.
	if later, err := s.Cycles(ctx, time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil || len(later) != 0 {
		t.Fatalf("cycles after 2999: %d, %v", len(later), err)
	}
}
