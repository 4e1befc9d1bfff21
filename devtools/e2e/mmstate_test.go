package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/calstatus/calstatus/devtools/mmstate"
	"github.com/calstatus/calstatus/devtools/teststack"
)

// TestMattermostStatusRows proves devtools/mmstate against the stack's real Mattermost
// server and documents how the server keeps a status. It works on a user of its
// own (created here, permanently deleted at the end). It calls InvalidateCaches,
// which is server-wide: see the package doc.
func TestMattermostStatusRows(t *testing.T) {
	env := teststack.Require(t)
	if env.SQLDSN == "" {
		t.Fatal("the test stack env file has no STACK_POSTGRES_DSN: rerun devtools/stack/stack.sh up")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := mmstate.Open(env.SQLDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() }) // after the user's cleanup below (cleanups run last first)
	c := model.NewAPIv4Client(env.MattermostURL)
	c.SetToken(env.MattermostToken)

	name := "mmstate-" + model.NewId()[:12]
	u, _, err := c.CreateUser(&model.User{Username: name, Email: name + "@mmstate.example", Password: "Mmstate-test-pw-1"})
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	id := u.Id
	t.Cleanup(func() {
		if _, err := c.PermanentDeleteUser(id); err != nil {
			t.Errorf("delete user %s: %v", name, err)
		}
		// The server leaves the status row of a permanently deleted user behind.
		if err := db.DeleteRow(context.Background(), id); err != nil {
			t.Errorf("delete status row of %s: %v", name, err)
		}
	})

	rowIs := func(t *testing.T, want mmstate.Row) mmstate.Row {
		t.Helper()
		got, err := db.Row(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != want.Status || got.Manual != want.Manual || got.PrevStatus != want.PrevStatus || got.DNDEndTime != want.DNDEndTime {
			t.Fatalf("status row %v, want %v", got, want)
		}
		return got
	}
	// GET /users/{id}/status
	apiIs := func(t *testing.T, status string, manual bool, dndEnd int64) {
		t.Helper()
		st, _, err := c.GetUserStatus(id, "")
		if err != nil {
			t.Fatal(err)
		}
		if st.Status != status || st.Manual != manual || st.DNDEndTime != dndEnd {
			t.Fatalf("GET status: %s manual=%v dnd_end_time=%d, want %s manual=%v dnd_end_time=%d", st.Status, st.Manual, st.DNDEndTime, status, manual, dndEnd)
		}
	}
	// POST /users/status/ids
	apiIdsIs := func(t *testing.T, status string, manual bool, dndEnd int64) {
		t.Helper()
		sts, _, err := c.GetUsersStatusesByIds([]string{id})
		if err != nil {
			t.Fatal(err)
		}
		if len(sts) != 1 || sts[0].Status != status || sts[0].Manual != manual || sts[0].DNDEndTime != dndEnd {
			t.Fatalf("POST status/ids: %+v, want %s manual=%v dnd_end_time=%d", sts, status, manual, dndEnd)
		}
	}
	put := func(t *testing.T, status string, dndEnd int64) {
		t.Helper()
		if _, _, err := c.UpdateUserStatus(id, &model.Status{UserId: id, Status: status, DNDEndTime: dndEnd}); err != nil {
			t.Fatalf("PUT status %s: %v", status, err)
		}
	}
	invalidate := func(t *testing.T) {
		t.Helper()
		if err := mmstate.InvalidateCaches(c); err != nil {
			t.Fatal(err)
		}
	}
	hour := time.Now().Add(time.Hour).Truncate(time.Second)
	if hour.Second() == 0 {
		hour = hour.Add(17 * time.Second) // an end with seconds, which a v10 server cuts
	}
	later := time.Now().Add(72 * time.Hour) // the simulated clock: days past every end used here
	// What the server keeps of the end sent: cut to the minute from about v10.6 (PR #29938); and
	// what a status read after a cache miss shows of it: 0 up to about v10.5, the end from 10.6
	// (PR #30060).
	v10 := env.Profile == "v10"
	keptPrev := "" // prev_status after a save from the cache entry (see "dnd over dnd")
	stored, afterMiss := hour.Unix(), int64(0)
	if v10 {
		stored = hour.Truncate(time.Minute).Unix()
		afterMiss = stored
	}

	// Each step builds on the previous one.
	steps := []struct {
		name string
		f    func(t *testing.T)
	}{
		{"new user has no status row", func(t *testing.T) {
			if _, err := db.Row(ctx, id); !errors.Is(err, mmstate.ErrNoStatus) {
				t.Fatalf("Row: %v, want ErrNoStatus", err)
			}
			apiIdsIs(t, model.StatusOffline, false, 0)
		}},
		{"away through the API is manual", func(t *testing.T) {
			put(t, model.StatusAway, 0)
			rowIs(t, mmstate.Row{Status: "away", Manual: true})
			apiIs(t, "away", true, 0)
			rows, err := db.Rows(ctx, []string{id, model.NewId()})
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 1 || rows[id].Status != "away" {
				t.Fatalf("Rows = %v, want only %s away", rows, id)
			}
		}},
		{"timed dnd keeps the previous status", func(t *testing.T) {
			put(t, model.StatusDnd, hour.Unix())
			rowIs(t, mmstate.Row{Status: "dnd", Manual: true, PrevStatus: "away", DNDEndTime: stored})
			apiIs(t, "dnd", true, stored) // the cache holds the whole status the server saved
			apiIdsIs(t, "dnd", true, stored)
		}},
		{"after a cache miss the API shows dnd_end_time 0 (v10: the end)", func(t *testing.T) {
			invalidate(t)
			apiIdsIs(t, "dnd", true, afterMiss)
			apiIs(t, "dnd", true, afterMiss) // GET /users/{id}/status goes through the same cache fill
			rowIs(t, mmstate.Row{Status: "dnd", Manual: true, PrevStatus: "away", DNDEndTime: stored})
		}},
		{"ExpireDND restores the previous status", func(t *testing.T) {
			if n, err := db.ExpireDND(ctx, time.Unix(stored, 0).Add(-time.Second), id); err != nil || n != 0 {
				t.Fatalf("ExpireDND a second before the end = %d, %v; want 0", n, err)
			}
			if n, err := db.ExpireDND(ctx, later, id); err != nil || n != 1 {
				t.Fatalf("ExpireDND = %d, %v; want 1", n, err)
			}
			rowIs(t, mmstate.Row{Status: "away", Manual: false, PrevStatus: "dnd"})
			apiIs(t, "dnd", true, afterMiss) // stale cache (filled after the miss above)
			invalidate(t)
			apiIs(t, "away", false, 0)
			apiIdsIs(t, "away", false, 0)
		}},
		{"dnd over dnd expires to dnd", func(t *testing.T) {
			put(t, model.StatusDnd, hour.Unix())
			put(t, model.StatusDnd, hour.Add(time.Hour).Unix())
			rowIs(t, mmstate.Row{Status: "dnd", Manual: true, PrevStatus: "dnd", DNDEndTime: time.Unix(stored, 0).Add(time.Hour).Unix()})
			if n, err := mmstate.Expire(ctx, db, c, later, id); err != nil || n != 1 {
				t.Fatalf("Expire = %d, %v; want 1", n, err)
			}
			rowIs(t, mmstate.Row{Status: "dnd", Manual: false, PrevStatus: "dnd"}) // an endless, non-manual dnd
			apiIs(t, "dnd", false, 0)
			put(t, model.StatusOnline, 0)
			// Saved from the cache entry: partial on v6 (PrevStatus lost), the whole row on v10.
			if v10 {
				keptPrev = "dnd"
			}
			rowIs(t, mmstate.Row{Status: "online", Manual: false, PrevStatus: keptPrev})
		}},
		{"custom status and recents", func(t *testing.T) {
			a := model.CustomStatus{Emoji: "calendar", Text: "In a meeting", Duration: "date_and_time", ExpiresAt: hour.UTC()}
			b := model.CustomStatus{Emoji: "palm_tree", Text: "On holiday"}
			for _, cs := range []model.CustomStatus{a, b} {
				if _, _, err := c.UpdateUserCustomStatus(id, &cs); err != nil {
					t.Fatalf("PUT custom %q: %v", cs.Text, err)
				}
			}
			cur, recents, err := db.Custom(ctx, c, id)
			if err != nil {
				t.Fatal(err)
			}
			same := func(x, y model.CustomStatus) bool {
				return x.Emoji == y.Emoji && x.Text == y.Text && x.Duration == y.Duration && x.ExpiresAt.Equal(y.ExpiresAt)
			}
			if cur == nil || !same(*cur, b) {
				t.Fatalf("current custom status %+v, want %+v", cur, b)
			}
			if len(recents) != 2 || !same(recents[0], b) || !same(recents[1], a) {
				t.Fatalf("recents %+v, want [%+v %+v]", recents, b, a)
			}
			if _, err := c.RemoveUserCustomStatus(id); err != nil {
				t.Fatal(err)
			}
			cur, recents, err = db.Custom(ctx, c, id)
			if err != nil {
				t.Fatal(err)
			}
			if cur != nil || len(recents) != 2 {
				t.Fatalf("after DELETE custom: current %+v, %d recents; want nil and 2", cur, len(recents))
			}
		}},
		{"the API hides another user's notify props", func(t *testing.T) {
			u, _, err := c.GetUser(id, "") // as a system admin
			if err != nil {
				t.Fatal(err)
			}
			if len(u.NotifyProps) != 0 {
				t.Fatalf("GET /users/{id} notify_props = %v, want them hidden", u.NotifyProps)
			}
			props, err := db.NotifyProps(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if props["email"] == "" || props["desktop"] == "" {
				t.Fatalf("notify props in the database %v, want the defaults", props)
			}
		}},
		{"auto-responder on sets ooo", func(t *testing.T) {
			before, err := db.NotifyProps(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.SetAutoResponder(ctx, c, id, true, "Away until Monday"); err != nil {
				t.Fatal(err)
			}
			rowIs(t, mmstate.Row{Status: "ooo", Manual: true, PrevStatus: keptPrev})
			apiIs(t, "ooo", true, 0)
			if on, m, err := db.AutoResponder(ctx, id); err != nil || !on || m != "Away until Monday" {
				t.Fatalf("AutoResponder = %v, %q, %v", on, m, err)
			}
			after, err := db.NotifyProps(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range before {
				if k != model.AutoResponderActiveNotifyProp && k != model.AutoResponderMessageNotifyProp && after[k] != v {
					t.Errorf("notify prop %s = %q, was %q", k, after[k], v)
				}
			}
		}},
		{"dnd on an ooo user turns the auto-responder off", func(t *testing.T) {
			put(t, model.StatusDnd, hour.Unix())
			if on, _, err := db.AutoResponder(ctx, id); err != nil || on {
				t.Fatalf("AutoResponder active = %v, %v; want false", on, err)
			}
			rowIs(t, mmstate.Row{Status: "dnd", Manual: true, PrevStatus: "ooo", DNDEndTime: stored})
			if n, err := mmstate.Expire(ctx, db, c, later, id); err != nil || n != 1 {
				t.Fatalf("Expire = %d, %v; want 1", n, err)
			}
			// DND expiry brings back ooo although the auto-responder stays off.
			rowIs(t, mmstate.Row{Status: "ooo", Manual: false, PrevStatus: "dnd"})
			apiIs(t, "ooo", false, 0)
			if on, _, _ := db.AutoResponder(ctx, id); on {
				t.Fatal("auto-responder back on after DND expiry")
			}
		}},
		{"auto-responder off sets online", func(t *testing.T) {
			if err := db.SetAutoResponder(ctx, c, id, true, "Back soon"); err != nil {
				t.Fatal(err)
			}
			rowIs(t, mmstate.Row{Status: "ooo", Manual: true, PrevStatus: keptPrev})
			if err := db.SetAutoResponder(ctx, c, id, false, ""); err != nil {
				t.Fatal(err)
			}
			rowIs(t, mmstate.Row{Status: "online", Manual: false, PrevStatus: keptPrev})
			apiIs(t, "online", false, 0)
			if on, m, err := db.AutoResponder(ctx, id); err != nil || on || m != "Back soon" {
				t.Fatalf("AutoResponder = %v, %q, %v; want off with the message kept", on, m, err)
			}
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.f) {
			return
		}
		if r, err := db.Row(ctx, id); err == nil {
			t.Logf("%-50s row: %v", s.name, r)
		}
	}
}
