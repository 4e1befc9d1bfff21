// Command calstatus-bench measures whole sync cycles at scale on the local stack (make bench).
// First it measures Mattermost's own write rates (each kind of write at concurrencies 8–64: the
// ceiling every first cycle is held to). Then, for each case, it gives the stack's Mattermost that
// many users (SQL copies of a seeded user), starts the Graph simulator with a realistic latency and
// Outlook's per-mailbox limits, and runs cycles through the local Functions host with host.json's
// own queue settings (one instance), on production's schedule (every 5 minutes, on the clock): the
// first with a third of the users in a meeting, the second with no calendar change (which must
// write nothing: the bench fails otherwise) and, for the -wave cases, the top-of-the-hour wave
// (another third starting a meeting at the minute of a cycle). It prints one JSON line per case and
// leaves the stack as it found it (the bench users removed).
package main

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/calstatus/calstatus/devtools/funchost"
	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/devtools/teststack"
	"github.com/calstatus/calstatus/handler"
	"github.com/calstatus/calstatus/handler/azfunc"
	"github.com/calstatus/calstatus/internal/azstorage"
	"github.com/calstatus/calstatus/internal/config"
	"github.com/calstatus/calstatus/internal/mattermost"
	"github.com/calstatus/calstatus/internal/shard"
	"github.com/calstatus/calstatus/internal/store"
)

func main() {
	users := flag.String("users", "2000,10000,100000", "the cases: numbers of users to sync, comma-separated")
	latency := flag.Duration("latency", 1200*time.Millisecond, "the simulated Graph latency per $batch")
	baselineUsers := flag.String("baseline", "2000,10000", "the cases (of -users) also run like the official plugin, comma-separated; empty for none")
	waveUsers := flag.String("wave", "10000", "the cases (of -users) that also measure the top-of-the-hour wave, comma-separated; empty for none")
	period := flag.Duration("period", 5*time.Minute, "the sync's period (production's schedule): cycles start on its slots on the clock; 0 runs them back to back")
	writeBound := flag.Int("write-bound", 0, "MATTERMOST_WRITE_CONCURRENCY for calstatus (0: its default)")
	presence := flag.Bool("presence", false, "run calstatus with PRESENCE_SYNC=true (Teams presence read beside the calendars; its permissions granted)")
	batchSize := flag.Int("batch-size", 0, "overrides host.json's queues.batchSize (0 keeps it)")
	threshold := flag.Int("new-batch-threshold", -1, "overrides host.json's queues.newBatchThreshold (-1 keeps it)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "calstatus-bench:", err)
		os.Exit(1)
	}
	cases, err := counts("-users", *users)
	if err != nil {
		fail(err)
	}
	base, err := counts("-baseline", *baselineUsers)
	if err != nil {
		fail(err)
	}
	waves, err := counts("-wave", *waveUsers)
	if err != nil {
		fail(err)
	}
	opts := options{latency: *latency, baseline: map[int]bool{}, wave: map[int]bool{},
		queues: &funchost.QueueOverrides{}, period: *period, writeBound: *writeBound, presence: *presence}
	for _, n := range base {
		opts.baseline[n] = true
	}
	for _, n := range waves {
		opts.wave[n] = true
	}
	if *batchSize > 0 {
		opts.queues.BatchSize = batchSize
	}
	if *threshold >= 0 {
		opts.queues.NewBatchThreshold = threshold
	}
	if err := run(ctx, cases, opts); err != nil {
		fail(err)
	}
}

// counts parses a comma-separated list of numbers of users.
func counts(flagName, list string) ([]int, error) {
	var out []int
	for _, c := range strings.Split(list, ",") {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		n, err := strconv.Atoi(c)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%s: %q is not a number of users", flagName, c)
		}
		out = append(out, n)
	}
	return out, nil
}

