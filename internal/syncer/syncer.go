// Package syncer runs calstatus's two jobs: planning a cycle (list the users, cut them into shards)
// and working one shard (Graph availability + Mattermost statuses + stored state → decisions →
// updates). It wires the pure engine to thin adapters through small interfaces.
package syncer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/calstatus/calstatus/internal/graph"
	"github.com/calstatus/calstatus/internal/mattermost"
	"github.com/calstatus/calstatus/internal/ncrontab"
	"github.com/calstatus/calstatus/internal/shard"
	"github.com/calstatus/calstatus/internal/store"
)

// Mattermost is what the jobs need of the Mattermost adapter.
type Mattermost interface {
	ListSyncUsers(ctx context.Context) ([]mattermost.User, error)
	CountUsers(ctx context.Context) (mattermost.UserCounts, error)
	Users(ctx context.Context, ids []string) ([]mattermost.User, error)
	UsersUncached(ctx context.Context, usernames []string) ([]mattermost.User, error)
	Statuses(ctx context.Context, ids []string) (map[string]mattermost.Status, error)
	SetStatus(ctx context.Context, userID string, ch mattermost.StatusChange) (viaDone bool, err error)
	SetCustomStatus(ctx context.Context, u mattermost.User, cs mattermost.CustomStatus) error
	ClearCustomStatus(ctx context.Context, u mattermost.User) error
	AutoResponder(ctx context.Context, userID string) (mattermost.AutoResponder, error)
	SetAutoResponder(ctx context.Context, userID string, ar mattermost.AutoResponder, message string) error
	Notify(ctx context.Context, userID, message string) error
	Server(ctx context.Context) (mattermost.Server, error)
	CustomStatusesOn(ctx context.Context) (bool, error)
	WriteBound() int
}

// Graph is what the worker needs of the Graph adapter.
type Graph interface {
	GetSchedules(ctx context.Context, emails []string, w graph.Window) (graph.Result, error)
}

// Store is what the jobs need of the Table Storage adapter.
type Store interface {
	LoadStates(ctx context.Context, userIDs []string) (map[string]store.UserState, error)
	SaveStates(ctx context.Context, changes []store.StateChange) (saved map[string]bool, err error)
	CompleteStates(ctx context.Context, changes []store.StateChange) (saved map[string]bool, err error)
	SaveDirectory(ctx context.Context, entries map[string]store.Directory) error
	RecordCycle(ctx context.Context, r store.CycleReport) error
	DueForPurge(ctx context.Context, now time.Time) (bool, error)
	PurgeEnded(ctx context.Context, cutoff time.Time) (int, error)
	PurgeCycles(ctx context.Context, cutoff time.Time) (int, error)
	PurgeUsedStates(ctx context.Context, cutoff time.Time) (int, error)
	RecordShard(ctx context.Context, r store.ShardReport) error
	ShardReport(ctx context.Context, cycleID string, shard int) (store.ShardReport, bool, error)
}

// Roster keeps the users to sync between cycles (store.Store).
type Roster interface {
	LoadRoster(ctx context.Context) (store.Roster, bool, error)
	SaveRoster(ctx context.Context, r store.Roster) error
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
	// Roster, when set, keeps the listed users between cycles: a cycle lists them again only when
	// Mattermost's user counts changed, the last cycle met ids that are no longer users, or the
	// roster is RosterMaxAge old. Nil lists every cycle.
	Roster Roster
	// Schedule is SYNC_SCHEDULE, for when the host does not say when the timer fires next (it sends
	// no ScheduleStatus on a first run or for schedules more often than once a minute).
	Schedule ncrontab.Schedule
	// Cycles and Queue, when set, give each cycle's log the last cycle's summary and the queue's
	// health.
	Cycles Cycles
	Queue  QueueHealth
	// Paused, when it says so, plans no cycle (SYNC_PAUSED, or the status page's switch).
	Paused func(ctx context.Context) (bool, error)
	Now    func() time.Time
}

