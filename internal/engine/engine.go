// Package engine decides, without any I/O, what calstatus does for one user: from the user's
// availability, their current Mattermost status and what we stored about them, to the status update
// to make (if any) and the state to keep.
package engine

import (
	"fmt"
	"time"

	"github.com/calstatus/calstatus/internal/calendar"
)

// Mattermost statuses.
const (
	Online  = "online"
	Away    = "away"
	Offline = "offline"
	DND     = "dnd"
)

// Current is the user's status in Mattermost right now.
type Current struct {
	Status string
}

// State is what calstatus remembers of a user between cycles. The zero value means "nothing held".
type State struct {
	// PrevStatus is the status the user had before we changed it; empty when we changed nothing
	// (a marker only).
	PrevStatus string
	// SetStatus is the status we set, so we can tell whether the user has changed it since.
	SetStatus string
	// EventKey identifies the event we handled: we act once per event and never again, so a user who
	// overrides us mid-meeting keeps their choice.
	EventKey string
	// Until is when the handled event ends.
	Until time.Time
}

// Held reports whether there is anything stored.
func (s State) Held() bool { return s.EventKey != "" || s.PrevStatus != "" }

// Policy is the organisation's configuration of the rules.
type Policy struct {
	// TentativeAsBusy treats tentative meetings like busy ones.
	TentativeAsBusy bool
}

// DefaultPolicy is what calstatus does with no configuration.
var DefaultPolicy = Policy{TentativeAsBusy: true}

// StatusUpdate is a change to make in Mattermost.
type StatusUpdate struct {
	Status string
	// DNDEndTime, for dnd, is when Mattermost itself ends the DND (so it ends on time even if calstatus
	// is down).
	DNDEndTime time.Time
}

// Decision is the outcome for one user.
type Decision struct {
	Update *StatusUpdate
	// NewState is what to store; SaveState false means the stored state is already right.
	NewState  State
	SaveState bool
	Reason    string
}

// EventKey names an event by its status and start, which is what free/busy tells us of it.
func EventKey(e calendar.Event) string {
	return fmt.Sprintf("%s@%d", e.Status, e.Start.Unix())
}

func (p Policy) wantsDND(s calendar.Status) bool {
	switch s {
	case calendar.Busy, calendar.OutOfOffice:
		return true
	case calendar.Tentative:
		return p.TentativeAsBusy
	}
	return false
}

// Decide applies the rules for one user at time now.
func Decide(now time.Time, avail calendar.Availability, cur Current, st State, p Policy) Decision {
	ev := avail.At(now)
	if p.wantsDND(ev.Status) {
		key := EventKey(ev)
		switch {
		case st.EventKey == key:
			return Decision{Reason: "event already handled"}
		case st.PrevStatus != "" && cur.Status == st.SetStatus:
			// Straight from one of our events into the next: extend, keeping the original status.
			return Decision{
				Update:    &StatusUpdate{Status: DND, DNDEndTime: ev.End},
				NewState:  State{PrevStatus: st.PrevStatus, SetStatus: DND, EventKey: key, Until: ev.End},
				SaveState: true, Reason: string(ev.Status) + ": next event",
			}
		case cur.Status == DND:
			// The user chose DND themselves: leave it, and remember not to restore anything later.
			return Decision{NewState: State{EventKey: key, Until: ev.End}, SaveState: true,
				Reason: "already dnd by the user"}
		default:
			return Decision{
				Update:    &StatusUpdate{Status: DND, DNDEndTime: ev.End},
				NewState:  State{PrevStatus: cur.Status, SetStatus: DND, EventKey: key, Until: ev.End},
				SaveState: true, Reason: string(ev.Status),
			}
		}
	}
	if !st.Held() {
		return Decision{Reason: "free"}
	}
	if st.PrevStatus != "" && cur.Status == st.SetStatus && st.PrevStatus != cur.Status {
		return Decision{Update: &StatusUpdate{Status: st.PrevStatus}, SaveState: true,
			Reason: "free: restore " + st.PrevStatus}
	}
	// The user changed their status themselves (or Mattermost ended the DND on time): nothing to
	// give back; forget the event.
	return Decision{SaveState: true, Reason: "free: user status kept"}
}
