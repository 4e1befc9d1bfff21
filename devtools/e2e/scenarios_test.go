package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/devtools/mmstate"
	"github.com/calstatus/calstatus/internal/calendar"
	"github.com/calstatus/calstatus/internal/engine"
	"github.com/calstatus/calstatus/internal/mattermost"
	"github.com/calstatus/calstatus/internal/shard"
	"github.com/calstatus/calstatus/internal/store"
)

// The status rules, one scenario each, against the real Mattermost server, asserting the whole
// status as the server keeps it: the status row (status, manual, and for a DND prev_status and
// dnd_end_time — the two fields Mattermost reads only while a status is dnd, in its expiry), the
// custom status, its recent ones and the auto-responder. Users 0–99 of the seeded set are used here
// (other tests take other ranges).

// Status rows the scenarios expect.
func dndRow(prev string, end time.Time) mmstate.Row {
	return mmstate.Row{Status: model.StatusDnd, Manual: true, PrevStatus: prev, DNDEndTime: end.Unix()}
}
func manualRow(status string) mmstate.Row { return mmstate.Row{Status: status, Manual: true} }
func autoRow(status string) mmstate.Row   { return mmstate.Row{Status: status} }

// calstatusEmojis are the custom statuses calstatus sets: they must never stay in a user's recents.
var calstatusEmojis = map[string]bool{engine.MeetingEmoji: true, engine.OOFEmoji: true, engine.ElsewhereEmoji: true}

// expect checks a user's whole status: the row, the custom status (by text prefix; "" for none)
// and that none of calstatus's custom statuses is among the user's recent ones.
func (w *world) expect(u *model.User, want mmstate.Row, customPrefix string) mmState {
	w.t.Helper()
	got := w.state(u)
	rowOK := rowIs(got.Row, want)
	customOK := strings.HasPrefix(got.customText(), customPrefix) && (customPrefix != "") == (got.Custom != nil)
	recentsOK := true
	for _, rc := range got.Recents {
		recentsOK = recentsOK && !calstatusEmojis[rc.Emoji]
	}
	if !rowOK || !customOK || !recentsOK {
		w.t.Fatalf("%s at %s: %s\n  want %s, custom %q…, none of ours in the recents\n%s", u.Username, w.now().Format("15:04"),
			got, want, customPrefix, w.logs.String())
	}
	return got
}

// rowIs compares a status row with the one wanted: status and manual flag, and for a DND the status
// to return to and its end.
func rowIs(r, want mmstate.Row) bool {
	return r.Status == want.Status && r.Manual == want.Manual &&
		(want.Status != model.StatusDnd || (r.PrevStatus == want.PrevStatus && r.DNDEndTime == want.DNDEndTime))
}

// setAutomatic puts users in an automatic status, as Mattermost leaves an inactive user (the API
// can only set manual ones).
func (w *world) setAutomatic(status string, users ...*model.User) {
	w.t.Helper()
	for _, u := range users {
		w.setStatus(u, status)
		if err := w.db.SetAutomatic(context.Background(), u.Id); err != nil {
			w.t.Fatal(err)
		}
	}
	if err := mmstate.InvalidateCaches(w.admin); err != nil {
		w.t.Fatal(err)
	}
}

// through runs the worker's Mattermost calls through a proxy for the rest of the test.
func (w *world) through(p *mmProxy) {
	w.t.Helper()
	orig := w.worker.Mattermost
	w.worker.Mattermost = mattermost.New(p.srv.URL, w.env.MattermostToken, nil)
	w.t.Cleanup(func() { w.worker.Mattermost = orig })
}

