// Package slash answers Mattermost's /calstatus slash command (the SlashCommand function, an
// anonymous HTTP trigger): users turn calstatus off and on for themselves, pause it, and ask what it
// sees in their calendar and does, and why.
//
// Mattermost v6.7.2 (app/command.go, tryExecuteCustomCommand and DoCommandRequest) POSTs each use
// of a custom command to its URL as application/x-www-form-urlencoded: token, team_id, team_domain,
// channel_id, channel_name, user_id, user_name, command ("/calstatus"), text (what follows the
// trigger), trigger_id, response_url; it sends the command's token both as form field "token" and
// as header "Authorization: Token <token>". It reads a 200 answer with Content-Type
// application/json as a model.CommandResponse, and shows any other status as a failure of the
// command. The token is the only proof that a request comes from Mattermost (and so that user_id
// is the user typing). Each team's command has its own token, and a team admin can read their
// team's: a token is accepted only with its own team_id, and only for a member of that team. A
// request without its team's token is refused with 401, one for someone who is not a member of the
// team with 403; either changes nothing.
//
// Settings changed here take effect at the worker's next run for the user: it reads them with the
// user's state (store.LoadStates) and the engine honours them.
//
// "status" and "today" read the calendar (Graph), which with a cold start can take longer than
// Mattermost waits; they answer late through the request's response_url (respond.go).
package slash

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/calstatus/calstatus/internal/calendar"
	"github.com/calstatus/calstatus/internal/engine"
	"github.com/calstatus/calstatus/internal/graph"
	"github.com/calstatus/calstatus/internal/mattermost"
	"github.com/calstatus/calstatus/internal/store"
	"github.com/calstatus/calstatus/internal/web"
)

// Store is what the command needs of the Table Storage adapter.
type Store interface {
	LoadStates(ctx context.Context, userIDs []string) (map[string]store.UserState, error)
	LoadSettings(ctx context.Context, userID string) (store.UserSettings, error)
	SaveSettings(ctx context.Context, userID string, s store.UserSettings) error
}

// Users is what the command needs of the Mattermost adapter.
type Users interface {
	Users(ctx context.Context, ids []string) ([]mattermost.User, error)
	IsTeamMember(ctx context.Context, teamID, userID string) (bool, error)
	UserStatus(ctx context.Context, userID string) (mattermost.Status, error)
	Server(ctx context.Context) (mattermost.Server, error)
}

// Handler serves the /calstatus command.
type Handler struct {
	// Token is MATTERMOST_SLASH_TOKEN: the command's token in each team, as comma-separated
	// TEAM_ID=TOKEN entries. A team without an entry (and an entry without a team) is refused.
	Token string
	Store Store
	Users Users
	// Schedules reads one user's availability for a window (GraphSchedules adapts the Graph client).
	Schedules func(ctx context.Context, email string, w graph.Window) (calendar.Availability, error)
	// Policy and Lookahead are the worker's, so that "status" explains the decision the worker makes.
	Policy engine.Policy
	// Presence is PRESENCE_SYNC: Teams calls and presentations are synced ("settings calls").
	Presence bool
	// AutomaticReplies: AUTOMATIC_REPLIES_SYNC is on: /calstatus settings replies is offered.
	AutomaticReplies bool
	Lookahead        time.Duration
	Now              func() time.Time

	// MattermostURL is MATTERMOST_URL: a late answer is posted to a response_url only on it.
	MattermostURL string
	// HTTP posts late answers (nil: a client with a 10 s timeout that follows no redirect).
	HTTP *http.Client
	// Log is the process's logger, for what a late answer logs once its invocation has ended (nil:
	// JSON on stderr, which the Functions host forwards).
	Log *slog.Logger
	// Quick is how long an answer that reads the calendar is waited for before the command says
	// "Looking at your calendar…" and posts it to response_url (zero: QuickAnswer).
	Quick time.Duration

	late        sync.WaitGroup // late answers under way
	lateTimeout time.Duration  // LateTimeout, unless set (tests)
}

// Timeout bounds one answer: Mattermost gives up on a slash command after 30 seconds.
const Timeout = 20 * time.Second

