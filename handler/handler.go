// Package handler is calstatus's Azure Functions custom handler: one route per function folder in
// functions/, each decoding its trigger through azfunc and calling the sync jobs.
package handler

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/calstatus/calstatus/handler/azfunc"
	"github.com/calstatus/calstatus/internal/shard"
	"github.com/calstatus/calstatus/internal/store"
)

// Binding names; they must match functions/*/function.json.
const (
	TimerBinding        = "timer"
	ShardsOutBinding    = "shards"
	ShardTriggerBinding = "shard"
)

// Planner plans a sync cycle (syncer.Planner).
type Planner interface {
	Plan(ctx context.Context, log *slog.Logger, next time.Time) ([]shard.Message, error)
}

// Worker processes one shard (syncer.Worker).
type Worker interface {
	Process(ctx context.Context, log *slog.Logger, m shard.Message, attempt int) (store.ShardReport, error)
}

// Deps are what the functions need.
type Deps struct {
	Planner  Planner
	Worker   Worker
	LogLevel slog.Leveler
}

// New returns the HTTP handler the Functions host talks to.
func New(d Deps) http.Handler {
	s := &azfunc.Server{LogLevel: d.LogLevel}
	r := chi.NewRouter()
	// The host polls GET / until the handler answers.
	r.Get("/", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("calstatus\n")) })
	r.Post("/SyncTimer", s.Timer(TimerBinding, func(ctx context.Context, c *azfunc.Call, t azfunc.TimerInfo) error {
		var next time.Time
		if t.ScheduleStatus != nil {
			next = t.ScheduleStatus.Next
		}
		if t.IsPastDue {
			c.Log.Warn("timer is past due: the previous cycle may have overrun")
		}
		msgs, err := d.Planner.Plan(ctx, c.Log, next)
		if err != nil {
			return err
		}
		// An array under a queue output binding becomes one message per element.
		return c.SetOutput(ShardsOutBinding, msgs)
	}))
	r.Post("/SyncShard", s.Queue(ShardTriggerBinding, func(ctx context.Context, c *azfunc.Call, m azfunc.QueueMessage) error {
		msg, err := shard.Decode(m.Body)
		if err != nil {
			return &azfunc.InputError{Err: err}
		}
		_, err = d.Worker.Process(ctx, c.Log, msg, m.DequeueCount)
		return err
	}))
	return r
}
