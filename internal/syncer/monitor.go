package syncer

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/calstatus/calstatus/internal/graph"
	"github.com/calstatus/calstatus/internal/mattermost"
	"github.com/calstatus/calstatus/internal/queue"
	"github.com/calstatus/calstatus/internal/store"
)

// The lines an on-call admin's queries and alerts read (infra/queries): one JSON object each in
// Application Insights, with these messages and field names. Change them together with the
// queries; a test runs the queries' field references against lines the handler really writes.
const (
	MsgShardDone    = "shard done"
	MsgCycleSummary = "cycle summary"
	MsgQueueHealth  = "queue health"
	MsgUnusualCycle = "unusual cycle"
)

// UnusualShare is the share of a cycle's users whose change, or whose Graph failure, makes the
// cycle unusual: logged at error level for an alert, never blocked (an all-hands meeting is real).
const UnusualShare = 0.5

// graphClasses are the failure classes where Graph could not answer for a user.
var graphClasses = []string{"no_access", "unauthorized", "throttled", "server", "proxy", "malformed", "missing", "unknown"}

// Cycles is what the summary needs of the cycle records.
type Cycles interface {
	LastCycle(ctx context.Context) (store.CycleReport, bool, error)
	ShardReports(ctx context.Context, cycleID string) ([]store.ShardReport, error)
}

// QueueHealth measures the shard queue.
type QueueHealth interface {
	Health(ctx context.Context, now time.Time) (queue.Health, error)
}

// logShard writes the shard summary line.
func logShard(log *slog.Logger, kind string, r store.ShardReport) {
	level := slog.LevelInfo
	if r.Outcome == "failed" {
		level = slog.LevelError
	}
	log.Log(context.Background(), level, MsgShardDone, "kind", kind, "outcome", r.Outcome, "users", r.Users,
		"changed", r.Changed, "unchanged", r.Unchanged, "failed", r.Failed, "failures", r.Failures,
		"graph_calls", r.GraphCalls, "throttled", r.Throttled, "retries", r.Retries,
		"presence_calls", r.PresenceCalls, "presence_failures", r.PresenceFailures,
		"duration_ms", r.Duration.Milliseconds(), "attempt", r.Attempt, "error", r.Error, "error_class", r.ErrorClass)
}

// errorClass names what failed a shard, for alerts: a credential refused needs an admin, the rest
// the queue's retries.
func errorClass(err error) string {
	var mm *mattermost.Error
	var st *store.Error
	switch {
	case err == nil:
		return ""
	case graph.IsCredentialError(err):
		return "graph_auth"
	case errors.As(err, &mm) && mm.Rejected():
		return "mattermost_auth"
	case errors.As(err, &mm):
		return "mattermost"
	case errors.As(err, &st), errors.Is(err, store.ErrConflict):
		return "storage"
	}
	return "graph"
}

// CycleSummary is what a cycle did, from its records.
type CycleSummary struct {
	store.CycleReport
	ShardsOK, ShardsFailed, ShardsMissing int
	Changed, Failed                       int
	Failures                              map[string]int
	// ShardErrors counts the shards whose run failed, by what failed (ErrorClass: graph_auth,
	// mattermost_auth, graph, mattermost, storage): a failed shard's own lines never reach
	// Application Insights (the host drops a failed invocation's logs), this line does.
	ShardErrors                    map[string]int
	GraphCalls, Throttled, Retries int
	// PresenceFailures counts by class the users whose Teams presence (calls, automatic replies)
	// could not be read; "forbidden": Presence.Read.All or User.Read.All is not granted.
	PresenceFailures map[string]int
	// Duration runs from planning to the last shard's end.
	Duration time.Duration
	// Complete: every shard ended ok.
	Complete bool
}

