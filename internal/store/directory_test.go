package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/calstatus/calstatus/devtools/teststack"
	"github.com/calstatus/calstatus/internal/engine"
)

// countRequests counts the HTTP requests a client sends.
type countRequests struct{ n atomic.Int64 }

func (c *countRequests) Do(req *policy.Request) (*http.Response, error) {
	c.n.Add(1)
	return req.Next()
}

// countedStore is a Store over a users table of the test's own (see freshTable) whose requests
// are counted.
func countedStore(t *testing.T) (*Store, *countRequests) {
	t.Helper()
	env := teststack.Require(t)
	count := &countRequests{}
	svc, err := aztables.NewServiceClientFromConnectionString(env.StorageConnectionString,
		&aztables.ClientOptions{ClientOptions: azcore.ClientOptions{PerCallPolicies: []policy.Policy{count}}})
	if err != nil {
		t.Fatal(err)
	}
	name := "directorytest" + runSuffix(6)
	if _, err := svc.CreateTable(context.Background(), name, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = svc.DeleteTable(context.Background(), name, nil) })
	return &Store{users: svc.NewClient(name)}, count
}

// userID is a Mattermost-shaped id (26 characters of [a-z0-9]) in partition "u"+first.
func userID(first string, n int) string { return fmt.Sprintf("%s%025d", first, n) }

