package engine

import (
	"fmt"
	"strings"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/calstatus/calstatus/internal/calendar"
)

var (
	berlin  = mustLoad("Europe/Berlin")
	newYork = mustLoad("America/New_York")
	t0      = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	meeting = calendar.Event{Start: t0.Add(-10 * time.Minute), End: t0.Add(20 * time.Minute), Status: calendar.Busy, Subject: "Planning"}
	oof     = calendar.Event{Start: t0.Add(20 * time.Minute), End: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), Status: calendar.OutOfOffice}
	inMtg   = CustomStatus{Emoji: MeetingEmoji, Text: "In a meeting", ExpiresAt: meeting.End}
	mine    = &CustomStatus{Emoji: "coffee", Text: "lunch"}
)

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

func av(evs ...calendar.Event) calendar.Availability { return calendar.NewAvailability("u@x", evs) }

func ev(s calendar.Status) calendar.Event {
	if s == calendar.Call { // as Teams presence read at the meeting's start shows it
		return calendar.Event{Start: meeting.Start, End: meeting.End, Status: s, FromPresence: true}
	}
	return calendar.Event{Start: meeting.Start, End: meeting.End, Status: s, Subject: "Planning"}
}

func handled(evs ...calendar.Event) string {
	return marks(nil).add(evs, DefaultPolicy, false, false).String()
}

// ours is the state after calstatus handled the meeting for a user who was automatically away.
var ours = State{PrevStatus: Away, SetStatus: DND, DNDEnd: meeting.End, CustomEmoji: MeetingEmoji, CustomText: "In a meeting",
	CustomUntil: meeting.End, Handled: handled(meeting), Until: meeting.End}

// ourDND is Mattermost showing the DND we set for the meeting.
var ourDND = Current{Status: DND, Manual: true, DNDEndTime: meeting.End, Custom: &inMtg}

func TestDecide(t *testing.T) {
	after := meeting.End.Add(time.Minute)
	manualAway := ours
	manualAway.PrevManual = true
	wentOnline := ours
	wentOnline.PrevStatus = Online
	tests := []struct {
		name string
		in   Input
		want Decision // Reason and Notify are not compared
	}{
		{name: "free, nothing held", in: Input{Now: t0, Current: Current{Status: Online}}},
		{name: "busy → dnd until end + In a meeting, remembering an automatic away",
			in: Input{Now: t0, Availability: av(meeting), Current: Current{Status: Away}},
			want: Decision{SetStatus: &StatusUpdate{Status: DND, DNDEndTime: meeting.End}, SetCustom: &inMtg, SaveState: true,
				NewState: ours}},
		{name: "busy: a manual away is remembered as manual",
			in: Input{Now: t0, Availability: av(meeting), Current: Current{Status: Away, Manual: true}},
			want: Decision{SetStatus: &StatusUpdate{Status: DND, DNDEndTime: meeting.End}, SetCustom: &inMtg, SaveState: true,
				NewState: manualAway}},
		{name: "private meeting never shows its subject",
			in: Input{Now: t0, Availability: av(calendar.Event{Start: meeting.Start, End: meeting.End, Status: calendar.Busy, Subject: "Secret", Private: true}),
				Current: Current{Status: Away}, Policy: Policy{ShowSubject: true}},
			want: Decision{SetStatus: &StatusUpdate{Status: DND, DNDEndTime: meeting.End}, SetCustom: &inMtg, SaveState: true,
				NewState: State{PrevStatus: Away, SetStatus: DND, DNDEnd: meeting.End, CustomEmoji: MeetingEmoji, CustomText: "In a meeting",
					CustomUntil: meeting.End, Handled: handled(calendar.Event{Start: meeting.Start, End: meeting.End, Status: calendar.Busy}), Until: meeting.End}}},
		{name: "tentative ignored when configured",
			in: Input{Now: t0, Availability: av(ev(calendar.Tentative)), Current: Current{Status: Away}, Policy: Policy{Location: time.UTC}}},
		{name: "working elsewhere → custom status only",
			in: Input{Now: t0, Availability: av(ev(calendar.WorkingElsewhere)), Current: Current{Status: Online}},
			want: Decision{SetCustom: &CustomStatus{Emoji: ElsewhereEmoji, Text: "Working elsewhere", ExpiresAt: meeting.End}, SaveState: true,
				NewState: State{CustomEmoji: ElsewhereEmoji, CustomText: "Working elsewhere", CustomUntil: meeting.End,
					Handled: handled(ev(calendar.WorkingElsewhere)), Until: meeting.End}}},
		{name: "already handled: nothing",
			in: Input{Now: t0, Availability: av(meeting), Current: ourDND, State: ours}},
		{name: "after a cache miss our DND reads without end: still ours, nothing written",
			in: Input{Now: t0, Availability: av(meeting), Current: Current{Status: DND, Manual: true, Custom: &inMtg}, State: ours}},
		{name: "user overrode status mid-meeting: not touched again, and theirs from now on",
			in: Input{Now: t0, Availability: av(meeting), Current: Current{Status: Online, Custom: &inMtg}, State: ours},
			want: Decision{SaveState: true, NewState: State{CustomEmoji: MeetingEmoji, CustomText: "In a meeting", CustomUntil: meeting.End,
				Handled: marks(nil).add([]calendar.Event{meeting}, DefaultPolicy, true, false).String(), Until: meeting.End}}},
		{name: "user already dnd on their own: status left, custom set, the meeting marked as theirs",
			in: Input{Now: t0, Availability: av(meeting), Current: Current{Status: DND, Manual: true}},
			want: Decision{SetCustom: &inMtg, SaveState: true,
				NewState: State{CustomEmoji: MeetingEmoji, CustomText: "In a meeting", CustomUntil: meeting.End,
					Handled: marks(nil).add([]calendar.Event{meeting}, DefaultPolicy, true, false).String(), Until: meeting.End}}},
		{name: "automatic replies (ooo): status never touched",
			in: Input{Now: t0, Availability: av(meeting), Current: Current{Status: OutOfOffice, Manual: true}},
			want: Decision{SetCustom: &inMtg, SaveState: true,
				NewState: State{CustomEmoji: MeetingEmoji, CustomText: "In a meeting", CustomUntil: meeting.End,
					Handled: marks(nil).add([]calendar.Event{meeting}, DefaultPolicy, true, false).String(), Until: meeting.End}}},
		{name: "user's own custom status stays",
			in: Input{Now: t0, Availability: av(meeting), Current: Current{Status: Online, Custom: mine}},
			want: Decision{SetStatus: &StatusUpdate{Status: DND, DNDEndTime: meeting.End}, SaveState: true,
				NewState: State{PrevStatus: Online, SetStatus: DND, DNDEnd: meeting.End,
					Handled: marks(nil).add([]calendar.Event{meeting}, DefaultPolicy, false, true).String(), Until: meeting.End}}},
		{name: "end: an automatic away is left to Mattermost's DND expiry (no write, still watched)",
			in: Input{Now: meeting.End, Current: ourDND, State: ours},
			want: Decision{ClearCustom: true, SaveState: true,
				NewState: State{PrevStatus: Away, SetStatus: DND, DNDEnd: meeting.End, Until: meeting.End}}},
		{name: "after Mattermost's expiry gave the automatic away back: forgotten",
			in:   Input{Now: after, Current: Current{Status: Away}, State: State{PrevStatus: Away, SetStatus: DND, DNDEnd: meeting.End}},
			want: Decision{SaveState: true}},
		{name: "end: online is given back exactly, on time",
			in:   Input{Now: meeting.End, Current: ourDND, State: wentOnline},
			want: Decision{SetStatus: &StatusUpdate{Status: Online}, ClearCustom: true, SaveState: true}},
		{name: "end: a manual away is given back exactly (manual), on time",
			in:   Input{Now: meeting.End, Current: ourDND, State: manualAway},
			want: Decision{SetStatus: &StatusUpdate{Status: Away}, ClearCustom: true, SaveState: true}},
		{name: "early end (cancelled): an automatic away is given back by shortening our DND through it, watched until Mattermost's expiry has",
			in: Input{Now: t0, Current: ourDND, State: ours},
			want: Decision{SetStatus: &StatusUpdate{Via: Away, Status: DND, DNDEndTime: t0}, ClearCustom: true, SaveState: true,
				NewState: State{PrevStatus: Away, SetStatus: DND, DNDEnd: t0, Until: t0}}},
		{name: "early end with an unknown DND end: no write over a DND that may be the user's",
			in: Input{Now: t0, Current: Current{Status: DND, Manual: true, Custom: &inMtg}, State: wentOnline},
			want: Decision{ClearCustom: true, SaveState: true,
				NewState: State{PrevStatus: Online, SetStatus: DND, DNDEnd: meeting.End, Until: meeting.End}}},
		{name: "unknown DND end still showing long after ours ended: the user's",
			in:   Input{Now: meeting.End.Add(Server{}.Grace()), Current: Current{Status: DND, Manual: true}, State: State{PrevStatus: Online, SetStatus: DND, DNDEnd: meeting.End}},
			want: Decision{SaveState: true}},
		{name: "expiry ended a DND whose end we could not read: a manual previous status is set again",
			in:   Input{Now: after, Current: Current{Status: Away}, State: State{PrevStatus: Away, PrevManual: true, SetStatus: DND, DNDEnd: meeting.End}},
			want: Decision{SetStatus: &StatusUpdate{Status: Away}, SaveState: true}},
		{name: "expiry gave a manual away back as automatic, then Mattermost restarted (offline): set again",
			in:   Input{Now: after, Current: Current{Status: Offline}, State: State{PrevStatus: Away, PrevManual: true, SetStatus: DND, DNDEnd: meeting.End}},
			want: Decision{SetStatus: &StatusUpdate{Status: Away}, SaveState: true}},
		{name: "expiry gave an automatic away back, then offline: forgotten (it was automatic anyway)",
			in:   Input{Now: after, Current: Current{Status: Offline}, State: State{PrevStatus: Away, SetStatus: DND, DNDEnd: meeting.End}},
			want: Decision{SaveState: true}},
		{name: "pinned (a DND change half done): DND set without going through it again",
			in: Input{Now: t0, Availability: av(meeting), Current: Current{Status: Away, Manual: true, Custom: &inMtg},
				State: State{PrevStatus: Away, SetStatus: Away, CustomEmoji: MeetingEmoji, CustomText: "In a meeting", CustomUntil: meeting.End}},
			want: Decision{SetStatus: &StatusUpdate{Status: DND, DNDEndTime: meeting.End}, SaveState: true, NewState: ours}},
		{name: "off: our DND over an automatic away is shortened through it, our custom status cleared, only the DND kept till it ends",
			in: Input{Now: t0, Availability: av(meeting), Current: ourDND, State: ours, Settings: Settings{Disabled: true}},
			want: Decision{SetStatus: &StatusUpdate{Via: Away, Status: DND, DNDEndTime: t0}, ClearCustom: true, SaveState: true,
				NewState: State{PrevStatus: Away, SetStatus: DND, DNDEnd: t0, Until: t0}}},
		{name: "off, nothing held: nothing imposed",
			in: Input{Now: t0, Availability: av(meeting), Current: Current{Status: Online}, Settings: Settings{Disabled: true}}},
		{name: "paused: online given back exactly, custom status cleared, as at the event's end",
			in:   Input{Now: t0, Availability: av(meeting), Current: ourDND, State: wentOnline, Settings: Settings{PausedUntil: t0.Add(2 * time.Hour)}},
			want: Decision{SetStatus: &StatusUpdate{Status: Online}, ClearCustom: true, SaveState: true}},
		{name: "paused with a DND end Mattermost forgot: no write over it, our custom status cleared",
			in: Input{Now: t0, Availability: av(meeting), Current: Current{Status: DND, Manual: true, Custom: &inMtg}, State: wentOnline,
				Settings: Settings{PausedUntil: t0.Add(time.Hour)}},
			want: Decision{ClearCustom: true, SaveState: true, NewState: State{PrevStatus: Online, SetStatus: DND, DNDEnd: meeting.End, Until: meeting.End}}},
		{name: "a pause that is over: the rules apply again",
			in: Input{Now: t0, Availability: av(meeting), Current: Current{Status: Away}, Settings: Settings{PausedUntil: t0}},
			want: Decision{SetStatus: &StatusUpdate{Status: DND, DNDEndTime: meeting.End}, SetCustom: &inMtg, SaveState: true,
				NewState: ours}},
		{name: "the user's own time zone dates the out-of-office status (New York, not the organisation's Berlin)",
			in: Input{Now: oof.Start, Availability: av(oof), Current: Current{Status: Online}, Settings: Settings{Location: newYork},
				Policy: Policy{TentativeAsBusy: true, Location: berlin}},
			want: Decision{SetStatus: &StatusUpdate{Status: DND, DNDEndTime: oof.End},
				SetCustom: &CustomStatus{Emoji: OOFEmoji, Text: "Out of office until Tue 24 Nov", ExpiresAt: oof.End}, SaveState: true,
				NewState: State{PrevStatus: Online, SetStatus: DND, DNDEnd: oof.End, CustomEmoji: OOFEmoji, CustomText: "Out of office until Tue 24 Nov",
					CustomUntil: oof.End, Handled: handled(oof), Until: oof.End}}},
		{name: "pinned automatic away after the event: unpinned through a DND that Mattermost ends at once",
			in:   Input{Now: after, Current: Current{Status: Away, Manual: true}, State: State{PrevStatus: Away, SetStatus: Away}},
			want: Decision{SetStatus: &StatusUpdate{Status: DND, DNDEndTime: after}, SaveState: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in.Policy == (Policy{}) {
				tc.in.Policy = DefaultPolicy
			}
			got := Decide(tc.in)
			got.Reason, got.Notify = "", ""
			if show(got) != show(tc.want) {
				t.Fatalf("got  %s\nwant %s", show(got), show(tc.want))
			}
		})
	}
}

