package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/calstatus/calstatus/internal/calendar"
)

func TestExplain(t *testing.T) {
	wentOnline := ours
	wentOnline.PrevStatus = Online
	overrode := Decide(Input{Now: t0, Availability: av(meeting), Current: Current{Status: Online, Custom: &inMtg}, State: ours, Policy: DefaultPolicy}).NewState
	later := calendar.Event{Start: t0.Add(4 * time.Hour), End: t0.Add(5 * time.Hour), Status: calendar.Busy}
	tests := []struct {
		name string
		in   Input
		want []string // in this order
		not  []string
	}{
		{name: "in a meeting, our DND over online",
			in: Input{Now: t0, Availability: av(meeting), Current: ourDND, State: wentOnline, Settings: Settings{Location: berlin}},
			want: []string{"Your calendar shows you in a meeting (busy) until 11:20 CET.",
				"calstatus set Do Not Disturb until 11:20 CET and the custom status :calendar: “In a meeting”; you'll be set back to Online then."},
			not: []string{"next run"}},
		{name: "in a meeting, our DND over an automatic away",
			in:   Input{Now: t0, Availability: av(meeting), Current: ourDND, State: ours},
			want: []string{"calstatus set Do Not Disturb until 10:20 UTC", "Mattermost then sets you back to Away (up to five minutes later)."}},
		{name: "a meeting starting: what the next run does",
			in:   Input{Now: t0, Availability: av(meeting), Current: Current{Status: Away, Manual: true}},
			want: []string{"At its next run calstatus sets Do Not Disturb until 10:20 UTC and sets your custom status to :calendar: “In a meeting”; you'll be set back to Away then."}},
		{name: "the user overrode",
			in: Input{Now: t0, Availability: av(meeting), Current: Current{Status: Online, Custom: &inMtg}, State: overrode},
			want: []string{"in a meeting (busy)", "You changed your status during this event, so calstatus leaves it alone (Online).",
				"calstatus set the custom status :calendar: “In a meeting” until 10:20 UTC."}},
		{name: "the user's own DND and custom status",
			in: Input{Now: t0, Availability: av(meeting), Current: Current{Status: DND, Manual: true, Custom: mine},
				State: State{Handled: marks(nil).add([]calendar.Event{meeting}, DefaultPolicy, true, true).String(), Until: meeting.End}},
			want: []string{"You are in Do Not Disturb on your own, so calstatus leaves your status alone.", "Your own custom status “lunch” stays."}},
		{name: "paused while we hold a DND over online",
			in: Input{Now: t0, Availability: av(meeting), Current: ourDND, State: wentOnline, Settings: Settings{PausedUntil: t0.Add(22 * time.Hour), Location: berlin}},
			want: []string{"calstatus is paused for you until Tue 09:00 CET.", "in a meeting (busy) until 11:20 CET",
				"At its next run calstatus sets you back to Online and clears its custom status.", "Then it leaves you alone until the pause ends."}},
		{name: "off, nothing held",
			in:   Input{Now: t0, Availability: av(meeting), Current: Current{Status: Online}, Settings: Settings{Disabled: true}},
			want: []string{"calstatus is off for you.", "Your calendar shows you in a meeting (busy)", "It leaves your status and custom status alone."},
			not:  []string{"next run"}},
		{name: "automatic replies calstatus turned on, over a manual away",
			in: Input{Now: t0, Current: Current{Status: OutOfOffice, Manual: true}, Replies: repliesOn,
				State: State{PrevStatus: Away, PrevManual: true, SetStatus: OutOfOffice, Replies: RepliesHash(repliesOn.Text), RepliesDone: true}},
			want: []string{"calstatus set your automatic replies here from Outlook's (status Out of Office) until they end in Outlook; you'll be set back to Away then."},
			not:  []string{"leaves your status alone"}},
		{name: "automatic replies about to be turned on",
			in:   Input{Now: t0, Current: Current{Status: Online}, Replies: repliesOn},
			want: []string{"At its next run calstatus turns on your automatic replies here, with the text of Outlook's (status Out of Office); you'll be set back to Online then (when they end in Outlook)."}},
		{name: "free, nothing held, a meeting later",
			in:   Input{Now: t0, Availability: av(later), Current: Current{Status: Away}},
			want: []string{"Your calendar shows you free now; next: a meeting (busy) from 14:00 UTC.", "calstatus holds nothing: your status (Away) is yours."}},
		{name: "working elsewhere",
			in: Input{Now: t0, Availability: av(ev(calendar.WorkingElsewhere)), Current: Current{Status: Online}},
			want: []string{"working elsewhere until 10:20 UTC; calstatus does not change your status for that.",
				"At its next run calstatus sets your custom status to :house: “Working elsewhere” until 10:20 UTC."}},
		{name: "out of office for days, in the user's zone",
			in:   Input{Now: oof.Start, Availability: av(oof), Current: Current{Status: Online}, Settings: Settings{Location: newYork}},
			want: []string{"out of office until Tue 24 Nov.", "Out of office until Tue 24 Nov"}},
		{name: "the event ended: online given back",
			in:   Input{Now: meeting.End, Current: ourDND, State: wentOnline},
			want: []string{"free now.", "At its next run calstatus sets you back to Online and clears its custom status."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in.Policy == (Policy{}) {
				tc.in.Policy = DefaultPolicy
			}
			got := Explain(tc.in)
			rest := got
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("%q\nlacks (in order) %q", got, w)
				}
				rest = rest[i+len(w):]
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Fatalf("%q\nhas %q", got, n)
				}
			}
			if strings.Contains(got, "\n") || strings.Contains(got, "..") {
				t.Fatalf("not one clean paragraph: %q", got)
			}
			t.Log(got)
		})
	}
}