// options are the bench's flags.
type options struct {
	latency  time.Duration
	baseline map[int]bool // cases also run as the baseline
	wave     map[int]bool // cases that also measure the top-of-the-hour wave
	queues   *funchost.QueueOverrides
	// period is the sync's: cycles start on its slots (0: at once, back to back).
	period time.Duration
	// writeBound is calstatus's MATTERMOST_WRITE_CONCURRENCY (0: its default).
	writeBound int
	// presence runs calstatus with PRESENCE_SYNC=true.
	presence bool
}

// slot is when a cycle started at or after t starts: the next slot of the period on the clock
// (the timer's schedule fires on them), or t itself with no period.
func (o options) slot(t time.Time) time.Time {
	if o.period <= 0 {
		return t
	}
	s := t.Truncate(o.period)
	if s.Before(t) {
		s = s.Add(o.period)
	}
	return s.Add(200 * time.Millisecond) // the timer fires just after the slot
}

func say(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...) }

// cycleResult is what one cycle cost.
type cycleResult struct {
	Changed     int   `json:"changed"`
	Failed      int   `json:"failed"` // users not synced: no mailbox (1% of bench users), a Mattermost error
	GraphCalls  int64 `json:"graph_calls"`
	SubRequests int64 `json:"sub_requests"`
	Retries     int   `json:"retries"`
	Throttled   int64 `json:"throttled"`
	MMReads     int   `json:"mm_reads"`
	MMWrites    int   `json:"mm_writes"`
	// PresenceCalls counts getPresencesByUserId calls, UserLookups the GET /users filters (sent in
	// the $batch calls graph_calls counts): both 0 without PRESENCE_SYNC.
	PresenceCalls int64   `json:"presence_calls"`
	UserLookups   int64   `json:"user_lookups"`
	TableOps      int     `json:"table_ops"`
	StateWrites   int     `json:"state_writes"` // of table_ops: writes to the user state table
	ListUsersS    float64 `json:"list_users_s"`
	// CycleS runs from the timer's start to the last shard finished or the last write landed,
	// whichever is later.
	CycleS float64 `json:"cycle_s"`
	// Stale counts the shards that ran after the next cycle's start and were skipped (their users
	// not synced this cycle).
	Stale int `json:"stale_shards"`
}

// caseResult is one JSON line.
type caseResult struct {
	Case        string      `json:"case"`
	Users       int         `json:"users"`
	Shards      int         `json:"shards"`
	Concurrency int         `json:"instance_concurrency"`
	LatencyS    float64     `json:"graph_latency_s"`
	WriteBound  int         `json:"write_bound,omitempty"` // Mattermost writes in flight at most
	Presence    bool        `json:"presence_sync,omitempty"`
	cycleResult             // the first cycle
	Second      cycleResult `json:"second"`
	// Wave is the top-of-the-hour wave (a third of the users starting a meeting at the minute of a
	// cycle), where measured.
	Wave      *waveResult `json:"wave,omitempty"`
	ReadyMS   float64     `json:"ready_ms"`
	PeakRSSMB float64     `json:"peak_rss_mb"`
	// FloorS, on calstatus's line, is the first cycle's floor: one Graph wave plus its writes at
	// Mattermost's write ceiling; OverFloor the first cycle over it. ServerFloorS is one Graph wave
	// plus its changes at the rate the server takes meeting starts (status PUT + props patch) —
	// what no client can beat on this server — and OverServerFloor the first cycle over that.
	FloorS          float64 `json:"floor_s,omitempty"`
	OverFloor       float64 `json:"cycle_over_floor,omitempty"`
	ServerFloorS    float64 `json:"server_floor_s,omitempty"`
	OverServerFloor float64 `json:"cycle_over_server_floor,omitempty"`
	// Ratios, on the baseline's line: calstatus's figure over the baseline's, for both cycles.
	Ratios map[string]float64 `json:"calstatus_over_baseline,omitempty"`
}

