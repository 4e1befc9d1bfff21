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
	"github.com/calstatus/calstatus/internal/web"
)

// The names the Functions host and the handler share: function names (folders under functions/),
// their routes, binding names and the shard queue. They are declared here only; functions_test.go
// checks them against functions/*/function.json.
const (
	// SyncTimerFunction plans a cycle on a timer and emits one message per shard on ShardQueue.
	SyncTimerFunction = "SyncTimer"
	// SyncShardFunction processes one shard message from ShardQueue.
	SyncShardFunction = "SyncShard"

	// A custom handler's route for a non-HTTP function is "/" + the function name.
	SyncTimerRoute = "/" + SyncTimerFunction
	SyncShardRoute = "/" + SyncShardFunction

	// TimerBinding is SyncTimer's timerTrigger; ShardsOutBinding its queue output (ShardQueue).
	TimerBinding     = "timer"
	ShardsOutBinding = "shards"
	// ShardTriggerBinding is SyncShard's queueTrigger (ShardQueue).
	ShardTriggerBinding = "shard"

	// ShardQueue carries cycle shards and delayed transitions to SyncShard.
	ShardQueue = "sync-shards"

	// The pages: HTTP-triggered functions, served by the host under /api/<Function>.
	// AdminConsentFunction shows what calstatus reads and writes and sends an admin to Microsoft's
	// admin consent; AdminConsentCallbackFunction is where Microsoft sends them back.
	AdminConsentFunction         = "AdminConsent"
	AdminConsentCallbackFunction = "AdminConsentCallback"
	// StatusFunction is the sync's health at a glance (function key).
	StatusFunction = "Status"
	// SlashCommandFunction answers Mattermost's /calstatus slash command.
	SlashCommandFunction = "SlashCommand"

	// HTTPTriggerBinding and HTTPOutBinding are every page's request and response.
	HTTPTriggerBinding = "req"
	HTTPOutBinding     = "res"
)

// Pages are the HTTP-triggered functions; a nil one answers 404.
type Pages struct {
	AdminConsent, AdminConsentCallback, Status, SlashCommand web.Page
}

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
	Pages    Pages
	LogLevel slog.Leveler
}

// New returns the HTTP handler the Functions host talks to.
func New(d Deps) http.Handler {
	s := &azfunc.Server{LogLevel: d.LogLevel}
	r := chi.NewRouter()
	// The host polls GET / until the handler answers.
	r.Get("/", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("calstatus\n")) })
	r.Post(SyncTimerRoute, s.Timer(TimerBinding, func(ctx context.Context, c *azfunc.Call, t azfunc.TimerInfo) error {
		var next time.Time
		if t.ScheduleStatus != nil {
			next = t.ScheduleStatus.Next
		}
		if t.IsPastDue {
			c.Log.Warn("timer is past due: the previous cycle may have overrun")
		}
		msgs, err := d.Planner.Plan(ctx, c.Log, next)
		if err != nil {
			// The planner has logged why. A timer is not retried, and the host drops the logs of
			// a failed invocation: answer success (no shards) so the line reaches Application
			// Insights, where the alerts read it.
			return nil
		}
		// An array under a queue output binding becomes one message per element.
		return c.SetOutput(ShardsOutBinding, msgs)
	}))
	r.Post(SyncShardRoute, s.Queue(ShardTriggerBinding, func(ctx context.Context, c *azfunc.Call, m azfunc.QueueMessage) error {
		msg, err := shard.Decode(m.Body)
		if err != nil {
			return &azfunc.InputError{Err: err}
		}
		_, err = d.Worker.Process(ctx, c.Log, msg, m.DequeueCount)
		return err
	}))
	for name, page := range map[string]web.Page{AdminConsentFunction: d.Pages.AdminConsent,
		AdminConsentCallbackFunction: d.Pages.AdminConsentCallback, StatusFunction: d.Pages.Status,
		SlashCommandFunction: d.Pages.SlashCommand} {
		r.Post("/"+name, s.HTTP(HTTPTriggerBinding, HTTPOutBinding, serve(page)))
	}
	return r
}

// serve adapts a page to an HTTP trigger.
func serve(page web.Page) func(ctx context.Context, c *azfunc.Call, r azfunc.HTTPRequest) (azfunc.HTTPResponse, error) {
	return func(ctx context.Context, c *azfunc.Call, r azfunc.HTTPRequest) (azfunc.HTTPResponse, error) {
		if page == nil {
			return azfunc.HTTPResponse{StatusCode: http.StatusNotFound, Body: "not configured\n",
				Headers: map[string]string{"Content-Type": "text/plain; charset=utf-8"}}, nil
		}
		resp, err := page(ctx, c.Log, web.Request{Method: r.Method, URL: r.URL, Query: r.Query, Headers: r.Headers, Body: r.Body,
			Caller: r.Caller})
		if err != nil {
			return azfunc.HTTPResponse{}, err
		}
		if resp.Status == 0 {
			resp.Status = http.StatusOK
		}
		return azfunc.HTTPResponse{StatusCode: resp.Status, Body: resp.Body, Headers: resp.Headers}, nil
	}
}
