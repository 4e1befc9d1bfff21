package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/calstatus/calstatus/internal/engine"
	"github.com/calstatus/calstatus/internal/shard"
)

// The status rules, one scenario each, against the real Mattermost server. Users 0–59 of the seeded
// set are used here (other tests take other ranges).

func (w *world) expect(u *model.User, status, customPrefix string) {
	w.t.Helper()
	got := w.state(u)
	if got.Status != status || !strings.HasPrefix(got.customText(), customPrefix) || (customPrefix == "" && got.Custom != nil) {
		w.t.Fatalf("%s at %s: status %q custom %q; want %q and custom %q…\n%s", u.Username, w.now().Format("15:04"),
			got.Status, got.customText(), status, customPrefix, w.logs.String())
	}
}

func TestScenarios(t *testing.T) {
	day := simDay()
	nine, ten, eleven := day.Add(9*time.Hour), day.Add(10*time.Hour), day.Add(11*time.Hour)
	w := newWorld(t, engine.DefaultPolicy)
	next := 0
	users := func(n int) []*model.User { u := w.seeded(next, n); next += n; return u }

	t.Run("busy: DND and 'In a meeting' until the end, then the previous status back", func(t *testing.T) {
		u := users(1)[0]
		w.setStatus(u, model.StatusAway)
		w.calendar(u, event("busy", nine, ten))
		w.runAt(nine.Add(time.Minute), u)
		w.expect(u, model.StatusDnd, "In a meeting")
		cs := w.state(u).Custom
		st, _, _ := w.admin.GetUserStatus(u.Id, "")
		if cs.Emoji != engine.MeetingEmoji || !cs.ExpiresAt.Equal(ten) || st.DNDEndTime != ten.Unix() {
			t.Fatalf("custom status %+v, dnd_end_time %d: want the calendar emoji and both ending at %v", cs, st.DNDEndTime, ten)
		}
		w.runAt(ten, u)
		w.expect(u, model.StatusAway, "")
	})

	t.Run("subject shown only when enabled and the event is not private", func(t *testing.T) {
		us := users(2)
		w.worker.Policy.ShowSubject = true
		defer func() { w.worker.Policy.ShowSubject = false }()
		w.calendar(us[0], event("busy", nine, ten))
		private := event("busy", nine, ten)
		private.IsPrivate = true
		w.calendar(us[1], private)
		w.runAt(nine, us...)
		w.expect(us[0], model.StatusDnd, "In a meeting: Quarterly planning")
		if got := w.state(us[1]).customText(); got != "In a meeting" {
			t.Fatalf("private meeting shows %q", got)
		}
	})

	t.Run("tentative like busy, unless configured otherwise", func(t *testing.T) {
		us := users(2)
		for _, u := range us {
			w.calendar(u, event("tentative", nine, ten))
		}
		w.runAt(nine, us[0])
		w.expect(us[0], model.StatusDnd, "In a meeting")
		w.worker.Policy.TentativeAsBusy = false
		defer func() { w.worker.Policy.TentativeAsBusy = true }()
		w.run(us[1])
		w.expect(us[1], model.StatusOnline, "")
	})

	t.Run("out of office: DND and 'Out of office until <date>'", func(t *testing.T) {
		u := users(1)[0]
		w.calendar(u, event("oof", day, day.Add(48*time.Hour)))
		w.runAt(nine, u)
		w.expect(u, model.StatusDnd, "Out of office until "+day.Add(48*time.Hour).Format("Mon 2 Jan"))
		if w.state(u).Custom.Emoji != engine.OOFEmoji {
			t.Fatal("out-of-office emoji missing")
		}
	})

	t.Run("working elsewhere: a custom status only", func(t *testing.T) {
		u := users(1)[0]
		w.calendar(u, event("workingElsewhere", nine, eleven))
		w.runAt(ten, u)
		w.expect(u, model.StatusOnline, "Working elsewhere")
		w.runAt(eleven, u)
		w.expect(u, model.StatusOnline, "")
	})

	t.Run("a status changed mid-meeting is not overridden, nor restored after", func(t *testing.T) {
		u := users(1)[0]
		w.calendar(u, event("busy", nine, eleven))
		w.runAt(nine, u)
		w.expect(u, model.StatusDnd, "In a meeting")
		w.setStatus(u, model.StatusAway) // the user steps out of DND
		w.runAt(ten, u)
		w.expect(u, model.StatusAway, "In a meeting")
		w.runAt(eleven, u)
		w.expect(u, model.StatusAway, "")
	})

	t.Run("a custom status changed mid-meeting is kept after the meeting", func(t *testing.T) {
		u := users(1)[0]
		w.calendar(u, event("busy", nine, eleven))
		w.runAt(nine, u)
		w.setCustom(u, "coffee", "Back in 5")
		w.runAt(ten, u)
		w.expect(u, model.StatusDnd, "Back in 5")
		w.runAt(eleven, u)
		w.expect(u, model.StatusOnline, "Back in 5")
	})

	t.Run("a user already in DND is left alone and not restored", func(t *testing.T) {
		u := users(1)[0]
		w.setStatus(u, model.StatusDnd)
		w.calendar(u, event("busy", nine, ten))
		w.runAt(nine, u)
		w.expect(u, model.StatusDnd, "In a meeting")
		w.runAt(ten, u)
		w.expect(u, model.StatusDnd, "")
	})

	t.Run("a user's own custom status is never overwritten or cleared", func(t *testing.T) {
		u := users(1)[0]
		w.setCustom(u, "airplane", "Travelling")
		w.calendar(u, event("busy", nine, ten))
		w.runAt(nine, u)
		w.expect(u, model.StatusDnd, "Travelling")
		w.runAt(ten, u)
		w.expect(u, model.StatusOnline, "Travelling")
	})

	t.Run("back to back: one DND, the custom status follows, the original status comes back", func(t *testing.T) {
		u := users(1)[0]
		w.setStatus(u, model.StatusOffline)
		handover := nine.Add(5 * time.Minute) // within the lookahead: one DND for both
		w.calendar(u, event("busy", nine, handover), event("oof", handover, eleven))
		w.runAt(nine, u)
		if st, _, _ := w.admin.GetUserStatus(u.Id, ""); st.DNDEndTime != eleven.Unix() {
			t.Fatalf("dnd_end_time %v, want the end of the back-to-back run %v", time.Unix(st.DNDEndTime, 0).UTC(), eleven)
		}
		w.runAt(handover, u)
		w.expect(u, model.StatusDnd, "Out of office until")
		w.runAt(eleven, u)
		w.expect(u, model.StatusOffline, "")
	})

	t.Run("a shard where nothing changed costs 2 reads and no writes", func(t *testing.T) {
		us := users(20)
		for i, u := range us {
			if i%2 == 0 {
				w.calendar(u, event("busy", nine, ten))
			}
		}
		w.runAt(nine, us...)
		w.at(nine.Add(5 * time.Minute))
		r0, wr0, sw0 := w.mm.Reads.Load(), w.mm.Writes.Load(), w.store.Writes
		rep := w.run(us...)
		reads, writes, stateWrites := w.mm.Reads.Load()-r0, w.mm.Writes.Load()-wr0, w.store.Writes-sw0
		report(t, "unchanged shard of %d users: %d Mattermost reads, %d Mattermost writes, %d state table writes", len(us), reads, writes, stateWrites)
		if reads > 2 || writes != 0 || stateWrites != 0 || rep.Changed != 0 {
			t.Fatalf("unchanged shard: %d reads, %d writes, %d state writes, %d changed", reads, writes, stateWrites, rep.Changed)
		}
	})

	t.Run("two deliveries of one shard apply its changes once", func(t *testing.T) {
		us := users(10)
		for _, u := range us {
			w.calendar(u, event("busy", nine, ten))
		}
		w.at(nine)
		ids := make([]string, len(us))
		for i, u := range us {
			ids[i] = u.Id
		}
		msg := shard.Split(fmt.Sprintf("two-deliveries-%d", time.Now().UnixNano()), nine, nine.Add(5*time.Minute), ids)[0]
		wr0 := w.mm.Writes.Load()
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = w.worker.Process(context.Background(), discard(), msg, 1)
			}()
		}
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("want exactly one delivery to fail on the conflict (and be retried by the queue), got %v", errs)
		}
		// Each user needs 2 writes (status, custom status); a double application would need 4.
		if writes := w.mm.Writes.Load() - wr0; writes != int64(2*len(us)) {
			t.Fatalf("%d Mattermost writes for %d users (errors %v): changes applied more than once", writes, len(us), errs)
		}
		for _, u := range us {
			w.expect(u, model.StatusDnd, "In a meeting")
		}
	})

	t.Run("notifications: the user is told what changed", func(t *testing.T) {
		u := users(1)[0]
		w.worker.Policy.Notify = true
		defer func() { w.worker.Policy.Notify = false }()
		w.calendar(u, event("busy", nine, ten))
		w.runAt(nine, u)
		me, _, err := w.admin.GetMe("")
		if err != nil {
			t.Fatal(err)
		}
		ch, _, err := w.admin.CreateDirectChannel(me.Id, u.Id)
		if err != nil {
			t.Fatal(err)
		}
		posts, _, err := w.admin.GetPostsForChannel(ch.Id, 0, 5, "", false)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, p := range posts.Posts {
			found = found || strings.Contains(p.Message, "Do Not Disturb until")
		}
		if !found {
			t.Fatalf("no direct message about the change in %d posts", len(posts.Posts))
		}
	})

	t.Run("transitions before the next cycle are scheduled at their time", func(t *testing.T) {
		u := users(1)[0]
		start := nine.Add(2*time.Minute + 30*time.Second)
		w.calendar(u, event("busy", start, start.Add(time.Minute)))
		rec := &recordingScheduler{}
		w.worker.Transitions = rec
		defer func() { w.worker.Transitions = nil }()
		w.runAt(nine, u)
		w.expect(u, model.StatusOnline, "")
		if len(rec.msgs) != 2 || !rec.msgs[0].ApplyAt.Equal(start) || rec.delays[0] != start.Sub(nine) ||
			!rec.msgs[1].ApplyAt.Equal(start.Add(time.Minute)) {
			t.Fatalf("scheduled %+v with delays %v; want the start and the end", rec.msgs, rec.delays)
		}
		// The transition message, delivered at its time, applies the meeting.
		w.at(start)
		if _, err := w.worker.Process(context.Background(), discard(), rec.msgs[0], 1); err != nil {
			t.Fatal(err)
		}
		w.expect(u, model.StatusDnd, "In a meeting")
	})
}

type recordingScheduler struct {
	mu     sync.Mutex
	msgs   []shard.Message
	delays []time.Duration
}

func (r *recordingScheduler) SendLater(_ context.Context, v any, delay time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, v.(shard.Message))
	r.delays = append(r.delays, delay)
	return nil
}
