// Package engine decides, without any I/O, what calstatus does for one user: from the user's
// availability, their current Mattermost status and custom status, what we stored about them, their
// settings and the organisation's policy, to the changes to make and the state to keep.
//
// The rules (see rules.go for the table):
//   - busy (and tentative, unless configured otherwise) → Do Not Disturb until the meeting ends, and
//     a custom status "In a meeting" expiring then;
//   - out of office → Do Not Disturb and "Out of office until <date>";
//   - working elsewhere → a custom status only;
//   - free → give back the status the user had before we changed it — exactly, manual flag
//     included — and clear our custom status, each only if it is still the one we set;
//   - manual choices win: we decide once per calendar item and never impose again for it, a user
//     already in DND (or on automatic replies) is left alone, and a user's own custom status is
//     never overwritten or cleared.
//   - a user who turned calstatus off or paused it (Settings) gets back what we hold, as when an
//     event ends, and nothing imposed; dates and times shown are in the user's own time zone.
//
// How Mattermost v6 keeps a status shapes the rules (app/status.go, store/sqlstore/status_store.go):
// `PUT status` stores away/offline as manual (activity never moves a manual status), dnd with an end
// time remembers the current status as the one to return to, and Mattermost's own DND expiry gives
// that status back as automatic. So an automatic away/offline is given back by letting our DND
// expire, never by setting it; and dnd is never set on top of dnd (it would remember "dnd").
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
	// OutOfOffice is Mattermost's status while a user's automatic replies are on: setting any other
	// status turns them off, so calstatus never touches it.
	OutOfOffice = "ooo"
)

// Emojis of the custom statuses calstatus sets.
const (
	MeetingEmoji    = "calendar"
	OOFEmoji        = "palm_tree"
	ElsewhereEmoji  = "house"
	CallEmoji       = "telephone_receiver"
	PresentingEmoji = "desktop_computer"
)

// UnknownEndBound is how long past now a DND of ours whose end Mattermost reads as unknown is left
// to Mattermost's expiry once the calendar no longer asks for it; a longer one is ended.
const UnknownEndBound = time.Hour

// Server is what calstatus knows of how the Mattermost server keeps statuses; its version decides it
// (internal/mattermost). The zero value is a v6.7.2 server.
type Server struct {
	// ExpiryEvery is how often its DND expiry job runs: every five minutes up to about v10.5, every
	// minute (on the clock) from about v10.6. Zero means five minutes.
	ExpiryEvery time.Duration
	// EndsKnown: its status reads always carry the DND end (about v10.6 on). Before, a status read
	// past its cache reports end 0 for every DND, so a DND with no end may be ours.
	EndsKnown bool
	// CustomOff: custom statuses are turned off on the server (TeamSettings.EnableCustomUserStatuses
	// false). calstatus sets none then; one of its own still shown is cleared.
	CustomOff bool
}

// Expiry is how often the server's DND expiry job runs.
func (s Server) Expiry() time.Duration {
	if s.ExpiryEvery <= 0 {
		return 5 * time.Minute
	}
	return s.ExpiryEvery
}

// Grace is how long after a DND's end Mattermost may still show it (two runs of its expiry job): a
// DND with an unknown end still showing after its end plus this is not ours.
func (s Server) Grace() time.Duration { return 2 * s.Expiry() }

// DNDMinute is the granularity of a DND end: Mattermost from about v10.6 stores an end cut to the
// whole minute, so calstatus sends ends on the minute and compares them so.
const DNDMinute = time.Minute

// DNDEndFor is the DND end calstatus sends for something ending at t: on the whole minute, rounded
// up so a meeting is never cut short.
func DNDEndFor(t time.Time) time.Time {
	if r := t.Truncate(DNDMinute); r.Before(t) {
		return r.Add(DNDMinute)
	}
	return t
}

// SameDNDEnd reports whether two DND ends are the same as Mattermost keeps them (cut to the minute
// by servers from about v10.6; calstatus's own are on the minute already).
func SameDNDEnd(a, b time.Time) bool { return a.Truncate(DNDMinute).Equal(b.Truncate(DNDMinute)) }

// CustomStatus is a Mattermost custom status.
type CustomStatus struct {
	Emoji, Text string
	ExpiresAt   time.Time
}

