package syncer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/calstatus/calstatus/internal/calendar"
	"github.com/calstatus/calstatus/internal/engine"
	"github.com/calstatus/calstatus/internal/graph"
	"github.com/calstatus/calstatus/internal/mattermost"
	"github.com/calstatus/calstatus/internal/ncrontab"
	"github.com/calstatus/calstatus/internal/queue"
	"github.com/calstatus/calstatus/internal/shard"
	"github.com/calstatus/calstatus/internal/store"
)

// Small fakes: the real adapters are exercised by the end-to-end tests against Azurite, Mattermost and
// the Graph simulator; these pin down the worker's orchestration.

type fakeMM struct {
	mu       sync.Mutex // users are applied concurrently
	users    []mattermost.User
	statuses map[string]mattermost.Status
	reads    int
	custom   map[string]*mattermost.CustomStatus
	// lists counts ListSyncUsers calls; everAdded, accounts ever created beyond users.
	lists, everAdded int
	listErr          error
	sets             []string
	customs          []string
	failSet          map[string]bool
	// lostCustom: a custom status write for these users fails with no answer, landed if true.
	lostCustom map[string]bool
	// dbCustom: what the database holds where Mattermost's profile cache (custom, what Users
	// reads) kept a read that raced a write.
	dbCustom map[string]*mattermost.CustomStatus
	// server is what Server reports (the zero value: a version that could not be read).
	server mattermost.Server
	// onSet runs as a status is written (what the user does meanwhile).
	onSet func(id string)
	// uncachedReads counts UsersUncached calls; writeBound is what WriteBound reports.
	uncachedReads, writeBound int
	// responders holds the message of each user's auto-responder while it is on; responderCalls
	// counts AutoResponder and SetAutoResponder calls.
	responders     map[string]string
	responderCalls int
}

// afterReads returns a change for a Graph call's meanwhile: it waits until f has answered reads
// reads (Graph is called beside the shard's status read), then makes change under f's lock.
func (f *fakeMM) afterReads(reads int, change func()) func() {
	return func() {
		for {
			f.mu.Lock()
			if f.reads >= reads {
				break
			}
			f.mu.Unlock()
			time.Sleep(time.Millisecond)
		}
		defer f.mu.Unlock()
		change()
	}
}

func (f *fakeMM) Server(context.Context) (mattermost.Server, error) { return f.server, nil }
func (f *fakeMM) CustomStatusesOn(context.Context) (bool, error)    { return !f.server.CustomOff, nil }

func (f *fakeMM) ListSyncUsers(context.Context) ([]mattermost.User, error) {
	f.reads++
	f.lists++
	if f.listErr != nil {
		return nil, f.listErr
	}
	return f.users, nil
}
func (f *fakeMM) CountUsers(context.Context) (mattermost.UserCounts, error) {
	return mattermost.UserCounts{Active: int64(len(f.users)), All: int64(len(f.users) + f.everAdded)}, nil
}
func (f *fakeMM) Users(_ context.Context, ids []string) ([]mattermost.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var out []mattermost.User
	for _, u := range f.users {
		if want[u.ID] {
			u.CustomStatus = f.custom[u.ID]
			out = append(out, u)
		}
	}
	return out, nil
}
func (f *fakeMM) UsersUncached(_ context.Context, usernames []string) ([]mattermost.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	f.uncachedReads++
	var out []mattermost.User
	for _, u := range f.users {
		if slices.Contains(usernames, u.Username) {
			u.CustomStatus = f.custom[u.ID]
			if cs, ok := f.dbCustom[u.ID]; ok {
				u.CustomStatus = cs
			}
			out = append(out, u)
		}
	}
	return out, nil
}
func (f *fakeMM) WriteBound() int { return f.writeBound }
func (f *fakeMM) Statuses(context.Context, []string) (map[string]mattermost.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	out := map[string]mattermost.Status{}
	for id, s := range f.statuses {
		out[id] = s
	}
	return out, nil
}
func (f *fakeMM) SetStatus(_ context.Context, id string, ch mattermost.StatusChange) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failSet[id] {
		return false, errors.New("boom")
	}
	if f.onSet != nil {
		f.onSet(id)
	}
	f.sets = append(f.sets, id+"="+ch.Status)
	if f.statuses[id].Status == engine.OutOfOffice {
		delete(f.responders, id) // any status set turns the auto-responder off
	}
	st := mattermost.Status{Status: ch.Status, Manual: ch.Status != engine.Online}
	if ch.Status == engine.DND {
		st.DNDEnd = ch.DNDEnd
	}
	f.statuses[id] = st
	return ch.Via != "", nil
}
func (f *fakeMM) SetCustomStatus(_ context.Context, u mattermost.User, cs mattermost.CustomStatus) error {
	id := u.ID
	f.mu.Lock()
	defer f.mu.Unlock()
	f.customs = append(f.customs, id+"="+cs.Text)
	landed, lost := f.lostCustom[id]
	if !lost || landed {
		f.custom[id] = &cs
	}
	if lost {
		return &mattermost.Error{Op: "set custom status", Err: errors.New("timeout awaiting response headers")}
	}
	return nil
}
func (f *fakeMM) ClearCustomStatus(_ context.Context, u mattermost.User) error {
	id := u.ID
	f.mu.Lock()
	defer f.mu.Unlock()
	f.customs = append(f.customs, id+"=")
	delete(f.custom, id)
	return nil
}
func (f *fakeMM) Notify(context.Context, string, string) error { return nil }
func (f *fakeMM) AutoResponder(_ context.Context, id string) (mattermost.AutoResponder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.responderCalls++
	m, on := f.responders[id]
	return mattermost.AutoResponder{Active: on, Message: m}, nil
}
func (f *fakeMM) SetAutoResponder(_ context.Context, id string, _ mattermost.AutoResponder, message string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.responderCalls++
	if f.responders == nil {
		f.responders = map[string]string{}
	}
	if _, on := f.responders[id]; !on {
		f.statuses[id] = mattermost.Status{Status: engine.OutOfOffice, Manual: true}
	}
	f.responders[id] = message
	return nil
}

type fakeGraph struct {
	av      map[string]calendar.Availability
	down    map[string]bool // emails Graph keeps failing for (5xx)
	fetched *[]string
	// meanwhile runs while Graph is "answering": what users do in Mattermost meanwhile.
	meanwhile func()
}

func (g fakeGraph) GetSchedules(_ context.Context, emails []string, _ graph.Window) (graph.Result, error) {
	if g.meanwhile != nil {
		g.meanwhile()
	}
	res := graph.Result{Availability: map[string]calendar.Availability{}, Calls: 1}
	var err error
	for _, e := range emails {
		if g.fetched != nil {
			*g.fetched = append(*g.fetched, e)
		}
		if g.down[e] {
			err = errors.New("503 after 4 attempts")
			continue
		}
		if a, ok := g.av[e]; ok {
			res.Availability[e] = a
		} else {
			res.Failures = append(res.Failures, graph.Failure{Email: e, Class: "not_found"})
		}
	}
	return res, err
}

type fakeStore struct {
	states map[string]store.UserState
	// guarded makes SaveStates refuse a change whose Old is not the stored state (Table Storage's
	// ETags).
	guarded bool
	writes  int
	// failPartitions makes SaveStates fail for users whose ids start with these characters.
	failPartitions string
	reports        []store.ShardReport
	// onSave runs as states are saved (what users do meanwhile).
	onSave func()
	// purgeDue is what DueForPurge says; purged lists the purges run.
	purgeDue bool
	purged   []string
	// directoryWrites counts the directory entries saved.
	directoryWrites int
}