func run(ctx context.Context, cases []int, opts options) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	env, err := teststack.Load()
	if err != nil {
		return err
	}
	db, err := sql.Open("postgres", env.SQLDSN)
	if err != nil {
		return err
	}
	defer db.Close()
	defer func() {
		if err := unseed(context.Background(), db); err != nil {
			say("%v", err)
		}
		_ = invalidateCaches(env)
	}()
	// Mattermost's own write rates first, on the stack's users: what every first cycle is held to.
	writes, err := measureWrites(ctx, env)
	if err != nil {
		return fmt.Errorf("measuring Mattermost's writes: %w", err)
	}
	b, _ := json.Marshal(writes)
	fmt.Println(string(b))
	bin := filepath.Join(root, "calstatus")
	for _, n := range cases {
		res, err := runCase(ctx, root, bin, env, db, n, opts)
		if err != nil {
			return fmt.Errorf("%d users: %w", n, err)
		}
		res[0].floors(writes)
		for _, r := range res {
			b, _ := json.Marshal(r)
			fmt.Println(string(b))
		}
		// Nothing changed, nothing written: a write here is a defect, not a slow figure.
		if c := res[0]; c.Second.MMWrites > 0 || c.Second.StateWrites > 0 {
			return fmt.Errorf("%d users: the second cycle, with no calendar change, made %d Mattermost writes and %d state writes: want none",
				n, c.Second.MMWrites, c.Second.StateWrites)
		}
	}
	return nil
}

// floors sets the first cycle's floors from Mattermost's measured write rates.
func (r *caseResult) floors(w *writesResult) {
	round := func(f float64) float64 { return math.Round(f*100) / 100 }
	if w.CeilingPerS > 0 {
		r.FloorS = round(r.LatencyS + float64(r.MMWrites)/w.CeilingPerS)
		r.OverFloor = round(r.CycleS / r.FloorS)
	}
	if rate := w.ChangesPerS["calstatus"]; rate > 0 {
		r.ServerFloorS = round(r.LatencyS + float64(r.Changed)/rate)
		r.OverServerFloor = round(r.CycleS / r.ServerFloorS)
	}
}