func TestDirectoryRoundTripsBesideStateAndSettingsInOneQuery(t *testing.T) {
	s, count := countedStore(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	all, dirOnly, notFound, stateOnly, other := userID("a", 1), userID("a", 2), userID("a", 3), userID("a", 4), userID("b", 1)
	entries := map[string]Directory{
		all:      {ObjectID: "11111111-1111-1111-1111-111111111111", Email: "all@example.com", CheckedAt: now},
		dirOnly:  {ObjectID: "22222222-2222-2222-2222-222222222222", Email: "dir@example.com", CheckedAt: now.Add(-time.Hour)},
		notFound: {Email: "gone@example.com", CheckedAt: now},
		other:    {ObjectID: "33333333-3333-3333-3333-333333333333", Email: "other@example.com", CheckedAt: now},
	}
	if err := s.SaveDirectory(ctx, entries); err != nil {
		t.Fatal(err)
	}
	state := engine.State{SetStatus: "dnd", Handled: "busy@1-2", Until: now.Add(time.Hour)}
	if _, err := s.SaveStates(ctx, []StateChange{{UserID: all, New: state}, {UserID: stateOnly, New: state}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSettings(ctx, all, UserSettings{Disabled: true}); err != nil {
		t.Fatal(err)
	}

	before := count.n.Load()
	got, err := s.LoadStates(ctx, []string{other, stateOnly, all, notFound, dirOnly})
	if err != nil {
		t.Fatal(err)
	}
	// Two partitions, one range query each: the directory rows cost no request of their own.
	if n := count.n.Load() - before; n != 2 {
		t.Fatalf("LoadStates sent %d requests for 2 partitions", n)
	}
	if len(got) != 5 {
		t.Fatalf("loaded %d users, want 5: %+v", len(got), got)
	}
	for id, want := range entries {
		if d := got[id].Directory; d == nil || *d != want {
			t.Fatalf("%s: directory %+v, want %+v", id, d, want)
		}
	}
	if g := got[all]; g.State != state || !g.Settings.Disabled {
		t.Fatalf("state and settings beside the directory: %+v", g)
	}
	if g := got[stateOnly]; g.State != state || g.Directory != nil {
		t.Fatalf("state only: %+v", g)
	}
	// A user's range alone reaches their directory row.
	if one, _ := s.LoadStates(ctx, []string{all}); one[all].Directory == nil || one[all].Directory.ObjectID != entries[all].ObjectID {
		t.Fatalf("one user's range misses their directory: %+v", one[all])
	}

	// Looked up again for a new email: the row is replaced whole (a user no longer found has no id).
	again := Directory{Email: "renamed@example.com", CheckedAt: now.Add(time.Minute)}
	if err := s.SaveDirectory(ctx, map[string]Directory{all: again}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LoadStates(ctx, []string{all}); got[all].Directory == nil || *got[all].Directory != again || got[all].State != state {
		t.Fatalf("after a second lookup: %+v", got[all])
	}
	if err := s.SaveDirectory(ctx, nil); err != nil {
		t.Fatalf("nothing to save: %v", err)
	}
}

// A user with only a directory row has no state: their first state is inserted (and a second
// writer's insert still conflicts), then replaced at its ETag, completed, and deleted — and the
// directory row stays through all of it.
func TestStateWritesBesideADirectoryRow(t *testing.T) {
	s, _ := countedStore(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	id := userID("c", 1)
	dir := Directory{ObjectID: "44444444-4444-4444-4444-444444444444", Email: "c@example.com", CheckedAt: now}
	if err := s.SaveDirectory(ctx, map[string]Directory{id: dir}); err != nil {
		t.Fatal(err)
	}
	read, err := s.LoadStates(ctx, []string{id})
	if err != nil {
		t.Fatal(err)
	}
	old, present := read[id]
	if !present || old.Held() || old.Claim != nil || old.etag != "" || old.Directory == nil {
		t.Fatalf("directory only must read as no state: %+v (present %v)", old, present)
	}
	claim := &engine.Claim{Owner: "run", Until: now.Add(time.Minute)}
	first := []StateChange{{UserID: id, Old: old, New: engine.State{SetStatus: "dnd", Until: now.Add(time.Hour)}, Claim: claim}}
	if saved, err := s.SaveStates(ctx, first); err != nil || !saved[id] {
		t.Fatalf("first state beside a directory row: %v %v", saved, err)
	}
	if saved, err := s.SaveStates(ctx, first); !errors.Is(err, ErrConflict) || saved[id] {
		t.Fatalf("a second insert from the same read: %v (saved %v), want ErrConflict", err, saved)
	}
	if _, err := s.CompleteStates(ctx, []StateChange{{UserID: id, New: engine.State{SetStatus: "dnd", Handled: "busy@1-2", Until: now.Add(time.Hour)}}}); err != nil {
		t.Fatal(err)
	}
	read, _ = s.LoadStates(ctx, []string{id})
	if g := read[id]; g.SetStatus != "dnd" || g.Claim != nil || g.Directory == nil || *g.Directory != dir {
		t.Fatalf("after completing: %+v", g)
	}
	// A lookup stored between the read and the write leaves the state's ETag as it was.
	dir = Directory{Email: "c@example.com", CheckedAt: now.Add(time.Minute)}
	if err := s.SaveDirectory(ctx, map[string]Directory{id: dir}); err != nil {
		t.Fatal(err)
	}
	replace := []StateChange{{UserID: id, Old: read[id], New: engine.State{SetStatus: "dnd", Handled: "busy@2-3", Until: now.Add(time.Hour)}}}
	if saved, err := s.SaveStates(ctx, replace); err != nil || !saved[id] {
		t.Fatalf("replace at the ETag read: %v %v", saved, err)
	}
	read, _ = s.LoadStates(ctx, []string{id})
	if g := read[id]; g.Handled != "busy@2-3" || g.Directory == nil || *g.Directory != dir {
		t.Fatalf("after replacing: %+v", g)
	}
	// A zero State without a claim deletes the state row, not the directory row.
	if saved, err := s.SaveStates(ctx, []StateChange{{UserID: id, Old: read[id]}}); err != nil || !saved[id] {
		t.Fatalf("delete: %v %v", saved, err)
	}
	read, _ = s.LoadStates(ctx, []string{id})
	if g := read[id]; g.Held() || g.etag != "" || g.Directory == nil || *g.Directory != dir {
		t.Fatalf("after deleting the state: %+v", g)
	}
	// And a state can be inserted again.
	if saved, err := s.SaveStates(ctx, []StateChange{{UserID: id, Old: read[id], New: engine.State{SetStatus: "dnd"}}}); err != nil || !saved[id] {
		t.Fatalf("insert after delete: %v %v", saved, err)
	}
}

// Two runs looking up the same users write the same answers at once: both succeed (no ETag), over
// more than one transaction per partition.
func TestConcurrentSaveDirectoryBothSucceed(t *testing.T) {
	s, _ := countedStore(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	entries := map[string]Directory{}
	var ids []string
	for i := range MaxTransaction + 50 {
		id := userID("d", i)
		entries[id] = Directory{ObjectID: fmt.Sprintf("oid-%d", i), Email: fmt.Sprintf("u%d@example.com", i), CheckedAt: now}
		ids = append(ids, id)
	}
	for round := range 3 {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for w := range errs {
			wg.Go(func() { errs[w] = s.SaveDirectory(ctx, entries) })
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("round %d: %v / %v", round, errs[0], errs[1])
		}
	}
	got, err := s.LoadStates(ctx, ids)
	if err != nil || len(got) != len(ids) {
		t.Fatalf("loaded %d of %d (%v)", len(got), len(ids), err)
	}
	for id, want := range entries {
		if d := got[id].Directory; d == nil || *d != want {
			t.Fatalf("%s: %+v, want %+v", id, d, want)
		}
	}
}

// The daily purge deletes ended state rows only: directory rows stay, even one carrying an Until.
func TestPurgeEndedLeavesDirectoryRows(t *testing.T) {
	s, _ := countedStore(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	ended := engine.State{Handled: "busy@1-2", Until: now.Add(-48 * time.Hour)}
	withState, dirOnly, untilOnRow := userID("e", 1), userID("e", 2), userID("e", 3)
	entries := map[string]Directory{}
	for _, id := range []string{withState, dirOnly, untilOnRow} {
		entries[id] = Directory{ObjectID: "oid-" + id, Email: id + "@example.com", CheckedAt: now.Add(-72 * time.Hour)}
	}
	if err := s.SaveDirectory(ctx, entries); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SaveStates(ctx, []StateChange{{UserID: withState, New: ended}}); err != nil {
		t.Fatal(err)
	}
	// A directory row matched by the purge's filter (as if a version had stored an Until on it).
	e, _ := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: Partition(untilOnRow), RowKey: directoryRowKey(untilOnRow)},
		Properties: map[string]any{"Kind": "entra", "ObjectID": "oid-" + untilOnRow, "Email": untilOnRow + "@example.com",
			"CheckedAt": aztables.EDMInt64(unix(entries[untilOnRow].CheckedAt)), "Until": aztables.EDMInt64(unix(ended.Until))}})
	if _, err := s.users.UpsertEntity(ctx, e, nil); err != nil {
		t.Fatal(err)
	}
	n, err := s.PurgeEnded(ctx, now.Add(-24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("purged %d (%v), want the one ended state", n, err)
	}
	got, err := s.LoadStates(ctx, []string{withState, dirOnly, untilOnRow})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range entries {
		if g := got[id]; g.Held() || g.Directory == nil || *g.Directory != want {
			t.Fatalf("%s after the purge: %+v, want no state and directory %+v", id, g, want)
		}
	}
}

// An invalid entry fails the whole call before anything is written, valid entries beside it too.
func TestSaveDirectoryRejectsInvalidEntries(t *testing.T) {
	s, _ := countedStore(t)
	ctx := context.Background()
	now := time.Now().UTC()
	valid := userID("f", 1)
	good := Directory{ObjectID: "oid", Email: "f@example.com", CheckedAt: now}
	for name, bad := range map[string]struct {
		id string
		d  Directory
	}{
		"short id":            {"f123", good},
		"long id":             {userID("f", 2) + "0", good},
		"upper-case id":       {strings.ToUpper(userID("f", 3)), good},
		"id with a separator": {userID("f", 4)[:20] + "~entra", good},
		"empty id":            {"", good},
		"no email":            {userID("f", 5), Directory{ObjectID: "oid", CheckedAt: now}},
		"upper-case email":    {userID("f", 6), Directory{ObjectID: "oid", Email: "F@Example.com", CheckedAt: now}},
		"not checked":         {userID("f", 7), Directory{ObjectID: "oid", Email: "f@example.com"}},
	} {
		err := s.SaveDirectory(ctx, map[string]Directory{valid: good, bad.id: bad.d})
		var se *Error
		if !errors.As(err, &se) || !strings.Contains(err.Error(), bad.id) {
			t.Fatalf("%s: %v, want a store error naming %q", name, err, bad.id)
		}
	}
	ids := []string{valid}
	for i := 2; i <= 7; i++ {
		ids = append(ids, userID("f", i))
	}
	if got, err := s.LoadStates(ctx, ids); err != nil || len(got) != 0 {
		t.Fatalf("invalid input wrote %+v (%v)", got, err)
	}
}
