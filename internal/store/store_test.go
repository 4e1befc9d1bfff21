package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/calstatus/calstatus/devtools/teststack"
	"github.com/calstatus/calstatus/internal/azstorage"
	"github.com/calstatus/calstatus/internal/engine"
	"github.com/calstatus/calstatus/internal/store"
)

// These tests run against Azurite (started by the test stack).

func open(t *testing.T) *store.Store {
	t.Helper()
	env := teststack.Require(t)
	s, err := store.Open(context.Background(), azstorage.Account{ConnectionString: env.StorageConnectionString})
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
			PrevManual: true, DNDEnd: until, CustomUntil: until, CustomEmoji: "calendar", CustomText: "In a meeting",
			Handled: "busy@1-2!s", Replies: "9f86d081884c7d65", RepliesDone: true, RepliesKept: until.Add(30 * time.Minute), Until: until}})
	}
	w0 := s.Writes.Load()
	if saved, err := s.SaveStates(ctx, changes); err != nil || len(saved) != 250 {
		t.Fatalf("saved %d: %v", len(saved), err)
	}
	if n := s.Writes.Load() - w0; n != 250 {
		t.Fatalf("%d entity writes", n)
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
	if _, err := s.SaveStates(ctx, del); err != nil {
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
	first := []store.StateChange{{UserID: users[0], New: engine.State{Handled: "busy@1-2"}}}
	if _, err := s.SaveStates(ctx, first); err != nil {
		t.Fatal(err)
	}
	// A second writer that read "nothing" before the first wrote must not overwrite it.
	if saved, err := s.SaveStates(ctx, first); !errors.Is(err, store.ErrConflict) || saved[users[0]] {
		t.Fatalf("insert over an existing state: %v (saved %v), want ErrConflict", err, saved)
	}
	read, _ := s.LoadStates(ctx, users[:1])
	update := []store.StateChange{{UserID: users[0], Old: read[users[0]], New: engine.State{Handled: "busy@2-3"}}}
	if _, err := s.SaveStates(ctx, update); err != nil {
		t.Fatal(err)
	}
	// The same stale ETag again: refused.
	if _, err := s.SaveStates(ctx, update); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("update at a stale ETag: %v, want ErrConflict", err)
	}
}

func TestAFailedPartitionDoesNotStopTheOthers(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	a, b := ids("v", 2), ids("w", 2)
	// Partition w already has a state the writer did not read: its transaction fails, v's commits.
	if _, err := s.SaveStates(ctx, []store.StateChange{{UserID: b[0], New: engine.State{Handled: "busy@1-2"}}}); err != nil {
		t.Fatal(err)
	}
	var changes []store.StateChange
	for _, id := range append(append([]string{}, a...), b...) {
		changes = append(changes, store.StateChange{UserID: id, New: engine.State{Handled: "busy@3-4"}})
	}
	saved, err := s.SaveStates(ctx, changes)
	if !errors.Is(err, store.ErrConflict) || !saved[a[0]] || !saved[a[1]] || saved[b[0]] || saved[b[1]] {
		t.Fatalf("saved %v, err %v: want v's users saved and w's refused", saved, err)
	}
}