// Serve answers one use of the command. It is a web.Page.
func (h *Handler) Serve(ctx context.Context, log *slog.Logger, r web.Request) (web.Response, error) {
	if r.Method != "" && !strings.EqualFold(r.Method, http.MethodPost) {
		return plain(http.StatusMethodNotAllowed, "calstatus: the slash command is POSTed\n"), nil
	}
	form, _ := url.ParseQuery(string(r.Body)) // what could not be parsed is missing, and refused below
	teamID := form.Get("team_id")
	if !h.authorized(r, form) {
		log.Warn("slash command refused: missing token, or not its team's", "team_id", teamID, "token_set", strings.TrimSpace(h.Token) != "")
		return plain(http.StatusUnauthorized, "calstatus: this request does not carry the /calstatus command's token of its team\n"), nil
	}
	// Checked before anything is read or stored under it.
	userID := form.Get("user_id")
	if !mattermost.ValidID(userID) {
		log.Warn("slash command refused: user_id is not a Mattermost id", "team_id", teamID)
		return plain(http.StatusBadRequest, "calstatus: the request's user_id is not a Mattermost user id\n"), nil
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	// A team's token is a team admin's to read: it acts only for the team's own members.
	member, err := h.Users.IsTeamMember(ctx, teamID, userID)
	if err != nil {
		log.Error("slash command failed", "step", "check team membership", "user_id", userID, "team_id", teamID, "error", err.Error())
		return reply("calstatus could not check your team membership just now; please try again in a minute."), nil
	}
	if !member {
		log.Warn("slash command refused: user_id is not a member of the team", "user_id", userID, "team_id", teamID)
		return plain(http.StatusForbidden, "calstatus: the request's user is not a member of its team\n"), nil
	}
	fields := strings.Fields(form.Get("text"))
	sub := "help"
	if len(fields) > 0 {
		sub = strings.ToLower(fields[0])
	}
	c := &call{h: h, log: log.With("user_id", userID, "subcommand", sub), userID: userID, sub: sub, trigger: trigger(form.Get("command")), now: h.now()}
	defer c.release()
	var text string
	late := false
	switch sub {
	case "on":
		text = c.on(ctx)
	case "off":
		text = c.off(ctx)
	case "pause":
		text = c.pause(ctx, fields[1:])
	case "settings", "setting":
		text = c.settings(ctx, fields[1:])
	case "status":
		text, late = c.answer(ctx, form.Get("response_url"), c.status)
	case "today":
		text, late = c.answer(ctx, form.Get("response_url"), c.today)
	case "help":
		text = c.help(ctx, "")
	default:
		text = c.help(ctx, "calstatus does not know "+Code(fields[0])+".")
	}
	c.log.Info("slash command answered", "late", late)
	return reply(text), nil
}

func (h *Handler) now() time.Time {
	if h.Now == nil {
		return time.Now().UTC()
	}
	return h.Now().UTC()
}

// authorized checks the command's token in constant time: the request's team must have a token,
// and every token the request carries (form field and Authorization header) must be that one, and
// it must carry one.
func (h *Handler) authorized(r web.Request, form url.Values) bool {
	want, ok := h.teamToken(form.Get("team_id"))
	var got []string
	if t := form.Get("token"); t != "" {
		got = append(got, t)
	}
	if a := r.Header("Authorization"); a != "" {
		scheme, t, _ := strings.Cut(strings.TrimSpace(a), " ")
		if !strings.EqualFold(scheme, "Token") {
			return false
		}
		got = append(got, strings.TrimSpace(t))
	}
	ok = ok && len(got) > 0
	for _, t := range got {
		ok = same(t, want) && ok
	}
	return ok
}

// teamToken is the team's token in Token; false when the team has none.
func (h *Handler) teamToken(teamID string) (string, bool) {
	for _, entry := range strings.Split(h.Token, ",") {
		team, token, ok := strings.Cut(entry, "=")
		if ok && teamID != "" && strings.TrimSpace(team) == teamID {
			return strings.TrimSpace(token), true
		}
	}
	return "", false
}

// same compares digests, so neither a token's content nor its length shows in the time taken.
func same(token, want string) bool {
	got, w := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(want))
	return token != "" && subtle.ConstantTimeCompare(got[:], w[:]) == 1
}

// call is one use of the command.
type call struct {
	h       *Handler
	log     *slog.Logger
	userID  string
	sub     string
	trigger string
	now     time.Time
	user    *mattermost.User // read once, when needed
	// answered, for an answer that may come late (answer), is set once Serve has answered.
	answered *atomic.Bool
}