// Current is the user's state in Mattermost right now.
type Current struct {
	Status string
	Manual bool
	// DNDEndTime is when Mattermost ends the DND. Zero means none — or unknown: Mattermost reports 0
	// for a status row read past its cache (after a restart, beyond its cache size).
	DNDEndTime time.Time
	// LastActivity is when Mattermost last saw the user active or set them online (zero: unknown).
	LastActivity time.Time
	// Custom is the user's custom status, nil if none. One that expired by Now counts as none,
	// unless it is ours: Mattermost keeps expired ones, so calstatus clears its own.
	Custom *CustomStatus
}

// State is what calstatus remembers of a user between cycles. The zero value means "nothing held".
type State struct {
	// PrevStatus and PrevManual are the status the user had before we set DND and whether they had
	// set it by hand: what we give back.
	PrevStatus string
	PrevManual bool
	// SetStatus is what of ours Mattermost shows: DND (until DNDEnd), or PrevStatus set by hand on
	// the way into a DND that then failed ("pinned": an automatic status we must still give back).
	// Empty when we hold no status.
	SetStatus string
	DNDEnd    time.Time
	// CustomEmoji, CustomText and CustomUntil are the custom status we set (empty when none), so we
	// clear only our own, and tell its expiry from the user removing it.
	CustomEmoji, CustomText string
	CustomUntil             time.Time
	// Handled lists the calendar items we made our one decision for (see marks.go), each kept until
	// it ends, with what the user overrode.
	Handled string
	// Replies is the RepliesHash of the auto-responder message calstatus turned on (SetStatus is
	// then OutOfOffice); RepliesDone: calstatus made its one decision for the automatic replies
	// Outlook shows now (turned them on, or left the user's own status alone), not made again until
	// they end. RepliesKept keeps the state from being purged while either lasts (replies.go).
	Replies     string
	RepliesDone bool
	RepliesKept time.Time
	// Until is when the last handled item ends (old state is purged a day later).
	Until time.Time
}

// Held reports whether there is anything stored.
func (s State) Held() bool { return s != State{} }

// Settings are one user's own choices (the /calstatus slash command) and their time zone.
type Settings struct {
	// Disabled ("/calstatus off"): calstatus gives back what it holds — exactly, as when an event
	// ends — and then leaves the user alone.
	Disabled bool
	// PausedUntil ("/calstatus pause 2h"): before it, as Disabled; from it on, as usual.
	PausedUntil time.Time
	// Location is the user's own time zone (Mattermost's automatic or manual one) for dates and
	// times shown to them; nil means Policy.Location.
	Location *time.Location
	// Only ("/calstatus settings only dnd|custom"): calstatus sets only the status, or only the
	// custom status; "" both. What it holds of the other is given back as at an event's end.
	Only Only
	// ShowSubject and Notify ("/calstatus settings subject|notify on|off") replace the
	// organisation's Policy.ShowSubject and Policy.Notify for the user; nil keeps them.
	ShowSubject, Notify *bool
	// CallsOff ("/calstatus settings calls off"): Teams calls and presentations are left alone for
	// the user; what calstatus holds for one is given back.
	CallsOff bool
	// RepliesOff ("/calstatus settings replies off"): Outlook's automatic replies are not turned on
	// in Mattermost for the user; ones calstatus turned on are given back.
	RepliesOff bool
}

// Only is the part of calstatus a user keeps.
type Only string

const (
	// OnlyDND: Do Not Disturb during meetings, no custom status.
	OnlyDND Only = "dnd"
	// OnlyCustom: the custom status, never the status.
	OnlyCustom Only = "custom"
)

// Paused reports whether a pause is running at now.
func (s Settings) Paused(now time.Time) bool { return now.Before(s.PausedUntil) }

// Off reports whether calstatus leaves the user alone at now (off, or paused).
func (s Settings) Off(now time.Time) bool { return s.Disabled || s.Paused(now) }

