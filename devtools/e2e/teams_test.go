package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/devtools/mmstate"
	"github.com/calstatus/calstatus/internal/engine"
	"github.com/calstatus/calstatus/internal/graph"
	"github.com/calstatus/calstatus/internal/store"
)

// presenceRoles are the application permissions PRESENCE_SYNC asks for.
var presenceRoles = []string{"Calendars.ReadBasic.All", "Presence.Read.All", "User.Read.All"}

// presenceWorld is a world with Teams calls synced (PRESENCE_SYNC): the Graph simulator answers
// presence as of the world's clock, with the given app roles granted.
func presenceWorld(t *testing.T, roles []string) *world {
	t.Helper()
	var w *world
	w = newWorldWith(t, engine.DefaultPolicy, graphsim.Config{Roles: roles, PresenceNow: func() time.Time { return w.now() }})
	gc, ok := w.worker.Graph.(*graph.Client)
	if !ok {
		t.Fatalf("the world's Graph is %T", w.worker.Graph)
	}
	w.worker.Presence, w.worker.Calls = gc, true
	return w
}

func call(activity string, start, end time.Time) graphsim.PresenceWindow {
	return graphsim.PresenceWindow{Start: start, End: end, Activity: activity}
}

// callEnd is the DND end calstatus sets for a call seen at t: two cycles and the margin on.
func callEnd(t time.Time) time.Time {
	return engine.DNDEndFor(t.Add(2*5*time.Minute + engine.PresenceMargin))
}

