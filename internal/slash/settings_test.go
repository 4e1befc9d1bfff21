package slash

import (
	"strings"
	"testing"
	"time"

	"github.com/calstatus/calstatus/internal/calendar"
	"github.com/calstatus/calstatus/internal/engine"
	"github.com/calstatus/calstatus/internal/store"
)

func yes() *bool { v := true; return &v }
func no() *bool  { v := false; return &v }

func sameBool(a, b *bool) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

func sameSettings(a, b store.UserSettings) bool {
	return a.Disabled == b.Disabled && a.PausedUntil.Equal(b.PausedUntil) && a.Only == b.Only &&
		sameBool(a.ShowSubject, b.ShowSubject) && sameBool(a.Notify, b.Notify) && a.CallsOff == b.CallsOff &&
		a.RepliesOff == b.RepliesOff
}

// The grammar of "/calstatus settings …": each change touches its own setting and nothing else
// (off, on and pause stay as they are); anything else is an error and changes nothing.
func TestChangeSettings(t *testing.T) {
	paused := store.UserSettings{PausedUntil: t0.Add(time.Hour), Only: engine.OnlyDND, ShowSubject: no(), Notify: yes()}
	for _, tc := range []struct {
		from store.UserSettings
		in   string
		want store.UserSettings
	}{
		{store.UserSettings{}, "only dnd", store.UserSettings{Only: engine.OnlyDND}},
		{store.UserSettings{}, "ONLY Custom", store.UserSettings{Only: engine.OnlyCustom}},
		{store.UserSettings{Only: engine.OnlyCustom}, "only both", store.UserSettings{}},
		{store.UserSettings{Only: engine.OnlyCustom}, "only default", store.UserSettings{}},
		{store.UserSettings{}, "subject on", store.UserSettings{ShowSubject: yes()}},
		{store.UserSettings{}, "subject off", store.UserSettings{ShowSubject: no()}},
		{store.UserSettings{ShowSubject: yes()}, "subject default", store.UserSettings{}},
		{store.UserSettings{}, "notify on", store.UserSettings{Notify: yes()}},
		{store.UserSettings{Notify: yes()}, "notify off", store.UserSettings{Notify: no()}},
		{store.UserSettings{Notify: no()}, "notify default", store.UserSettings{}},
		{paused, "reset", store.UserSettings{PausedUntil: paused.PausedUntil}},
		{store.UserSettings{}, "calls off", store.UserSettings{CallsOff: true}},
		{store.UserSettings{CallsOff: true, Notify: yes()}, "Calls On", store.UserSettings{Notify: yes()}},
		{store.UserSettings{CallsOff: true}, "calls default", store.UserSettings{}},
		{store.UserSettings{CallsOff: true, Only: engine.OnlyDND}, "reset", store.UserSettings{}},
		{store.UserSettings{}, "replies off", store.UserSettings{RepliesOff: true}},
		{store.UserSettings{RepliesOff: true, CallsOff: true}, "Replies On", store.UserSettings{CallsOff: true}},
		{store.UserSettings{RepliesOff: true}, "replies default", store.UserSettings{}},
		{store.UserSettings{RepliesOff: true, CallsOff: true, Notify: no()}, "reset", store.UserSettings{}},
		{store.UserSettings{Disabled: true}, "only custom", store.UserSettings{Disabled: true, Only: engine.OnlyCustom}},
		{paused, "subject on", store.UserSettings{PausedUntil: paused.PausedUntil, Only: engine.OnlyDND, ShowSubject: yes(), Notify: yes()}},
	} {
		got, said, err := ChangeSettings(tc.from, strings.Fields(tc.in))
		if err != nil || !sameSettings(got, tc.want) || !strings.HasPrefix(said, "From its next run (within a few minutes), ") {
			t.Errorf("%q from %+v: %+v %q %v, want %+v", tc.in, tc.from, got, said, err, tc.want)
		}
	}
	for _, bad := range []string{"", "only", "only status", "only dnd custom", "subject", "subject maybe", "subject on now", "notify yes",
		"reset now", "off", "colour red", "calls", "calls maybe", "calls off now",
		"replies", "replies maybe", "replies off now"} {
		if got, _, err := ChangeSettings(paused, strings.Fields(bad)); err == nil || !sameSettings(got, paused) {
			t.Errorf("%q: %+v %v, want an error and nothing changed", bad, got, err)
		}
	}
}

