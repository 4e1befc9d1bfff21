package syncer

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/calstatus/calstatus/internal/calendar"
	"github.com/calstatus/calstatus/internal/engine"
	"github.com/calstatus/calstatus/internal/graph"
	"github.com/calstatus/calstatus/internal/mattermost"
	"github.com/calstatus/calstatus/internal/shard"
	"github.com/calstatus/calstatus/internal/store"
)

// Worker processes shards.
type Worker struct {
	Mattermost Mattermost
	Graph      Graph
	// Presence, when set, reads Teams presence beside the calendars: with Calls (PRESENCE_SYNC),
	// calls and presentations are items like meetings (engine.PresenceItem); with AutomaticReplies
	// (AUTOMATIC_REPLIES_SYNC), Outlook's automatic replies become Mattermost's out of office.
	// Without AutomaticReplies, any calstatus turned on are given back.
	Presence                Presence
	Calls, AutomaticReplies bool
	Store                   Store
	// Transitions receives the delayed messages that apply meeting starts and ends on time; nil
	// leaves them to the next cycle.
	Transitions Scheduler
	Policy      engine.Policy
	// Lookahead is how far past now availability is fetched.
	Lookahead time.Duration
	// Budget bounds one shard's work, below the function timeout (host.json functionTimeout), so
	// that retries give up in time to record the outcome. Zero means DefaultBudget.
	Budget time.Duration
	// DryRun logs every change a run would make and writes nothing: not to Mattermost, not to the
	// state table, no transition messages.
	DryRun bool
	// Paused, when it says so, stops every run before it reads or writes anything (SYNC_PAUSED, or
	// the status page's switch).
	Paused func(ctx context.Context) (bool, error)
	Now    func() time.Time

	lanesOnce sync.Once
	laneSlots chan struct{} // see lanes
}

// DefaultBudget leaves a minute of host.json's five-minute functionTimeout.
const DefaultBudget = 4 * time.Minute

// BudgetFor is the budget that fits a function timeout: four fifths of it, so that the claims of a
// run the host killed at its timeout (standing a quarter of the budget longer) end with it.
func BudgetFor(functionTimeout time.Duration) time.Duration {
	if functionTimeout <= 0 {
		return DefaultBudget
	}
	return functionTimeout * 4 / 5
}

// UnsureFor is how long a change whose answer was lost stays claimed: a write still on its way (the
// Mattermost client gives up on a call after 30 s, the server may finish it later) lands before
// another run reads the user to decide whether it did.
const UnsureFor = time.Minute

// FailNoUser is the failure class of a shard's user id that is no longer an active Mattermost user
// (deleted or deactivated since the roster was listed).
const FailNoUser = "no_user"

// maxUserLogs caps the per-user log lines of one run; the rest are counted. At LOG_LEVEL DEBUG
// every line is logged.
const maxUserLogs = 20

// run is one Process call's working data.
type run struct {
	w     *Worker
	m     shard.Message
	now   time.Time
	log   *slog.Logger
	rep   store.ShardReport
	owner string // names this run's claims
	claim time.Time
	// position maps a user id to its index in the message (for progress); names to their username
	// (for the failing users the report names).
	position map[string]int
	names    map[string]string
	// mu guards what users applied at the same time share: rep's counts and progress, the logs'.
	mu        sync.Mutex
	userLogs  int
	lastError string
	everyUser bool // debug: no cap on per-user lines
	// customOn, read once by the run's first custom status write: whether the server's custom
	// statuses are on now (the server info the decisions saw may be minutes old).
	customOnce sync.Once
	customOn   error
}

// errCustomOff refuses a custom status write: custom statuses are turned off on the server.
var errCustomOff = errors.New("mattermost: custom statuses are turned off on the server")

// customStatusesOn reads, once per run, whether custom statuses are on; nil when they are.
func (r *run) customStatusesOn(ctx context.Context) error {
	r.customOnce.Do(func() {
		on, err := r.w.Mattermost.CustomStatusesOn(ctx)
		switch {
		case err != nil:
			r.customOn = err
		case !on:
			r.customOn = errCustomOff
		}
	})
	return r.customOn
}

