package engine

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/calstatus/calstatus/internal/calendar"
)

// Explain says in one plain-English paragraph, for the user themselves (the slash command's
// "status"), what their calendar shows now, what calstatus holds and does for them, and why, with
// times in their own time zone. It is an account of Decide's decision for in — what the next run
// does — not a second set of rules. Subjects and custom status texts are put in curly quotes; see
// ExplainQuoted to quote them otherwise (e.g. for markdown).
func Explain(in Input) string {
	return ExplainQuoted(in, func(s string) string { return "“" + s + "”" })
}

// ExplainQuoted is Explain with the values the user or their calendar controls (meeting subjects,
// custom status texts) passed through quote; everything else is calstatus's own text.
func ExplainQuoted(in Input, quote func(string) string) string {
	now, p := in.Now, in.Settings.policy(in.Policy)
	loc := p.loc()
	d := Decide(in)
	cur := in.Current
	if cur.Custom != nil && !cur.Custom.ExpiresAt.IsZero() && !cur.Custom.ExpiresAt.After(now) && !ownsCustom(in.State, cur) {
		cur.Custom = nil // as Decide sees it
	}
	held := statusHold(in.State, cur, now, p.Server)
	e := explainer{now: now, loc: loc, quote: quote, expiry: p.Server.Expiry()}

	switch {
	case in.Settings.Disabled:
		e.say("calstatus is off for you")
	case in.Settings.Paused(now):
		e.say("calstatus is paused for you until " + e.when(in.Settings.PausedUntil))
	}
	e.calendar(in.Availability, p)

	next := d.NewState
	off := in.Settings.Off(now)
	// What the next run does (acts), what calstatus holds and keeps (holds), how the status under
	// its DND comes back (after, said with the DND), and what is the user's (notes).
	var acts, holds, notes, customNotes []string
	after, afterActs := "", false
	var dndUntil time.Time // said with the DND: not repeated for the custom status
	switch s := d.SetStatus; {
	case s != nil && s.Status == DND && s.DNDEndTime.After(now):
		if held == holdDND || held == holdPinned {
			acts = append(acts, "extends its Do Not Disturb to "+e.when(s.DNDEndTime))
		} else {
			acts = append(acts, "sets Do Not Disturb until "+e.when(s.DNDEndTime))
		}
		dndUntil = s.DNDEndTime
		after, afterActs = e.giveBack(next.PrevStatus, next.PrevManual), true
	case s != nil && s.Status == DND: // shortened to now, through the automatic status to give back
		acts = append(acts, "ends its Do Not Disturb")
		after, afterActs = "Mattermost then sets you back to "+e.name(s.Via)+" "+e.within(), true
	case s != nil:
		acts = append(acts, "sets you back to "+e.name(s.Status))
	case d.Replies != nil && d.Replies.On && d.Replies.Expect == "":
		acts = append(acts, "turns on your automatic replies here, with the text of Outlook's (status Out of Office)")
		after = e.giveBack(next.PrevStatus, next.PrevManual) + " (when they end in Outlook)"
		afterActs = true
	case next.SetStatus == OutOfOffice:
		holds = append(holds, "your automatic replies here from Outlook's (status Out of Office) until they end in Outlook")
		after = e.giveBack(next.PrevStatus, next.PrevManual)
	case next.SetStatus == DND && next.DNDEnd.After(now):
		holds = append(holds, "Do Not Disturb until "+e.when(next.DNDEnd))
		dndUntil = next.DNDEnd
		after = e.giveBack(next.PrevStatus, next.PrevManual)
	case next.SetStatus == DND:
		notes = append(notes, "calstatus's Do Not Disturb ended at "+e.when(next.DNDEnd)+"; Mattermost sets you back to "+
			e.name(next.PrevStatus)+" "+e.within())
	case off:
	case overridden(next, in.Availability, now, p, true):
		switch cur.Status {
		case OutOfOffice:
			notes = append(notes, "your automatic replies are on (status Out of Office), so calstatus leaves your status alone")
		case DND:
			notes = append(notes, "you are in Do Not Disturb on your own, so calstatus leaves your status alone")
		default:
			notes = append(notes, "you changed your status during this event, so calstatus leaves it alone ("+e.name(cur.Status)+")")
		}
	}
	switch {
	case d.SetCustom != nil:
		acts = append(acts, "sets your custom status to "+e.custom(*d.SetCustom, dndUntil))
	case d.ClearCustom:
		acts = append(acts, "clears its custom status")
	case next.CustomText != "":
		holds = append(holds, "the custom status "+e.custom(CustomStatus{Emoji: next.CustomEmoji, Text: next.CustomText, ExpiresAt: next.CustomUntil}, dndUntil))
	case off:
	case overridden(next, in.Availability, now, p, false) && cur.Custom != nil:
		customNotes = append(customNotes, "your own custom status "+e.quote(cur.Custom.Text)+" stays")
	case overridden(next, in.Availability, now, p, false):
		customNotes = append(customNotes, "you removed its custom status, so it stays off for this event")
	}
	for _, n := range notes {
		e.say(n)
	}
	if len(acts) > 0 {
		s := "at its next run calstatus " + strings.Join(acts, " and ")
		if afterActs {
			s += "; " + after
		}
		e.say(s)
	}
	if len(holds) > 0 {
		s := "calstatus set " + strings.Join(holds, " and ")
		if after != "" && !afterActs {
			s += "; " + after
		}
		e.say(s)
	}
	for _, n := range customNotes {
		e.say(n)
	}
	notes = append(notes, customNotes...)
	switch {
	case off && len(acts)+len(holds) > 0 && in.Settings.Disabled:
		e.say("Then it leaves you alone until you turn it on again")
	case off && len(acts)+len(holds) > 0:
		e.say("Then it leaves you alone until the pause ends")
	case off:
		e.say("It leaves your status and custom status alone")
	case len(acts)+len(holds)+len(notes) == 0:
		e.say("calstatus holds nothing: your status (" + e.name(cur.Status) + ") is yours")
	}
	return strings.Join(e.out, " ")
}

