package slash

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/calstatus/calstatus/internal/calendar"
	"github.com/calstatus/calstatus/internal/engine"
	"github.com/calstatus/calstatus/internal/graph"
	"github.com/calstatus/calstatus/internal/mattermost"
	"github.com/calstatus/calstatus/internal/store"
	"github.com/calstatus/calstatus/internal/web"
)

const (
	token = "abcdefghijklmnopqrstuvwxyz"
	me    = "uuuuuuuuuuuuuuuuuuuuuuuuuu"
)

var (
	t0     = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC) // a Monday
	berlin = mustLoad("Europe/Berlin")
)

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

type fakeStore struct {
	states   map[string]store.UserState
	settings map[string]store.UserSettings
	calls    int
	writes   int
	fail     error
}

func (s *fakeStore) LoadStates(_ context.Context, ids []string) (map[string]store.UserState, error) {
	s.calls++
	out := map[string]store.UserState{}
	for _, id := range ids {
		st, ok := s.states[id]
		if set, has := s.settings[id]; has {
			st.Settings, ok = set.Engine(), true
		}
		if ok {
			out[id] = st
		}
	}
	return out, s.fail
}

func (s *fakeStore) LoadSettings(_ context.Context, id string) (store.UserSettings, error) {
	s.calls++
	return s.settings[id], s.fail
}

func (s *fakeStore) SaveSettings(_ context.Context, id string, u store.UserSettings) error {
	s.calls++
	if s.fail != nil {
		return s.fail
	}
	s.writes++
	s.settings[id] = u
	return nil
}

type fakeUsers struct {
	user   mattermost.User
	status mattermost.Status
	calls  int
}

func (f *fakeUsers) Server(context.Context) (mattermost.Server, error) {
	return mattermost.ServerFor("10.11.0"), nil
}

func (f *fakeUsers) Users(_ context.Context, ids []string) ([]mattermost.User, error) {
	f.calls++
	if len(ids) == 1 && ids[0] == f.user.ID {
		return []mattermost.User{f.user}, nil
	}
	return nil, nil
}

func (f *fakeUsers) UserStatus(context.Context, string) (mattermost.Status, error) {
	f.calls++
	return f.status, nil
}

type env struct {
	h      *Handler
	store  *fakeStore
	users  *fakeUsers
	events []calendar.Event
	graph  int
}

func newEnv() *env {
	e := &env{store: &fakeStore{states: map[string]store.UserState{}, settings: map[string]store.UserSettings{}},
		users: &fakeUsers{user: mattermost.User{ID: me, Username: "me", Email: "me@x.test", TimeZone: berlin}, status: mattermost.Status{Status: engine.Online}}}
	e.h = &Handler{Token: token, Store: e.store, Users: e.users, Policy: engine.DefaultPolicy, Lookahead: 10 * time.Minute,
		Now: func() time.Time { return t0 },
		Schedules: func(_ context.Context, email string, w graph.Window) (calendar.Availability, error) {
			e.graph++
			if email != "me@x.test" || !w.Start.Equal(t0) || !w.End.Equal(t0.Add(10*time.Minute)) {
				return calendar.Availability{}, errors.New("wrong call")
			}
			return calendar.NewAvailability(email, e.events), nil
		}}
	return e
}

// request is a POST as Mattermost v6.7.2 sends it (app/command.go).
func request(tok, text string, header bool) web.Request {
	p := url.Values{}
	p.Set("token", tok)
	p.Set("team_id", "tttttttttttttttttttttttttt")
	p.Set("team_domain", "contoso")
	p.Set("channel_id", "cccccccccccccccccccccccccc")
	p.Set("channel_name", "town-square")
	p.Set("user_id", me)
	p.Set("user_name", "me")
	p.Set("command", "/calstatus")
	p.Set("text", text)
	p.Set("trigger_id", "trigger")
	p.Set("response_url", "https://chat.example/hooks/commands/x")
	h := map[string][]string{"Accept": {"application/json"}, "Content-Type": {"application/x-www-form-urlencoded"}}
	if header {
		h["Authorization"] = []string{"Token " + tok}
	}
	return web.Request{Method: "POST", URL: "https://app.example/api/SlashCommand", Headers: h, Body: []byte(p.Encode())}
}