func (s *fakeStore) LoadStates(_ context.Context, ids []string) (map[string]store.UserState, error) {
	out := map[string]store.UserState{}
	for _, id := range ids {
		if st, ok := s.states[id]; ok {
			out[id] = st
		}
	}
	return out, nil
}
func (s *fakeStore) SaveStates(ctx context.Context, cs []store.StateChange) (map[string]bool, error) {
	if s.onSave != nil {
		s.onSave()
	}
	var ok []store.StateChange
	var err error
	for _, c := range cs {
		if strings.ContainsRune(s.failPartitions, rune(c.UserID[0])) {
			err = errors.New("storage down")
			continue
		}
		have, old := s.states[c.UserID], c.Old
		have.Directory, old.Directory = nil, nil // a row of its own: its writes change no state ETag
		if s.guarded && !reflect.DeepEqual(have, old) {
			err = store.ErrConflict
			continue
		}
		ok = append(ok, c)
	}
	saved, _ := s.CompleteStates(ctx, ok)
	return saved, err
}
func (s *fakeStore) CompleteStates(_ context.Context, cs []store.StateChange) (map[string]bool, error) {
	saved := map[string]bool{}
	for _, c := range cs {
		s.writes++
		saved[c.UserID] = true
		// As in Table Storage, the user's settings and directory entry are rows of their own that
		// state writes leave.
		settings, dir := s.states[c.UserID].Settings, s.states[c.UserID].Directory
		switch {
		case c.New.Held() || c.Claim != nil:
			s.states[c.UserID] = store.UserState{State: c.New, Claim: c.Claim, Settings: settings, Directory: dir}
		case settings != (engine.Settings{}) || dir != nil:
			s.states[c.UserID] = store.UserState{Settings: settings, Directory: dir}
		default:
			delete(s.states, c.UserID)
		}
	}
	return saved, nil
}
func (s *fakeStore) SaveDirectory(_ context.Context, entries map[string]store.Directory) error {
	for id, d := range entries {
		us := s.states[id]
		us.Directory = &d
		s.states[id] = us
		s.directoryWrites++
	}
	return nil
}
func (s *fakeStore) RecordCycle(context.Context, store.CycleReport) error { return nil }
func (s *fakeStore) DueForPurge(context.Context, time.Time) (bool, error) { return s.purgeDue, nil }
func (s *fakeStore) PurgeEnded(_ context.Context, cutoff time.Time) (int, error) {
	s.purged = append(s.purged, "ended before "+cutoff.Format(time.RFC3339))
	return 0, nil
}
func (s *fakeStore) PurgeCycles(_ context.Context, cutoff time.Time) (int, error) {
	s.purged = append(s.purged, "cycles before "+cutoff.Format(time.RFC3339))
	return 0, nil
}
func (s *fakeStore) PurgeUsedStates(_ context.Context, cutoff time.Time) (int, error) {
	s.purged = append(s.purged, "consent states expired before "+cutoff.Format(time.RFC3339))
	return 0, nil
}
func (s *fakeStore) RecordShard(_ context.Context, r store.ShardReport) error {
	r.Done = append([]bool(nil), r.Done...)
	s.reports = append(s.reports, r)
	return nil
}
func (s *fakeStore) ShardReport(_ context.Context, cycle string, shard int) (store.ShardReport, bool, error) {
	for i := len(s.reports) - 1; i >= 0; i-- {
		if r := s.reports[i]; r.CycleID == cycle && r.Shard == shard {
			return r, true, nil
		}
	}
	return store.ShardReport{}, false, nil
}

func id(i int) string { return fmt.Sprintf("%026d", i) }

func setup(now time.Time) (*Worker, *fakeMM, *fakeStore, shard.Message) {
	mm := &fakeMM{statuses: map[string]mattermost.Status{}, custom: map[string]*mattermost.CustomStatus{}, failSet: map[string]bool{}}
	av := map[string]calendar.Availability{}
	var ids []string
	for i := 0; i < 4; i++ {
		email := fmt.Sprintf("u%d@x.test", i)
		mm.users = append(mm.users, mattermost.User{ID: id(i), Email: email, Username: fmt.Sprintf("u%d", i)})
		mm.statuses[id(i)] = mattermost.Status{Status: engine.Online}
		ids = append(ids, id(i))
		if i%2 == 0 { // even users are in a meeting now
			av[email] = calendar.NewAvailability(email, []calendar.Event{{Start: now.Add(-time.Minute), End: now.Add(time.Hour), Status: calendar.Busy}})
		} else {
			av[email] = calendar.NewAvailability(email, nil)
		}
	}
	delete(av, "u3@x.test") // one unknown mailbox
	st := &fakeStore{states: map[string]store.UserState{}}
	w := &Worker{Mattermost: mm, Graph: fakeGraph{av: av}, Store: st, Policy: engine.DefaultPolicy, Lookahead: 10 * time.Minute,
		Now: func() time.Time { return now }}
	msg := shard.Split("c1", now, now.Add(5*time.Minute), ids)[0]
	return w, mm, st, msg
}

func TestWorkerAppliesThenIsIdle(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	w, mm, st, msg := setup(now)
	log := slog.New(slog.DiscardHandler)
	rep, err := w.Process(context.Background(), log, msg, 1)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Changed != 2 || rep.Failed != 1 || rep.Failures["not_found"] != 1 || len(mm.sets) != 2 {
		t.Fatalf("first pass: %+v sets %v", rep, mm.sets)
	}
	// Second pass, nothing changed: at most 2 Mattermost reads, no writes anywhere.
	mm.reads, st.writes, mm.sets, mm.customs = 0, 0, nil, nil
	rep, err = w.Process(context.Background(), log, msg, 1)
	if err != nil || rep.Changed != 0 || mm.reads != 2 || st.writes != 0 || len(mm.sets) != 0 || len(mm.customs) != 0 {
		t.Fatalf("idle pass: %+v reads %d writes %d sets %v err %v", rep, mm.reads, st.writes, mm.sets, err)
	}
}

func TestWorkerRevertsStateWhenMattermostFails(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	w, mm, st, msg := setup(now)
	mm.failSet[id(0)] = true
	rep, err := w.Process(context.Background(), slog.New(slog.DiscardHandler), msg, 1)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Changed != 1 || rep.Failures["mattermost"] != 1 {
		t.Fatalf("report %+v", rep)
	}
	if got, held := st.states[id(0)]; held && (got.SetStatus != "" || got.Claim != nil) {
		t.Fatalf("state claims a status that was not set: %+v", got)
	}
	if got := st.states[id(2)]; got.SetStatus != engine.DND || got.Claim != nil {
		t.Fatalf("state of a user whose status was set: %+v", got)
	}
}

func TestWorkerDropsStaleShard(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	w, mm, _, msg := setup(now)
	w.Now = func() time.Time { return now.Add(6 * time.Minute) }
	rep, err := w.Process(context.Background(), slog.New(slog.DiscardHandler), msg, 1)
	if err != nil || rep.Outcome != "stale" || mm.reads != 0 {
		t.Fatalf("stale shard: %+v reads %d err %v", rep, mm.reads, err)
	}
}

func TestWorkerRetryDoesOnlyTheRest(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	w, mm, st, msg := setup(now)
	g := w.Graph.(fakeGraph)
	var fetched []string
	g.down, g.fetched = map[string]bool{"u2@x.test": true}, &fetched
	w.Graph = g
	log := slog.New(slog.DiscardHandler)
	if _, err := w.Process(context.Background(), log, msg, 1); err == nil {
		t.Fatal("shard succeeded although Graph kept failing for a user")
	}
	if len(mm.sets) != 1 || mm.sets[0] != id(0)+"=dnd" {
		t.Fatalf("users Graph answered for were not handled: %v", mm.sets)
	}
	// The queue redelivers; Graph has recovered. Only u2 is fetched and handled again.
	delete(g.down, "u2@x.test")
	fetched, mm.sets = nil, nil
	rep, err := w.Process(context.Background(), log, msg, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(fetched) != 1 || fetched[0] != "u2@x.test" || len(mm.sets) != 1 || mm.sets[0] != id(2)+"=dnd" {
		t.Fatalf("retry fetched %v and set %v; want only u2", fetched, mm.sets)
	}
	for i, d := range rep.Done {
		if !d {
			t.Fatalf("user %d not done after the retry", i)
		}
	}
	if len(st.reports) != 2 || st.reports[0].Outcome != "failed" || st.reports[1].Outcome != "ok" {
		t.Fatalf("shard records: %+v", st.reports)
	}
}

func TestPlannerStaleAfterFollowsSchedule(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 1, 30, 0, time.UTC)
	mm := &fakeMM{users: []mattermost.User{{ID: id(1), Email: "a@x.test"}}}
	sched, err := ncrontab.Parse("0 */5 * * * *")
	if err != nil {
		t.Fatal(err)
	}
	p := &Planner{Mattermost: mm, Store: &fakeStore{}, Schedule: sched, Now: func() time.Time { return now }}
	msgs, err := p.Plan(context.Background(), slog.New(slog.DiscardHandler), time.Time{})
	if err != nil || len(msgs) != 1 || !msgs[0].StaleAfter.Equal(time.Date(2026, 11, 23, 10, 5, 0, 0, time.UTC)) {
		t.Fatalf("no ScheduleStatus: stale after %v, want the schedule's next occurrence 10:05 (%v)", msgs[0].StaleAfter, err)
	}
	host := now.Add(2 * time.Minute)
	msgs, _ = p.Plan(context.Background(), slog.New(slog.DiscardHandler), host)
	if !msgs[0].StaleAfter.Equal(host) {
		t.Fatalf("the host's Next must win: %v", msgs[0].StaleAfter)
	}
}

