package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/internal/shard"
)

// TestRosterFollowsUsersComingAndGoing: the timer lists the users once and plans later cycles
// from the stored roster, and lists again as soon as Mattermost's user counts say someone came or
// went — a new user is synced in the next cycle, a deactivated one no longer.
func TestRosterFollowsUsersComingAndGoing(t *testing.T) {
	h := newHarness(t, harnessOptions{scenario: graphsim.DefaultScenario()})
	listed := func(logs []string) bool {
		return slices.ContainsFunc(logs, func(l string) bool { return strings.Contains(l, "users listed") })
	}
	planned := func(msgs []shard.Message) []string {
		var ids []string
		for _, m := range msgs {
			ids = append(ids, m.UserIDs...)
		}
		return ids
	}
	want := len(h.syncUsers())
	// The first cycle lists (or finds the roster of an earlier test with the same counts).
	if msgs, _, _ := h.cycle(3 * time.Minute); len(planned(msgs)) != want {
		t.Fatalf("first cycle planned %d users, want %d", len(planned(msgs)), want)
	}
	msgs, _, logs := h.cycle(3 * time.Minute)
	if listed(logs) || len(planned(msgs)) != want {
		t.Fatalf("second cycle: listed %v, planned %d users of %d; want the stored roster", listed(logs), len(planned(msgs)), want)
	}

	name := "roster-" + model.NewId()[:12]
	u, _, err := h.mm.CreateUser(&model.User{Username: name, Email: name + "@roster.example", Password: "Roster-test-pw-1"})
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	t.Cleanup(func() {
		if _, err := h.mm.PermanentDeleteUser(u.Id); err != nil {
			t.Errorf("delete user %s: %v", name, err)
		}
	})
	msgs, _, logs = h.cycle(3 * time.Minute)
	if !listed(logs) || !slices.Contains(planned(msgs), u.Id) || len(planned(msgs)) != want+1 {
		t.Fatalf("after a user came: listed %v, planned %d users (want %d), new user included %v",
			listed(logs), len(planned(msgs)), want+1, slices.Contains(planned(msgs), u.Id))
	}

	if _, err := h.mm.UpdateUserActive(u.Id, false); err != nil {
		t.Fatalf("deactivate user: %v", err)
	}
	msgs, _, logs = h.cycle(3 * time.Minute)
	if !listed(logs) || slices.Contains(planned(msgs), u.Id) || len(planned(msgs)) != want {
		t.Fatalf("after a user left: listed %v, planned %d users (want %d), deactivated user included %v",
			listed(logs), len(planned(msgs)), want, slices.Contains(planned(msgs), u.Id))
	}
	msgs, _, logs = h.cycle(3 * time.Minute)
	if listed(logs) || len(planned(msgs)) != want {
		t.Fatalf("last cycle: listed %v, planned %d users of %d; want the stored roster", listed(logs), len(planned(msgs)), want)
	}
}