// runCase runs one number of users: calstatus, then, if asked, the baseline on the same users and
// calendars from the same starting point.
func runCase(ctx context.Context, root, bin string, env teststack.Env, db *sql.DB, n int, opts options) ([]*caseResult, error) {
	latency := opts.latency
	bench, err := seedTo(ctx, db, n, env.SeedUsers+1)
	if err != nil {
		return nil, err
	}
	if err := resetStatuses(ctx, db); err != nil {
		return nil, err
	}
	if err := invalidateCaches(env); err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, azstorage.Account{ConnectionString: env.StorageConnectionString})
	if err != nil {
		return nil, err
	}
	if err := clearState(ctx, env); err != nil {
		return nil, err
	}
	if err := st.DeleteRoster(ctx); err != nil { // as installed: the first cycle lists the users
		return nil, err
	}
	say("%d users (%d added to the stack's own), Graph latency %v per $batch", n, bench, latency)

	// Calendars: set once the first cycle's time is known (benchCalendars).
	emails, err := syncedUsers(ctx, db)
	if err != nil {
		return nil, err
	}
	scenario := &graphsim.Scenario{Generator: graphsim.Generator{Disabled: true}}
	caFile := filepath.Join(root, ".stack", "bench-ca.pem")
	simCfg := graphsim.Config{Scenario: scenario, CAFile: caFile, BatchLatency: latency,
		Faults: graphsim.Faults{PunishEarlyRetries: true}}
	if opts.presence { // granted, and as slow as a $batch
		simCfg.Roles = []string{"Calendars.ReadBasic.All", "Presence.Read.All", "User.Read.All"}
		simCfg.Faults.EndpointLatency = map[string]graphsim.Duration{"getPresencesByUserId": graphsim.Duration(latency)}
	}
	sim, err := graphsim.Start(simCfg)
	if err != nil {
		return nil, err
	}
	defer sim.Close()
	mm, err := newCounter(env.MattermostURL, mattermostRead)
	if err != nil {
		return nil, err
	}
	defer mm.close()
	tableURL, err := storageEndpoint(env.StorageConnectionString, "TableEndpoint")
	if err != nil {
		return nil, err
	}
	tables, err := newCounter(tableURL, tableRead)
	if err != nil {
		return nil, err
	}
	defer tables.close()
	settings := map[string]string{
		"AzureWebJobsStorage":  withEndpoint(env.StorageConnectionString, "TableEndpoint", tables.url+"/devstoreaccount1"),
		"AZURE_TENANT_ID":      sim.TenantID(),
		"GRAPH_CLIENT_ID":      sim.ClientID(),
		"AZURE_CLIENT_SECRET":  sim.ClientSecret(),
		"AZURE_AUTHORITY_HOST": sim.URL(),
		"GRAPH_BASE_URL":       sim.GraphURL(),
		"MATTERMOST_URL":       mm.url,
		"MATTERMOST_TOKEN":     env.MattermostToken,
		"SYNC_SCHEDULE":        config.DefaultSchedule, // production's: a shard of a cycle longer than it goes stale
		"SSL_CERT_FILE":        caFile,
	}
	if opts.writeBound > 0 {
		settings["MATTERMOST_WRITE_CONCURRENCY"] = strconv.Itoa(opts.writeBound)
	}
	if opts.presence {
		settings["PRESENCE_SYNC"] = "true"
	}
	ready, err := readyTime(ctx, root, bin, settings)
	if err != nil {
		return nil, err
	}
	host, err := funchost.Start(ctx, funchost.Options{AppDir: root, HandlerPath: bin, Settings: settings,
		HTTPAddr: "127.0.0.1:0", DisableTimers: true, Overrides: opts.queues, Logf: func(string, ...any) {}})
	if err != nil {
		return nil, err
	}
	defer host.Close()

	q := host.QueueSettings()
	res := &caseResult{Case: "calstatus", Users: n, Concurrency: q.BatchSize + q.NewBatchThreshold, LatencyS: latency.Seconds(), ReadyMS: ready,
		WriteBound: cmp.Or(opts.writeBound, mattermost.DefaultWriteBound), Presence: opts.presence}
	// The cycles run on the schedule, as in production: each starts on a slot of it.
	slot := opts.slot(time.Now().Add(5 * time.Second))
	first0 := slot
	if err := sim.SetScenario(benchCalendars(emails, slot)); err != nil {
		return nil, err
	}
	say("first cycle at %s", slot.Format("15:04:05"))
	first, shards, err := cycle(ctx, slot, host, sim, mm, tables, st)
	if err != nil {
		return nil, err
	}
	res.cycleResult, res.Shards = first, shards
	say("first cycle: %d changed in %.1f s (%d shards stale)", first.Changed, first.CycleS, first.Stale)
	slot = opts.slot(time.Now())
	say("second cycle, no calendar change, at %s", slot.Format("15:04:05"))
	if res.Second, _, err = cycle(ctx, slot, host, sim, mm, tables, st); err != nil {
		return nil, err
	}
	say("second cycle: %d changed, %d Mattermost writes, in %.1f s", res.Second.Changed, res.Second.MMWrites, res.Second.CycleS)
	if opts.wave[n] {
		slot = opts.slot(time.Now())
		if opts.period <= 0 { // meetings start on the minute
			slot = time.Now().Truncate(time.Minute).Add(time.Minute + 200*time.Millisecond)
		}
		if err := sim.SetScenario(benchWave(emails, first0, slot)); err != nil {
			return nil, err
		}
		say("the top-of-the-hour wave: a third of the users in a meeting from %s", slot.Format("15:04:05"))
		mm.dndWrites() // from here on
		wave, _, err := cycle(ctx, slot, host, sim, mm, tables, st)
		if err != nil {
			return nil, err
		}
		res.Wave = waveLag(mm.dndWrites(), waveUsers(emails), slot.Truncate(time.Minute))
		res.Wave.Cycle = &wave
		say("wave: %d in DND, lag p50 %.1f s, p95 %.1f s, max %.1f s", res.Wave.Users, res.Wave.P50S, res.Wave.P95S, res.Wave.MaxS)
	}
	if res.PeakRSSMB, err = peakRSS(host.HandlerPID()); err != nil {
		return nil, err
	}
	host.Close()
	if !opts.baseline[n] {
		return []*caseResult{res}, nil
	}
	// The baseline starts where calstatus's first cycle did: the same third in a meeting.
	if err := sim.SetScenario(benchCalendars(emails, first0)); err != nil {
		return nil, err
	}
	base, err := runBaseline(ctx, env, db, sim, mm, n, opts.latency)
	if err != nil {
		return nil, err
	}
	base.Ratios = ratios(res, base)
	return []*caseResult{res, base}, nil
}

