package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/calstatus/calstatus/devtools/browser"
	"github.com/calstatus/calstatus/devtools/funchost"
	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/devtools/mmstate"
	"github.com/calstatus/calstatus/handler"
	"github.com/calstatus/calstatus/internal/shard"
	"github.com/calstatus/calstatus/internal/store"
)

// snapshot is every sync user's status row and custom status, and how many user states are
// stored: what a run that writes nothing must leave as it found it.
type snapshot struct {
	rows    map[string]mmstate.Row
	customs map[string]string
	states  int
}

func (h *harness) snapshot(t *testing.T, db *mmstate.DB) snapshot {
	t.Helper()
	users := h.syncUsers()
	ids := make([]string, len(users))
	s := snapshot{customs: map[string]string{}}
	for i, u := range users {
		ids[i] = u.Id
		if cs := u.GetCustomStatus(); cs != nil {
			s.customs[u.Id] = cs.Emoji + " " + cs.Text
		}
	}
	rows, err := db.Rows(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	for id, r := range rows {
		r.LastActivityAt = 0
		rows[id] = r
	}
	s.rows = rows
	svc, err := azstorageAccount(h).Tables()
	if err != nil {
		t.Fatal(err)
	}
	pager := svc.NewClient(store.UsersTable).NewListEntitiesPager(&aztables.ListEntitiesOptions{})
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		s.states += len(page.Entities)
	}
	return s
}

func (s snapshot) same(t *testing.T, after snapshot, what string) {
	t.Helper()
	changed := 0
	for id, r := range s.rows {
		if after.rows[id] != r || after.customs[id] != s.customs[id] {
			changed++
		}
	}
	if changed > 0 || after.states != s.states {
		t.Fatalf("%s: %d users' status or custom status changed, %d → %d stored states; want nothing written", what, changed, s.states, after.states)
	}
}

func openDB(t *testing.T, h *harness) *mmstate.DB {
	t.Helper()
	db, err := mmstate.Open(h.env.SQLDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// DRY_RUN=true: a whole cycle through the host against the real server logs the changes it would
// make and writes nothing to Mattermost or the state table.
func TestDryRunWritesNothing(t *testing.T) {
	h := newHarness(t, harnessOptions{scenario: graphsim.DefaultScenario(), settings: map[string]string{"DRY_RUN": "true"}})
	db := openDB(t, h)
	before := h.snapshot(t, db)
	_, reps, logs := h.cycle(2 * time.Minute)
	before.same(t, h.snapshot(t, db), "dry run")
	would, changed := 0, 0
	for _, l := range logs {
		var line struct {
			Msg    string `json:"msg"`
			DryRun bool   `json:"dry_run"`
		}
		_ = json.Unmarshal([]byte(l), &line)
		if line.Msg == "dry run: would update user" && line.DryRun {
			would++
		}
	}
	for _, r := range reps {
		changed += r.Changed
	}
	if would == 0 || would != changed {
		t.Fatalf("%d 'would update' lines for %d changes counted: a dry run logs every change it would make", would, changed)
	}
	report(t, "dry run: %d changes logged, none written", would)
}

// The status page's pause switch, in a real browser: paused, the page says since when, the switch
// records who (the local host names no caller: "function key") and when, the timer plans nothing
// and a shard that arrives anyway writes nothing; resumed, the record is gone and the next cycle
// runs.
func TestPauseSwitchStopsAllWrites(t *testing.T) {
	h := newHarness(t, harnessOptions{scenario: graphsim.DefaultScenario()})
	db := openDB(t, h)
	clearPauseSwitch(t, h)

	b := browser.Start(t, screenshots(t))
	status := h.host.HTTPURL() + "/api/Status"
	b.Open(status)
	b.Click(`button[value="pause"]`)
	p := b.WaitFor(`button[value="resume"]`)
	b.Screenshot("status-paused")
	if !strings.Contains(p.Text, "Paused from this page since") || b.Attribute(`button[value="resume"]`, "type") != "submit" {
		t.Fatalf("after pausing: %s", p)
	}
	if sw, err := h.store.PauseSwitch(context.Background()); err != nil || !sw.On || sw.By != "function key" || time.Since(sw.At) > time.Minute {
		t.Fatalf("pause switch recorded %+v (%v)", sw, err)
	}

	before := h.snapshot(t, db)
	res, err := h.host.RunFunction(context.Background(), handler.SyncTimerFunction)
	if err != nil || !res.OK || len(res.Outputs[handler.ShardsOutBinding]) > 0 && string(res.Outputs[handler.ShardsOutBinding]) != "null" {
		t.Fatalf("paused timer: %v, outputs %s", err, res.Outputs[handler.ShardsOutBinding])
	}
	if !strings.Contains(strings.Join(res.Logs, "\n"), "sync paused") {
		t.Fatalf("paused timer logs: %s", strings.Join(res.Logs, "\n"))
	}
	// A shard already on the queue when the switch was turned: consumed, nothing written.
	users := h.syncUsers()
	ids := make([]string, 0, 50)
	for _, u := range users[:50] {
		ids = append(ids, u.Id)
	}
	now := time.Now().UTC()
	msg, _ := json.Marshal(shard.Split("paused-"+now.Format("150405"), now, now.Add(5*time.Minute), ids)[0])
	h.enqueue(shardQueue, string(msg))
	h.waitEvents(time.Minute, func(ev funchost.Event) bool {
		if ev.Kind == funchost.EventInvocation && ev.Function == handler.SyncShardFunction {
			if !ev.OK || !strings.Contains(strings.Join(ev.Logs, "\n"), `"outcome":"paused"`) {
				t.Fatalf("shard while paused: ok %v\n%s", ev.OK, strings.Join(ev.Logs, "\n"))
			}
			return true
		}
		return false
	})
	before.same(t, h.snapshot(t, db), "paused")

	b.Open(status)
	b.Click(`button[value="resume"]`)
	b.WaitFor(`button[value="pause"]`)
	if sw, err := h.store.PauseSwitch(context.Background()); err != nil || sw != (store.PauseSwitch{}) {
		t.Fatalf("resumed, the pause switch still holds %+v (%v)", sw, err)
	}
	if _, reps, _ := h.cycle(2 * time.Minute); len(reps) == 0 {
		t.Fatal("resumed: no cycle ran")
	}
}