// lanes are the users this process applies at once (each lane writes one user after another), as
// many as the Mattermost client's write bound: more would only wait for a write slot, their reads
// ageing meanwhile, and be read again one by one. A shard's claimed users take a lane laneChunk at
// a time and are read again together (two calls) when their read has aged past freshFor.
func (w *Worker) lanes() chan struct{} {
	w.lanesOnce.Do(func() {
		n := w.Mattermost.WriteBound()
		if n < 1 {
			n = mattermost.DefaultWriteBound
		}
		w.laneSlots = make(chan struct{}, n)
	})
	return w.laneSlots
}

// laneChunk is how many users a lane takes at once: about a second of writes for one lane on a
// busy server, inside freshFor.
const laneChunk = 8

// freshFor is how old the read a user's write goes out on may be. An older one — the claims' save
// held up by a storage restart, the status write by Mattermost's Retry-After — is read again
// first, so a change the user made meanwhile is not written over: Mattermost has no conditional
// write, this keeps the window to about one request. A var for the tests.
var freshFor = 2 * time.Second

// FailChangedMeanwhile is the failure class of a user who changed their status or custom status
// between the read a write was decided on and the write: left to the next run to decide again.
const FailChangedMeanwhile = "changed_meanwhile"

// errChangedMeanwhile: see FailChangedMeanwhile.
var errChangedMeanwhile = errors.New("the user changed their status meanwhile")

// Process works one shard (or one transition). It returns an error only when the message should be
// retried by the queue (a dependency is down, or another run holds some of its users' state);
// per-user problems are logged, counted and reported.
func (w *Worker) Process(ctx context.Context, log *slog.Logger, m shard.Message, attempt int) (store.ShardReport, error) {
	start := time.Now()
	budget := w.Budget
	if budget <= 0 {
		budget = DefaultBudget
	}
	outer := ctx
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	r := &run{w: w, m: m, now: w.Now().UTC(), log: log.With("cycle", m.CycleID, "shard", m.Shard), owner: newOwner(),
		rep: store.ShardReport{CycleID: m.CycleID, Shard: m.Shard, Users: len(m.UserIDs), Attempt: attempt, Failures: map[string]int{}}}
	// A run's claims stand past its budget by a quarter of it: every call it makes ends with the
	// budget, then it may still be storing what it applied. A run that died holds its users that long.
	r.claim = w.Now().Add(budget + budget/4)
	if w.DryRun {
		r.log = r.log.With("dry_run", true)
	}
	r.everyUser = r.log.Enabled(ctx, slog.LevelDebug)
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
	if paused, perr := w.paused(ctx); perr != nil || paused {
		// Paused: nothing read, nothing written; the message is consumed (the next cycle after the
		// pause covers these users). Unknown (the switch unreadable): retried by the queue.
		r.rep.Outcome, r.rep.Finished = "paused", w.Now().UTC()
		if perr != nil {
			r.rep.Outcome, r.rep.Error, r.rep.ErrorClass = "failed", perr.Error(), errorClass(perr)
		}
		logShard(r.log, what, r.rep)
		return r.rep, perr
	}
	if r.now.After(m.StaleAfter) {
		outcome = "stale"
		r.log.Warn("dropping stale "+what+": a newer cycle covers these users", "issued", m.IssuedAt.Format(time.RFC3339))
	} else if err = r.process(ctx, attempt); err != nil {
		outcome = "failed"
		r.rep.Error, r.rep.ErrorClass = err.Error(), errorClass(err)
	}
	r.rep.Outcome, r.rep.Duration, r.rep.Finished = outcome, time.Since(start), w.Now().UTC()
	// Transitions are small, frequent and not resumable: their outcome is in the logs only.
	if !m.IsTransition() {
		recCtx, cancel := context.WithTimeout(context.WithoutCancel(outer), 15*time.Second) // even past the budget
		defer cancel()
		if rerr := w.Store.RecordShard(recCtx, r.rep); rerr != nil {
			r.log.Warn("could not record shard outcome", "error", rerr.Error())
		}
	}
	if r.userLogs > maxUserLogs && !r.everyUser {
		r.log.Warn("more per-user lines not logged", "count", r.userLogs-maxUserLogs, "last_error", r.lastError)
	}
	logShard(r.log, what, r.rep)
	return r.rep, err
}

func (w *Worker) paused(ctx context.Context) (bool, error) {
	if w.Paused == nil {
		return false, nil
	}
	return w.Paused(ctx)
}