// Policy is the organisation's configuration of the rules.
type Policy struct {
	// TentativeAsBusy treats tentative meetings like busy ones.
	TentativeAsBusy bool
	// ShowSubject puts the meeting's subject in the custom status (never for private events).
	ShowSubject bool
	// Notify sends the user a direct message when calstatus changes their status.
	Notify bool
	// Location is the time zone of dates shown to users (default UTC) who have none of their own
	// (Settings.Location).
	Location *time.Location
	// Only, CallsOff and RepliesOff are the user's Settings (Settings.policy sets them).
	Only                 Only
	CallsOff, RepliesOff bool
	// Cadence is how often the sync runs (SYNC_SCHEDULE's period; zero means five minutes): how long
	// a call seen in Teams presence is held without being seen again (see PresenceItem).
	Cadence time.Duration
	// Server is how the Mattermost server keeps statuses.
	Server Server
}

// DefaultPolicy is what calstatus does with no configuration.
var DefaultPolicy = Policy{TentativeAsBusy: true}

// StatusUpdate is a status to set.
type StatusUpdate struct {
	// Via, when set, is set first: dnd must never be set on top of dnd (Mattermost would remember
	// "dnd" as the status to return to), so a DND is extended or shortened through the status to
	// give back.
	Via    string
	Status string
	// DNDEndTime, for dnd, is when Mattermost itself ends the DND (giving PrevStatus back as
	// automatic). A time already past shortens the DND: Mattermost's expiry job ends it shortly.
	DNDEndTime time.Time
}

// Decision is the outcome for one user.
type Decision struct {
	// Replies, when set, is made before SetStatus: turning the auto-responder on, or checking that
	// the one to give back is still ours (SetStatus then turns it off).
	Replies *RepliesUpdate
	// RepliesTheirs is the state to store instead, with nothing else changed, when Mattermost
	// shows an auto-responder Replies was to change as no longer ours (Theirs).
	RepliesTheirs State
	SetStatus     *StatusUpdate
	SetCustom     *CustomStatus
	ClearCustom   bool
	// NewState is what to store once every change is made; SaveState false means the stored state
	// is already right. Applied gives the state for a partly failed change.
	NewState  State
	SaveState bool
	// Notify is a message for the user ("" for none).
	Notify string
	Reason string
}

// Changes reports whether the decision changes anything in Mattermost.
func (d Decision) Changes() bool {
	return d.Replies != nil || d.SetStatus != nil || d.SetCustom != nil || d.ClearCustom
}

// Input is everything Decide looks at.
type Input struct {
	Now          time.Time
	Availability calendar.Availability
	// Replies are Outlook's automatic replies (AUTOMATIC_REPLIES_SYNC; with it off, known and off).
	Replies  Replies
	Current  Current
	State    State
	Settings Settings
	Policy   Policy
}

