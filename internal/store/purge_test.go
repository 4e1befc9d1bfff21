package store

import (
	"context"
	"testing"
	"time"
)

func TestPurgeCyclesKeepsRecentOnesAndTheMaintenanceRows(t *testing.T) {
	s := openInternal(t)
	ctx := context.Background()
	run := runSuffix(3)
	old := time.Date(1999, 1, 2, 3, 4, 5, 0, time.UTC).Format(cycleIDTime) + "-" + run
	recent := time.Now().UTC().Format(cycleIDTime) + "-" + run
	for _, id := range []string{old, recent} {
		if err := s.upsertCycleRow(ctx, id, "plan", map[string]any{"Shards": int32(1)}); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordShard(ctx, ShardReport{CycleID: id, Outcome: "ok", Finished: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.DueForPurge(ctx, time.Now()); err != nil { // makes sure the maintenance partition exists
		t.Fatal(err)
	}
	n, err := s.PurgeCycles(ctx, time.Now().Add(-7*24*time.Hour))
	if err != nil || n < 2 {
		t.Fatalf("purged %d: %v", n, err)
	}
	if left, _ := s.ShardReports(ctx, old); len(left) != 0 {
		t.Fatalf("old cycle's records left: %+v", left)
	}
	if left, _ := s.ShardReports(ctx, recent); len(left) != 1 {
		t.Fatalf("recent cycle's records purged: %+v", left)
	}
	if _, err := s.cycles.GetEntity(ctx, "maintenance", "purge", nil); err != nil {
		t.Fatalf("the maintenance rows must stay: %v", err)
	}
}
