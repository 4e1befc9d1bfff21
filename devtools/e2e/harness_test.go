// Package e2e runs calstatus end to end on real local parts: the local Functions host starts the
// real handler binary, which talks to the Graph simulator through azidentity and the msgraph SDK,
// to the real Mattermost server of the test stack, and to Azurite.
package e2e

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/calstatus/calstatus/devtools/funchost"
	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/devtools/teststack"
	"github.com/calstatus/calstatus/handler"
	"github.com/calstatus/calstatus/internal/azstorage"
	"github.com/calstatus/calstatus/internal/shard"
	"github.com/calstatus/calstatus/internal/store"
)

const shardQueue = handler.ShardQueue

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// handlerBinary builds the real calstatus handler once per test run.
func handlerBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "calstatus-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "calstatus")
		cmd := exec.Command("go", "build", "-o", binary, ".")
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = &buildError{string(out)}
		}
	})
	if buildErr != nil {
		t.Fatalf("building the handler: %v", buildErr)
	}
	return binary
}

type buildError struct{ out string }

func (e *buildError) Error() string { return e.out }

// harness is one running calstatus: simulator, host and clients to inspect what happened.
type harness struct {
	t     *testing.T
	env   teststack.Env
	sim   *graphsim.Server
	host  *funchost.Host
	mm    *model.Client4
	store *store.Store
	queue *azqueue.ServiceClient
}

type harnessOptions struct {
	scenario *graphsim.Scenario
	faults   graphsim.Faults
	settings map[string]string
	// realPolling keeps host.json's queue settings (maxPollingInterval 10 s) instead of fast test
	// polling: for measuring delays as they are in Azure.
	realPolling bool
	// appDir and handlerPath, when set, replace the repository root (host.json and the function
	// folders) and the handler built from it: to run an unpacked deployment package.
	appDir      string
	handlerPath string
	// timers lets the host fire SyncTimer on SYNC_SCHEDULE (otherwise tests fire it).
	timers bool
	// visibility is how long a failed message waits before its next delivery (default 200 ms).
	visibility time.Duration
	// lease, when set, replaces the host's 10-minute lease on a message being processed (which a
	// lost delete or release leaves the message invisible for).
	lease time.Duration
	// clientSecret replaces the Graph simulator's client secret.
	clientSecret string
	// onLog sees every line the host logs (its own, the handler's output, invocation logs).
	onLog func(line string)
}

func newHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	env := teststack.Require(t)
	h := &harness{t: t, env: env}
	appDir, bin := o.appDir, o.handlerPath
	if appDir == "" {
		appDir = repoRoot()
	}
	if bin == "" {
		bin = handlerBinary(t)
	}
	dir := t.TempDir()
	var err error
	h.sim, err = graphsim.Start(graphsim.Config{Scenario: o.scenario, CAFile: filepath.Join(dir, "ca.pem"), Faults: o.faults, ClientSecret: o.clientSecret})
	if err != nil {
		t.Fatalf("graph simulator: %v", err)
	}
	t.Cleanup(func() { h.sim.Close() })

	h.mm = model.NewAPIv4Client(env.MattermostURL)
	h.mm.SetToken(env.MattermostToken)
	ctx := context.Background()
	if h.store, err = store.Open(ctx, azstorage.Account{ConnectionString: env.StorageConnectionString}); err != nil {
		t.Fatal(err)
	}
	if h.queue, err = azqueue.NewServiceClientFromConnectionString(env.StorageConnectionString, nil); err != nil {
		t.Fatal(err)
	}
	h.reset()

	settings := map[string]string{
		"AzureWebJobsStorage":  env.StorageConnectionString,
		"AZURE_TENANT_ID":      h.sim.TenantID(),
		"GRAPH_CLIENT_ID":      h.sim.ClientID(),
		"AZURE_CLIENT_SECRET":  h.sim.ClientSecret(),
		"AZURE_AUTHORITY_HOST": h.sim.URL(),
		"GRAPH_BASE_URL":       h.sim.GraphURL(),
		"MATTERMOST_URL":       env.MattermostURL,
		"MATTERMOST_TOKEN":     env.MattermostToken,
		"SYNC_SCHEDULE":        "0 */5 * * * *",
		"SSL_CERT_FILE":        filepath.Join(dir, "ca.pem"),
	}
	for k, v := range o.settings {
		settings[k] = v
	}
	opts := funchost.Options{
		AppDir: appDir, HandlerPath: bin, Settings: settings, HTTPAddr: "127.0.0.1:0", DisableTimers: !o.timers,
		Logf: func(f string, a ...any) {
			if o.onLog != nil {
				o.onLog(fmt.Sprintf(f, a...))
			}
			if testing.Verbose() {
				t.Logf(f, a...)
			}
		},
	}
	if !o.realPolling {
		opts.Overrides = &funchost.QueueOverrides{
			VisibilityTimeout:  funchost.Ptr(cmp.Or(o.visibility, 200*time.Millisecond)),
			MaxPollingInterval: funchost.Ptr(200 * time.Millisecond),
		}
		if o.lease > 0 {
			opts.Overrides.Lease = &o.lease
		}
	}
	h.host, err = funchost.Start(ctx, opts)
	if err != nil {
		t.Fatalf("local functions host: %v", err)
	}
	t.Cleanup(func() { h.host.Close() })
	return h
}