type fakeRoster struct {
	r       store.Roster
	found   bool
	loadErr error
	saves   int
}

func (f *fakeRoster) LoadRoster(context.Context) (store.Roster, bool, error) {
	return f.r, f.found, f.loadErr
}
func (f *fakeRoster) SaveRoster(_ context.Context, r store.Roster) error {
	f.r, f.found = r, true
	f.saves++
	return nil
}

func TestPlannerListsOnlyWhenTheRosterNoLongerHolds(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	mm := &fakeMM{users: []mattermost.User{{ID: id(1)}, {ID: id(2)}}}
	roster := &fakeRoster{}
	p := &Planner{Mattermost: mm, Store: &fakeStore{}, Roster: roster, Now: func() time.Time { return now }}
	plan := func(want int, lists int) {
		t.Helper()
		msgs, err := p.Plan(context.Background(), slog.New(slog.DiscardHandler), now.Add(5*time.Minute))
		var got []string
		for _, m := range msgs {
			got = append(got, m.UserIDs...)
		}
		if err != nil || len(got) != want || mm.lists != lists {
			t.Fatalf("planned %d users (want %d) after %d listings (want %d): %v", len(got), want, mm.lists, lists, err)
		}
	}
	plan(2, 1) // nothing stored: listed, and stored
	if roster.saves != 1 || roster.r.Fingerprint != "active=2 all=2" || !roster.r.ListedAt.Equal(now) {
		t.Fatalf("stored %+v after %d saves", roster.r, roster.saves)
	}
	now = now.Add(5 * time.Minute)
	plan(2, 1) // counts unchanged: the stored roster

	mm.users = append(mm.users, mattermost.User{ID: id(3)})
	plan(3, 2) // a user came

	mm.users, mm.everAdded = mm.users[1:], mm.everAdded+1
	plan(2, 3) // a user left

	mm.users, mm.everAdded = append(mm.users[1:], mattermost.User{ID: id(4)}), mm.everAdded+1
	plan(2, 4) // one left and another came: the active count alone would not tell
	if roster.r.UserIDs[1] != id(4) {
		t.Fatalf("roster %v", roster.r.UserIDs)
	}

	now = now.Add(RosterMaxAge)
	plan(2, 5) // old

	// As many users deleted as created: the counts stay, but the last cycle met ids that are no
	// longer users.
	p.Cycles = fakeCycles{plan: store.CycleReport{CycleID: "prev", Shards: 1},
		shards: []store.ShardReport{{Outcome: "ok", Failed: 1, Failures: map[string]int{FailNoUser: 1}}}}
	plan(2, 6)
	p.Cycles = nil
	plan(2, 6)

	// Listing fails: the stored roster, a little out of date, rather than no cycle.
	mm.users, mm.listErr = append(mm.users, mattermost.User{ID: id(5)}), errors.New("mattermost: list users: HTTP 503")
	plan(2, 7)
	mm.listErr = nil

	roster.loadErr = errors.New("table storage: 503")
	plan(3, 8) // unreadable: listed, never a cycle lost
	if roster.saves != 7 {
		t.Fatalf("%d saves", roster.saves)
	}
	// Neither listed nor stored: no cycle, and the error says why.
	mm.listErr, roster.found = errors.New("mattermost: list users: HTTP 503"), false
	roster.loadErr = nil
	if _, err := p.Plan(context.Background(), slog.New(slog.DiscardHandler), now.Add(5*time.Minute)); err == nil {
		t.Fatal("planned without users")
	}
}

func TestWorkerSkipsDeactivatedUsers(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	w, mm, _, msg := setup(now)
	mm.users[0].Deactivated = true // in a meeting, but gone since the roster was listed
	rep, err := w.Process(context.Background(), slog.New(slog.DiscardHandler), msg, 1)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Changed != 1 || rep.Failures["no_user"] != 1 || mm.statuses[id(0)].Status != engine.Online || len(mm.sets) != 1 {
		t.Fatalf("report %+v, deactivated user's status %v, set %v", rep, mm.statuses[id(0)], mm.sets)
	}
}

func TestWorkerAppliesWhatItClaimedWhenAPartitionFails(t *testing.T) {
	// A state write that fails after another partition committed: the users whose claims were
	// stored are applied and done; the others are left for the queue's retry, which applies them.
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	w, mm, st, msg := setup(now)
	for i := range 4 { // two partitions: ids starting with 0 and 1
		u := mm.users[i]
		if i >= 2 {
			delete(mm.statuses, u.ID)
			u.ID = "1" + u.ID[1:]
			mm.users[i] = u
			mm.statuses[u.ID] = mattermost.Status{Status: engine.Online}
		}
		msg.UserIDs[i] = u.ID
	}
	st.failPartitions = "1"
	log := slog.New(slog.DiscardHandler)
	rep, err := w.Process(context.Background(), log, msg, 1)
	if err == nil || len(mm.sets) != 1 || rep.Done[2] {
		t.Fatalf("first attempt: err %v, sets %v, done %v", err, mm.sets, rep.Done)
	}
	st.failPartitions = ""
	mm.sets = nil
	if _, err := w.Process(context.Background(), log, msg, 2); err != nil {
		t.Fatal(err)
	}
	if len(mm.sets) != 1 || mm.sets[0] != mm.users[2].ID+"=dnd" {
		t.Fatalf("retry set %v, want only the user of the failed partition", mm.sets)
	}
}

