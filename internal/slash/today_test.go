package slash

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/calstatus/calstatus/internal/calendar"
	"github.com/calstatus/calstatus/internal/engine"
	"github.com/calstatus/calstatus/internal/graph"
	"github.com/calstatus/calstatus/internal/mattermost"
	"github.com/calstatus/calstatus/internal/store"
)

// cet is a time on Mon 23 Nov 2026 in Berlin (t0 is 11:00 there).
func cet(hour, minute int) time.Time { return time.Date(2026, 11, 23, hour, minute, 0, 0, berlin) }

func sameWindow(a, b graph.Window) bool { return a.Start.Equal(b.Start) && a.End.Equal(b.End) }

// "/calstatus today" lists the rest of the user's day in their time zone, from one read of the
// calendar up to their midnight, and what calstatus does for each item.
func TestTodayListsTheRestOfTheDay(t *testing.T) {
	day := []calendar.Event{
		{Start: cet(8, 0), End: cet(9, 0), Status: calendar.Busy, Subject: "Over"},
		{Start: cet(10, 50), End: cet(11, 20), Status: calendar.Busy, Subject: "Planning"},
		{Start: cet(14, 0), End: cet(15, 0), Status: calendar.Busy, Subject: "Secret", Private: true},
		{Start: cet(15, 0), End: cet(16, 0), Status: calendar.Tentative, Subject: "Maybe"},
		{Start: cet(16, 0), End: cet(18, 0), Status: calendar.WorkingElsewhere, Subject: "Home"},
		{Start: cet(33, 0), End: cet(34, 0), Status: calendar.Busy, Subject: "Tomorrow"},
	}
	inMeeting := &mattermost.CustomStatus{Emoji: engine.MeetingEmoji, Text: "In a meeting", ExpiresAt: cet(11, 20)}
	held := engine.Decide(engine.Input{Now: t0, Availability: calendar.NewAvailability("me@x.test", day[1:2]),
		Current: engine.Current{Status: engine.Online}, Policy: engine.DefaultPolicy}).NewState
	overrode := engine.Decide(engine.Input{Now: t0, Availability: calendar.NewAvailability("me@x.test", day[1:2]),
		Current: engine.Current{Status: engine.Away, Manual: true, Custom: &engine.CustomStatus{Emoji: engine.MeetingEmoji, Text: "In a meeting", ExpiresAt: cet(11, 20)}},
		State:   held, Policy: engine.DefaultPolicy}).NewState
	tests := []struct {
		name      string
		show      bool // SHOW_SUBJECT
		tentative bool // TENTATIVE_AS_BUSY
		settings  store.UserSettings
		status    mattermost.Status
		custom    *mattermost.CustomStatus
		state     engine.State
		want      []string
		not       []string
	}{
		{name: "the defaults, subjects shown", show: true,
			want: []string{"The rest of your day (Mon 23 Nov, times in CET) as calstatus sees it:",
				"* 10:50–11:20 (now) busy `Planning` — Do Not Disturb until 11:20 CET and the custom status :calendar: `In a meeting: Planning`\n",
				"* 14:00–15:00 busy — Do Not Disturb until 15:00 CET and the custom status :calendar: `In a meeting`\n",
				"* 15:00–16:00 tentative `Maybe` — nothing: tentative meetings don't count as busy here\n",
				"* 16:00–18:00 working elsewhere `Home` — the custom status :house: `Working elsewhere`\n",
				"`/calstatus status` says what calstatus does right now"},
			not: []string{"Secret", "Over", "08:00", "Tomorrow", "Tue"}},
		{name: "subjects not shown", tentative: true,
			want: []string{"* 10:50–11:20 (now) busy — Do Not Disturb until 11:20 CET and the custom status :calendar: `In a meeting`\n",
				"* 14:00–15:00 busy — Do Not Disturb until 16:00 CET and the custom status :calendar: `In a meeting`\n", // tentative follows
				"* 15:00–16:00 tentative — Do Not Disturb until 16:00 CET and the custom status :calendar: `In a meeting`\n"},
			not: []string{"Planning", "Secret", "Maybe", "Home"}},
		{name: "only dnd", settings: store.UserSettings{Only: engine.OnlyDND},
			want: []string{"* 10:50–11:20 (now) busy — Do Not Disturb until 11:20 CET; no custom status, because of your settings\n",
				"* 16:00–18:00 working elsewhere — nothing, because of your settings (`/calstatus settings`)\n"}},
		{name: "only custom", settings: store.UserSettings{Only: engine.OnlyCustom},
			want: []string{"* 10:50–11:20 (now) busy — the custom status :calendar: `In a meeting`; no Do Not Disturb, because of your settings\n",
				"* 16:00–18:00 working elsewhere — the custom status :house: `Working elsewhere`\n"},
			not: []string{"Do Not Disturb until"}},
		{name: "calstatus holds the meeting under way", status: mattermost.Status{Status: engine.DND, Manual: true, DNDEnd: cet(11, 20)}, custom: inMeeting, state: held,
			want: []string{"* 10:50–11:20 (now) busy — Do Not Disturb until 11:20 CET and the custom status :calendar: `In a meeting`\n"}},
		{name: "the user changed the meeting under way", status: mattermost.Status{Status: engine.Away, Manual: true}, custom: inMeeting, state: overrode,
			want: []string{"* 10:50–11:20 (now) busy — the custom status :calendar: `In a meeting`; your status is left to you for this one\n",
				"* 14:00–15:00 busy — Do Not Disturb until 15:00 CET"}},
		{name: "paused", settings: store.UserSettings{PausedUntil: cet(15, 0)},
			want: []string{"calstatus is paused for you until 15:00 CET. The rest of your day",
				"* 10:50–11:20 (now) busy — nothing: calstatus is paused until 15:00 CET\n",
				"* 14:00–15:00 busy — nothing: calstatus is paused until 15:00 CET\n",
				"* 16:00–18:00 working elsewhere — the custom status :house: `Working elsewhere`\n"}},
		{name: "off", settings: store.UserSettings{Disabled: true},
			want: []string{"calstatus is off for you. The rest of your day", "* 10:50–11:20 (now) busy — nothing: calstatus is off for you\n",
				"* 16:00–18:00 working elsewhere — nothing: calstatus is off for you\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv()
			e.h.Policy.ShowSubject, e.h.Policy.TentativeAsBusy = tc.show, tc.tentative
			e.events = day
			if tc.status.Status != "" {
				e.users.status = tc.status
			}
			e.users.user.CustomStatus = tc.custom
			if tc.state.Held() {
				e.store.states[me] = store.UserState{State: tc.state}
			}
			if !tc.settings.IsDefault() {
				e.store.settings[me] = tc.settings
			}
			got := e.serve(t, "today")
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("lacks %q", w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(got, w) {
					t.Errorf("has %q", w)
				}
			}
			// One read of the calendar: from now to the user's midnight.
			if want := (graph.Window{Start: t0, End: cet(24, 0)}); e.graph != 1 || !sameWindow(e.windows[0], want) || e.store.writes != 0 {
				t.Errorf("read %v (%d), wrote %d; want one read of %v", e.windows, e.graph, e.store.writes, want)
			}
			if t.Failed() {
				t.Logf("%s", got)
			}
		})
	}
}