// TestTeamsCalls runs Teams calls and presentations against the real Mattermost server, every
// five minutes as the timer does, checking the whole status each time.
func TestTeamsCalls(t *testing.T) {
	day := simDay()
	nine, ten := day.Add(9*time.Hour), day.Add(10*time.Hour)
	w := presenceWorld(t, presenceRoles)
	scenario, users := w.scenarios(t, 0, 100)

	scenario("a call with nothing on the calendar: DND while it lasts, renewed every other cycle, given back at its end", func(t *testing.T) {
		u := users(1)[0]
		w.inTeams(u, call("InACall", nine, nine.Add(22*time.Minute)))
		at := nine.Add(time.Minute)
		w.runAt(at, u)
		cs := w.expect(u, dndRow(model.StatusOnline, callEnd(at)), "In a call").Custom
		if cs.Emoji != engine.CallEmoji {
			t.Fatalf("custom status %+v: want the telephone", cs)
		}
		w.runAtWritingNothing(at.Add(5*time.Minute), "in the call's second cycle", u)
		w.runAt(at.Add(10*time.Minute), u)
		w.expect(u, dndRow(model.StatusOnline, callEnd(at.Add(10*time.Minute))), "In a call")
		w.runAtWritingNothing(at.Add(15*time.Minute), "in the call's fourth cycle", u)
		w.runAt(at.Add(25*time.Minute), u) // the call ended at 9:22
		w.expect(u, autoRow(model.StatusOnline), "")
	})

	scenario("a call calstatus stops seeing is ended by Mattermost's own expiry", func(t *testing.T) {
		u := users(1)[0]
		w.setStatus(u, model.StatusAway)
		w.inTeams(u, call("InAConferenceCall", nine, ten))
		at := nine.Add(time.Minute)
		w.runAt(at, u)
		w.expect(u, dndRow(model.StatusAway, callEnd(at)), "In a call")
		// calstatus stops: nothing renews the DND; Mattermost ends it at its end, giving back away
		// as automatic (calstatus, running, would set it by hand again).
		w.at(callEnd(at))
		w.expire(u)
		w.expect(u, autoRow(model.StatusAway), "In a call")
	})

	scenario("a call running past a meeting's end: DND through, the custom status the meeting's, then the call's", func(t *testing.T) {
		u := users(1)[0]
		w.calendar(u, event("busy", nine, ten))
		w.inTeams(u, call("InACall", ten.Add(-10*time.Minute), ten.Add(20*time.Minute)))
		w.runAt(nine.Add(time.Minute), u)
		w.expect(u, dndRow(model.StatusOnline, ten), "In a meeting")
		at := ten.Add(-5 * time.Minute)
		w.runAt(at, u)
		w.expect(u, dndRow(model.StatusOnline, callEnd(at)), "In a meeting")
		w.runAt(ten, u) // the next cycle: the meeting over, the call's DND not due for renewal yet
		w.expect(u, dndRow(model.StatusOnline, callEnd(at)), "In a call")
		w.runAt(ten.Add(21*time.Minute), u)
		w.expect(u, autoRow(model.StatusOnline), "")
	})

	scenario("presenting: DND and 'Presenting'", func(t *testing.T) {
		u := users(1)[0]
		w.setStatus(u, model.StatusDnd) // the user's own DND, no end: never written over
		w.inTeams(u, call("Presenting", nine, ten))
		w.runAt(nine.Add(time.Minute), u)
		w.expect(u, mmstate.Row{Status: model.StatusDnd, Manual: true, PrevStatus: model.StatusOnline}, "Presenting")
		v := users(1)[0]
		w.inTeams(v, call("Presenting", nine, ten))
		w.runAt(nine.Add(time.Minute), v)
		if cs := w.expect(v, dndRow(model.StatusOnline, callEnd(nine.Add(time.Minute))), "Presenting").Custom; cs.Emoji != engine.PresentingEmoji {
			t.Fatalf("custom status %+v: want %s", cs, engine.PresentingEmoji)
		}
	})

	scenario("a user who leaves the DND of a call is left alone until it ends", func(t *testing.T) {
		u := users(1)[0]
		w.inTeams(u, call("InACall", nine, ten), call("InACall", ten.Add(10*time.Minute), ten.Add(30*time.Minute)))
		w.runAt(nine.Add(time.Minute), u)
		w.setStatus(u, model.StatusOnline)
		for _, at := range []time.Duration{6, 11, 16, 21} { // the custom status is still renewed
			w.runAt(nine.Add(at*time.Minute), u)
			w.expect(u, autoRow(model.StatusOnline), "In a call")
		}
		w.runAt(ten.Add(5*time.Minute), u) // between the calls: ours cleared
		w.expect(u, autoRow(model.StatusOnline), "")
		w.runAt(ten.Add(11*time.Minute), u) // a new call
		w.expect(u, dndRow(model.StatusOnline, callEnd(ten.Add(11*time.Minute))), "In a call")
	})

	scenario("a call's DND where ends read unknown (caches purged): left to Mattermost's expiry, not set again", func(t *testing.T) {
		// Mattermost's caches purged before every cycle (as the day's expiry does). A server from
		// about v10.6 still reads the DND's end: it is renewed through the call, and a user who
		// leaves it is left alone. v6.7.2 then reads no end: the DND is not renewed (it may be the
		// user's), Mattermost's expiry ends it, and as that cannot be told from the user leaving it
		// just before, it is not set again for this call.
		u := users(1)[0]
		w.inTeams(u, call("Presenting", nine.Add(10*time.Minute), nine.Add(55*time.Minute)))
		cycle := func(m time.Duration) {
			w.at(nine.Add(m * time.Minute))
			w.expire(u)
			if err := mmstate.InvalidateCaches(w.admin); err != nil {
				t.Fatal(err)
			}
			w.run(u)
		}
		for m := time.Duration(10); m <= 35; m += 5 {
			cycle(m)
			if m >= 25 && !w.server.EndsKnown { // 09:23, the first DND's end, has passed
				w.expect(u, autoRow(model.StatusOnline), "Presenting")
				continue
			}
			w.expect(u, mmstate.Row{Status: model.StatusDnd, Manual: true, PrevStatus: model.StatusOnline, DNDEndTime: w.state(u).Row.DNDEndTime}, "Presenting")
		}
		w.setStatus(u, model.StatusOnline)
		cycle(40)
		w.expect(u, autoRow(model.StatusOnline), "Presenting")
	})

	scenario("a user who turned calls off in /calstatus settings", func(t *testing.T) {
		u := users(1)[0]
		if err := w.store.SaveSettings(context.Background(), u.Id, store.UserSettings{CallsOff: true}); err != nil {
			t.Fatal(err)
		}
		w.inTeams(u, call("InACall", nine, ten))
		w.runAtWritingNothing(nine.Add(time.Minute), "for a user who turned calls off", u)
		w.expect(u, autoRow(model.StatusOnline), "")
	})

	scenario("object ids are looked up once: the next cycle makes one presence call and no lookup", func(t *testing.T) {
		us := users(3)
		w.runAt(nine, us...)
		before := w.sim.Stats()
		rep := w.runAt(nine.Add(5*time.Minute), us...)
		after := w.sim.Stats()
		if rep.PresenceCalls != 1 || after.UserQueries != before.UserQueries || after.PresenceCalls != before.PresenceCalls+1 {
			t.Fatalf("second cycle: %d presence calls reported; simulator: user queries %d → %d, presence calls %d → %d",
				rep.PresenceCalls, before.UserQueries, after.UserQueries, before.PresenceCalls, after.PresenceCalls)
		}
	})
}

// Without the presence permissions the calendar is synced all the same, and the shard's report
// says what is missing.
func TestTeamsCallsWithoutThePermission(t *testing.T) {
	day := simDay()
	nine, ten := day.Add(9*time.Hour), day.Add(10*time.Hour)
	w := presenceWorld(t, []string{"Calendars.ReadBasic.All"})
	us := w.seeded(100, 2)
	w.calendar(us[0], event("busy", nine, ten))
	w.inTeams(us[1], call("InACall", nine, ten))
	rep := w.runAt(nine.Add(time.Minute), us...)
	w.expect(us[0], dndRow(model.StatusOnline, ten), "In a meeting")
	w.expect(us[1], autoRow(model.StatusOnline), "")
	if rep.PresenceFailures["forbidden"] != 2 || rep.Failed != 0 {
		t.Fatalf("report %+v: want both users' presence forbidden, no user failed", rep)
	}
}
