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
	t0      = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	meeting = calendar.Event{Start: t0.Add(-10 * time.Minute), End: t0.Add(20 * time.Minute), Status: calendar.Busy, Subject: "Planning"}
	oof     = calendar.Event{Start: t0.Add(20 * time.Minute), End: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), Status: calendar.OutOfOffice}
	inMtg   = CustomStatus{Emoji: MeetingEmoji, Text: "In a meeting", ExpiresAt: meeting.End}
	mine    = &CustomStatus{Emoji: "coffee", Text: "lunch"}
)

func av(evs ...calendar.Event) calendar.Availability { return calendar.Availability{Events: evs} }

func ev(s calendar.Status) calendar.Event {
	return calendar.Event{Start: meeting.Start, End: meeting.End, Status: s, Subject: "Planning"}
}

// ours is the state after calstatus handled the meeting for a user who was away.
var ours = State{PrevStatus: Away, SetStatus: DND, DNDEnd: meeting.End, CustomEmoji: MeetingEmoji, CustomText: "In a meeting", EventKey: EventKey(meeting), Until: meeting.End}

// ourDND is Mattermost showing the DND we set for the meeting.
var ourDND = Current{Status: DND, DNDEndTime: meeting.End, Custom: &inMtg}

func TestDecide(t *testing.T) {
	tests := []struct {
		name   string
		in     Input
		want   Decision // Reason and Notify are not compared
		notify bool
	}{
		{name: "free, nothing held", in: Input{Now: t0, Current: Current{Status: Online}}},
		{name: "busy → dnd until end + In a meeting",
			in: Input{Now: t0, Availability: av(meeting), Current: Current{Status: Away}},
			want: Decision{SetStatus: &StatusUpdate{Status: DND, DNDEndTime: meeting.End}, SetCustom: &inMtg, SaveState: true,
				NewState: ours}},
		{name: "busy with subject shown",
			in: Input{Now: t0, Availability: av(meeting), Current: Current{Status: Away}, Policy: Policy{TentativeAsBusy: true, ShowSubject: true}},
			want: Decision{SetStatus: &StatusUpdate{Status: DND, DNDEndTime: meeting.End},
				SetCustom: &CustomStatus{Emoji: MeetingEmoji, Text: "In a meeting: Planning", ExpiresAt: meeting.End}, SaveState: true,
				NewState: State{PrevStatus: Away, SetStatus: DND, DNDEnd: meeting.End, CustomEmoji: MeetingEmoji, CustomText: "In a meeting: Planning", EventKey: EventKey(meeting), Until: meeting.End}}},
		{name: "private meeting never shows its subject",
			in: Input{Now: t0, Availability: av(calendar.Event{Start: meeting.Start, End: meeting.End, Status: calendar.Busy, Subject: "Secret", Private: true}),
				Current: Current{Status: Away}, Policy: Policy{ShowSubject: true}},
			want: Decision{SetStatus: &StatusUpdate{Status: DND, DNDEndTime: meeting.End}, SetCustom: &inMtg, SaveState: true, NewState: ours}},
		{name: "tentative like busy",
			in: Input{Now: t0, Availability: av(ev(calendar.Tentative)), Current: Current{Status: Away}},
			want: Decision{SetStatus: &StatusUpdate{Status: DND, DNDEndTime: meeting.End}, SetCustom: &inMtg, SaveState: true,
				NewState: State{PrevStatus: Away, SetStatus: DND, DNDEnd: meeting.End, CustomEmoji: MeetingEmoji, CustomText: "In a meeting", EventKey: EventKey(ev(calendar.Tentative)), Until: meeting.End}}},
		{name: "tentative ignored when configured",
			in: Input{Now: t0, Availability: av(ev(calendar.Tentative)), Current: Current{Status: Away}, Policy: Policy{TentativeAsBusy: false}}},
		{name: "out of office → dnd + until date",
			in: Input{Now: oof.Start, Availability: av(oof), Current: Current{Status: Online}},
			want: Decision{SetStatus: &StatusUpdate{Status: DND, DNDEndTime: oof.End},
				SetCustom: &CustomStatus{Emoji: OOFEmoji, Text: "Out of office until Wed 25 Nov", ExpiresAt: oof.End}, SaveState: true,
				NewState: State{PrevStatus: Online, SetStatus: DND, DNDEnd: oof.End, CustomEmoji: OOFEmoji, CustomText: "Out of office until Wed 25 Nov", EventKey: EventKey(oof), Until: oof.End}}},
		{name: "working elsewhere → custom status only",
			in: Input{Now: t0, Availability: av(ev(calendar.WorkingElsewhere)), Current: Current{Status: Online}},
			want: Decision{SetCustom: &CustomStatus{Emoji: ElsewhereEmoji, Text: "Working elsewhere", ExpiresAt: meeting.End}, SaveState: true,
				NewState: State{CustomEmoji: ElsewhereEmoji, CustomText: "Working elsewhere", EventKey: EventKey(ev(calendar.WorkingElsewhere)), Until: meeting.End}}},
		{name: "already handled: nothing",
			in: Input{Now: t0, Availability: av(meeting), Current: ourDND, State: ours}},
		{name: "user overrode status mid-meeting: not touched again, and it is theirs from now on",
			in:   Input{Now: t0, Availability: av(meeting), Current: Current{Status: Online, Custom: &inMtg}, State: ours},
			want: Decision{SaveState: true, NewState: State{CustomEmoji: MeetingEmoji, CustomText: "In a meeting", EventKey: EventKey(meeting), Until: meeting.End}}},
		{name: "user picked DND again themselves: theirs, not ours",
			in:   Input{Now: t0, Availability: av(meeting), Current: Current{Status: DND, Custom: mine}, State: ours},
			want: Decision{SaveState: true, NewState: State{EventKey: EventKey(meeting), Until: meeting.End}}},
		{name: "user already dnd on their own: status left, custom set",
			in: Input{Now: t0, Availability: av(meeting), Current: Current{Status: DND}},
			want: Decision{SetCustom: &inMtg, SaveState: true,
				NewState: State{CustomEmoji: MeetingEmoji, CustomText: "In a meeting", EventKey: EventKey(meeting), Until: meeting.End}}},
		{name: "user's own custom status kept, dnd still set",
			in: Input{Now: t0, Availability: av(meeting), Current: Current{Status: Online, Custom: mine}},
			want: Decision{SetStatus: &StatusUpdate{Status: DND, DNDEndTime: meeting.End}, SaveState: true,
				NewState: State{PrevStatus: Online, SetStatus: DND, DNDEnd: meeting.End, EventKey: EventKey(meeting), Until: meeting.End}}},
		{name: "back to back busy → oof: one dnd to the end, custom text follows",
			in: Input{Now: oof.Start, Availability: av(meeting, oof), Current: Current{Status: DND, DNDEndTime: oof.End, Custom: &inMtg}, State: withDNDEnd(ours, oof.End)},
			want: Decision{SetCustom: &CustomStatus{Emoji: OOFEmoji, Text: "Out of office until Wed 25 Nov", ExpiresAt: oof.End}, SaveState: true,
				NewState: State{PrevStatus: Away, SetStatus: DND, DNDEnd: oof.End, CustomEmoji: OOFEmoji, CustomText: "Out of office until Wed 25 Nov", EventKey: EventKey(oof), Until: oof.End}}},
		{name: "meeting extended: dnd re-set through the previous status",
			in: Input{Now: oof.Start, Availability: av(meeting, oof), Current: ourDND, State: ours},
			want: Decision{SetStatus: &StatusUpdate{Status: DND, DNDEndTime: oof.End, ResetTo: Away},
				SetCustom: &CustomStatus{Emoji: OOFEmoji, Text: "Out of office until Wed 25 Nov", ExpiresAt: oof.End}, SaveState: true,
				NewState: State{PrevStatus: Away, SetStatus: DND, DNDEnd: oof.End, CustomEmoji: OOFEmoji, CustomText: "Out of office until Wed 25 Nov", EventKey: EventKey(oof), Until: oof.End}}},
		{name: "free → restore and clear ours",
			in:   Input{Now: meeting.End, Availability: av(meeting), Current: ourDND, State: ours},
			want: Decision{SetStatus: &StatusUpdate{Status: Away}, ClearCustom: true, SaveState: true}},
		{name: "free, user changed both → nothing given back",
			in:   Input{Now: meeting.End, Availability: av(meeting), Current: Current{Status: Online, Custom: mine}, State: ours},
			want: Decision{SaveState: true}},
		{name: "free, Mattermost already ended our DND and custom status",
			in:   Input{Now: meeting.End, Availability: av(meeting), Current: Current{Status: Away}, State: ours},
			want: Decision{SaveState: true}},
		{name: "free after the user's own dnd → not restored",
			in:   Input{Now: meeting.End, Availability: av(meeting), Current: Current{Status: DND}, State: State{EventKey: EventKey(meeting), Until: meeting.End}},
			want: Decision{SaveState: true}},
		{name: "disabled user: give back mid-meeting",
			in:   Input{Now: t0, Availability: av(meeting), Current: ourDND, State: ours, Settings: Settings{Disabled: true}},
			want: Decision{SetStatus: &StatusUpdate{Status: Away}, ClearCustom: true, SaveState: true}},
		{name: "notify tells what changed",
			in:     Input{Now: t0, Availability: av(meeting), Current: Current{Status: Away}, Policy: Policy{TentativeAsBusy: true, Notify: true}},
			want:   Decision{SetStatus: &StatusUpdate{Status: DND, DNDEndTime: meeting.End}, SetCustom: &inMtg, SaveState: true, NewState: ours},
			notify: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in.Policy == (Policy{}) && !strings.Contains(tc.name, "configured") {
				tc.in.Policy = DefaultPolicy
			}
			got := Decide(tc.in)
			if (got.Notify != "") != tc.notify {
				t.Fatalf("notify = %q", got.Notify)
			}
			got.Reason, got.Notify = "", ""
			if g, w := fmt.Sprintf("%+v", show(got)), fmt.Sprintf("%+v", show(tc.want)); g != w {
				t.Fatalf("\n got  %s\n want %s", g, w)
			}
		})
	}
}

