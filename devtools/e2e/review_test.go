package e2e

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/calstatus/calstatus/devtools/mmstate"
	"github.com/calstatus/calstatus/internal/graph"
	"github.com/calstatus/calstatus/internal/store"
	"github.com/calstatus/calstatus/internal/syncer"
)

// The defects a review of the engine and worker against Mattermost's status code found (issue 16),
// one scenario each against the real server, under every stack profile (TestScenarios runs them).

// graphMeanwhile runs meanwhile while Graph answers: what users do in Mattermost in that time.
type graphMeanwhile struct {
	syncer.Graph
	meanwhile func()
}

func (g graphMeanwhile) GetSchedules(ctx context.Context, emails []string, win graph.Window) (graph.Result, error) {
	g.meanwhile()
	return g.Graph.GetSchedules(ctx, emails, win)
}

// completionLost is the real store, but what a run applied is never stored: the run died after
// its claim.
type completionLost struct{ *store.Store }

func (completionLost) CompleteStates(context.Context, []store.StateChange) (map[string]bool, error) {
	return nil, errors.New("the run died")
}

func reviewScenarios(w *world, scenario func(string, func(*testing.T)), users func(int) []*model.User, day time.Time) {
	nine, ten, eleven := day.Add(9*time.Hour), day.Add(10*time.Hour), day.Add(11*time.Hour)

	scenario("a meeting inside an out-of-office week the user overrode: DND until the meeting's end", func(t *testing.T) {
		u := users(1)[0]
		week := event("oof", day.Add(-24*time.Hour), day.Add(72*time.Hour))
		call := event("busy", ten, ten.Add(45*time.Minute))
		w.calendar(u, week)
		w.runAt(nine, u)
		w.expect(u, dndRow(model.StatusOnline, day.Add(72*time.Hour)), "Out of office")
		w.setStatus(u, model.StatusOnline) // back at work for the morning, by hand
		w.runAt(nine.Add(5*time.Minute), u)
		w.expect(u, autoRow(model.StatusOnline), "Out of office")
		w.calendar(u, week, call)
		w.runAt(ten, u)
		w.expect(u, dndRow(model.StatusOnline, ten.Add(45*time.Minute)), "Out of office")
		w.runAt(ten.Add(45*time.Minute), u)
		w.expect(u, autoRow(model.StatusOnline), "Out of office")
	})

	scenario("a run that died after an extension's Via: the away set on the way is given back as automatic", func(t *testing.T) {
		u := users(1)[0]
		w.setAutomatic(model.StatusAway, u)
		w.calendar(u, event("busy", nine, ten))
		w.runAt(nine, u)
		w.expect(u, dndRow(model.StatusAway, ten), "In a meeting")
		// The run extending the DND dies between its two PUTs: the DND is refused and nothing the
		// run learnt is stored, only its claim (made before applying).
		p := newMMProxy(t, w.env.MattermostURL)
		p.rule = func(id, status string, n int) proxyAction {
			if id == u.Id && status == model.StatusDnd {
				return refuse
			}
			return forward
		}
		w.through(p)
		w.worker.Store = completionLost{w.store}
		w.calendar(u, event("busy", nine, ten.Add(30*time.Minute))) // the meeting runs on
		w.runAt(nine.Add(30*time.Minute), u)
		w.worker.Store = w.store
		p.mu.Lock()
		p.rule = nil
		p.mu.Unlock()
		w.expect(u, manualRow(model.StatusAway), "In a meeting") // the Via landed, the DND did not
		w.runAt(nine.Add(40*time.Minute), u)                     // the dead run's claim is over
		w.expect(u, dndRow(model.StatusAway, ten.Add(30*time.Minute)), "In a meeting")
		w.runAt(ten.Add(30*time.Minute), u)
		w.expire(u)
		w.runAt(ten.Add(35*time.Minute), u)
		w.expect(u, autoRow(model.StatusAway), "") // as the user had it: automatic
	})

	scenario("a custom status write answered 502 (landed) then 429: still ours, cleared at the end", func(t *testing.T) {
		u := users(1)[0]
		p := newMMProxy(t, w.env.MattermostURL)
		var customPuts atomic.Int32
		isCustomPut := func(r *http.Request) bool {
			return r.Method == http.MethodPut && r.URL.Path == "/api/v4/users/"+u.Id+"/patch" // the custom status write
		}
		p.loseIf = func(r *http.Request) bool { return isCustomPut(r) && customPuts.Add(1) == 1 }
		p.throttleIf = isCustomPut
		w.through(p)
		w.calendar(u, event("busy", nine, ten))
		w.runAt(nine, u) // landed, then refused: the user fails, the write may have landed
		w.expect(u, dndRow(model.StatusOnline, ten), "In a meeting")
		p.mu.Lock()
		p.loseIf, p.throttleIf = nil, nil
		p.mu.Unlock()
		w.runAtWritingNothing(nine.Add(30*time.Minute), "mid-meeting (the custom status it shows is ours)", u)
		w.runAt(ten, u)
		w.expect(u, autoRow(model.StatusOnline), "")
	})

	scenario("a by-hand away survives Mattermost's expiry running first and activity setting online", func(t *testing.T) {
		u := users(1)[0]
		w.setStatus(u, model.StatusAway)
		w.calendar(u, event("busy", nine, ten))
		w.runAt(nine, u)
		w.expect(u, dndRow(model.StatusAway, ten), "In a meeting")
		w.at(ten)
		w.expire(u)                        // Mattermost's job, on the minute, before calstatus's run
		w.setStatus(u, model.StatusOnline) // then activity (online is never manual), just after ten
		if err := w.db.SetLastActivity(context.Background(), u.Id, ten.Add(20*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := mmstate.InvalidateCaches(w.admin); err != nil {
			t.Fatal(err)
		}
		w.expect(u, autoRow(model.StatusOnline), "In a meeting")
		w.runAt(ten.Add(30*time.Second), u)
		w.expect(u, manualRow(model.StatusAway), "")
	})

	scenario("a by-hand away, left for online during the meeting, is the user's choice even when calstatus sees it after the end", func(t *testing.T) {
		u := users(1)[0]
		w.setStatus(u, model.StatusAway)
		w.calendar(u, event("busy", nine, ten))
		w.runAt(nine, u)
		w.setStatus(u, model.StatusOnline) // during the meeting (the server's clock is before nine)
		w.at(ten)
		w.expire(u)
		w.run(u)
		w.expect(u, autoRow(model.StatusOnline), "")
	})

	scenario("Mattermost's expiry, then a new meeting at once: the new DND keeps the by-hand flag", func(t *testing.T) {
		u := users(1)[0]
		w.setStatus(u, model.StatusAway)
		w.calendar(u, event("busy", nine, ten), event("busy", ten.Add(5*time.Minute), eleven))
		w.runAt(nine, u)
		w.expect(u, dndRow(model.StatusAway, ten), "In a meeting")
		w.at(ten.Add(5 * time.Minute))
		w.expire(u)
		w.run(u)
		w.expect(u, dndRow(model.StatusAway, eleven), "In a meeting")
		w.runAt(eleven, u)
		w.expire(u)
		w.expect(u, manualRow(model.StatusAway), "")
	})

	scenario("automatic replies turned on while Graph answers are kept: no DND over them", func(t *testing.T) {
		u := users(1)[0]
		w.calendar(u, event("busy", nine, ten))
		orig := w.worker.Graph
		w.worker.Graph = graphMeanwhile{Graph: orig, meanwhile: func() {
			if err := w.db.SetAutoResponder(context.Background(), w.admin, u.Id, true, "On leave"); err != nil {
				t.Error(err)
			}
		}}
		defer func() {
			w.worker.Graph = orig
			_ = w.db.SetAutoResponder(context.Background(), w.admin, u.Id, false, "")
		}()
		w.runAt(nine, u)
		if !w.expect(u, manualRow(model.StatusOutOfOffice), "In a meeting").AutoResponder {
			t.Fatal("the auto-responder was turned off")
		}
	})

	scenario("our custom status is not cleared through a stale profile cache over the user's newer one", func(t *testing.T) {
		u := users(1)[0]
		w.calendar(u, event("busy", nine, ten))
		w.runAt(nine, u)
		w.expect(u, dndRow(model.StatusOnline, ten), "In a meeting")
		own := &model.CustomStatus{Emoji: "coffee", Text: "Back at 11"}
		if err := w.db.ChangedBehindProfileCache(context.Background(), w.admin, u.Id, own); err != nil {
			t.Fatal(err)
		}
		w.runAt(ten, u)
		got, err := w.db.CustomStatuses(context.Background(), []string{u.Id})
		if err != nil {
			t.Fatal(err)
		}
		if cs := got[u.Id]; cs == nil || cs.Text != own.Text {
			t.Fatalf("the user's own custom status in the database: %+v, want %q\n%s", cs, own.Text, w.logs.String())
		}
		if err := mmstate.InvalidateCaches(w.admin); err != nil {
			t.Fatal(err)
		}
		w.expect(u, autoRow(model.StatusOnline), own.Text)
	})

	scenario("a multi-day out-of-office cancelled while Mattermost reads no DND end (v6 after a restart): ended, not left for days", func(t *testing.T) {
		u := users(1)[0]
		w.calendar(u, event("oof", nine, day.Add(72*time.Hour)))
		w.runAt(nine, u)
		w.expect(u, dndRow(model.StatusOnline, day.Add(72*time.Hour)), "Out of office")
		if err := mmstate.InvalidateCaches(w.admin); err != nil { // a restart
			t.Fatal(err)
		}
		w.calendar(u) // cancelled
		w.runAt(nine.Add(time.Hour), u)
		w.expect(u, autoRow(model.StatusOnline), "")
	})

	scenario("Mattermost's expiry gives back dnd (a stale status cache as the DND was shortened): set again, the user ends away as they were", func(t *testing.T) {
		u := users(1)[0]
		ctx := context.Background()
		w.setStatus(u, model.StatusAway)
		if err := w.db.SetAutomatic(ctx, u.Id); err != nil { // away on idleness
			t.Fatal(err)
		}
		if err := mmstate.InvalidateCaches(w.admin); err != nil {
			t.Fatal(err)
		}
		w.calendar(u, event("busy", ten, eleven))
		w.runAt(ten, u)
		w.expect(u, dndRow(model.StatusAway, eleven), "In a meeting")
		w.calendar(u) // cancelled: shortened through away, given back by the expiry
		w.runAt(ten.Add(10*time.Minute), u)
		if err := w.db.KeepDNDToGiveBack(ctx, u.Id); err != nil {
			t.Fatal(err)
		}
		if err := mmstate.InvalidateCaches(w.admin); err != nil {
			t.Fatal(err)
		}
		w.expire(u)
		w.expect(u, mmstate.Row{Status: model.StatusDnd, PrevStatus: model.StatusDnd}, "") // Mattermost's doing
		w.runAt(ten.Add(11*time.Minute), u)
		w.expire(u)
		w.expect(u, autoRow(model.StatusAway), "")
		w.runAt(ten.Add(12*time.Minute), u)
		w.expect(u, autoRow(model.StatusAway), "")
	})
}