// Summarize adds up a cycle's shard records.
func Summarize(plan store.CycleReport, shards []store.ShardReport) CycleSummary {
	s := CycleSummary{CycleReport: plan, Failures: map[string]int{}, ShardErrors: map[string]int{}, PresenceFailures: map[string]int{}}
	var last time.Time
	for _, r := range shards {
		switch r.Outcome {
		case "ok":
			s.ShardsOK++
		default:
			s.ShardsFailed++
		}
		s.Changed += r.Changed
		s.Failed += r.Failed
		s.GraphCalls += r.GraphCalls
		s.Throttled += r.Throttled
		s.Retries += r.Retries
		for k, v := range r.Failures {
			s.Failures[k] += v
		}
		for k, v := range r.PresenceFailures {
			s.PresenceFailures[k] += v
		}
		if r.ErrorClass != "" {
			s.ShardErrors[r.ErrorClass]++
		}
		if r.Finished.After(last) {
			last = r.Finished
		}
	}
	s.ShardsMissing = max(0, plan.Shards-len(shards))
	s.Complete = s.ShardsOK == plan.Shards
	if !last.IsZero() {
		s.Duration = last.Sub(plan.Started)
	}
	return s
}

// lastCycle reads the summary of the cycle before this one (by now its shards have run, or have
// not: either is what an admin needs to know).
func (p *Planner) lastCycle(ctx context.Context, log *slog.Logger) (CycleSummary, bool) {
	if p.Cycles == nil {
		return CycleSummary{}, false
	}
	plan, found, err := p.Cycles.LastCycle(ctx)
	if err != nil || !found {
		if err != nil {
			log.Warn("could not read the last cycle", "error", err.Error())
		}
		return CycleSummary{}, false
	}
	shards, err := p.Cycles.ShardReports(ctx, plan.CycleID)
	if err != nil {
		log.Warn("could not read the last cycle", "cycle", plan.CycleID, "error", err.Error())
		return CycleSummary{}, false
	}
	return Summarize(plan, shards), true
}

// logCycle writes a cycle's summary line.
func logCycle(ctx context.Context, log *slog.Logger, s CycleSummary) {
	level := slog.LevelInfo
	if !s.Complete {
		level = slog.LevelWarn
	}
	log.Log(ctx, level, MsgCycleSummary, "cycle", s.CycleID, "users", s.Users, "shards", s.Shards, "shards_ok", s.ShardsOK,
		"shards_failed", s.ShardsFailed, "shards_missing", s.ShardsMissing, "changed", s.Changed, "failed", s.Failed,
		"failures", s.Failures, "shard_errors", s.ShardErrors, "graph_calls", s.GraphCalls, "throttled", s.Throttled, "retries", s.Retries,
		"duration_ms", s.Duration.Milliseconds(), "complete", s.Complete)
	logUnusual(ctx, log, s)
}

// logUnusual writes one error-level line when a cycle changed, or could not read, an unusual share
// of its users.
func logUnusual(ctx context.Context, log *slog.Logger, s CycleSummary) {
	if s.Users == 0 {
		return
	}
	graphFailed := 0
	for _, c := range graphClasses {
		graphFailed += s.Failures[c]
	}
	var reason string
	switch {
	case float64(s.Changed) > UnusualShare*float64(s.Users):
		reason = "changed more than half the users"
	case float64(graphFailed) > UnusualShare*float64(s.Users):
		reason = "Graph failed for more than half the users"
	default:
		return
	}
	log.Log(ctx, slog.LevelError, MsgUnusualCycle, "cycle", s.CycleID, "users", s.Users, "changed", s.Changed,
		"graph_failed", graphFailed, "reason", reason)
}

// logQueueHealth measures the shard queue: a poison message is a shard that failed every delivery;
// an old message means the workers do not keep up.
func (p *Planner) logQueueHealth(ctx context.Context, log *slog.Logger, now time.Time) {
	if p.Queue == nil {
		return
	}
	h, err := p.Queue.Health(ctx, now)
	if err != nil {
		log.Warn("could not measure the shard queue", "error", err.Error())
		return
	}
	level := slog.LevelInfo
	if h.PoisonDepth > 0 {
		level = slog.LevelWarn
	}
	log.Log(ctx, level, MsgQueueHealth, "queue_depth", h.Depth, "poison_depth", h.PoisonDepth,
		"oldest_message_age_s", int(h.OldestAge.Seconds()))
}