func TestExplainQuotesWhatTheUserControls(t *testing.T) {
	m := meeting
	m.Subject = "[x](https://evil.example)"
	p := DefaultPolicy
	p.ShowSubject = true
	got := ExplainQuoted(Input{Now: t0, Availability: av(m), Current: Current{Status: Online, Custom: mine}, Policy: p},
		func(s string) string { return "<" + s + ">" })
	for _, w := range []string{"<[x](https://evil.example)>", "<lunch>"} {
		if !strings.Contains(got, w) {
			t.Fatalf("%q lacks %q", got, w)
		}
	}
}

// The subject shows only where SHOW_SUBJECT shows it (in the custom status), never for a private
// event.
func TestExplainShowsTheSubjectOnlyWithShowSubject(t *testing.T) {
	private := meeting
	private.Private = true
	for _, tc := range []struct {
		show  bool
		event calendar.Event
		want  bool
	}{{false, meeting, false}, {true, meeting, true}, {true, private, false}} {
		p := DefaultPolicy
		p.ShowSubject = tc.show
		got := Explain(Input{Now: t0, Availability: av(tc.event), Current: Current{Status: Online}, Policy: p})
		if !strings.Contains(got, "in a meeting (busy)") || strings.Contains(got, "Planning") != tc.want {
			t.Errorf("SHOW_SUBJECT %v, private %v: %q", tc.show, tc.event.Private, got)
		}
	}
}

// Explain accounts for Decide's decision whatever the case (it never panics, always says what the
// calendar shows).
func TestExplainSweep(t *testing.T) {
	for _, cs := range []calendar.Status{calendar.Free, calendar.Busy, calendar.Tentative, calendar.OutOfOffice, calendar.WorkingElsewhere} {
		for _, cur := range []Current{{Status: Online}, {Status: Away}, {Status: DND, Manual: true}, ourDND, {Status: OutOfOffice, Manual: true}, {Status: DND, Manual: true, Custom: &inMtg}} {
			for _, st := range []State{{}, ours, {PrevStatus: Away, SetStatus: Away}} {
				for _, set := range []Settings{{}, {Disabled: true}, {PausedUntil: t0.Add(time.Hour)}, {Location: berlin}} {
					for _, now := range []time.Time{t0, meeting.End, meeting.End.Add(Server{}.Grace())} {
						got := Explain(Input{Now: now, Availability: av(ev(cs)), Current: cur, State: st, Settings: set, Policy: DefaultPolicy})
						if !strings.Contains(got, "Your calendar shows you") || strings.Contains(got, "..") {
							t.Fatalf("%s %+v %+v %+v %v: %q", cs, cur, st, set, now, got)
						}
					}
				}
			}
		}
	}
}
