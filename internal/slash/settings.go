package slash

import (
	"context"
	"errors"
	"strings"

	"github.com/calstatus/calstatus/internal/engine"
	"github.com/calstatus/calstatus/internal/store"
)

// settingsUsage is the grammar of "/calstatus settings …" (see settingsGrammar).
const settingsUsage = "`settings only dnd|custom|both`, `settings subject on|off|default`, `settings notify on|off|default`, " +
	"`settings calls on|off`, `settings reset` (all of them back to the defaults)"

// repliesUsage is offered before "`settings reset`" where AUTOMATIC_REPLIES_SYNC is on.
const repliesUsage = "`settings replies on|off`, "

// settingsGrammar is settingsUsage, with "settings replies" where the organisation turned
// automatic replies on (without it, exactly settingsUsage).
func settingsGrammar(replies bool) string {
	if !replies {
		return settingsUsage
	}
	return strings.Replace(settingsUsage, "`settings reset`", repliesUsage+"`settings reset`", 1)
}

// ChangeSettings applies what the user typed after "/calstatus settings" to u:
//
//	only dnd | only custom | only both   what calstatus sets: only Do Not Disturb, only the custom status, or both
//	subject on | off | default           the meeting's subject in the custom status (never a private meeting's)
//	notify on | off | default            a direct message when calstatus changes the status
//	calls on | off                       Do Not Disturb during Teams calls and presentations (PRESENCE_SYNC)
//	replies on | off                     Outlook's automatic replies as Mattermost's (AUTOMATIC_REPLIES_SYNC)
//	reset                                the five above back to the organisation's defaults
//
// "default" is the organisation's SHOW_SUBJECT or NOTIFY_USERS. Off, on and pause are left as they
// are. It returns the new settings and, in words, what changes; an error (and u) for anything else.
func ChangeSettings(u store.UserSettings, args []string) (store.UserSettings, string, error) {
	const from = "From " + nextRun + ", "
	words := make([]string, len(args))
	for i, a := range args {
		words[i] = strings.ToLower(a)
	}
	onOff := func() (*bool, error) {
		if len(words) != 2 {
			return nil, errors.New("say " + words[0] + " on, off or default")
		}
		switch words[1] {
		case "on":
			v := true
			return &v, nil
		case "off":
			v := false
			return &v, nil
		case "default":
			return nil, nil
		}
		return nil, errors.New("say " + words[0] + " on, off or default")
	}
	switch {
	case len(words) == 1 && words[0] == "reset":
		u.Only, u.ShowSubject, u.Notify, u.CallsOff, u.RepliesOff = "", nil, nil, false, false
		return u, from + "calstatus sets Do Not Disturb and a custom status for your meetings, and shows meeting subjects and sends direct messages as your organisation chose.", nil
	case len(words) > 0 && words[0] == "only":
		if len(words) != 2 {
			return u, "", errors.New("say only dnd, only custom or only both")
		}
		switch words[1] {
		case "dnd":
			u.Only = engine.OnlyDND
			return u, from + "calstatus sets only Do Not Disturb for your meetings, no custom status; a custom status it has set is cleared then.", nil
		case "custom":
			u.Only = engine.OnlyCustom
			return u, from + "calstatus sets only the custom status for your meetings and never your status; if it has set Do Not Disturb, " +
				"you get your previous status back then.", nil
		case "both", "default":
			u.Only = ""
			return u, from + "calstatus sets both Do Not Disturb and a custom status for your meetings.", nil
		}
		return u, "", errors.New("say only dnd, only custom or only both")
	case len(words) > 0 && words[0] == "subject":
		v, err := onOff()
		if err != nil {
			return u, "", err
		}
		u.ShowSubject = v
		switch {
		case v == nil:
			return u, from + "whether your custom status shows the meeting's subject follows your organisation's choice.", nil
		case *v:
			return u, from + "the custom status calstatus sets shows the meeting's subject (never a private meeting's).", nil
		}
		return u, from + "the custom status calstatus sets never shows the meeting's subject.", nil
	case len(words) > 0 && words[0] == "notify":
		v, err := onOff()
		if err != nil {
			return u, "", err
		}
		u.Notify = v
		switch {
		case v == nil:
			return u, from + "whether calstatus sends you a direct message when it changes your status follows your organisation's choice.", nil
		case *v:
			return u, from + "calstatus sends you a direct message when it sets your status or custom status from your calendar.", nil
		}
		return u, from + "calstatus sends you no direct messages about your status.", nil
	case len(words) > 0 && words[0] == "calls":
		if len(words) != 2 || words[1] != "on" && words[1] != "off" && words[1] != "default" {
			return u, "", errors.New("say calls on or calls off")
		}
		u.CallsOff = words[1] == "off"
		if u.CallsOff {
			return u, from + "calstatus leaves your status alone during Teams calls and presentations; if it has set Do Not Disturb for one, " +
				"you get your previous status back then.", nil
		}
		return u, from + "calstatus sets Do Not Disturb during your Teams calls and presentations, as for a meeting (where your organisation has turned this on).", nil
	case len(words) > 0 && words[0] == "replies":
		if len(words) != 2 || words[1] != "on" && words[1] != "off" && words[1] != "default" {
			return u, "", errors.New("say replies on or replies off")
		}
		u.RepliesOff = words[1] == "off"
		if u.RepliesOff {
			return u, from + "calstatus leaves Mattermost's automatic replies to you; if it has turned them on from Outlook's, " +
				"it turns them off and you get your previous status back then.", nil
		}
		return u, from + "while your Outlook automatic replies are on, Mattermost answers your direct messages with them and shows you Out of office " +
			"(where your organisation has turned this on).", nil
	}
	return u, "", errors.New("not a setting")
}