func newOwner() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// loaded is what a run reads before deciding.
type loaded struct {
	users    []mattermost.User
	statuses map[string]mattermost.Status
	schedule graph.Result
	graphErr error
	presence presences
	states   map[string]store.UserState
	server   engine.Server // how the Mattermost server keeps statuses
}

// decided is one user's decision.
type decided struct {
	user    mattermost.User
	from    string
	old     store.UserState
	base    engine.State // the state decided from (a dead run's claim resolved)
	d       engine.Decision
	av      calendar.Availability
	replies engine.Replies
	cur     engine.Current // what Mattermost showed the decision
	read    time.Time      // when that was read (wall clock)
	// stale is why the user is not to be written: read again (readAgain), they had changed
	// meanwhile (errChangedMeanwhile) or could not be read.
	stale error
}

func (r *run) process(ctx context.Context, attempt int) error {
	todo, err := r.todo(ctx, attempt)
	if err != nil || len(todo) == 0 {
		return err
	}
	in, err := r.load(ctx, todo)
	if err != nil {
		return err
	}
	plan, transitions := r.decide(in)
	plan = r.refresh(ctx, in.server, plan)
	err = r.commit(ctx, plan)
	r.schedule(ctx, transitions)
	return errors.Join(err, in.graphErr)
}

// load reads the users, their statuses, their availability and their stored state.
func (r *run) load(ctx context.Context, todo []string) (loaded, error) {
	w := r.w
	var in loaded
	var err error
	// State first: a run that applies these users after this read changes their state (a claim),
	// so this run's save conflicts; read after Mattermost (and the slow Graph call), that run's
	// state could be newer than the Mattermost this run saw, and its change taken for the user's.
	if in.states, err = w.Store.LoadStates(ctx, todo); err != nil {
		return in, err
	}
	if in.users, err = w.Mattermost.Users(ctx, todo); err != nil {
		return in, err
	}
	in.users = slices.DeleteFunc(in.users, func(u mattermost.User) bool { return u.Deactivated })
	byEmail := map[string]string{}
	for _, u := range in.users { // before any user is applied (concurrently): no lock needed
		r.names[u.ID], byEmail[u.Email] = u.Username, u.Username
	}
	// The Graph call (a second or more) goes out now, beside the rest of the Mattermost reads.
	emails := make([]string, 0, len(in.users))
	for _, u := range in.users {
		emails = append(emails, u.Email)
	}
	window := graph.Window{Start: r.now.Truncate(time.Minute), End: r.now.Add(w.Lookahead)}
	graphCtx, cancelGraph := context.WithCancel(ctx)
	defer cancelGraph()
	graphDone := make(chan struct{})
	go func() {
		defer close(graphDone)
		in.schedule, in.graphErr = w.Graph.GetSchedules(graphCtx, emails, window)
	}()
	presenceDone := make(chan struct{})
	go func() {
		defer close(presenceDone)
		if w.Presence != nil {
			in.presence = r.readPresence(graphCtx, in.users, in.states)
		}
	}()
	in.statuses, err = w.Mattermost.Statuses(ctx, todo)
	if err == nil {
		in.server = r.server(ctx)
		known := map[string]bool{}
		for _, u := range in.users {
			known[u.ID] = true
		}
		for _, id := range todo {
			if !known[id] { // no longer a user: nothing to do for them
				r.fail(id, FailNoUser, true)
			}
		}
		r.rereadOurCustom(ctx, &in)
	} else {
		cancelGraph() // the queue retries the shard
	}
	<-graphDone
	<-presenceDone
	if err != nil {
		return in, err
	}
	r.rep.GraphCalls, r.rep.Throttled, r.rep.Retries = in.schedule.Calls, in.schedule.Throttled, in.schedule.Retries
	r.rep.PresenceCalls, r.rep.PresenceFailures = in.presence.calls, in.presence.failures
	if in.graphErr != nil && len(in.schedule.Availability) == 0 && len(in.schedule.Failures) == 0 {
		return in, in.graphErr
	}
	for _, f := range in.schedule.Failures {
		attrs := []any{"email", f.Email, "mailbox", f.Mailbox, "class", f.Class, "status", f.Status, "code", f.Code, "message", f.Message}
		if f.Detail != "" {
			attrs = append(attrs, "detail", f.Detail)
		}
		r.userLog(slog.LevelWarn, "no availability for user", f.Message, attrs...)
		r.rep.Failures[f.Class]++
		r.nameFailing(cmp.Or(byEmail[f.Email], f.Email), f.Class)
	}
	return in, nil
}

