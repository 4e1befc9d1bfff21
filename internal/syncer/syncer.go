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
	"time"

	mmodel "github.com/mattermost/mattermost-server/v6/model"

	"github.com/calstatus/calstatus/internal/engine"
	"github.com/calstatus/calstatus/internal/graph"
	"github.com/calstatus/calstatus/internal/mattermost"
	"github.com/calstatus/calstatus/internal/shard"
	"github.com/calstatus/calstatus/internal/store"
)

// Mattermost is what the jobs need of the Mattermost adapter.
type Mattermost interface {
	ListSyncUsers(ctx context.Context) ([]mattermost.User, error)
	Users(ctx context.Context, ids []string) ([]mattermost.User, error)
	Statuses(ctx context.Context, ids []string) (map[string]mmodel.Status, error)
	SetStatus(ctx context.Context, userID, status string, dndEnd time.Time) error
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
	RecordShard(ctx context.Context, r store.ShardReport) error
	ShardReport(ctx context.Context, cycleID string, shard int) (store.ShardReport, bool, error)
}

// DefaultInterval is the sync period assumed when the timer does not say when it fires next.
const DefaultInterval = 5 * time.Minute

// Planner plans a sync cycle.
type Planner struct {
	Mattermost Mattermost
	Store      Store
	Now        func() time.Time
}

// Plan lists the users to sync and cuts them into shard messages. next is when the timer fires
// again (zero if unknown): shards not started by then are stale.
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
	if !next.After(now) {
		next = now.Add(DefaultInterval)
	}
	cycleID := newCycleID(now)
	msgs := shard.Split(cycleID, now, next, ids)
	if err := p.Store.RecordCycle(ctx, store.CycleReport{CycleID: cycleID, Started: now, Users: len(ids), Shards: len(msgs)}); err != nil {
		return nil, err
	}
	log.Info("cycle planned", "cycle", cycleID, "users", len(ids), "shards", len(msgs), "stale_after", next.Format(time.RFC3339))
	return msgs, nil
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
	Policy     engine.Policy
	// Lookahead is how far past now availability is fetched.
	Lookahead time.Duration
	// Budget bounds one shard's work, below the function timeout (host.json functionTimeout), so
	// that retries give up in time to record the outcome. Zero means DefaultBudget.
	Budget time.Duration
	Now    func() time.Time
}

// DefaultBudget leaves a minute of host.json's five-minute functionTimeout.
const DefaultBudget = 4 * time.Minute