func TestWorkerLeavesUsersClaimedByALiveRunAndCompletesADeadOnesClaim(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	w, mm, st, msg := setup(now)
	// User 0 is claimed by a run still going (its claim stands): left to it. User 2 was claimed by
	// a run that died before applying: the claim is completed (DND set), not read as the user's.
	busy := engine.Decide(engine.Input{Now: now, Availability: calendar.NewAvailability("u0@x.test",
		[]calendar.Event{{Start: now.Add(-time.Minute), End: now.Add(time.Hour), Status: calendar.Busy}}),
		Current: engine.Current{Status: engine.Online}, Policy: engine.DefaultPolicy})
	st.states[id(0)] = store.UserState{State: busy.NewState, Claim: &engine.Claim{Owner: "other", Until: now.Add(time.Minute)}}
	st.states[id(2)] = store.UserState{State: busy.NewState, Claim: &engine.Claim{Owner: "dead", Until: now.Add(-time.Second)}}
	rep, err := w.Process(context.Background(), slog.New(slog.DiscardHandler), msg, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(mm.sets) != 1 || mm.sets[0] != id(2)+"=dnd" || !rep.Done[0] {
		t.Fatalf("sets %v done %v: want user 2 completed and user 0 left to its live run", mm.sets, rep.Done)
	}
	if got := st.states[id(2)]; got.Claim != nil || got.SetStatus != engine.DND {
		t.Fatalf("completed claim stored as %+v", got)
	}
}

func TestSummarize(t *testing.T) {
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	plan := store.CycleReport{CycleID: "c", Started: start, Users: 1000, Shards: 3}
	s := Summarize(plan, []store.ShardReport{
		{Outcome: "ok", Changed: 5, GraphCalls: 1, Throttled: 2, Retries: 2, Failures: map[string]int{"not_found": 1}, Finished: start.Add(2 * time.Second)},
		{Outcome: "failed", Failed: 3, GraphCalls: 2, Failures: map[string]int{"not_found": 2, "server": 1}, Finished: start.Add(5 * time.Second),
			ErrorClass: "mattermost_auth"},
	})
	if s.ShardsOK != 1 || s.ShardsFailed != 1 || s.ShardsMissing != 1 || s.Complete || s.Changed != 5 || s.GraphCalls != 3 ||
		s.Throttled != 2 || s.Failures["not_found"] != 3 || s.Duration != 5*time.Second || !maps.Equal(s.ShardErrors, map[string]int{"mattermost_auth": 1}) {
		t.Fatalf("summary %+v", s)
	}
	if !Summarize(store.CycleReport{Shards: 1}, []store.ShardReport{{Outcome: "ok"}}).Complete {
		t.Fatal("one ok shard of one: complete")
	}
}

func TestErrorClass(t *testing.T) {
	for err, want := range map[error]string{
		nil: "",
		fmt.Errorf("listing users: %w", &mattermost.Error{Op: "list users", Status: 401}): "mattermost_auth",
		&mattermost.Error{Op: "get users", Status: 502}:                                   "mattermost",
		&mattermost.Error{Op: "set status", Status: 403}:                                  "mattermost_auth",
		&store.Error{Op: "reading user state", Err: errors.New("503")}:                    "storage",
		errors.New("graph: 20 users not fetched"):                                         "graph",
	} {
		if got := errorClass(err); got != want {
			t.Errorf("errorClass(%v) = %q, want %q", err, got, want)
		}
	}
}

type fakeCycles struct {
	plan   store.CycleReport
	shards []store.ShardReport
}

func (f fakeCycles) LastCycle(context.Context) (store.CycleReport, bool, error) {
	return f.plan, f.plan.CycleID != "", nil
}
func (f fakeCycles) ShardReports(context.Context, string) ([]store.ShardReport, error) {
	return f.shards, nil
}

type fakeQueue struct{ h queue.Health }

func (f fakeQueue) Health(context.Context, time.Time) (queue.Health, error) { return f.h, nil }

func TestPlannerLogsTheLastCycleAndTheQueue(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 5, 0, 0, time.UTC)
	var buf strings.Builder
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	p := &Planner{Mattermost: &fakeMM{}, Store: &fakeStore{states: map[string]store.UserState{}}, Now: func() time.Time { return now },
		Cycles: fakeCycles{plan: store.CycleReport{CycleID: "prev", Started: now.Add(-5 * time.Minute), Shards: 1},
			shards: []store.ShardReport{{Outcome: "ok", Changed: 4, Finished: now.Add(-4 * time.Minute)}}},
		Queue: fakeQueue{queue.Health{Depth: 3, PoisonDepth: 1, OldestAge: 90 * time.Second}}}
	if _, err := p.Plan(context.Background(), log, time.Time{}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{`"msg":"cycle summary","cycle":"prev"`, `"changed":4`, `"complete":true`, `"duration_ms":60000`,
		`"level":"WARN","msg":"queue health","queue_depth":3,"poison_depth":1,"oldest_message_age_s":90`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}

// The daily purge: ended state, old cycle records, expired used consent states.
func TestPlannerPurgesOnceADay(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 5, 0, 0, time.UTC)
	st := &fakeStore{states: map[string]store.UserState{}, purgeDue: true}
	p := &Planner{Mattermost: &fakeMM{}, Store: st, Now: func() time.Time { return now }}
	if _, err := p.Plan(context.Background(), slog.New(slog.DiscardHandler), time.Time{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"ended before " + now.Add(-PurgeAfter).Format(time.RFC3339), "cycles before " + now.Add(-KeepCycles).Format(time.RFC3339),
		"consent states expired before " + now.Format(time.RFC3339)}
	if !slices.Equal(st.purged, want) {
		t.Fatalf("purged %q, want %q", st.purged, want)
	}
}

type fakeScheduler struct{ sent []shard.Message }

func (f *fakeScheduler) SendLater(_ context.Context, v any, _ time.Duration) error {
	f.sent = append(f.sent, v.(shard.Message))
	return nil
}

func TestWorkerHonoursUsersSettings(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	w, mm, st, msg := setup(now)
	log := slog.New(slog.DiscardHandler)
	if _, err := w.Process(context.Background(), log, msg, 1); err != nil {
		t.Fatal(err)
	}
	if mm.statuses[id(0)].Status != engine.DND || mm.statuses[id(2)].Status != engine.DND {
		t.Fatalf("meetings not applied: %+v", mm.statuses)
	}
	// User 0 turns calstatus off, user 2 pauses it: the next run gives back exactly what it holds
	// (online, set on time; custom statuses cleared) and keeps nothing but the settings.
	off, paused := st.states[id(0)], st.states[id(2)]
	off.Settings = engine.Settings{Disabled: true}
	paused.Settings = engine.Settings{PausedUntil: now.Add(3 * time.Minute)}
	st.states[id(0)], st.states[id(2)] = off, paused
	mm.sets, mm.customs = nil, nil
	sched := &fakeScheduler{}
	w.Transitions = sched
	if _, err := w.Process(context.Background(), log, msg, 1); err != nil {
		t.Fatal(err)
	}
	if len(mm.sets) != 2 || mm.statuses[id(0)].Status != engine.Online || mm.statuses[id(2)].Status != engine.Online || len(mm.custom) != 0 {
		t.Fatalf("not given back: sets %v statuses %+v custom %v", mm.sets, mm.statuses, mm.custom)
	}
	if g := st.states[id(0)]; g.Held() || !g.Settings.Disabled || st.states[id(2)].Held() {
		t.Fatalf("state after giving back: %+v %+v", g, st.states[id(2)])
	}
	// The meeting's end is not scheduled for either; the pause's end (within this cycle, mid-meeting) is.
	if len(sched.sent) != 1 || !sched.sent[0].ApplyAt.Equal(now.Add(3*time.Minute)) || len(sched.sent[0].UserIDs) != 1 || sched.sent[0].UserIDs[0] != id(2) {
		t.Fatalf("transitions %+v", sched.sent)
	}
	// Quiet while off and paused: 2 Mattermost reads, no writes anywhere.
	mm.reads, st.writes, mm.sets, mm.customs = 0, 0, nil, nil
	if _, err := w.Process(context.Background(), log, msg, 1); err != nil || mm.reads != 2 || st.writes != 0 || len(mm.sets)+len(mm.customs) != 0 {
		t.Fatalf("off and paused, not quiet: reads %d writes %d sets %v customs %v (%v)", mm.reads, st.writes, mm.sets, mm.customs, err)
	}
	// The pause's end: calstatus takes the meeting up again (user 0 stays off).
	w.Transitions = nil
	w.Now = func() time.Time { return now.Add(3 * time.Minute) }
	if _, err := w.Process(context.Background(), log, msg, 1); err != nil {
		t.Fatal(err)
	}
	if mm.statuses[id(2)].Status != engine.DND || mm.statuses[id(0)].Status != engine.Online {
		t.Fatalf("after the pause: %+v", mm.statuses)
	}
}

func TestWorkerUsesTheUsersTimeZone(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	w, mm, _, msg := setup(now)
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	w.Policy.Location = time.UTC // TIME_ZONE
	mm.users[0].TimeZone = tokyo
	short := []calendar.Event{{Start: now.Add(-time.Minute), End: now.Add(2 * time.Hour), Status: calendar.OutOfOffice}}
	g := w.Graph.(fakeGraph)
	g.av["u0@x.test"] = calendar.NewAvailability("u0@x.test", short)
	g.av["u2@x.test"] = calendar.NewAvailability("u2@x.test", short)
	if _, err := w.Process(context.Background(), slog.New(slog.DiscardHandler), msg, 1); err != nil {
		t.Fatal(err)
	}
	if got := mm.custom[id(0)]; got == nil || got.Text != "Out of office until 21:00 JST" {
		t.Fatalf("user with a time zone: %+v", got)
	}
	if got := mm.custom[id(2)]; got == nil || got.Text != "Out of office until 12:00 UTC" {
		t.Fatalf("user without one (TIME_ZONE): %+v", got)
	}
}

func TestDryRunWritesNothingAndLogsEveryChange(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	w, mm, st, msg := setup(now)
	w.DryRun = true
	var buf strings.Builder
	rep, err := w.Process(context.Background(), slog.New(slog.NewJSONHandler(&buf, nil)), msg, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(mm.sets) != 0 || len(mm.customs) != 0 || st.writes != 0 || rep.Changed != 2 {
		t.Fatalf("dry run: sets %v customs %v state writes %d, changed %d", mm.sets, mm.customs, st.writes, rep.Changed)
	}
	if n := strings.Count(buf.String(), `"msg":"dry run: would update user"`); n != 2 || !strings.Contains(buf.String(), `"dry_run":true`) {
		t.Fatalf("%d would-update lines:\n%s", n, buf.String())
	}
}

func TestPausedRunsReadAndWriteNothing(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	w, mm, st, msg := setup(now)
	w.Paused = func(context.Context) (bool, error) { return true, nil }
	rep, err := w.Process(context.Background(), slog.New(slog.DiscardHandler), msg, 1)
	if err != nil || rep.Outcome != "paused" || mm.reads != 0 || len(mm.sets) != 0 || st.writes != 0 {
		t.Fatalf("paused shard: %+v reads %d sets %v writes %d (%v)", rep, mm.reads, mm.sets, st.writes, err)
	}
	p := &Planner{Mattermost: mm, Store: st, Now: func() time.Time { return now }, Paused: w.Paused}
	msgs, err := p.Plan(context.Background(), slog.New(slog.DiscardHandler), time.Time{})
	if err != nil || len(msgs) != 0 || mm.reads != 0 {
		t.Fatalf("paused planner: %d messages, %d reads (%v)", len(msgs), mm.reads, err)
	}
}

func TestUnusualCyclesAreLoggedNotBlocked(t *testing.T) {
	var buf strings.Builder
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	logUnusual(context.Background(), log, CycleSummary{CycleReport: store.CycleReport{CycleID: "c", Users: 100}, Changed: 30})
	if buf.Len() != 0 {
		t.Fatalf("30%% changed is usual: %s", buf.String())
	}
	logUnusual(context.Background(), log, CycleSummary{CycleReport: store.CycleReport{CycleID: "c", Users: 100}, Changed: 80})
	logUnusual(context.Background(), log, CycleSummary{CycleReport: store.CycleReport{CycleID: "c", Users: 100}, Failures: map[string]int{"no_access": 70}})
	if n := strings.Count(buf.String(), `"level":"ERROR","msg":"unusual cycle"`); n != 2 {
		t.Fatalf("%d unusual lines:\n%s", n, buf.String())
	}
}

// slowGraph runs before (once) while the calendar is being read: another run working meanwhile.
type slowGraph struct {
	fakeGraph
	before func()
}

func (g *slowGraph) GetSchedules(ctx context.Context, emails []string, w graph.Window) (graph.Result, error) {
	if g.before != nil {
		f := g.before
		g.before = nil
		f()
	}
	return g.fakeGraph.GetSchedules(ctx, emails, w)
}

// A run whose calendar read is slow while another run (a duplicate delivery) applies the same users
// must not take that run's change for the user's own: it reads the state before Mattermost, so its
// save conflicts and the queue retries it; nothing is set twice, nothing forgotten.
func TestWorkerReadsStateBeforeMattermost(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	slow, mm, st, msg := setup(now)
	st.guarded = true
	log := slog.New(slog.DiscardHandler)
	fast := &Worker{Mattermost: slow.Mattermost, Graph: slow.Graph, Store: slow.Store, Transitions: slow.Transitions,
		Policy: slow.Policy, Lookahead: slow.Lookahead, Now: slow.Now}
	g := &slowGraph{fakeGraph: slow.Graph.(fakeGraph)}
	g.before = func() {
		if _, err := fast.Process(context.Background(), log, msg, 1); err != nil {
			t.Errorf("the other run: %v", err)
		}
	}
	slow.Graph = g
	if _, err := slow.Process(context.Background(), log, msg, 1); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("the slow run: %v, want a conflict (the queue retries it)", err)
	}
	if _, err := slow.Process(context.Background(), log, msg, 2); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i += 2 { // in a meeting: DND set once, and still ours
		if s := st.states[id(i)]; s.SetStatus != engine.DND || strings.Contains(s.Handled, "!") {
			t.Errorf("user %d: state %+v", i, s.State)
		}
	}
	if len(mm.sets) != 2 {
		t.Errorf("status writes %v, want one per user in a meeting", mm.sets)
	}
}

// A run logs at most maxUserLogs per-user lines and counts the rest; at DEBUG it logs every one.
func TestPerUserLinesAreCappedExceptAtDebug(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	const users = maxUserLogs + 10
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		w, mm, _, _ := setup(now)
		mm.users = nil
		av := map[string]calendar.Availability{}
		var ids []string
		for i := range users {
			email := fmt.Sprintf("m%d@x.test", i)
			mm.users = append(mm.users, mattermost.User{ID: id(i), Email: email, Username: fmt.Sprintf("m%d", i)})
			mm.statuses[id(i)] = mattermost.Status{Status: engine.Online}
			av[email] = calendar.NewAvailability(email, []calendar.Event{{Start: now.Add(-time.Minute), End: now.Add(time.Hour), Status: calendar.Busy}})
			ids = append(ids, id(i))
		}
		w.Graph = fakeGraph{av: av}
		var buf strings.Builder
		rep, err := w.Process(context.Background(), slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: level})),
			shard.Split("c1", now, now.Add(5*time.Minute), ids)[0], 1)
		if err != nil || rep.Changed != users {
			t.Fatalf("%v: %+v, %v", level, rep, err)
		}
		lines, more := strings.Count(buf.String(), `"msg":"user updated"`), strings.Contains(buf.String(), `"msg":"more per-user lines not logged","cycle":"c1","shard":0,"count":10,`)
		if level == slog.LevelInfo && (lines != maxUserLogs || !more) || level == slog.LevelDebug && (lines != users || more) {
			t.Fatalf("%v: %d per-user lines, %q counted %v:\n%s", level, lines, "more per-user lines not logged", more, buf.String())
		}
	}
}

