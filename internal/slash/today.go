package slash

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/calstatus/calstatus/internal/calendar"
	"github.com/calstatus/calstatus/internal/engine"
	"github.com/calstatus/calstatus/internal/graph"
)

// MaxTodayItems is how many calendar items "/calstatus today" lists.
const MaxTodayItems = 20

// today lists the rest of the user's day (in their time zone) as calstatus sees it: each item still
// to come or under way, and what calstatus does for it — the engine's own decision at the item's
// start (for the item under way, the worker's decision now, from what calstatus holds). One read of
// the calendar, from now to the end of the user's day.
func (c *call) today(ctx context.Context) string {
	s, failed := c.look(ctx)
	if failed != "" {
		return failed
	}
	if s.user.Email == "" {
		return "Your Mattermost account has no email address, so calstatus cannot read your calendar."
	}
	if c.h.Schedules == nil {
		return "calstatus cannot read calendars here."
	}
	loc := s.settings.Location
	local := c.now.In(loc)
	y, m, d := local.Date()
	midnight := time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	start := c.now.Truncate(time.Minute)
	end := midnight
	if least := start.Add(c.lookahead()); end.Before(least) { // late in the evening: the worker's window
		end = least
	}
	av, err := c.h.Schedules(ctx, s.user.Email, graph.Window{Start: start, End: end})
	if err != nil {
		c.log.Warn("slash command: no availability", "error", err.Error())
		return "calstatus could not read your calendar just now (" + Code(err.Error()) + "); please try again in a minute."
	}
	var items []calendar.Event
	for _, e := range av.Items {
		if e.End.After(c.now) && e.Start.Before(midnight) {
			items = append(items, e)
		}
	}
	day := local.Format("Mon 2 Jan") + ", times in " + local.Format("MST")
	if len(items) == 0 {
		return c.offNow(s.settings) + "Your calendar shows nothing more today (" + day + "): calstatus has nothing to do."
	}
	var b strings.Builder
	b.WriteString(c.offNow(s.settings) + "The rest of your day (" + day + ") as calstatus sees it:\n")
	p := s.settings.Policy(s.policy)
	for i, e := range items {
		if i == MaxTodayItems {
			fmt.Fprintf(&b, "* … and %d more.\n", len(items)-i)
			break
		}
		b.WriteString("* " + c.item(e, midnight, p) + " — " + c.plan(s, av, p, e) + "\n")
	}
	b.WriteString("\n" + c.cmd("status") + " says what calstatus does right now, and why.")
	return b.String()
}

// item is a calendar item as "today" lists it: its time, its kind, its subject where calstatus may
// show it.
func (c *call) item(e calendar.Event, midnight time.Time, p engine.Policy) string {
	at := func(t time.Time) string {
		if !t.Before(midnight) || t.Before(midnight.AddDate(0, 0, -1)) { // another day
			return t.In(midnight.Location()).Format("Mon 2 Jan 15:04")
		}
		return t.In(midnight.Location()).Format("15:04")
	}
	s := at(e.Start) + "–" + at(e.End)
	if e.FromView {
		// A period read from the availability view: its bounds are those of the window asked.
		s = "until at least " + at(e.End)
		if e.Start.After(c.now) {
			s = "from " + at(e.Start) + " " + s
		}
	}
	if !e.Start.After(c.now) {
		s += " (now)"
	}
	s += " " + kind(e.Status)
	if e.FromView {
		s += " (its details are hidden)"
	}
	// The subject only where calstatus would show it (in the custom status): never a private one.
	if p.ShowSubject && !e.Private && e.Subject != "" {
		s += " " + Code(e.Subject)
	}
	return s
}

func kind(s calendar.Status) string {
	switch s {
	case calendar.Busy:
		return "busy"
	case calendar.Tentative:
		return "tentative"
	case calendar.OutOfOffice:
		return "out of office"
	case calendar.WorkingElsewhere:
		return "working elsewhere"
	}
	return string(s)
}

// plan says what calstatus does for item e: what the engine decides at its start, from nothing held
// and the user online (for the item under way: the worker's decision now, from what it holds).
func (c *call) plan(s seen, av calendar.Availability, p engine.Policy, e calendar.Event) string {
	t := e.Start
	ongoing := !t.After(c.now)
	in := engine.Input{Now: t, Availability: av, Current: engine.Current{Status: engine.Online}, Settings: s.settings, Policy: s.policy}
	if ongoing {
		in.Now, in.Current, in.State = c.now, s.cur, s.state
	}
	if s.settings.Disabled {
		return "nothing: calstatus is off for you"
	}
	if s.settings.Paused(in.Now) {
		return "nothing: calstatus is paused until " + engine.When(s.settings.PausedUntil, c.now, s.settings.Location)
	}
	d := engine.Decide(in)
	var dnd time.Time
	var custom *engine.CustomStatus
	if ongoing {
		if n := d.NewState; n.SetStatus == engine.DND && n.DNDEnd.After(c.now) {
			dnd = n.DNDEnd
		}
		if n := d.NewState; n.CustomText != "" {
			custom = &engine.CustomStatus{Emoji: n.CustomEmoji, Text: n.CustomText}
		}
	} else {
		if u := d.SetStatus; u != nil && u.Status == engine.DND {
			dnd = u.DNDEndTime
		}
		custom = d.SetCustom
	}
	// What the organisation's rules ask for, before the user's own choice of what calstatus sets.
	org, orgDND := p, p
	org.Only, orgDND.Only = "", engine.OnlyDND
	wantsDND, wantsCustom := orgDND.Handled(e), org.Handled(e)
	switch {
	case e.Status == calendar.Tentative && !p.TentativeAsBusy:
		return "nothing: tentative meetings don't count as busy here"
	case wantsCustom && !p.Handled(e):
		return "nothing, because of your settings (" + c.cmd("settings") + ")"
	}
	var parts []string
	if !dnd.IsZero() {
		parts = append(parts, "Do Not Disturb until "+engine.When(dnd, c.now, s.settings.Location))
	}
	if custom != nil {
		parts = append(parts, "the custom status :"+custom.Emoji+": "+Code(custom.Text))
	}
	var notes []string
	switch {
	case wantsDND && p.Only == engine.OnlyCustom:
		notes = append(notes, "no Do Not Disturb, because of your settings")
	case wantsDND && dnd.IsZero() && ongoing:
		notes = append(notes, "your status is left to you for this one")
	}
	switch {
	case wantsCustom && p.Only == engine.OnlyDND:
		notes = append(notes, "no custom status, because of your settings")
	case wantsCustom && custom == nil && ongoing:
		notes = append(notes, "your custom status is left to you for this one")
	}
	if len(parts) == 0 && len(notes) == 0 {
		return "nothing"
	}
	out := strings.Join(parts, " and ")
	if per := av.At(in.Now); len(parts) > 0 && per.Status != e.Status {
		out = "within your " + kind(per.Status) + " time: " + out // the period calstatus acts on
	}
	if len(notes) > 0 {
		if out != "" {
			out += "; "
		}
		out += strings.Join(notes, "; ")
	}
	return out
}