func TestClaimsRoundTripAndComplete(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	users := ids("t", 2)
	until := time.Now().Add(time.Minute).Truncate(time.Second).UTC()
	claim := &engine.Claim{Owner: "run-1", Until: until, Prev: engine.State{PrevStatus: "online", SetStatus: "ooo", Handled: "busy@1-2",
		Replies: "9f86d081884c7d65", RepliesDone: true, RepliesKept: until.Add(time.Hour)}}
	// A claim to give everything back (New empty) is stored too.
	if _, err := s.SaveStates(ctx, []store.StateChange{{UserID: users[0], Claim: claim}, {UserID: users[1], New: engine.State{SetStatus: "dnd"}, Claim: claim}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadStates(ctx, users)
	if err != nil || len(got) != 2 || got[users[0]].Claim == nil || *got[users[0]].Claim != *claim || got[users[1]].SetStatus != "dnd" {
		t.Fatalf("claims read back as %+v (%v)", got, err)
	}
	// Completing: replaced without ETags; an empty state deletes.
	if _, err := s.CompleteStates(ctx, []store.StateChange{{UserID: users[0]}, {UserID: users[1], New: engine.State{SetStatus: "dnd", Handled: "busy@5-6"}}}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.LoadStates(ctx, users)
	if _, left := got[users[0]]; left || got[users[1]].Claim != nil || got[users[1]].Handled != "busy@5-6" {
		t.Fatalf("after completing: %+v", got)
	}
}

func TestPurgeEnded(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	users := ids("x", 3)
	now := time.Now().UTC()
	ended, current := now.Add(-48*time.Hour), now.Add(time.Hour)
	if _, err := s.SaveStates(ctx, []store.StateChange{
		{UserID: users[0], New: engine.State{Handled: "busy@1-2", Until: ended}},
		{UserID: users[1], New: engine.State{Handled: "busy@2-3", Until: ended}},
		{UserID: users[2], New: engine.State{Handled: "busy@3-4", Until: current}},
	}); err != nil {
		t.Fatal(err)
	}
	n, err := s.PurgeEnded(ctx, now.Add(-24*time.Hour))
	if err != nil || n < 2 {
		t.Fatalf("purged %d: %v", n, err)
	}
	left, _ := s.LoadStates(ctx, users)
	if len(left) != 1 || left[users[2]].Handled != "busy@3-4" {
		t.Fatalf("left %+v: only the current event must remain", left)
	}
	day := now.AddDate(0, 0, 400+int(now.UnixNano()%100_000)) // a day no other run has used
	first, err := s.DueForPurge(ctx, day)
	second, err2 := s.DueForPurge(ctx, day)
	if err != nil || err2 != nil || !first || second {
		t.Fatalf("daily purge gate: first %v second %v (%v %v)", first, second, err, err2)
	}
}

func TestSettingsLiveBesideTheState(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	users := ids("s", 3)
	now := time.Now().UTC().Truncate(time.Second)
	pause := now.Add(2 * time.Hour)
	if err := s.SaveSettings(ctx, users[0], store.UserSettings{Disabled: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSettings(ctx, users[1], store.UserSettings{PausedUntil: pause}); err != nil {
		t.Fatal(err)
	}
	ended := engine.State{Handled: "busy@1-2", Until: now.Add(-48 * time.Hour)}
	if _, err := s.SaveStates(ctx, []store.StateChange{{UserID: users[0], New: ended}, {UserID: users[2], New: ended}}); err != nil {
		t.Fatal(err)
	}
	// One load reads both kinds of rows and tells them apart; a single user's range reaches their settings.
	got, err := s.LoadStates(ctx, users)
	if err != nil {
		t.Fatal(err)
	}
	if g := got[users[0]]; g.State != ended || !g.Settings.Disabled {
		t.Fatalf("state and settings: %+v", g)
	}
	if g := got[users[1]]; g.Held() || g.Claim != nil || !g.Settings.PausedUntil.Equal(pause) || g.Settings.Disabled {
		t.Fatalf("settings only: %+v", g)
	}
	if g := got[users[2]]; g.State != ended || g.Settings != (engine.Settings{}) {
		t.Fatalf("state only: %+v", g)
	}
	if one, _ := s.LoadStates(ctx, users[1:2]); !one[users[1]].Settings.PausedUntil.Equal(pause) {
		t.Fatalf("one user's range misses their settings: %+v", one)
	}
	// State writes never touch the settings row: a first state next to settings is inserted, then
	// replaced, completed and deleted.
	w0 := s.Writes.Load()
	claim := &engine.Claim{Owner: "run", Until: now.Add(time.Minute)}
	if saved, err := s.SaveStates(ctx, []store.StateChange{{UserID: users[1], Old: got[users[1]], New: engine.State{SetStatus: "dnd", Until: now}, Claim: claim},
		{UserID: users[0], Old: got[users[0]]}}); err != nil || !saved[users[0]] || !saved[users[1]] {
		t.Fatalf("state writes beside settings: %v %v", saved, err)
	}
	if _, err := s.CompleteStates(ctx, []store.StateChange{{UserID: users[1], New: engine.State{SetStatus: "dnd", Until: now}}}); err != nil {
		t.Fatal(err)
	}
	if n := s.Writes.Load() - w0; n != 3 {
		t.Fatalf("%d state writes, want 3", n)
	}
	got, _ = s.LoadStates(ctx, users)
	if g := got[users[0]]; g.Held() || !g.Settings.Disabled {
		t.Fatalf("state deleted, settings must stay: %+v", g)
	}
	if g := got[users[1]]; g.SetStatus != "dnd" || g.Claim != nil || !g.Settings.PausedUntil.Equal(pause) {
		t.Fatalf("state completed, settings must stay: %+v", g)
	}
	// The daily purge takes ended state, never settings.
	if _, err := s.PurgeEnded(ctx, now.Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if u, err := s.LoadSettings(ctx, users[0]); err != nil || !u.Disabled {
		t.Fatalf("settings purged: %+v %v", u, err)
	}
	got, _ = s.LoadStates(ctx, users)
	if _, left := got[users[2]]; left {
		t.Fatalf("ended state not purged: %+v", got[users[2]])
	}
	// Back on: the row goes; loading finds the defaults.
	if err := s.SaveSettings(ctx, users[0], store.UserSettings{}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSettings(ctx, users[0], store.UserSettings{}); err != nil {
		t.Fatalf("on twice: %v", err)
	}
	if u, err := s.LoadSettings(ctx, users[0]); err != nil || u != (store.UserSettings{}) {
		t.Fatalf("after on: %+v %v", u, err)
	}
	if got, _ := s.LoadStates(ctx, users[:1]); len(got) != 0 {
		t.Fatalf("nothing stored, got %+v", got)
	}
	if u, err := s.LoadSettings(ctx, users[1]); err != nil || !u.PausedUntil.Equal(pause) {
		t.Fatalf("paused user: %+v %v", u, err)
	}
}