// Decide applies the rules for one user.
func Decide(in Input) Decision {
	now, cur, p := in.Now, in.Current, in.Settings.policy(in.Policy)
	off := in.Settings.Off(now)
	old := in.State
	st := old
	if cur.Custom != nil && !cur.Custom.ExpiresAt.IsZero() && !cur.Custom.ExpiresAt.After(now) && !ownsCustom(st, cur) {
		cur.Custom = nil // clients hide an expired one (Mattermost keeps it); ours is cleared below
	}
	marks := parseMarks(st.Handled).pruned(in.Availability, now, p)
	var why []string
	var d0 *StatusUpdate

	// What of ours does Mattermost still show?
	switch statusHold(st, cur, now, p.Server) {
	case holdEnded:
		// Mattermost's expiry gave the previous status back, as automatic; one the user had set by
		// hand is set again, so it is exactly theirs (a DND whose end we could not read ends so). A
		// DND for a new item set in its place remembers it as set by hand, too.
		if st.PrevManual {
			d0 = &StatusUpdate{Status: st.PrevStatus}
			cur.Status, cur.Manual = st.PrevStatus, true
		}
		st.SetStatus, st.DNDEnd = "", time.Time{}
	case holdBotched:
		// Mattermost's expiry gave back "dnd" (its status cache was stale as ours was set, so it
		// kept dnd as the status to return to): set ours again, through the status to give back, to
		// end now — its expiry then gives that back.
		past := now.Truncate(DNDMinute)
		d0 = &StatusUpdate{Via: st.PrevStatus, Status: DND, DNDEndTime: past}
		cur.Status, cur.Manual, cur.DNDEndTime = DND, true, past
		st.DNDEnd = past
		why = append(why, "Mattermost gave back dnd: set again")
	case holdLost:
		// The user changed it: theirs from now on, for every item we handled.
		st.PrevStatus, st.PrevManual, st.SetStatus, st.DNDEnd = "", false, "", time.Time{}
		st.Replies = "" // changing the status turned the auto-responder off: theirs to turn on again
		marks = marks.override(true, false)
		why = append(why, "the user changed the status")
	}
	if st.MissesCustom(cur) {
		if st.CustomUntil.IsZero() || st.CustomUntil.After(now) {
			marks = marks.override(false, true)
			why = append(why, "the user changed the custom status")
		}
		st.CustomEmoji, st.CustomText, st.CustomUntil = "", "", time.Time{}
	}

	d := Decision{SetStatus: d0}
	var did []string
	next := st
	covering := in.Availability.ItemsAt(now)
	ev := in.Availability.At(now)
	t := p.treat(ev.Status)
	if off {
		// Off or paused: what we hold is given back as when an event ends, nothing is imposed, and
		// nothing is remembered of the items (on again, calstatus starts afresh).
		marks, covering, t = nil, nil, treatment{}
		if in.Settings.Disabled {
			why = append(why, "calstatus is off for the user")
		} else {
			why = append(why, "paused until "+in.Settings.PausedUntil.UTC().Format(time.RFC3339))
		}
	}

	// Status.
	held := statusHold(st, cur, now, p.Server)
	// An item covering now that asks for DND and whose status the user has not overridden.
	wantDND := t.dnd && marks.mayImpose(covering, p, true)
	var end time.Time
	var last calendar.Event
	if wantDND {
		end, last = dndEnd(in.Availability, dndPeriod(ev, covering, marks, p), p)
	}
	rd := replies(in.Replies, st, cur, held, off, p, wantDND, end, now)
	next = rd.next
	if rd.why != "" {
		why = append(why, rd.why)
	}
	if rd.turnedOn {
		did = append(did, "automatic replies, from Outlook's")
	}
	switch {
	case rd.decided:
		d.Replies, d.SetStatus = rd.update, rd.status
		if d.Replies != nil {
			d.RepliesTheirs = Theirs(old, now)
		}
	case wantDND && (held == holdDND || held == holdPinned):
		switch {
		case held == holdPinned:
			d.SetStatus = &StatusUpdate{Status: DND, DNDEndTime: end}
		case cur.DNDEndTime.IsZero():
			// Unknown end (a status read past Mattermost's cache): never write over a DND that may
			// be the user's; ours ends at its time and the next item sets it again.
		case dndEndChanged(cur.DNDEndTime, end, last, now, p):
			d.SetStatus = &StatusUpdate{Via: st.PrevStatus, Status: DND, DNDEndTime: end}
		}
		if d.SetStatus != nil {
			next.SetStatus, next.DNDEnd = DND, end
			why = append(why, "DND extended to "+end.Format(time.RFC3339))
		}
	case wantDND:
		if cur.Status == DND || cur.Status == OutOfOffice {
			// The user's own DND, or automatic replies (setting a status would turn them off).
			marks = marks.add(covering, p, true, false)
			why = append(why, "left alone: "+cur.Status+" already")
			break
		}
		d.SetStatus = &StatusUpdate{Status: DND, DNDEndTime: end}
		next.PrevStatus, next.PrevManual, next.SetStatus, next.DNDEnd = cur.Status, cur.Manual && cur.Status != Online, DND, end
		did = append(did, "Do Not Disturb until "+When(end, now, p.loc()))
	case held != holdNone:
		var u *StatusUpdate
		if u, next = giveBack(next, cur, now, held, p.Server); u != nil || d0 == nil {
			d.SetStatus = u
		}
		why = append(why, "status given back")
	}

	// Custom status: the highest-priority item the user has not overridden decides it.
	mine := ownsCustom(st, cur)
	item, may := marks.pick(covering, p, false)
	switch {
	case may && !p.Server.CustomOff:
		period := ev
		if period.Status != item.Status {
			period = item // a higher-priority item was overridden
		}
		want := customFor(period, p)
		switch {
		case mine && sameCustom(*cur.Custom, want, period, now, p):
		case mine || cur.Custom == nil:
			d.SetCustom = &want
			next.CustomEmoji, next.CustomText, next.CustomUntil = want.Emoji, want.Text, want.ExpiresAt
			if !mine {
				did = append(did, fmt.Sprintf("custom status %q", want.Text))
			}
		default:
			marks = marks.add(covering, p, false, true) // the user's own custom status stays
		}
	case mine:
		d.ClearCustom = true
		next.CustomEmoji, next.CustomText, next.CustomUntil = "", "", time.Time{}
	}

	marks = marks.add(covering, p, false, false)
	next.Handled = marks.String()
	if next.SetStatus == "" && next.DNDEnd.IsZero() {
		next.PrevStatus, next.PrevManual = "", false
	}
	next.Until = next.latest()
	d.NewState = next
	d.SaveState = next != old
	switch {
	case p.Notify && rd.turnedOn:
		d.Notify = "calstatus turned on your automatic replies, with the text of Outlook's: direct messages are answered with it, and your status is Out of office until they end in Outlook. If you change your status or turn them off, calstatus leaves them off."
	case p.Notify && len(did) > 0:
		d.Notify = fmt.Sprintf("calstatus set your %s, from your calendar. It ends by itself; if you change it, calstatus leaves it alone for this event.",
			strings.Join(did, " and "))
	}
	d.Reason = reason(ev, did, why)
	return d
}