// serve runs the command and reads the answer the way Mattermost does (model.CommandResponseFromHTTPBody).
func (e *env) serve(t *testing.T, text string) string {
	t.Helper()
	resp, err := e.h.Serve(context.Background(), slog.New(slog.DiscardHandler), request(token, text, true))
	if err != nil || resp.Status != 200 {
		t.Fatalf("%q: %d %v", text, resp.Status, err)
	}
	cr, err := model.CommandResponseFromHTTPBody(resp.Headers["Content-Type"], strings.NewReader(resp.Body))
	if err != nil || cr.ResponseType != model.CommandResponseTypeEphemeral {
		t.Fatalf("%q: answer %+v %v", text, cr, err)
	}
	return cr.Text
}

func TestTokenIsRequiredAndChecked(t *testing.T) {
	e := newEnv()
	wrong := "zyxwvutsrqponmlkjihgfedcba"
	noToken := request("", "off", false)
	badScheme := request(token, "off", false)
	badScheme.Headers["Authorization"] = []string{"Bearer " + token}
	mixed := request(token, "off", false) // the right form token, another in the header
	mixed.Headers["Authorization"] = []string{"Token " + wrong}
	for name, r := range map[string]web.Request{
		"missing":            noToken,
		"wrong":              request(wrong, "off", true),
		"wrong, form only":   request(wrong, "off", false),
		"a prefix":           request(token[:25], "off", true),
		"longer":             request(token+"x", "off", true),
		"another scheme":     badScheme,
		"header disagrees":   mixed,
		"not a form":         {Method: "POST", Body: []byte("%zz;token=" + token)},
		"token set, no body": {Method: "POST"},
	} {
		resp, err := e.h.Serve(context.Background(), slog.New(slog.DiscardHandler), r)
		if err != nil || resp.Status != 401 || !strings.HasPrefix(resp.Headers["Content-Type"], "text/plain") || strings.Contains(resp.Body, token) {
			t.Errorf("%s: %d %q %v", name, resp.Status, resp.Body, err)
		}
	}
	// No token configured: everything is refused.
	e.h.Token = ""
	if resp, _ := e.h.Serve(context.Background(), slog.New(slog.DiscardHandler), request("", "off", false)); resp.Status != 401 {
		t.Errorf("no token configured: %d", resp.Status)
	}
	if e.store.calls != 0 || e.users.calls != 0 || e.graph != 0 {
		t.Fatalf("a refused request reached the store (%d), Mattermost (%d) or Graph (%d)", e.store.calls, e.users.calls, e.graph)
	}
	// The right token, in the form, the header or both; any of several.
	e.h.Token = wrong + " , " + token
	for name, r := range map[string]web.Request{"form": request(token, "help", false), "both": request(token, "help", true)} {
		if resp, _ := e.h.Serve(context.Background(), slog.New(slog.DiscardHandler), r); resp.Status != 200 {
			t.Errorf("%s: %d %s", name, resp.Status, resp.Body)
		}
	}
	headerOnly := request("", "help", false)
	headerOnly.Headers["authorization"] = []string{"token " + token}
	if resp, _ := e.h.Serve(context.Background(), slog.New(slog.DiscardHandler), headerOnly); resp.Status != 200 {
		t.Errorf("header only: %d %s", resp.Status, resp.Body)
	}
}

