package slash

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
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
	token = "abcdefghijklmnopqrstuvwxyz" // team's
	team  = "tttttttttttttttttttttttttt"
	me    = "uuuuuuuuuuuuuuuuuuuuuuuuuu"
	// Another team, with its own token.
	otherToken = "zyxwvutsrqponmlkjihgfedcba"
	otherTeam  = "oooooooooooooooooooooooooo"
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
	user    mattermost.User
	status  mattermost.Status
	members map[string]bool // team id + user id
	failed  error           // of the membership check
	calls   int
}

func (f *fakeUsers) IsTeamMember(_ context.Context, teamID, userID string) (bool, error) {
	f.calls++
	return f.members[teamID+userID], f.failed
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
	h       *Handler
	store   *fakeStore
	users   *fakeUsers
	events  []calendar.Event
	graph   int
	windows []graph.Window // asked of Graph
}

func newEnv() *env {
	e := &env{store: &fakeStore{states: map[string]store.UserState{}, settings: map[string]store.UserSettings{}},
		users: &fakeUsers{user: mattermost.User{ID: me, Username: "me", Email: "me@x.test", TimeZone: berlin}, status: mattermost.Status{Status: engine.Online},
			members: map[string]bool{team + me: true, otherTeam + me: true}}}
	e.h = &Handler{Token: team + "=" + token + "," + otherTeam + "=" + otherToken, Store: e.store, Users: e.users, Policy: engine.DefaultPolicy, Lookahead: 10 * time.Minute,
		Now: func() time.Time { return t0 },
		Schedules: func(_ context.Context, email string, w graph.Window) (calendar.Availability, error) {
			e.graph++
			e.windows = append(e.windows, w)
			if email != "me@x.test" {
				return calendar.Availability{}, errors.New("wrong call")
			}
			return calendar.NewAvailability(email, e.events), nil
		}}
	return e
}

// statusWindow is the window "status" reads: the worker's.
var statusWindow = graph.Window{Start: t0, End: t0.Add(10 * time.Minute)}

// request is a POST as Mattermost v6.7.2 sends it (app/command.go), from team.
func request(tok, text string, header bool) web.Request {
	return requestFrom(team, me, tok, text, header)
}