// hold is what Mattermost shows of a status we set.
type hold int

const (
	holdNone    hold = iota
	holdDND          // our DND
	holdReplies      // ooo with our auto-responder
	holdPinned       // PrevStatus, set by hand by us (a DND change half done)
	holdEnded        // Mattermost's expiry ended our DND and gave PrevStatus back
	holdBotched      // Mattermost's expiry ended our DND and gave back "dnd" (a stale cache)
	holdLost         // the user changed it
)

func statusHold(st State, cur Current, now time.Time, srv Server) hold {
	switch {
	case st.SetStatus == "":
		return holdNone
	case st.SetStatus == OutOfOffice && cur.Status == OutOfOffice:
		return holdReplies
	case st.SetStatus == DND && cur.Status == DND && !cur.DNDEndTime.IsZero() && SameDNDEnd(cur.DNDEndTime, st.DNDEnd):
		return holdDND
	case st.SetStatus == DND && cur.Status == DND && !cur.Manual && cur.DNDEndTime.IsZero() && !now.Before(st.DNDEnd):
		// A DND no one set by hand (every DND set is manual), without an end, after ours ended: what
		// Mattermost's expiry leaves when it kept "dnd" as the status to give back.
		return holdBotched
	case st.SetStatus == DND && cur.Status == DND && cur.DNDEndTime.IsZero() && !srv.EndsKnown:
		// Unknown end: ours until Mattermost would have ended it; then the user's.
		if now.Before(st.DNDEnd.Add(srv.Grace())) {
			return holdDND
		}
		return holdLost
	case st.SetStatus == DND && !cur.Manual && !now.Before(st.DNDEnd) && (cur.Status == st.PrevStatus ||
		st.PrevManual && (cur.Status == Offline || !cur.LastActivity.IsZero() && !cur.LastActivity.Before(st.DNDEnd))):
		// Given back as automatic by Mattermost's expiry. A status the user had set by hand is then
		// still theirs when Mattermost shows an automatic one it moved to since — offline (a restart,
		// a disconnect) or online on activity after our DND's end — and is set by hand again. An
		// online from before the end is the user leaving our DND themselves.
		if !srv.EndsKnown && !st.PrevManual && st.HoldsCall() {
			// A call's DND is short and renewed while the call lasts, but not where its end reads
			// unknown (a server before about v10.6, past its status cache): Mattermost's expiry
			// then ends it mid-call, and a user who left it just before cannot be told from that.
			// Taken as the user's: the call gets no DND again, rather than a user's choice being
			// overridden (what Mattermost shows is theirs either way).
			return holdLost
		}
		return holdEnded
	case st.SetStatus != DND && cur.Status == st.SetStatus && (cur.Manual || cur.Status == Online):
		return holdPinned
	}
	return holdLost
}

