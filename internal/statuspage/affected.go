package statuspage

import (
	"context"
	"sort"
	"time"

	"github.com/calstatus/calstatus/internal/store"
)

// MaxAffected is how many failing users the page names; the others are counted by class.
const MaxAffected = 100

// NamedPerShard is how many of its failing users a shard's report names (internal/syncer's cap).
const NamedPerShard = 50

// Settings counts the users who turned calstatus off or have it paused (store.Store).
type Settings interface {
	CountSettings(ctx context.Context, now time.Time) (store.SettingsCounts, error)
}

// Affected is who the sync fails for now: the users the latest cycle named as failing, and how many
// users turned calstatus off or paused it with their /calstatus command.
type Affected struct {
	// Cycle is the cycle the failing users come from: the most recent one with shard reports
	// ("" when none in the window). ShardsReported of its Shards have reported.
	Cycle          string     `json:"cycle"`
	CycleStarted   *time.Time `json:"cycle_started"`
	Shards         int        `json:"shards"`
	ShardsReported int        `json:"shards_reported"`
	// Failing are the failing users that cycle's shards named, by class then user, at most
	// MaxAffected. A shard names at most NamedPerShard of its failing users.
	Failing []FailingUser `json:"failing"`
	// Failed is how many users that cycle counted as failing, named or not (its failures by class).
	Failed int `json:"failed"`
	// Unlisted counts, by class, that cycle's failures not in Failing.
	Unlisted map[string]int `json:"unlisted"`
	// Classes says what each class of Failing and Unlisted means (the classes the page knows).
	Classes map[string]string `json:"classes"`
	// Settings is null when the users' settings could not be counted.
	Settings *SettingsState `json:"settings"`
}

// FailingUser is a user the latest cycle could not bring up to date.
type FailingUser struct {
	// User is the username (an email or a user id where Mattermost gave none).
	User  string `json:"user"`
	Class string `json:"class"`
	// Since is the start of the earliest cycle of the unbroken run of recent cycles (the window's
	// cycles with shard reports) that named the user as failing, with any class.
	Since time.Time `json:"since"`
}

// SettingsState is how many users turned calstatus off, and how many have it paused, now.
type SettingsState struct {
	Off    int `json:"off"`
	Paused int `json:"paused"`
}

// classHelp says briefly what a failure class means (README, "What the classes mean").
var classHelp = map[string]string{
	"not_found":         "no Exchange Online mailbox for the email (a guest, a shared address, a typo): fix the email in Mattermost, or ignore it",
	"no_mailbox":        "no Exchange Online mailbox for the email (a guest, a shared address, a typo): fix the email in Mattermost, or ignore it",
	"no_access":         "Graph refused that calendar: no consent, an Exchange application access policy or RBAC for Applications scope, or a mailbox that does not share free/busy",
	"proxy":             "a mailbox on premises (hybrid) that Graph cannot reach",
	"throttled":         "Graph answered an error for that user (the “no availability for user” log line has the details)",
	"server":            "Graph answered an error for that user (the “no availability for user” log line has the details)",
	"unauthorized":      "Graph answered an error for that user (the “no availability for user” log line has the details)",
	"malformed":         "Graph answered an error for that user (the “no availability for user” log line has the details)",
	"unknown":           "Graph answered an error for that user (the “no availability for user” log line has the details, in full)",
	"mattermost":        "a change for that user failed in Mattermost (“could not update user” log lines)",
	"mattermost_auth":   "Mattermost refused calstatus's token (401 or 403) for a change for that user",
	"no_user":           "the user left Mattermost",
	"no_status":         "Mattermost returned no status for the user",
	"changed_meanwhile": "the user changed their status while calstatus was about to write it: left to the next run",
}

// affected finds the failing users of the latest cycle with shard reports among the window's cycles
// (history, oldest first), and since when each has been failing.
func affected(history []store.CycleHistory, windowStart time.Time) Affected {
	a := Affected{Failing: []FailingUser{}, Unlisted: map[string]int{}, Classes: map[string]string{}}
	var cycles []store.CycleHistory
	for _, h := range history {
		if !h.Plan.Started.Before(windowStart) && len(h.Shards) > 0 {
			cycles = append(cycles, h)
		}
	}
	sort.SliceStable(cycles, func(i, j int) bool { return cycles[i].Plan.Started.Before(cycles[j].Plan.Started) })
	if len(cycles) == 0 {
		return a
	}
	latest := cycles[len(cycles)-1]
	a.Cycle, a.CycleStarted = clean(latest.Plan.CycleID), timePtr(latest.Plan.Started)
	a.Shards, a.ShardsReported = latest.Plan.Shards, len(latest.Shards)

	// named[i] holds the users cycle i named as failing.
	named := make([]map[string]bool, len(cycles))
	for i, c := range cycles {
		named[i] = map[string]bool{}
		for _, r := range c.Shards {
			for _, u := range r.FailedUsers {
				named[i][u.User] = true
			}
		}
	}
	counts := map[string]int{}
	seen := map[store.FailedUser]bool{}
	for _, r := range latest.Shards {
		for k, v := range r.Failures {
			counts[clean(k)] += v
			a.Failed += v
		}
		for _, u := range r.FailedUsers {
			if seen[u] {
				continue
			}
			seen[u] = true
			since := latest.Plan.Started
			for i := len(cycles) - 2; i >= 0 && named[i][u.User]; i-- {
				since = cycles[i].Plan.Started
			}
			a.Failing = append(a.Failing, FailingUser{User: clean(u.User), Class: clean(u.Class), Since: since.UTC()})
		}
	}
	sort.SliceStable(a.Failing, func(i, j int) bool {
		x, y := a.Failing[i], a.Failing[j]
		if x.Class != y.Class {
			return x.Class < y.Class
		}
		return x.User < y.User
	})
	a.Failing = a.Failing[:min(len(a.Failing), MaxAffected)]
	for _, u := range a.Failing {
		counts[u.Class]--
	}
	for class, n := range counts {
		if n > 0 {
			a.Unlisted[class] = n
		}
	}
	for _, u := range a.Failing {
		if h, ok := classHelp[u.Class]; ok {
			a.Classes[u.Class] = h
		}
	}
	for class := range a.Unlisted {
		if h, ok := classHelp[class]; ok {
			a.Classes[class] = h
		}
	}
	return a
}

// total sums counts by class.
func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// classLine is a class and what it means, for the page's legend.
type classLine struct{ Class, Help string }

// classLines lists classes and what they mean, by class.
func classLines(m map[string]string) []classLine {
	out := make([]classLine, 0, len(m))
	for k, v := range m {
		out = append(out, classLine{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Class < out[j].Class })
	return out
}
