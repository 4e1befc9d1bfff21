// Package calendar holds the domain values calstatus derives from a mailbox's free/busy schedule.
package calendar

import (
	"sort"
	"strings"
	"time"
)

// Status is a free/busy status as Graph reports it.
type Status string

const (
	Free             Status = "free"
	Tentative        Status = "tentative"
	Busy             Status = "busy"
	OutOfOffice      Status = "oof"
	WorkingElsewhere Status = "workingElsewhere"
	Unknown          Status = "unknown"
	// Call is not a free/busy status: Teams presence shows the user in a call or presenting
	// (Event.FromPresence).
	Call Status = "call"
)

// ParseStatus maps Graph's status strings, compared case-insensitively, and availabilityView digits.
func ParseStatus(s string) Status {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "free", "0":
		return Free
	case "tentative", "1":
		return Tentative
	case "busy", "2":
		return Busy
	case "oof", "3":
		return OutOfOffice
	case "workingelsewhere", "4":
		return WorkingElsewhere
	}
	return Unknown
}

// Priority orders overlapping statuses: oof > busy > call > tentative > workingElsewhere > free. A
// meeting outranks a call during it (the meeting says more, and has an end); a call outranks a
// tentative meeting, which may not be happening.
func (s Status) Priority() int {
	switch s {
	case OutOfOffice:
		return 6
	case Busy:
		return 5
	case Call:
		return 4
	case Tentative:
		return 3
	case WorkingElsewhere:
		return 2
	case Free:
		return 1
	}
	return 0
}

// Event is one calendar item as free/busy shows it (or, with FromView, a period read from the
// availability view). Subject is empty when Graph hides it or the event is private.
type Event struct {
	Start, End time.Time
	Status     Status
	Subject    string
	Private    bool
	// FromView marks a period read from getSchedule's availabilityView because the mailbox hides its
	// items: its bounds are those of the view's slots, clipped to the asked window, so a period that
	// began before the window starts at the window start (its real start is unknown).
	FromView bool
	// FromPresence marks a call or presentation Teams presence shows now (Status Call; Subject
	// "Presenting" for a presentation): presence has no start or end, so Start is when it was read
	// and End how long calstatus holds it without reading it again.
	FromPresence bool
}

// Availability is what calstatus knows of one user for the sync window.
type Availability struct {
	Email string
	// Events are the non-free periods in the window, in UTC, sorted, without overlaps: where events
	// overlap the higher-priority status wins, and back-to-back periods of one status are merged.
	Events []Event
	// Items are the calendar items themselves (not free, not unknown; UTC, sorted by start then
	// end), as Graph returned them: what calstatus keys "already handled" on, since a merged period
	// changes shape as items enter the lookahead.
	Items []Event
}

// With returns a with e added as one more item.
func (a Availability) With(e Event) Availability {
	return NewAvailability(a.Email, append(append([]Event(nil), a.Items...), e))
}

// ItemsAt returns the items covering t.
func (a Availability) ItemsAt(t time.Time) []Event {
	var out []Event
	for _, e := range a.Items {
		if !t.Before(e.Start) && t.Before(e.End) {
			out = append(out, e)
		}
	}
	return out
}

// At returns the period covering t, or a zero Event with Status Free.
func (a Availability) At(t time.Time) Event {
	for _, e := range a.Events {
		if !t.Before(e.Start) && t.Before(e.End) {
			return e
		}
	}
	return Event{Status: Free}
}

// NewAvailability builds an Availability from raw items: Items keeps the items (UTC, sorted),
// Events their normalized periods.
func NewAvailability(email string, items []Event) Availability {
	var kept []Event
	for _, e := range items {
		if e.Status == Free || e.Status == Unknown || !e.End.After(e.Start) {
			continue
		}
		e.Start, e.End = e.Start.UTC(), e.End.UTC()
		if e.Private {
			e.Subject = ""
		}
		kept = append(kept, e)
	}
	sort.SliceStable(kept, func(i, j int) bool {
		if !kept[i].Start.Equal(kept[j].Start) {
			return kept[i].Start.Before(kept[j].Start)
		}
		return kept[i].End.Before(kept[j].End)
	})
	return Availability{Email: email, Events: Normalize(kept), Items: kept}
}

// Normalize turns raw, possibly overlapping schedule items into the sorted, disjoint periods of
// Availability.Events: each instant takes the highest-priority status covering it; adjacent
// periods of the same status are merged (keeping the first one's subject).
func Normalize(items []Event) []Event {
	var bounds []time.Time
	for _, e := range items {
		if e.Status == Free || e.Status == Unknown || !e.End.After(e.Start) {
			continue
		}
		bounds = append(bounds, e.Start.UTC(), e.End.UTC())
	}
	if len(bounds) == 0 {
		return nil
	}
	sort.Slice(bounds, func(i, j int) bool { return bounds[i].Before(bounds[j]) })
	var out []Event
	for i := 0; i+1 < len(bounds); i++ {
		from, to := bounds[i], bounds[i+1]
		if !to.After(from) {
			continue
		}
		var best *Event
		for k := range items {
			e := &items[k]
			if e.Status == Free || e.Status == Unknown || e.Start.After(from) || !e.End.After(from) {
				continue
			}
			if best == nil || e.Status.Priority() > best.Status.Priority() ||
				(e.Status == best.Status && e.Start.Before(best.Start)) {
				best = e
			}
		}
		if best == nil {
			continue
		}
		if n := len(out); n > 0 && out[n-1].Status == best.Status && out[n-1].End.Equal(from) {
			out[n-1].End = to
			continue
		}
		seg := *best
		seg.Start, seg.End = from, to
		if seg.Private {
			seg.Subject = ""
		}
		out = append(out, seg)
	}
	return out
}