// refresh reads again, just before writing, what decides the writes of the users about to change,
// and decides for them again: the first read came before Graph answered (a second; 30 s when it
// hangs; minutes under Retry-After), and a change the user made meanwhile must not be overwritten —
// a DND over their own, ours over their custom status, any status over automatic replies they just
// turned on (Mattermost turns them off). Two calls for the shard: the statuses, and the users past
// Mattermost's profile cache (Mattermost writes back the user it reads through that cache, and a
// custom status write sends the props read here back, so a stale copy would lose the user's newer
// one). Users that cannot be read again are left to the retry. Quiet users cost nothing more.
func (r *run) refresh(ctx context.Context, server engine.Server, plan []decided) []decided {
	var ids, names []string
	for _, p := range plan {
		if p.d.Changes() {
			ids, names = append(ids, p.user.ID), append(names, p.user.Username)
		}
	}
	if len(ids) == 0 || r.w.DryRun {
		return plan
	}
	readAt := time.Now()
	statuses, err := r.w.Mattermost.Statuses(ctx, ids)
	var users []mattermost.User
	if err == nil {
		users, err = r.w.Mattermost.UsersUncached(ctx, names)
	}
	if err != nil {
		r.log.Warn("could not read the users about to change again; the queue retries them", "users", len(ids), "error", err.Error())
	}
	fresh := make(map[string]mattermost.User, len(users))
	for _, u := range users {
		fresh[u.ID] = u
	}
	policy := r.w.Policy
	policy.Server = server
	out := make([]decided, 0, len(plan))
	for _, p := range plan {
		if !p.d.Changes() {
			out = append(out, p)
			continue
		}
		st, read := statuses[p.user.ID]
		u, found := fresh[p.user.ID]
		switch {
		case err != nil:
			r.fail(p.user.ID, "mattermost", false)
		case !found: // renamed since the first read (they are read by username): theirs to decide next
			r.fail(p.user.ID, FailChangedMeanwhile, false)
		case u.Deactivated:
			r.fail(p.user.ID, FailNoUser, true)
		case !read:
			r.fail(p.user.ID, "no_status", false)
		default:
			d := r.decideFor(u, st, p.av, p.replies, p.old, policy)
			d.read = readAt
			out = append(out, d)
		}
	}
	return out
}

// rereadOurCustom reads again, past Mattermost's profile cache (one call), the users it shows
// without the custom status we hold: the cache can keep a read that raced our own write (see
// mattermost.Client.UsersUncached), and ours, taken for removed by the user, would never be
// cleared. Users who cannot be read again are left to the next run.
func (r *run) rereadOurCustom(ctx context.Context, in *loaded) {
	var names []string
	for _, u := range in.users {
		if missesOurCustom(u, in.states[u.ID], in.statuses[u.ID]) {
			names = append(names, u.Username)
		}
	}
	if len(names) == 0 {
		return
	}
	users, err := r.w.Mattermost.UsersUncached(ctx, names)
	if err != nil {
		r.log.Warn("could not read users again; left to the next run", "users", len(names), "error", err.Error())
	}
	fresh := make(map[string]mattermost.User, len(users))
	for _, u := range users {
		fresh[u.ID] = u
	}
	kept := in.users[:0]
	for _, u := range in.users {
		if missesOurCustom(u, in.states[u.ID], in.statuses[u.ID]) {
			again, ok := fresh[u.ID]
			if !ok {
				r.fail(u.ID, "mattermost", false)
				continue
			}
			u.CustomStatus = again.CustomStatus
		}
		kept = append(kept, u)
	}
	in.users = kept
}

// missesOurCustom reports whether u does not show a custom status we hold (or held before a claim).
func missesOurCustom(u mattermost.User, st store.UserState, status mattermost.Status) bool {
	cur := current(status, u)
	return st.MissesCustom(cur) || st.Claim != nil && st.Claim.Prev.MissesCustom(cur)
}

