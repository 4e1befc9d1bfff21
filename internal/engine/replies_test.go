package engine

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/calstatus/calstatus/internal/calendar"
)

// repliesText finds the text of the messages the tests use by their hash (the state keeps only it).
var repliesText = map[string]string{RepliesHash("Away until Monday"): "Away until Monday", RepliesHash("Back on the 2nd"): "Back on the 2nd"}

var (
	repliesOn    = Replies{Known: true, Text: "Away until Monday"}
	repliesOther = Replies{Known: true, Text: "Back on the 2nd"}
	repliesOff   = Replies{Known: true}
)

// checkReplies holds what the automatic replies must never do, whatever the rest.
func checkReplies(t *testing.T, in Input, d Decision, fail func(string)) {
	t.Helper()
	cur, st, r := in.Current, in.State, in.Replies
	p := in.Settings.policy(in.Policy)
	u := d.Replies
	if !r.Known && u != nil && (u.On || !in.Settings.Off(in.Now) && !p.RepliesOff && p.Only != OnlyCustom) {
		fail("changed automatic replies it could not read")
	}
	if u == nil {
		if cur.Status == OutOfOffice && d.SetStatus != nil {
			fail("wrote the status of a user on automatic replies without checking they are ours")
		}
		return
	}
	if u.On && d.SetStatus != nil {
		fail("wrote a status beside turning automatic replies on")
	}
	if u.On && u.Expect == "" {
		switch {
		case cur.Status == OutOfOffice || cur.Status == DND && st.SetStatus != DND:
			fail("turned automatic replies on over the user's own " + cur.Status)
		case !r.Known || r.Text == "" || in.Settings.Off(in.Now) || p.RepliesOff || p.Only == OnlyCustom:
			fail("turned automatic replies on where they are not wanted")
		case st.RepliesDone:
			fail("turned automatic replies on again for the same ones")
		}
		n := d.NewState
		if n.SetStatus != OutOfOffice || n.Replies != RepliesHash(u.Message) || n.PrevStatus == "" || n.PrevStatus == DND || n.PrevStatus == OutOfOffice {
			fail("turned automatic replies on without keeping what to give back")
		}
		if u.Message != ReplyFor(r.Text) {
			fail("set an automatic reply other than Outlook's")
		}
	}
	if !u.On {
		if st.SetStatus != OutOfOffice || u.Expect != st.Replies {
			fail("turned off automatic replies that were not ours")
		}
		if d.SetStatus == nil {
			fail("ended automatic replies without giving the status back")
		} else if d.NewState.SetStatus == "" && (d.SetStatus.Status != givenBackFromReplies(st.PrevStatus) || d.SetStatus.Via != "") {
			fail("gave back a status other than the user's")
		}
		if want := r.Known && r.Text != "" && !in.Settings.Off(in.Now) && !p.RepliesOff && p.Only != OnlyCustom; want {
			fail("ended automatic replies Outlook still shows")
		}
	}
	if d.RepliesTheirs.Replies != "" || d.RepliesTheirs.SetStatus == OutOfOffice || !d.RepliesTheirs.RepliesDone {
		fail("would keep holding automatic replies found to be the user's")
	}
}

// Every combination of a user's status, what calstatus holds, the calendar, Outlook's automatic
// replies and the user's settings keeps the invariants (checkInvariants, checkReplies).
func TestRepliesInvariants(t *testing.T) {
	statuses := []calendar.Status{calendar.Free, calendar.Busy, calendar.OutOfOffice, calendar.Call}
	rows := map[string]Current{"online": {Status: Online}, "away": {Status: Away}, "away manual": {Status: Away, Manual: true},
		"offline": {Status: Offline}, "user dnd": {Status: DND, Manual: true}, "our dnd": {Status: DND, Manual: true, DNDEndTime: meeting.End},
		"ooo": {Status: OutOfOffice, Manual: true}, "dnd given back by Mattermost": {Status: DND}}
	customs := map[string]*CustomStatus{"none": nil, "ours": &inMtg}
	held := func(prev string, manual bool) State {
		return State{PrevStatus: prev, PrevManual: manual, SetStatus: OutOfOffice, Replies: RepliesHash(repliesOn.Text), RepliesDone: true,
			RepliesKept: t0.Add(RepliesKeep), Until: t0.Add(RepliesKeep)}
	}
	states := map[string]State{"none": {}, "ours": ours, "pinned": {PrevStatus: Away, SetStatus: Away},
		"replies, prev away": held(Away, false), "replies, prev away manual": held(Away, true), "replies, prev online": held(Online, false),
		"replies over a meeting": func() State {
			s := held(Away, false)
			s.CustomEmoji, s.CustomText, s.CustomUntil, s.Handled = ours.CustomEmoji, ours.CustomText, ours.CustomUntil, ours.Handled
			return s
		}(),
		"replies left to the user": {RepliesDone: true, RepliesKept: t0.Add(RepliesKeep), Until: t0.Add(RepliesKeep)}}
	nows := map[string]time.Time{"mid": t0, "end": meeting.End}
	replies := map[string]Replies{"unknown": {}, "off": repliesOff, "on": repliesOn, "on, other text": repliesOther}
	settings := map[string]Settings{"none": {}, "off": {Disabled: true}, "paused": {PausedUntil: meeting.End.Add(time.Hour)},
		"replies off": {RepliesOff: true}, "custom only": {Only: OnlyCustom}, "dnd only": {Only: OnlyDND}}
	servers := map[string]Server{"v6": {}, "v10": v10}
	n := 0
	for _, cs := range statuses {
		for rname, row := range rows {
			for cname, custom := range customs {
				for sname, st := range states {
					for nname, now := range nows {
						for rpname, r := range replies {
							for setName, set := range settings {
								for srvName, srv := range servers {
									n++
									cur := row
									cur.Custom = custom
									in := Input{Now: now, Availability: av(ev(cs)), Replies: r, Current: cur, State: st,
										Policy: Policy{TentativeAsBusy: true, Server: srv}, Settings: set}
									checkInvariants(t, in, fmt.Sprintf("%s/%s/custom %s/state %s/%s/replies %s/settings %s/server %s",
										cs, rname, cname, sname, nname, rpname, setName, srvName))
								}
							}
						}
					}
				}
			}
		}
	}
	t.Logf("%d combinations checked", n)
}