// A custom status write whose answer is lost may have landed: the next run takes it as what
// Mattermost shows — ours if it landed (kept, then cleared at the end), set again if it did not.
func TestWorkerResolvesAWriteWhoseAnswerWasLost(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for _, landed := range []bool{true, false} {
		w, mm, st, msg := setup(now)
		mm.lostCustom = map[string]bool{id(0): landed}
		rep, err := w.Process(context.Background(), slog.New(slog.DiscardHandler), msg, 1)
		if err != nil || rep.Failures["mattermost"] != 1 {
			t.Fatalf("landed %v: first run %+v, %v", landed, rep, err)
		}
		if c := st.states[id(0)].Claim; c == nil || !c.Until.Equal(now.Add(UnsureFor)) || c.Prev.CustomText != "" {
			t.Fatalf("landed %v: stored %+v: want a claim standing UnsureFor, holding no custom status before it", landed, st.states[id(0)])
		}
		// A retry at once leaves the user to the write that may still land.
		mm.lostCustom, mm.sets, mm.customs = nil, nil, nil
		w.Now = func() time.Time { return now.Add(10 * time.Second) }
		if _, err := w.Process(context.Background(), slog.New(slog.DiscardHandler), msg, 2); err != nil {
			t.Fatal(err)
		}
		if len(mm.sets)+len(mm.customs) != 0 || st.states[id(0)].Claim == nil {
			t.Fatalf("landed %v: a retry within UnsureFor wrote %v %v, state %+v", landed, mm.sets, mm.customs, st.states[id(0)])
		}
		w.Now = func() time.Time { return now.Add(UnsureFor) }
		if _, err := w.Process(context.Background(), slog.New(slog.DiscardHandler), cycleAt(now.Add(UnsureFor), msg.UserIDs), 1); err != nil {
			t.Fatal(err)
		}
		got := st.states[id(0)]
		wantCustoms := []string(nil)
		if !landed {
			wantCustoms = []string{id(0) + "=In a meeting"}
		}
		if got.Claim != nil || got.CustomText != "In a meeting" || len(mm.sets) != 0 || !slices.Equal(mm.customs, wantCustoms) {
			t.Fatalf("landed %v: second run stored %+v, status writes %v, custom writes %v (want %v)", landed, got, mm.sets, mm.customs, wantCustoms)
		}
		mm.customs = nil
		w.Now = func() time.Time { return now.Add(time.Hour) }
		if _, err := w.Process(context.Background(), slog.New(slog.DiscardHandler), cycleAt(now.Add(time.Hour), msg.UserIDs), 1); err != nil {
			t.Fatal(err)
		}
		if mm.custom[id(0)] != nil || !slices.Contains(mm.customs, id(0)+"=") || st.states[id(0)].Held() {
			t.Fatalf("landed %v: after the meeting: custom %+v, writes %v, state %+v", landed, mm.custom[id(0)], mm.customs, st.states[id(0)])
		}
	}
}