// overridden reports whether an item covering now that asks for a status (or a custom status) is
// marked as the user's: they changed it, or had decided it for themselves.
func overridden(s State, a calendar.Availability, now time.Time, p Policy, status bool) bool {
	ms := parseMarks(s.Handled)
	for _, e := range a.ItemsAt(now) {
		t := p.treat(e.Status)
		if (status && !t.dnd) || (!status && !t.custom) {
			continue
		}
		if i := ms.find(markFor(e)); i >= 0 && ((status && ms[i].noStatus) || (!status && ms[i].noCustom)) {
			return true
		}
	}
	return false
}

type explainer struct {
	now    time.Time
	loc    *time.Location
	quote  func(string) string
	expiry time.Duration // how often Mattermost's DND expiry job runs
	out    []string
}

// say adds a sentence.
func (e *explainer) say(s string) {
	if s == "" {
		return
	}
	if !strings.HasPrefix(s, "calstatus") { // the name stays lower case
		r, n := utf8.DecodeRuneInString(s)
		s = string(unicode.ToUpper(r)) + s[n:]
	}
	e.out = append(e.out, s+".")
}

func (e *explainer) when(t time.Time) string { return When(t, e.now, e.loc) }

// When is a time as a user in loc reads it at now: "11:30 CET" today, "Tue 09:00 CET" within the
// next six days, "Mon 7 Dec 09:00 CET" otherwise.
func When(t, now time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	t, now = t.In(loc), now.In(loc)
	y1, m1, d1 := t.Date()
	y0, m0, d0 := now.Date()
	days := time.Date(y1, m1, d1, 0, 0, 0, 0, time.UTC).Sub(time.Date(y0, m0, d0, 0, 0, 0, 0, time.UTC)) / (24 * time.Hour)
	switch {
	case days == 0:
		return t.Format("15:04 MST")
	case days > 0 && days < 7:
		return t.Format("Mon 15:04 MST")
	}
	return t.Format("Mon 2 Jan 15:04 MST")
}

