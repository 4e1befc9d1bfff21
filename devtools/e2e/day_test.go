package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/devtools/mmstate"
	"github.com/calstatus/calstatus/internal/calendar"
	"github.com/calstatus/calstatus/internal/engine"
	"github.com/calstatus/calstatus/internal/shard"
)

// The simulated day: who, how long, how often.
const (
	daySkip  = 100  // users 100..1099 of the seeded set
	dayUsers = 1000 // users in the simulated day
	dayStep  = 5 * time.Minute
	daySeed  = 20261123 // fixed: the day is reproducible; printed
	// dayReadChunk ids per bulk read call (statuses, users).
	dayReadChunk = 200
	// dayGrace is how long after an event ended a status we set may still show (one step).
	dayGrace = dayStep
)

var (
	// dayStatuses are the statuses users choose.
	dayStatuses = []string{model.StatusOnline, model.StatusAway, model.StatusOffline, model.StatusDnd}
	// Users' own custom statuses use emojis calstatus never sets.
	dayOwnCustoms = []model.CustomStatus{
		{Emoji: "coffee", Text: "Coffee break"}, {Emoji: "headphones", Text: "Focus time"},
		{Emoji: "rocket", Text: "Shipping the release"}, {Emoji: "books", Text: "Training"},
		{Emoji: "car", Text: "Commuting"},
	}
	// dayOurEmojis are calstatus's custom statuses, with the calendar statuses each stands for.
	dayOurEmojis = map[string][]string{
		engine.MeetingEmoji:    {graphsim.StatusBusy, graphsim.StatusTentative},
		engine.OOFEmoji:        {graphsim.StatusOOF},
		engine.ElsewhereEmoji:  {graphsim.StatusWorkingElsewhere},
		engine.CallEmoji:       {dayCall},
		engine.PresentingEmoji: {dayCall},
	}
	// dayDNDStatuses are the calendar statuses (and Teams calls) that mean DND under the default policy.
	dayDNDStatuses = []string{graphsim.StatusBusy, graphsim.StatusTentative, graphsim.StatusOOF, dayCall}
)

// dayCall and dayReplies are the statuses of a Teams call and of Outlook's automatic replies among
// a user's items (dayUser.items).
const (
	dayCall    = "call"
	dayReplies = "replies"
)

// dayUser is the test's model of one user: their calendar and their own choices.
type dayUser struct {
	u      *model.User
	events []graphsim.Event
	// calls are the user's Teams calls and presentations (PRESENCE_SYNC), on no calendar.
	calls []graphsim.PresenceWindow
	// replies are the user's Outlook automatic replies (AUTOMATIC_REPLIES_SYNC).
	replies []graphsim.AutomaticReplies
	// own is the status the user last chose (or started with); ownCustom the custom status they
	// set themselves (nil for none). calstatus must give these back / never touch them.
	own       string
	ownManual bool // the user's status is theirs by hand (any status they set; automatic ones: not)
	// alsoOwn is another automatic status that is theirs as much as own: what they had before a
	// Mattermost restart reset it to offline while calstatus's write may have been under way.
	alsoOwn   string
	ownCustom *model.CustomStatus
	// autoReply: the user's automatic replies are on (status ooo): calstatus must never turn them off.
	autoReply, autoReplyOff bool
	// guard is the user's last manual change made during an event calstatus handles: while that
	// event continues Mattermost must keep showing it.
	guard *dayGuard
	// customBroken: the user's own custom status was found replaced or cleared (counted once per
	// custom status the user set).
	customBroken bool
	// last is what Mattermost showed after the previous run; hist the user's recent history (what
	// changed after each run, what they did by hand), for messages.
	last dayShown
	hist []string
}