// Plan lists the users to sync and cuts them into shard messages. next is when the timer fires
// again (zero if the host did not say): shards not started by then are stale.
func (p *Planner) Plan(ctx context.Context, log *slog.Logger, next time.Time) ([]shard.Message, error) {
	now := p.Now().UTC()
	p.logQueueHealth(ctx, log, now)
	if p.Paused != nil {
		paused, err := p.Paused(ctx)
		if err != nil {
			log.Error("cycle not planned: could not read the pause switch", "error", err.Error(), "error_class", errorClass(err))
			return nil, err
		}
		if paused {
			log.Warn("sync paused: no cycle planned, nothing written")
			return nil, nil
		}
	}
	last, haveLast := p.lastCycle(ctx, log)
	ids, err := p.syncUsers(ctx, log, now, last.Failures[FailNoUser])
	if err != nil {
		log.Error("cycle not planned: could not list the users", "error", err.Error(), "error_class", errorClass(err))
		return nil, fmt.Errorf("listing users: %w", err)
	}
	// The last cycle's summary, once: only a timer that plans the next one writes it, so a timer
	// that keeps failing does not keep reporting the last complete cycle (the no-completed-cycle
	// alert must then fire).
	if haveLast {
		logCycle(ctx, log, last)
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

// RosterMaxAge is how long a stored roster is used while Mattermost's user counts stay the same.
// The counts miss only a change that cancels out between two cycles (one user deactivated and
// another reactivated, or an active user deleted for good and a new one created); this bounds how
// long that goes unseen. At 100,000 users a listing takes Mattermost about a minute: four a day.
const RosterMaxAge = 6 * time.Hour

// syncUsers returns the ids of the users to sync: the stored roster while it holds, else a new
// listing, which it stores. gone is how many users of the last cycle were no longer users: the
// counts can stay the same while the users change (some deleted, as many created).
func (p *Planner) syncUsers(ctx context.Context, log *slog.Logger, now time.Time, gone int) ([]string, error) {
	var fingerprint, why string
	var stored store.Roster
	var found bool
	if p.Roster != nil {
		counts, err := p.Mattermost.CountUsers(ctx)
		if err != nil {
			return nil, err
		}
		fingerprint = counts.String()
		stored, found, err = p.Roster.LoadRoster(ctx)
		switch {
		case err != nil:
			log.Warn("stored roster unreadable: listing the users", "error", err.Error())
			why = "unreadable"
		case !found:
			why = "none stored"
		case stored.Fingerprint != fingerprint:
			why = "users came or went"
		case gone > 0:
			why = "the last cycle had users who are no longer there"
		case now.Sub(stored.ListedAt) >= RosterMaxAge || stored.ListedAt.After(now):
			why = "roster is old"
		default:
			return stored.UserIDs, nil
		}
	}
	started := time.Now()
	users, err := p.Mattermost.ListSyncUsers(ctx)
	if err != nil {
		if !found {
			return nil, err
		}
		// A roster a little out of date syncs everyone but the newest users; no cycle syncs nobody.
		log.Warn("could not list the users: this cycle uses the stored roster", "why", why, "listed_at", stored.ListedAt.Format(time.RFC3339),
			"users", len(stored.UserIDs), "error", err.Error(), "error_class", errorClass(err))
		return stored.UserIDs, nil
	}
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	if p.Roster == nil {
		return ids, nil
	}
	log.Info("users listed", "users", len(ids), "why", why, "counts", fingerprint, "duration_ms", time.Since(started).Milliseconds())
	if err := p.Roster.SaveRoster(ctx, store.Roster{UserIDs: ids, ListedAt: now, Fingerprint: fingerprint}); err != nil {
		log.Warn("could not store the roster: the next cycle lists the users again", "error", err.Error())
	}
	return ids, nil
}

// PurgeAfter is how long after its event a user's stored state is deleted if nothing else did;
// KeepCycles how long cycle records are kept (the status page shows the last day).
const (
	PurgeAfter = 24 * time.Hour
	KeepCycles = 7 * 24 * time.Hour
)

// purge deletes, once a day, state of events long over (users who left, mailboxes that stopped
// answering), old cycle records and the consent pages' used states once expired. A failure only
// delays it to the next cycle.
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
	cycles, err := p.Store.PurgeCycles(ctx, now.Add(-KeepCycles))
	if err != nil {
		log.Warn("daily purge of old cycle records failed", "purged", cycles, "error", err.Error())
	}
	used, err := p.Store.PurgeUsedStates(ctx, now)
	if err != nil {
		log.Warn("daily purge of used consent states failed", "purged", used, "error", err.Error())
	}
	log.Info("daily purge", "purged_states", n, "purged_cycle_records", cycles, "purged_consent_states", used)
}

// newCycleID names a cycle by its time plus randomness (two timers never share one).
func newCycleID(now time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return now.Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// Cadence is the sync's usual period under schedule s: the shortest gap between its next few
// occurrences after now (a schedule with quiet hours has longer gaps, not a slower cadence);
// DefaultInterval when s is nil or has no occurrences.
func Cadence(s ncrontab.Schedule, now time.Time) time.Duration {
	if s == nil {
		return DefaultInterval
	}
	var best time.Duration
	t := s.Next(now)
	for i := 0; i < 4 && !t.IsZero(); i++ {
		n := s.Next(t)
		if n.IsZero() {
			break
		}
		if gap := n.Sub(t); best == 0 || gap < best {
			best = gap
		}
		t = n
	}
	if best <= 0 {
		return DefaultInterval
	}
	return best
}