// Mattermost's profile cache can keep a read that raced our custom status write: a run that finds
// ours missing reads the user again past the cache before taking it for the user's removal.
func TestWorkerRereadsAUserWhoseCustomStatusOfOursIsMissing(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	w, mm, st, msg := setup(now)
	log := slog.New(slog.DiscardHandler)
	if _, err := w.Process(context.Background(), log, msg, 1); err != nil {
		t.Fatal(err)
	}
	ours := mm.custom[id(0)]
	mm.dbCustom = map[string]*mattermost.CustomStatus{id(0): ours}
	mm.custom[id(0)] = nil // the cache's stale copy
	mm.reads, mm.sets, mm.customs = 0, nil, nil
	w.Now = func() time.Time { return now.Add(time.Minute) }
	if _, err := w.Process(context.Background(), log, msg, 1); err != nil {
		t.Fatal(err)
	}
	if got := st.states[id(0)]; got.CustomText != ours.Text || mm.reads != 3 || len(mm.sets)+len(mm.customs) != 0 {
		t.Fatalf("stored %+v after %d reads, writes %v %v: want ours still held, one read more, no write", got, mm.reads, mm.sets, mm.customs)
	}
	mm.custom[id(0)], mm.dbCustom = ours, nil
	w.Now = func() time.Time { return now.Add(time.Hour) }
	if _, err := w.Process(context.Background(), log, cycleAt(now.Add(time.Hour), msg.UserIDs), 1); err != nil {
		t.Fatal(err)
	}
	if mm.custom[id(0)] != nil || st.states[id(0)].Held() {
		t.Fatalf("after the meeting: custom %+v, state %+v", mm.custom[id(0)], st.states[id(0)])
	}
}

// cycleAt is the shard of a cycle planned at t for ids.
func cycleAt(t time.Time, ids []string) shard.Message {
	return shard.Split("cycle-"+t.Format("150405"), t, t.Add(5*time.Minute), ids)[0]
}

// What users do while Graph answers decides the writes: read again before writing, only for the
// users about to change.
func TestWorkerReadsTheUsersAboutToChangeAgainAfterGraph(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	w, mm, st, msg := setup(now)
	g := w.Graph.(fakeGraph)
	own := &mattermost.CustomStatus{Emoji: "coffee", Text: "brb"}
	mm.reads = 0
	g.meanwhile = mm.afterReads(2, func() { // after the users and their statuses were read
		mm.statuses[id(0)] = mattermost.Status{Status: engine.OutOfOffice, Manual: true} // automatic replies on
		mm.custom[id(2)] = own                                                           // their own custom status
	})
	w.Graph = g
	rep, err := w.Process(context.Background(), slog.New(slog.DiscardHandler), msg, 1)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(mm.sets, id(0)+"=dnd") {
		t.Fatalf("set DND over automatic replies turned on while Graph answered: %v", mm.sets)
	}
	if mm.custom[id(2)] != own || slices.ContainsFunc(mm.customs, func(c string) bool { return strings.HasPrefix(c, id(2)+"=") }) {
		t.Fatalf("replaced the user's own custom status set while Graph answered: %v", mm.customs)
	}
	// The rest is still done: DND for the one, our custom status for the one on automatic replies.
	if !slices.Contains(mm.sets, id(2)+"=dnd") || !slices.Contains(mm.customs, id(0)+"=In a meeting") || rep.Changed != 2 {
		t.Fatalf("the rest of the changes: %+v, %v, %v", rep, mm.sets, mm.customs)
	}
	if got := st.states[id(0)]; got.SetStatus != "" || got.Claim != nil {
		t.Fatalf("state of the user on automatic replies: %+v", got)
	}
	// Statuses and users, then both again for the users about to change.
	if mm.reads != 4 {
		t.Fatalf("%d Mattermost reads, want 4", mm.reads)
	}
}

// Mattermost clears a custom status on the copy of the user its profile cache holds: ours is read
// past that cache before it is cleared, so a newer one of the user's is never lost.
func TestWorkerReadsPastTheProfileCacheBeforeClearingOurs(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	w, mm, st, msg := setup(now)
	log := slog.New(slog.DiscardHandler)
	if _, err := w.Process(context.Background(), log, msg, 1); err != nil {
		t.Fatal(err)
	}
	if st.states[id(0)].CustomText == "" {
		t.Fatal("no custom status of ours to clear")
	}
	own := &mattermost.CustomStatus{Emoji: "coffee", Text: "brb"}
	mm.dbCustom = map[string]*mattermost.CustomStatus{id(0): own} // the cache still shows ours
	mm.customs = nil
	later := now.Add(2 * time.Hour) // the meeting is over
	w.Now = func() time.Time { return later }
	if _, err := w.Process(context.Background(), log, cycleAt(later, msg.UserIDs), 1); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(mm.customs, id(0)+"=") {
		t.Fatalf("cleared through a stale cache over the user's own custom status: %v", mm.customs)
	}
	if got := st.states[id(0)]; got.CustomText != "" {
		t.Fatalf("still holds a custom status it no longer has: %+v", got)
	}
}

// A user about to change only their status, whose read again comes through a stale profile cache
// without our custom status, keeps it: read past the cache, not taken for the user's removal.
func TestWorkerRefreshKeepsOurCustomStatusPastAStaleCache(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	w, mm, st, msg := setup(now)
	log := slog.New(slog.DiscardHandler)
	if _, err := w.Process(context.Background(), log, msg, 1); err != nil {
		t.Fatal(err)
	}
	// A change stopped after its Via: away pinned (set by hand), the DND still to set; the custom
	// status stays as it is, so the next run writes the status only.
	held := st.states[id(0)]
	held.SetStatus, held.PrevStatus, held.DNDEnd = engine.Away, engine.Away, time.Time{}
	st.states[id(0)] = held
	mm.statuses[id(0)] = mattermost.Status{Status: engine.Away, Manual: true}
	ours := mm.custom[id(0)]
	g := w.Graph.(fakeGraph)
	mm.sets, mm.customs, mm.reads = nil, nil, 0
	g.meanwhile = mm.afterReads(2, func() { // the cache goes stale while Graph answers
		mm.dbCustom = map[string]*mattermost.CustomStatus{id(0): ours}
		mm.custom[id(0)] = nil
	})
	w.Graph = g
	w.Now = func() time.Time { return now.Add(time.Minute) }
	if _, err := w.Process(context.Background(), log, cycleAt(now.Add(time.Minute), msg.UserIDs), 1); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(mm.sets, id(0)+"=dnd") || len(mm.customs) != 0 {
		t.Fatalf("status writes %v, custom writes %v: want the DND only", mm.sets, mm.customs)
	}
	if got := st.states[id(0)]; got.CustomText != "In a meeting" || strings.Contains(got.Handled, "!c") {
		t.Fatalf("our custom status taken for the user's removal: %+v", got.State)
	}
}