func TestOnOffPause(t *testing.T) {
	e := newEnv()
	if got := e.serve(t, "off"); !strings.Contains(got, "calstatus is off for you") || !strings.Contains(got, "`/calstatus on`") ||
		e.store.settings[me] != (store.UserSettings{Disabled: true}) {
		t.Fatalf("off: %q %+v", got, e.store.settings[me])
	}
	if got := e.serve(t, "ON"); !strings.Contains(got, "on for you again") || e.store.settings[me] != (store.UserSettings{}) {
		t.Fatalf("on: %q %+v", got, e.store.settings[me])
	}
	if got := e.serve(t, "on"); !strings.Contains(got, "already on") {
		t.Fatalf("on again: %q", got)
	}
	if got := e.serve(t, "pause 2h"); !strings.Contains(got, "paused for you until 13:00 CET") || !e.store.settings[me].PausedUntil.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("pause 2h: %q %+v", got, e.store.settings[me])
	}
	// "until tomorrow" is 9:00 the next day in the user's own time zone.
	if got := e.serve(t, "pause until tomorrow"); !strings.Contains(got, "until Tue 09:00 CET") ||
		!e.store.settings[me].PausedUntil.Equal(time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)) {
		t.Fatalf("pause until tomorrow: %q %+v", got, e.store.settings[me])
	}
	// A user with no time zone of their own: TIME_ZONE.
	e.users.user.TimeZone = nil
	e.h.Policy.Location = mustLoad("America/New_York")
	if got := e.serve(t, "pause until tomorrow"); !strings.Contains(got, "until Tue 09:00 EST") ||
		!e.store.settings[me].PausedUntil.Equal(time.Date(2026, 11, 24, 14, 0, 0, 0, time.UTC)) {
		t.Fatalf("pause until tomorrow in TIME_ZONE: %q %+v", got, e.store.settings[me])
	}
	// A pause that cannot be read changes nothing and says why, escaped.
	before, writes := e.store.settings[me], e.store.writes
	if got := e.serve(t, "pause [soon](http://x)"); !strings.Contains(got, "cannot pause for `[soon](http://x)`") || e.store.writes != writes || e.store.settings[me] != before {
		t.Fatalf("bad pause: %q", got)
	}
	// A store failure is said plainly.
	e.store.fail = errors.New("503")
	if got := e.serve(t, "off"); !strings.Contains(got, "could not save your setting") {
		t.Fatalf("store down: %q", got)
	}
}

func TestHelpAndUnknown(t *testing.T) {
	e := newEnv()
	for _, text := range []string{"", "help", "  HELP  "} {
		got := e.serve(t, text)
		for _, w := range []string{"`/calstatus status`", "`/calstatus off`", "`/calstatus on`", "`/calstatus pause 2h`", "For you, calstatus is on."} {
			if !strings.Contains(got, w) {
				t.Fatalf("help %q lacks %q: %s", text, w, got)
			}
		}
	}
	got := e.serve(t, "@all <b>hi</b>")
	if !strings.HasPrefix(got, "calstatus does not know `@all`.") || !strings.Contains(got, "`/calstatus status`") {
		t.Fatalf("unknown: %q", got)
	}
	if e.store.writes != 0 {
		t.Fatal("help wrote")
	}
}

func TestStatusExplains(t *testing.T) {
	meeting := calendar.Event{Start: t0.Add(-10 * time.Minute), End: t0.Add(20 * time.Minute), Status: calendar.Busy, Subject: "Planning"}
	inMtg := &mattermost.CustomStatus{Emoji: engine.MeetingEmoji, Text: "In a meeting", ExpiresAt: meeting.End}
	held := engine.Decide(engine.Input{Now: t0, Availability: calendar.NewAvailability("me@x.test", []calendar.Event{meeting}),
		Current: engine.Current{Status: engine.Online}, Policy: engine.DefaultPolicy}).NewState
	ourDND := mattermost.Status{Status: engine.DND, Manual: true, DNDEnd: meeting.End}
	overrode := engine.Decide(engine.Input{Now: t0, Availability: calendar.NewAvailability("me@x.test", []calendar.Event{meeting}),
		Current: engine.Current{Status: engine.Away, Manual: true, Custom: &engine.CustomStatus{Emoji: engine.MeetingEmoji, Text: "In a meeting", ExpiresAt: meeting.End}},
		State:   held, Policy: engine.DefaultPolicy}).NewState
	tests := []struct {
		name     string
		events   []calendar.Event
		status   mattermost.Status
		custom   *mattermost.CustomStatus
		state    engine.State
		settings store.UserSettings
		want     []string
	}{
		{name: "in a meeting, DND set over online", events: []calendar.Event{meeting}, status: ourDND, custom: inMtg, state: held,
			want: []string{"Your calendar shows you in a meeting (busy) until 11:20 CET: `Planning`.",
				"calstatus set Do Not Disturb until 11:20 CET and the custom status :calendar: `In a meeting`; you'll be set back to Online then."}},
		{name: "the user overrode", events: []calendar.Event{meeting}, status: mattermost.Status{Status: engine.Away, Manual: true}, custom: inMtg, state: overrode,
			want: []string{"You changed your status during this event, so calstatus leaves it alone (Away)."}},
		{name: "paused", events: []calendar.Event{meeting}, status: ourDND, custom: inMtg, state: held, settings: store.UserSettings{PausedUntil: t0.Add(22 * time.Hour)},
			want: []string{"calstatus is paused for you until Tue 09:00 CET.", "At its next run calstatus sets you back to Online and clears its custom status.",
				"Then it leaves you alone until the pause ends."}},
		{name: "off", events: []calendar.Event{meeting}, status: mattermost.Status{Status: engine.Online}, settings: store.UserSettings{Disabled: true},
			want: []string{"calstatus is off for you.", "in a meeting (busy)", "It leaves your status and custom status alone."}},
		{name: "free", status: mattermost.Status{Status: engine.Online},
			want: []string{"Your calendar shows you free now.", "calstatus holds nothing: your status (Online) is yours."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv()
			e.events, e.users.status, e.users.user.CustomStatus = tc.events, tc.status, tc.custom
			if tc.state.Held() {
				e.store.states[me] = store.UserState{State: tc.state}
			}
			if tc.settings != (store.UserSettings{}) {
				e.store.settings[me] = tc.settings
			}
			got := e.serve(t, "status")
			rest := got
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("%q\nlacks (in order) %q", got, w)
				}
				rest = rest[i+len(w):]
			}
			if e.store.writes != 0 || e.graph != 1 {
				t.Fatalf("status wrote (%d) or read the calendar %d times", e.store.writes, e.graph)
			}
		})
	}
}