// me reads the user (their email and time zone).
func (c *call) me(ctx context.Context) (mattermost.User, error) {
	if c.user != nil {
		return *c.user, nil
	}
	users, err := c.h.Users.Users(ctx, []string{c.userID})
	if err != nil {
		return mattermost.User{}, err
	}
	for _, u := range users {
		if u.ID == c.userID {
			c.user = &u
			return u, nil
		}
	}
	return mattermost.User{}, errNoUser
}

var errNoUser = errors.New("no such user")

// location is the user's time zone, else TIME_ZONE, else UTC.
func (c *call) location(ctx context.Context) *time.Location {
	if u, err := c.me(ctx); err == nil && u.TimeZone != nil {
		return u.TimeZone
	}
	if c.h.Policy.Location != nil {
		return c.h.Policy.Location
	}
	return time.UTC
}

func (c *call) failed(what string, err error) string {
	c.log.Error("slash command failed", "step", what, "error", err.Error())
	return "calstatus could not " + what + " just now; please try again in a minute."
}

// Nothing changes in Mattermost when the command answers: the worker's next run for the user (the
// next cycle, within a few minutes) applies what the user chose.
const nextRun = "its next run (within a few minutes)"

// givesBack says what turning calstatus off (or pausing it) does to what it set.
const givesBack = "If it has set Do Not Disturb or a custom status for a meeting, " + nextRun + " puts your previous status back and " +
	"clears that custom status."

func (c *call) on(ctx context.Context) string {
	u, err := c.h.Store.LoadSettings(ctx, c.userID)
	if err != nil {
		return c.failed("read your settings", err)
	}
	was := u.Engine()
	if !was.Off(c.now) {
		return "calstatus is already on for you: it sets your status from your calendar. " + c.cmd("status") + " shows what it does now."
	}
	// Back on; the user's other settings stay.
	u.Disabled, u.PausedUntil = false, time.Time{}
	if err := c.h.Store.SaveSettings(ctx, c.userID, u); err != nil {
		return c.failed("save your setting", err)
	}
	if !was.Disabled {
		return "Your pause is over: calstatus is on for you again. From " + nextRun + " it sets your status from your calendar."
	}
	return "calstatus is on for you again: from " + nextRun + " it sets your status from your calendar."
}

func (c *call) off(ctx context.Context) string {
	u, err := c.h.Store.LoadSettings(ctx, c.userID)
	if err != nil {
		return c.failed("read your settings", err)
	}
	if u.Disabled {
		return "calstatus is already off for you: it does not change your status or custom status. " + c.cmd("on") + " turns it back on."
	}
	replaced := ""
	if u.Engine().Paused(c.now) {
		replaced = " (instead of paused until " + engine.When(u.PausedUntil, c.now, c.location(ctx)) + ")"
	}
	u.Disabled, u.PausedUntil = true, time.Time{}
	if err := c.h.Store.SaveSettings(ctx, c.userID, u); err != nil {
		return c.failed("save your setting", err)
	}
	return "calstatus is off for you" + replaced + ". " + givesBack + " After that it won't change your status or custom status until you type " +
		c.cmd("on") + "."
}

// pause pauses calstatus, or moves the end of a pause. It never turns an "off" into a pause: a user
// who turned calstatus off did not ask for it back in two hours.
func (c *call) pause(ctx context.Context, args []string) string {
	loc := c.location(ctx)
	until, err := ParsePause(strings.Join(args, " "), c.now, loc)
	if err != nil {
		return "calstatus cannot pause for " + Code(strings.Join(args, " ")) + ": " + err.Error() + ". Nothing changed. For example: " +
			c.cmd("pause 30m") + ", " + c.cmd("pause 2h") + ", " + c.cmd("pause 1d") + ", " + c.cmd("pause until 14:00") + ", " +
			c.cmd("pause until tomorrow") + " (9:00), " + c.cmd("pause until monday") + " (9:00)."
	}
	u, err := c.h.Store.LoadSettings(ctx, c.userID)
	if err != nil {
		return c.failed("read your settings", err)
	}
	if u.Disabled {
		return "calstatus is off for you, so there is nothing to pause: it stays off, and nothing changed. " + c.cmd("on") +
			" turns it back on (then you can pause it)."
	}
	moved := ""
	if u.Engine().Paused(c.now) {
		moved = " (instead of " + engine.When(u.PausedUntil, c.now, loc) + ")"
	}
	u.PausedUntil = until
	if err := c.h.Store.SaveSettings(ctx, c.userID, u); err != nil {
		return c.failed("save your setting", err)
	}
	return "calstatus is paused for you until " + engine.When(until, c.now, loc) + moved + ". " + givesBack +
		" It won't change your status or custom status again before the pause ends; " + c.cmd("on") + " ends it now."
}