// server is how the Mattermost server keeps statuses (read every few minutes); one that cannot be
// read is taken for the oldest, whose rules are safe on every server.
func (r *run) server(ctx context.Context) engine.Server {
	s, err := r.w.Mattermost.Server(ctx)
	if err != nil {
		r.log.Warn("mattermost server version unknown: deciding as for v6", "error", err.Error())
	}
	return EngineServer(s)
}

// EngineServer is the engine's view of the Mattermost server.
func EngineServer(s mattermost.Server) engine.Server {
	return engine.Server{ExpiryEvery: s.DNDExpiry, EndsKnown: s.EndsAlwaysRead, CustomOff: s.CustomOff}
}

// decide runs the engine for every user it can: pure, no I/O. It also collects the upcoming
// meeting boundaries to apply on time.
func (r *run) decide(in loaded) ([]decided, map[time.Time][]string) {
	policy := r.w.Policy
	policy.Server = in.server
	answered := map[string]bool{}
	for _, f := range in.schedule.Failures {
		answered[f.Email] = true
	}
	var plan []decided
	transitions := map[time.Time][]string{}
	for _, u := range in.users {
		av, ok := in.schedule.Availability[u.Email]
		if !ok {
			if answered[u.Email] { // Graph answered for this user: retrying will not help
				r.rep.Failed++
				r.done(u.ID)
			}
			continue
		}
		st, ok := in.statuses[u.ID]
		if !ok {
			r.fail(u.ID, "no_status", false)
			continue
		}
		old := in.states[u.ID]
		av = r.withPresence(av, u.ID, old.State, in.presence)
		// The user's own settings, read with their state, in their own time zone.
		settings := old.Settings
		settings.Location = u.TimeZone
		if !r.m.IsTransition() && !settings.Disabled {
			// Up to the next cycle, which applies what falls on its own start: the bounds of the
			// items handled once any pause is over, and the pause's end if an item is on then.
			from, last := r.now, r.m.StaleAfter.Add(-time.Second)
			if settings.Paused(r.now) {
				from = settings.PausedUntil
				if !from.After(last) && handledAt(av, r.w.Policy, from) {
					transitions[from] = append(transitions[from], u.ID)
				}
			}
			for _, t := range engine.Transitions(av, r.w.Policy, from, last) {
				transitions[t] = append(transitions[t], u.ID)
			}
		}
		if c := old.Claim; c != nil && r.now.Before(c.Until) {
			// Another run is applying a decision for this user right now: it is theirs.
			r.userLog(slog.LevelInfo, "user is being updated by another run", "", "user", u.Username, "until", c.Until.Format(time.RFC3339))
			r.rep.Unchanged++
			r.done(u.ID)
			continue
		}
		plan = append(plan, r.decideFor(u, st, av, r.repliesFor(u.ID, in.presence), old, policy))
	}
	return plan, transitions
}

// decideFor is one user's decision (a dead run's claim resolved first); policy carries the server.
func (r *run) decideFor(u mattermost.User, st mattermost.Status, av calendar.Availability, replies engine.Replies, old store.UserState, policy engine.Policy) decided {
	settings := old.Settings
	settings.Location = u.TimeZone
	cur := current(st, u)
	base := old.State
	if c := old.Claim; c != nil {
		base = engine.Resolve(old.State, *c, cur, r.now, policy.Server)
	}
	d := engine.Decide(engine.Input{Now: r.now, Availability: av, Replies: replies, Current: cur, State: base, Settings: settings, Policy: policy})
	if old.Claim != nil {
		d.SaveState = true // the claim is settled either way
	}
	return decided{user: u, from: st.Status, old: old, base: base, d: d, av: av, replies: replies, cur: cur}
}