func show(d Decision) string {
	s := "save=false"
	if d.SaveState {
		s = fmt.Sprintf("save=true state=%+v", d.NewState)
	}
	if d.SetStatus != nil {
		s += fmt.Sprintf(" status=%+v", *d.SetStatus)
	}
	if d.SetCustom != nil {
		s += fmt.Sprintf(" custom=%+v", *d.SetCustom)
	}
	if d.ClearCustom {
		s += " clear-custom"
	}
	return s
}

func TestExtensionGoesThroughThePreviousStatus(t *testing.T) {
	// A second meeting enters the lookahead while we hold DND for the first: the DND is extended,
	// through the status to give back, so Mattermost never remembers "dnd"; no second message.
	next := calendar.Event{Start: meeting.End, End: meeting.End.Add(time.Hour), Status: calendar.Busy}
	in := Input{Now: t0, Availability: av(meeting, next), Current: ourDND, State: ours, Policy: Policy{TentativeAsBusy: true, Notify: true}}
	d := Decide(in)
	if d.SetStatus == nil || d.SetStatus.Via != Away || d.SetStatus.Status != DND || !d.SetStatus.DNDEndTime.Equal(next.End) || d.Notify != "" {
		t.Fatalf("want DND extended through away to %v without a message: %s notify=%q", next.End, show(d), d.Notify)
	}
	// When the second meeting starts, it is new but nothing needs doing (the custom status follows).
	in.Now, in.State, in.Current = next.Start, d.NewState, Current{Status: DND, Manual: true, DNDEndTime: next.End, Custom: &inMtg}
	d = Decide(in)
	if d.SetStatus != nil || d.SetCustom == nil || !d.SetCustom.ExpiresAt.Equal(next.End) {
		t.Fatalf("at the second meeting: %s", show(d))
	}
}

func TestInterruptedWorkingElsewhere(t *testing.T) {
	// Working elsewhere all day, a meeting in the middle: the working-elsewhere custom status the
	// user removed does not come back after the meeting; one they kept does.
	day := calendar.Event{Start: t0.Add(-time.Hour), End: t0.Add(6 * time.Hour), Status: calendar.WorkingElsewhere}
	mtg := calendar.Event{Start: t0.Add(time.Hour), End: t0.Add(2 * time.Hour), Status: calendar.Busy}
	a := av(day, mtg)
	for _, removed := range []bool{true, false} {
		sim := &mmSim{status: Online}
		var st State
		step := func(now time.Time) Decision {
			d := Decide(Input{Now: now, Availability: a, Current: sim.current(), State: st, Policy: DefaultPolicy})
			sim.apply(d, now)
			st = d.NewState
			return d
		}
		step(t0)
		if sim.custom == nil || sim.custom.Emoji != ElsewhereEmoji {
			t.Fatalf("working elsewhere not shown: %+v", sim.custom)
		}
		if removed {
			sim.custom = nil
			step(t0.Add(30 * time.Minute))
		}
		step(mtg.Start)
		if sim.status != DND || sim.custom == nil || sim.custom.Emoji != MeetingEmoji {
			t.Fatalf("meeting not applied (removed=%v): %s %+v", removed, sim.status, sim.custom)
		}
		step(mtg.End)
		sim.expire(mtg.End)
		step(mtg.End.Add(5 * time.Minute))
		if got := sim.custom != nil && sim.custom.Emoji == ElsewhereEmoji; got == removed {
			t.Fatalf("after the meeting (removed=%v): custom %+v", removed, sim.custom)
		}
		if sim.status != Online || sim.manual {
			t.Fatalf("after the meeting: %s manual=%v, want online", sim.status, sim.manual)
		}
	}
}

