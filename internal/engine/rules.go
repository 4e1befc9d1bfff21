package engine

import (
	"sort"
	"time"

	"github.com/calstatus/calstatus/internal/calendar"
)

// treatment is what a calendar status asks for.
type treatment struct{ dnd, custom bool }

// rules maps each calendar status to its treatment; tentative follows Policy.TentativeAsBusy.
var rules = map[calendar.Status]treatment{
	calendar.Busy:             {dnd: true, custom: true},
	calendar.OutOfOffice:      {dnd: true, custom: true},
	calendar.Tentative:        {dnd: true, custom: true},
	calendar.Call:             {dnd: true, custom: true}, // Teams presence (PresenceItem)
	calendar.WorkingElsewhere: {custom: true},
	calendar.Free:             {},
	calendar.Unknown:          {},
}

func (p Policy) treat(s calendar.Status) treatment {
	if s == calendar.Tentative && !p.TentativeAsBusy || s == calendar.Call && p.CallsOff {
		return treatment{}
	}
	t := rules[s]
	switch p.Only {
	case OnlyDND:
		t.custom = false
	case OnlyCustom:
		t.dnd = false
	}
	return t
}

// Handled reports whether calstatus acts on the item or period e.
func (p Policy) Handled(e calendar.Event) bool { return p.treat(e.Status) != treatment{} }

// customFor is the custom status an item or period asks for, expiring when it ends.
func customFor(ev calendar.Event, p Policy) CustomStatus {
	cs := CustomStatus{Emoji: MeetingEmoji, Text: "In a meeting", ExpiresAt: ev.End}
	switch ev.Status {
	case calendar.OutOfOffice:
		until := day(ev.End, p)
		if ev.End.Sub(ev.Start) < 24*time.Hour { // a short absence: the time says more than the date
			until = clock(ev.End, p)
		}
		cs.Emoji, cs.Text = OOFEmoji, "Out of office until "+until
	case calendar.WorkingElsewhere:
		cs.Emoji, cs.Text = ElsewhereEmoji, "Working elsewhere"
	case calendar.Call:
		cs.Emoji, cs.Text = CallEmoji, "In a call"
		if ev.Subject == Presenting {
			cs.Emoji, cs.Text = PresentingEmoji, "Presenting"
		}
	default:
		if p.ShowSubject && !ev.Private && ev.Subject != "" {
			cs.Text += ": " + ev.Subject
		}
		if r := []rune(cs.Text); len(r) > 100 { // Mattermost's limit
			cs.Text = string(r[:99]) + "…"
		}
	}
	if ev.FromView {
		cs.ExpiresAt = cs.ExpiresAt.Add(ViewMargin)
	}
	return cs
}

func sortTimes(ts []time.Time) { sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) }) }
