package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// Outlook's automatic replies (AUTOMATIC_REPLIES_SYNC) become Mattermost's own out of office: its
// auto-responder, kept in the user's notify props, answering direct messages with the text the user
// wrote in Outlook. How Mattermost keeps it shapes the rules (v6.7.2 and upstream alike):
//   - turning auto_responder_active on (a patch of the notify props) sets the status ooo, by hand,
//     leaving the rest of the status row as it was; turning it off sets online;
//   - setting any other status through the API turns it off first (api4/status.go), and ooo cannot
//     be set through it; Mattermost's DND expiry only touches dnd rows.
// So calstatus turns it on by a patch, and off by giving the status back: the status write turns
// the auto-responder off and sets what the user had in one go. A user already on ooo or in their
// own DND is left alone, and one whose auto-responder is no longer the one calstatus set (they
// turned it off, changed their status or its text) has it as theirs.

// Replies is what Outlook shows of a user's automatic replies this cycle.
type Replies struct {
	// Known is false when they could not be read (Teams presence unread): what is held stays as is.
	Known bool
	// Text is the plain-text automatic reply while they are on, "" while off.
	Text string
}

// MaxReplyRunes is the longest automatic reply calstatus sets: what Mattermost's own settings let a
// user type (its webapp's limit); a longer one is cut, ending with "…".
const MaxReplyRunes = 200

// ReplyFor is the auto-responder message for an automatic reply's plain text: trimmed, capped.
func ReplyFor(text string) string {
	text = strings.TrimSpace(text)
	if r := []rune(text); len(r) > MaxReplyRunes {
		text = strings.TrimSpace(string(r[:MaxReplyRunes-1])) + "…"
	}
	return text
}

// RepliesHash identifies an auto-responder message without keeping its text in storage.
func RepliesHash(message string) string {
	sum := sha256.Sum256([]byte(message))
	return hex.EncodeToString(sum[:16])
}

// RepliesUpdate is a change to a user's Mattermost auto-responder. It is made only if the one
// Mattermost shows is the one calstatus expects (Ours); otherwise it is the user's (Theirs).
type RepliesUpdate struct {
	// On: turn it on with Message (or change the message of ours). Off, the status write of the
	// same decision turns it off: this update is only the check that it is still ours.
	On      bool
	Message string
	// Expect is the RepliesHash of the message of ours Mattermost should show; "" when turning on.
	Expect string
}

// Ours reports whether Mattermost's auto-responder (active, message) may be changed by u: when
// turning on, none is on (or ours already, a first attempt landed); otherwise ours is on.
func (u RepliesUpdate) Ours(active bool, message string) bool {
	mine := u.On && u.Message != "" && message == u.Message
	if u.Expect == "" {
		return !active || mine
	}
	return active && (RepliesHash(message) == u.Expect || mine)
}

// Theirs is the state once Mattermost shows an auto-responder calstatus was to change as no longer
// its own: the user's, with the status it gave them; nothing of it held, and not set again while
// Outlook's last.
func Theirs(s State, now time.Time) State {
	if s.SetStatus == OutOfOffice {
		s.PrevStatus, s.PrevManual, s.SetStatus, s.DNDEnd = "", false, "", time.Time{}
	}
	s.Replies, s.RepliesDone = "", true
	s.RepliesKept = repliesKept(s.RepliesKept, now)
	s.Until = s.latest()
	return s
}

// RepliesKeep is how long the state of a user on automatic replies is kept without a write: they
// have no end, so it is renewed (one write) once less than a day of it is left.
const RepliesKeep = 7 * 24 * time.Hour

// repliesKept is when the state holding automatic replies (or the decision for them) is kept until.
func repliesKept(old time.Time, now time.Time) time.Time {
	if old.After(now.Add(24 * time.Hour)) {
		return old
	}
	return now.Add(RepliesKeep).Truncate(time.Second)
}