func TestTodayIsShort(t *testing.T) {
	e := newEnv()
	for i := range 25 {
		start := cet(12, 0).Add(time.Duration(i) * 20 * time.Minute)
		e.events = append(e.events, calendar.Event{Start: start, End: start.Add(10 * time.Minute), Status: calendar.Busy})
	}
	got := e.serve(t, "today")
	if n := strings.Count(got, "\n* "); n != MaxTodayItems+1 || !strings.Contains(got, "* … and 5 more.") {
		t.Fatalf("%d items:\n%s", n, got)
	}
}

func TestTodayWithNothingLeft(t *testing.T) {
	e := newEnv()
	e.events = []calendar.Event{{Start: cet(8, 0), End: cet(9, 0), Status: calendar.Busy}}
	if got := e.serve(t, "today"); got != "Your calendar shows nothing more today (Mon 23 Nov, times in CET): calstatus has nothing to do." {
		t.Fatalf("%q", got)
	}
	// Five minutes before midnight: the worker's window, so Graph is asked for at least that; what
	// is tomorrow is not listed.
	e.h.Now = func() time.Time { return cet(23, 55) }
	e.windows = nil
	e.events = []calendar.Event{{Start: cet(24, 0), End: cet(25, 0), Status: calendar.Busy}}
	got := e.serve(t, "today")
	if want := (graph.Window{Start: cet(23, 55), End: cet(24, 5)}); !strings.Contains(got, "nothing more today") || !sameWindow(e.windows[0], want) {
		t.Fatalf("%q, read %v", got, e.windows)
	}
}

func TestTodayWithoutCalendar(t *testing.T) {
	e := newEnv()
	e.users.user.Email = ""
	if got := e.serve(t, "today"); !strings.Contains(got, "no email address") || e.graph != 0 {
		t.Fatalf("%q", got)
	}
	e = newEnv()
	e.h.Schedules = func(_ context.Context, _ string, _ graph.Window) (calendar.Availability, error) {
		return calendar.Availability{}, fmt.Errorf("no_access: denied")
	}
	if got := e.serve(t, "today"); !strings.Contains(got, "could not read your calendar just now (`no_access: denied`)") {
		t.Fatalf("%q", got)
	}
}