// A week of automatic replies for a user who had set themselves away: Mattermost's out of office
// with Outlook's text, its text changed with Outlook's, a meeting inside left alone, and at the end
// — inside another meeting — the meeting's DND, then exactly the status the user had.
func TestAutomaticRepliesGiveBackExactly(t *testing.T) {
	sim := &mmSim{status: Away, manual: true}
	var st State
	later := meeting.End.Add(time.Hour)
	second := calendar.Event{Start: later.Add(-10 * time.Minute), End: later.Add(20 * time.Minute), Status: calendar.Busy}
	steps := []struct {
		name    string
		now     time.Time
		a       calendar.Availability
		r       Replies
		status  string
		manual  bool
		message string // "" when the auto-responder is off
		custom  string
	}{
		{"replies on", t0.Add(-time.Hour), av(), repliesOn, OutOfOffice, true, "Away until Monday", ""},
		{"unchanged", t0.Add(-55 * time.Minute), av(), repliesOn, OutOfOffice, true, "Away until Monday", ""},
		{"presence unread", t0.Add(-50 * time.Minute), av(), Replies{}, OutOfOffice, true, "Away until Monday", ""},
		{"text changed in Outlook", t0.Add(-45 * time.Minute), av(), repliesOther, OutOfOffice, true, "Back on the 2nd", ""},
		{"a meeting: no DND over ooo", t0, av(meeting), repliesOther, OutOfOffice, true, "Back on the 2nd", "In a meeting"},
		{"replies end in a meeting", later, av(second), repliesOff, DND, true, "", "In a meeting"},
		{"the meeting ends", second.End.Add(time.Minute), av(), repliesOff, Away, true, "", ""},
	}
	for _, s := range steps {
		sim.expire(s.now)
		d := Decide(Input{Now: s.now, Availability: s.a, Replies: s.r, Current: sim.current(), State: st, Policy: DefaultPolicy})
		st = sim.apply(d, s.now)
		msg := ""
		if sim.responder {
			msg = sim.message
		}
		custom := ""
		if sim.custom != nil {
			custom = sim.custom.Text
		}
		if sim.status != s.status || sim.manual != s.manual || msg != s.message || custom != s.custom {
			t.Fatalf("%s: status %s manual %v, responder %q, custom %q; want %s %v %q %q\n  %s", s.name, sim.status, sim.manual, msg, custom,
				s.status, s.manual, s.message, s.custom, show(d))
		}
		if s.status == DND && (sim.prev != Away || !sim.end.Equal(DNDEndFor(second.End))) {
			t.Fatalf("%s: DND until %s remembering %q, want until the meeting's end remembering away", s.name, sim.end, sim.prev)
		}
	}
	if st.Held() {
		t.Fatalf("state kept after everything was given back: %+v", st)
	}
}