// runBaseline resets the users' statuses as they were before calstatus's first cycle and runs two
// cycles the plugin's way.
func runBaseline(ctx context.Context, env teststack.Env, db *sql.DB, sim *graphsim.Server, mm *counter, n int, latency time.Duration) (*caseResult, error) {
	if err := resetStatuses(ctx, db); err != nil {
		return nil, err
	}
	if err := invalidateCaches(env); err != nil {
		return nil, err
	}
	b, err := newBaseline(sim, mm.url, env.MattermostToken)
	if err != nil {
		return nil, err
	}
	mm.take()
	res := &caseResult{Case: "baseline", Users: n, Concurrency: 1, LatencyS: latency.Seconds()}
	say("baseline: %d users, a $batch of 20 calendarView requests per 20 users, one after another, Graph latency %v per $batch", n, latency)
	if res.cycleResult, err = b.cycle(ctx, sim, mm); err != nil {
		return nil, err
	}
	say("baseline first cycle: %d changed in %.1f s", res.Changed, res.CycleS)
	if res.Second, err = b.cycle(ctx, sim, mm); err != nil {
		return nil, err
	}
	say("baseline second cycle: %d changed in %.1f s", res.Second.Changed, res.Second.CycleS)
	return res, nil
}

// ratios are calstatus's figures over the baseline's.
func ratios(ours, base *caseResult) map[string]float64 {
	r := map[string]float64{}
	put := func(key string, a, b float64) {
		if b > 0 {
			r[key] = math.Round(a/b*1000) / 1000
		}
	}
	for _, c := range []struct {
		prefix string
		o, b   cycleResult
	}{{"", ours.cycleResult, base.cycleResult}, {"second_", ours.Second, base.Second}} {
		put(c.prefix+"graph_calls", float64(c.o.GraphCalls), float64(c.b.GraphCalls))
		put(c.prefix+"mm_calls", float64(c.o.MMReads+c.o.MMWrites), float64(c.b.MMReads+c.b.MMWrites))
		put(c.prefix+"cycle_s", c.o.CycleS, c.b.CycleS)
	}
	return r
}

