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
// is the user typing): a request without it, or with another, is refused with 401 and changes
// nothing.
//
// Settings changed here take effect at the worker's next run for the user: it reads them with the
// user's state (store.LoadStates) and the engine honours them.
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
	UserStatus(ctx context.Context, userID string) (mattermost.Status, error)
	Server(ctx context.Context) (mattermost.Server, error)
}

// Handler serves the /calstatus command.
type Handler struct {
	// Token is MATTERMOST_SLASH_TOKEN: the command's token, or several comma-separated (one per
	// team). Empty refuses every request.
	Token string
	Store Store
	Users Users
	// Schedules reads one user's availability for a window (GraphSchedules adapts the Graph client).
	Schedules func(ctx context.Context, email string, w graph.Window) (calendar.Availability, error)
	// Policy and Lookahead are the worker's, so that "status" explains the decision the worker makes.
	Policy    engine.Policy
	Lookahead time.Duration
	Now       func() time.Time
}

// Timeout bounds one answer: Mattermost gives up on a slash command after 30 seconds.
const Timeout = 20 * time.Second

// Serve answers one use of the command. It is a web.Page.
func (h *Handler) Serve(ctx context.Context, log *slog.Logger, r web.Request) (web.Response, error) {
	if r.Method != "" && !strings.EqualFold(r.Method, http.MethodPost) {
		return plain(http.StatusMethodNotAllowed, "calstatus: the slash command is POSTed\n"), nil
	}
	form, _ := url.ParseQuery(string(r.Body)) // what could not be parsed is missing, and refused below
	if !h.authorized(r, form) {
		log.Warn("slash command refused: missing or unknown token", "token_set", strings.TrimSpace(h.Token) != "")
		return plain(http.StatusUnauthorized, "calstatus: this request does not carry the /calstatus command's token\n"), nil
	}
	userID := form.Get("user_id")
	if userID == "" {
		return reply("calstatus could not tell who you are (the request names no user)."), nil
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	fields := strings.Fields(form.Get("text"))
	sub := "help"
	if len(fields) > 0 {
		sub = strings.ToLower(fields[0])
	}
	c := &call{h: h, log: log.With("user_id", userID, "subcommand", sub), userID: userID, trigger: trigger(form.Get("command")), now: h.now()}
	var text string
	switch sub {
	case "on":
		text = c.on(ctx)
	case "off":
		text = c.off(ctx)
	case "pause":
		text = c.pause(ctx, fields[1:])
	case "status":
		text = c.status(ctx)
	case "help":
		text = c.help(ctx, "")
	default:
		text = c.help(ctx, "calstatus does not know "+Code(fields[0])+".")
	}
	c.log.Info("slash command answered")
	return reply(text), nil
}

func (h *Handler) now() time.Time {
	if h.Now == nil {
		return time.Now().UTC()
	}
	return h.Now().UTC()
}

// authorized checks the command's token in constant time: every token the request carries (form
// field and Authorization header) must be one of ours, and it must carry one.
func (h *Handler) authorized(r web.Request, form url.Values) bool {
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
	ok := len(got) > 0
	for _, t := range got {
		ok = h.known(t) && ok
	}
	return ok
}

// known compares digests, so neither a token's content nor its length shows in the time taken,
// and tries every configured token.
func (h *Handler) known(token string) bool {
	got := sha256.Sum256([]byte(token))
	match := 0
	for _, want := range strings.Split(h.Token, ",") {
		want = strings.TrimSpace(want)
		if want == "" {
			continue
		}
		w := sha256.Sum256([]byte(want))
		match |= subtle.ConstantTimeCompare(got[:], w[:])
	}
	return token != "" && match == 1
}

// call is one use of the command.
type call struct {
	h       *Handler
	log     *slog.Logger
	userID  string
	trigger string
	now     time.Time
	user    *mattermost.User // read once, when needed
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

func (c *call) on(ctx context.Context) string {
	before, err := c.h.Store.LoadSettings(ctx, c.userID)
	if err != nil {
		return c.failed("read your settings", err)
	}
	if err := c.h.Store.SaveSettings(ctx, c.userID, store.UserSettings{}); err != nil {
		return c.failed("save your setting", err)
	}
	if !before.Engine().Off(c.now) {
		return "calstatus is already on for you: it follows your calendar."
	}
	return "calstatus is on for you again: from its next run (within minutes) it follows your calendar."
}

func (c *call) off(ctx context.Context) string {
	if err := c.h.Store.SaveSettings(ctx, c.userID, store.UserSettings{Disabled: true}); err != nil {
		return c.failed("save your setting", err)
	}
	return "calstatus is off for you. At its next run (within minutes) it gives back what it holds — the status you had, " +
		"its custom status cleared — and then leaves you alone. " + c.cmd("on") + " turns it back on."
}

func (c *call) pause(ctx context.Context, args []string) string {
	loc := c.location(ctx)
	until, err := ParsePause(strings.Join(args, " "), c.now, loc)
	if err != nil {
		return "calstatus cannot pause for " + Code(strings.Join(args, " ")) + ": " + err.Error() + ". For example: " +
			c.cmd("pause 30m") + ", " + c.cmd("pause 2h") + ", " + c.cmd("pause 1d") + ", " + c.cmd("pause until 14:00") + ", " +
			c.cmd("pause until tomorrow") + " (9:00), " + c.cmd("pause until monday") + "."
	}
	if err := c.h.Store.SaveSettings(ctx, c.userID, store.UserSettings{PausedUntil: until}); err != nil {
		return c.failed("save your setting", err)
	}
	return "calstatus is paused for you until " + engine.When(until, c.now, loc) + ". At its next run (within minutes) it gives back what " +
		"it holds — the status you had, its custom status cleared — and then leaves you alone until then. " + c.cmd("on") + " ends the pause."
}

// status explains what calstatus sees and does, from the same reads and decision as the worker:
// the user, their status, their stored state and settings, their availability over the worker's
// window.
func (c *call) status(ctx context.Context) string {
	u, err := c.me(ctx)
	if errors.Is(err, errNoUser) {
		return "calstatus does not find your Mattermost account."
	}
	if err != nil {
		return c.failed("read your Mattermost account", err)
	}
	st, err := c.h.Users.UserStatus(ctx, c.userID)
	if err != nil {
		return c.failed("read your Mattermost status", err)
	}
	states, err := c.h.Store.LoadStates(ctx, []string{c.userID})
	if err != nil {
		return c.failed("read what it holds for you", err)
	}
	old := states[c.userID]
	settings := old.Settings
	settings.Location = c.location(ctx)
	head := ""
	switch {
	case settings.Disabled:
		head = "calstatus is off for you. "
	case settings.Paused(c.now):
		head = "calstatus is paused for you until " + engine.When(settings.PausedUntil, c.now, settings.Location) + ". "
	}
	if u.Email == "" {
		return head + "Your Mattermost account has no email address, so calstatus cannot read your calendar."
	}
	if c.h.Schedules == nil {
		return head + "calstatus cannot read calendars here."
	}
	lookahead := c.h.Lookahead
	if lookahead <= 0 {
		lookahead = 10 * time.Minute
	}
	av, err := c.h.Schedules(ctx, u.Email, graph.Window{Start: c.now.Truncate(time.Minute), End: c.now.Add(lookahead)})
	if err != nil {
		c.log.Warn("slash command: no availability", "error", err.Error())
		return head + "calstatus could not read your calendar just now (" + Code(err.Error()) + "); please try again in a minute."
	}
	cur := engine.Current{Status: st.Status, Manual: st.Manual, DNDEndTime: st.DNDEnd, LastActivity: st.LastActivity}
	if cs := u.CustomStatus; cs != nil {
		cur.Custom = &engine.CustomStatus{Emoji: cs.Emoji, Text: cs.Text, ExpiresAt: cs.ExpiresAt}
	}
	// As the worker decides: for the server Mattermost is (an unknown one as the oldest).
	srv, _ := c.h.Users.Server(ctx)
	policy := c.h.Policy
	policy.Server = engine.Server{ExpiryEvery: srv.DNDExpiry, EndsKnown: srv.EndsAlwaysRead}
	base := old.State
	if cl := old.Claim; cl != nil {
		base = engine.Resolve(old.State, *cl, cur, c.now, policy.Server)
	}
	return engine.ExplainQuoted(engine.Input{Now: c.now, Availability: av, Current: cur, State: base, Settings: settings, Policy: policy}, Code)
}

func (c *call) help(ctx context.Context, first string) string {
	var b strings.Builder
	if first != "" {
		b.WriteString(first + "\n\n")
	}
	b.WriteString("**calstatus** sets your Mattermost status from your Outlook calendar: Do Not Disturb in meetings and while you are out of office, " +
		"a custom status saying why, and the status you had back afterwards. If you change what it set, it leaves that event to you.\n\n")
	for _, l := range [][2]string{
		{"status", "what calstatus sees in your calendar now, what it does, and why"},
		{"off", "calstatus gives back what it holds and leaves you alone"},
		{"on", "calstatus follows your calendar again (also ends a pause)"},
		{"pause 2h", "off for a while: `30m`, `2h`, `1d`, `until 14:00`, `until tomorrow` (9:00), `until monday`"},
		{"help", "this message"},
	} {
		b.WriteString("* " + c.cmd(l[0]) + " — " + l[1] + "\n")
	}
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
