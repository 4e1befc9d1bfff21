package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/calstatus/calstatus/internal/calendar"
)

var (
	t0      = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	meeting = calendar.Event{Start: t0.Add(-10 * time.Minute), End: t0.Add(20 * time.Minute), Status: calendar.Busy}
	next    = calendar.Event{Start: t0.Add(20 * time.Minute), End: t0.Add(50 * time.Minute), Status: calendar.OutOfOffice}
)

func avail(evs ...calendar.Event) calendar.Availability { return calendar.Availability{Events: evs} }

func TestDecide(t *testing.T) {
	ours := State{PrevStatus: Away, SetStatus: DND, EventKey: EventKey(meeting), Until: meeting.End}
	tests := []struct {
		name       string
		now        time.Time
		av         calendar.Availability
		cur        string
		st         State
		policy     Policy
		wantUpdate *StatusUpdate
		wantSave   bool
		wantState  State
	}{
		{name: "free, nothing held", now: t0, av: avail(), cur: Online},
		{name: "busy → dnd until end", now: t0, av: avail(meeting), cur: Online,
			wantUpdate: &StatusUpdate{Status: DND, DNDEndTime: meeting.End}, wantSave: true,
			wantState: State{PrevStatus: Online, SetStatus: DND, EventKey: EventKey(meeting), Until: meeting.End}},
		{name: "busy, already handled", now: t0, av: avail(meeting), cur: DND, st: ours},
		{name: "busy, user overrode mid-meeting", now: t0, av: avail(meeting), cur: Online, st: ours},
		{name: "busy, user already dnd", now: t0, av: avail(meeting), cur: DND, wantSave: true,
			wantState: State{EventKey: EventKey(meeting), Until: meeting.End}},
		{name: "tentative as busy", now: t0, av: avail(calendar.Event{Start: meeting.Start, End: meeting.End, Status: calendar.Tentative}),
			cur: Away, policy: DefaultPolicy, wantSave: true,
			wantUpdate: &StatusUpdate{Status: DND, DNDEndTime: meeting.End},
			wantState:  State{PrevStatus: Away, SetStatus: DND, EventKey: fmt.Sprintf("tentative@%d", meeting.Start.Unix()), Until: meeting.End}},
		{name: "tentative ignored when configured", now: t0, av: avail(calendar.Event{Start: meeting.Start, End: meeting.End, Status: calendar.Tentative}),
			cur: Away, policy: Policy{TentativeAsBusy: false}},
		{name: "back to back keeps original status", now: next.Start, av: avail(meeting, next), cur: DND, st: ours,
			wantUpdate: &StatusUpdate{Status: DND, DNDEndTime: next.End}, wantSave: true,
			wantState: State{PrevStatus: Away, SetStatus: DND, EventKey: EventKey(next), Until: next.End}},
		{name: "free → restore", now: meeting.End, av: avail(meeting), cur: DND, st: ours,
			wantUpdate: &StatusUpdate{Status: Away}, wantSave: true},
		{name: "free, user changed → keep theirs", now: meeting.End, av: avail(meeting), cur: Online, st: ours, wantSave: true},
		{name: "free after user's own dnd → not restored", now: meeting.End, av: avail(meeting), cur: DND,
			st: State{EventKey: EventKey(meeting), Until: meeting.End}, wantSave: true},
		{name: "working elsewhere is not dnd", now: t0, av: avail(calendar.Event{Start: meeting.Start, End: meeting.End, Status: calendar.WorkingElsewhere}), cur: Online},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.policy
			if p == (Policy{}) && tc.name != "tentative ignored when configured" {
				p = DefaultPolicy
			}
			d := Decide(tc.now, tc.av, Current{Status: tc.cur}, tc.st, p)
			if (d.Update == nil) != (tc.wantUpdate == nil) || (d.Update != nil && (d.Update.Status != tc.wantUpdate.Status || !d.Update.DNDEndTime.Equal(tc.wantUpdate.DNDEndTime))) {
				t.Fatalf("update = %+v, want %+v (%s)", d.Update, tc.wantUpdate, d.Reason)
			}
			if d.SaveState != tc.wantSave || d.NewState != tc.wantState {
				t.Fatalf("state = %v %+v, want %v %+v (%s)", d.SaveState, d.NewState, tc.wantSave, tc.wantState, d.Reason)
			}
		})
	}
}