// reset empties the queues and the user state table and puts every seeded user back online, so a
// test starts from a known Mattermost whatever ran before (the demo, another test).
func (h *harness) reset() {
	t := h.t
	ctx := context.Background()
	for _, q := range []string{shardQueue, shardQueue + "-poison"} {
		qc := h.queue.NewQueueClient(q)
		_, _ = qc.Create(ctx, nil)
		if _, err := qc.ClearMessages(ctx, nil); err != nil {
			t.Fatalf("clearing queue %s: %v", q, err)
		}
	}
	svc, err := aztables.NewServiceClientFromConnectionString(h.env.StorageConnectionString, nil)
	if err != nil {
		t.Fatal(err)
	}
	users := svc.NewClient(store.UsersTable)
	pager := users.NewListEntitiesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range page.Entities {
			var e aztables.Entity
			if err := jsonUnmarshal(raw, &e); err != nil {
				t.Fatal(err)
			}
			if _, err := users.DeleteEntity(ctx, e.PartitionKey, e.RowKey, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	all := h.syncUsers()
	parallel(all, 8, func(u *model.User) {
		if _, _, err := h.mm.UpdateUserStatus(u.Id, &model.Status{UserId: u.Id, Status: model.StatusOnline}); err != nil {
			t.Errorf("resetting %s: %v", u.Username, err)
		}
	})
}

// syncUsers lists, straight from the API, the users calstatus should sync.
func (h *harness) syncUsers() []*model.User { return listSyncUsers(h.t, h.mm) }

func listSyncUsers(t *testing.T, mm *model.Client4) []*model.User {
	t.Helper()
	var out []*model.User
	for page := 0; ; page++ {
		users, _, err := mm.GetUsers(page, 200, "")
		if err != nil {
			t.Fatalf("listing users: %v", err)
		}
		for _, u := range users {
			if u.DeleteAt == 0 && !u.IsBot && u.Email != "" {
				out = append(out, u)
			}
		}
		if len(users) < 200 {
			return out
		}
	}
}

func (h *harness) statuses(users []*model.User) map[string]*model.Status {
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.Id
	}
	out := map[string]*model.Status{}
	for i := 0; i < len(ids); i += 200 {
		sts, _, err := h.mm.GetUsersStatusesByIds(ids[i:min(i+200, len(ids))])
		if err != nil {
			h.t.Fatal(err)
		}
		for _, s := range sts {
			out[s.UserId] = s
		}
	}
	return out
}

// waitEvents collects host events until done says stop, or fails the test at the deadline.
func (h *harness) waitEvents(timeout time.Duration, done func(ev funchost.Event) bool) {
	h.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-h.host.Events():
			if ev.Kind == funchost.EventHandlerExit {
				h.t.Fatalf("handler exited: %v", ev.Err)
			}
			if done(ev) {
				return
			}
		case <-deadline:
			h.t.Fatalf("timed out after %v waiting for the host", timeout)
		}
	}
}