func withDNDEnd(s State, end time.Time) State { s.DNDEnd = end; return s }

func show(d Decision) string {
	s := fmt.Sprintf("save=%v state=%+v clear=%v", d.SaveState, d.NewState, d.ClearCustom)
	if d.SetStatus != nil {
		s += fmt.Sprintf(" status=%+v", *d.SetStatus)
	}
	if d.SetCustom != nil {
		s += fmt.Sprintf(" custom=%+v", *d.SetCustom)
	}
	return s
}

// TestInvariants runs every combination of calendar, status, custom status, stored state and
// policy, and checks the rules that must hold whatever the case.
func TestInvariants(t *testing.T) {
	statuses := []calendar.Status{calendar.Free, calendar.Busy, calendar.Tentative, calendar.OutOfOffice, calendar.WorkingElsewhere}
	currents := []string{Online, Away, Offline, DND}
	customs := map[string]*CustomStatus{"none": nil, "ours": &inMtg, "user's": mine}
	otherEvent := State{PrevStatus: Online, SetStatus: DND, CustomEmoji: MeetingEmoji, CustomText: "In a meeting", EventKey: "busy@1", Until: meeting.Start}
	states := map[string]State{"none": {}, "ours": ours, "marker": {EventKey: EventKey(meeting), Until: meeting.End}, "other event": otherEvent}
	n := 0
	for _, cs := range statuses {
		for _, cur := range currents {
			for cname, custom := range customs {
				for sname, st := range states {
					for _, tentBusy := range []bool{true, false} {
						for _, disabled := range []bool{false, true} {
							n++
							e := ev(cs)
							if cs == calendar.Busy {
								e = meeting
							}
							current := Current{Status: cur, Custom: custom}
							if cur == DND && sname == "ours" {
								current.DNDEndTime = meeting.End // the DND we set
							}
							in := Input{Now: t0, Availability: av(e), Current: current, State: st,
								Policy: Policy{TentativeAsBusy: tentBusy}, Settings: Settings{Disabled: disabled}}
							if cs == calendar.Free {
								in.Availability = av()
							}
							d := Decide(in)
							where := fmt.Sprintf("%s/%s/custom %s/state %s/tentative-busy %v/disabled %v: %+v", cs, cur, cname, sname, tentBusy, disabled, show(d))
							// A user's own custom status is never overwritten or cleared.
							if cname == "user's" && (d.SetCustom != nil || d.ClearCustom) {
								t.Fatalf("touched the user's own custom status: %s", where)
							}
							// An event already handled is never acted on again; at most we note what the user took over.
							if !disabled && st.EventKey == EventKey(e) && cs != calendar.Free && in.Policy.Handled(e) &&
								(d.Changes() || (d.SaveState && d.NewState != st.takenOver(in.Current))) {
								t.Fatalf("acted twice on one event: %s", where)
							}
							// A status we did not set is never "restored".
							if d.SetStatus != nil && d.SetStatus.Status != DND && !st.ownsStatus(in.Current) {
								t.Fatalf("restored a status we did not set: %s", where)
							}
							// A user in DND on their own stays in DND.
							if cur == DND && !st.ownsStatus(in.Current) && d.SetStatus != nil {
								t.Fatalf("changed the user's own DND: %s", where)
							}
							// Whatever we set, we remember how to give it back.
							if d.SetStatus != nil && d.SetStatus.Status == DND && (d.NewState.SetStatus != DND || d.NewState.PrevStatus == "" ||
								d.NewState.PrevStatus == DND || !d.NewState.DNDEnd.Equal(d.SetStatus.DNDEndTime)) {
								t.Fatalf("set DND without keeping the previous status: %s", where)
							}
							if d.SetCustom != nil && d.NewState.CustomText != d.SetCustom.Text {
								t.Fatalf("set a custom status without remembering it: %s", where)
							}
							// Disabled users and free calendars end with nothing held.
							if (disabled || !in.Policy.Handled(e) || cs == calendar.Free) && d.SaveState && d.NewState.Held() {
								t.Fatalf("kept state while giving back: %s", where)
							}
						}
					}
				}
			}
		}
	}
	t.Logf("%d combinations checked", n)
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
