// Command calstatus-run is `make run`: it runs calstatus through the local Functions host.
//
// With no local.settings.json (or one still holding the example's placeholders) it brings up the
// local stack — Azurite, PostgreSQL, a real Mattermost server with a demo organisation — and the
// Graph simulator with realistic calendars, then runs a sync cycle every minute and shows what
// happens. With a filled-in local.settings.json it checks every setting and syncs for real.
//
// RUN_CYCLES=n stops after n cycles (default: until Ctrl-C).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/calstatus/calstatus/devtools/funchost"
	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/devtools/teststack"
	"github.com/calstatus/calstatus/handler"
	"github.com/calstatus/calstatus/internal/azstorage"
	"github.com/calstatus/calstatus/internal/config"
	"github.com/calstatus/calstatus/internal/store"
	"github.com/calstatus/calstatus/internal/syncer"
)

const demoSchedule = "0 * * * * *" // every minute, so the demo shows changes quickly

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "make run:", err)
		os.Exit(1)
	}
}

func say(format string, args ...any) {
	fmt.Printf("%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func run(ctx context.Context) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	settings, real, err := localSettings(filepath.Join(root, "local.settings.json"))
	if err != nil {
		return err
	}
	var sim *graphsim.Server
	if real {
		say("local.settings.json found: syncing for real (Mattermost %s)", settings["MATTERMOST_URL"])
		if strings.EqualFold(config.ExpandStorageConnectionString(settings["AzureWebJobsStorage"]), config.DevelopmentStorage) {
			say("AzureWebJobsStorage is the local emulator: starting Azurite")
			if err := stack(ctx, root, "up-azurite"); err != nil {
				return err
			}
		}
	} else {
		say("no local.settings.json: running the demo organisation on the local stack")
		say("starting Azurite, PostgreSQL and Mattermost (the first time this installs and builds them: 3–7 minutes)")
		if err := stack(ctx, root, "up"); err != nil {
			return err
		}
		env, err := teststack.Load()
		if err != nil {
			return err
		}
		caFile := filepath.Join(root, ".stack", "graphsim-ca.pem")
		scenario, err := graphsim.LoadScenario(filepath.Join(root, "devtools", "graphsim", "testdata", "demo.json"))
		if err != nil {
			return fmt.Errorf("demo scenario: %w", err)
		}
		sim, err = graphsim.Start(graphsim.Config{Scenario: scenario, CAFile: caFile, BatchLatency: 1200 * time.Millisecond})
		if err != nil {
			return fmt.Errorf("graph simulator: %w", err)
		}
		defer sim.Close()
		say("Graph simulator at %s (Entra ID token endpoint and Graph v1.0, TLS with a local CA)", sim.URL())
		say("Mattermost at %s with %d seeded users (log in as %s / %s)", env.MattermostURL, env.SeedUsers, env.AdminUsername, env.AdminPassword)
		settings = map[string]string{
			"AzureWebJobsStorage":  env.StorageConnectionString,
			"AZURE_TENANT_ID":      sim.TenantID(),
			"GRAPH_CLIENT_ID":      sim.ClientID(),
			"AZURE_CLIENT_SECRET":  sim.ClientSecret(),
			"AZURE_AUTHORITY_HOST": sim.URL(),
			"GRAPH_BASE_URL":       sim.GraphURL(),
			"MATTERMOST_URL":       env.MattermostURL,
			"MATTERMOST_TOKEN":     env.MattermostToken,
			"SYNC_SCHEDULE":        demoSchedule,
			// The handler trusts the simulator's CA (and only it) for TLS.
			"SSL_CERT_FILE": caFile,
		}
	}
	if settings["SYNC_SCHEDULE"] == "" {
		settings["SYNC_SCHEDULE"] = config.DefaultSchedule
	}

	say("checking the configuration")
	check := exec.CommandContext(ctx, filepath.Join(root, "calstatus"), "check")
	check.Env = environ(settings)
	if out, err := check.CombinedOutput(); err != nil {
		return fmt.Errorf("%s", strings.TrimSpace(string(out)))
	}

	host, err := funchost.Start(ctx, funchost.Options{
		AppDir: root, HandlerPath: filepath.Join(root, "calstatus"), Settings: settings,
		HTTPAddr: "127.0.0.1:7071", Logf: func(f string, a ...any) { say(f, a...) },
	})
	if err != nil {
		return err
	}
	defer host.Close()
	api := host.HTTPURL() + "/api/"
	say("pages: admin consent %sAdminConsent · status %sStatus (add ?format=json) · slash command endpoint %sSlashCommand",
		api, api, api)
	if sim != nil {
		say("the demo's consent flow ends at the Entra simulator (its TLS certificate is the local CA's: accept it in the browser)")
	}
	st, err := store.Open(ctx, azstorage.Account{ConnectionString: config.ExpandStorageConnectionString(settings["AzureWebJobsStorage"])})
	if err != nil {
		return err
	}

	maxCycles, _ := strconv.Atoi(os.Getenv("RUN_CYCLES"))
	say("running: a cycle every time SYNC_SCHEDULE (%s) fires; the first one now. Ctrl-C stops.", settings["SYNC_SCHEDULE"])
	cycles := 0
	fire := make(chan struct{}, 1)
	fire <- struct{}{}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-fire:
			if _, err := host.RunFunction(ctx, handler.SyncTimerFunction); err != nil {
				say("SyncTimer failed: %v", err)
			}
		case ev := <-host.Events():
			if ev.Kind == funchost.EventHandlerExit {
				return fmt.Errorf("the handler exited: %v", ev.Err)
			}
			if ev.Kind != funchost.EventInvocation || ev.Function != handler.SyncTimerFunction || !ev.OK {
				continue
			}
			cycles++
			summarize(ctx, host, st, sim, ev)
			if maxCycles > 0 && cycles >= maxCycles {
				say("done: %d cycle(s)", cycles)
				return nil
			}
		}
	}
}