// what is a calendar status in words.
func what(s calendar.Status) string {
	switch s {
	case calendar.Busy:
		return "a meeting (busy)"
	case calendar.Tentative:
		return "a tentative meeting"
	case calendar.OutOfOffice:
		return "out of office"
	case calendar.WorkingElsewhere:
		return "working elsewhere"
	case calendar.Call:
		return "a Teams call"
	}
	return string(s)
}

// name is a Mattermost status as the user sees it.
func (e *explainer) name(status string) string {
	switch status {
	case Online:
		return "Online"
	case Away:
		return "Away"
	case Offline:
		return "Offline"
	case DND:
		return "Do Not Disturb"
	case OutOfOffice:
		return "Out of Office"
	case "":
		return "no status"
	}
	return e.quote(status)
}

// giveBack says how the status under calstatus's DND comes back.
func (e *explainer) giveBack(prev string, manual bool) string {
	if prev == Online || manual {
		return "you'll be set back to " + e.name(prev) + " then"
	}
	return "Mattermost then sets you back to " + e.name(prev) + " (" + e.upTo() + ")"
}

// within and upTo say how soon Mattermost's expiry job, run every e.expiry, acts.
func (e *explainer) within() string { return "within " + e.expiryWords() }
func (e *explainer) upTo() string   { return "up to " + e.expiryWords() + " later" }

func (e *explainer) expiryWords() string {
	if e.expiry <= time.Minute {
		return "a minute"
	}
	return minutes(e.expiry)
}

func minutes(d time.Duration) string {
	words := []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"}
	if n := int(d / time.Minute); n < len(words) {
		return words[n] + " minutes"
	}
	return d.Round(time.Minute).String()
}

func (e *explainer) custom(cs CustomStatus, dndUntil time.Time) string {
	s := ":" + cs.Emoji + ": " + e.quote(cs.Text)
	if !cs.ExpiresAt.IsZero() && !cs.ExpiresAt.Equal(dndUntil) {
		s += " until " + e.when(cs.ExpiresAt)
	}
	return s
}

// calendar says what the calendar shows now (and, when free, what comes next in the window read).
func (e *explainer) calendar(a calendar.Availability, p Policy) {
	ev := a.At(e.now)
	until := func() string {
		if ev.FromView {
			return " until at least " + e.when(ev.End)
		}
		return " until " + e.when(ev.End)
	}
	// The subject only where SHOW_SUBJECT shows it, in the custom status: what calstatus says about
	// someone's calendar tells no more than their status does.
	subject := ""
	if p.ShowSubject && ev.Subject != "" && !ev.Private {
		subject = ": " + e.quote(ev.Subject)
	}
	var s string
	switch ev.Status {
	case calendar.Busy:
		s = "your calendar shows you in a meeting (busy)" + until() + subject
	case calendar.Tentative:
		s = "your calendar shows you in a tentative meeting" + until() + subject
		if !p.TentativeAsBusy {
			s += "; calstatus leaves tentative meetings alone here"
		}
	case calendar.OutOfOffice:
		if ev.End.Sub(ev.Start) >= 24*time.Hour && !ev.FromView {
			s = "your calendar shows you out of office until " + day(ev.End, p)
		} else {
			s = "your calendar shows you out of office" + until()
		}
	case calendar.WorkingElsewhere:
		s = "your calendar shows you working elsewhere" + until() + "; calstatus does not change your status for that"
	case calendar.Call:
		s = "Teams shows you in a call"
		if ev.Subject == Presenting {
			s = "Teams shows you presenting"
		}
		if p.CallsOff {
			s += "; you turned calls off in calstatus"
		}
	default:
		s = "your calendar shows you free now"
		for _, n := range a.Events {
			if n.Start.After(e.now) && p.Handled(n) {
				s += "; next: " + what(n.Status) + " from " + e.when(n.Start)
				break
			}
		}
	}
	e.say(s)
}