// A custom status of ours to be replaced by one already over (its item ended while the shard ran)
// is cleared, not left stored (Mattermost would refuse the new one, and keep ours for good).
func TestWorkerClearsOursWhenItsReplacementIsAlreadyOver(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	w, mm, st, msg := setup(now)
	email := "u0@x.test"
	g := w.Graph.(fakeGraph)
	g.av[email] = calendar.NewAvailability(email, []calendar.Event{
		{Start: now.Add(-time.Minute), End: now.Add(10 * time.Minute), Status: calendar.Busy},
		{Start: now.Add(-time.Minute), End: now.Add(10*time.Minute + time.Second), Status: calendar.WorkingElsewhere},
	})
	log := slog.New(slog.DiscardHandler)
	if _, err := w.Process(context.Background(), log, msg, 1); err != nil {
		t.Fatal(err)
	}
	if cs := mm.custom[id(0)]; cs == nil || cs.Text != "In a meeting" {
		t.Fatalf("custom status %+v, want ours", cs)
	}
	mm.customs = nil
	later := now.Add(10 * time.Minute) // working elsewhere for one more second
	w.Now = func() time.Time { return later }
	if _, err := w.Process(context.Background(), log, cycleAt(later, msg.UserIDs), 1); err != nil {
		t.Fatal(err)
	}
	if mm.custom[id(0)] != nil || !slices.Equal(mm.customs, []string{id(0) + "="}) {
		t.Fatalf("custom status %+v, writes %v: want ours cleared", mm.custom[id(0)], mm.customs)
	}
	if got := st.states[id(0)]; got.Claim != nil {
		t.Fatalf("state %+v: want the change completed", got)
	}
}

