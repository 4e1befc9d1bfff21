package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/calstatus/calstatus/devtools/funchost"
	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/handler"
	"github.com/calstatus/calstatus/internal/shard"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// wantsDND is the default policy's rule, stated independently of the engine: busy, tentative and
// out of office mean Do Not Disturb.
func wantsDND(status string) bool {
	switch strings.ToLower(status) {
	case "busy", "tentative", "oof":
		return true
	}
	return false
}

// changesWithin reports whether the simulated calendar changes between from and to (users whose
// meeting starts or ends while the cycle runs may legitimately be either way).
func changesWithin(sc *graphsim.Scenario, email string, from, to time.Time) bool {
	first := wantsDND(sc.StatusAt(email, from))
	for t := from; !t.After(to); t = t.Add(15 * time.Second) {
		if wantsDND(sc.StatusAt(email, t)) != first {
			return true
		}
	}
	return wantsDND(sc.StatusAt(email, to)) != first
}

// entersLookahead reports whether an event the user is busy for starts within [from, to]: a
// meeting entering the lookahead back to back with the current one extends the DND.
func entersLookahead(sc *graphsim.Scenario, email string, from, to time.Time) bool {
	for _, e := range sc.EventsFor(email, from, to) {
		if !e.Start.Before(from) && !e.Start.After(to) && wantsDND(e.Status) {
			return true
		}
	}
	return false
}

// TestSyncEndToEnd: the host fires SyncTimer against the real Mattermost server; one message per
// 400 users lands on sync-shards in Azurite; SyncShard processes each; Mattermost statuses follow
// the simulated calendars; a second cycle changes nothing.
func TestSyncEndToEnd(t *testing.T) {
	sc := graphsim.DefaultScenario()
	h := newHarness(t, harnessOptions{scenario: sc})
	users := h.syncUsers()
	if len(users) < 1000 {
		t.Fatalf("the test stack has %d users to sync, want at least 1000", len(users))
	}
	wantShards := (len(users) + shard.MaxUsers - 1) / shard.MaxUsers

	start := time.Now()
	msgs, reps, _ := h.cycle(3 * time.Minute)
	end := time.Now()
	if len(msgs) != wantShards {
		t.Fatalf("SyncTimer emitted %d shards for %d users, want %d", len(msgs), len(users), wantShards)
	}
	covered := map[string]bool{}
	for _, m := range msgs {
		for _, id := range m.UserIDs {
			covered[id] = true
		}
	}
	for _, u := range users {
		if !covered[u.Id] {
			t.Fatalf("user %s is in no shard", u.Username)
		}
	}
	totalCalls := 0
	for _, r := range reps {
		if r.Outcome != "ok" {
			t.Fatalf("shard %d outcome %q: %s", r.Shard, r.Outcome, r.Error)
		}
		totalCalls += r.GraphCalls
	}
	if got := h.sim.Stats().Requests["$batch"]; int(got) != wantShards || totalCalls != wantShards {
		t.Fatalf("Graph $batch calls: simulator saw %d, shards report %d, want one per shard (%d)", got, totalCalls, wantShards)
	}
	// Teams presence off (the default): no presence call, no user lookup.
	if st := h.sim.Stats(); st.PresenceCalls != 0 || st.UserQueries != 0 {
		t.Fatalf("PRESENCE_SYNC off, yet %d presence calls and %d user lookups", st.PresenceCalls, st.UserQueries)
	}

	// Statuses follow the calendars.
	sts := h.statuses(users)
	dnd, mismatched, boundary := 0, 0, 0
	for _, u := range users {
		want := wantsDND(sc.StatusAt(u.Email, start))
		got := sts[u.Id].Status == model.StatusDnd
		if got {
			dnd++
		}
		if got != want {
			if changesWithin(sc, u.Email, start.Add(-time.Minute), end.Add(time.Minute)) {
				boundary++
				continue
			}
			mismatched++
			if mismatched <= 5 {
				t.Errorf("%s: dnd=%v, calendar says %s", u.Email, got, sc.StatusAt(u.Email, start))
			}
		}
	}
	report(t, "%d users, %d shards, %d in DND after the cycle, %d at a meeting boundary", len(users), wantShards, dnd, boundary)
	if mismatched > 0 {
		t.Fatalf("%d users' statuses do not follow their calendars", mismatched)
	}
	if dnd < len(users)/10 {
		t.Fatalf("only %d users in DND: the calendars have meetings for many more", dnd)
	}

	// A second cycle right away finds (almost) nothing to change.
	_, reps, _ = h.cycle(3 * time.Minute)
	changed := 0
	for _, r := range reps {
		changed += r.Changed
	}
	// Besides users at a meeting boundary, those in DND whose next meeting entered the lookahead
	// since the first cycle get their DND extended.
	entering := 0
	lookahead := 10 * time.Minute // SYNC_LOOKAHEAD's default
	for _, u := range users {
		if sts[u.Id].Status == model.StatusDnd && entersLookahead(sc, u.Email, start.Add(lookahead-time.Minute), time.Now().Add(lookahead+time.Minute)) {
			entering++
		}
	}
	if changed > boundary+entering+len(users)/50 {
		t.Fatalf("second cycle changed %d statuses; expected only users at a meeting boundary (%d) or whose next meeting entered the lookahead (%d)",
			changed, boundary, entering)
	}
}