// "/calstatus settings" shows the settings, saying which are the organisation's defaults, and
// changes them in the settings row; off, on and pause keep them.
func TestSettingsAreStoredAndShown(t *testing.T) {
	e := newEnv()
	e.h.Policy.Notify = true // NOTIFY_USERS
	got := e.serve(t, "settings")
	for _, w := range []string{"calstatus is **on** for you.", "**Do Not Disturb and a custom status** for your meetings (the default)",
		"subject in the custom status: **not shown** (your organisation's default)", "direct message when calstatus changes your status: **yes** (your organisation's default)",
		"`/calstatus settings only dnd|custom|both`", "`/calstatus settings subject on|off|default`", "`/calstatus settings notify on|off|default`"} {
		if !strings.Contains(got, w) {
			t.Fatalf("settings lacks %q:\n%s", w, got)
		}
	}
	if e.store.writes != 0 {
		t.Fatal("showing the settings wrote")
	}
	got = e.serve(t, "settings only custom")
	if !strings.Contains(got, "only the custom status") || !strings.Contains(got, "never your status (your choice)") ||
		!sameSettings(e.store.settings[me], store.UserSettings{Only: engine.OnlyCustom}) {
		t.Fatalf("only custom: %+v\n%s", e.store.settings[me], got)
	}
	e.serve(t, "settings subject on")
	got = e.serve(t, "settings notify off")
	if !strings.Contains(got, "subject in the custom status: **shown**, never a private meeting's (your choice)") ||
		!strings.Contains(got, "status: **no** (your choice)") {
		t.Fatalf("subject on, notify off:\n%s", got)
	}
	mine := store.UserSettings{Only: engine.OnlyCustom, ShowSubject: yes(), Notify: no()}
	if !sameSettings(e.store.settings[me], mine) {
		t.Fatalf("stored %+v, want %+v", e.store.settings[me], mine)
	}
	// Off, pause and on leave them as they are.
	e.serve(t, "off")
	off := mine
	off.Disabled = true
	if !sameSettings(e.store.settings[me], off) {
		t.Fatalf("off: %+v", e.store.settings[me])
	}
	e.serve(t, "on")
	e.serve(t, "pause 2h")
	paused := mine
	paused.PausedUntil = t0.Add(2 * time.Hour)
	if !sameSettings(e.store.settings[me], paused) {
		t.Fatalf("pause: %+v", e.store.settings[me])
	}
	if got := e.serve(t, "settings"); !strings.Contains(got, "calstatus is **paused** for you until 13:00 CET") {
		t.Fatalf("paused:\n%s", got)
	}
	e.serve(t, "on")
	if !sameSettings(e.store.settings[me], mine) {
		t.Fatalf("on: %+v", e.store.settings[me])
	}
	// Something else changes nothing, and says what is possible, escaped.
	writes := e.store.writes
	if got := e.serve(t, "settings colour `red`"); !strings.Contains(got, "cannot change `colour 'red'`") || !strings.Contains(got, "Nothing changed") ||
		!strings.Contains(got, "`/calstatus settings only dnd|custom|both`") || e.store.writes != writes {
		t.Fatalf("unknown setting: %q", got)
	}
	// Reset: back to the defaults, the row deleted by the store (the zero value).
	e.serve(t, "settings reset")
	if !e.store.settings[me].IsDefault() {
		t.Fatalf("reset: %+v", e.store.settings[me])
	}
}