// Process works one shard. It returns an error only when the shard should be retried by the queue
// (a dependency is down); per-user problems are logged, counted and reported.
func (w *Worker) Process(ctx context.Context, log *slog.Logger, m shard.Message, attempt int) (store.ShardReport, error) {
	start := time.Now()
	now := w.Now().UTC()
	budget := w.Budget
	if budget <= 0 {
		budget = DefaultBudget
	}
	outer := ctx
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	rep := store.ShardReport{CycleID: m.CycleID, Shard: m.Shard, Users: len(m.UserIDs), Attempt: attempt, Failures: map[string]int{}}
	log = log.With("cycle", m.CycleID, "shard", m.Shard)
	finish := func(outcome string, err error) (store.ShardReport, error) {
		rep.Outcome, rep.Duration = outcome, time.Since(start)
		if err != nil {
			rep.Error = err.Error()
		}
		// Recorded even when the budget ran out.
		recCtx, cancel := context.WithTimeout(context.WithoutCancel(outer), 15*time.Second)
		defer cancel()
		if rerr := w.Store.RecordShard(recCtx, rep); rerr != nil {
			log.Warn("could not record shard outcome", "error", rerr.Error())
		}
		log.Info("shard "+outcome, "users", rep.Users, "changed", rep.Changed, "unchanged", rep.Unchanged,
			"failed", rep.Failed, "graph_calls", rep.GraphCalls, "duration_ms", rep.Duration.Milliseconds(), "attempt", attempt)
		return rep, err
	}
	if now.After(m.StaleAfter) {
		log.Warn("dropping stale shard: a newer cycle covers these users", "issued", m.IssuedAt.Format(time.RFC3339))
		return finish("stale", nil)
	}

	// A retried delivery does only the users an earlier attempt did not deal with.
	rep.Done = make([]bool, len(m.UserIDs))
	if attempt > 1 {
		prev, found, err := w.Store.ShardReport(ctx, m.CycleID, m.Shard)
		if err != nil {
			return finish("failed", err)
		}
		if found && len(prev.Done) == len(m.UserIDs) {
			rep.Done = prev.Done
		}
	}
	position := make(map[string]int, len(m.UserIDs))
	var todo []string
	for i, id := range m.UserIDs {
		position[id] = i
		if !rep.Done[i] {
			todo = append(todo, id)
		}
	}
	if len(todo) < len(m.UserIDs) {
		log.Info("resuming shard", "already_done", len(m.UserIDs)-len(todo), "todo", len(todo))
	}
	if len(todo) == 0 {
		return finish("ok", nil)
	}

	users, err := w.Mattermost.Users(ctx, todo)
	if err != nil {
		return finish("failed", err)
	}
	statuses, err := w.Mattermost.Statuses(ctx, todo)
	if err != nil {
		return finish("failed", err)
	}
	found := map[string]bool{}
	emails := make([]string, 0, len(users))
	for _, u := range users {
		emails = append(emails, u.Email)
		found[u.ID] = true
	}
	for _, id := range todo {
		if !found[id] { // no longer a user: nothing to do for them
			rep.Failed++
			rep.Failures["no_user"]++
			rep.Done[position[id]] = true
		}
	}
	window := graph.Window{Start: now.Truncate(time.Minute), End: now.Add(w.Lookahead)}
	res, graphErr := w.Graph.GetSchedules(ctx, emails, window)
	rep.GraphCalls = res.Calls
	if graphErr != nil && len(res.Availability) == 0 && len(res.Failures) == 0 {
		return finish("failed", fmt.Errorf("graph: %w", graphErr))
	}
	failedEmail := map[string]bool{}
	for _, f := range res.Failures {
		failedEmail[f.Email] = true
		rep.Failures[f.Class]++
		attrs := []any{"email", f.Email, "mailbox", f.Mailbox, "class", f.Class, "status", f.Status, "code", f.Code, "message", f.Message}
		if f.Detail != "" {
			attrs = append(attrs, "detail", f.Detail)
		}
		log.Warn("no availability for user", attrs...)
	}
	states, err := w.Store.LoadStates(ctx, todo)
	if err != nil {
		return finish("failed", err)
	}

	type update struct {
		user   mattermost.User
		from   string
		change store.StateChange
		d      engine.Decision
	}
	var updates []update
	var changes []store.StateChange
	for _, u := range users {
		av, ok := res.Availability[u.Email]
		if !ok {
			if failedEmail[u.Email] { // Graph answered for this user: an error retrying won't fix
				rep.Failed++
				rep.Done[position[u.ID]] = true
			}
			continue
		}
		st, ok := statuses[u.ID]
		if !ok {
			rep.Failed++
			rep.Failures["no_status"]++
			continue
		}
		rep.Done[position[u.ID]] = true
		old := states[u.ID]
		d := engine.Decide(now, av, engine.Current{Status: st.Status}, old.State, w.Policy)
		if !d.SaveState && d.Update == nil {
			rep.Unchanged++
			continue
		}
		c := store.StateChange{UserID: u.ID, Old: old, New: d.NewState}
		if d.SaveState {
			changes = append(changes, c)
		}
		if d.Update == nil {
			rep.Unchanged++
			continue
		}
		updates = append(updates, update{user: u, from: st.Status, change: c, d: d})
	}
	// State first: it claims the users' events, so a second delivery of this shard finds them
	// handled (or fails on the ETag) instead of applying the same changes again.
	if err := w.Store.SaveStates(ctx, changes); err != nil {
		if errors.Is(err, store.ErrConflict) {
			log.Warn("another delivery of this shard is applying it; retrying later", "error", err.Error())
		}
		return finish("failed", err)
	}
	var reverts []store.StateChange
	for _, up := range updates {
		if err := w.Mattermost.SetStatus(ctx, up.user.ID, up.d.Update.Status, up.d.Update.DNDEndTime); err != nil {
			rep.Failed++
			rep.Failures["mattermost"]++
			log.Error("could not set status", "user", up.user.Username, "to", up.d.Update.Status, "error", err.Error())
			rep.Done[position[up.user.ID]] = false
			// Give the stored state back so the next cycle tries again and nothing is lost.
			reverts = append(reverts, store.StateChange{UserID: up.user.ID, Old: up.change.Old, New: up.change.Old.State})
			continue
		}
		rep.Changed++
		attrs := []any{"user", up.user.Username, "from", up.from, "to", up.d.Update.Status, "reason", up.d.Reason}
		if !up.d.Update.DNDEndTime.IsZero() {
			attrs = append(attrs, "until", up.d.Update.DNDEndTime.Format(time.RFC3339))
		}
		log.Info("status changed", attrs...)
	}
	if len(reverts) > 0 {
		if err := w.Store.SaveStates(ctx, refreshed(ctx, w.Store, reverts)); err != nil {
			log.Error("could not restore stored state after failed updates", "error", err.Error())
		}
	}
	if graphErr != nil {
		// Fail so the queue retries the shard; the users dealt with are recorded as done.
		return finish("failed", fmt.Errorf("graph: %w", graphErr))
	}
	return finish("ok", nil)
}

// refreshed re-reads the ETags of users whose state must be rewritten.
func refreshed(ctx context.Context, s Store, changes []store.StateChange) []store.StateChange {
	ids := make([]string, len(changes))
	for i, c := range changes {
		ids[i] = c.UserID
	}
	current, err := s.LoadStates(ctx, ids)
	if err != nil {
		return nil
	}
	for i := range changes {
		changes[i].Old = current[changes[i].UserID]
	}
	return changes
}