// Automatic replies the user owns are never changed: their own auto-responder (ooo already), ours
// once they turned it off or changed its text, and ours not turned on again while Outlook's last.
func TestAutomaticRepliesTheUsersOwn(t *testing.T) {
	t.Run("their own auto-responder", func(t *testing.T) {
		sim := &mmSim{status: OutOfOffice, manual: true, responder: true, message: "gone fishing"}
		var st State
		for i, r := range []Replies{repliesOn, repliesOther, repliesOff} {
			now := t0.Add(time.Duration(i) * 5 * time.Minute)
			d := Decide(Input{Now: now, Replies: r, Current: sim.current(), State: st, Policy: DefaultPolicy})
			if d.Replies != nil || d.SetStatus != nil {
				t.Fatalf("step %d: touched the user's own auto-responder: %s", i, show(d))
			}
			st = sim.apply(d, now)
		}
	})
	t.Run("ours, turned off by the user", func(t *testing.T) {
		sim := &mmSim{status: Online}
		d := Decide(Input{Now: t0, Replies: repliesOn, Current: sim.current(), Policy: DefaultPolicy})
		st := sim.apply(d, t0)
		if !sim.responder {
			t.Fatal("not turned on")
		}
		sim.setResponder(false, sim.message) // the user, in Mattermost's settings
		for i := 1; i < 4; i++ {
			now := t0.Add(time.Duration(i) * 5 * time.Minute)
			d := Decide(Input{Now: now, Replies: repliesOn, Current: sim.current(), State: st, Policy: DefaultPolicy})
			if d.Replies != nil || d.SetStatus != nil {
				t.Fatalf("cycle %d: turned on again what the user turned off: %s", i, show(d))
			}
			st = sim.apply(d, now)
		}
		// Outlook's end, then new automatic replies: decided afresh.
		st = sim.apply(Decide(Input{Now: t0.Add(time.Hour), Replies: repliesOff, Current: sim.current(), State: st, Policy: DefaultPolicy}), t0.Add(time.Hour))
		d = Decide(Input{Now: t0.Add(2 * time.Hour), Replies: repliesOther, Current: sim.current(), State: st, Policy: DefaultPolicy})
		if d.Replies == nil || !d.Replies.On {
			t.Fatalf("new automatic replies not turned on: %s", show(d))
		}
	})
	t.Run("ours, text changed by the user", func(t *testing.T) {
		sim := &mmSim{status: Away, manual: true}
		st := sim.apply(Decide(Input{Now: t0, Replies: repliesOn, Current: sim.current(), Policy: DefaultPolicy}), t0)
		sim.message = "call me on 555" // edited in Mattermost's settings: theirs now
		d := Decide(Input{Now: t0.Add(time.Hour), Replies: repliesOff, Current: sim.current(), State: st, Policy: DefaultPolicy})
		if d.Replies == nil || d.SetStatus == nil {
			t.Fatalf("no give-back attempted: %s", show(d))
		}
		st = sim.apply(d, t0.Add(time.Hour))
		if sim.status != OutOfOffice || !sim.responder || sim.message != "call me on 555" || st.SetStatus != "" || st.Replies != "" {
			t.Fatalf("the user's edited auto-responder was changed: status %s responder %v %q, state %+v", sim.status, sim.responder, sim.message, st)
		}
	})
	t.Run("the user's setting", func(t *testing.T) {
		sim := &mmSim{status: Offline, manual: true}
		st := sim.apply(Decide(Input{Now: t0, Replies: repliesOn, Current: sim.current(), Policy: DefaultPolicy}), t0)
		d := Decide(Input{Now: t0.Add(5 * time.Minute), Replies: repliesOn, Current: sim.current(), State: st, Settings: Settings{RepliesOff: true}, Policy: DefaultPolicy})
		sim.apply(d, t0.Add(5*time.Minute))
		if sim.status != Offline || !sim.manual || sim.responder {
			t.Fatalf("replies off in the settings: status %s manual %v responder %v; want offline by hand, no responder", sim.status, sim.manual, sim.responder)
		}
	})
}

// An automatic away is given back as automatic when replies end: set on the way into a DND that
// ends at once, and Mattermost's expiry gives it back so.
func TestAutomaticRepliesGiveBackAnAutomaticStatus(t *testing.T) {
	for _, srv := range []Server{{}, v10} {
		sim := &mmSim{status: Away, cut: srv.EndsKnown}
		p := Policy{TentativeAsBusy: true, Server: srv}
		st := sim.apply(Decide(Input{Now: t0, Replies: repliesOn, Current: sim.current(), Policy: p}), t0)
		now := t0.Add(time.Hour)
		st = sim.apply(Decide(Input{Now: now, Replies: repliesOff, Current: sim.current(), State: st, Policy: p}), now)
		for i := 1; i <= 3; i++ {
			now = now.Add(srv.Expiry())
			sim.expire(now)
			st = sim.apply(Decide(Input{Now: now, Replies: repliesOff, Current: sim.current(), State: st, Policy: p}), now)
		}
		if sim.status != Away || sim.manual || sim.responder || st.Held() {
			t.Fatalf("server %+v: status %s manual %v responder %v state %+v; want away, automatic, nothing held", srv, sim.status, sim.manual, sim.responder, st)
		}
	}
}

func TestReplyFor(t *testing.T) {
	long := strings.Repeat("é", MaxReplyRunes+10)
	if got := ReplyFor(long); len([]rune(got)) != MaxReplyRunes || !strings.HasSuffix(got, "…") {
		t.Fatalf("cut to %d runes: %q", len([]rune(got)), got)
	}
	if got := ReplyFor("  Away until Monday.\n"); got != "Away until Monday." {
		t.Fatalf("%q", got)
	}
}