// items are the user's calendar events and their Teams calls (as events of status dayCall): what
// calstatus acts on.
func (du *dayUser) items() []graphsim.Event {
	if len(du.calls) == 0 && len(du.replies) == 0 {
		return du.events
	}
	out := append([]graphsim.Event{}, du.events...)
	for _, c := range du.calls {
		out = append(out, graphsim.Event{Status: dayCall, Start: c.Start, End: c.End, Subject: c.Activity})
	}
	for _, r := range du.replies {
		out = append(out, graphsim.Event{Status: dayReplies, Start: r.Start, End: r.End})
	}
	return out
}

func (du *dayUser) note(format string, args ...any) {
	du.hist = append(du.hist, fmt.Sprintf(format, args...))
	if len(du.hist) > 30 {
		du.hist = du.hist[len(du.hist)-30:]
	}
}

// story is the user's calendar and recent history, for messages.
func (du *dayUser) story() string {
	return "\n      calendar: " + dayEvents(du.items()) + "\n      history: " + strings.Join(du.hist, "; ")
}

type dayGuard struct {
	key      string // the calendar items covering the time of the change (dayKey)
	status   string // the status the user chose ("" if the change was not a status)
	noCustom bool   // the user cleared our custom status: none of ours may come back
	what     string // the changes, for messages
}

// dayShown is what Mattermost keeps of a user: the status row and the custom status.
type dayShown struct {
	status string
	manual bool
	custom *model.CustomStatus
}

func (s dayShown) ours() bool { return s.custom != nil && dayOurEmojis[s.custom.Emoji] != nil }

func (s dayShown) String() string {
	out := s.status
	if s.manual {
		out += " (manual)"
	}
	if s.custom == nil {
		return out
	}
	return fmt.Sprintf("%s + %s %q", out, s.custom.Emoji, s.custom.Text)
}

// dayTally counts the violations of the day, with a few examples of each.
type dayTally struct {
	left, lost, overridden          int
	leftEnd                         int // of left: at the end of the day
	pinned, autoReplyOff            int // manual flags the user did not set; auto-responders turned off
	leftEx, lostEx, overriddenEx    []string
	pinnedEx, autoReplyOffEx        []string
	changed, manual, failed, unchgd int
	expired                         int // DNDs Mattermost's (emulated) expiry ended
}

func (d *dayTally) add(n *int, ex *[]string, format string, args ...any) {
	*n++
	if len(*ex) < 12 {
		*ex = append(*ex, fmt.Sprintf(format, args...))
	}
}

