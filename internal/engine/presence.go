package engine

import (
	"strings"
	"time"

	"github.com/calstatus/calstatus/internal/calendar"
)

// Presenting is the Subject of a call item for a presentation (its custom status says so).
const Presenting = "Presenting"

// PresenceMargin is how far past the next cycle a call's DND and custom status reach, so a cycle a
// little late does not let them lapse.
const PresenceMargin = 3 * time.Minute

// cadence is Policy.Cadence, five minutes when unset.
func (p Policy) cadence() time.Duration {
	if p.Cadence <= 0 {
		return 5 * time.Minute
	}
	return p.Cadence
}

// PresenceItem is the item a Teams activity read at now asks for, if any: in a call or a conference
// call, or presenting (a screen share) → a call. Presence has no end, so the item is held for two
// cycles and PresenceMargin: the DND and custom status set for it end by themselves that long after
// calstatus last saw the call — on Mattermost's own expiry if calstatus stops — and are renewed
// every other cycle while it lasts (endChanged). A call that ends is given back at the next cycle.
func PresenceItem(activity string, now time.Time, p Policy) (calendar.Event, bool) {
	e := calendar.Event{Status: calendar.Call, Start: now, End: now.Add(2*p.cadence() + PresenceMargin), FromPresence: true}
	switch strings.ToLower(activity) {
	case "inacall", "inaconferencecall":
	case "presenting":
		e.Subject = Presenting
	default:
		return calendar.Event{}, false
	}
	return e, true
}

// HoldsCall reports whether calstatus handles a Teams call for the user, the user not having
// overridden its status.
func (s State) HoldsCall() bool {
	for _, m := range parseMarks(s.Handled) {
		if m.status == calendar.Call && !m.noStatus {
			return true
		}
	}
	return false
}

// HeldCall is the call item to decide with when Teams presence could not be read for a user this
// cycle (Graph throttled or failed): the call calstatus holds, if any, as it is — neither renewed
// nor given back early. If presence stays unreadable, Mattermost's own expiry ends the DND at its
// end and the next cycle gives the rest back; nothing flaps on one failed read.
func HeldCall(st State, now time.Time) (calendar.Event, bool) {
	held := st.HoldsCall()
	end := st.DNDEnd
	if st.CustomText != "" && st.CustomUntil.After(end) {
		end = st.CustomUntil
	}
	if !held || !now.Before(end) {
		return calendar.Event{}, false
	}
	e := calendar.Event{Status: calendar.Call, Start: now, End: end, FromPresence: true}
	if st.CustomEmoji == PresentingEmoji { // the custom status customFor sets for a presentation
		e.Subject = Presenting
	}
	return e, true
}