func requestFrom(teamID, userID, tok, text string, header bool) web.Request {
	p := url.Values{}
	p.Set("token", tok)
	p.Set("team_id", teamID)
	p.Set("team_domain", "contoso")
	p.Set("channel_id", "cccccccccccccccccccccccccc")
	p.Set("channel_name", "town-square")
	p.Set("user_id", userID)
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
	wrong := "wrongwrongwrongwrongwrong1"
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
	// The right token, in the form, the header or both; its entry anywhere in the setting.
	e.h.Token = otherTeam + "=" + otherToken + " , " + team + " = " + token
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

// A team's token works only with that team's id: a team admin can read their own team's token.
func TestTokenWorksOnlyForItsTeam(t *testing.T) {
	e := newEnv()
	for name, r := range map[string]web.Request{
		"another team's token":     requestFrom(team, me, otherToken, "off", true),
		"the token, another team":  requestFrom(otherTeam, me, token, "off", true),
		"the token, form only":     requestFrom(otherTeam, me, token, "off", false),
		"a team without a token":   requestFrom("nnnnnnnnnnnnnnnnnnnnnnnnnn", me, token, "off", true),
		"no team":                  requestFrom("", me, token, "off", true),
		"the token as the team id": requestFrom(token, me, token, "off", true),
	} {
		resp, err := e.h.Serve(context.Background(), slog.New(slog.DiscardHandler), r)
		if err != nil || resp.Status != 401 {
			t.Errorf("%s: %d %q %v", name, resp.Status, resp.Body, err)
		}
	}
	// A bare token (the setting before tokens were bound to teams) serves no team.
	e.h.Token = token
	if resp, _ := e.h.Serve(context.Background(), slog.New(slog.DiscardHandler), request(token, "off", true)); resp.Status != 401 {
		t.Errorf("a bare token: %d %q", resp.Status, resp.Body)
	}
	if e.store.calls != 0 || e.users.calls != 0 || e.graph != 0 {
		t.Fatalf("a refused request reached the store (%d), Mattermost (%d) or Graph (%d)", e.store.calls, e.users.calls, e.graph)
	}
	// Each team with its own token.
	e.h.Token = team + "=" + token + "," + otherTeam + "=" + otherToken
	for teamID, tok := range map[string]string{team: token, otherTeam: otherToken} {
		if resp, _ := e.h.Serve(context.Background(), slog.New(slog.DiscardHandler), requestFrom(teamID, me, tok, "help", true)); resp.Status != 200 {
			t.Errorf("team %s with its token: %d %q", teamID, resp.Status, resp.Body)
		}
	}
}

// user_id must be a Mattermost id, and of a member of the request's team, before anything is read
// or stored under it.
func TestUserMustBeAMemberOfTheTeam(t *testing.T) {
	e := newEnv()
	for _, userID := range []string{"", "someone", "uuuuuuuuuuuuuuuuuuuuuuuuuuu", "uuuuuuuuuuuuuuuuuuuuuuuu/.", "../../uuuuuuuuuuuuuuuuuuuu"} {
		resp, err := e.h.Serve(context.Background(), slog.New(slog.DiscardHandler), requestFrom(team, userID, token, "off", true))
		if err != nil || resp.Status != 400 || !strings.Contains(resp.Body, "user_id is not a Mattermost user id") {
			t.Errorf("user_id %q: %d %q %v", userID, resp.Status, resp.Body, err)
		}
	}
	if e.store.calls != 0 || e.users.calls != 0 {
		t.Fatalf("an invalid user_id reached the store (%d) or Mattermost (%d)", e.store.calls, e.users.calls)
	}
	stranger := "ssssssssssssssssssssssssss"
	for _, text := range []string{"off", "pause 2h", "on", "status", "help"} {
		resp, err := e.h.Serve(context.Background(), slog.New(slog.DiscardHandler), requestFrom(team, stranger, token, text, true))
		if err != nil || resp.Status != 403 {
			t.Errorf("%s for a non-member: %d %q %v", text, resp.Status, resp.Body, err)
		}
	}
	e.users.failed = errors.New("mattermost: get team member: HTTP 503")
	if got := e.serve(t, "off"); !strings.Contains(got, "could not check your team membership") {
		t.Errorf("membership unknown: %q", got)
	}
	if e.store.calls != 0 || e.graph != 0 || len(e.store.settings) != 0 {
		t.Fatalf("a refused user reached the store (%d calls, %v) or Graph (%d)", e.store.calls, e.store.settings, e.graph)
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
	if got := e.serve(t, "off"); !strings.Contains(got, "could not read your settings just now") {
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
			want: []string{"Your calendar shows you in a meeting (busy) until 11:20 CET.",
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
			if e.store.writes != 0 || e.graph != 1 || e.windows[0] != statusWindow {
				t.Fatalf("status wrote (%d) or read the calendar %d times (%v)", e.store.writes, e.graph, e.windows)
			}
		})
	}
}

func TestStatusEscapesWhatOthersControl(t *testing.T) {
	e := newEnv()
	e.h.Policy.ShowSubject = true
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

// status shows the meeting's subject only where SHOW_SUBJECT shows it (in the custom status):
// with it off, calstatus keeps the subject to itself here too.
func TestStatusShowsTheSubjectOnlyWithShowSubject(t *testing.T) {
	for _, show := range []bool{false, true} {
		e := newEnv()
		e.h.Policy.ShowSubject = show
		e.events = []calendar.Event{{Start: t0, End: t0.Add(time.Hour), Status: calendar.Busy, Subject: "Layoffs 2027"}}
		got := e.serve(t, "status")
		if !strings.Contains(got, "in a meeting (busy)") || strings.Contains(got, "Layoffs") != show {
			t.Errorf("SHOW_SUBJECT %v: %q", show, got)
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

// fakeRegistrar keeps teams' commands as Mattermost does: a new command gets a token Mattermost
// makes, an updated one keeps its token, a regenerated one gets a new one.
type fakeRegistrar struct {
	teams    map[string]string                   // name → id
	commands map[string]*mattermost.SlashCommand // team id → the team's /calstatus
	made     int                                 // tokens made
	got      mattermost.SlashCommand             // as last asked
}

func (f *fakeRegistrar) newToken() string {
	f.made++
	return fmt.Sprintf("made%022d", f.made)
}

func (f *fakeRegistrar) RegisterCommand(_ context.Context, team string, cmd mattermost.SlashCommand) (mattermost.SlashCommand, error) {
	f.got = cmd
	id, ok := f.teams[team]
	if !ok {
		return mattermost.SlashCommand{}, errors.New("mattermost: get team: HTTP 404: not found")
	}
	out := cmd
	out.TeamID = id
	if old, ok := f.commands[id]; ok {
		out.ID, out.Token = old.ID, old.Token
		return out, nil
	}
	out.ID, out.Token, out.Created = "cmd-"+id, f.newToken(), true
	f.commands[id] = &out
	return out, nil
}

func (f *fakeRegistrar) RegenerateCommandToken(_ context.Context, commandID string) (string, error) {
	for _, c := range f.commands {
		if c.ID == commandID {
			c.Token = f.newToken()
			return c.Token, nil
		}
	}
	return "", errors.New("mattermost: regenerate slash command token: HTTP 404: not found")
}

func TestRegister(t *testing.T) {
	ctx := context.Background()
	f := &fakeRegistrar{teams: map[string]string{"contoso": team, team: team, "sales": otherTeam}, commands: map[string]*mattermost.SlashCommand{}}
	entries, err := Register(ctx, f, "https://func-calstatus.azurewebsites.net/", []string{"contoso"})
	if err != nil || !slices.Equal(entries, []string{team + "=made0000000000000000000001"}) ||
		f.got.URL != "https://func-calstatus.azurewebsites.net/api/SlashCommand" || f.got.Trigger != "calstatus" || f.got.AutocompleteHint == "" {
		t.Fatalf("new command: %q %v %+v", entries, err, f.got)
	}
	// A second team gets a token of its own; the first keeps its token (named by id too: once).
	entries, err = Register(ctx, f, "https://app.example", []string{"contoso", "sales", team})
	if err != nil || !slices.Equal(entries, []string{team + "=made0000000000000000000001", otherTeam + "=made0000000000000000000002"}) {
		t.Fatalf("two teams: %q %v", entries, err)
	}
	// Two teams sharing a token (as registrations before tokens were bound to teams left them): the
	// second gets a new one.
	f.commands[otherTeam].Token = f.commands[team].Token
	entries, err = Register(ctx, f, "https://app.example", []string{"contoso", "sales"})
	if err != nil || !slices.Equal(entries, []string{team + "=made0000000000000000000001", otherTeam + "=made0000000000000000000003"}) ||
		f.commands[otherTeam].Token != "made0000000000000000000003" {
		t.Fatalf("a shared token: %q %v", entries, err)
	}
	if _, err := Register(ctx, f, "https://app.example", []string{"contoso", "nosuchteam"}); err == nil || !strings.HasPrefix(err.Error(), "team nosuchteam: mattermost:") {
		t.Fatalf("an unknown team: %v", err)
	}
}

// The token travels with every use of the command: the app URL must be https, except on this
// machine (the local dev stack).
func TestRegisterWantsHTTPS(t *testing.T) {
	ctx := context.Background()
	for _, bad := range []string{"", "app.example", "ftp://app.example", "http://app.example", "http://func-calstatus.azurewebsites.net/",
		"http://localhost.evil.example", "http://127.0.0.2", "http://[::2]:7071", "https://"} {
		f := &fakeRegistrar{teams: map[string]string{"contoso": team}, commands: map[string]*mattermost.SlashCommand{}}
		if _, err := Register(ctx, f, bad, []string{"contoso"}); err == nil || len(f.commands) != 0 {
			t.Errorf("app URL %q accepted", bad)
		}
	}
	for _, good := range []string{"https://app.example", "http://localhost:7071", "http://127.0.0.1:7071/", "http://[::1]:7071"} {
		f := &fakeRegistrar{teams: map[string]string{"contoso": team}, commands: map[string]*mattermost.SlashCommand{}}
		if _, err := Register(ctx, f, good, []string{"contoso"}); err != nil {
			t.Errorf("app URL %q: %v", good, err)
		}
	}
}
