package engine

import (
	"fmt"
	"strings"
	"time"

	"github.com/calstatus/calstatus/internal/calendar"
)

// A mark records that calstatus made its one decision for a calendar item, and what of it the user
// has overridden since (or had already decided for themselves): calstatus never imposes that part
// again while the item lasts. Items are keyed by status, start and end as Graph gives them, so a
// merged period changing shape (another meeting entering the lookahead) is not a new event.
//
// Periods read from the availability view have no stable start (the view starts at the asked
// window), so they are keyed by status alone and kept while the view shows that status now; so are
// calls seen in Teams presence, which have no start or end at all.
type mark struct {
	status             calendar.Status
	start, end         time.Time
	view               bool
	noStatus, noCustom bool
}

type marks []mark

func markFor(e calendar.Event) mark {
	m := mark{status: e.Status, start: e.Start, end: e.End, view: e.FromView || e.FromPresence}
	if m.view {
		m.start = time.Time{}
	}
	return m
}

func (m mark) same(o mark) bool {
	if m.view || o.view {
		return m.view == o.view && m.status == o.status
	}
	return m.status == o.status && m.start.Equal(o.start) && m.end.Equal(o.end)
}

// String encodes marks for storage: "busy@1700000000-1700003600!s workingElsewhere@view-1700007200".
func (ms marks) String() string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		if m.view {
			parts[i] = fmt.Sprintf("%s@view-%d", m.status, m.end.Unix())
		} else {
			parts[i] = fmt.Sprintf("%s@%d-%d", m.status, m.start.Unix(), m.end.Unix())
		}
		if m.noStatus {
			parts[i] += "!s"
		}
		if m.noCustom {
			parts[i] += "!c"
		}
	}
	return strings.Join(parts, " ")
}

// parseMarks reads what String wrote; unreadable parts are dropped (they only make an item new).
func parseMarks(s string) marks {
	var out marks
	for _, f := range strings.Fields(s) {
		var m mark
		m.noCustom = strings.HasSuffix(f, "!c")
		f = strings.TrimSuffix(f, "!c")
		m.noStatus = strings.HasSuffix(f, "!s")
		f = strings.TrimSuffix(f, "!s")
		status, span, ok := strings.Cut(f, "@")
		if !ok {
			continue
		}
		m.status = calendar.Status(status)
		var start, end int64
		if rest, isView := strings.CutPrefix(span, "view-"); isView {
			m.view = true
			if _, err := fmt.Sscanf(rest, "%d", &end); err != nil {
				continue
			}
		} else if _, err := fmt.Sscanf(span, "%d-%d", &start, &end); err != nil {
			continue
		} else {
			m.start = time.Unix(start, 0).UTC()
		}
		m.end = time.Unix(end, 0).UTC()
		out = append(out, m)
	}
	return out
}

// pruned keeps the marks of items still covering now that calstatus handles: an item that ended, or
// that Graph no longer shows (cancelled, moved), is done with, and so is one the policy no longer
// handles (a user who turned calls off).
func (ms marks) pruned(a calendar.Availability, now time.Time, p Policy) marks {
	covering := a.ItemsAt(now)
	var out marks
	for _, m := range ms {
		for _, e := range covering {
			if p.Handled(e) && m.same(markFor(e)) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// override records that the user took over the status and/or the custom status of every item held.
func (ms marks) override(status, custom bool) marks {
	out := make(marks, len(ms))
	for i, m := range ms {
		m.noStatus = m.noStatus || status
		m.noCustom = m.noCustom || custom
		out[i] = m
	}
	return out
}

func (ms marks) find(m mark) int {
	for i, o := range ms {
		if o.same(m) {
			return i
		}
	}
	return -1
}

// pick returns the highest-priority item covering now that asks for DND (dnd) or a custom status
// (!dnd) and is new, or was handled without the user overriding that part.
func (ms marks) pick(covering []calendar.Event, p Policy, dnd bool) (calendar.Event, bool) {
	var best calendar.Event
	found := false
	for _, e := range covering {
		t := p.treat(e.Status)
		if (dnd && !t.dnd) || (!dnd && !t.custom) {
			continue
		}
		i := ms.find(markFor(e))
		if i >= 0 && ((dnd && ms[i].noStatus) || (!dnd && ms[i].noCustom)) {
			continue
		}
		if !found || e.Status.Priority() > best.Status.Priority() {
			best, found = e, true
		}
	}
	return best, found
}

// mayImpose reports whether pick finds an item.
func (ms marks) mayImpose(covering []calendar.Event, p Policy, dnd bool) bool {
	_, ok := ms.pick(covering, p, dnd)
	return ok
}

// add marks the covering items calstatus handles, adding the given overrides to them.
func (ms marks) add(covering []calendar.Event, p Policy, noStatus, noCustom bool) marks {
	out := append(marks(nil), ms...)
	for _, e := range covering {
		if !p.Handled(e) {
			continue
		}
		m := markFor(e)
		i := out.find(m)
		if i < 0 {
			out = append(out, m)
			i = len(out) - 1
		}
		out[i].noStatus = out[i].noStatus || noStatus
		out[i].noCustom = out[i].noCustom || noCustom
	}
	return out
}

func (ms marks) until() time.Time {
	var u time.Time
	for _, m := range ms {
		if m.end.After(u) {
			u = m.end
		}
	}
	return u
}