// cycle fires the timer and waits until every shard it planned has been processed; it reports
// what the cycle cost.
func cycle(ctx context.Context, at time.Time, host *funchost.Host, sim *graphsim.Server, mm, tables *counter, st *store.Store) (cycleResult, int, error) {
	select {
	case <-time.After(time.Until(at)):
	case <-ctx.Done():
		return cycleResult{}, 0, ctx.Err()
	}
	sim.ResetStats()
	mm.take()
	tables.take()
	start := time.Now()
	r, err := host.RunFunction(ctx, handler.SyncTimerFunction)
	if err != nil || !r.OK {
		return cycleResult{}, 0, fmt.Errorf("SyncTimer: %v %v", err, r.Err)
	}
	var msgs []shard.Message
	if err := json.Unmarshal(r.Outputs[handler.ShardsOutBinding], &msgs); err != nil || len(msgs) == 0 {
		return cycleResult{}, 0, fmt.Errorf("SyncTimer planned no shards (%v): %s", err, strings.Join(r.Logs, "\n"))
	}
	res := cycleResult{ListUsersS: r.Duration.Seconds()}
	done := 0
	deadline := time.After(10 * time.Minute)
	for done < len(msgs) {
		select {
		case <-ctx.Done():
			return res, 0, ctx.Err()
		case <-deadline:
			return res, 0, fmt.Errorf("%d of %d shards done after 10 minutes", done, len(msgs))
		case ev := <-host.Events():
			if ev.Kind == funchost.EventHandlerExit {
				return res, 0, fmt.Errorf("the handler exited: %v", ev.Err)
			}
			if ev.Kind == funchost.EventInvocation && ev.Function == handler.SyncShardFunction && ev.OK && ev.Result != nil &&
				!isTransition(ev.Result.Request) {
				done++
			}
		}
	}
	end := time.Now()
	reps, err := st.ShardReports(ctx, msgs[0].CycleID)
	if err != nil {
		return res, 0, err
	}
	for _, rep := range reps {
		if rep.Outcome == "stale" {
			res.Stale++
		}
		res.Changed += rep.Changed
		res.Failed += rep.Failed
		res.Retries += rep.Retries
	}
	s := sim.Stats()
	res.GraphCalls, res.SubRequests, res.Throttled = s.Requests["$batch"], s.SubRequests, s.Throttled
	res.PresenceCalls, res.UserLookups = s.PresenceCalls, s.UserQueries
	var lastWrite time.Time
	res.MMReads, res.MMWrites, _, lastWrite = mm.take()
	reads, writes, stateWrites, _ := tables.take()
	res.TableOps, res.StateWrites = reads+writes, stateWrites
	// The cycle ends when its last shard has finished and its last write has landed, whichever
	// is later.
	res.CycleS = later(end, lastWrite).Sub(start).Seconds()
	return res, len(msgs), nil
}

// isTransition says whether a SyncShard invocation the host sent carries a transition message (a
// meeting boundary between cycles) rather than one of the cycle's shards.
func isTransition(request []byte) bool {
	inv, err := azfunc.DecodeInvocation(bytes.NewReader(request))
	if err != nil {
		return false
	}
	m, err := inv.QueueMessage(handler.ShardTriggerBinding)
	if err != nil {
		return false
	}
	msg, err := shard.Decode(m.Body)
	return err == nil && msg.IsTransition()
}

// readyTime starts the handler alone, as the host does, and measures how long it takes to answer
// (the best of five starts, polling every millisecond).
func readyTime(ctx context.Context, root, bin string, settings map[string]string) (float64, error) {
	best := time.Duration(0)
	for i := 0; i < 5; i++ {
		port, err := freePort()
		if err != nil {
			return 0, err
		}
		cmd := exec.CommandContext(ctx, bin)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "FUNCTIONS_CUSTOMHANDLER_PORT="+strconv.Itoa(port))
		for k, v := range settings {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		start := time.Now()
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		took, err := waitReady(ctx, port, start)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if err != nil {
			return 0, err
		}
		if best == 0 || took < best {
			best = took
		}
	}
	return float64(best.Microseconds()) / 1000, nil
}

// freePort is a local port nothing listens on (a fixed one may be the stack's, and the handler
// would fail to start on it).
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitReady(ctx context.Context, port int, start time.Time) (time.Duration, error) {
	client := &http.Client{Timeout: time.Second}
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/"
	for time.Since(start) < 30*time.Second {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return time.Since(start), nil
		}
		time.Sleep(time.Millisecond)
	}
	return 0, errors.New("the handler did not answer within 30 s")
}

// peakRSS reads a process's peak resident set (VmHWM) in MB.
func peakRSS(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024, err
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

func storageEndpoint(cs, key string) (string, error) {
	for _, part := range strings.Split(cs, ";") {
		if k, v, ok := strings.Cut(part, "="); ok && k == key {
			return strings.TrimSuffix(strings.TrimSuffix(v, "/"), "/devstoreaccount1"), nil
		}
	}
	return "", fmt.Errorf("the stack's connection string has no %s", key)
}

func withEndpoint(cs, key, value string) string {
	parts := strings.Split(cs, ";")
	for i, part := range parts {
		if k, _, ok := strings.Cut(part, "="); ok && k == key {
			parts[i] = key + "=" + value
		}
	}
	return strings.Join(parts, ";")
}

// later is the later of two times.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