// TestSimulatedDay runs a compressed day for 1,000 users: random meetings, out-of-office days and
// working-elsewhere blocks on a 5-minute grid; calstatus runs every 5 simulated minutes (289 steps
// from 00:00 to 24:00) and, between runs, users change their status or custom status by hand. At the
// end of the day nobody may be left in a status calstatus set, nobody may have lost their previous
// status, and no manual change may have been overridden; the counts are printed.
func TestSimulatedDay(t *testing.T) {
	started := time.Now()
	w := presenceWorld(t, presenceRoles) // Teams calls and Outlook's automatic replies synced too
	w.worker.AutomaticReplies = true
	rng := rand.New(rand.NewPCG(daySeed, daySeed*31+7))
	callRng := rand.New(rand.NewPCG(daySeed+1, daySeed*37+11))    // its own: the calendars stay as they were
	repliesRng := rand.New(rand.NewPCG(daySeed+2, daySeed*41+13)) // and so do the calls
	t.Logf("simulated day: seed %d", daySeed)

	seeded := w.seeded(daySkip, dayUsers)
	day := simDay()
	users := make([]*dayUser, len(seeded))
	for i, u := range seeded {
		users[i] = &dayUser{u: u, own: model.StatusOnline}
	}

	// Calendars: set once for everybody (w.calendar would rebuild the scenario per user).
	oof, elsewhere, meetings, calls, outlookReplies := 0, 0, 0, 0, 0
	for _, du := range users {
		du.events = dayCalendar(rng, day)
		for _, e := range du.events {
			switch {
			case e.Status == graphsim.StatusOOF:
				oof++
			case e.Status == graphsim.StatusWorkingElsewhere && e.End.Sub(e.Start) >= 4*time.Hour:
				elsewhere++
			default:
				meetings++
			}
		}
		w.calendars[strings.ToLower(du.u.Email)] = du.events
		du.calls = dayCalls(callRng, day)
		calls += len(du.calls)
		w.teams[strings.ToLower(du.u.Email)] = du.calls
		du.replies = dayOutlookReplies(repliesRng, day)
		outlookReplies += len(du.replies)
		w.replies[strings.ToLower(du.u.Email)] = du.replies
	}
	if err := w.sim.SetScenario(w.scenario()); err != nil {
		t.Fatal(err)
	}

	// Everyone's own starting status and, for some, their own custom status.
	automatic, autoReplies := dayStart(t, rng, users, w, w.db, w.admin)
	ctx := context.Background()
	ids := make([]string, len(users))
	for i, du := range users {
		ids[i] = du.u.Id
	}
	t.Logf("simulated day: %d users (%d automatically away or offline, %d on Mattermost automatic replies of their own), %d meetings, %d out-of-office days, %d working-elsewhere blocks, %d Teams calls, %d Outlook automatic replies; setup %s",
		len(users), automatic, autoReplies, meetings, oof, elsewhere, calls, outlookReplies, time.Since(started).Round(time.Millisecond))

	var tally dayTally
	var runTime, readTime time.Duration
	steps := int(24*time.Hour/dayStep) + 1
	dayStarted := time.Now()
	for step := 0; step < steps; step++ {
		now := day.Add(time.Duration(step) * dayStep)
		w.at(now)
		// Mattermost's DND expiry job runs every 5 minutes: here, just before calstatus's run. It
		// also purges the server's caches, so calstatus reads DNDs without their end time.
		expired, err := mmstate.Expire(ctx, w.db, w.admin, now, ids...)
		if err != nil {
			t.Fatal(err)
		}
		tally.expired += expired
		t0 := time.Now()
		for from := 0; from < len(users); from += shard.MaxUsers {
			batch := make([]*model.User, 0, shard.MaxUsers)
			for _, du := range users[from:min(from+shard.MaxUsers, len(users))] {
				batch = append(batch, du.u)
			}
			rep := w.run(batch...)
			tally.changed += rep.Changed
			tally.unchgd += rep.Unchanged
			if rep.Failed > 0 {
				tally.failed += rep.Failed
				t.Logf("%s: %d users failed: %v\n%s", now.Format("15:04"), rep.Failed, rep.Failures, w.logs.String())
			}
		}
		t1 := time.Now()
		runTime += t1.Sub(t0)
		state := dayRead(t, w, users, ids)
		readTime += time.Since(t1)

		keys := make([]string, len(users))
		for i, du := range users {
			keys[i] = dayKey(du.items(), now)
			if cur := state[du.u.Id]; step == 0 || cur.String() != du.last.String() {
				du.note("%s run: %s", now.Format("15:04"), cur)
				du.last = cur
			}
			dayCheck(&tally, du, state[du.u.Id], keys[i], now, step == steps-1, dayLate)
			if du.autoReply && !du.autoReplyOff {
				if on, _, err := w.db.AutoResponder(ctx, du.u.Id); err != nil {
					t.Fatal(err)
				} else if !on {
					du.autoReplyOff = true
					tally.add(&tally.autoReplyOff, &tally.autoReplyOffEx, "%s at %s: automatic replies turned off%s", du.u.Username, now.Format("15:04"), du.story())
				}
			}
		}
		if step == steps-1 {
			break
		}

		// Between runs: a few users change their status or custom status by hand, mostly users in
		// an event calstatus handles (that is where overriding them would show).
		var inEvent []int
		for i, k := range keys {
			if k != "" {
				inEvent = append(inEvent, i)
			}
		}
		n := 5 + rng.IntN(6)
		for c := 0; c < n; c++ {
			i := rng.IntN(len(users))
			if len(inEvent) > 0 && rng.IntN(100) < 75 {
				i = inEvent[rng.IntN(len(inEvent))]
			}
			du, cur := users[i], state[users[i].u.Id]
			if du.autoReply {
				continue // their status is their automatic replies'
			}
			what := dayManual(rng, w, du, &cur, now)
			state[du.u.Id] = cur
			du.changed(keys[i], what+" after the "+now.Format("15:04")+" run", cur)
			tally.manual++
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	elapsed := time.Since(started)

	report(t, "simulated day: %d users, %d steps (every %s, %s to %s), seed %d",
		len(users), steps, dayStep, day.Format("2006-01-02 15:04"), day.Add(24*time.Hour).Format("15:04"), daySeed)
	report(t, "simulated day: %d status changes applied by calstatus, %d users unchanged, %d failed, %d manual changes",
		tally.changed, tally.unchgd, tally.failed, tally.manual)
	report(t, "simulated day: left in a status we set after the event ended: %d (%d during the day, %d users at its end)",
		tally.left, tally.left-tally.leftEnd, tally.leftEnd)
	report(t, "simulated day: previous statuses lost: %d", tally.lost)
	report(t, "simulated day: manual changes overridden: %d", tally.overridden)
	report(t, "simulated day: users left with a manual flag they did not set: %d; automatic replies turned off: %d (%d DNDs ended by Mattermost's expiry)",
		tally.pinned, tally.autoReplyOff, tally.expired)
	report(t, "simulated day: elapsed %s (setup %s, calstatus runs %s, reads %s)", elapsed.Round(time.Millisecond),
		dayStarted.Sub(started).Round(time.Millisecond), runTime.Round(time.Millisecond), readTime.Round(time.Millisecond))
	if tally.left > 0 {
		t.Errorf("%d times a user was left in a status calstatus set after the event ended, e.g.:\n  %s",
			tally.left, strings.Join(tally.leftEx, "\n  "))
	}
	if tally.lost > 0 {
		t.Errorf("%d users lost their previous status, e.g.:\n  %s", tally.lost, strings.Join(tally.lostEx, "\n  "))
	}
	if tally.overridden > 0 {
		t.Errorf("%d manual changes were overridden, e.g.:\n  %s", tally.overridden, strings.Join(tally.overriddenEx, "\n  "))
	}
	if tally.pinned > 0 {
		t.Errorf("%d times a user was left with a manual flag they did not set, e.g.:\n  %s", tally.pinned, strings.Join(tally.pinnedEx, "\n  "))
	}
	if tally.autoReplyOff > 0 {
		t.Errorf("%d users' automatic replies were turned off, e.g.:\n  %s", tally.autoReplyOff, strings.Join(tally.autoReplyOffEx, "\n  "))
	}
}

// dayLate says whether a status we set still showing at now, for an event that ended at ended, is
// late: more than one step after.
func dayLate(ended, now time.Time) bool { return now.Sub(ended) > dayGrace }

// dayCheck checks one user after a step's run; late says when a status we set showing after its
// event ended is one too many.
func dayCheck(d *dayTally, du *dayUser, s dayShown, key string, now time.Time, final bool, late func(ended, now time.Time) bool) {
	at := now.Format("15:04")
	who := du.u.Username

	// Left in a status we set after the event ended (one step of grace; at the end of the day, when
	// every event is over, none).
	switch {
	case final:
		if du.leftWrong(s) {
			d.add(&d.left, &d.leftEx, "%s at the end of the day: shows %s, own status %s%s",
				who, s, du.own, du.story())
			d.leftEnd++
		}
	case s.ours():
		if lag, ok := daySinceEnded(du.items(), dayOurEmojis[s.custom.Emoji], now); ok && late(now.Add(-lag), now) {
			d.add(&d.left, &d.leftEx, "%s at %s: custom status %s %q %s after the last %v event ended%s",
				who, at, s.custom.Emoji, s.custom.Text, lag, dayOurEmojis[s.custom.Emoji], du.story())
		}
	}
	if !final && s.status == model.StatusDnd && du.own != model.StatusDnd { // a DND calstatus set
		// (or, just after Outlook's automatic replies, one that ends at once: an automatic status
		// given back through it)
		if lag, ok := daySinceEnded(du.items(), append(dayDNDStatuses, dayReplies), now); ok && late(now.Add(-lag), now) {
			d.add(&d.left, &d.leftEx, "%s at %s: dnd (own status %s) %s after the last meeting ended%s",
				who, at, du.own, lag, du.story())
		}
	}
	if !final && s.status == model.StatusOutOfOffice && !du.isOwn(s.status) { // automatic replies calstatus turned on
		if lag, ok := daySinceEnded(du.items(), []string{dayReplies}, now); ok && late(now.Add(-lag), now) {
			d.add(&d.left, &d.leftEx, "%s at %s: ooo (own status %s) %s after Outlook's automatic replies ended%s",
				who, at, du.own, lag, du.story())
		}
	}

	// A user's own custom status is never replaced or cleared.
	if du.ownCustom != nil && !du.customBroken &&
		(s.custom == nil || s.custom.Emoji != du.ownCustom.Emoji || s.custom.Text != du.ownCustom.Text) {
		du.customBroken = true
		d.add(&d.overridden, &d.overriddenEx, "%s at %s: own custom status %s %q replaced, shows %s%s",
			who, at, du.ownCustom.Emoji, du.ownCustom.Text, s, du.story())
	}

	// A manual change made during an event stands while that event continues.
	if g := du.guard; g != nil {
		switch {
		case key != g.key:
			du.guard = nil // a new event (or free time): calstatus may act again
		case g.status != "" && s.status != g.status, g.noCustom && s.ours():
			d.add(&d.overridden, &d.overriddenEx, "%s at %s: %s during the %s event, now shows %s%s",
				who, at, g.what, dayKeyText(g.key), s, du.story())
			du.guard = nil
		}
	}

	// Free for more than the grace: the status is exactly the user's, manual flag included (a
	// manual away or offline the user did not set is pinned: activity never moves it).
	if key == "" && s.status == du.own && s.manual && !du.ownManual {
		if lag, ok := daySinceEnded(du.items(), append(dayDNDStatuses, graphsim.StatusWorkingElsewhere, dayReplies), now); !ok || late(now.Add(-lag), now) {
			d.add(&d.pinned, &d.pinnedEx, "%s at %s: shows %s, own status %s automatic%s", who, at, s, du.own, du.story())
		}
	}

	if final {
		// Every event is over: the user has exactly the status they had or last chose.
		if !du.isOwn(s.status) {
			d.add(&d.lost, &d.lostEx, "%s at the end of the day: status %s, own status %s%s",
				who, s.status, du.own, du.story())
		}
	}
}

// leftWrong says whether, with every event over, the user shows a status not their own or a custom
// status of calstatus's.
func (du *dayUser) leftWrong(s dayShown) bool { return !du.isOwn(s.status) || s.ours() }

// isOwn says whether status is the user's own.
func (du *dayUser) isOwn(status string) bool {
	return status == du.own || du.alsoOwn != "" && status == du.alsoOwn
}

// hands make a user's own changes.
type hands interface {
	setStatus(u *model.User, status string)
	setCustom(u *model.User, emoji, text string)
	clearCustom(u *model.User)
}

// dayStart draws everyone's own starting status — about half online, a quarter away, a fifth
// offline, some DND, 1% on automatic replies; half the away and offline ones automatic (idle,
// disconnected), as most are — and, for one in ten, their own custom status, and puts them in
// Mattermost. It returns how many are automatic and on automatic replies.
func dayStart(t *testing.T, rng *rand.Rand, users []*dayUser, h hands, db *mmstate.DB, admin *model.Client4) (automatic, autoReplies int) {
	var setup, auto, replies []*dayUser
	for _, du := range users {
		switch r := rng.IntN(100); {
		case r < 49:
			du.own = model.StatusOnline
		case r < 74:
			du.own = model.StatusAway
		case r < 93:
			du.own = model.StatusOffline
		case r < 99:
			du.own = model.StatusDnd
		default: // automatic replies on
			du.own, du.autoReply = model.StatusOutOfOffice, true
			replies = append(replies, du)
		}
		du.ownManual = du.own != model.StatusOnline
		if (du.own == model.StatusAway || du.own == model.StatusOffline) && rng.IntN(2) == 0 {
			du.ownManual = false
			auto = append(auto, du)
		}
		if rng.IntN(100) < 10 {
			cs := dayOwnCustoms[rng.IntN(len(dayOwnCustoms))]
			du.ownCustom = &cs
		}
		du.note("starts %s", dayShown{status: du.own, custom: du.ownCustom})
		if du.own != model.StatusOnline || du.ownCustom != nil {
			setup = append(setup, du)
		}
	}
	parallel(setup, 8, func(du *dayUser) {
		if du.own != model.StatusOnline && !du.autoReply {
			h.setStatus(du.u, du.own)
		}
		if du.ownCustom != nil {
			h.setCustom(du.u, du.ownCustom.Emoji, du.ownCustom.Text)
		}
	})
	ctx := context.Background()
	for _, du := range replies {
		if err := db.SetAutoResponder(ctx, admin, du.u.Id, true, "On leave"); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, du := range replies {
			_ = db.SetAutoResponder(context.Background(), admin, du.u.Id, false, "")
		}
	})
	for _, du := range auto {
		if err := db.SetAutomatic(ctx, du.u.Id); err != nil {
			t.Fatal(err)
		}
	}
	if err := mmstate.InvalidateCaches(admin); err != nil {
		t.Fatal(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	return len(auto), len(replies)
}

// changed records a manual change (what, shown as cur afterwards) made while key names the calendar
// items covering the user: while they continue, Mattermost must keep showing it.
func (du *dayUser) changed(key, what string, cur dayShown) {
	du.last = cur
	du.note("user: %s", what)
	if key == "" {
		du.guard = nil
		return
	}
	g := du.guard
	if g == nil || g.key != key {
		g = &dayGuard{key: key}
		du.guard = g
	}
	g.what = strings.TrimPrefix(g.what+", "+what, ", ")
	switch {
	case strings.HasPrefix(what, "status"):
		g.status = cur.status
	case strings.HasPrefix(what, "cleared custom status"):
		g.noCustom = true
	case strings.HasPrefix(what, "set custom"):
		g.noCustom = false // their own custom status is watched at every step anyway
	}
}

// dayManual makes one random manual change for a user at now, updating what the test expects of them
// and cur (what Mattermost shows); it returns what was done. Only a custom status the user sees is
// cleared: clients hide an expired one (Mattermost keeps it stored).
func dayManual(rng *rand.Rand, w hands, du *dayUser, cur *dayShown, now time.Time) string {
	visible := cur.custom != nil && (cur.custom.ExpiresAt.IsZero() || cur.custom.ExpiresAt.After(now))
	switch r := rng.IntN(100); {
	case r < 60: // a status change (to a status other than the one shown: a change)
		var choices []string
		for _, s := range dayStatuses {
			if s != cur.status {
				choices = append(choices, s)
			}
		}
		s := choices[rng.IntN(len(choices))]
		w.setStatus(du.u, s)
		du.own, du.alsoOwn, cur.status = s, "", s
		du.ownManual, cur.manual = s != model.StatusOnline, s != model.StatusOnline
		return "status " + s
	case r < 80 || !visible: // the user sets their own custom status
		cs := dayOwnCustoms[rng.IntN(len(dayOwnCustoms))]
		w.setCustom(du.u, cs.Emoji, cs.Text)
		du.ownCustom, du.customBroken = &cs, false
		cur.custom = &cs
		return fmt.Sprintf("set custom status %s %q", cs.Emoji, cs.Text)
	default: // the user clears their custom status (ours or their own)
		w.clearCustom(du.u)
		du.ownCustom, du.customBroken = nil, false
		cur.custom = nil
		return "cleared custom status"
	}
}

// dayRead reads every user's status row (from the database: one query) and custom status (through
// the API, 200 ids a call, calls in parallel).
func dayRead(t *testing.T, w *world, users []*dayUser, ids []string) map[string]dayShown {
	t.Helper()
	rows, err := w.db.Rows(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]dayShown, len(users))
	for id, r := range rows {
		out[id] = dayShown{status: r.Status, manual: r.Manual}
	}
	var chunks [][]string
	for from := 0; from < len(ids); from += dayReadChunk {
		chunks = append(chunks, ids[from:min(from+dayReadChunk, len(ids))])
	}
	var mu sync.Mutex
	parallel(chunks, 4, func(ids []string) {
		us, _, err := w.admin.GetUsersByIds(ids)
		if err != nil {
			t.Errorf("reading users: %v", err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, u := range us {
			s := out[u.Id]
			if cs := u.GetCustomStatus(); cs != nil && (cs.Emoji != "" || cs.Text != "") {
				s.custom = cs
			}
			out[u.Id] = s
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	for _, du := range users {
		if out[du.u.Id].status == "" {
			t.Fatalf("no status read for %s", du.u.Username)
		}
	}
	return out
}

// dayCalendar draws one user's calendar for the day starting at day, on a 5-minute grid, with the
// last hour free for everybody: ~3% are out of office all day (some with meetings they did not
// decline), ~6% work elsewhere for a block of hours (with meetings in it), everyone has 0–8
// meetings — mostly busy, some tentative, some working elsewhere; some back to back, some
// overlapping.
// dayCalls draws a user's Teams calls on the step grid: a third of the users have one, one in six
// two, of 10 to 45 minutes between 08:00 and 18:00; a third of them a presentation.
func dayCalls(rng *rand.Rand, day time.Time) []graphsim.PresenceWindow {
	n := 0
	switch r := rng.IntN(6); {
	case r < 2:
		n = 1
	case r < 3:
		n = 2
	}
	steps := []int{2, 3, 4, 6, 9}
	activities := []string{"InACall", "InAConferenceCall", "Presenting"}
	var out []graphsim.PresenceWindow
	for i := 0; i < n; i++ {
		start := day.Add(8*time.Hour + time.Duration(rng.IntN(10*12))*dayStep)
		out = append(out, call(activities[rng.IntN(len(activities))], start, start.Add(time.Duration(steps[rng.IntN(len(steps))])*dayStep)))
	}
	return out
}

// dayOutlookReplies draws a user's Outlook automatic replies on the step grid: one user in twelve
// has them on for 1 to 6 hours starting between 07:00 and 16:00, with a message as Outlook keeps it
// (HTML).
func dayOutlookReplies(rng *rand.Rand, day time.Time) []graphsim.AutomaticReplies {
	if rng.IntN(12) != 0 {
		return nil
	}
	start := day.Add(7*time.Hour + time.Duration(rng.IntN(9*12))*dayStep)
	return []graphsim.AutomaticReplies{replies(start, start.Add(time.Duration(1+rng.IntN(6))*time.Hour), outlookHTML)}
}

func dayCalendar(rng *rand.Rand, day time.Time) []graphsim.Event {
	slot := func(n int) time.Time { return day.Add(time.Duration(n) * dayStep) }
	const (
		firstStart = 7 * 12  // 07:00
		lastStart  = 21 * 12 // 21:00
		lastEnd    = 23 * 12 // 23:00: the last hour is free
	)
	var evs []graphsim.Event
	oof := rng.IntN(100) < 3
	if oof {
		evs = append(evs, event(graphsim.StatusOOF, day, day.Add(24*time.Hour)))
		if rng.IntN(2) == 0 {
			return evs
		}
	} else if rng.IntN(100) < 6 {
		from := 8*12 + rng.IntN(13)*3 // 08:00–10:00
		to := 15*12 + rng.IntN(13)*3  // 15:00–17:00
		evs = append(evs, event(graphsim.StatusWorkingElsewhere, slot(from), slot(to)))
	}
	durations := []int{3, 6, 6, 9, 12, 12, 18, 24} // 15 min to 2 h
	n := rng.IntN(9)
	if oof {
		n = 1 + rng.IntN(2)
	}
	prevEnd := -1
	for i := 0; i < n; i++ {
		start := firstStart + rng.IntN(lastStart-firstStart+1)
		if prevEnd >= 0 && prevEnd < lastEnd && rng.IntN(100) < 30 {
			start = prevEnd // back to back
		}
		end := min(start+durations[rng.IntN(len(durations))], lastEnd)
		status := graphsim.StatusBusy
		switch r := rng.IntN(100); {
		case r < 20:
			status = graphsim.StatusTentative
		case r < 28:
			status = graphsim.StatusWorkingElsewhere
		}
		evs = append(evs, event(status, slot(start), slot(end)))
		prevEnd = end
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Start.Before(evs[j].Start) })
	return evs
}

// dayKey names the calendar items calstatus handles that cover now ("" when free): calstatus
// decides once per item, so a manual change stands until a new item covers the user.
func dayKey(evs []graphsim.Event, now time.Time) string {
	var keys []string
	for _, e := range evs {
		st := calendar.ParseStatus(e.Status)
		switch e.Status {
		case dayCall:
			st = calendar.Call
		case dayReplies:
			st = dayReplies
		}
		if !now.Before(e.Start) && now.Before(e.End) && (st == dayReplies || engine.DefaultPolicy.Handled(calendar.Event{Status: st})) {
			keys = append(keys, fmt.Sprintf("%s@%d-%d", st, e.Start.Unix(), e.End.Unix()))
		}
	}
	sort.Strings(keys)
	return strings.Join(keys, " ")
}

// dayKeyText shows a key ("busy@1795500000-1795503600 …") as "busy 06:10–07:10, …".
func dayKeyText(key string) string {
	var out []string
	for _, k := range strings.Fields(key) {
		status, span, _ := strings.Cut(k, "@")
		from, to, _ := strings.Cut(span, "-")
		a, err1 := strconv.ParseInt(from, 10, 64)
		b, err2 := strconv.ParseInt(to, 10, 64)
		if err1 != nil || err2 != nil {
			out = append(out, k)
			continue
		}
		out = append(out, fmt.Sprintf("%s %s–%s", status, time.Unix(a, 0).UTC().Format("15:04"), time.Unix(b, 0).UTC().Format("15:04")))
	}
	return strings.Join(out, ", ")
}

// daySinceEnded is how long ago the last event with one of statuses ended, if none covers now (false
// when one does, or none has ended yet).
func daySinceEnded(evs []graphsim.Event, statuses []string, now time.Time) (time.Duration, bool) {
	var last time.Time
	for _, e := range evs {
		match := false
		for _, s := range statuses {
			match = match || strings.EqualFold(e.Status, s)
		}
		if !match {
			continue
		}
		if !now.Before(e.Start) && now.Before(e.End) {
			return 0, false
		}
		if !e.End.After(now) && e.End.After(last) {
			last = e.End
		}
	}
	if last.IsZero() {
		return 0, false
	}
	return now.Sub(last), true
}

func dayEvents(evs []graphsim.Event) string {
	if len(evs) == 0 {
		return "free all day"
	}
	parts := make([]string, len(evs))
	for i, e := range evs {
		end := e.End.Format("15:04")
		if e.End.Sub(e.Start) >= 24*time.Hour {
			end = "24:00"
		}
		parts[i] = fmt.Sprintf("%s %s–%s", e.Status, e.Start.Format("15:04"), end)
	}
	return strings.Join(parts, ", ")
}