// The engine honours the settings, through the handler: "status" explains the decision the worker
// makes with the settings as stored (UserSettings.Engine, as LoadStates reads them).
func TestStatusHonoursTheSettings(t *testing.T) {
	meeting := calendar.Event{Start: t0.Add(-10 * time.Minute), End: t0.Add(20 * time.Minute), Status: calendar.Busy, Subject: "Planning"}
	private := meeting
	private.Private = true
	for _, tc := range []struct {
		name     string
		settings store.UserSettings
		show     bool // SHOW_SUBJECT
		event    calendar.Event
		want     []string
		not      []string
	}{
		{name: "the defaults", event: meeting,
			want: []string{"sets Do Not Disturb until 11:20 CET and sets your custom status to :calendar: `In a meeting`"},
			not:  []string{"Planning", "Your settings"}},
		{name: "only custom", settings: store.UserSettings{Only: engine.OnlyCustom}, event: meeting,
			want: []string{"sets your custom status to :calendar: `In a meeting`", "Your settings: only the custom status, never your status"},
			not:  []string{"Do Not Disturb"}},
		{name: "only dnd", settings: store.UserSettings{Only: engine.OnlyDND}, event: meeting,
			want: []string{"sets Do Not Disturb until 11:20 CET", "Your settings: only Do Not Disturb, no custom status"},
			not:  []string{"custom status to", ":calendar:"}},
		{name: "subject on, the organisation's off", settings: store.UserSettings{ShowSubject: yes()}, event: meeting,
			want: []string{"in a meeting (busy) until 11:20 CET: `Planning`", "custom status to :calendar: `In a meeting: Planning`",
				"Your settings: meeting subjects shown (never a private meeting's)"}},
		{name: "subject on, a private meeting", settings: store.UserSettings{ShowSubject: yes()}, event: private,
			want: []string{"custom status to :calendar: `In a meeting`;"}, not: []string{"Planning"}},
		{name: "subject off, the organisation's on", settings: store.UserSettings{ShowSubject: no()}, show: true, event: meeting,
			want: []string{"custom status to :calendar: `In a meeting`;", "Your settings: meeting subjects not shown"}, not: []string{"Planning"}},
		{name: "subject default, the organisation's on", show: true, event: meeting,
			want: []string{"custom status to :calendar: `In a meeting: Planning`"}},
		{name: "notify on", settings: store.UserSettings{Notify: yes()}, event: meeting,
			want: []string{"sets Do Not Disturb", "Your settings: a direct message when it changes your status"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv()
			e.h.Policy.ShowSubject = tc.show
			e.events = []calendar.Event{tc.event}
			if !tc.settings.IsDefault() {
				e.store.settings[me] = tc.settings
			}
			got := e.serve(t, "status")
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
			if t.Failed() {
				t.Logf("%s", got)
			}
		})
	}
}

// The settings reach the engine as stored: what the worker decides (and so notifies) follows them.
func TestUserSettingsEngine(t *testing.T) {
	u := store.UserSettings{Only: engine.OnlyCustom, ShowSubject: yes(), Notify: no(), PausedUntil: t0}
	got := u.Engine()
	if got.Only != engine.OnlyCustom || got.ShowSubject == nil || !*got.ShowSubject || got.Notify == nil || *got.Notify || !got.PausedUntil.Equal(t0) {
		t.Fatalf("%+v", got)
	}
	meeting := calendar.Event{Start: t0, End: t0.Add(time.Hour), Status: calendar.Busy, Subject: "Planning"}
	p := engine.DefaultPolicy
	p.Notify = true // NOTIFY_USERS on; the user turned it off
	d := engine.Decide(engine.Input{Now: t0.Add(time.Minute), Availability: calendar.NewAvailability("me@x.test", []calendar.Event{meeting}),
		Current: engine.Current{Status: engine.Online}, Settings: u.Engine(), Policy: p})
	if d.SetStatus != nil || d.SetCustom == nil || d.SetCustom.Text != "In a meeting: Planning" || d.Notify != "" {
		t.Fatalf("decision %+v", d)
	}
}