// giveBack returns the status we hold, exactly: online (never manual) and a status the user had
// set by hand are set back; an automatic away/offline is left to Mattermost's DND expiry, which
// gives it back as automatic (shortening our DND first if the event ended early).
func giveBack(next State, cur Current, now time.Time, held hold, srv Server) (*StatusUpdate, State) {
	prev := next.PrevStatus
	exact := prev == Online || next.PrevManual
	past := now.Truncate(DNDMinute) // a DND shortened to now ends at Mattermost's next expiry run
	forget := func(s State) State {
		s.PrevStatus, s.PrevManual, s.SetStatus, s.DNDEnd = "", false, "", time.Time{}
		return s
	}
	switch {
	case held == holdPinned && exact:
		return nil, forget(next)
	case held == holdPinned:
		return &StatusUpdate{Status: DND, DNDEndTime: past}, forget(next)
	case cur.DNDEndTime.IsZero() && !srv.EndsKnown && next.DNDEnd.Before(now.Add(UnknownEndBound)):
		// Unknown end: no write over a DND that may be the user's; Mattermost ends ours soon. One
		// that would run on much longer (a cancelled out-of-office week, read after a v6 restart,
		// when Mattermost reads no end until the next write) is ended: a user who put their own DND
		// over such a long one of ours loses it, which beats being in DND for days.
		return nil, next
	case exact:
		return &StatusUpdate{Status: prev}, forget(next)
	case now.Before(next.DNDEnd):
		// Shortened: watched until Mattermost's expiry has given the status back (and set again if
		// it gave back "dnd", see holdBotched).
		next.DNDEnd = past
		return &StatusUpdate{Via: prev, Status: DND, DNDEndTime: past}, next
	}
	// Our DND is over: Mattermost's expiry gives the automatic status back; keep watching until it has.
	return nil, next
}

// Result says which parts of a decision were applied in Mattermost.
type Result struct {
	Replies, Via, Status, Custom bool
	// Theirs: Mattermost showed the auto-responder to change as the user's (RepliesUpdate.Ours);
	// nothing was changed.
	Theirs bool
}

// Applied is the state to store after applying d partly: what was not done is as before (old), so
// the next run decides it again; a Via set without its DND leaves a pinned status to give back.
func Applied(old State, d Decision, r Result) State {
	if r.Theirs {
		return d.RepliesTheirs
	}
	s := d.NewState
	// Automatic replies turned on (or their text changed) by their patch; given back by the status.
	repliesFailed := d.Replies != nil && d.Replies.On && !r.Replies
	statusFailed := d.SetStatus != nil && !r.Status || repliesFailed
	customFailed := (d.SetCustom != nil || d.ClearCustom) && !r.Custom
	if !statusFailed && !customFailed {
		return s
	}
	s.Handled = old.Handled // the items are decided again
	if statusFailed {
		s.PrevStatus, s.PrevManual, s.SetStatus, s.DNDEnd = old.PrevStatus, old.PrevManual, old.SetStatus, old.DNDEnd
		s.Replies, s.RepliesDone = old.Replies, old.RepliesDone
		if r.Via && d.SetStatus.Via != "" {
			s.Replies = "" // the first status write turned ours off
			s.SetStatus, s.DNDEnd = d.SetStatus.Via, time.Time{}
			if s.PrevStatus == "" {
				s.PrevStatus = d.SetStatus.Via
			}
		}
	}
	if customFailed {
		s.CustomEmoji, s.CustomText, s.CustomUntil = old.CustomEmoji, old.CustomText, old.CustomUntil
	}
	s.Until = s.latest()
	return s
}

// latest is when the last thing held ends: a handled item, our DND, our custom status.
func (s State) latest() time.Time {
	u := parseMarks(s.Handled).until()
	for _, t := range []time.Time{s.DNDEnd, s.CustomUntil, s.RepliesKept} {
		if t.After(u) {
			u = t
		}
	}
	return u
}

// Claim is a decision stored before it is applied, so that a crash or a concurrent delivery between
// storing and applying never reads as the user's own change.
type Claim struct {
	// Owner is the run applying it; Until is when that run has surely stopped.
	Owner string
	Until time.Time
	// Prev is the state before the claim.
	Prev State
}