// seen is what calstatus knows of the user, read as the worker reads it.
type seen struct {
	user  mattermost.User
	cur   engine.Current
	state engine.State // what calstatus holds, a dead run's claim resolved
	// settings are the user's own, in their time zone; policy the organisation's for the server
	// Mattermost is (Decide applies the settings to it).
	settings engine.Settings
	policy   engine.Policy
}

// look reads the user, their status, their stored state and settings: what the worker reads. On
// failure it says so in the second result.
func (c *call) look(ctx context.Context) (seen, string) {
	u, err := c.me(ctx)
	if errors.Is(err, errNoUser) {
		return seen{}, "calstatus does not find your Mattermost account."
	}
	if err != nil {
		return seen{}, c.failed("read your Mattermost account", err)
	}
	st, err := c.h.Users.UserStatus(ctx, c.userID)
	if err != nil {
		return seen{}, c.failed("read your Mattermost status", err)
	}
	states, err := c.h.Store.LoadStates(ctx, []string{c.userID})
	if err != nil {
		return seen{}, c.failed("read what it has set for you", err)
	}
	old := states[c.userID]
	s := seen{user: u, settings: old.Settings}
	s.settings.Location = c.location(ctx)
	s.cur = engine.Current{Status: st.Status, Manual: st.Manual, DNDEndTime: st.DNDEnd, LastActivity: st.LastActivity}
	if cs := u.CustomStatus; cs != nil {
		s.cur.Custom = &engine.CustomStatus{Emoji: cs.Emoji, Text: cs.Text, ExpiresAt: cs.ExpiresAt}
	}
	// As the worker decides: for the server Mattermost is (an unknown one as the oldest).
	srv, _ := c.h.Users.Server(ctx)
	s.policy = c.h.Policy
	s.policy.Server = engine.Server{ExpiryEvery: srv.DNDExpiry, EndsKnown: srv.EndsAlwaysRead}
	s.state = old.State
	if cl := old.Claim; cl != nil {
		s.state = engine.Resolve(old.State, *cl, s.cur, c.now, s.policy.Server)
	}
	return s, ""
}

// offNow is the sentence saying calstatus is off or paused for the user, "" when it is on.
func (c *call) offNow(s engine.Settings) string {
	switch {
	case s.Disabled:
		return "calstatus is off for you. "
	case s.Paused(c.now):
		return "calstatus is paused for you until " + engine.When(s.PausedUntil, c.now, s.Location) + ". "
	}
	return ""
}

func (c *call) lookahead() time.Duration {
	if c.h.Lookahead <= 0 {
		return 10 * time.Minute
	}
	return c.h.Lookahead
}

// status explains what calstatus sees and does, from the same reads and decision as the worker:
// the user, their status, their stored state and settings, their availability over the worker's
// window.
func (c *call) status(ctx context.Context) string {
	s, failed := c.look(ctx)
	if failed != "" {
		return failed
	}
	head := c.offNow(s.settings)
	if s.user.Email == "" {
		return head + "Your Mattermost account has no email address, so calstatus cannot read your calendar."
	}
	if c.h.Schedules == nil {
		return head + "calstatus cannot read calendars here."
	}
	av, err := c.h.Schedules(ctx, s.user.Email, graph.Window{Start: c.now.Truncate(time.Minute), End: c.now.Add(c.lookahead())})
	if err != nil {
		c.log.Warn("slash command: no availability", "error", err.Error())
		return head + "calstatus could not read your calendar just now (" + Code(err.Error()) + "); please try again in a minute."
	}
	text := engine.ExplainQuoted(engine.Input{Now: c.now, Availability: av, Current: s.cur, State: s.state, Settings: s.settings, Policy: s.policy}, Code)
	if own := c.ownChoices(s.settings); own != "" {
		text += "\n\n" + own
	}
	return text
}