// settings shows the user's settings, or changes one.
func (c *call) settings(ctx context.Context, args []string) string {
	u, err := c.h.Store.LoadSettings(ctx, c.userID)
	if err != nil {
		return c.failed("read your settings", err)
	}
	if len(args) == 0 {
		return c.describe(ctx, u)
	}
	next, said, err := ChangeSettings(u, args)
	if err != nil {
		return "calstatus cannot change " + Code(strings.Join(args, " ")) + ": " + err.Error() + ". Nothing changed. Try " + c.settingsUsage() + "."
	}
	if err := c.h.Store.SaveSettings(ctx, c.userID, next); err != nil {
		return c.failed("save your setting", err)
	}
	if next.Engine().Off(c.now) {
		said += " (calstatus is off or paused for you now: this applies once it is on again.)"
	}
	return "Done. " + said + "\n\n" + c.describe(ctx, next)
}

// describe lists the user's settings, saying which are the organisation's defaults.
func (c *call) describe(ctx context.Context, u store.UserSettings) string {
	e := u.Engine()
	p := e.Policy(c.h.Policy)
	var b strings.Builder
	b.WriteString("Your calstatus settings:\n")
	switch {
	case e.Disabled:
		b.WriteString("* calstatus is **off** for you: it does not change your status. " + c.cmd("on") + " turns it on.\n")
	case e.Paused(c.now):
		b.WriteString("* calstatus is **paused** for you until " + engine.When(e.PausedUntil, c.now, c.location(ctx)) + ". " + c.cmd("on") + " ends the pause.\n")
	default:
		b.WriteString("* calstatus is **on** for you.\n")
	}
	switch e.Only {
	case engine.OnlyDND:
		b.WriteString("* It sets **only Do Not Disturb** for your meetings, no custom status (your choice).\n")
	case engine.OnlyCustom:
		b.WriteString("* It sets **only the custom status** for your meetings, never your status (your choice).\n")
	default:
		b.WriteString("* It sets **Do Not Disturb and a custom status** for your meetings (the default).\n")
	}
	whose := func(v *bool) string {
		if v == nil {
			return "your organisation's default"
		}
		return "your choice"
	}
	subject := "**not shown**"
	if p.ShowSubject {
		subject = "**shown**, never a private meeting's"
	}
	b.WriteString("* The meeting's subject in the custom status: " + subject + " (" + whose(e.ShowSubject) + ").\n")
	notify := "**no**"
	if p.Notify {
		notify = "**yes**"
	}
	b.WriteString("* A direct message when calstatus changes your status: " + notify + " (" + whose(e.Notify) + ").\n")
	switch {
	case !c.h.Presence && e.CallsOff:
		b.WriteString("* Teams calls and presentations: **left alone** (your choice; your organisation has not turned them on).\n")
	case !c.h.Presence:
	case e.CallsOff:
		b.WriteString("* Teams calls and presentations: **left alone** (your choice).\n")
	default:
		b.WriteString("* Teams calls and presentations: **Do Not Disturb**, as for a meeting (the default).\n")
	}
	switch {
	case !c.h.AutomaticReplies && e.RepliesOff:
		b.WriteString("* Automatic replies: **off** — calstatus leaves Mattermost's automatic replies to you (your choice; your organisation has not turned them on).\n")
	case !c.h.AutomaticReplies:
	case e.RepliesOff:
		b.WriteString("* Automatic replies: **off** — calstatus leaves Mattermost's automatic replies to you (your choice).\n")
	default:
		b.WriteString("* Automatic replies: **on** — while Outlook's automatic replies are on, Mattermost answers your direct messages with them " +
			"and shows you Out of office (the default).\n")
	}
	b.WriteString("\nChange them with " + c.settingsUsage() + ".")
	return b.String()
}

// settingsUsage is settingsGrammar with the command as typed.
func (c *call) settingsUsage() string {
	return strings.ReplaceAll(settingsGrammar(c.h.AutomaticReplies), "`settings ", "`"+c.trigger+" settings ")
}

// ownChoices says, for "status", the user's settings that differ from the defaults ("" when none).
func (c *call) ownChoices(s engine.Settings) string {
	p := s.Policy(c.h.Policy)
	var parts []string
	switch s.Only {
	case engine.OnlyDND:
		parts = append(parts, "only Do Not Disturb, no custom status")
	case engine.OnlyCustom:
		parts = append(parts, "only the custom status, never your status")
	}
	if s.ShowSubject != nil {
		if p.ShowSubject {
			parts = append(parts, "meeting subjects shown (never a private meeting's)")
		} else {
			parts = append(parts, "meeting subjects not shown")
		}
	}
	if s.Notify != nil {
		if p.Notify {
			parts = append(parts, "a direct message when it changes your status")
		} else {
			parts = append(parts, "no direct messages")
		}
	}
	if s.CallsOff && c.h.Presence {
		parts = append(parts, "Teams calls left alone")
	}
	if s.RepliesOff && c.h.AutomaticReplies {
		parts = append(parts, "automatic replies left to you")
	}
	if len(parts) == 0 {
		return ""
	}
	return "Your settings: " + strings.Join(parts, "; ") + " (" + c.cmd("settings") + ")."
}
