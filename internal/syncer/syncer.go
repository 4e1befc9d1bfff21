// Package syncer runs calstatus's two jobs: planning a cycle (list the users, cut them into shards)
// and working one shard (Graph availability + Mattermost statuses + stored state → decisions →
// updates). It wires the pure engine to thin adapters through small interfaces.
package syncer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	mmodel "github.com/mattermost/mattermost-server/v6/model"

	"github.com/calstatus/calstatus/internal/engine"
	"github.com/calstatus/calstatus/internal/graph"
	"github.com/calstatus/calstatus/internal/mattermost"
	"github.com/calstatus/calstatus/internal/ncrontab"
	"github.com/calstatus/calstatus/internal/shard"
	"github.com/calstatus/calstatus/internal/store"
)

// Mattermost is what the jobs need of the Mattermost adapter.
type Mattermost interface {
	ListSyncUsers(ctx context.Context) ([]mattermost.User, error)
	Users(ctx context.Context, ids []string) ([]mattermost.User, error)
	Statuses(ctx context.Context, ids []string) (map[string]mmodel.Status, error)
	SetStatusVia(ctx context.Context, userID, via, status string, dndEnd time.Time) error
	SetCustomStatus(ctx context.Context, userID, emoji, text string, expiresAt time.Time) error
	ClearCustomStatus(ctx context.Context, userID string) error
	Notify(ctx context.Context, userID, message string) error
}

// Graph is what the worker needs of the Graph adapter.
type Graph interface {
	GetSchedules(ctx context.Context, emails []string, w graph.Window) (graph.Result, error)
}

// Store is what the jobs need of the Table Storage adapter.
type Store interface {
	LoadStates(ctx context.Context, userIDs []string) (map[string]store.UserState, error)
	SaveStates(ctx context.Context, changes []store.StateChange) error
	RecordCycle(ctx context.Context, r store.CycleReport) error
	DueForPurge(ctx context.Context, now time.Time) (bool, error)
	PurgeEnded(ctx context.Context, cutoff time.Time) (int, error)
	RecordShard(ctx context.Context, r store.ShardReport) error
	ShardReport(ctx context.Context, cycleID string, shard int) (store.ShardReport, bool, error)
}

// Scheduler enqueues a message to arrive later (a transition).
type Scheduler interface {
	SendLater(ctx context.Context, v any, delay time.Duration) error
}

// DefaultInterval is the sync period assumed when the timer does not say when it fires next.
const DefaultInterval = 5 * time.Minute

// Planner plans a sync cycle.
type Planner struct {
	Mattermost Mattermost
	Store      Store
	// Schedule is SYNC_SCHEDULE, for when the host does not say when the timer fires next (it sends
	// no ScheduleStatus on a first run or for schedules more often than once a minute).
	Schedule ncrontab.Schedule
	Now      func() time.Time
}

// Plan lists the users to sync and cuts them into shard messages. next is when the timer fires
// again (zero if the host did not say): shards not started by then are stale.
func (p *Planner) Plan(ctx context.Context, log *slog.Logger, next time.Time) ([]shard.Message, error) {
	now := p.Now().UTC()
	users, err := p.Mattermost.ListSyncUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	if !next.After(now) && p.Schedule != nil {
		next = p.Schedule.Next(now)
	}
	if !next.After(now) {
		next = now.Add(DefaultInterval)
	}
	cycleID := newCycleID(now)
	msgs := shard.Split(cycleID, now, next, ids)
	if err := p.Store.RecordCycle(ctx, store.CycleReport{CycleID: cycleID, Started: now, Users: len(ids), Shards: len(msgs)}); err != nil {
		return nil, err
	}
	log.Info("cycle planned", "cycle", cycleID, "users", len(ids), "shards", len(msgs), "stale_after", next.Format(time.RFC3339))
	p.purge(ctx, log, now)
	return msgs, nil
}

// PurgeAfter is how long after its event a user's stored state is deleted if nothing else did.
const PurgeAfter = 24 * time.Hour