// commit stores state first — a change to Mattermost is stored as a claim, so a second delivery
// of this shard finds it taken (or fails on the ETag) and a crash mid-way is completed by the next
// run, never read as the user's own choice — then applies the changes, then stores what was
// applied. A user is done once their change is applied and stored.
func (r *run) commit(ctx context.Context, plan []decided) error {
	if r.w.DryRun {
		r.dryRun(plan)
		return nil
	}
	var writes []store.StateChange
	for _, p := range plan {
		switch {
		case p.d.Changes():
			claim := &engine.Claim{Owner: r.owner, Until: r.claim, Prev: p.base}
			writes = append(writes, store.StateChange{UserID: p.user.ID, Old: p.old, New: p.d.NewState, Claim: claim})
		case p.d.SaveState:
			writes = append(writes, store.StateChange{UserID: p.user.ID, Old: p.old, New: p.d.NewState})
		}
	}
	saved, saveErr := r.w.Store.SaveStates(ctx, writes)
	if saveErr != nil && errors.Is(saveErr, store.ErrConflict) {
		r.log.Warn("another run is applying some of these users; the queue retries them", "error", saveErr.Error())
	}
	var claimed []decided
	for _, p := range plan {
		id := p.user.ID
		if !p.d.Changes() && (!p.d.SaveState || saved[id]) {
			r.rep.Unchanged++
			r.done(id)
			continue
		}
		if saved[id] {
			claimed = append(claimed, p) // the others, not claimed, are left for the retry
		}
	}
	// Applied a lane at a time (see lanes): a chunk of users read again if their read has aged
	// while the lane was awaited, then written one after another.
	applied := make([]store.StateChange, len(claimed))
	lanes := r.w.lanes()
	var wg sync.WaitGroup
	for first := 0; first < len(claimed); first += laneChunk {
		chunk := claimed[first:min(first+laneChunk, len(claimed))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			lanes <- struct{}{}
			defer func() { <-lanes }()
			var aged []*decided
			for i := range chunk {
				if time.Since(chunk[i].read) > freshFor {
					aged = append(aged, &chunk[i])
				}
			}
			r.readAgain(ctx, aged, true)
			for i, p := range chunk {
				res, unsure := r.apply(ctx, p)
				applied[first+i] = store.StateChange{UserID: p.user.ID, New: engine.Applied(p.base, p.d, res)}
				if unsure {
					// The failed write may have landed: stored as the claim of a run that is gone, the next
					// run takes each part as what Mattermost then shows (a custom status set under a lost
					// answer is still ours to clear), as after a crash.
					applied[first+i] = store.StateChange{UserID: p.user.ID, New: p.d.NewState,
						Claim: &engine.Claim{Owner: r.owner, Until: r.w.Now().Add(UnsureFor), Prev: applied[first+i].New}}
				}
			}
		}()
	}
	wg.Wait()
	if len(applied) == 0 {
		return saveErr
	}
	// Stored even past the budget: an unstored result waits for its claim to expire.
	doneCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if _, err := r.w.Store.CompleteStates(doneCtx, applied); err != nil {
		r.log.Warn("could not store what was applied; the next run completes it when the claims expire", "error", err.Error())
	}
	return saveErr
}

// dryRun logs, for every user, the change a real run would make (all of them: a dry run is read by
// an admin checking a configuration), and counts them as changed.
func (r *run) dryRun(plan []decided) {
	for _, p := range plan {
		r.done(p.user.ID)
		if !p.d.Changes() {
			r.rep.Unchanged++
			continue
		}
		r.rep.Changed++
		r.log.Info("dry run: would update user", changeAttrs(p)...)
	}
}

// changeAttrs describe one user's change for the logs.
func changeAttrs(p decided) []any {
	d := p.d
	attrs := []any{"user", p.user.Username, "reason", d.Reason}
	if s := d.SetStatus; s != nil {
		attrs = append(attrs, "from", p.from, "to", s.Status)
		if s.Via != "" {
			attrs = append(attrs, "via", s.Via)
		}
		if s.Status == engine.DND {
			attrs = append(attrs, "until", s.DNDEndTime.Format(time.RFC3339))
		}
	}
	if d.SetCustom != nil {
		attrs = append(attrs, "custom_status", d.SetCustom.Text)
	}
	if d.ClearCustom {
		attrs = append(attrs, "custom_status", "cleared")
	}
	if u := d.Replies; u != nil { // never the text: the user's own words
		attrs = append(attrs, "automatic_replies", map[bool]string{true: "on", false: "off"}[u.On])
	}
	return attrs
}