// enqueue writes a message the way the host's output binding does (base64 of the text).
func (h *harness) enqueue(queue, text string) {
	h.t.Helper()
	qc := h.queue.NewQueueClient(queue)
	if _, err := qc.EnqueueMessage(context.Background(), base64.StdEncoding.EncodeToString([]byte(text)), nil); err != nil {
		h.t.Fatal(err)
	}
}

// peek returns the decoded texts of up to 32 messages on a queue.
func (h *harness) peek(queue string) []string {
	h.t.Helper()
	n := int32(32)
	resp, err := h.queue.NewQueueClient(queue).PeekMessages(context.Background(), &azqueue.PeekMessagesOptions{NumberOfMessages: &n})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, m := range resp.Messages {
		b, err := base64.StdEncoding.DecodeString(*m.MessageText)
		if err != nil {
			b = []byte(*m.MessageText)
		}
		out = append(out, strings.TrimSpace(string(b)))
	}
	return out
}

func parallel[T any](items []T, n int, fn func(T)) {
	var wg sync.WaitGroup
	ch := make(chan T)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range ch {
				fn(it)
			}
		}()
	}
	for _, it := range items {
		ch <- it
	}
	close(ch)
	wg.Wait()
}

// report logs a measured result and appends it to the test report (CALSTATUS_TEST_REPORT, which
// `make test` prints at the end, since go test shows passing tests' logs only with -v).
func report(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf(format, args...)
	path := os.Getenv("CALSTATUS_TEST_REPORT")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Logf("test report: %v", err)
		return
	}
	defer f.Close()
	profile := "?"
	if env, err := teststack.Load(); err == nil {
		profile = env.Profile
	}
	fmt.Fprintf(f, "%s [mattermost %s]: %s\n", t.Name(), profile, fmt.Sprintf(format, args...))
}

// cycle fires SyncTimer through the host and waits until every shard message it emitted has been
// processed (a failed invocation fails the test). It returns the messages, the shards' records and
// every invocation's log lines.
func (h *harness) cycle(timeout time.Duration) ([]shard.Message, []store.ShardReport, []string) {
	h.t.Helper()
	res, err := h.host.RunFunction(context.Background(), handler.SyncTimerFunction)
	if err != nil || !res.OK {
		h.t.Fatalf("SyncTimer: %v %v\n%s", err, res.Err, strings.Join(res.Logs, "\n"))
	}
	logs := append([]string(nil), res.Logs...)
	var msgs []shard.Message
	if err := json.Unmarshal(res.Outputs[handler.ShardsOutBinding], &msgs); err != nil && len(res.Outputs[handler.ShardsOutBinding]) > 0 {
		h.t.Fatalf("SyncTimer output: %v: %s", err, res.Outputs[handler.ShardsOutBinding])
	}
	if len(msgs) == 0 {
		return nil, nil, logs
	}
	// Each message is done once one of its deliveries succeeded. The test host renews no visibility
	// (Azure's does), so a shard slower than the short test visibility timeout is delivered again
	// meanwhile: the duplicate fails on the claims (at-least-once) and is retried.
	ok := map[string]bool{}
	h.waitEvents(timeout, func(ev funchost.Event) bool {
		if ev.Kind != funchost.EventInvocation || ev.Function != handler.SyncShardFunction {
			return false
		}
		logs = append(logs, ev.Logs...)
		if ev.OK {
			ok[ev.MessageID] = true
		} else if ev.DequeueCount >= 5 {
			h.t.Fatalf("SyncShard failed every delivery: %v\n%s", ev.Err, strings.Join(ev.Logs, "\n"))
		}
		return len(ok) == len(msgs)
	})
	// The shards' records: the last delivery's word, which ends as ok once the retries are done.
	deadline := time.Now().Add(timeout)
	for {
		reps, err := h.store.ShardReports(context.Background(), msgs[0].CycleID)
		allOK := err == nil && len(reps) == len(msgs)
		for _, r := range reps {
			allOK = allOK && r.Outcome == "ok"
		}
		if allOK {
			return msgs, reps, logs
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("cycle record: %d shard rows, want %d all ok (%v): %+v", len(reps), len(msgs), err, reps)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