// purge deletes, once a day, state of events long over (users who left, mailboxes that stopped
// answering). A failure only delays it to the next cycle.
func (p *Planner) purge(ctx context.Context, log *slog.Logger, now time.Time) {
	due, err := p.Store.DueForPurge(ctx, now)
	if err != nil || !due {
		if err != nil {
			log.Warn("could not check the daily purge", "error", err.Error())
		}
		return
	}
	n, err := p.Store.PurgeEnded(ctx, now.Add(-PurgeAfter))
	if err != nil {
		log.Warn("daily purge of ended state failed", "purged", n, "error", err.Error())
		return
	}
	log.Info("daily purge of ended state", "purged", n)
}

// newCycleID names a cycle by its time plus randomness (two timers never share one).
func newCycleID(now time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return now.Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// Worker processes shards.
type Worker struct {
	Mattermost Mattermost
	Graph      Graph
	Store      Store
	// Transitions receives the delayed messages that apply meeting starts and ends on time; nil
	// leaves them to the next cycle.
	Transitions Scheduler
	Policy      engine.Policy
	// Lookahead is how far past now availability is fetched.
	Lookahead time.Duration
	// Budget bounds one shard's work, below the function timeout (host.json functionTimeout), so
	// that retries give up in time to record the outcome. Zero means DefaultBudget.
	Budget time.Duration
	Now    func() time.Time
}

// DefaultBudget leaves a minute of host.json's five-minute functionTimeout.
const DefaultBudget = 4 * time.Minute

// run is one Process call's working data.
type run struct {
	w        *Worker
	m        shard.Message
	now      time.Time
	log      *slog.Logger
	rep      store.ShardReport
	position map[string]int
}

// Process works one shard (or one transition). It returns an error only when the message should be
// retried by the queue (a dependency is down); per-user problems are logged, counted and reported.
func (w *Worker) Process(ctx context.Context, log *slog.Logger, m shard.Message, attempt int) (store.ShardReport, error) {
	start := time.Now()
	budget := w.Budget
	if budget <= 0 {
		budget = DefaultBudget
	}
	outer := ctx
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	r := &run{w: w, m: m, now: w.Now().UTC(), log: log.With("cycle", m.CycleID, "shard", m.Shard),
		rep: store.ShardReport{CycleID: m.CycleID, Shard: m.Shard, Users: len(m.UserIDs), Attempt: attempt, Failures: map[string]int{}}}
	what := "shard"
	if m.IsTransition() {
		what = "transition"
		r.log = r.log.With("apply_at", m.ApplyAt.Format(time.RFC3339))
		// A message may be delivered a little before its time: decide as of the transition.
		if r.now.Before(m.ApplyAt) {
			r.now = m.ApplyAt
		}
	}
	var err error
	outcome := "ok"
	if r.now.After(m.StaleAfter) {
		outcome = "stale"
		r.log.Warn("dropping stale "+what+": a newer cycle covers these users", "issued", m.IssuedAt.Format(time.RFC3339))
	} else if err = r.process(ctx, attempt); err != nil {
		outcome = "failed"
		r.rep.Error = err.Error()
	}
	r.rep.Outcome, r.rep.Duration = outcome, time.Since(start)
	// Transitions are small, frequent and not resumable: their outcome is in the logs only.
	if !m.IsTransition() {
		recCtx, cancel := context.WithTimeout(context.WithoutCancel(outer), 15*time.Second) // even past the budget
		defer cancel()
		if rerr := w.Store.RecordShard(recCtx, r.rep); rerr != nil {
			r.log.Warn("could not record shard outcome", "error", rerr.Error())
		}
	}
	rep := r.rep
	r.log.Info(what+" "+outcome, "users", rep.Users, "changed", rep.Changed, "unchanged", rep.Unchanged,
		"failed", rep.Failed, "graph_calls", rep.GraphCalls, "duration_ms", rep.Duration.Milliseconds(), "attempt", attempt)
	return rep, err
}

// pending is one user's decision waiting to be applied.
type pending struct {
	user   mattermost.User
	from   string
	change store.StateChange
	d      engine.Decision
}

func (r *run) process(ctx context.Context, attempt int) error {
	w, m := r.w, r.m
	todo, err := r.todo(ctx, attempt)
	if err != nil || len(todo) == 0 {
		return err
	}
	users, err := w.Mattermost.Users(ctx, todo)
	if err != nil {
		return err
	}
	statuses, err := w.Mattermost.Statuses(ctx, todo)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	emails := make([]string, 0, len(users))
	for _, u := range users {
		emails = append(emails, u.Email)
		known[u.ID] = true
	}
	for _, id := range todo {
		if !known[id] { // no longer a user: nothing to do for them
			r.fail(id, "no_user", true)
		}
	}
	window := graph.Window{Start: r.now.Truncate(time.Minute), End: r.now.Add(w.Lookahead)}
	res, graphErr := w.Graph.GetSchedules(ctx, emails, window)
	r.rep.GraphCalls = res.Calls
	if graphErr != nil && len(res.Availability) == 0 && len(res.Failures) == 0 {
		return fmt.Errorf("graph: %w", graphErr)
	}
	answered := map[string]bool{}
	for _, f := range res.Failures {
		answered[f.Email] = true
		attrs := []any{"email", f.Email, "mailbox", f.Mailbox, "class", f.Class, "status", f.Status, "code", f.Code, "message", f.Message}
		if f.Detail != "" {
			attrs = append(attrs, "detail", f.Detail)
		}
		r.log.Warn("no availability for user", attrs...)
		r.rep.Failures[f.Class]++
	}
	states, err := w.Store.LoadStates(ctx, todo)
	if err != nil {
		return err
	}

	var updates []pending
	var changes []store.StateChange
	transitions := map[time.Time][]string{}
	for _, u := range users {
		av, ok := res.Availability[u.Email]
		if !ok {
			if answered[u.Email] { // Graph answered for this user: retrying will not help
				r.rep.Failed++
				r.rep.Done[r.position[u.ID]] = true
			}
			continue
		}
		st, ok := statuses[u.ID]
		if !ok {
			r.fail(u.ID, "no_status", false)
			continue
		}
		r.rep.Done[r.position[u.ID]] = true
		if !m.IsTransition() {
			// Up to the next cycle, which applies what falls on its own start.
			for _, t := range engine.Transitions(av, w.Policy, r.now, m.StaleAfter.Add(-time.Second)) {
				transitions[t] = append(transitions[t], u.ID)
			}
		}
		old := states[u.ID]
		d := engine.Decide(engine.Input{Now: r.now, Availability: av, Current: current(st, u), State: old.State, Policy: w.Policy})
		c := store.StateChange{UserID: u.ID, Old: old, New: d.NewState}
		if d.SaveState {
			changes = append(changes, c)
		}
		if !d.Changes() {
			r.rep.Unchanged++
			continue
		}
		updates = append(updates, pending{user: u, from: st.Status, change: c, d: d})
	}

	// State first: it claims the users' events, so a second delivery of this shard finds them
	// handled (or fails on the ETag) instead of applying the same changes again.
	if err := w.Store.SaveStates(ctx, changes); err != nil {
		if errors.Is(err, store.ErrConflict) {
			r.log.Warn("another delivery of this shard is applying it; retrying later", "error", err.Error())
		}
		return err
	}
	r.apply(ctx, updates)
	r.schedule(ctx, transitions)
	if graphErr != nil {
		// Fail so the queue retries the shard; the users dealt with are recorded as done.
		return fmt.Errorf("graph: %w", graphErr)
	}
	return nil
}

// todo sets up progress tracking and returns the users still to do: all of them, except on a
// retried delivery of a cycle shard, which does only those an earlier attempt did not finish.
func (r *run) todo(ctx context.Context, attempt int) ([]string, error) {
	m := r.m
	r.rep.Done = make([]bool, len(m.UserIDs))
	if attempt > 1 && !m.IsTransition() {
		prev, found, err := r.w.Store.ShardReport(ctx, m.CycleID, m.Shard)
		if err != nil {
			return nil, err
		}
		if found && len(prev.Done) == len(m.UserIDs) {
			r.rep.Done = prev.Done
		}
	}
	r.position = make(map[string]int, len(m.UserIDs))
	var todo []string
	for i, id := range m.UserIDs {
		r.position[id] = i
		if !r.rep.Done[i] {
			todo = append(todo, id)
		}
	}
	if len(todo) < len(m.UserIDs) {
		r.log.Info("resuming shard", "already_done", len(m.UserIDs)-len(todo), "todo", len(todo))
	}
	return todo, nil
}

func (r *run) fail(userID, class string, done bool) {
	r.rep.Failed++
	r.rep.Failures[class]++
	r.rep.Done[r.position[userID]] = done
}

// current is what the engine needs of a user's Mattermost state.
func current(st mmodel.Status, u mattermost.User) engine.Current {
	c := engine.Current{Status: st.Status}
	if st.DNDEndTime > 0 {
		c.DNDEndTime = time.Unix(st.DNDEndTime, 0).UTC()
	}
	if cs := u.CustomStatus; cs != nil {
		c.Custom = &engine.CustomStatus{Emoji: cs.Emoji, Text: cs.Text, ExpiresAt: cs.ExpiresAt}
	}
	return c
}

// apply makes the decided changes in Mattermost. A user whose change fails gets their stored state
// back, so the next run tries again and nothing we hold is lost.
func (r *run) apply(ctx context.Context, updates []pending) {
	mm := r.w.Mattermost
	var reverts []store.StateChange
	for _, up := range updates {
		id, d := up.user.ID, up.d
		err := func() error {
			if s := d.SetStatus; s != nil {
				if err := mm.SetStatusVia(ctx, id, s.ResetTo, s.Status, s.DNDEndTime); err != nil {
					return err
				}
			}
			if c := d.SetCustom; c != nil {
				if err := mm.SetCustomStatus(ctx, id, c.Emoji, c.Text, c.ExpiresAt); err != nil {
					return err
				}
			}
			if d.ClearCustom {
				return mm.ClearCustomStatus(ctx, id)
			}
			return nil
		}()
		if err != nil {
			r.fail(id, "mattermost", false)
			r.log.Error("could not update user", "user", up.user.Username, "error", err.Error())
			reverts = append(reverts, store.StateChange{UserID: id, New: up.change.Old.State})
			continue
		}
		r.rep.Changed++
		attrs := []any{"user", up.user.Username, "reason", d.Reason}
		if s := d.SetStatus; s != nil {
			attrs = append(attrs, "from", up.from, "to", s.Status)
			if !s.DNDEndTime.IsZero() {
				attrs = append(attrs, "until", s.DNDEndTime.Format(time.RFC3339))
			}
		}
		if d.SetCustom != nil {
			attrs = append(attrs, "custom_status", d.SetCustom.Text)
		}
		if d.ClearCustom {
			attrs = append(attrs, "custom_status", "cleared")
		}
		r.log.Info("user updated", attrs...)
		if d.Notify != "" {
			if err := mm.Notify(ctx, id, d.Notify); err != nil {
				r.log.Warn("could not notify user", "user", up.user.Username, "error", err.Error())
			}
		}
	}
	if len(reverts) == 0 {
		return
	}
	ids := make([]string, len(reverts))
	for i, c := range reverts {
		ids[i] = c.UserID
	}
	current, err := r.w.Store.LoadStates(ctx, ids)
	if err == nil {
		for i := range reverts {
			reverts[i].Old = current[reverts[i].UserID]
		}
		err = r.w.Store.SaveStates(ctx, reverts)
	}
	if err != nil {
		r.log.Error("could not give back stored state after failed updates", "error", err.Error())
	}
}

// schedule enqueues one delayed transition message per upcoming meeting boundary, so a meeting that
// starts or ends before the next cycle is applied on time.
func (r *run) schedule(ctx context.Context, transitions map[time.Time][]string) {
	if r.w.Transitions == nil || len(transitions) == 0 {
		return
	}
	times := make([]time.Time, 0, len(transitions))
	for t := range transitions {
		times = append(times, t)
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	for _, t := range times {
		msg := r.m.Transition(t, transitions[t], r.now)
		if err := r.w.Transitions.SendLater(ctx, msg, t.Sub(r.w.Now())); err != nil {
			r.log.Warn("could not schedule a transition; the next cycle will apply it", "at", t.Format(time.RFC3339), "error", err.Error())
			continue
		}
		r.log.Debug("transition scheduled", "at", t.Format(time.RFC3339), "users", len(transitions[t]))
	}
	r.log.Info("transitions scheduled", "count", len(times))
}