// apply makes one user's changes in Mattermost and reports which parts were made, and whether the
// part that failed may have been made all the same (its answer lost).
func (r *run) apply(ctx context.Context, p decided) (res engine.Result, unsure bool) {
	mm, id, d := r.w.Mattermost, p.user.ID, p.d
	checked := false // a failure of the check is no write's
	err := func() error {
		if err := r.unchangedSince(ctx, &p, true); err != nil {
			checked = true
			return err
		}
		if u := d.Replies; u != nil {
			ar, err := mm.AutoResponder(ctx, id)
			if err != nil {
				checked = true // an empty patch: nothing of ours may have landed
				return err
			}
			if !u.Ours(ar.Active, ar.Message) {
				res.Theirs = true // the user's now: nothing of this decision is made
				return nil
			}
			if u.On {
				if err := mm.SetAutoResponder(ctx, id, ar, u.Message); err != nil {
					return err
				}
				res.Replies = true
			}
		}
		if s := d.SetStatus; s != nil {
			via, err := mm.SetStatus(ctx, id, mattermost.StatusChange{Via: s.Via, Status: s.Status, DNDEnd: s.DNDEndTime})
			res.Via = via
			if err != nil {
				return err
			}
			res.Status = true
		}
		if d.SetCustom != nil || d.ClearCustom {
			if err := r.unchangedSince(ctx, &p, false); err != nil {
				checked = true
				return err
			}
		}
		var err error
		switch {
		case d.SetCustom != nil && mattermost.Expired(d.SetCustom.ExpiresAt, r.w.Now()):
			// Over before it could be sent (its item ended while the shard ran): not sent, and one
			// of ours it was to replace is cleared, or it would stay stored, expired, for good.
			if p.base.CustomText != "" && !p.base.MissesCustom(current(mattermost.Status{}, p.user)) {
				err = mm.ClearCustomStatus(ctx, p.user)
			}
		case d.SetCustom != nil:
			if err = r.customStatusesOn(ctx); err != nil {
				break
			}
			err = mm.SetCustomStatus(ctx, p.user, mattermost.CustomStatus{Emoji: d.SetCustom.Emoji, Text: d.SetCustom.Text, ExpiresAt: d.SetCustom.ExpiresAt})
		case d.ClearCustom:
			err = mm.ClearCustomStatus(ctx, p.user)
		}
		res.Custom = err == nil
		return err
	}()
	if errors.Is(err, errChangedMeanwhile) {
		r.fail(id, FailChangedMeanwhile, false)
		r.userLog(slog.LevelInfo, "user changed their status meanwhile; left to the next run", "", "user", p.user.Username,
			"status_done", res.Status)
		return res, false
	}
	if err != nil {
		class := "mattermost"
		if errorClass(err) == "mattermost_auth" {
			class = "mattermost_auth" // the token or its role: an admin must act (an alert)
		}
		r.fail(id, class, false)
		unsure = !checked && mattermost.MayHaveLanded(err)
		r.userLog(slog.LevelError, "could not update user", err.Error(), "user", p.user.Username, "error", err.Error(),
			"status_done", res.Status, "custom_done", res.Custom, "may_have_landed", unsure)
		return res, unsure
	}
	if res.Theirs {
		r.mu.Lock()
		r.rep.Unchanged++
		r.mu.Unlock()
		r.done(id)
		r.userLog(slog.LevelInfo, "the user's automatic replies are theirs now; left alone", "", "user", p.user.Username)
		return res, false
	}
	r.mu.Lock()
	r.rep.Changed++
	r.mu.Unlock()
	r.done(id)
	r.userLog(slog.LevelInfo, "user updated", "", changeAttrs(p)...)
	if d.Notify != "" {
		if err := mm.Notify(ctx, id, d.Notify); err != nil {
			r.userLog(slog.LevelWarn, "could not notify user", err.Error(), "user", p.user.Username, "error", err.Error())
		}
	}
	return res, false
}

// unchangedSince reads the user again when p's read is older than freshFor and fails with
// errChangedMeanwhile when Mattermost no longer shows what p was decided on: the custom status, and
// the status too when withStatus (before our own status write; after it, it is ours).
func (r *run) unchangedSince(ctx context.Context, p *decided, withStatus bool) error {
	if p.stale == nil && time.Since(p.read) > freshFor {
		r.readAgain(ctx, []*decided{p}, withStatus)
	}
	return p.stale
}

