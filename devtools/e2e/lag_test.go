package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/calstatus/calstatus/devtools/funchost"
	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/handler"
)

// TestTransitionLag: meetings that start and end between two cycles are applied on time by the
// delayed transition messages the worker enqueues, not at the next cycle. One cycle runs (SyncTimer
// fired once, SYNC_SCHEDULE every 5 minutes, the next occurrence after every meeting boundary); 20
// users have meetings starting 30–90 s later and lasting 30–60 s; the test polls Mattermost and
// measures, per user, how late DND was entered after the start and left after the end. The host
// polls the queue like the real one (host.json's maxPollingInterval 10 s), so the lag is what a
// deployment would see. Done when the p95 of each is at most 30 s.
func TestTransitionLag(t *testing.T) {
	const (
		nUsers     = 20
		pollEvery  = 500 * time.Millisecond
		maxLag     = 30 * time.Second  // the p95 bound
		lastBound  = 150 * time.Second // latest meeting end after t0: 90 s start + 60 s
		giveUp     = 4 * time.Minute
		cycleEvery = 5 * time.Minute // SYNC_SCHEDULE "0 */5 * * * *"
	)
	h := newHarness(t, harnessOptions{realPolling: true, scenario: &graphsim.Scenario{Generator: graphsim.Generator{Disabled: true}}})
	all := h.syncUsers()
	if len(all) < nUsers {
		t.Fatalf("the test stack has %d users to sync, want at least %d", len(all), nUsers)
	}
	// The last users of the seeded list: other tests take theirs from the front and middle.
	users := all[len(all)-nUsers:]

	// Transitions are scheduled up to the next timer occurrence only (later ones are the next
	// cycle's job). This test runs a single cycle, so every boundary must fall before that
	// occurrence: if it is too close, start just after it.
	now := time.Now()
	if next := now.Truncate(cycleEvery).Add(cycleEvery); next.Sub(now) < lastBound+20*time.Second {
		wait := time.Until(next) + 2*time.Second
		t.Logf("waiting %v for the next 5-minute boundary so that the cycle covers every meeting", wait.Round(time.Second))
		time.Sleep(wait)
	}

	// Calendars: everyone free, except our users, whose meetings start 30–90 s from t0 (staggered)
	// and last 30–60 s; mostly busy, some tentative (DND by default) and out of office.
	t0 := time.Now().Truncate(time.Second)
	type meeting struct {
		user       *model.User
		status     string
		start, end time.Time
	}
	meetings := make([]meeting, nUsers)
	sc := &graphsim.Scenario{Generator: graphsim.Generator{Disabled: true}, Mailboxes: map[string]*graphsim.Mailbox{}}
	for _, u := range all {
		sc.Mailboxes[strings.ToLower(u.Email)] = &graphsim.Mailbox{} // free
	}
	for i, u := range users {
		status := "busy"
		switch i % 5 {
		case 2:
			status = "tentative"
		case 4:
			status = "oof"
		}
		start := t0.Add(30*time.Second + time.Duration(i)*60*time.Second/(nUsers-1)).Truncate(time.Second)
		end := start.Add(time.Duration(30+(i*13)%31) * time.Second)
		meetings[i] = meeting{user: u, status: status, start: start, end: end}
		sc.Mailboxes[strings.ToLower(u.Email)] = &graphsim.Mailbox{Events: []graphsim.Event{
			{Status: status, Start: start, End: end, Subject: fmt.Sprintf("lag test %d", i)}}}
	}
	if err := h.sim.SetScenario(sc); err != nil {
		t.Fatal(err)
	}

	// The only cycle of the test.
	ctx := context.Background()
	res, err := h.host.RunFunction(ctx, handler.SyncTimerFunction)
	if err != nil || !res.OK {
		t.Fatalf("SyncTimer: %v %v\n%s", err, res.Err, strings.Join(res.Logs, "\n"))
	}
	var msgs []struct {
		StaleAfter time.Time `json:"staleAfter"`
	}
	if err := jsonUnmarshal(res.Outputs[handler.ShardsOutBinding], &msgs); err != nil || len(msgs) == 0 {
		t.Fatalf("SyncTimer output: %v: %s", err, res.Outputs[handler.ShardsOutBinding])
	}
	last := meetings[0].end
	for _, m := range meetings {
		if m.end.After(last) {
			last = m.end
		}
	}
	if msgs[0].StaleAfter.Before(last) {
		t.Fatalf("the cycle's shards are stale after %v, before the last meeting end %v: the test would measure the next cycle",
			msgs[0].StaleAfter, last)
	}
	t.Logf("cycle at %s (%d shards, stale after %s); meetings %s..%s", t0.UTC().Format(time.TimeOnly), len(msgs),
		msgs[0].StaleAfter.UTC().Format(time.TimeOnly), meetings[0].start.UTC().Format(time.TimeOnly), last.UTC().Format(time.TimeOnly))

	// Watch Mattermost. Lags are measured at the poll that first shows the change, so they include
	// up to one poll interval (and one status request) more than the real lag.
	type watch struct {
		entered, left time.Time
		leftTo        string
		early         bool
		reentered     bool
	}
	seen := make([]watch, nUsers)
	invocations, failures := 0, 0
	deadline := t0.Add(giveUp)
	for {
		sts := h.statuses(users)
		at := time.Now()
	drain:
		for {
			select {
			case ev := <-h.host.Events():
				if ev.Kind == funchost.EventHandlerExit {
					t.Fatalf("handler exited: %v", ev.Err)
				}
				if ev.Kind == funchost.EventInvocation && ev.Function == handler.SyncShardFunction {
					invocations++
					if !ev.OK {
						failures++
						t.Logf("SyncShard failed: %v", ev.Err)
					}
				}
			default:
				break drain
			}
		}
		done := 0
		for i, m := range meetings {
			w := &seen[i]
			s, ok := sts[m.user.Id]
			if !ok {
				t.Fatalf("no status for %s", m.user.Username)
			}
			dnd := s.Status == model.StatusDnd
			switch {
			case dnd && w.entered.IsZero():
				w.entered = at
				// A status request started at most a poll ago: DND seen well before the start is early.
				if at.Before(m.start.Add(-2 * time.Second)) {
					w.early = true
				}
			case !dnd && !w.entered.IsZero() && w.left.IsZero():
				w.left, w.leftTo = at, s.Status
			case dnd && !w.left.IsZero():
				w.reentered = true
			}
			if !w.left.IsZero() {
				done++
			}
		}
		if done == nUsers {
			break
		}
		if at.After(deadline) {
			t.Errorf("gave up after %v: %d of %d users have not both entered and left DND", giveUp, nUsers-done, nUsers)
			break
		}
		time.Sleep(pollEvery)
	}
	t.Logf("done %v after the cycle; %d SyncShard invocations (%d cycle shards, the rest transitions), %d failed",
		time.Since(t0).Round(time.Second), invocations, len(msgs), failures)

	var startLags, endLags []time.Duration
	for i, m := range meetings {
		w := seen[i]
		name := fmt.Sprintf("%s (%s %s..%s)", m.user.Username, m.status, m.start.UTC().Format(time.TimeOnly), m.end.UTC().Format(time.TimeOnly))
		switch {
		case w.entered.IsZero():
			t.Errorf("%s: never entered DND", name)
			continue
		case w.early:
			t.Errorf("%s: in DND at %s, before the meeting started", name, w.entered.UTC().Format(time.TimeOnly))
		}
		startLags = append(startLags, w.entered.Sub(m.start))
		if w.left.IsZero() {
			t.Errorf("%s: entered DND %v late but never left it", name, w.entered.Sub(m.start).Round(100*time.Millisecond))
			continue
		}
		endLags = append(endLags, w.left.Sub(m.end))
		if w.leftTo != model.StatusOnline {
			t.Errorf("%s: after the meeting the status is %q, want the previous one (online)", name, w.leftTo)
		}
		if w.reentered {
			t.Errorf("%s: back in DND after the meeting ended", name)
		}
		if testing.Verbose() {
			t.Logf("%s: start lag %v, end lag %v", name, w.entered.Sub(m.start).Round(100*time.Millisecond), w.left.Sub(m.end).Round(100*time.Millisecond))
		}
	}
	for _, c := range []struct {
		what string
		lags []time.Duration
	}{{"start", startLags}, {"end", endLags}} {
		if len(c.lags) == 0 {
			t.Errorf("no %s measured", c.what)
			continue
		}
		p50, p95, worst := percentile(c.lags, 50), percentile(c.lags, 95), percentile(c.lags, 100)
		report(t, "transition lag at meeting %s (%d users, poll every %v): p50 %v, p95 %v, max %v", c.what, len(c.lags), pollEvery,
			p50.Round(100*time.Millisecond), p95.Round(100*time.Millisecond), worst.Round(100*time.Millisecond))
		if p95 > maxLag {
			t.Errorf("transition lag at meeting %s: p95 %v, want at most %v", c.what, p95.Round(100*time.Millisecond), maxLag)
		}
	}
}

// percentile is the nearest-rank p-th percentile of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := (p*len(s) + 99) / 100 // ceil(p/100 · n)
	return s[max(k, 1)-1]
}