// summarize waits for a cycle's shards and prints one line about it (the handler's own "cycle
// summary" comes with the next cycle).
func summarize(ctx context.Context, host *funchost.Host, st *store.Store, sim *graphsim.Server, ev funchost.Event) {
	var planned struct {
		Msg    string `json:"msg"`
		Cycle  string `json:"cycle"`
		Shards int    `json:"shards"`
	}
	for _, l := range ev.Logs {
		var line struct{ Msg string }
		if json.Unmarshal([]byte(l), &line) == nil && line.Msg == "cycle planned" {
			_ = json.Unmarshal([]byte(l), &planned)
		}
	}
	if planned.Cycle == "" {
		return
	}
	wait, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var reps []store.ShardReport
	for wait.Err() == nil {
		reps, _ = st.ShardReports(wait, planned.Cycle)
		if len(reps) >= planned.Shards {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	sum := syncer.Summarize(store.CycleReport{CycleID: planned.Cycle, Shards: planned.Shards}, reps)
	users := 0
	for _, r := range reps {
		users += r.Users
	}
	var cls []string
	for c, n := range sum.Failures {
		cls = append(cls, fmt.Sprintf("%s=%d", c, n))
	}
	sort.Strings(cls)
	line := fmt.Sprintf("cycle %s: %d/%d shards, %d users, %d status changes, %d Graph $batch calls, %d users without availability %v",
		planned.Cycle, len(reps), planned.Shards, users, sum.Changed, sum.GraphCalls, sum.Failed, cls)
	if sim != nil {
		s := sim.Stats()
		line += fmt.Sprintf(" (simulator so far: %d $batch, %d tokens)", s.Requests["$batch"], s.Requests["token"])
	}
	say("%s", line)
}

func stack(ctx context.Context, root, cmd string) error {
	c := exec.CommandContext(ctx, filepath.Join(root, "devtools", "stack", "stack.sh"), cmd)
	c.Stdout, c.Stderr = os.Stdout, os.Stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("stack %s failed (see .stack/logs/)", cmd)
	}
	return nil
}

// localSettings reads local.settings.json; real is false when it is absent or still has the
// example's placeholders.
func localSettings(path string) (map[string]string, bool, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	s, err := funchost.LoadLocalSettings(path)
	if err != nil {
		return nil, false, fmt.Errorf("local.settings.json: %w", err)
	}
	for k, v := range s {
		if strings.Contains(v, "<") && strings.Contains(v, ">") {
			say("local.settings.json: %s still holds a placeholder; running the demo instead", k)
			return nil, false, nil
		}
	}
	return s, true, nil
}

func environ(settings map[string]string) []string {
	env := os.Environ()
	for k, v := range settings {
		env = append(env, k+"="+v)
	}
	return env
}