// readAgain reads ps again (two calls: the users past the profile cache, and their statuses when
// withStatus) and marks as stale those Mattermost no longer shows as they were decided on; the
// others take the new read (the props a custom status write sends back are these).
func (r *run) readAgain(ctx context.Context, ps []*decided, withStatus bool) {
	if len(ps) == 0 {
		return
	}
	readAt := time.Now()
	names, ids := make([]string, len(ps)), make([]string, len(ps))
	for i, p := range ps {
		names[i], ids[i] = p.user.Username, p.user.ID
	}
	users, err := r.w.Mattermost.UsersUncached(ctx, names)
	var statuses map[string]mattermost.Status
	if err == nil && withStatus {
		statuses, err = r.w.Mattermost.Statuses(ctx, ids)
	}
	byID := make(map[string]mattermost.User, len(users))
	for _, u := range users {
		byID[u.ID] = u
	}
	for _, p := range ps {
		u, found := byID[p.user.ID]
		st, read := statuses[p.user.ID]
		switch {
		case err != nil:
			p.stale = err
		case !found: // renamed meanwhile: read by username
			p.stale = errChangedMeanwhile
		case withStatus && !read:
			p.stale = fmt.Errorf("mattermost: no status read for %s", p.user.Username)
		case !sameShown(p.cur, current(st, u), withStatus):
			p.stale = errChangedMeanwhile
		default:
			p.read, p.user = readAt, u
		}
	}
}

// sameShown reports whether Mattermost shows the same custom status, and status when withStatus (a
// DND end only where both reads have one: a read past v6's status cache has none).
func sameShown(a, b engine.Current, withStatus bool) bool {
	if withStatus && (a.Status != b.Status || a.Manual != b.Manual ||
		!a.DNDEndTime.IsZero() && !b.DNDEndTime.IsZero() && !engine.SameDNDEnd(a.DNDEndTime, b.DNDEndTime)) {
		return false
	}
	switch {
	case a.Custom == nil || b.Custom == nil:
		return a.Custom == nil && b.Custom == nil
	default:
		x, y := *a.Custom, *b.Custom
		return x.Emoji == y.Emoji && x.Text == y.Text && x.ExpiresAt.Truncate(time.Second).Equal(y.ExpiresAt.Truncate(time.Second))
	}
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
	r.position, r.names = make(map[string]int, len(m.UserIDs)), make(map[string]string, len(m.UserIDs))
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

func (r *run) done(userID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rep.Done[r.position[userID]] = true
}

func (r *run) fail(userID, class string, done bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rep.Failed++
	r.rep.Failures[class]++
	r.rep.Done[r.position[userID]] = done
	r.nameFailing(cmp.Or(r.names[userID], userID), class)
}

// maxFailedUsers caps the failing users a shard's report names (the counts by class are whole).
const maxFailedUsers = 50

// nameFailing names a failing user in the report, for the Status page's "who is affected" (r.mu
// held while users are applied).
func (r *run) nameFailing(name, class string) {
	if len(r.rep.FailedUsers) < maxFailedUsers {
		r.rep.FailedUsers = append(r.rep.FailedUsers, store.FailedUser{User: name, Class: class})
	}
}

// userLog logs a per-user line, up to maxUserLogs per run (the rest are counted).
func (r *run) userLog(level slog.Level, msg, errText string, attrs ...any) {
	r.mu.Lock()
	if errText != "" {
		r.lastError = errText
	}
	r.userLogs++
	log := r.userLogs <= maxUserLogs || r.everyUser
	r.mu.Unlock()
	if log {
		r.log.Log(context.Background(), level, msg, attrs...)
	}
}

// handledAt reports whether an item calstatus acts on covers t.
func handledAt(a calendar.Availability, p engine.Policy, t time.Time) bool {
	for _, e := range a.ItemsAt(t) {
		if p.Handled(e) {
			return true
		}
	}
	return false
}

// current is what the engine needs of a user's Mattermost state.
func current(st mattermost.Status, u mattermost.User) engine.Current {
	c := engine.Current{Status: st.Status, Manual: st.Manual, DNDEndTime: st.DNDEnd, LastActivity: st.LastActivity}
	if cs := u.CustomStatus; cs != nil {
		c.Custom = &engine.CustomStatus{Emoji: cs.Emoji, Text: cs.Text, ExpiresAt: cs.ExpiresAt}
	}
	return c
}

// schedule enqueues one delayed transition message per upcoming meeting boundary, so a meeting that
// starts or ends before the next cycle is applied on time.
func (r *run) schedule(ctx context.Context, transitions map[time.Time][]string) {
	if r.w.Transitions == nil || len(transitions) == 0 || r.w.DryRun {
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