// Resolve is the state to decide from when a claim (intended) was stored and its owner is gone:
// each part of it — the status, the custom status — as the claim if Mattermost shows that part
// applied, otherwise as before the claim; the items are decided again unless both parts were
// applied. (A DND Mattermost's expiry has since ended was applied: its custom status is still ours.)
func Resolve(intended State, c Claim, cur Current, now time.Time, srv Server) State {
	s := c.Prev
	halfway := viaOnly(intended, c.Prev, cur)
	statusDone := !halfway && statusApplied(intended, c.Prev, cur, now, srv)
	customDone := ownsCustom(intended, cur) || intended.CustomText == "" && !ownsCustom(c.Prev, cur)
	if statusDone {
		s.PrevStatus, s.PrevManual, s.SetStatus, s.DNDEnd = intended.PrevStatus, intended.PrevManual, intended.SetStatus, intended.DNDEnd
		// The automatic replies go with the status (ooo shown: ours turned on; a change of their
		// text is taken as made, RepliesUpdate.Ours accepting either text next time).
		s.Replies, s.RepliesDone = intended.Replies, intended.RepliesDone
	}
	if halfway {
		if c.Prev.SetStatus == OutOfOffice {
			s.PrevStatus, s.Replies = givenBackFromReplies(s.PrevStatus), ""
		}
		s.SetStatus, s.DNDEnd = s.PrevStatus, time.Time{} // pinned, as Applied keeps a Via done alone""
	}
	if customDone {
		s.CustomEmoji, s.CustomText, s.CustomUntil = intended.CustomEmoji, intended.CustomText, intended.CustomUntil
	}
	if statusDone && customDone {
		return intended
	}
	s.Until = s.latest()
	return s
}

// statusApplied reports whether Mattermost shows the status part of a claim applied: the status we
// meant to hold (or Mattermost's expiry having ended it), or, for a claim that gives the status back,
// ours before it no longer showing — but for a status the user had set by hand, which Mattermost's
// expiry (or a restart's offline) does not give back: that is set again from the state before.
func statusApplied(intended, prev State, cur Current, now time.Time, srv Server) bool {
	if intended.SetStatus == "" {
		h := statusHold(prev, cur, now, srv)
		return h != holdDND && h != holdPinned && h != holdReplies && !(h == holdEnded && prev.PrevManual)
	}
	switch statusHold(intended, cur, now, srv) {
	case holdDND, holdPinned, holdEnded, holdReplies:
		return true
	}
	return false
}

// viaOnly reports whether Mattermost shows a claimed change to our DND stopped half way: the status
// to give back set by hand on the way (StatusUpdate.Via), its DND write not landed. That status is
// ours to give back (pinned), not the user's choice. A claim that gives back an exact status sets
// it directly: showing it is the claim done.
func viaOnly(intended, prev State, cur Current) bool {
	via := prev.PrevStatus
	if prev.SetStatus == OutOfOffice { // automatic replies given back into a DND (replies)
		via = givenBackFromReplies(via)
		return intended.SetStatus == DND && cur.Status == via && (cur.Manual || via == Online)
	}
	if prev.SetStatus != DND || via == "" || via == DND || cur.Status != via || !cur.Manual && via != Online {
		return false
	}
	if intended.SetStatus == DND { // an extension, through via
		return !intended.DNDEnd.Equal(prev.DNDEnd)
	}
	return intended.SetStatus == "" && via != Online && !prev.PrevManual // shortened through via
}

// MissesCustom reports whether s holds a custom status of ours that cur does not show: the user
// removed or replaced it (or the read of cur missed it).
func (s State) MissesCustom(cur Current) bool { return s.CustomText != "" && !ownsCustom(s, cur) }

func ownsCustom(s State, cur Current) bool {
	return s.CustomText != "" && cur.Custom != nil && cur.Custom.Text == s.CustomText && cur.Custom.Emoji == s.CustomEmoji
}

// ViewMargin is added to the end of a period read from the availability view: the view stops at the
// asked window, so its end is often only the window's. A DND or custom status for it lasts that much
// longer (it is given back as soon as the view shows the user free) instead of being renewed every
// cycle.
const ViewMargin = time.Hour