func TestScenarios(t *testing.T) {
	day := simDay()
	nine, ten, eleven := day.Add(9*time.Hour), day.Add(10*time.Hour), day.Add(11*time.Hour)
	w := newWorld(t, engine.DefaultPolicy)
	scenario, users := w.scenarios(t, 0, 100)

	scenario("busy: DND and 'In a meeting' until the end, then online back on time", func(t *testing.T) {
		u := users(1)[0]
		w.expect(u, autoRow(model.StatusOnline), "")
		w.calendar(u, event("busy", nine, ten))
		w.runAt(nine.Add(time.Minute), u)
		cs := w.expect(u, dndRow(model.StatusOnline, ten), "In a meeting").Custom
		if cs.Emoji != engine.MeetingEmoji || !cs.ExpiresAt.Equal(ten) {
			t.Fatalf("custom status %+v: want the calendar emoji, ending at %v", cs, ten)
		}
		w.runAt(ten, u)
		w.expect(u, autoRow(model.StatusOnline), "")
	})

	scenario("subject shown only when enabled and the event is not private", func(t *testing.T) {
		us := users(2)
		w.worker.Policy.ShowSubject = true
		defer func() { w.worker.Policy.ShowSubject = false }()
		w.calendar(us[0], event("busy", nine, ten))
		private := event("busy", nine, ten)
		private.IsPrivate = true
		w.calendar(us[1], private)
		w.runAt(nine, us...)
		w.expect(us[0], dndRow(model.StatusOnline, ten), "In a meeting: Quarterly planning")
		if got := w.expect(us[1], dndRow(model.StatusOnline, ten), "In a meeting").customText(); got != "In a meeting" {
			t.Fatalf("private meeting shows %q", got)
		}
	})

	scenario("tentative like busy, unless configured otherwise", func(t *testing.T) {
		us := users(2)
		for _, u := range us {
			w.calendar(u, event("tentative", nine, ten))
		}
		w.runAt(nine, us[0])
		w.expect(us[0], dndRow(model.StatusOnline, ten), "In a meeting")
		w.worker.Policy.TentativeAsBusy = false
		defer func() { w.worker.Policy.TentativeAsBusy = true }()
		w.run(us[1])
		w.expect(us[1], autoRow(model.StatusOnline), "")
	})

	scenario("out of office: DND and 'Out of office until <date>'", func(t *testing.T) {
		u := users(1)[0]
		w.calendar(u, event("oof", day, day.Add(48*time.Hour)))
		w.runAt(nine, u)
		if w.expect(u, dndRow(model.StatusOnline, day.Add(48*time.Hour)), "Out of office until "+day.Add(48*time.Hour).Format("Mon 2 Jan")).Custom.Emoji != engine.OOFEmoji {
			t.Fatal("out-of-office emoji missing")
		}
	})

	scenario("working elsewhere: a custom status only", func(t *testing.T) {
		u := users(1)[0]
		w.calendar(u, event("workingElsewhere", nine, eleven))
		w.runAt(ten, u)
		w.expect(u, autoRow(model.StatusOnline), "Working elsewhere")
		w.runAt(eleven, u)
		w.expect(u, autoRow(model.StatusOnline), "")
	})

	scenario("a status changed mid-meeting is not overridden, nor restored after", func(t *testing.T) {
		u := users(1)[0]
		w.calendar(u, event("busy", nine, eleven))
		w.runAt(nine, u)
		w.expect(u, dndRow(model.StatusOnline, eleven), "In a meeting")
		w.setStatus(u, model.StatusAway) // the user steps out of DND
		w.runAt(ten, u)
		w.expect(u, manualRow(model.StatusAway), "In a meeting")
		w.runAt(eleven, u)
		w.expect(u, manualRow(model.StatusAway), "")
	})

	scenario("a custom status changed mid-meeting is kept after the meeting", func(t *testing.T) {
		u := users(1)[0]
		w.calendar(u, event("busy", nine, eleven))
		w.runAt(nine, u)
		w.setCustom(u, "coffee", "Back in 5")
		w.runAt(ten, u)
		w.expect(u, dndRow(model.StatusOnline, eleven), "Back in 5")
		w.runAt(eleven, u)
		w.expect(u, autoRow(model.StatusOnline), "Back in 5")
	})

	scenario("a user already in DND is left alone and not restored", func(t *testing.T) {
		u := users(1)[0]
		w.setStatus(u, model.StatusDnd)
		w.calendar(u, event("busy", nine, ten))
		w.runAt(nine, u)
		w.expect(u, dndRow(model.StatusOnline, time.Unix(0, 0)), "In a meeting")
		w.runAt(ten, u)
		w.expect(u, dndRow(model.StatusOnline, time.Unix(0, 0)), "")
	})

	scenario("a user's own custom status is never overwritten or cleared", func(t *testing.T) {
		u := users(1)[0]
		w.setCustom(u, "airplane", "Travelling")
		w.calendar(u, event("busy", nine, ten))
		w.runAt(nine, u)
		w.expect(u, dndRow(model.StatusOnline, ten), "Travelling")
		w.runAt(ten, u)
		w.expect(u, autoRow(model.StatusOnline), "Travelling")
	})

	scenario("back to back: one DND, the custom status follows, a manual offline comes back manual", func(t *testing.T) {
		u := users(1)[0]
		w.setStatus(u, model.StatusOffline)
		handover := nine.Add(5 * time.Minute) // within the lookahead: one DND for both
		w.calendar(u, event("busy", nine, handover), event("oof", handover, eleven))
		w.runAt(nine, u)
		w.expect(u, dndRow(model.StatusOffline, eleven), "In a meeting")
		w.runAt(handover, u)
		w.expect(u, dndRow(model.StatusOffline, eleven), "Out of office until")
		w.runAt(eleven, u)
		w.expect(u, manualRow(model.StatusOffline), "")
	})

	scenario("an automatic away or offline is left to Mattermost's DND expiry, never pinned", func(t *testing.T) {
		us := users(3)
		autoAway, autoOffline, manualAway := us[0], us[1], us[2]
		w.setAutomatic(model.StatusAway, autoAway)
		w.setAutomatic(model.StatusOffline, autoOffline)
		w.setStatus(manualAway, model.StatusAway)
		for _, u := range us {
			w.calendar(u, event("busy", nine, ten))
		}
		w.runAt(nine, us...)
		w.expect(autoAway, dndRow(model.StatusAway, ten), "In a meeting")
		w.expect(autoOffline, dndRow(model.StatusOffline, ten), "In a meeting")
		w.expect(manualAway, dndRow(model.StatusAway, ten), "In a meeting")
		w.runAt(ten, us...)
		// A status set by hand comes back by hand, on time; an automatic one is not set (that would
		// pin it: activity never moves a manual status) but left to the DND's own expiry.
		w.expect(manualAway, manualRow(model.StatusAway), "")
		w.expect(autoAway, dndRow(model.StatusAway, ten), "")
		w.expect(autoOffline, dndRow(model.StatusOffline, ten), "")
		w.expire(us...)
		w.runAt(ten.Add(5*time.Minute), us...)
		w.expect(autoAway, autoRow(model.StatusAway), "")
		w.expect(autoOffline, autoRow(model.StatusOffline), "")
		w.expect(manualAway, manualRow(model.StatusAway), "")
	})

	scenario("a cancelled meeting: an automatic away comes back through a DND ended now", func(t *testing.T) {
		us := users(2)
		w.setAutomatic(model.StatusAway, us[0])
		for _, u := range us {
			w.calendar(u, event("busy", nine, eleven))
		}
		w.runAt(nine, us...)
		cancelled := nine.Add(30 * time.Minute)
		for _, u := range us {
			w.calendar(u)
		}
		w.runAt(cancelled, us...)
		w.expect(us[0], dndRow(model.StatusAway, cancelled), "")
		w.expect(us[1], autoRow(model.StatusOnline), "")
		w.expire(us[0])
		w.expect(us[0], autoRow(model.StatusAway), "")
	})

	scenario("a DND write whose answer is lost is not repeated (it would remember dnd)", func(t *testing.T) {
		u := users(1)[0]
		p := newMMProxy(t, w.env.MattermostURL)
		p.rule = func(id, status string, n int) proxyAction {
			if id == u.Id && status == model.StatusDnd && n == 1 {
				return loseAnswer
			}
			return forward
		}
		w.through(p)
		w.calendar(u, event("busy", nine, ten))
		w.runAt(nine, u)
		w.expect(u, dndRow(model.StatusOnline, ten), "In a meeting")
		if puts := p.putsOf(u.Id); len(puts) != 1 {
			t.Fatalf("status PUTs %v: want the one dnd whose answer was lost, not repeated", puts)
		}
		w.runAt(ten, u)
		w.expect(u, autoRow(model.StatusOnline), "")
	})

	scenario("a custom status whose every answer is lost is still ours: kept, then cleared when the meeting ends", func(t *testing.T) {
		u := users(1)[0]
		p := newMMProxy(t, w.env.MattermostURL)
		p.loseIf = func(r *http.Request) bool {
			return r.Method == http.MethodPut && r.URL.Path == "/api/v4/users/"+u.Id+"/patch" // the custom status write
		}
		w.through(p)
		w.calendar(u, event("busy", nine, ten))
		w.runAt(nine, u) // every attempt lands, none is answered: the run fails the user
		w.expect(u, dndRow(model.StatusOnline, ten), "In a meeting")
		p.mu.Lock()
		p.loseIf = nil
		p.mu.Unlock()
		w.runAtWritingNothing(nine.Add(30*time.Minute), "mid-meeting (the custom status it shows is ours)", u)
		w.runAt(ten, u)
		w.expect(u, autoRow(model.StatusOnline), "")
	})

	scenario("a custom status of ours the server's profile cache lost (a read raced the write) is still ours: kept, cleared at the end", func(t *testing.T) {
		u := users(1)[0]
		w.calendar(u, event("busy", nine, ten))
		w.runAt(nine, u)
		w.expect(u, dndRow(model.StatusOnline, ten), "In a meeting")
		if err := w.db.StaleProfileCache(context.Background(), w.admin, u.Id); err != nil {
			t.Fatal(err)
		}
		w.runAtWritingNothing(nine.Add(30*time.Minute), "mid-meeting (the custom status it shows is ours)", u)
		w.runAt(ten, u) // the caches were cleared: the DND's end reads 0, so Mattermost ends it
		w.expire(u)
		w.runAt(ten.Add(5*time.Minute), u)
		w.expect(u, autoRow(model.StatusOnline), "")
	})

	scenario("a Mattermost restart mid-meeting: our DND is still ours, given back exactly", func(t *testing.T) {
		us := users(3)
		online, manualAway, userDND := us[0], us[1], us[2]
		w.setStatus(manualAway, model.StatusAway)
		for _, u := range us {
			w.calendar(u, event("busy", nine, ten))
		}
		w.runAt(nine, us...)
		// The restart: the server's status cache is gone, so its bulk read shows dnd_end_time 0.
		if err := mmstate.InvalidateCaches(w.admin); err != nil {
			t.Fatal(err)
		}
		w.setStatus(userDND, model.StatusDnd) // and one user picks DND "don't clear" themselves
		w.runAtWritingNothing(nine.Add(30*time.Minute), "mid-meeting after the restart", us...)
		w.runAt(ten, us...)
		if w.server.EndsKnown {
			// A server that reads the end after a restart (about v10.6 on): given back on time.
			w.expect(online, autoRow(model.StatusOnline), "")
			w.expect(manualAway, manualRow(model.StatusAway), "")
		} else {
			w.expect(online, dndRow(model.StatusOnline, ten), "") // the end unknown: Mattermost ends it
		}
		w.expire(us...)
		w.runAt(ten.Add(5*time.Minute), us...)
		w.expect(online, autoRow(model.StatusOnline), "")
		w.expect(manualAway, manualRow(model.StatusAway), "") // set again by hand, as the user had it
		w.runAt(ten.Add(w.server.Grace()+5*time.Minute), us...)
		w.expect(userDND, dndRow(model.StatusDnd, time.Unix(0, 0)), "") // theirs: never fought
	})

	scenario("a state write that fails after one partition committed: those users are applied, the retry does the rest", func(t *testing.T) {
		us := usersInPartitions(t, w, 2, 2)
		for _, u := range us {
			w.calendar(u, event("busy", nine, ten))
		}
		w.at(nine)
		msg := w.message(us...)
		failing := &partitionFailingStore{Store: w.store, fail: store.Partition(us[len(us)-1].Id)}
		w.worker.Store = failing
		_, err := w.worker.Process(context.Background(), discard(), msg, 1)
		w.worker.Store = w.store
		if err == nil {
			t.Fatal("the shard succeeded although a partition's state write failed")
		}
		for _, u := range us {
			if store.Partition(u.Id) == failing.fail {
				w.expect(u, autoRow(model.StatusOnline), "")
			} else {
				w.expect(u, dndRow(model.StatusOnline, ten), "In a meeting")
			}
		}
		// The queue redelivers: the rest are applied, the others untouched.
		writes := w.mm.Writes.Load()
		if _, err := w.worker.Process(context.Background(), discard(), msg, 2); err != nil {
			t.Fatal(err)
		}
		if n := w.mm.Writes.Load() - writes; n != 2*2 {
			t.Fatalf("%d Mattermost writes on the retry: want 2 users × (status, custom status)", n)
		}
		for _, u := range us {
			w.expect(u, dndRow(model.StatusOnline, ten), "In a meeting")
		}
		w.runAt(ten, us...)
		for _, u := range us {
			w.expect(u, autoRow(model.StatusOnline), "")
		}
	})

	scenario("two or three concurrent deliveries of one shard at a meeting's start and end apply it once (20 times)", func(t *testing.T) {
		us := usersInPartitions(t, w, 3, 2)
		for _, u := range us {
			w.calendar(u, event("busy", nine, ten))
		}
		for rep := 0; rep < 20; rep++ {
			deliveries := 2 + rep%2
			w.at(nine)
			if n := w.deliverConcurrently(w.message(us...), deliveries); n != int64(2*len(us)) {
				t.Fatalf("round %d, start, %d deliveries: %d Mattermost writes for %d users: want each applied once\n%s", rep, deliveries, n, len(us), w.logs.String())
			}
			for _, u := range us {
				w.expect(u, dndRow(model.StatusOnline, ten), "In a meeting")
			}
			w.at(ten)
			// Given back once: online set and our custom status cleared (2 writes) — or, where
			// Mattermost read the DND without its end (a status cache miss), only the custom status
			// cleared and online left to Mattermost's expiry, which gives it back exactly too.
			n := w.deliverConcurrently(w.message(us...), deliveries)
			if n > int64(2*len(us)) || n < int64(len(us)) {
				t.Fatalf("round %d, end, %d deliveries: %d Mattermost writes for %d users: want each given back once\n%s", rep, deliveries, n, len(us), w.logs.String())
			}
			if n != int64(2*len(us)) {
				t.Logf("round %d, end: %d writes for %d users (some give-backs left to Mattermost's expiry)\n%s", rep, n, len(us), w.logs.String())
			}
			w.expire(us...)                        // Mattermost's DND expiry at the end time
			w.runAt(ten.Add(5*time.Minute), us...) // the next cycle: nothing left held
			for _, u := range us {
				w.expect(u, autoRow(model.StatusOnline), "")
			}
		}
	})

	scenario("a run that died between claiming and applying: its claim is completed, a live one left alone", func(t *testing.T) {
		us := users(2)
		for _, u := range us {
			w.calendar(u, event("busy", nine, ten))
		}
		items := []calendar.Event{{Start: nine, End: ten, Status: calendar.Busy}}
		d := engine.Decide(engine.Input{Now: nine, Availability: calendar.NewAvailability("", items),
			Current: engine.Current{Status: engine.Online}, Policy: engine.DefaultPolicy})
		claims := []store.StateChange{
			{UserID: us[0].Id, New: d.NewState, Claim: &engine.Claim{Owner: "crashed", Until: nine.Add(-time.Second)}},
			{UserID: us[1].Id, New: d.NewState, Claim: &engine.Claim{Owner: "still running", Until: nine.Add(5 * time.Minute)}},
		}
		if _, err := w.store.SaveStates(context.Background(), claims); err != nil {
			t.Fatal(err)
		}
		w.runAt(nine.Add(time.Minute), us...)
		w.expect(us[0], dndRow(model.StatusOnline, ten), "In a meeting")
		w.expect(us[1], autoRow(model.StatusOnline), "") // its run applies it
	})

	scenario("a working-elsewhere day interrupted by a meeting: what the user removed stays removed", func(t *testing.T) {
		us := users(2)
		for _, u := range us {
			w.calendar(u, event("workingElsewhere", nine, day.Add(17*time.Hour)), event("busy", ten, eleven))
		}
		w.runAt(nine, us...)
		w.expect(us[0], autoRow(model.StatusOnline), "Working elsewhere")
		if _, err := w.admin.RemoveUserCustomStatus(us[0].Id); err != nil {
			t.Fatal(err)
		}
		w.runAt(nine.Add(30*time.Minute), us...)
		w.runAt(ten, us...)
		for _, u := range us {
			w.expect(u, dndRow(model.StatusOnline, eleven), "In a meeting")
		}
		w.runAt(eleven, us...)
		w.expect(us[0], autoRow(model.StatusOnline), "")
		w.expect(us[1], autoRow(model.StatusOnline), "Working elsewhere")
	})

	scenario("a second meeting entering the lookahead extends our DND, without a second message", func(t *testing.T) {
		u := users(1)[0]
		w.worker.Policy.Notify = true
		defer func() { w.worker.Policy.Notify = false }()
		since := time.Now().Add(-time.Second)
		w.calendar(u, event("busy", nine, ten))
		w.runAt(nine, u)
		w.calendar(u, event("busy", nine, ten), event("busy", ten, eleven))
		w.runAt(ten.Add(-5*time.Minute), u)
		w.expect(u, dndRow(model.StatusOnline, eleven), "In a meeting")
		w.runAt(ten, u)
		w.expect(u, dndRow(model.StatusOnline, eleven), "In a meeting")
		if n := w.directMessages(u, since, "Do Not Disturb until"); n != 1 {
			t.Fatalf("%d messages about DND: want one for the run of meetings", n)
		}
		w.runAt(eleven, u)
		w.expect(u, autoRow(model.StatusOnline), "")
	})

	scenario("a mailbox that shows only its availability view: a user who left DND is not put back", func(t *testing.T) {
		u := users(1)[0]
		w.hidden[strings.ToLower(u.Email)] = true
		w.calendar(u, event("busy", nine, eleven))
		w.runAt(nine, u)
		w.expect(u, dndRow(model.StatusOnline, nine.Add(10*time.Minute+engine.ViewMargin)), "In a meeting")
		w.setStatus(u, model.StatusOnline)
		for _, at := range []time.Time{nine.Add(5 * time.Minute), nine.Add(10 * time.Minute), nine.Add(15 * time.Minute)} {
			w.runAt(at, u)
			w.expect(u, autoRow(model.StatusOnline), "In a meeting")
		}
		w.runAt(eleven, u)
		w.expect(u, autoRow(model.StatusOnline), "")
	})

	scenario("a user on automatic replies keeps them: status ooo never touched", func(t *testing.T) {
		u := users(1)[0]
		if err := w.db.SetAutoResponder(context.Background(), w.admin, u.Id, true, "On leave"); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = w.db.SetAutoResponder(context.Background(), w.admin, u.Id, false, "") }()
		w.calendar(u, event("busy", nine, ten))
		w.runAt(nine, u)
		if !w.expect(u, manualRow(model.StatusOutOfOffice), "In a meeting").AutoResponder {
			t.Fatal("the auto-responder was turned off")
		}
		w.runAt(ten, u)
		if !w.expect(u, manualRow(model.StatusOutOfOffice), "").AutoResponder {
			t.Fatal("the auto-responder was turned off")
		}
	})

	scenario("custom statuses disabled: the DND set is remembered and given back", func(t *testing.T) {
		u := users(1)[0]
		w.setCustomStatuses(false)
		w.calendar(u, event("busy", nine, ten))
		rep := w.runAt(nine, u)
		if rep.Failures["mattermost"] != 1 {
			t.Fatalf("report %+v: want the custom status failure counted", rep)
		}
		w.expect(u, dndRow(model.StatusOnline, ten), "")
		w.runAt(nine.Add(5*time.Minute), u)
		w.setCustomStatuses(true)
		w.runAt(ten, u)
		w.expect(u, autoRow(model.StatusOnline), "")
	})

	scenario("an extension that half fails (the status on the way set, the DND refused) is finished next run", func(t *testing.T) {
		u := users(1)[0]
		w.setAutomatic(model.StatusAway, u)
		w.calendar(u, event("busy", nine, ten))
		w.runAt(nine, u)
		p := newMMProxy(t, w.env.MattermostURL)
		p.rule = func(id, status string, n int) proxyAction {
			if id == u.Id && status == model.StatusDnd {
				return refuse
			}
			return forward
		}
		w.through(p)
		w.calendar(u, event("busy", nine, ten), event("busy", ten, eleven))
		w.runAt(ten.Add(-5*time.Minute), u)
		w.expect(u, manualRow(model.StatusAway), "In a meeting") // on the way, pinned for now
		p.rule = nil
		w.runAt(ten, u)
		w.expect(u, dndRow(model.StatusAway, eleven), "In a meeting")
		w.runAt(eleven, u)
		w.expire(u)
		w.expect(u, autoRow(model.StatusAway), "")
	})

	scenario("a malformed schedule item: the user is not fetched, so not given back mid-meeting", func(t *testing.T) {
		u := users(1)[0]
		w.calendar(u, event("busy", nine, eleven))
		w.runAt(nine, u)
		if err := w.sim.UpdateFaults(func(f *graphsim.Faults) { f.MalformedItemAddresses = []string{strings.ToLower(u.Email)} }); err != nil {
			t.Fatal(err)
		}
		rep := w.runAt(ten, u)
		if err := w.sim.UpdateFaults(func(f *graphsim.Faults) { f.MalformedItemAddresses = nil }); err != nil {
			t.Fatal(err)
		}
		if rep.Failures["malformed"] != 1 {
			t.Fatalf("report %+v: want the user failed as malformed", rep)
		}
		w.expect(u, dndRow(model.StatusOnline, eleven), "In a meeting")
	})

	scenario("calstatus's custom statuses stay out of the user's recent ones, even a full five", func(t *testing.T) {
		u := users(1)[0]
		own := []string{"Coffee break", "Focus time", "Lunch", "Commuting", "Out sick"}
		for _, text := range own {
			w.setCustom(u, "coffee", text) // Mattermost keeps the last five, newest first
		}
		w.setCustom(u, "headphones", "Deep work") // the user's own, shown now
		w.clearCustom(u)
		before := w.state(u)
		if len(before.Recents) != 5 {
			t.Fatalf("recents before %+v: want five", before.Recents)
		}
		w.worker.Policy.ShowSubject = true
		defer func() { w.worker.Policy.ShowSubject = false }()
		w.calendar(u, event("busy", nine, ten))
		w.runAt(nine, u)
		got := w.expect(u, dndRow(model.StatusOnline, ten), "In a meeting: Quarterly planning")
		// PUT …/status/custom would have filed ours first and dropped the user's oldest ("Lunch":
		// five kept, newest first), which no removal afterwards gives back.
		if !sameRecents(got.Recents, before.Recents) {
			t.Fatalf("recents %+v: want the user's own five as they were, %+v", got.Recents, before.Recents)
		}
		w.runAt(ten, u)
		got = w.expect(u, autoRow(model.StatusOnline), "")
		if !sameRecents(got.Recents, before.Recents) {
			t.Fatalf("recents after the meeting %+v: want %+v", got.Recents, before.Recents)
		}
	})

	scenario("a shard where nothing changed costs 2 reads and no writes", func(t *testing.T) {
		us := users(20)
		for i, u := range us {
			if i%2 == 0 {
				w.calendar(u, event("busy", nine, ten))
			}
		}
		w.runAt(nine, us...)
		w.at(nine.Add(5 * time.Minute))
		r0, wr0, sw0 := w.mm.Reads.Load(), w.mm.Writes.Load(), w.store.Writes.Load()
		rep := w.run(us...)
		reads, writes, stateWrites := w.mm.Reads.Load()-r0, w.mm.Writes.Load()-wr0, w.store.Writes.Load()-sw0
		report(t, "unchanged shard of %d users: %d Mattermost reads, %d Mattermost writes, %d state table writes", len(us), reads, writes, stateWrites)
		if reads > 2 || writes != 0 || stateWrites != 0 || rep.Changed != 0 {
			t.Fatalf("unchanged shard: %d reads, %d writes, %d state writes, %d changed", reads, writes, stateWrites, rep.Changed)
		}
	})

	scenario("notifications: the user is told what changed", func(t *testing.T) {
		u := users(1)[0]
		w.worker.Policy.Notify = true
		defer func() { w.worker.Policy.Notify = false }()
		since := time.Now().Add(-time.Second)
		w.calendar(u, event("busy", nine, ten))
		w.runAt(nine, u)
		if w.directMessages(u, since, "Do Not Disturb until") != 1 {
			t.Fatal("no direct message about the change")
		}
	})

	scenario("transitions before the next cycle are scheduled at their time", func(t *testing.T) {
		u := users(1)[0]
		start := nine.Add(2*time.Minute + 30*time.Second)
		w.calendar(u, event("busy", start, start.Add(time.Minute)))
		rec := &recordingScheduler{}
		w.worker.Transitions = rec
		defer func() { w.worker.Transitions = nil }()
		w.runAt(nine, u)
		w.expect(u, autoRow(model.StatusOnline), "")
		if len(rec.msgs) != 2 || !rec.msgs[0].ApplyAt.Equal(start) || rec.delays[0] != start.Sub(nine) ||
			!rec.msgs[1].ApplyAt.Equal(start.Add(time.Minute)) {
			t.Fatalf("scheduled %+v with delays %v; want the start and the end", rec.msgs, rec.delays)
		}
		// The transition message, delivered at its time, applies the meeting.
		w.at(start)
		if _, err := w.worker.Process(context.Background(), discard(), rec.msgs[0], 1); err != nil {
			t.Fatal(err)
		}
		w.expect(u, dndRow(model.StatusOnline, engine.DNDEndFor(start.Add(time.Minute))), "In a meeting") // 09:03:30 → 09:04
	})

	reviewScenarios(w, scenario, users, day)
}

