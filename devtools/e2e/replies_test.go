package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/internal/store"
)

// repliesWorld is a world with Outlook's automatic replies synced (AUTOMATIC_REPLIES_SYNC) and
// Teams calls not (PRESENCE_SYNC off): the presence call is made for the replies alone.
func repliesWorld(t *testing.T, roles []string) *world {
	t.Helper()
	w := presenceWorld(t, roles)
	w.worker.Calls, w.worker.AutomaticReplies = false, true
	return w
}

// outlookHTML is an automatic reply as Outlook keeps it, and what Mattermost's auto-responder is to
// answer with.
const (
	outlookHTML = "<html>\r\n<head>\r\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\r\n" +
		"<style type=\"text/css\" style=\"display:none;\"> P {margin-top:0;margin-bottom:0;} </style>\r\n</head>\r\n" +
		"<body dir=\"ltr\">\r\n<div style=\"font-family: Calibri, Arial, sans-serif; font-size: 12pt;\">\r\nI&#39;m away until Monday.<br>\r\n</div>\r\n" +
		"<div>For anything urgent, ask Sam &amp; Alex.</div>\r\n</body>\r\n</html>\r\n"
	outlookText = "I'm away until Monday.\nFor anything urgent, ask Sam & Alex."
)

func replies(start, end time.Time, message string) graphsim.AutomaticReplies {
	return graphsim.AutomaticReplies{Start: start, End: end, Message: message}
}

// expectResponder checks a user's auto-responder as Mattermost keeps it (the notify props in the
// database): on with message, or off.
func (w *world) expectResponder(u *model.User, on bool, message string) {
	w.t.Helper()
	active, msg, err := w.db.AutoResponder(context.Background(), u.Id)
	if err != nil {
		w.t.Fatal(err)
	}
	if active != on || on && msg != message {
		w.t.Fatalf("%s at %s: auto-responder on %v %q, want on %v %q\n%s", u.Username, w.now().Format("15:04"), active, msg, on, message, w.logs.String())
	}
}

// notifyProps are a user's notify props but the auto-responder's.
func (w *world) notifyProps(u *model.User) model.StringMap {
	w.t.Helper()
	props, err := w.db.NotifyProps(context.Background(), u.Id)
	if err != nil {
		w.t.Fatal(err)
	}
	delete(props, model.AutoResponderActiveNotifyProp)
	delete(props, model.AutoResponderMessageNotifyProp)
	return props
}

// autoResponse sends u a direct message from a new person (Mattermost answers no bot, and each
// direct channel once a day) and waits for u's auto-responder to answer it: its text ("" if none
// came within a few seconds).
func (w *world) autoResponse(u *model.User) string {
	w.t.Helper()
	name := fmt.Sprintf("sender%d", time.Now().UnixNano())
	const password = "Sender-test-pw-1"
	sender, _, err := w.admin.CreateUser(&model.User{Username: name, Email: name + "@replies.example", Password: password})
	if err != nil {
		w.t.Fatal(err)
	}
	c := model.NewAPIv4Client(w.env.MattermostURL)
	if _, _, err := c.Login(sender.Username, password); err != nil {
		w.t.Fatal(err)
	}
	ch, _, err := c.CreateDirectChannel(sender.Id, u.Id)
	if err != nil {
		w.t.Fatal(err)
	}
	sent, _, err := c.CreatePost(&model.Post{ChannelId: ch.Id, Message: "are you there?"})
	if err != nil {
		w.t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		posts, _, err := c.GetPostsSince(ch.Id, sent.CreateAt, false)
		if err != nil {
			w.t.Fatal(err)
		}
		for _, p := range posts.Posts {
			if p.Type == model.PostTypeAutoResponder && p.UserId == u.Id {
				return p.Message
			}
		}
	}
	return ""
}

