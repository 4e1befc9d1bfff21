// Command calstatus is the Azure Functions custom handler that turns Microsoft 365 calendar
// availability into Mattermost statuses. It reads its settings from the environment (the function
// app's application settings), wires the adapters and serves the functions on
// FUNCTIONS_CUSTOMHANDLER_PORT.
//
// `calstatus check` verifies the settings and that Mattermost, Entra ID, Graph and storage answer.
// `calstatus register-command TEAM... APP_URL` adds the /calstatus slash command to Mattermost teams
// and prints MATTERMOST_SLASH_TOKEN for them.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	_ "time/tzdata" // TIME_ZONE works wherever the handler runs

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/calstatus/calstatus/handler"
	"github.com/calstatus/calstatus/handler/azfunc"
	"github.com/calstatus/calstatus/internal/config"
	"github.com/calstatus/calstatus/internal/engine"
	"github.com/calstatus/calstatus/internal/graph"
	"github.com/calstatus/calstatus/internal/mattermost"
	"github.com/calstatus/calstatus/internal/queue"
	"github.com/calstatus/calstatus/internal/slash"
	"github.com/calstatus/calstatus/internal/store"
	"github.com/calstatus/calstatus/internal/syncer"
)

func main() {
	// Outside an invocation (start, shutdown) the process's own lines go to stderr as JSON, which the
	// host also forwards; inside one, every line goes to the invocation's logs (logctx).
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch {
	case len(os.Args) > 1 && os.Args[1] == "check":
		err = check(ctx, log)
	case len(os.Args) > 1 && os.Args[1] == "register-command":
		err = registerCommand(ctx, log, os.Args[2:])
	default:
		err = serve(ctx, log)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "calstatus:", err)
		os.Exit(1)
	}
}

type app struct {
	cfg         config.Config
	cred        azcore.TokenCredential
	mm          *mattermost.Client
	graph       *graph.Client
	store       *store.Store
	transitions *queue.Queue
	slash       *slash.Handler // its late answers are waited for on shutdown
	log         *slog.Logger
}

func wire(ctx context.Context, log *slog.Logger) (*app, error) {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return nil, err
	}
	for _, problem := range cfg.Warnings {
		log.Error("configuration: a part of calstatus is off", "problem", problem)
	}
	for _, d := range cfg.Deprecations {
		log.Warn("configuration: a setting under an old name", "problem", d)
	}
	cred, err := graph.NewCredential(credentialConfig(cfg))
	if err != nil {
		return nil, err
	}
	gc, err := graph.New(graph.Config{BaseURL: cfg.GraphBaseURL, Credential: cred, Log: log})
	if err != nil {
		return nil, err
	}
	openCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	st, err := store.Open(openCtx, cfg.Storage)
	if err != nil {
		return nil, fmt.Errorf("AzureWebJobsStorage: %w", err)
	}
	q, err := queue.Open(openCtx, cfg.Storage, handler.ShardQueue)
	if err != nil {
		return nil, fmt.Errorf("AzureWebJobsStorage: %w", err)
	}
	mm := mattermost.New(cfg.MattermostURL, cfg.MattermostToken, log)
	if cfg.MattermostWriteConcurrency > 0 {
		mm.BoundWrites(cfg.MattermostWriteConcurrency)
	}
	return &app{cfg: cfg, cred: cred, mm: mm, graph: gc, store: st, transitions: q}, nil
}

// gcPercent is the handler's GOGC unless the app settings give one. A full instance runs 48 shards
// at once, about 40 MB live at 100,000 users' first cycle; at Go's default (100) the heap grows to
// twice that and the process to 102 MB. 50 holds the heap to half again what is live, for a few
// more collections (the GC used 2% of the CPU at 100). memoryLimit (GOMEMLIMIT unless the app
// settings give one) keeps the peaks of a full instance (48 shards' Graph answers parsed at once)
// under 100 MB: the process reached 100.3 MB at 100,000 users without it.
const (
	gcPercent   = 50
	memoryLimit = 75 << 20
)

func serve(ctx context.Context, log *slog.Logger) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	// The handler in use: calstatus's, or while it cannot start the Status page alone (setupOnly).
	var current atomic.Pointer[http.Handler]
	var started atomic.Pointer[app]
	a, h, err := start(ctx, log)
	port := cmp.Or(strings.TrimSpace(os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT")), "8080")
	switch {
	case err == nil:
		started.Store(a)
		current.Store(&h)
		port = a.cfg.Port
	case !inAzure():
		return err // locally, one line says it best
	default:
		// In Azure an exit would leave the admin nothing but a log line: serve the Status page's
		// Setup section, which says why, and try again (a new role assignment takes minutes to apply).
		log.Error("calstatus cannot start: serving only the Status page's setup check until it can", "error", firstLine(err.Error()))
		h = setupOnly(log, err)
		current.Store(&h)
		go func() {
			for wait := 2 * time.Second; ; wait = min(2*wait, 30*time.Second) {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
				a, full, err := start(ctx, log)
				if err != nil {
					log.Error("calstatus cannot start yet", "error", firstLine(err.Error()))
					continue
				}
				started.Store(a)
				current.Store(&full)
				log.Info("calstatus started")
				return
			}
		}()
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return fmt.Errorf("FUNCTIONS_CUSTOMHANDLER_PORT %s: %w", port, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*current.Load()).ServeHTTP(w, r) }),
		ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	if a != nil {
		log.Info("calstatus handler listening", "addr", ln.Addr().String(), "graph", a.cfg.GraphBaseURL, "mattermost", a.cfg.MattermostURL)
	} else {
		log.Info("calstatus handler listening (Status page only)", "addr", ln.Addr().String())
	}
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	// Late /calstatus answers (slash.LateTimeout) still under way.
	drain, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if a := started.Load(); a != nil && a.slash != nil && a.slash.Drain(drain) != nil {
		log.Warn("shutdown: late slash command answers dropped")
	}
	return nil
}