// usersInPartitions picks per users from each of n user-state partitions among seeded users
// 100–399 (the simulated day's, which it puts back in a known state when it runs).
func usersInPartitions(t *testing.T, w *world, n, per int) []*model.User {
	t.Helper()
	byPartition := map[string][]*model.User{}
	var out []*model.User
	for _, u := range w.seeded(100, 300) {
		p := store.Partition(u.Id)
		if byPartition[p] = append(byPartition[p], u); len(byPartition[p]) == per {
			if out = append(out, byPartition[p]...); len(out) == n*per {
				return out
			}
		}
	}
	t.Fatalf("fewer than %d partitions with %d users among 300", n, per)
	return nil
}

// deliverConcurrently delivers msg n times at once, then redelivers the failed ones one after
// another as the queue would (dequeue count 2, 3, …) until every delivery succeeded; it returns
// the Mattermost writes made.
func (w *world) deliverConcurrently(msg shard.Message, n int) int64 {
	w.t.Helper()
	writes := w.mm.Writes.Load()
	w.logs.Reset()
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &w.logs}, nil))
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = w.worker.Process(context.Background(), log.With("delivery", i), msg, 1)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		for attempt := 2; err != nil; attempt++ {
			if !errors.Is(err, store.ErrConflict) || attempt > 5 {
				w.t.Fatalf("delivery %d: %v", i, err)
			}
			_, err = w.worker.Process(context.Background(), log.With("delivery", i), msg, attempt)
		}
	}
	return w.mm.Writes.Load() - writes
}