func TestStatusEscapesWhatOthersControl(t *testing.T) {
	e := newEnv()
	e.events = []calendar.Event{{Start: t0, End: t0.Add(time.Hour), Status: calendar.Busy,
		Subject: "**urgent** [click](https://evil.example) <img src=x onerror=alert(1)> `code` @channel :smile:\n\n# heading\u202e"}}
	e.users.user.CustomStatus = &mattermost.CustomStatus{Emoji: "coffee", Text: "_lunch_ ](x)"}
	got := e.serve(t, "status")
	want := "`**urgent** [click](https://evil.example) <img src=x onerror=alert(1)> 'code' @channel :smile: # heading`"
	if !strings.Contains(got, want) || !strings.Contains(got, "`_lunch_ ](x)`") || strings.Contains(got, "\n") || strings.Contains(got, "\u202e") {
		t.Fatalf("not escaped: %q", got)
	}
	// Outside code spans, nothing of theirs.
	outside := got
	for {
		i := strings.Index(outside, "`")
		if i < 0 {
			break
		}
		j := strings.Index(outside[i+1:], "`")
		if j < 0 {
			t.Fatalf("unbalanced code span in %q", got)
		}
		outside = outside[:i] + outside[i+1+j+1:]
	}
	for _, bad := range []string{"urgent", "evil", "<img", "@channel", "lunch"} {
		if strings.Contains(outside, bad) {
			t.Fatalf("%q outside a code span: %q", bad, outside)
		}
	}
}

func TestStatusWithoutCalendar(t *testing.T) {
	e := newEnv()
	e.h.Schedules = func(context.Context, string, graph.Window) (calendar.Availability, error) {
		return calendar.Availability{}, errors.New("no_access: `Access` denied")
	}
	e.store.settings[me] = store.UserSettings{Disabled: true}
	got := e.serve(t, "status")
	if !strings.HasPrefix(got, "calstatus is off for you. calstatus could not read your calendar just now (`no_access: 'Access' denied`)") {
		t.Fatalf("%q", got)
	}
}

