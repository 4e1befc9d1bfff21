// Package engine decides, without any I/O, what calstatus does for one user: from the user's
// availability, their current Mattermost status and custom status, what we stored about them, their
// settings and the organisation's policy, to the changes to make and the state to keep.
//
// The rules:
//   - busy (and tentative, unless configured otherwise) → Do Not Disturb until the meeting ends, and
//     a custom status "In a meeting" expiring then;
//   - out of office → Do Not Disturb and "Out of office until <date>";
//   - working elsewhere → a custom status only;
//   - free → give back the status the user had before we changed it and clear our custom status,
//     each only if it is still the one we set;
//   - manual choices win: once we handled an event we do not touch the user again for it, a user
//     already in DND on their own is left alone (and not "restored" later), and a user's own custom
//     status is never overwritten or cleared.
package engine

import (
	"fmt"
	"strings"
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

// Emojis of the custom statuses calstatus sets.
const (
	MeetingEmoji   = "calendar"
	OOFEmoji       = "palm_tree"
	ElsewhereEmoji = "house"
)

// CustomStatus is a Mattermost custom status.
type CustomStatus struct {
	Emoji, Text string
	ExpiresAt   time.Time
}

// Current is the user's state in Mattermost right now.
type Current struct {
	Status     string
	DNDEndTime time.Time
	// Custom is the user's custom status, nil if none (or expired).
	Custom *CustomStatus
}

// State is what calstatus remembers of a user between cycles. The zero value means "nothing held".
type State struct {
	// PrevStatus is the status the user had before we changed it; SetStatus what we set (empty when
	// we did not change the status, or the user has since taken it over); DNDEnd the DND end time we
	// gave Mattermost, which tells our DND from one the user picked again themselves.
	PrevStatus, SetStatus string
	DNDEnd                time.Time
	// CustomEmoji and CustomText are the custom status we set (empty when we set none), so we
	// clear only our own.
	CustomEmoji, CustomText string
	// EventKey identifies the event we handled: we act once per event and never again, so a user who
	// overrides us mid-meeting keeps their choice.
	EventKey string
	// Until is when the handled event ends.
	Until time.Time
}

// Held reports whether there is anything stored.
func (s State) Held() bool { return s != State{} }

func (s State) ownsStatus(cur Current) bool {
	if s.SetStatus == "" || cur.Status != s.SetStatus {
		return false
	}
	return s.SetStatus != DND || cur.DNDEndTime.Equal(s.DNDEnd)
}

// takenOver drops from the state what the user has changed since we set it: from then on it is
// theirs, even if they later pick the same status again.
func (s State) takenOver(cur Current) State {
	if s.SetStatus != "" && !s.ownsStatus(cur) {
		s.PrevStatus, s.SetStatus, s.DNDEnd = "", "", time.Time{}
	}
	if s.CustomText != "" && !s.ownsCustom(cur) {
		s.CustomEmoji, s.CustomText = "", ""
	}
	return s
}

func (s State) ownsCustom(cur Current) bool {
	return s.CustomText != "" && cur.Custom != nil && cur.Custom.Text == s.CustomText && cur.Custom.Emoji == s.CustomEmoji
}

// Settings are one user's choices (the user-controls issue fills them in).
type Settings struct {
	// Disabled: calstatus gives back what it holds and leaves the user alone.
	Disabled bool
}

// Policy is the organisation's configuration of the rules.
type Policy struct {
	// TentativeAsBusy treats tentative meetings like busy ones.
	TentativeAsBusy bool
	// ShowSubject puts the meeting's subject in the custom status (never for private events).
	ShowSubject bool
	// Notify sends the user a direct message when calstatus changes their status.
	Notify bool
	// Location is the time zone of dates shown to users (default UTC).
	Location *time.Location
}

// DefaultPolicy is what calstatus does with no configuration.
var DefaultPolicy = Policy{TentativeAsBusy: true}

// StatusUpdate is a status to set.
type StatusUpdate struct {
	Status string
	// DNDEndTime, for dnd, is when Mattermost itself ends the DND, so it ends on time even if
	// calstatus is down.
	DNDEndTime time.Time
	// ResetTo, when set, is set first: extending a DND we set must not make Mattermost remember
	// "dnd" as the status to return to.
	ResetTo string
}

// Decision is the outcome for one user.
type Decision struct {
	SetStatus   *StatusUpdate
	SetCustom   *CustomStatus
	ClearCustom bool
	// NewState is what to store; SaveState false means the stored state is already right.
	NewState  State
	SaveState bool
	// Notify is a message for the user ("" for none).
	Notify string
	Reason string
}

// Changes reports whether the decision changes anything in Mattermost.
func (d Decision) Changes() bool { return d.SetStatus != nil || d.SetCustom != nil || d.ClearCustom }

// EventKey names an event by its status and start, which is what free/busy tells us of it.
func EventKey(e calendar.Event) string {
	return fmt.Sprintf("%s@%d", e.Status, e.Start.Unix())
}

// treatment is what a calendar status asks for.
type treatment struct{ dnd, custom bool }

func (p Policy) treat(s calendar.Status) treatment {
	switch s {
	case calendar.Busy, calendar.OutOfOffice:
		return treatment{dnd: true, custom: true}
	case calendar.Tentative:
		return treatment{dnd: p.TentativeAsBusy, custom: p.TentativeAsBusy}
	case calendar.WorkingElsewhere:
		return treatment{custom: true}
	}
	return treatment{}
}

// Handled reports whether calstatus acts on the period e (an event it would treat).
func (p Policy) Handled(e calendar.Event) bool { return p.treat(e.Status) != treatment{} }

// Input is everything Decide looks at.
type Input struct {
	Now          time.Time
	Availability calendar.Availability
	Current      Current
	State        State
	Settings     Settings
	Policy       Policy
}

// Decide applies the rules for one user.
func Decide(in Input) Decision {
	ev := in.Availability.At(in.Now)
	t := in.Policy.treat(ev.Status)
	if in.Settings.Disabled || t == (treatment{}) {
		return giveBack(in, "free")
	}
	st, cur := in.State, in.Current
	key := EventKey(ev)
	if st.EventKey == key {
		if kept := st.takenOver(cur); kept != st {
			return Decision{NewState: kept, SaveState: true, Reason: "event already handled; the user took over"}
		}
		return Decision{Reason: "event already handled"}
	}

	d := Decision{SaveState: true, Reason: string(ev.Status)}
	next := State{EventKey: key, Until: ev.End}
	var did []string
	switch {
	case t.dnd && st.ownsStatus(cur):
		// From one of our events straight into the next: keep what the user had before.
		end := dndEnd(in.Availability, ev, in.Policy)
		next.PrevStatus, next.SetStatus, next.DNDEnd = st.PrevStatus, DND, end
		if !cur.DNDEndTime.Equal(end) {
			d.SetStatus = &StatusUpdate{Status: DND, DNDEndTime: end, ResetTo: st.PrevStatus}
			did = append(did, "Do Not Disturb until "+clock(end, in.Policy))
		}
	case t.dnd && cur.Status == DND:
		// The user chose DND themselves: leave it, and never "restore" anything for it.
	case t.dnd:
		end := dndEnd(in.Availability, ev, in.Policy)
		next.PrevStatus, next.SetStatus, next.DNDEnd = cur.Status, DND, end
		d.SetStatus = &StatusUpdate{Status: DND, DNDEndTime: end}
		did = append(did, "Do Not Disturb until "+clock(end, in.Policy))
	case st.ownsStatus(cur) && st.PrevStatus != cur.Status:
		// A DND event gave way to one that asks for none (working elsewhere).
		d.SetStatus = &StatusUpdate{Status: st.PrevStatus}
		did = append(did, "status back to "+st.PrevStatus)
	}

	if t.custom {
		want := customFor(ev, in.Policy)
		switch {
		case st.ownsCustom(cur) && sameCustom(*cur.Custom, want):
			next.CustomEmoji, next.CustomText = want.Emoji, want.Text
		case st.ownsCustom(cur) || cur.Custom == nil:
			next.CustomEmoji, next.CustomText = want.Emoji, want.Text
			d.SetCustom = &want
			did = append(did, fmt.Sprintf("custom status %q", want.Text))
		default:
			// The user's own custom status stays.
		}
	}
	d.NewState = next
	if in.Policy.Notify && len(did) > 0 {
		d.Notify = fmt.Sprintf("calstatus set your %s, from your calendar. It ends by itself; if you change it, calstatus leaves it alone for this event.",
			strings.Join(did, " and "))
	}
	return d
}

// giveBack returns what we hold: the previous status and our custom status, each only if the user
// has not changed it since, and forgets the event.
func giveBack(in Input, reason string) Decision {
	st, cur := in.State, in.Current
	if !st.Held() {
		return Decision{Reason: reason}
	}
	d := Decision{SaveState: true, Reason: reason + ": give back"}
	if st.ownsStatus(cur) && st.PrevStatus != "" && st.PrevStatus != cur.Status {
		d.SetStatus = &StatusUpdate{Status: st.PrevStatus}
	}
	if st.ownsCustom(cur) {
		d.ClearCustom = true
	}
	return d
}

// dndEnd is the end of the run of DND-worthy periods that starts with ev, so back-to-back meetings
// get one DND that Mattermost ends at the right time.
func dndEnd(a calendar.Availability, ev calendar.Event, p Policy) time.Time {
	end := ev.End
	for _, e := range a.Events {
		if e.Start.Equal(end) && p.treat(e.Status).dnd {
			end = e.End
		}
	}
	return end
}

func sameCustom(a, b CustomStatus) bool {
	return a.Emoji == b.Emoji && a.Text == b.Text && a.ExpiresAt.Equal(b.ExpiresAt)
}

func customFor(ev calendar.Event, p Policy) CustomStatus {
	switch ev.Status {
	case calendar.OutOfOffice:
		until := day(ev.End, p)
		if ev.End.Sub(ev.Start) < 24*time.Hour { // a short absence: the time says more than the date
			until = clock(ev.End, p)
		}
		return CustomStatus{Emoji: OOFEmoji, Text: "Out of office until " + until, ExpiresAt: ev.End}
	case calendar.WorkingElsewhere:
		return CustomStatus{Emoji: ElsewhereEmoji, Text: "Working elsewhere", ExpiresAt: ev.End}
	}
	text := "In a meeting"
	if p.ShowSubject && !ev.Private && strings.TrimSpace(ev.Subject) != "" {
		text += ": " + strings.TrimSpace(ev.Subject)
	}
	if r := []rune(text); len(r) > 100 { // Mattermost's limit
		text = string(r[:99]) + "…"
	}
	return CustomStatus{Emoji: MeetingEmoji, Text: text, ExpiresAt: ev.End}
}

func (p Policy) loc() *time.Location {
	if p.Location == nil {
		return time.UTC
	}
	return p.Location
}

func day(t time.Time, p Policy) string   { return t.In(p.loc()).Format("Mon 2 Jan") }
func clock(t time.Time, p Policy) string { return t.In(p.loc()).Format("15:04 MST") }

// Transitions returns the times in (from, to] at which the decision for a user may change: the
// boundaries of the periods calstatus handles. The worker schedules a delayed run at each, so
// statuses change on time rather than at the next cycle.
func Transitions(a calendar.Availability, p Policy, from, to time.Time) []time.Time {
	var out []time.Time
	add := func(t time.Time) {
		if t.After(from) && !t.After(to) && (len(out) == 0 || !out[len(out)-1].Equal(t)) {
			out = append(out, t)
		}
	}
	for _, e := range a.Events {
		if p.Handled(e) {
			add(e.Start)
			add(e.End)
		}
	}
	return out
}