// repliesDecision is what the automatic replies decide: a change to the auto-responder, a status
// write that goes with it (giving the status back turns ours off), and whether the status is theirs
// to decide this time (the rest of Decide leaves it alone).
type repliesDecision struct {
	update   *RepliesUpdate
	status   *StatusUpdate
	decided  bool // the status is decided here
	turnedOn bool
	why      string
	next     State
}

// givenBackFromReplies is the status given back when automatic replies of ours end, for the status
// kept as the one to give back: online if none could be (Mattermost sets online when an
// auto-responder is turned off).
func givenBackFromReplies(prev string) string {
	if prev == "" || prev == DND || prev == OutOfOffice {
		return Online
	}
	return prev
}

// replies decides the automatic replies for a user whose status calstatus holds as held (after what
// Mattermost's expiry did), given Outlook's replies r. wantDND and end are what the calendar asks
// for now (a DND once the replies end). Turning them on replaces any status write already decided
// (giving back what Mattermost's expiry did not): what to give back is kept.
func replies(r Replies, st State, cur Current, held hold, off bool, p Policy, wantDND bool, end time.Time, now time.Time) repliesDecision {
	out := repliesDecision{next: st}
	if r.Known && r.Text == "" {
		out.next.RepliesDone = false // Outlook's ended: the next ones are decided afresh
	}
	mayHold := !off && !p.RepliesOff && p.Only != OnlyCustom
	want := mayHold && r.Known && r.Text != ""
	msg := ReplyFor(r.Text)
	switch {
	case held == holdReplies && mayHold && !r.Known:
		out.decided = true // unread: ours stay as they are
	case held == holdReplies && want:
		out.decided = true
		if h := RepliesHash(msg); h != st.Replies {
			out.update = &RepliesUpdate{On: true, Message: msg, Expect: st.Replies}
			out.next.Replies = h
			out.why = "automatic replies changed in Outlook"
		}
	case held == holdReplies:
		// Over (in Outlook, or for a user who turned them or calstatus off): the status given back
		// turns ours off — into the calendar's DND if it asks for one now.
		out.decided = true
		out.update = &RepliesUpdate{Expect: st.Replies}
		n := out.next
		n.Replies, n.SetStatus, n.DNDEnd = "", "", time.Time{}
		prev := givenBackFromReplies(n.PrevStatus)
		switch {
		case wantDND:
			out.status = &StatusUpdate{Via: prev, Status: DND, DNDEndTime: end}
			n.PrevStatus, n.SetStatus, n.DNDEnd = prev, DND, end
		case prev == Online || n.PrevManual:
			out.status = &StatusUpdate{Status: prev}
			n.PrevStatus, n.PrevManual = "", false
		default:
			// An automatic away or offline: set on the way and left to Mattermost's DND expiry to
			// give back as automatic, as when a DND of ours is cut short (giveBack).
			past := now.Truncate(DNDMinute)
			out.status = &StatusUpdate{Via: prev, Status: DND, DNDEndTime: past}
			n.PrevStatus, n.SetStatus, n.DNDEnd = prev, DND, past
		}
		out.next = n
		out.why = "automatic replies given back"
	case want && !st.RepliesDone:
		out.next.RepliesDone = true
		if cur.Status == OutOfOffice || cur.Status == DND && held != holdDND {
			out.why = "automatic replies left alone: " + cur.Status + " already"
			break
		}
		out.decided, out.turnedOn = true, true
		out.update = &RepliesUpdate{On: true, Message: msg}
		n := out.next
		if n.PrevStatus == "" { // nothing of ours held: what the user has now is what to give back
			n.PrevStatus, n.PrevManual = cur.Status, cur.Manual && cur.Status != Online
		}
		n.SetStatus, n.DNDEnd, n.Replies = OutOfOffice, time.Time{}, RepliesHash(msg)
		out.next = n
	}
	if out.next.Replies != "" || out.next.RepliesDone {
		out.next.RepliesKept = repliesKept(st.RepliesKept, now)
	} else {
		out.next.RepliesKept = time.Time{}
	}
	return out
}
