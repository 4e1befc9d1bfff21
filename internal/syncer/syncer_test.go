package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	mmodel "github.com/mattermost/mattermost-server/v6/model"

	"github.com/calstatus/calstatus/internal/calendar"
	"github.com/calstatus/calstatus/internal/engine"
	"github.com/calstatus/calstatus/internal/graph"
	"github.com/calstatus/calstatus/internal/mattermost"
	"github.com/calstatus/calstatus/internal/ncrontab"
	"github.com/calstatus/calstatus/internal/shard"
	"github.com/calstatus/calstatus/internal/store"
)

// Small fakes: the real adapters are exercised by the end-to-end tests against Azurite, Mattermost and
// the Graph simulator; these pin down the worker's orchestration.

type fakeMM struct {
	users    []mattermost.User
	statuses map[string]string
	reads    int
	dndEnd   map[string]int64
	custom   map[string]*mmodel.CustomStatus
	sets     []string
	customs  []string
	failSet  map[string]bool
}

func (f *fakeMM) ListSyncUsers(context.Context) ([]mattermost.User, error) {
	f.reads++
	return f.users, nil
}
func (f *fakeMM) Users(_ context.Context, ids []string) ([]mattermost.User, error) {
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
func (f *fakeMM) Statuses(context.Context, []string) (map[string]mmodel.Status, error) {
	f.reads++
	out := map[string]mmodel.Status{}
	for id, s := range f.statuses {
		out[id] = mmodel.Status{UserId: id, Status: s, DNDEndTime: f.dndEnd[id]}
	}
	return out, nil
}
func (f *fakeMM) SetStatusVia(_ context.Context, id, via, status string, end time.Time) error {
	if f.failSet[id] {
		return errors.New("boom")
	}
	f.sets = append(f.sets, id+"="+status)
	f.statuses[id] = status
	f.dndEnd[id] = 0
	if !end.IsZero() {
		f.dndEnd[id] = end.Unix()
	}
	return nil
}
func (f *fakeMM) SetCustomStatus(_ context.Context, id, emoji, text string, expires time.Time) error {
	f.customs = append(f.customs, id+"="+text)
	f.custom[id] = &mmodel.CustomStatus{Emoji: emoji, Text: text, ExpiresAt: expires}
	return nil
}
func (f *fakeMM) ClearCustomStatus(_ context.Context, id string) error {
	f.customs = append(f.customs, id+"=")
	delete(f.custom, id)
	return nil
}
func (f *fakeMM) Notify(context.Context, string, string) error { return nil }

type fakeGraph struct {
	av      map[string]calendar.Availability
	down    map[string]bool // emails Graph keeps failing for (5xx)
	fetched *[]string
}

func (g fakeGraph) GetSchedules(_ context.Context, emails []string, _ graph.Window) (graph.Result, error) {
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
	states  map[string]engine.State
	writes  int
	reports []store.ShardReport
}

func (s *fakeStore) LoadStates(_ context.Context, ids []string) (map[string]store.UserState, error) {
	out := map[string]store.UserState{}
	for _, id := range ids {
		if st, ok := s.states[id]; ok {
			out[id] = store.UserState{State: st}
		}
	}
	return out, nil
}
func (s *fakeStore) SaveStates(_ context.Context, cs []store.StateChange) error {
	for _, c := range cs {
		s.writes++
		if c.New.Held() {
			s.states[c.UserID] = c.New
		} else {
			delete(s.states, c.UserID)
		}
	}
	return nil
}
func (s *fakeStore) RecordCycle(context.Context, store.CycleReport) error { return nil }
func (s *fakeStore) DueForPurge(context.Context, time.Time) (bool, error) { return false, nil }
func (s *fakeStore) PurgeEnded(context.Context, time.Time) (int, error)   { return 0, nil }
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
	mm := &fakeMM{statuses: map[string]string{}, dndEnd: map[string]int64{}, custom: map[string]*mmodel.CustomStatus{}, failSet: map[string]bool{}}
	av := map[string]calendar.Availability{}
	var ids []string
	for i := 0; i < 4; i++ {
		email := fmt.Sprintf("u%d@x.test", i)
		mm.users = append(mm.users, mattermost.User{ID: id(i), Email: email, Username: fmt.Sprintf("u%d", i)})
		mm.statuses[id(i)] = engine.Online
		ids = append(ids, id(i))
		if i%2 == 0 { // even users are in a meeting now
			av[email] = calendar.Availability{Email: email, Events: []calendar.Event{{Start: now.Add(-time.Minute), End: now.Add(time.Hour), Status: calendar.Busy}}}
		} else {
			av[email] = calendar.Availability{Email: email}
		}
	}
	delete(av, "u3@x.test") // one unknown mailbox
	st := &fakeStore{states: map[string]engine.State{}}
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
	if _, held := st.states[id(0)]; held {
		t.Fatalf("state kept for a user whose status was not set: %+v", st.states[id(0)])
	}
	if _, held := st.states[id(2)]; !held {
		t.Fatal("state lost for a user whose status was set")
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
