package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/calstatus/calstatus/devtools/teststack"
	"github.com/calstatus/calstatus/internal/engine"
	"github.com/calstatus/calstatus/internal/store"
)

// These tests run against Azurite (started by the test stack).

func open(t *testing.T) *store.Store {
	t.Helper()
	env := teststack.Require(t)
	s, err := store.Open(context.Background(), env.StorageConnectionString)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ids returns n sorted user ids sharing their first character (one partition), unique per run.
func ids(prefix string, n int) []string {
	run := time.Now().UnixNano() % 1e9
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%09d%016d", prefix, run, i)[:26]
	}
	return out
}

func TestStatesRoundTripInTransactions(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	users := ids("z", 250) // more than two transactions' worth in one partition
	until := time.Now().Add(time.Hour).Truncate(time.Second).UTC()
	var changes []store.StateChange
	for _, id := range users {
		changes = append(changes, store.StateChange{UserID: id, New: engine.State{PrevStatus: "away", SetStatus: "dnd",
			CustomEmoji: "calendar", CustomText: "In a meeting", EventKey: "busy@1", Until: until}})
	}
	w0 := s.Writes
	if err := s.SaveStates(ctx, changes); err != nil {
		t.Fatal(err)
	}
	if s.Writes-w0 != 250 {
		t.Fatalf("%d entity writes", s.Writes-w0)
	}
	got, err := s.LoadStates(ctx, users)
	if err != nil || len(got) != 250 {
		t.Fatalf("loaded %d states: %v", len(got), err)
	}
	if st := got[users[7]].State; st != changes[7].New {
		t.Fatalf("round trip: %+v != %+v", st, changes[7].New)
	}
	// A subset loads only its own users (range query, not the partition).
	sub, err := s.LoadStates(ctx, users[10:20])
	if err != nil || len(sub) != 10 {
		t.Fatalf("subset: %d %v", len(sub), err)
	}
	// Deleting at the ETag read.
	var del []store.StateChange
	for _, id := range users {
		del = append(del, store.StateChange{UserID: id, Old: got[id]})
	}
	if err := s.SaveStates(ctx, del); err != nil {
		t.Fatal(err)
	}
	if left, _ := s.LoadStates(ctx, users); len(left) != 0 {
		t.Fatalf("%d states left after delete", len(left))
	}
}

func TestConcurrentWritersConflict(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	users := ids("y", 3)
	first := []store.StateChange{{UserID: users[0], New: engine.State{EventKey: "busy@1"}}}
	if err := s.SaveStates(ctx, first); err != nil {
		t.Fatal(err)
	}
	// A second writer that read "nothing" before the first wrote must not overwrite it.
	if err := s.SaveStates(ctx, first); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("insert over an existing state: %v, want ErrConflict", err)
	}
	read, _ := s.LoadStates(ctx, users[:1])
	update := []store.StateChange{{UserID: users[0], Old: read[users[0]], New: engine.State{EventKey: "busy@2"}}}
	if err := s.SaveStates(ctx, update); err != nil {
		t.Fatal(err)
	}
	// The same stale ETag again: refused.
	if err := s.SaveStates(ctx, update); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("update at a stale ETag: %v, want ErrConflict", err)
	}
}

func TestPurgeEnded(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	users := ids("x", 3)
	now := time.Now().UTC()
	ended, current := now.Add(-48*time.Hour), now.Add(time.Hour)
	if err := s.SaveStates(ctx, []store.StateChange{
		{UserID: users[0], New: engine.State{EventKey: "busy@1", Until: ended}},
		{UserID: users[1], New: engine.State{EventKey: "busy@2", Until: ended}},
		{UserID: users[2], New: engine.State{EventKey: "busy@3", Until: current}},
	}); err != nil {
		t.Fatal(err)
	}
	n, err := s.PurgeEnded(ctx, now.Add(-24*time.Hour))
	if err != nil || n < 2 {
		t.Fatalf("purged %d: %v", n, err)
	}
	left, _ := s.LoadStates(ctx, users)
	if len(left) != 1 || left[users[2]].EventKey != "busy@3" {
		t.Fatalf("left %+v: only the current event must remain", left)
	}
	day := now.AddDate(0, 0, 400+int(now.UnixNano()%100_000)) // a day no other run has used
	first, err := s.DueForPurge(ctx, day)
	second, err2 := s.DueForPurge(ctx, day)
	if err != nil || err2 != nil || !first || second {
		t.Fatalf("daily purge gate: first %v second %v (%v %v)", first, second, err, err2)
	}
}