// Off is not silently turned into a pause: a user who is off and types pause is told so, and
// nothing changes.
func TestPauseWhileOff(t *testing.T) {
	e := newEnv()
	e.serve(t, "off")
	writes := e.store.writes
	got := e.serve(t, "pause 2h")
	if !strings.Contains(got, "calstatus is off for you, so there is nothing to pause: it stays off, and nothing changed.") ||
		!strings.Contains(got, "`/calstatus on` turns it back on") || e.store.writes != writes ||
		!sameSettings(e.store.settings[me], store.UserSettings{Disabled: true}) {
		t.Fatalf("pause while off: %q %+v", got, e.store.settings[me])
	}
	// Paused, a new pause moves its end; off replaces a pause, and says so.
	e.serve(t, "on")
	e.serve(t, "pause 2h")
	if got := e.serve(t, "pause 1h"); !strings.Contains(got, "paused for you until 12:00 CET (instead of 13:00 CET)") ||
		!e.store.settings[me].PausedUntil.Equal(t0.Add(time.Hour)) {
		t.Fatalf("pause while paused: %q %+v", got, e.store.settings[me])
	}
	if got := e.serve(t, "off"); !strings.HasPrefix(got, "calstatus is off for you (instead of paused until 12:00 CET).") ||
		!sameSettings(e.store.settings[me], store.UserSettings{Disabled: true}) {
		t.Fatalf("off while paused: %q %+v", got, e.store.settings[me])
	}
	if got := e.serve(t, "off"); !strings.HasPrefix(got, "calstatus is already off for you") {
		t.Fatalf("off twice: %q", got)
	}
}

// The replies say plainly what happens, in the user's words: no "gives back what it holds".
func TestRepliesSayWhatHappens(t *testing.T) {
	e := newEnv()
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"off", []string{"calstatus is off for you.", "its next run (within a few minutes) puts your previous status back and clears that custom status",
			"it won't change your status or custom status until you type `/calstatus on`."}},
		{"on", []string{"calstatus is on for you again: from its next run (within a few minutes) it sets your status from your calendar."}},
		{"on", []string{"calstatus is already on for you"}},
		{"pause until 14:00", []string{"calstatus is paused for you until 14:00 CET.", "puts your previous status back and clears that custom status",
			"It won't change your status or custom status again before the pause ends; `/calstatus on` ends it now."}},
		{"on", []string{"Your pause is over: calstatus is on for you again."}},
		{"help", []string{"`/calstatus today`", "`/calstatus settings`", "settings only dnd|custom|both", "`until monday` (9:00; on a Monday, next week's)",
			"Typed before 4:00, `tomorrow` is the coming morning (the same date)"}},
	} {
		got := e.serve(t, tc.text)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: lacks %q:\n%s", tc.text, w, got)
			}
		}
		for _, jargon := range []string{"gives back", "what it holds", "leaves you alone"} {
			if strings.Contains(got, jargon) {
				t.Errorf("%s: says %q:\n%s", tc.text, jargon, got)
			}
		}
	}
}

// "/calstatus pause until tomorrow" typed at 00:30 in the user's time zone ends that morning.
func TestPauseUntilTomorrowAfterMidnight(t *testing.T) {
	e := newEnv()
	at := time.Date(2026, 11, 23, 23, 30, 0, 0, time.UTC) // Tue 24 Nov 00:30 in Berlin
	e.h.Now = func() time.Time { return at }
	if got := e.serve(t, "pause until tomorrow"); !strings.Contains(got, "paused for you until 09:00 CET") ||
		!e.store.settings[me].PausedUntil.Equal(time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)) {
		t.Fatalf("%q %+v", got, e.store.settings[me])
	}
	e.users.user.TimeZone = nil // a user with no time zone: TIME_ZONE (UTC), Mon 23:30
	e.serve(t, "on")
	if got := e.serve(t, "pause until tomorrow"); !strings.Contains(got, "until Tue 09:00 UTC") {
		t.Fatalf("in UTC: %q", got)
	}
}