func (c *call) help(ctx context.Context, first string) string {
	var b strings.Builder
	if first != "" {
		b.WriteString(first + "\n\n")
	}
	b.WriteString("**calstatus** sets your Mattermost status from your Outlook calendar: Do Not Disturb during meetings and while you are out of office, " +
		"a custom status saying why, and your previous status back afterwards. If you change what it set, it leaves that meeting to you.\n\n")
	for _, l := range [][2]string{
		{"status", "what your calendar shows now, what calstatus does about it, and why"},
		{"today", "the rest of today's calendar, and what calstatus will do for each item"},
		{"off", "stop: calstatus puts your previous status back, clears the custom status it set, and changes nothing until you type " + c.cmd("on")},
		{"on", "start again (also ends a pause)"},
		{"pause 2h", "stop for a while: `30m`, `2h`, `1d`, `until 14:00`, `until tomorrow` (9:00), `until monday` (9:00; on a Monday, next week's)"},
		{"settings", "your settings, and changing them: " + settingsGrammar(c.h.AutomaticReplies)},
		{"help", "this message"},
	} {
		b.WriteString("* " + c.cmd(l[0]) + " — " + l[1] + "\n")
	}
	b.WriteString("\nTimes are in your Mattermost time zone. Typed before 4:00, `tomorrow` is the coming morning (the same date), and weekdays count from the day before.\n")
	if s, err := c.h.Store.LoadSettings(ctx, c.userID); err == nil {
		switch e := s.Engine(); {
		case e.Disabled:
			b.WriteString("\nFor you, calstatus is off.")
		case e.Paused(c.now):
			b.WriteString("\nFor you, calstatus is paused until " + engine.When(e.PausedUntil, c.now, c.location(ctx)) + ".")
		default:
			b.WriteString("\nFor you, calstatus is on.")
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// cmd shows a use of the command, e.g. `/calstatus pause 2h`.
func (c *call) cmd(args string) string { return "`" + c.trigger + " " + args + "`" }

// trigger is the command as typed ("/calstatus"), kept only if it looks like one.
func trigger(cmd string) string {
	if len(cmd) < 2 || len(cmd) > 64 || cmd[0] != '/' || strings.IndexFunc(cmd[1:], func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) >= 0 {
		return "/calstatus"
	}
	return cmd
}

// MaxValueLength is how much of a value Code shows.
const MaxValueLength = 100

// Code shows a value the user, their calendar or anyone else controls (a meeting subject, a
// custom status, what they typed, an error) as inline code: Mattermost renders a code span
// verbatim — no markdown, links, autolinked URLs, @mentions, ~channels, emoji or HTML — so nothing
// in the value can change the message around it. A backtick (which would end the span) becomes ',
// line breaks and other control characters a space, invisible formatting characters (bidi
// overrides, zero-width joiners) are dropped, and a long value is cut.
func Code(s string) string {
	var b strings.Builder
	space := false
	n := 0
	for _, r := range s {
		switch {
		case r == '`':
			r = '\''
		case unicode.IsSpace(r) || unicode.IsControl(r):
			space = b.Len() > 0
			continue
		case unicode.Is(unicode.Cf, r):
			continue
		}
		if n == MaxValueLength {
			b.WriteRune('…')
			break
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
		n++
	}
	if b.Len() == 0 {
		return "(empty)"
	}
	return "`" + b.String() + "`"
}

// reply is an answer only the user sees.
func reply(text string) web.Response {
	body, _ := json.Marshal(struct {
		ResponseType string `json:"response_type"`
		Text         string `json:"text"`
	}{"ephemeral", text})
	return web.Response{Status: http.StatusOK, Body: string(body), Headers: map[string]string{"Content-Type": "application/json"}}
}

func plain(status int, text string) web.Response {
	return web.Response{Status: status, Body: text, Headers: map[string]string{"Content-Type": "text/plain; charset=utf-8"}}
}

// GraphSchedules adapts the Graph client (GetSchedules for a shard) to Handler.Schedules.
func GraphSchedules(g interface {
	GetSchedules(ctx context.Context, emails []string, w graph.Window) (graph.Result, error)
}) func(ctx context.Context, email string, w graph.Window) (calendar.Availability, error) {
	return func(ctx context.Context, email string, w graph.Window) (calendar.Availability, error) {
		email = strings.ToLower(email)
		res, err := g.GetSchedules(ctx, []string{email}, w)
		if av, ok := res.Availability[email]; ok {
			return av, nil
		}
		for _, f := range res.Failures {
			if f.Message != "" {
				return calendar.Availability{}, fmt.Errorf("%s: %s", f.Class, f.Message)
			}
			return calendar.Availability{}, errors.New(f.Class)
		}
		if err == nil {
			err = errors.New("no answer for this mailbox")
		}
		return calendar.Availability{}, err
	}
}