// TestAutomaticReplies runs Outlook's automatic replies against the real Mattermost server, every
// five minutes as the timer does, checking the status row, the custom status and the
// auto-responder each time.
func TestAutomaticReplies(t *testing.T) {
	day := simDay()
	nine, ten, eleven := day.Add(9*time.Hour), day.Add(10*time.Hour), day.Add(11*time.Hour)
	w := repliesWorld(t, presenceRoles)
	scenario, users := w.scenarios(t, 200, 220) // 220 on: TestAutomaticRepliesWithoutThePermission

	scenario("automatic replies on and off, with an HTML message: out of office, then exactly the status before", func(t *testing.T) {
		u := users(1)[0]
		w.setStatus(u, model.StatusAway) // by hand
		props := w.notifyProps(u)
		w.outlookReplies(u, replies(nine, ten, outlookHTML))
		w.runAt(nine.Add(time.Minute), u)
		w.expect(u, manualRow(model.StatusOutOfOffice), "")
		w.expectResponder(u, true, outlookText)
		if got := w.notifyProps(u); !maps.Equal(got, props) {
			t.Fatalf("notify props changed beside the auto-responder: %v, were %v", got, props)
		}
		if got := w.autoResponse(u); got != outlookText {
			t.Fatalf("a direct message was answered with %q, want %q", got, outlookText)
		}
		w.runAtWritingNothing(nine.Add(6*time.Minute), "while the automatic replies last", u)
		w.runAt(ten.Add(time.Minute), u)
		w.expect(u, manualRow(model.StatusAway), "")
		w.expectResponder(u, false, "")
		if got := w.notifyProps(u); !maps.Equal(got, props) {
			t.Fatalf("notify props changed beside the auto-responder: %v, were %v", got, props)
		}
		w.runAtWritingNothing(ten.Add(6*time.Minute), "once the automatic replies are given back", u)
	})

	scenario("automatic replies ending inside a meeting: no DND over them, the meeting's DND after", func(t *testing.T) {
		u := users(1)[0]
		w.calendar(u, event("busy", ten, eleven))
		w.outlookReplies(u, replies(nine, ten.Add(30*time.Minute), "Away this morning"))
		w.runAt(nine.Add(time.Minute), u)
		w.expect(u, manualRow(model.StatusOutOfOffice), "")
		w.runAt(ten.Add(time.Minute), u) // the meeting's custom status, the status theirs
		w.expect(u, manualRow(model.StatusOutOfOffice), "In a meeting")
		w.expectResponder(u, true, "Away this morning")
		w.runAt(ten.Add(31*time.Minute), u)
		w.expect(u, dndRow(model.StatusOnline, eleven), "In a meeting")
		w.expectResponder(u, false, "")
		w.runAt(eleven.Add(time.Minute), u)
		w.expect(u, autoRow(model.StatusOnline), "")
	})

	scenario("a user whose own Mattermost auto-responder is on is left alone", func(t *testing.T) {
		u := users(1)[0]
		if err := w.db.SetAutoResponder(context.Background(), w.admin, u.Id, true, "On leave, back in May"); err != nil {
			t.Fatal(err)
		}
		w.outlookReplies(u, replies(nine, ten, outlookHTML))
		w.runAtWritingNothing(nine.Add(time.Minute), "for a user on their own auto-responder", u)
		w.runAtWritingNothing(ten.Add(time.Minute), "when Outlook's end", u)
		w.expect(u, manualRow(model.StatusOutOfOffice), "")
		w.expectResponder(u, true, "On leave, back in May")
	})

	scenario("a user who turns ours off is not given them again while Outlook's last", func(t *testing.T) {
		u := users(1)[0]
		w.outlookReplies(u, replies(nine, eleven, "Out today"))
		w.runAt(nine.Add(time.Minute), u)
		w.expectResponder(u, true, "Out today")
		w.setStatus(u, model.StatusOnline) // turns the auto-responder off
		w.expectResponder(u, false, "")
		for _, at := range []time.Duration{6, 11, 120} {
			w.runAtWritingNothing(nine.Add(at*time.Minute), "after the user turned them off", u)
		}
		w.expect(u, autoRow(model.StatusOnline), "")
	})

	scenario("a user who edits ours in Mattermost keeps them when Outlook's end", func(t *testing.T) {
		u := users(1)[0]
		w.outlookReplies(u, replies(nine, ten, "Out today"))
		w.runAt(nine.Add(time.Minute), u)
		if err := w.db.SetAutoResponder(context.Background(), w.admin, u.Id, true, "Out today; call 555"); err != nil {
			t.Fatal(err)
		}
		w.runAt(ten.Add(time.Minute), u) // checks them (an empty patch), finds them the user's
		w.expect(u, manualRow(model.StatusOutOfOffice), "")
		w.expectResponder(u, true, "Out today; call 555")
		w.runAtWritingNothing(ten.Add(6*time.Minute), "once they are the user's", u)
	})

	scenario("a user who turned automatic replies off in /calstatus settings", func(t *testing.T) {
		u := users(1)[0]
		if err := w.store.SaveSettings(context.Background(), u.Id, store.UserSettings{RepliesOff: true}); err != nil {
			t.Fatal(err)
		}
		w.outlookReplies(u, replies(nine, ten, "Out today"))
		w.runAtWritingNothing(nine.Add(time.Minute), "for a user who turned automatic replies off", u)
		w.expect(u, autoRow(model.StatusOnline), "")
		w.expectResponder(u, false, "")
	})

	scenario("a shard delivered twice at once turns them on once and gives them back once", func(t *testing.T) {
		us := users(4)
		for _, u := range us {
			w.outlookReplies(u, replies(nine, ten, "Out today"))
		}
		// Two copies of one message at once (the second may find the users claimed, or conflict and
		// be left to the queue's retry), then the retry.
		twice := func(at time.Time) int64 {
			w.at(at)
			writes := w.mm.Writes.Load()
			msg := w.message(us...)
			var wg sync.WaitGroup
			for range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, _ = w.worker.Process(context.Background(), slog.New(slog.DiscardHandler), msg, 1)
				}()
			}
			wg.Wait()
			if _, err := w.worker.Process(context.Background(), slog.New(slog.DiscardHandler), msg, 2); err != nil {
				t.Fatalf("the retry: %v", err)
			}
			return w.mm.Writes.Load() - writes
		}
		if n := twice(nine.Add(time.Minute)); n != int64(2*len(us)) { // each: the read (an empty patch), the patch
			t.Fatalf("%d Mattermost writes turning them on: want %d", n, 2*len(us))
		}
		for _, u := range us {
			w.expect(u, manualRow(model.StatusOutOfOffice), "")
			w.expectResponder(u, true, "Out today")
		}
		if n := twice(ten.Add(time.Minute)); n != int64(2*len(us)) { // each: the read, the status
			t.Fatalf("%d Mattermost writes giving them back: want %d", n, 2*len(us))
		}
		for _, u := range us {
			w.expect(u, autoRow(model.StatusOnline), "")
			w.expectResponder(u, false, "")
		}
	})

	scenario("a call is not synced with only automatic replies on", func(t *testing.T) {
		u := users(1)[0]
		w.inTeams(u, call("InACall", nine, ten))
		w.runAtWritingNothing(nine.Add(time.Minute), "for a call with PRESENCE_SYNC off", u)
		w.expect(u, autoRow(model.StatusOnline), "")
	})
}

// Without the presence permission, automatic replies are not read: nothing is changed for them and
// the shard's report says what is missing.
func TestAutomaticRepliesWithoutThePermission(t *testing.T) {
	day := simDay()
	nine, ten := day.Add(9*time.Hour), day.Add(10*time.Hour)
	w := repliesWorld(t, []string{"Calendars.ReadBasic.All"})
	us := w.seeded(220, 2)
	w.calendar(us[0], event("busy", nine, ten))
	w.outlookReplies(us[1], replies(nine, ten, "Out today"))
	rep := w.runAt(nine.Add(time.Minute), us...)
	w.expect(us[0], dndRow(model.StatusOnline, ten), "In a meeting")
	w.expect(us[1], autoRow(model.StatusOnline), "")
	w.expectResponder(us[1], false, "")
	if rep.PresenceFailures["forbidden"] != 2 || rep.Failed != 0 {
		t.Fatalf("report %+v: want both users' presence forbidden, no user failed", rep)
	}
}