// "settings calls" is shown where the organisation syncs Teams calls (PRESENCE_SYNC), and a user's
// choice is kept and said either way.
func TestCallsSetting(t *testing.T) {
	e := newEnv()
	if got := e.serve(t, "settings"); strings.Contains(got, "Teams calls and presentations:") {
		t.Fatalf("calls shown where the organisation does not sync them:\n%s", got)
	}
	e.h.Presence = true
	if got := e.serve(t, "settings"); !strings.Contains(got, "Teams calls and presentations: **Do Not Disturb**, as for a meeting (the default)") {
		t.Fatalf("calls on by default:\n%s", got)
	}
	got := e.serve(t, "settings calls off")
	if !strings.Contains(got, "Teams calls and presentations: **left alone** (your choice).") || !e.store.settings[me].CallsOff {
		t.Fatalf("calls off: %+v\n%s", e.store.settings[me], got)
	}
	e.h.Presence = false
	if got := e.serve(t, "settings"); !strings.Contains(got, "**left alone** (your choice; your organisation has not turned them on)") {
		t.Fatalf("calls off, organisation off:\n%s", got)
	}
}

// "settings replies" is offered and shown where the organisation syncs Outlook's automatic replies
// (AUTOMATIC_REPLIES_SYNC), and a user's choice is kept and said either way. With it off, the
// listing, the usage and help say nothing of replies.
func TestRepliesSetting(t *testing.T) {
	e := newEnv()
	for _, cmd := range []string{"settings", "help", "settings colour red"} {
		if got := e.serve(t, cmd); strings.Contains(got, "Automatic replies:") || strings.Contains(got, "replies on|off") {
			t.Fatalf("%s offers replies where the organisation does not sync them:\n%s", cmd, got)
		}
	}
	e.h.AutomaticReplies = true
	got := e.serve(t, "settings")
	for _, w := range []string{"* Automatic replies: **on** — while Outlook's automatic replies are on, Mattermost answers your direct messages with them " +
		"and shows you Out of office (the default).", "`/calstatus settings calls on|off`, `/calstatus settings replies on|off`, `/calstatus settings reset`"} {
		if !strings.Contains(got, w) {
			t.Fatalf("replies on by default: lacks %q:\n%s", w, got)
		}
	}
	if got := e.serve(t, "help"); !strings.Contains(got, "`settings replies on|off`, `settings reset`") {
		t.Fatalf("help lacks replies:\n%s", got)
	}
	got = e.serve(t, "settings replies off")
	if !strings.Contains(got, "calstatus leaves Mattermost's automatic replies to you; if it has turned them on") ||
		!strings.Contains(got, "* Automatic replies: **off** — calstatus leaves Mattermost's automatic replies to you (your choice).") ||
		!e.store.settings[me].RepliesOff || !e.store.settings[me].Engine().RepliesOff {
		t.Fatalf("replies off: %+v\n%s", e.store.settings[me], got)
	}
	e.h.AutomaticReplies = false
	if got := e.serve(t, "settings"); !strings.Contains(got, "* Automatic replies: **off** — calstatus leaves Mattermost's automatic replies to you "+
		"(your choice; your organisation has not turned them on).") || strings.Contains(got, "replies on|off") {
		t.Fatalf("replies off, organisation off:\n%s", got)
	}
	got = e.serve(t, "settings replies on")
	if !strings.Contains(got, "Mattermost answers your direct messages with them and shows you Out of office (where your organisation has turned this on).") ||
		strings.Contains(got, "Automatic replies:") || e.store.settings[me].RepliesOff {
		t.Fatalf("replies on, organisation off: %+v\n%s", e.store.settings[me], got)
	}
	// "status" names the choice among the user's own where the organisation syncs replies.
	e.serve(t, "settings replies off")
	if got := e.serve(t, "status"); strings.Contains(got, "automatic replies left to you") {
		t.Fatalf("status, organisation off:\n%s", got)
	}
	e.h.AutomaticReplies = true
	if got := e.serve(t, "status"); !strings.Contains(got, "Your settings: automatic replies left to you") {
		t.Fatalf("status, replies off:\n%s", got)
	}
}