// A write that goes out late on its read (the claims' save held up by a storage restart, the
// status write by Retry-After) reads the user again first: what they changed meanwhile stays, and
// the next run decides again.
func TestWorkerReadsAgainBeforeALateWrite(t *testing.T) {
	defer func(was time.Duration) { freshFor = was }(freshFor)
	freshFor = -time.Nanosecond // every write is late
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	w, mm, st, msg := setup(now)
	own := &mattermost.CustomStatus{Emoji: "coffee", Text: "brb"}
	st.onSave = func() { mm.custom[id(0)] = own } // while the claims are saved
	mm.onSet = func(uid string) {                 // while the status is written
		if uid == id(2) {
			mm.custom[uid] = own
		}
	}
	log := slog.New(slog.DiscardHandler)
	rep, err := w.Process(context.Background(), log, msg, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(mm.customs) != 0 || mm.custom[id(0)] != own || mm.custom[id(2)] != own {
		t.Fatalf("custom statuses written over the users' own: %v", mm.customs)
	}
	if slices.Contains(mm.sets, id(0)+"=dnd") || !slices.Contains(mm.sets, id(2)+"=dnd") {
		t.Fatalf("status writes %v: want none for the user who changed before it, DND for the other", mm.sets)
	}
	if rep.Failures[FailChangedMeanwhile] != 2 || rep.Changed != 0 {
		t.Fatalf("report %+v", rep)
	}
	if got := st.states[id(0)]; got.Held() || got.Claim != nil {
		t.Fatalf("state of the user nothing was written for: %+v", got)
	}
	if got := st.states[id(2)]; got.SetStatus != engine.DND || got.CustomText != "" || got.Claim != nil {
		t.Fatalf("state of the user whose status only was written: %+v", got)
	}
	// The next run: DND for the first, their own custom statuses stay.
	st.onSave, mm.onSet, mm.customs = nil, nil, nil
	rep, err = w.Process(context.Background(), log, cycleAt(now.Add(time.Minute), msg.UserIDs), 1)
	if err != nil || rep.Failed != 1 || !slices.Contains(mm.sets, id(0)+"=dnd") || len(mm.customs) != 0 {
		t.Fatalf("next run: %+v, sets %v, customs %v, %v", rep, mm.sets, mm.customs, err)
	}
}

// Users whose read has aged while they waited for a lane (Mattermost's write rate: a meeting hour
// starting for a whole shard) are read again a chunk at a time, two calls per chunk, not two per
// user; none is written on a read older than freshFor.
func TestWorkerReadsAgainALaneAtATime(t *testing.T) {
	defer func(was time.Duration) { freshFor = was }(freshFor)
	freshFor = 400 * time.Millisecond // a chunk's writes take 40 ms here
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	w, mm, st, _ := setup(now)
	mm.writeBound = 1 // one lane: the chunks wait for each other
	av := map[string]calendar.Availability{}
	var ids []string
	mm.users = nil
	const users = 24 * laneChunk
	for i := range users {
		email := fmt.Sprintf("u%d@x.test", i)
		mm.users = append(mm.users, mattermost.User{ID: id(i), Email: email, Username: fmt.Sprintf("u%d", i)})
		mm.statuses[id(i)] = mattermost.Status{Status: engine.Online}
		av[email] = calendar.NewAvailability(email, []calendar.Event{{Start: now.Add(-time.Minute), End: now.Add(time.Hour), Status: calendar.Busy}})
		ids = append(ids, id(i))
	}
	w.Graph = fakeGraph{av: av}
	mm.onSet = func(string) { time.Sleep(5 * time.Millisecond) } // under mm's lock: one write at a time
	rep, err := w.Process(context.Background(), slog.New(slog.DiscardHandler), cycleAt(now, ids), 1)
	if err != nil || rep.Changed != users || rep.Failed != 0 {
		t.Fatalf("report %+v, %v", rep, err)
	}
	for i := range users {
		if mm.statuses[id(i)].Status != engine.DND || mm.custom[id(i)] == nil || st.states[id(i)].Claim != nil {
			t.Fatalf("user %d: %+v, custom %+v, state %+v", i, mm.statuses[id(i)], mm.custom[id(i)], st.states[id(i)])
		}
	}
	// 192 status writes of 5 ms one after another: the later chunks' reads have aged. One read past the cache before the claims (refresh), then at most one per chunk.
	if chunks := users / laneChunk; mm.uncachedReads < 2 || mm.uncachedReads > 1+chunks {
		t.Fatalf("%d reads past the profile cache for %d chunks: want aged chunks read again in one call each", mm.uncachedReads, chunks)
	}
}

// A shard's report names its failing users and why (for the Status page), the first
// maxFailedUsers of them; the counts stay whole.
func TestWorkerReportNamesFailingUsers(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	w, mm, _, msg := setup(now)
	mm.failSet[id(0)] = true
	rep, err := w.Process(context.Background(), slog.New(slog.DiscardHandler), msg, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.FailedUser{{User: "u3", Class: "not_found"}, {User: "u0", Class: "mattermost"}}
	if !slices.Equal(rep.FailedUsers, want) {
		t.Fatalf("failed users %+v, want %+v", rep.FailedUsers, want)
	}

	// Many failing: the first maxFailedUsers named, all counted.
	var ids []string
	for i := range maxFailedUsers + 10 {
		ids = append(ids, id(100+i)) // no longer Mattermost users
	}
	rep, err = w.Process(context.Background(), slog.New(slog.DiscardHandler), cycleAt(now, ids), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.FailedUsers) != maxFailedUsers || rep.Failures[FailNoUser] != maxFailedUsers+10 || rep.FailedUsers[0] != (store.FailedUser{User: id(100), Class: FailNoUser}) {
		t.Fatalf("%d named (first %+v), %d counted", len(rep.FailedUsers), rep.FailedUsers[0], rep.Failures[FailNoUser])
	}
}

// fakePresence is Teams presence by email, and the Entra directory.
type fakePresence struct {
	mu       sync.Mutex
	activity map[string]string // by email
	replies  map[string]string // automatic replies on, by email
	missing  map[string]bool   // emails Entra has no user for
	// forbidden: the permission is not granted; down: presence calls fail (5xx).
	forbidden, down bool
	lookups         []string // the emails looked up
	presenceCalls   int
}

func objectID(email string) string {
	return fmt.Sprintf("%08x-0000-4000-8000-000000000000", crc32.ChecksumIEEE([]byte(email)))
}

func (f *fakePresence) LookupUserIDs(_ context.Context, emails []string) (graph.UserIDsResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups = append(f.lookups, emails...)
	res := graph.UserIDsResult{IDs: map[string]string{}, Calls: 1}
	for _, e := range emails {
		switch {
		case f.forbidden:
			res.Failures = append(res.Failures, graph.Failure{Email: e, Class: "forbidden"})
		case f.missing[e]:
			res.NotFound = append(res.NotFound, e)
		default:
			res.IDs[e] = objectID(e)
		}
	}
	return res, nil
}

func (f *fakePresence) GetPresences(_ context.Context, ids []string) (graph.PresenceResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.presenceCalls++
	res := graph.PresenceResult{Presence: map[string]graph.Presence{}, Calls: 1}
	if f.down {
		return res, errors.New("graph: presence: 503 after 4 attempts")
	}
	byID, replies := map[string]string{}, map[string]string{}
	for e, a := range f.activity {
		byID[objectID(e)] = a
	}
	for e, r := range f.replies {
		replies[objectID(e)] = r
	}
	for _, id := range ids {
		res.Presence[id] = graph.Presence{Availability: "Available", Activity: cmp.Or(byID[id], "Available"),
			OutOfOffice: replies[id] != "", AutoReply: replies[id]}
	}
	return res, nil
}

// Teams presence on: a user in a call with nothing on the calendar is put in DND and given back
// when it ends; object ids are looked up once (a user Entra does not know is not looked up again
// every cycle); presence Graph cannot read leaves a held call as it is; without the permission
// the calendar is synced all the same and the report says what is missing.
func TestWorkerTeamsCalls(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	w, mm, st, msg := setup(now)
	pr := &fakePresence{activity: map[string]string{"u1@x.test": "InACall"}, missing: map[string]bool{"u2@x.test": true}}
	w.Presence, w.Calls = pr, true
	log := slog.New(slog.DiscardHandler)
	cycle := func(at time.Time) store.ShardReport {
		t.Helper()
		w.Now = func() time.Time { return at }
		rep, err := w.Process(context.Background(), log, cycleAt(at, msg.UserIDs), 1)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	rep := cycle(now)
	if s := mm.statuses[id(1)]; s.Status != engine.DND || mm.custom[id(1)] == nil || mm.custom[id(1)].Text != "In a call" {
		t.Fatalf("in a call, nothing on the calendar: status %+v custom %+v", s, mm.custom[id(1)])
	}
	if rep.Changed != 3 || rep.PresenceCalls != 2 || len(pr.lookups) != 4 || st.directoryWrites != 4 {
		t.Fatalf("first cycle: %+v; lookups %v, directory writes %d", rep, pr.lookups, st.directoryWrites)
	}
	// Next cycle: no lookup (u2, unknown to Entra, waits a day), one presence call, nothing written.
	pr.lookups, st.writes, mm.sets = nil, 0, nil
	rep = cycle(now.Add(5 * time.Minute))
	if len(pr.lookups) != 0 || rep.PresenceCalls != 1 || st.writes != 0 || len(mm.sets) != 0 {
		t.Fatalf("second cycle: %+v; lookups %v, state writes %d, sets %v", rep, pr.lookups, st.writes, mm.sets)
	}
	// Presence unreadable: the call held stays, nothing is written.
	pr.down = true
	rep = cycle(now.Add(10 * time.Minute))
	if s := mm.statuses[id(1)]; s.Status != engine.DND || len(mm.sets) != 0 {
		t.Fatalf("presence down: status %+v, sets %v, report %+v", s, mm.sets, rep)
	}
	// The call is over: given back.
	pr.down = false
	delete(pr.activity, "u1@x.test")
	cycle(now.Add(15 * time.Minute))
	if s := mm.statuses[id(1)]; s.Status != engine.Online || mm.custom[id(1)] != nil {
		t.Fatalf("call over: status %+v custom %+v", s, mm.custom[id(1)])
	}
	// A day later Entra is asked about u2 again.
	pr.lookups = nil
	cycle(now.Add(LookUpAgainAfter + time.Minute))
	if len(pr.lookups) != 1 || pr.lookups[0] != "u2@x.test" {
		t.Fatalf("a day later, looked up %v: want u2@x.test again", pr.lookups)
	}
}

func TestWorkerWithoutThePresencePermission(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	w, mm, st, msg := setup(now)
	pr := &fakePresence{forbidden: true, activity: map[string]string{"u1@x.test": "InACall"}}
	w.Presence, w.Calls = pr, true
	rep, err := w.Process(context.Background(), slog.New(slog.DiscardHandler), msg, 1)
	if err != nil {
		t.Fatal(err)
	}
	// The calendar is synced (the two in a meeting), the call not; nothing stored for the lookups.
	if rep.Changed != 2 || mm.statuses[id(1)].Status != engine.Online || rep.PresenceFailures["forbidden"] != 4 || st.directoryWrites != 0 || pr.presenceCalls != 0 {
		t.Fatalf("forbidden: %+v; u1 %+v; directory writes %d; presence calls %d", rep, mm.statuses[id(1)], st.directoryWrites, pr.presenceCalls)
	}
}

func TestCadence(t *testing.T) {
	now := time.Date(2026, 11, 23, 17, 52, 0, 0, time.UTC)
	for expr, want := range map[string]time.Duration{"0 */5 * * * *": 5 * time.Minute, "0 */2 8-17 * * *": 2 * time.Minute,
		"*/30 * * * * *": 30 * time.Second, "0 0 0 30 2 *": DefaultInterval} {
		s, err := ncrontab.Parse(expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := Cadence(s, now); got != want {
			t.Errorf("Cadence(%q) = %s, want %s", expr, got, want)
		}
	}
	if got := Cadence(nil, now); got != DefaultInterval {
		t.Errorf("Cadence(nil) = %s", got)
	}
}

// Automatic replies on (AUTOMATIC_REPLIES_SYNC without PRESENCE_SYNC): Outlook's turn on the
// auto-responder and ooo, a call is not synced, the end gives the status back (one write, which
// turns the responder off); a responder the user turned on themselves is never read or changed.
func TestWorkerAutomaticReplies(t *testing.T) {
	now := time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC) // before the shard's meetings
	w, mm, _, msg := setup(now)
	pr := &fakePresence{activity: map[string]string{"u1@x.test": "InACall"},
		replies: map[string]string{"u1@x.test": "Away until Monday", "u3@x.test": "Off this week"}}
	w.Presence, w.AutomaticReplies = pr, true
	mm.statuses[id(1)] = mattermost.Status{Status: engine.Away, Manual: true}
	mm.statuses[id(3)] = mattermost.Status{Status: engine.OutOfOffice, Manual: true}
	mm.responders = map[string]string{id(3): "gone fishing"} // their own
	cycle := func(at time.Time) store.ShardReport {
		t.Helper()
		w.Now = func() time.Time { return at }
		rep, err := w.Process(context.Background(), slog.New(slog.DiscardHandler), cycleAt(at, msg.UserIDs), 1)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	cycle(now)
	if s := mm.statuses[id(1)]; s.Status != engine.OutOfOffice || mm.responders[id(1)] != "Away until Monday" || mm.custom[id(1)] != nil {
		t.Fatalf("replies on: u1 %+v, responder %q, custom %+v (no call synced)", s, mm.responders[id(1)], mm.custom[id(1)])
	}
	if mm.responders[id(3)] != "gone fishing" || mm.responderCalls != 2 {
		t.Fatalf("u3's own responder %q; %d responder calls, want 2 (u1's read and patch)", mm.responders[id(3)], mm.responderCalls)
	}
	// Unchanged: nothing read or written.
	mm.responderCalls, mm.sets = 0, nil
	cycle(now.Add(5 * time.Minute))
	if mm.responderCalls != 0 || len(mm.sets) != 0 {
		t.Fatalf("second cycle: %d responder calls, sets %v", mm.responderCalls, mm.sets)
	}
	// Outlook's end: checked, then given back in one status write.
	delete(pr.replies, "u1@x.test")
	cycle(now.Add(10 * time.Minute))
	if s := mm.statuses[id(1)]; s.Status != engine.Away || !s.Manual || mm.responders[id(1)] != "" || mm.responderCalls != 1 || len(mm.sets) != 1 {
		t.Fatalf("replies over: u1 %+v, responder %q, %d responder calls, sets %v", s, mm.responders[id(1)], mm.responderCalls, mm.sets)
	}
	if mm.responders[id(3)] != "gone fishing" || mm.statuses[id(3)].Status != engine.OutOfOffice {
		t.Fatalf("u3's own responder changed: %q %+v", mm.responders[id(3)], mm.statuses[id(3)])
	}
}