func TestViewOnlyPeriodsAreStable(t *testing.T) {
	// A mailbox that hides its items: periods come from the view and start at the window start,
	// which moves every cycle. A user who leaves our DND is not put back next cycle.
	sim := &mmSim{status: Online}
	var st State
	for i := 0; i < 4; i++ {
		now := t0.Add(time.Duration(i) * 5 * time.Minute)
		a := calendar.NewAvailability("u@x", []calendar.Event{{Start: now, End: now.Add(10 * time.Minute), Status: calendar.Busy, FromView: true}})
		d := Decide(Input{Now: now, Availability: a, Current: sim.current(), State: st, Policy: DefaultPolicy})
		if i >= 2 && d.Changes() {
			t.Fatalf("cycle %d: acted again after the user left DND: %s", i, show(d))
		}
		sim.apply(d, now)
		st = d.NewState
		if i == 0 && sim.status != DND {
			t.Fatalf("view busy not applied: %s", sim.status)
		}
		if i == 1 {
			sim.set(Online)
		}
	}
}

// TestInvariants runs every combination of calendar, Mattermost status row, custom status, stored
// state, time and policy, applies each decision the way Mattermost v6.7.2 would, and checks the
// rules that must hold whatever the case.
func TestInvariants(t *testing.T) {
	statuses := []calendar.Status{calendar.Free, calendar.Busy, calendar.Tentative, calendar.OutOfOffice, calendar.WorkingElsewhere, calendar.Call}
	type row struct {
		name string
		cur  Current
	}
	rows := []row{
		{"online", Current{Status: Online}}, {"away", Current{Status: Away}}, {"away manual", Current{Status: Away, Manual: true}},
		{"offline", Current{Status: Offline}}, {"offline manual", Current{Status: Offline, Manual: true}},
		{"user dnd", Current{Status: DND, Manual: true}}, {"user timed dnd", Current{Status: DND, Manual: true, DNDEndTime: t0.Add(3 * time.Hour)}},
		{"our dnd", Current{Status: DND, Manual: true, DNDEndTime: meeting.End}}, {"ooo", Current{Status: OutOfOffice, Manual: true}},
		{"dnd given back by Mattermost", Current{Status: DND}},
	}
	customs := map[string]*CustomStatus{"none": nil, "ours": &inMtg, "user's": mine}
	pinned := State{PrevStatus: Away, SetStatus: Away}
	overridden := ours
	overridden.PrevStatus, overridden.SetStatus, overridden.DNDEnd = "", "", time.Time{}
	overridden.Handled = marks(nil).add([]calendar.Event{meeting}, DefaultPolicy, true, true).String()
	states := map[string]State{"none": {}, "ours": ours, "ours, prev online": func() State { s := ours; s.PrevStatus = Online; return s }(),
		"ours, prev manual": func() State { s := ours; s.PrevManual = true; return s }(), "pinned": pinned, "overridden": overridden,
		"ours for a call": func() State {
			s := ours
			s.CustomEmoji, s.CustomText, s.Handled = CallEmoji, "In a call", handled(ev(calendar.Call))
			return s
		}()}
	nows := map[string]time.Time{"mid": t0, "end": meeting.End, "late": meeting.End.Add(Server{}.Grace())}
	settings := map[string]Settings{"none": {}, "off": {Disabled: true}, "paused": {PausedUntil: meeting.End.Add(time.Hour)},
		"pause over": {PausedUntil: t0.Add(-time.Minute)}, "pause ends at the meeting's end": {PausedUntil: meeting.End},
		"in Berlin": {Location: berlin}, "in Berlin, paused": {Location: berlin, PausedUntil: meeting.End.Add(time.Hour)},
		"off and paused": {Disabled: true, PausedUntil: meeting.End.Add(time.Hour)},
		"dnd only":       {Only: OnlyDND}, "custom only": {Only: OnlyCustom}, "custom only, in Berlin": {Only: OnlyCustom, Location: berlin},
		"calls off": {CallsOff: true}}
	// Each server profile (see Server), and meetings ending on the minute or not (Graph keeps the
	// seconds of an event's end; Mattermost from about v10.6 cuts a DND end to the minute).
	servers := map[string]Server{"v6": {}, "v10": v10, "v10, custom statuses off": {ExpiryEvery: time.Minute, EndsKnown: true, CustomOff: true}}
	ends := map[string]time.Duration{"on the minute": 0, "with seconds": 25 * time.Second}
	n := 0
	for _, cs := range statuses {
		for _, r := range rows {
			for cname, custom := range customs {
				for sname, st := range states {
					for nname, now := range nows {
						for _, tentBusy := range []bool{true, false} {
							for setName, set := range settings {
								for srvName, srv := range servers {
									for endName, extra := range ends {
										n++
										e := ev(cs)
										e.End = e.End.Add(extra)
										cur := r.cur
										cur.Custom = custom
										in := Input{Now: now, Availability: av(e), Current: cur, State: st,
											Policy: Policy{TentativeAsBusy: tentBusy, Server: srv}, Settings: set}
										where := fmt.Sprintf("%s ending %s/%s/custom %s/state %s/%s/tentative-busy %v/settings %s/server %s",
											cs, endName, r.name, cname, sname, nname, tentBusy, setName, srvName)
										checkInvariants(t, in, where)
									}
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

// v10 is a Mattermost server from about v10.6: DND ends cut to the minute, expiry every minute,
// ends always read.
var v10 = Server{ExpiryEvery: time.Minute, EndsKnown: true}

func checkInvariants(t *testing.T, in Input, where string) {
	t.Helper()
	d := Decide(in)
	cur, st := in.Current, in.State
	fail := func(what string) { t.Fatalf("%s: %s\n  decision %s", what, where, show(d)) }
	curCustom := cur.Custom
	if curCustom != nil && !curCustom.ExpiresAt.IsZero() && !curCustom.ExpiresAt.After(in.Now) && !ownsCustom(st, cur) {
		curCustom = nil // expired: clients no longer show it, so it is no one's
	}
	if d.SetCustom != nil && in.Policy.Server.CustomOff {
		fail("set a custom status on a server with custom statuses turned off")
	}
	if s := d.SetStatus; s != nil {
		// Automatic replies are never turned off, and dnd is never set on top of dnd.
		if cur.Status == OutOfOffice && !(st.SetStatus == OutOfOffice && d.Replies != nil && !d.Replies.On) {
			fail("changed the status of a user on automatic replies not checked to be ours")
		}
		if cur.Status == OutOfOffice && s.Status == DND && s.Via == "" {
			fail("set dnd on ooo (Mattermost would remember ooo as the status to return to)")
		}
		if cur.Status == DND && s.Status == DND && s.Via == "" {
			fail("set dnd on top of dnd (Mattermost would remember dnd as the status to return to)")
		}
		// A DND whose end we cannot read may be the user's: never written over (on a server that
		// always reads ends, a DND without one is the user's). One no one set by hand (every DND
		// set is manual) is what Mattermost's expiry left: not the user's.
		if cur.Status == DND && cur.Manual && cur.DNDEndTime.IsZero() && !(st.SetStatus == DND && !st.DNDEnd.Before(in.Now.Add(UnknownEndBound))) {
			fail("wrote over a DND with an unknown end")
		}
		// A status is only set by hand (away/offline → manual) where the user had it by hand.
		for _, set := range []string{s.Via, s.Status} {
			if (set == Away || set == Offline) && !(st.PrevStatus == set && (st.PrevManual || s.Status == DND)) {
				fail("set " + set + " by hand where the user did not have it so")
			}
		}
		// A DND end is sent on the whole minute, never before the end it is for.
		if s.Status == DND && (s.DNDEndTime.Truncate(DNDMinute) != s.DNDEndTime) {
			fail("sent a DND end that is not on the whole minute")
		}
		if s.Status == DND && s.DNDEndTime.After(in.Now) {
			if e := in.Availability.At(in.Now); e.End.After(s.DNDEndTime) {
				fail("sent a DND end before the event's end")
			}
		}
		// Whatever we set, we remember how to give it back.
		if s.Status == DND && s.DNDEndTime.After(in.Now) && (d.NewState.SetStatus != DND || d.NewState.PrevStatus == "" ||
			d.NewState.PrevStatus == DND || !d.NewState.DNDEnd.Equal(s.DNDEndTime)) {
			fail("set DND without keeping the previous status")
		}
	}
	// What the user overrode (or decided for themselves) is never imposed again.
	if st.SetStatus == "" && d.SetStatus != nil &&
		!parseMarks(st.Handled).pruned(in.Availability, in.Now, in.Settings.policy(in.Policy)).mayImpose(in.Availability.ItemsAt(in.Now), in.Policy, true) {
		fail("imposed a status the user overrode")
	}
	// A user's own custom status is never overwritten or cleared.
	ours := st.CustomText != "" && curCustom != nil && curCustom.Text == st.CustomText
	if curCustom != nil && !ours && (d.SetCustom != nil || d.ClearCustom) {
		fail("touched the user's own custom status")
	}
	if d.SetCustom != nil && d.NewState.CustomText != d.SetCustom.Text {
		fail("set a custom status without remembering it")
	}
	// Users who turned calstatus off or paused it get nothing imposed and end with nothing held but
	// a DND Mattermost is still to end (what is held is given back exactly as at an event's end).
	if in.Settings.Off(in.Now) {
		if d.NewState.Handled != "" || d.NewState.CustomText != "" || d.SetCustom != nil {
			fail("kept state or imposed a custom status for a user who turned calstatus off or paused it")
		}
		if s := d.SetStatus; s != nil && s.Status == DND && s.DNDEndTime.After(in.Now) {
			fail("set a DND for a user who turned calstatus off or paused it")
		}
		if d.NewState.SetStatus != "" && (d.NewState.SetStatus != DND || st.SetStatus != DND) &&
			!(st.SetStatus == OutOfOffice && d.NewState.SetStatus == DND && !d.NewState.DNDEnd.After(in.Now)) { // replies given back
			fail("holds a status for a user who turned calstatus off or paused it")
		}
		if st.SetStatus == DND && d.NewState.SetStatus == DND && cur.Status == DND && !cur.DNDEndTime.IsZero() &&
			(st.PrevStatus == Online || st.PrevManual) {
			fail("did not give back an exact status at once for a user who turned calstatus off or paused it")
		}
	}
	// A user who keeps only one part of calstatus gets nothing of the other imposed.
	if in.Settings.Only == OnlyDND && d.SetCustom != nil {
		fail("set a custom status for a user who keeps only DND")
	}
	// A user who turned calls off gets nothing imposed for one.
	if e := in.Availability.At(in.Now); in.Settings.CallsOff && e.Status == calendar.Call &&
		(d.SetCustom != nil || d.SetStatus != nil && d.SetStatus.Status == DND && d.SetStatus.DNDEndTime.After(in.Now)) {
		fail("imposed a call's status or custom status on a user who turned calls off")
	}
	// A call's DND reaches no further than its item (two cycles and the margin past the read): if
	// calstatus stops, Mattermost's expiry ends it.
	if e := in.Availability.At(in.Now); e.FromPresence && d.SetStatus != nil && d.SetStatus.DNDEndTime.After(DNDEndFor(e.End)) {
		fail("set a call's DND past its item")
	}
	if s := d.SetStatus; in.Settings.Only == OnlyCustom && s != nil && s.Status == DND && s.DNDEndTime.After(in.Now) {
		fail("set a DND for a user who keeps only the custom status")
	}
	// Dates and times shown are in the user's own time zone when they have one.
	if d.SetCustom != nil && in.Settings.Location != nil && in.Settings.Location != time.UTC && strings.Contains(d.SetCustom.Text, "UTC") {
		fail("a time in UTC for a user with their own time zone")
	}
	// The same decision, whatever the time zone, but for the dates it shows.
	if in.Settings.Location != nil {
		utc := in
		utc.Settings.Location = nil
		du := Decide(utc)
		d2 := d
		du.Reason, du.Notify, d2.Reason, d2.Notify = "", "", "", ""
		if du.SetCustom != nil && d2.SetCustom != nil {
			c := *du.SetCustom
			c.Text = d2.SetCustom.Text
			du.SetCustom = &c
			du.NewState.CustomText = d2.NewState.CustomText
		}
		if show(du) != show(d2) {
			fail("the time zone changed the decision: in UTC " + show(du))
		}
	}
	checkReplies(t, in, d, fail)
	// Applying the decision and deciding again at the same time changes nothing (quiet).
	sim := &mmSim{status: cur.Status, manual: cur.Manual, end: cur.DNDEndTime, custom: curCustom, cut: in.Policy.Server.EndsKnown}
	if cur.Status == OutOfOffice {
		sim.responder, sim.message = true, "theirs"
		if st.SetStatus == OutOfOffice {
			sim.message = repliesText[st.Replies]
		}
	}
	stored := sim.apply(d, in.Now)
	again := in
	again.Current, again.State = sim.current(), stored
	if d2 := Decide(again); d2.Changes() || d2.SaveState {
		fail("not stable: deciding again gives " + show(d2))
	}
	// Nothing is lost: what we hold we can give back — once the calendar is free, giving back
	// ends with the user's previous status (manual flag included) or leaves it to Mattermost.
	if d.NewState.SetStatus == DND && d.NewState.PrevStatus == "" {
		fail("holds DND without a status to give back")
	}
}

// mmSim is a Mattermost status row, changed the way v6.7.2's API and DND expiry change it; with
// cut, as from about v10.6 (a DND end stored cut to the minute).
type mmSim struct {
	status, prev string
	manual       bool
	end          time.Time
	custom       *CustomStatus
	cut          bool
	// responder and message are the user's auto-responder (notify props).
	responder bool
	message   string
}

func (m *mmSim) current() Current {
	return Current{Status: m.status, Manual: m.manual, DNDEndTime: m.end, Custom: m.custom}
}

// set is PUT /users/{id}/status: on ooo, it turns the auto-responder off first (the status stays
// ooo until set, so a dnd set so remembers ooo).
func (m *mmSim) set(status string) {
	if m.status == OutOfOffice && status != OutOfOffice {
		m.responder = false
	}
	if status == DND {
		m.setDND(time.Time{})
		return
	}
	m.status, m.manual = status, status != Online
}

// setResponder is a patch of the notify props: turned on, ooo by hand (the rest of the row as it
// was); turned off, online.
func (m *mmSim) setResponder(on bool, message string) {
	was := m.responder
	m.responder, m.message = on, message
	switch {
	case on && !was:
		m.status, m.manual = OutOfOffice, true
	case !on && was:
		m.status, m.manual = Online, false
	}
}

func (m *mmSim) setDND(end time.Time) {
	if m.status == OutOfOffice {
		m.responder = false
	}
	if m.cut {
		end = end.Truncate(time.Minute)
	}
	m.prev, m.status, m.manual, m.end = m.status, DND, true, end
}

// apply makes d's changes and returns the state to store: d's, or, where the auto-responder to
// change is no longer ours, the user's (Theirs) with nothing changed.
func (m *mmSim) apply(d Decision, now time.Time) State {
	if u := d.Replies; u != nil {
		if !u.Ours(m.responder, m.message) {
			return d.RepliesTheirs
		}
		if u.On {
			m.setResponder(true, u.Message)
		}
	}
	if s := d.SetStatus; s != nil {
		if s.Via != "" {
			m.set(s.Via)
		}
		if s.Status == DND {
			m.setDND(s.DNDEndTime)
		} else {
			m.set(s.Status)
		}
	}
	if d.SetCustom != nil {
		c := *d.SetCustom
		m.custom = &c
	}
	if d.ClearCustom {
		m.custom = nil
	}
	return d.NewState
}

// expire is Mattermost's DND expiry job.
func (m *mmSim) expire(now time.Time) {
	if m.status == DND && !m.end.IsZero() && !m.end.After(now) {
		m.status, m.prev, m.end, m.manual = m.prev, DND, time.Time{}, false
	}
}

func TestADayOfTransitionsGivesBackExactly(t *testing.T) {
	// For each way a user can be before a meeting, run the meeting through (start, middle, end,
	// Mattermost's expiry, next cycle) and check the row afterwards is exactly what they had.
	for _, before := range []Current{{Status: Online}, {Status: Away}, {Status: Away, Manual: true}, {Status: Offline}, {Status: Offline, Manual: true}} {
		for _, cancelled := range []bool{false, true} {
			name := fmt.Sprintf("%s manual=%v cancelled=%v", before.Status, before.Manual, cancelled)
			sim := &mmSim{status: before.Status, manual: before.Manual}
			var st State
			cal := av(meeting)
			steps := []time.Time{meeting.Start, t0, meeting.End, meeting.End.Add(5 * time.Minute), meeting.End.Add(10 * time.Minute)}
			for i, now := range steps {
				if cancelled && i == 1 {
					cal = av()
				}
				d := Decide(Input{Now: now, Availability: cal, Current: sim.current(), State: st, Policy: DefaultPolicy})
				sim.apply(d, now)
				st = d.NewState
				sim.expire(now)
				if i == 0 && (sim.status != DND || sim.prev != before.Status) {
					t.Fatalf("%s: at the start %+v", name, sim)
				}
			}
			if sim.status != before.Status || sim.manual != before.Manual || sim.custom != nil || st.Held() {
				t.Fatalf("%s: after the meeting %+v (state %+v), want %s manual=%v and nothing held", name, sim, st, before.Status, before.Manual)
			}
		}
	}
}

func TestAppliedKeepsWhatWasDone(t *testing.T) {
	in := Input{Now: t0, Availability: av(meeting), Current: Current{Status: Away}, Policy: DefaultPolicy}
	d := Decide(in)
	// DND set, custom status refused (custom statuses disabled): we hold the DND, not the custom status.
	s := Applied(State{}, d, Result{Status: true})
	if s.SetStatus != DND || s.CustomText != "" || s.Handled != "" {
		t.Fatalf("status done, custom failed: %+v", s)
	}
	// Nothing done: as before.
	if s := Applied(State{}, d, Result{}); s.Held() {
		t.Fatalf("nothing done: %+v", s)
	}
	// An extension whose via was set but not its DND: the previous status is pinned, to be given back.
	next := calendar.Event{Start: meeting.End, End: meeting.End.Add(time.Hour), Status: calendar.Busy}
	d = Decide(Input{Now: t0, Availability: av(meeting, next), Current: ourDND, State: ours, Policy: DefaultPolicy})
	s = Applied(ours, d, Result{Via: true, Custom: true})
	if s.SetStatus != Away || s.PrevStatus != Away || !s.DNDEnd.IsZero() {
		t.Fatalf("via done, dnd failed: %+v", s)
	}
	d2 := Decide(Input{Now: t0, Availability: av(meeting, next), Current: Current{Status: Away, Manual: true, Custom: &inMtg}, State: s, Policy: DefaultPolicy})
	if d2.SetStatus == nil || d2.SetStatus.Via != "" || d2.SetStatus.Status != DND {
		t.Fatalf("the next run must finish the DND without going through away again: %s", show(d2))
	}
}

func TestResolveClaim(t *testing.T) {
	prev := State{}
	d := Decide(Input{Now: t0, Availability: av(meeting), Current: Current{Status: Online}, Policy: DefaultPolicy})
	c := Claim{Owner: "run-1", Until: t0.Add(time.Minute), Prev: prev}
	// Applied before its owner died: the claim stands.
	applied := Current{Status: DND, Manual: true, DNDEndTime: meeting.End, Custom: &inMtg}
	if got := Resolve(d.NewState, c, applied, t0, Server{}); got != d.NewState {
		t.Fatalf("applied claim: %+v", got)
	}
	// Never applied: decide again from the state before, which applies it — not read as the user's choice.
	got := Resolve(d.NewState, c, Current{Status: Online}, t0, Server{})
	if got != prev {
		t.Fatalf("unapplied claim: %+v", got)
	}
	if again := Decide(Input{Now: t0, Availability: av(meeting), Current: Current{Status: Online}, State: got, Policy: DefaultPolicy}); again.SetStatus == nil {
		t.Fatalf("an unapplied claim must be completed: %s", show(again))
	}

	// Applied, and Mattermost's expiry ended the DND before anyone resolved the claim (its owner
	// died, the table was down): the custom status is still ours, cleared with nothing held after.
	away := Decide(Input{Now: t0, Availability: av(meeting), Current: Current{Status: Away}, Policy: DefaultPolicy})
	c.Prev = State{}
	later := meeting.End.Add(5 * time.Minute)
	expired := Current{Status: Away, Custom: &inMtg}
	got = Resolve(away.NewState, c, expired, later, Server{})
	if got != away.NewState {
		t.Fatalf("applied claim whose DND expired: %+v", got)
	}
	after := Decide(Input{Now: later, Availability: av(meeting), Current: expired, State: got, Policy: DefaultPolicy})
	if !after.ClearCustom || after.SetStatus != nil || after.NewState.Held() {
		t.Fatalf("after the meeting the custom status we set must be cleared, the status left: %s (state %+v)", show(after), after.NewState)
	}

	// The status applied, the custom status not (the owner died between the two): the DND is ours,
	// the item is decided again, and the custom status is set.
	halfway := Current{Status: DND, Manual: true, DNDEndTime: meeting.End}
	got = Resolve(away.NewState, c, halfway, t0, Server{})
	if got.SetStatus != DND || got.PrevStatus != Away || got.CustomText != "" || got.Handled != "" {
		t.Fatalf("half-applied claim: %+v", got)
	}
	if again := Decide(Input{Now: t0, Availability: av(meeting), Current: halfway, State: got, Policy: DefaultPolicy}); again.SetStatus != nil || again.SetCustom == nil {
		t.Fatalf("a half-applied claim must be completed, the DND left: %s", show(again))
	}

	// A claim to give everything back, applied: nothing is read as the user's change.
	back := Claim{Owner: "run-2", Until: later, Prev: away.NewState}
	gone := Current{Status: Away}
	if got := Resolve(State{}, back, gone, later, Server{}); got.Held() {
		t.Fatalf("applied give-back: %+v", got)
	}
	// Not applied: the DND and custom status are still ours to give back.
	if got := Resolve(State{}, back, ourDND, t0, Server{}); got != away.NewState {
		t.Fatalf("unapplied give-back: %+v", got)
	}

	// A give-back of a status the user had set by hand, its answer lost as Mattermost restarted:
	// the DND ended by Mattermost (its expiry; the restart's offline) is not the by-hand status set
	// again. Still ours to set (not forgotten, leaving the user offline for good).
	byHand := State{PrevStatus: Away, PrevManual: true, SetStatus: DND, DNDEnd: meeting.End, Until: meeting.End}
	lost := Claim{Owner: "run-3", Until: later, Prev: byHand}
	for _, shown := range []Current{{Status: Offline}, {Status: Away}} {
		got := Resolve(State{}, lost, shown, later, Server{})
		if got != byHand {
			t.Fatalf("give-back by hand, lost, Mattermost showing %s: resolved to %+v", shown.Status, got)
		}
		again := Decide(Input{Now: later, Availability: av(meeting), Current: shown, State: got, Policy: DefaultPolicy})
		if again.SetStatus == nil || again.SetStatus.Status != Away || again.NewState.Held() {
			t.Fatalf("give-back by hand, lost, Mattermost showing %s: decided %s", shown.Status, show(again))
		}
	}
	// Landed: the user's status by hand is theirs again, nothing held.
	if got := Resolve(State{}, lost, Current{Status: Away, Manual: true}, later, Server{}); got.Held() {
		t.Fatalf("give-back by hand, landed: %+v", got)
	}
}

func TestMarksRoundTrip(t *testing.T) {
	ms := marks(nil).add([]calendar.Event{meeting, {Status: calendar.WorkingElsewhere, Start: t0, End: t0.Add(time.Hour), FromView: true}}, DefaultPolicy, true, false)
	s := ms.String()
	if back := parseMarks(s).String(); back != s || !strings.Contains(s, "!s") || !strings.Contains(s, "@view-") {
		t.Fatalf("round trip %q → %q", s, back)
	}
	if got := parseMarks("garbage busy@x-y " + s); got.String() != s {
		t.Fatalf("unreadable parts must be dropped: %q", got.String())
	}
}

func TestShortAbsenceShowsTheTime(t *testing.T) {
	short := calendar.Event{Start: t0, End: t0.Add(3 * time.Hour), Status: calendar.OutOfOffice}
	d := Decide(Input{Now: t0, Availability: av(short), Current: Current{Status: Online}, Policy: DefaultPolicy})
	if d.SetCustom == nil || d.SetCustom.Text != "Out of office until 13:00 UTC" {
		t.Fatalf("custom status %+v", d.SetCustom)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	d = Decide(Input{Now: t0, Availability: av(short), Current: Current{Status: Online}, Policy: Policy{Location: berlin}})
	if d.SetCustom.Text != "Out of office until 14:00 CET" {
		t.Fatalf("in Berlin: %q", d.SetCustom.Text)
	}
}

func TestTransitions(t *testing.T) {
	a := av(meeting, oof, calendar.Event{Start: oof.End.Add(time.Hour), End: oof.End.Add(2 * time.Hour), Status: calendar.Tentative})
	got := Transitions(a, DefaultPolicy, t0, t0.Add(10*time.Minute))
	if len(got) != 0 {
		t.Fatalf("no boundary in the next 10 minutes, got %v", got)
	}
	got = Transitions(a, DefaultPolicy, t0, t0.Add(30*time.Minute))
	if len(got) != 1 || !got[0].Equal(meeting.End) {
		t.Fatalf("want the meeting's end (= the oof start) once, got %v", got)
	}
	got = Transitions(a, Policy{TentativeAsBusy: false}, oof.End.Add(-time.Minute), oof.End.Add(3*time.Hour))
	if len(got) != 1 || !got[0].Equal(oof.End) {
		t.Fatalf("tentative not handled: want only the oof end, got %v", got)
	}
}

func TestServersCuttingDNDEndsToTheMinute(t *testing.T) {
	// A meeting ending with seconds: the DND is sent on the next whole minute, never earlier.
	odd := meeting
	odd.End = meeting.End.Add(25 * time.Second)
	for name, srv := range map[string]Server{"v6": {}, "v10": v10} {
		p := DefaultPolicy
		p.Server = srv
		d := Decide(Input{Now: t0, Availability: av(odd), Current: Current{Status: Away, Manual: true}, Policy: p})
		if d.SetStatus == nil || !d.SetStatus.DNDEndTime.Equal(meeting.End.Add(time.Minute)) {
			t.Fatalf("%s: want DND until %v, got %s", name, meeting.End.Add(time.Minute), show(d))
		}
	}
	// State kept by a calstatus that sent ends with seconds, read back from a v10 server that cut
	// it: still our DND, nothing overridden; it is extended once to the whole minute after the end.
	old := ours
	old.DNDEnd = meeting.End.Add(25 * time.Second)
	cut := ourDND
	cut.DNDEndTime = meeting.End
	p := DefaultPolicy
	p.Server = v10
	oddAv := av(calendar.Event{Start: meeting.Start, End: old.DNDEnd, Status: calendar.Busy})
	old.Handled = handled(oddAv.Events...)
	d := Decide(Input{Now: t0, Availability: oddAv, Current: cut, State: old, Policy: p})
	if strings.Contains(d.NewState.Handled, "!") || d.NewState.SetStatus != DND || d.NewState.PrevStatus != Away ||
		d.SetStatus == nil || d.SetStatus.Via != Away || !d.SetStatus.DNDEndTime.Equal(meeting.End.Add(time.Minute)) {
		t.Fatalf("a DND cut to the minute read as the user's: %s", show(d))
	}
	// On a server that always reads ends, a DND without one is the user's, at once.
	d = Decide(Input{Now: t0, Availability: av(meeting), Current: Current{Status: DND, Manual: true, Custom: &inMtg}, State: ours, Policy: p})
	if d.NewState.SetStatus != "" || !strings.Contains(d.NewState.Handled, "!s") {
		t.Fatalf("v10: a DND without an end kept as ours: %s", show(d))
	}
	// On v6 the same read may be ours (read past the status cache): kept until the grace is over.
	d = Decide(Input{Now: t0, Availability: av(meeting), Current: Current{Status: DND, Manual: true, Custom: &inMtg}, State: ours, Policy: DefaultPolicy})
	if d.NewState.SetStatus != DND || d.SetStatus != nil {
		t.Fatalf("v6: a DND with an unknown end not kept as ours: %s", show(d))
	}
	// A DND shortened to now (the meeting cancelled) ends on the minute, at once.
	d = Decide(Input{Now: t0.Add(30 * time.Second), Availability: av(), Current: ourDND, State: ours, Policy: p})
	if d.SetStatus == nil || d.SetStatus.Via != Away || !d.SetStatus.DNDEndTime.Equal(t0) {
		t.Fatalf("cancelled: want the DND shortened to %v through away, got %s", t0, show(d))
	}
}

func TestExplainSaysHowSoonTheServerGivesBack(t *testing.T) {
	for srv, want := range map[Server]string{{}: "up to five minutes later", v10: "up to a minute later"} {
		p := DefaultPolicy
		p.Server = srv
		got := Explain(Input{Now: t0, Availability: av(meeting), Current: Current{Status: Away}, Policy: p})
		if !strings.Contains(got, want) {
			t.Fatalf("server %+v: want %q in %q", srv, want, got)
		}
	}
}

func TestAMeetingInsideAnOverriddenPeriodEndsWithTheMeeting(t *testing.T) {
	week := calendar.Event{Start: t0.Add(-48 * time.Hour), End: t0.Add(72 * time.Hour), Status: calendar.OutOfOffice}
	call := calendar.Event{Start: t0, End: t0.Add(45 * time.Minute), Status: calendar.Busy, Subject: "Call"}
	// The user set themselves back online by hand during their out-of-office week: overridden.
	st := State{Handled: marks(nil).add([]calendar.Event{week}, DefaultPolicy, true, true).String(), Until: week.End}
	p := DefaultPolicy
	p.Notify = true
	d := Decide(Input{Now: t0, Availability: av(week, call), Current: Current{Status: Online}, State: st, Policy: p})
	if d.SetStatus == nil || d.SetStatus.Status != DND || !d.SetStatus.DNDEndTime.Equal(call.End) {
		t.Fatalf("want DND until the call's end %v, got %s", call.End, show(d))
	}
	if !strings.Contains(d.Notify, "until 10:45 UTC") {
		t.Fatalf("the message: %q", d.Notify)
	}
	// Extended while the call runs on: still the call's end, not the week's.
	longer := call
	longer.End = t0.Add(90 * time.Minute)
	cur := Current{Status: DND, Manual: true, DNDEndTime: call.End}
	d2 := Decide(Input{Now: t0.Add(10 * time.Minute), Availability: av(week, longer), Current: cur, State: d.NewState, Policy: p})
	if d2.SetStatus == nil || !d2.SetStatus.DNDEndTime.Equal(longer.End) {
		t.Fatalf("want the DND extended to %v, got %s", longer.End, show(d2))
	}
	// A DND set for a later day says which day.
	d3 := Decide(Input{Now: oof.Start, Availability: av(oof), Current: Current{Status: Online}, Policy: p})
	if !strings.Contains(d3.Notify, "until Wed 25 Nov 00:00 UTC") && !strings.Contains(d3.Notify, "until Wed 00:00 UTC") {
		t.Fatalf("the message for a DND ending another day: %q", d3.Notify)
	}
}

func TestResolveAChangeStoppedAfterItsVia(t *testing.T) {
	// Extension: our DND (prev automatic away) extended through away; the away PUT landed (away,
	// manual), the DND PUT did not. The away is ours to give back, not the user's.
	next := calendar.Event{Start: meeting.End, End: meeting.End.Add(time.Hour), Status: calendar.Busy}
	cal := av(meeting, next)
	d := Decide(Input{Now: t0, Availability: cal, Current: ourDND, State: ours, Policy: DefaultPolicy})
	if d.SetStatus == nil || d.SetStatus.Via != Away {
		t.Fatalf("want an extension through away: %s", show(d))
	}
	halfway := Current{Status: Away, Manual: true, Custom: &inMtg}
	got := Resolve(d.NewState, Claim{Prev: ours}, halfway, t0, Server{})
	if got.SetStatus != Away || got.PrevStatus != Away || got.PrevManual {
		t.Fatalf("resolved %+v; want away pinned to be given back as automatic", got)
	}
	d2 := Decide(Input{Now: t0, Availability: cal, Current: halfway, State: got, Policy: DefaultPolicy})
	if d2.SetStatus == nil || d2.SetStatus.Status != DND || d2.SetStatus.Via != "" || strings.Contains(d2.NewState.Handled, "!s") {
		t.Fatalf("the next run must finish the DND, not take the away for the user's: %s", show(d2))
	}
	// Shortening (the meeting cancelled): through away, then the DND to now; only the away landed.
	d = Decide(Input{Now: t0, Availability: av(), Current: ourDND, State: ours, Policy: DefaultPolicy})
	if d.SetStatus == nil || d.SetStatus.Via != Away {
		t.Fatalf("want the DND shortened through away: %s", show(d))
	}
	got = Resolve(d.NewState, Claim{Prev: ours}, halfway, t0, Server{})
	if got.SetStatus != Away {
		t.Fatalf("resolved %+v; want away pinned", got)
	}
	d3 := Decide(Input{Now: t0, Availability: av(), Current: halfway, State: got, Policy: DefaultPolicy})
	if d3.SetStatus == nil || d3.SetStatus.Status != DND || d3.SetStatus.Via != "" || d3.SetStatus.DNDEndTime.After(t0) {
		t.Fatalf("the next run must give the automatic away back through Mattermost's expiry: %s", show(d3))
	}
	// The exact give-back (an online user) sets online directly: online showing is the claim done.
	wasOnline := ours
	wasOnline.PrevStatus = Online
	d = Decide(Input{Now: t0, Availability: av(), Current: ourDND, State: wasOnline, Policy: DefaultPolicy})
	if got := Resolve(d.NewState, Claim{Prev: wasOnline}, Current{Status: Online}, t0, Server{}); got.SetStatus != "" {
		t.Fatalf("online given back read as half done: %+v", got)
	}
}

func TestAByHandStatusSurvivesWhateverEndsTheDNDFirst(t *testing.T) {
	byHand := ours
	byHand.PrevManual = true
	for _, srv := range []Server{{}, v10} {
		p := DefaultPolicy
		p.Server = srv
		// Mattermost's expiry ran first (away, automatic), then activity set the user online.
		for _, shown := range []Current{{Status: Away}, {Status: Online, LastActivity: meeting.End.Add(20 * time.Second)}, {Status: Offline}} {
			shown.Custom = &inMtg
			d := Decide(Input{Now: meeting.End, Availability: av(meeting), Current: shown, State: byHand, Policy: p})
			if d.SetStatus == nil || d.SetStatus.Status != Away || d.SetStatus.Via != "" || strings.Contains(d.NewState.Handled, "!s") {
				t.Fatalf("%+v after the expiry: want away set by hand again, got %s", shown, show(d))
			}
		}
		// Online set before the end (the user left our DND themselves), seen only after it: theirs.
		left := Current{Status: Online, LastActivity: meeting.End.Add(-5 * time.Minute), Custom: &inMtg}
		if d := Decide(Input{Now: meeting.End, Availability: av(meeting), Current: left, State: byHand, Policy: p}); d.SetStatus != nil || d.NewState.SetStatus != "" {
			t.Fatalf("online from before the end taken for activity after it: %s", show(d))
		}
		// A new meeting at once: its DND remembers the away as set by hand.
		later := calendar.Event{Start: meeting.End.Add(5 * time.Minute), End: meeting.End.Add(time.Hour), Status: calendar.Busy}
		st := byHand
		d := Decide(Input{Now: later.Start, Availability: av(meeting, later), Current: Current{Status: Away, Custom: &inMtg}, State: st, Policy: p})
		if d.SetStatus == nil || d.SetStatus.Status != DND || !d.NewState.PrevManual || d.NewState.PrevStatus != Away {
			t.Fatalf("a new DND after the expiry dropped the by-hand flag: %s", show(d))
		}
	}
}

func TestALongDNDWithAnUnknownEndIsEndedWhenCancelled(t *testing.T) {
	// Out of office for days, cancelled; Mattermost (v6, after a restart) reads our DND with end 0.
	away := State{PrevStatus: Away, SetStatus: DND, DNDEnd: oof.End, Handled: handled(oof), Until: oof.End}
	unknown := Current{Status: DND, Manual: true}
	now := oof.Start.Add(time.Hour)
	d := Decide(Input{Now: now, Availability: av(), Current: unknown, State: away, Policy: DefaultPolicy})
	if d.SetStatus == nil || d.SetStatus.Via != Away || d.SetStatus.DNDEndTime.After(now) || d.NewState.DNDEnd.After(now) {
		t.Fatalf("a cancelled out-of-office DND read with no end: want it ended, got %s", show(d))
	}
	// One ending within the bound is left to Mattermost's expiry.
	soon := away
	soon.DNDEnd = now.Add(UnknownEndBound - time.Minute)
	d = Decide(Input{Now: now, Availability: av(), Current: unknown, State: soon, Policy: DefaultPolicy})
	if d.SetStatus != nil || d.NewState.SetStatus != DND {
		t.Fatalf("a DND with an unknown end ending soon: want it left to Mattermost, got %s", show(d))
	}
}

// A user's own choices replace the organisation's: the subject in the custom status, a message on
// changes, and which part of calstatus they keep.
func TestUsersSettingsReplaceThePolicy(t *testing.T) {
	yes, no := true, false
	org := Policy{TentativeAsBusy: true, ShowSubject: false, Notify: true}
	decide := func(s Settings) Decision {
		return Decide(Input{Now: t0, Availability: av(meeting), Current: Current{Status: Online}, Settings: s, Policy: org})
	}
	if d := decide(Settings{}); d.SetCustom == nil || d.SetCustom.Text != "In a meeting" || d.Notify == "" {
		t.Fatalf("organisation's defaults: %s", show(d))
	}
	if d := decide(Settings{ShowSubject: &yes, Notify: &no}); d.SetCustom == nil || d.SetCustom.Text != "In a meeting: Planning" || d.Notify != "" {
		t.Fatalf("subject on, no message: %s", show(d))
	}
	private := meeting
	private.Private = true
	if d := Decide(Input{Now: t0, Availability: av(private), Current: Current{Status: Online}, Settings: Settings{ShowSubject: &yes}, Policy: org}); d.SetCustom == nil || d.SetCustom.Text != "In a meeting" {
		t.Fatalf("a private meeting's subject shown: %s", show(d))
	}
	if d := decide(Settings{Only: OnlyDND}); d.SetCustom != nil || d.SetStatus == nil || d.SetStatus.Status != DND {
		t.Fatalf("DND only: %s", show(d))
	}
	if d := decide(Settings{Only: OnlyCustom}); d.SetStatus != nil || d.SetCustom == nil {
		t.Fatalf("custom status only: %s", show(d))
	}
	// Switching to the custom status only while calstatus holds a DND gives the status back.
	if d := Decide(Input{Now: t0, Availability: av(meeting), Current: ourDND, State: ours, Settings: Settings{Only: OnlyCustom}, Policy: org}); d.SetStatus == nil || d.SetStatus.DNDEndTime.After(t0) || d.NewState.SetStatus != "" && d.NewState.DNDEnd.After(t0) {
		t.Fatalf("DND kept after switching to the custom status only: %s", show(d))
	}
}

// Mattermost's expiry can give back "dnd": a client's status read that missed its cache, racing the
// status to give back being set, puts the old DND back in the cache, and the DND set next keeps
// "dnd" as the status to return to. The user is left in a DND no one set by hand, without an end:
// calstatus watches a shortened DND until it is given back, and sets it again through the status.
func TestMattermostGivingBackDNDIsRepaired(t *testing.T) {
	shortened := Decide(Input{Now: t0, Current: ourDND, State: ours, Policy: DefaultPolicy})
	st := shortened.NewState
	if st.SetStatus != DND || st.PrevStatus != Away || st.DNDEnd.After(t0) {
		t.Fatalf("a shortened DND is not watched: %+v", st)
	}
	later := t0.Add(2 * time.Minute)
	for _, srv := range []Server{{}, v10} {
		// Given back as it should be: nothing more, nothing held.
		ok := Decide(Input{Now: later, Current: Current{Status: Away}, State: st, Policy: Policy{Server: srv}})
		if ok.Changes() || ok.NewState.Held() {
			t.Fatalf("given back: %s (state %+v)", show(ok), ok.NewState)
		}
		// Given back as "dnd": set again through away, ending now.
		bad := Decide(Input{Now: later, Current: Current{Status: DND}, State: st, Policy: Policy{Server: srv}})
		if s := bad.SetStatus; s == nil || s.Via != Away || s.Status != DND || s.DNDEndTime.After(later) ||
			bad.NewState.SetStatus != DND || bad.NewState.PrevStatus != Away {
			t.Fatalf("Mattermost gave back dnd: %s (state %+v)", show(bad), bad.NewState)
		}
		// The user's own DND (set by hand) stays theirs.
		own := Decide(Input{Now: later, Current: Current{Status: DND, Manual: true, DNDEndTime: later.Add(time.Hour)}, State: st, Policy: Policy{Server: srv}})
		if own.SetStatus != nil || own.NewState.Held() {
			t.Fatalf("the user's own DND: %s", show(own))
		}
	}
}

// A meeting whose end carries a fraction of a second: the custom status set for it (its expiry
// sent to the second) is the same one at the next run, not set again on every cycle.
func TestAnEndWithAFractionOfASecondIsNotSetAgain(t *testing.T) {
	m := meeting
	m.End = m.End.Add(200 * time.Millisecond)
	in := Input{Now: t0, Availability: av(m), Current: Current{Status: Online}, Policy: DefaultPolicy}
	d := Decide(in)
	if d.SetCustom == nil || d.SetStatus == nil {
		t.Fatalf("first run: %s", show(d))
	}
	kept := *d.SetCustom
	kept.ExpiresAt = kept.ExpiresAt.Truncate(time.Second) // as Mattermost keeps what calstatus sends
	in.Now, in.State = t0.Add(time.Minute), d.NewState
	in.Current = Current{Status: DND, Manual: true, DNDEndTime: d.SetStatus.DNDEndTime, Custom: &kept}
	if d := Decide(in); d.Changes() {
		t.Fatalf("next run, nothing changed: %s", show(d))
	}
}

// call is what Teams presence read at now shows for a user in a call (or presenting).
func call(activity string, now time.Time) calendar.Event {
	e, ok := PresenceItem(activity, now, DefaultPolicy)
	if !ok {
		panic("not a call: " + activity)
	}
	return e
}

// A Teams call with nothing on the calendar, seen by cycles every five minutes: DND and "In a call"
// while Teams shows it, renewed every other cycle so they never reach more than two cycles and the
// margin past the last read, and given back exactly at the first cycle that no longer sees it.
func TestACallIsHeldWhileTeamsShowsIt(t *testing.T) {
	sim := &mmSim{status: Away, manual: true}
	var st State
	writes := 0
	inCall := map[int]bool{1: true, 2: true, 3: true, 4: true, 5: true}
	for i := 0; i < 8; i++ {
		now := t0.Add(time.Duration(i)*5*time.Minute + 10*time.Second)
		sim.expire(now)
		a := av()
		if inCall[i] {
			a = a.With(call("InAConferenceCall", now))
		}
		d := Decide(Input{Now: now, Availability: a, Current: sim.current(), State: st, Policy: DefaultPolicy})
		if d.SetStatus != nil {
			writes++
			if d.SetStatus.Via != "" {
				writes++
			}
		}
		if d.SetCustom != nil || d.ClearCustom {
			writes++
		}
		sim.apply(d, now)
		st = d.NewState
		switch {
		case inCall[i]:
			if sim.status != DND || sim.custom == nil || sim.custom.Text != "In a call" {
				t.Fatalf("cycle %d, in a call: status %s, custom %+v", i, sim.status, sim.custom)
			}
			if limit := DNDEndFor(now.Add(10*time.Minute + PresenceMargin)); sim.end.After(limit) || !sim.end.After(now.Add(5*time.Minute)) {
				t.Fatalf("cycle %d: DND ends %s: want past the next cycle, by %s", i, sim.end, limit)
			}
		default:
			if sim.status != Away || !sim.manual || sim.custom != nil || st.Held() && i > 5 {
				t.Fatalf("cycle %d, no call: status %s manual %v custom %+v state %+v", i, sim.status, sim.manual, sim.custom, st)
			}
		}
	}
	// Set (DND + custom), renewed twice (via + DND + custom each), given back (status + clear).
	if writes != 2+3+3+2 {
		t.Errorf("%d writes for a 25-minute call: want 10 (set 2, renewed twice 3 each, given back 2)", writes)
	}
}

// A call outlasting a meeting keeps the DND past the meeting's end; a user who leaves the DND
// during the call is left alone until the call ends, and the next call is a new one.
func TestACallAcrossAMeetingAndTheUsersOverride(t *testing.T) {
	sim := &mmSim{status: Online}
	var st State
	decide := func(now time.Time, a calendar.Availability) Decision {
		sim.expire(now)
		d := Decide(Input{Now: now, Availability: a, Current: sim.current(), State: st, Policy: DefaultPolicy})
		sim.apply(d, now)
		st = d.NewState
		return d
	}
	// In the meeting's last minutes, on a call that goes on: the DND reaches past the meeting.
	now := meeting.End.Add(-2 * time.Minute)
	decide(now, av(meeting).With(call("InACall", now)))
	if sim.status != DND || !sim.end.After(meeting.End) || sim.custom == nil || sim.custom.Text != "In a meeting" {
		t.Fatalf("call through the meeting's end: status %s until %s (meeting ends %s), custom %+v", sim.status, sim.end, meeting.End, sim.custom)
	}
	now = meeting.End.Add(time.Minute)
	decide(now, av(meeting).With(call("Presenting", now)))
	if sim.status != DND || sim.custom == nil || sim.custom.Text != "Presenting" {
		t.Fatalf("after the meeting, presenting: status %s, custom %+v", sim.status, sim.custom)
	}
	// The user sets themselves online: left so while the call lasts.
	sim.set(Online)
	for i := 1; i <= 3; i++ {
		now = now.Add(5 * time.Minute)
		if d := decide(now, av(meeting).With(call("InACall", now))); d.SetStatus != nil {
			t.Fatalf("%d cycles after the user left the DND of a call: %s", i, show(d))
		}
	}
	// The call ends; a new one later is decided afresh.
	now = now.Add(5 * time.Minute)
	decide(now, av(meeting))
	now = now.Add(5 * time.Minute)
	decide(now, av(meeting).With(call("InACall", now)))
	if sim.status != DND {
		t.Fatalf("a new call after the overridden one: status %s", sim.status)
	}
}

// Only Teams calls and presentations ask for anything; a user who turned calls off gets nothing
// for them, and what calstatus held for one is given back.
func TestCallsAndTheUsersSetting(t *testing.T) {
	for _, activity := range []string{"Available", "Busy", "InAMeeting", "Away", "Focusing", ""} {
		if _, ok := PresenceItem(activity, t0, DefaultPolicy); ok {
			t.Errorf("PresenceItem(%q) asks for something", activity)
		}
	}
	c := call("inacall", t0)
	if d := Decide(Input{Now: t0, Availability: av(c), Current: Current{Status: Online}, Settings: Settings{CallsOff: true}, Policy: DefaultPolicy}); d.Changes() {
		t.Fatalf("calls off: %s", show(d))
	}
	held := Decide(Input{Now: t0, Availability: av(c), Current: Current{Status: Online}, Policy: DefaultPolicy})
	sim := &mmSim{status: Online}
	sim.apply(held, t0)
	now := t0.Add(5 * time.Minute)
	d := Decide(Input{Now: now, Availability: av(call("InACall", now)), Current: sim.current(), State: held.NewState, Settings: Settings{CallsOff: true}, Policy: DefaultPolicy})
	sim.apply(d, now)
	if sim.status != Online || sim.custom != nil || d.NewState.Held() {
		t.Fatalf("calls turned off during one: status %s, custom %+v, state %+v", sim.status, sim.custom, d.NewState)
	}
	// No transition is scheduled at a call's bounds: they are only when it was read.
	if ts := Transitions(av(c), DefaultPolicy, t0.Add(-time.Hour), t0.Add(time.Hour)); len(ts) != 0 {
		t.Errorf("transitions at a call's bounds: %v", ts)
	}
}

// Presence unreadable for a cycle: the call held stays as it is (no write, nothing given back),
// and Mattermost's expiry ends it if presence stays unreadable.
func TestACallHeldWhilePresenceIsUnreadable(t *testing.T) {
	sim := &mmSim{status: Online}
	d := Decide(Input{Now: t0, Availability: av(call("Presenting", t0)), Current: sim.current(), Policy: DefaultPolicy})
	sim.apply(d, t0)
	st := d.NewState
	for i := 1; i <= 4; i++ {
		now := t0.Add(time.Duration(i) * 5 * time.Minute)
		sim.expire(now)
		a := av()
		if e, ok := HeldCall(st, now); ok {
			a = a.With(e)
		}
		d := Decide(Input{Now: now, Availability: a, Current: sim.current(), State: st, Policy: DefaultPolicy})
		sim.apply(d, now)
		st = d.NewState
		switch {
		case now.Before(DNDEndFor(t0.Add(10*time.Minute + PresenceMargin))):
			if d.Changes() || sim.status != DND || sim.custom == nil || sim.custom.Text != "Presenting" {
				t.Fatalf("cycle %d, presence unreadable: %s; status %s custom %+v", i, show(d), sim.status, sim.custom)
			}
		default:
			if sim.status != Online || sim.custom != nil || st.Held() {
				t.Fatalf("cycle %d, past the held end: status %s custom %+v state %+v", i, sim.status, sim.custom, st)
			}
		}
	}
	if _, ok := HeldCall(ours, t0); ok {
		t.Error("a meeting's state taken for a held call")
	}
}