// start wires calstatus and makes its handler.
func start(ctx context.Context, log *slog.Logger) (*app, http.Handler, error) {
	a, err := wire(ctx, log)
	if err != nil {
		return nil, nil, err
	}
	a.log = log
	level := slog.LevelInfo
	if a.cfg.LogLevel != "" {
		if err := level.UnmarshalText([]byte(a.cfg.LogLevel)); err != nil {
			return nil, nil, fmt.Errorf("configuration: LOG_LEVEL %q: %v", a.cfg.LogLevel, err)
		}
	}
	budget, err := workerBudget()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now
	h := handler.New(handler.Deps{
		Planner: &syncer.Planner{Mattermost: a.mm, Store: a.store, Roster: a.store, Schedule: a.cfg.Schedule, Cycles: a.store, Queue: a.transitions,
			Paused: a.paused, Now: now},
		Worker:   a.worker(now, budget),
		Pages:    a.pages(now),
		LogLevel: level,
	})
	return a, h, nil
}

// workerBudget fits a shard's work into host.json's functionTimeout (the host starts the handler in
// the app's folder, beside host.json; without one, the default five minutes).
func workerBudget() (time.Duration, error) {
	b, err := os.ReadFile("host.json")
	if errors.Is(err, fs.ErrNotExist) {
		return syncer.DefaultBudget, nil
	}
	if err != nil {
		return 0, err
	}
	timeout, err := azfunc.FunctionTimeout(b)
	return syncer.BudgetFor(timeout), err
}

// check verifies every dependency and says in one line what is wrong.
func check(ctx context.Context, log *slog.Logger) error {
	a, err := wire(ctx, log)
	if err != nil {
		return err
	}
	if err := a.mm.Check(ctx); err != nil {
		return err
	}
	tokCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := a.cred.GetToken(tokCtx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}}); err != nil {
		return fmt.Errorf("Entra ID rejects the app credentials (AZURE_TENANT_ID, GRAPH_CLIENT_ID, %s): %s", credentialConfig(a.cfg).Mode(), graph.BriefAuthError(err))
	}
	fmt.Println("calstatus: configuration OK: Mattermost, Entra ID and storage answer")
	return nil
}

// registerCommand is `calstatus register-command TEAM... APP_URL`: it adds (or updates) the
// /calstatus slash command in each team and prints MATTERMOST_SLASH_TOKEN: each team's token with
// its team id.
func registerCommand(ctx context.Context, log *slog.Logger, args []string) error {
	if len(args) < 2 {
		return errors.New("usage: calstatus register-command TEAM [TEAM...] https://<app host>")
	}
	// Only the Mattermost settings matter here: the others' problems (a wrong MATTERMOST_SLASH_TOKEN
	// among them, which this puts right) do not stop it.
	cfg, err := config.Load(os.Getenv)
	if err != nil && (cfg.MattermostURL == "" || cfg.MattermostToken == "") {
		return err
	}
	teams, appURL := args[:len(args)-1], args[len(args)-1]
	entries, err := slash.Register(ctx, mattermost.New(cfg.MattermostURL, cfg.MattermostToken, log), appURL, teams)
	if err != nil {
		return err
	}
	fmt.Printf("/calstatus is registered in team %s.\n", strings.Join(teams, ", "))
	fmt.Println("Set MATTERMOST_SLASH_TOKEN to this (a TEAM_ID=TOKEN entry per team; name every team that has the command):")
	fmt.Println(strings.Join(entries, ","))
	return nil
}

// paused reports whether writes are stopped: SYNC_PAUSED, or the status page's switch.
func (a *app) paused(ctx context.Context) (bool, error) {
	if a.cfg.Paused {
		return true, nil
	}
	sw, err := a.store.PauseSwitch(ctx)
	return sw.On, err
}

// policy is the organisation's configuration of the rules.
func (a *app) policy() engine.Policy {
	return engine.Policy{TentativeAsBusy: a.cfg.TentativeAsBusy, ShowSubject: a.cfg.ShowSubject,
		Notify: a.cfg.NotifyUsers, Location: a.cfg.TimeZone, Cadence: syncer.Cadence(a.cfg.Schedule, time.Now())}
}

func (a *app) worker(now func() time.Time, budget time.Duration) *syncer.Worker {
	w := &syncer.Worker{Mattermost: a.mm, Graph: a.graph, Store: a.store, Transitions: a.transitions, Now: now,
		Policy: a.policy(), Lookahead: a.cfg.Lookahead, DryRun: a.cfg.DryRun, Paused: a.paused, Budget: budget}
	if a.cfg.ReadsPresence() {
		w.Presence = a.graph
	}
	w.Calls, w.AutomaticReplies = a.cfg.PresenceSync, a.cfg.AutomaticRepliesSync
	return w
}

func credentialConfig(c config.Config) graph.CredentialConfig {
	return graph.CredentialConfig{TenantID: c.TenantID, ClientID: c.ClientID, ClientSecret: c.ClientSecret,
		CertificatePath: c.CertificatePath, Certificate: c.Certificate, CertificatePassword: c.CertificatePassword,
		ManagedIdentity: c.ManagedIdentity, AuthorityHost: c.AuthorityHost}
}