// TestFailingShardEndsInPoison: a shard whose Graph calls keep failing is retried by the queue and
// ends in sync-shards-poison after maxDequeueCount, unchanged.
func TestFailingShardEndsInPoison(t *testing.T) {
	h := newHarness(t, harnessOptions{faults: graphsim.Faults{BatchServerErrorFraction: 1}})
	users := h.syncUsers()[:3]
	ids := []string{users[0].Id, users[1].Id, users[2].Id}
	now := time.Now()
	msg := shard.Split(fmt.Sprintf("poison-%d", now.UnixNano()), now, now.Add(10*time.Minute), ids)[0]
	body, _ := json.Marshal(msg)
	h.enqueue(shardQueue, string(body))

	attempts := 0
	h.waitEvents(3*time.Minute, func(ev funchost.Event) bool {
		switch {
		case ev.Kind == funchost.EventInvocation && ev.Function == handler.SyncShardFunction:
			if ev.OK {
				t.Fatalf("SyncShard succeeded although Graph always fails")
			}
			attempts++
		case ev.Kind == funchost.EventPoison:
			return true
		}
		return false
	})
	if attempts != 5 {
		t.Fatalf("shard tried %d times before poison, want maxDequeueCount = 5", attempts)
	}
	poison := h.peek(shardQueue + "-poison")
	if len(poison) != 1 || poison[0] != string(body) {
		t.Fatalf("poison queue holds %q, want the original message", poison)
	}
	if left := h.peek(shardQueue); len(left) != 0 {
		t.Fatalf("sync-shards still holds %d messages", len(left))
	}
	// Nothing was changed for those users.
	for id, s := range h.statuses(users) {
		if s.Status != model.StatusOnline {
			t.Fatalf("user %s changed to %s by a failing shard", id, s.Status)
		}
	}
}

// TestMalformedShardChangesNothing: a message that is not a shard is rejected with a clear error
// on every delivery and ends in the poison queue.
func TestMalformedShardChangesNothing(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.enqueue(shardQueue, `{"v":1,"cycle":"x","users":["not-an-id"]}`)
	var lastErr string
	h.waitEvents(2*time.Minute, func(ev funchost.Event) bool {
		if ev.Kind == funchost.EventInvocation && ev.Function == handler.SyncShardFunction {
			if ev.OK {
				t.Fatal("malformed shard accepted")
			}
			lastErr = strings.Join(ev.Logs, "\n") + fmt.Sprint(ev.Err)
		}
		return ev.Kind == funchost.EventPoison
	})
	if !strings.Contains(lastErr, "shard message") {
		t.Fatalf("error does not say what is wrong: %s", lastErr)
	}
	if h.sim.Stats().Requests["$batch"] != 0 {
		t.Fatal("a malformed shard reached Graph")
	}
}