// lockedWriter lets concurrent runs share one log.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// partitionFailingStore is the real store whose user-state writes fail for one partition, after
// the others committed (Table Storage commits partitions one transaction at a time).
type partitionFailingStore struct {
	*store.Store
	fail string
}

func (s *partitionFailingStore) SaveStates(ctx context.Context, changes []store.StateChange) (map[string]bool, error) {
	var ok []store.StateChange
	for _, c := range changes {
		if store.Partition(c.UserID) != s.fail {
			ok = append(ok, c)
		}
	}
	saved, err := s.Store.SaveStates(ctx, ok)
	return saved, errors.Join(err, fmt.Errorf("table storage: writing user state (partition %s): 503 ServerBusy", s.fail))
}

// setCustomStatuses turns Mattermost's custom statuses on or off.
func (w *world) setCustomStatuses(on bool) {
	w.t.Helper()
	if _, _, err := w.admin.PatchConfig(&model.Config{TeamSettings: model.TeamSettings{EnableCustomUserStatuses: model.NewBool(on)}}); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() {
		_, _, _ = w.admin.PatchConfig(&model.Config{TeamSettings: model.TeamSettings{EnableCustomUserStatuses: model.NewBool(true)}})
	})
}

// directMessages counts the direct messages from the token's account to u containing text, sent
// since (the seeded users and their channels outlive a test run).
func (w *world) directMessages(u *model.User, since time.Time, text string) int {
	w.t.Helper()
	me, _, err := w.admin.GetMe("")
	if err != nil {
		w.t.Fatal(err)
	}
	ch, _, err := w.admin.CreateDirectChannel(me.Id, u.Id)
	if err != nil {
		w.t.Fatal(err)
	}
	posts, _, err := w.admin.GetPostsForChannel(ch.Id, 0, 50, "", false)
	if err != nil {
		w.t.Fatal(err)
	}
	n := 0
	for _, p := range posts.Posts {
		if p.CreateAt >= since.UnixMilli() && strings.Contains(p.Message, text) {
			n++
		}
	}
	return n
}

type recordingScheduler struct {
	mu     sync.Mutex
	msgs   []shard.Message
	delays []time.Duration
}

func (r *recordingScheduler) SendLater(_ context.Context, v any, delay time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, v.(shard.Message))
	r.delays = append(r.delays, delay)
	return nil
}

// sameRecents reports whether two lists of recent custom statuses show the same, in order.
func sameRecents(a, b []model.CustomStatus) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Emoji != b[i].Emoji || a[i].Text != b[i].Text {
			return false
		}
	}
	return true
}