// dndPeriod is what a DND at now is for: the period ev — or, where the user overrode the status of
// an item covering now (an out-of-office week they set back to online), only the items they have
// not, so a meeting inside that week brings DND back until the meeting's end, not the week's.
func dndPeriod(ev calendar.Event, covering []calendar.Event, ms marks, p Policy) calendar.Event {
	var last calendar.Event
	overridden := false
	for _, e := range covering {
		if !p.treat(e.Status).dnd {
			continue
		}
		if i := ms.find(markFor(e)); i >= 0 && ms[i].noStatus {
			overridden = true
			continue
		}
		if e.End.After(last.End) {
			last = e
		}
	}
	if !overridden || last.End.IsZero() || !last.End.Before(ev.End) {
		return ev
	}
	return last
}

// dndEnd is the end of the run of DND-worthy periods that starts with ev, so back-to-back meetings
// get one DND that Mattermost ends at the right time; on the whole minute, rounded up (Mattermost
// from about v10.6 would cut it down). last is the run's last period: its kind says how the end is
// renewed (endChanged).
func dndEnd(a calendar.Availability, ev calendar.Event, p Policy) (time.Time, calendar.Event) {
	last := ev
	for _, e := range a.Events {
		if e.Start.Equal(last.End) && p.treat(e.Status).dnd {
			last = e
		}
	}
	end := last.End
	if last.FromView {
		end = end.Add(ViewMargin)
	}
	return DNDEndFor(end), last
}

// endChanged reports whether a DND or custom status ending at have must be renewed to end at want,
// for the period ev: a view period's end only ever moves later with the window, so it is renewed
// once past; a call's (presence) moves with every read, so it is renewed once it would no longer
// reach PresenceMargin past the next cycle (see PresenceItem).
func endChanged(have, want time.Time, ev calendar.Event, now time.Time, p Policy) bool {
	switch {
	case ev.FromView:
		return have.Before(want.Add(-ViewMargin))
	case ev.FromPresence:
		return have.Before(want.Add(-p.cadence())) || !have.After(now)
	}
	// To the second, as calstatus sends a custom status's expiry (an item's end may carry less).
	return !have.Truncate(time.Second).Equal(want.Truncate(time.Second))
}

// dndEndChanged is endChanged for a DND end, compared as Mattermost keeps it.
func dndEndChanged(have, want time.Time, ev calendar.Event, now time.Time, p Policy) bool {
	if ev.FromView || ev.FromPresence {
		return endChanged(have, want, ev, now, p)
	}
	return !SameDNDEnd(have, want)
}

func sameCustom(have, want CustomStatus, ev calendar.Event, now time.Time, p Policy) bool {
	return have.Emoji == want.Emoji && have.Text == want.Text && !endChanged(have.ExpiresAt, want.ExpiresAt, ev, now, p)
}

func reason(ev calendar.Event, did, why []string) string {
	parts := append([]string{string(ev.Status)}, did...)
	return strings.Join(append(parts, why...), "; ")
}

// policy is the organisation's policy with the user's own choices and time zone.
func (s Settings) policy(p Policy) Policy {
	if s.Location != nil {
		p.Location = s.Location
	}
	if s.ShowSubject != nil {
		p.ShowSubject = *s.ShowSubject
	}
	if s.Notify != nil {
		p.Notify = *s.Notify
	}
	p.Only, p.CallsOff, p.RepliesOff = s.Only, s.CallsOff, s.RepliesOff
	return p
}

// Policy is the policy Decide applies for the user with these settings (what "/calstatus status"
// explains).
func (s Settings) Policy(p Policy) Policy { return s.policy(p) }

func (p Policy) loc() *time.Location {
	if p.Location == nil {
		return time.UTC
	}
	return p.Location
}

func day(t time.Time, p Policy) string   { return t.In(p.loc()).Format("Mon 2 Jan") }
func clock(t time.Time, p Policy) string { return t.In(p.loc()).Format("15:04 MST") }

// Transitions returns the times in (from, to] at which the decision for a user may change: the
// bounds of the items calstatus handles. The worker schedules a delayed run at each, so statuses
// change on time rather than at the next cycle.
func Transitions(a calendar.Availability, p Policy, from, to time.Time) []time.Time {
	var out []time.Time
	seen := map[time.Time]bool{}
	add := func(t time.Time) {
		if t.After(from) && !t.After(to) && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	for _, e := range a.Items {
		if p.Handled(e) && !e.FromPresence { // a call's bounds are only when it was read
			add(e.Start)
			add(e.End)
		}
	}
	sortTimes(out)
	return out
}