func TestCode(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                     "`plain`",
		"  a\n\tb  ":                "`a b`",
		"``x``":                     "`''x''`",
		"":                          "(empty)",
		"\u200b\u202e":              "(empty)",
		strings.Repeat("é", 150):    "`" + strings.Repeat("é", 100) + "…`",
		"[a](javascript:alert(1))":  "`[a](javascript:alert(1))`",
		"line1\r\n\r\nline2 @here ": "`line1 line2 @here`",
	} {
		if got := Code(in); got != want {
			t.Errorf("Code(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParsePause(t *testing.T) {
	tokyo, la := mustLoad("Asia/Tokyo"), mustLoad("America/Los_Angeles")
	late := time.Date(2026, 11, 23, 23, 30, 0, 0, time.UTC) // Mon 23:30 UTC: Tue 08:30 in Tokyo, Mon 15:30 in Los Angeles
	for _, tc := range []struct {
		in   string
		now  time.Time
		loc  *time.Location
		want time.Time
	}{
		{"2h", t0, berlin, t0.Add(2 * time.Hour)},
		{"30m", t0, berlin, t0.Add(30 * time.Minute)},
		{"1h30m", t0, nil, t0.Add(90 * time.Minute)},
		{"1d", t0, nil, t0.Add(24 * time.Hour)},
		{"2 hours", t0, nil, t0.Add(2 * time.Hour)},
		{"for 45 minutes", t0, nil, t0.Add(45 * time.Minute)},
		{"until tomorrow", late, tokyo, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)}, // Wed 09:00 JST
		{"until tomorrow", late, la, time.Date(2026, 11, 24, 17, 0, 0, 0, time.UTC)},   // Tue 09:00 PST
		{"Tomorrow", late, time.UTC, time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)},
		{"until 14:00", t0, berlin, time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC)},
		{"until 9:00", t0, berlin, time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)}, // already past today: tomorrow
		{"until 5pm", t0, time.UTC, time.Date(2026, 11, 23, 17, 0, 0, 0, time.UTC)},
		{"until 12am", t0, time.UTC, time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)},
		{"until monday", t0, time.UTC, time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}, // today is Monday: next week
		{"until wed", t0, time.UTC, time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)},
		{"until sunday", t0, time.UTC, time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)},
	} {
		got, err := ParsePause(tc.in, tc.now, tc.loc)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("ParsePause(%q, %v, %v) = %v, %v; want %v", tc.in, tc.now, tc.loc, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "0m", "-1h", "40d", "until 25:00", "until 13pm", "until yesterday", "soon", "2 fortnights", "99999999999999d"} {
		if got, err := ParsePause(bad, t0, berlin); err == nil {
			t.Errorf("ParsePause(%q) = %v, want an error", bad, got)
		}
	}
}

type fakeRegistrar struct {
	existing *mattermost.SlashCommand
	got      mattermost.SlashCommand
	team     string
}

func (f *fakeRegistrar) RegisterCommand(_ context.Context, team string, cmd mattermost.SlashCommand) (mattermost.SlashCommand, error) {
	f.got, f.team = cmd, team
	if f.existing != nil {
		out := cmd
		out.Token, out.Created = f.existing.Token, false
		return out, nil
	}
	out := cmd
	if out.Token == "" {
		out.Token = "mmmmmmmmmmmmmmmmmmmmmmmmmm"
	}
	out.Created = true
	return out, nil
}

func TestRegister(t *testing.T) {
	ctx := context.Background()
	f := &fakeRegistrar{}
	tok, err := Register(ctx, f, "contoso", "https://func-calstatus.azurewebsites.net/", "")
	if err != nil || tok != "mmmmmmmmmmmmmmmmmmmmmmmmmm" || f.team != "contoso" || f.got.URL != "https://func-calstatus.azurewebsites.net/api/SlashCommand" ||
		f.got.Trigger != "calstatus" || f.got.AutocompleteHint == "" || f.got.Token != "" {
		t.Fatalf("new command: %q %v %+v", tok, err, f.got)
	}
	// With MATTERMOST_SLASH_TOKEN set: a new command takes its first token.
	if tok, err := Register(ctx, f, "sales", "https://app.example", token+","+strings.Repeat("z", 26)); err != nil || tok != token || f.got.Token != token {
		t.Fatalf("given token: %q %v", tok, err)
	}
	// An existing command keeps its token: fine if it is one of ours, reported if not.
	f.existing = &mattermost.SlashCommand{Token: strings.Repeat("z", 26)}
	if tok, err := Register(ctx, f, "sales", "https://app.example", token+","+strings.Repeat("z", 26)); err != nil || tok != strings.Repeat("z", 26) {
		t.Fatalf("existing, known token: %q %v", tok, err)
	}
	if tok, err := Register(ctx, f, "sales", "https://app.example", token); !errors.Is(err, ErrOtherToken) || tok != strings.Repeat("z", 26) {
		t.Fatalf("existing, other token: %q %v", tok, err)
	}
	for _, bad := range []string{"", "app.example", "ftp://app.example"} {
		if _, err := Register(ctx, f, "sales", bad, ""); err == nil {
			t.Errorf("app URL %q accepted", bad)
		}
	}
	if _, err := Register(ctx, f, "sales", "https://app.example", "short"); err == nil {
		t.Error("a malformed token accepted")
	}
}
