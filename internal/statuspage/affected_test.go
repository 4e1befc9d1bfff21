package statuspage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/calstatus/calstatus/internal/queue"
	"github.com/calstatus/calstatus/internal/store"
)

type fakeSettings struct {
	c   store.SettingsCounts
	err error
	at  time.Time
}

func (f *fakeSettings) CountSettings(_ context.Context, at time.Time) (store.SettingsCounts, error) {
	f.at = at
	return f.c, f.err
}

// name makes cycle i's shard s name users as failing (and count them by class).
func name(h []store.CycleHistory, i, s int, users ...store.FailedUser) {
	r := &h[i].Shards[s]
	if r.Failures == nil {
		r.Failures = map[string]int{}
	}
	for _, u := range users {
		r.FailedUsers = append(r.FailedUsers, u)
		r.Failures[u.Class]++
		r.Failed++
	}
}

func fu(user, class string) store.FailedUser { return store.FailedUser{User: user, Class: class} }

const markupUser = `<b>mallory</b>`

// quiet is history(n) without user failures.
func quiet(n int) []store.CycleHistory {
	h := history(n)
	for i := range h {
		for s := range h[i].Shards {
			h[i].Shards[s].Failures, h[i].Shards[s].Failed = map[string]int{}, 0
		}
	}
	return h
}

func TestWhoIsAffected(t *testing.T) {
	h := quiet(6) // only the failures named here
	// A cycle 25 hours ago, outside the window, named erin: her run starts with the window's first cycle.
	old := history(1)
	old[0].Plan.Started = now.Add(-25 * time.Hour)
	old[0].Plan.CycleID = old[0].Plan.Started.Format("20060102T150405Z") + "-old"
	name(old, 0, 0, fu("erin", "no_mailbox"), fu("carol", "no_access"))
	for i := range 6 {
		name(h, i, 3, fu("erin", "no_mailbox"))
	}
	// alice: failing since cycle 2.
	for i := 2; i < 6; i++ {
		name(h, i, 0, fu("alice", "not_found"))
	}
	// bob: failing in cycle 1, not in 2, again from cycle 3 (in another shard): since cycle 3.
	name(h, 1, 1, fu("bob", "throttled"))
	for i := 3; i < 6; i++ {
		name(h, i, 2, fu("bob", "throttled"))
	}
	// carol: only the last cycle (the one outside the window does not count).
	name(h, 5, 1, fu("carol", "no_access"), fu(markupUser, "no_access"))
	// dave: a Graph error in cycle 4, a Mattermost one in cycle 5: failing (with any class) since 4.
	name(h, 4, 1, fu("dave", "server"))
	name(h, 5, 1, fu("dave", "mattermost"))
	// Two throttled users of the last cycle counted but not named (a shard past its 50).
	h[5].Shards[2].Failures["throttled"] += 2
	h[5].Shards[2].Failed += 2
	// A newer cycle has no shard report yet: the last cycle with reports is h[5].
	pending := store.CycleHistory{Plan: store.CycleReport{CycleID: "20261122T100700Z-pending", Started: now.Add(-30 * time.Second), Users: 1201, Shards: 4}}
	cycles := append(append(old, h...), pending)

	p := newPage(cycles, queue.Health{})
	p.Settings = &fakeSettings{c: store.SettingsCounts{Off: 3, Paused: 1}}
	js := get(t, p, map[string]string{"format": "json"}).Body
	rep := decode(t, js)
	a := rep.Affected
	start := func(i int) time.Time { return h[i].Plan.Started.UTC() }
	want := []FailingUser{
		{"dave", "mattermost", start(4)},
		{markupUser, "no_access", start(5)},
		{"carol", "no_access", start(5)},
		{"erin", "no_mailbox", start(0)},
		{"alice", "not_found", start(2)},
		{"bob", "throttled", start(3)},
	}
	if fmt.Sprint(a.Failing) != fmt.Sprint(want) {
		t.Fatalf("failing users:\n got %v\nwant %v", a.Failing, want)
	}
	if a.Cycle != h[5].Plan.CycleID || a.CycleStarted == nil || !a.CycleStarted.Equal(start(5)) || a.Shards != 4 || a.ShardsReported != 4 ||
		a.Failed != 8 || fmt.Sprint(a.Unlisted) != "map[throttled:2]" {
		t.Fatalf("affected: %+v", a)
	}
	if a.Settings == nil || *a.Settings != (SettingsState{Off: 3, Paused: 1}) || !p.Settings.(*fakeSettings).at.Equal(now) {
		t.Fatalf("settings %+v", a.Settings)
	}
	if !strings.HasPrefix(a.Classes["not_found"], "no Exchange Online mailbox") || a.Classes["throttled"] == "" || len(a.Classes) != 5 {
		t.Fatalf("classes %v", a.Classes)
	}

	// Stable snake_case names.
	var raw struct {
		Affected map[string]json.RawMessage `json:"affected"`
	}
	_ = json.Unmarshal([]byte(js), &raw)
	for _, k := range []string{"cycle", "cycle_started", "shards", "shards_reported", "failing", "failed", "unlisted", "classes", "settings"} {
		if _, ok := raw.Affected[k]; !ok {
			t.Errorf("JSON affected has no %q", k)
		}
	}
	if !strings.Contains(string(raw.Affected["failing"]), `"user": "alice",
        "class": "not_found",
        "since": "`+start(2).Format(time.RFC3339)+`"`) || string(raw.Affected["settings"]) != `{
      "off": 3,
      "paused": 1
    }` {
		t.Errorf("JSON affected: %s", js)
	}

	page := get(t, p, nil).Body
	sec := section(t, page, "affected")
	rows := regexp.MustCompile(`<tr><td>([^<]*)</td><td><code>([^<]*)</code></td><td>([^<]*)</td></tr>`).FindAllStringSubmatch(sec, -1)
	if len(rows) != len(want) {
		t.Fatalf("%d rows in the HTML, want %d:\n%s", len(rows), len(want), sec)
	}
	for i, r := range rows {
		w := want[i]
		if r[1] != html(w.User) || r[2] != w.Class || r[3] != utc(w.Since)+" ("+ago(now.Sub(w.Since))+")" {
			t.Errorf("row %d: %q, want %+v", i, r[1:], w)
		}
	}
	for _, s := range []string{"calstatus off: 3 users; paused: 1 user", "8 users failing", "2 more counted, not named here: throttled 2",
		"at most 50 of its failing users", "no Exchange Online mailbox", "&lt;b&gt;mallory&lt;/b&gt;"} {
		if !strings.Contains(sec, s) {
			t.Errorf("who is affected lacks %q:\n%s", s, sec)
		}
	}
	if strings.Contains(page, markupUser) {
		t.Fatal("a username's markup is in the page")
	}
	if !strings.Contains(section(t, page, "consent"), `<a href="AdminConsent">`) {
		t.Fatal("no link to the consent page")
	}
}

func TestWhoIsAffectedIsCapped(t *testing.T) {
	h := history(2)
	for s := range 4 { // every shard names 50 and counts 80 of its failing users
		r := &h[1].Shards[s]
		r.Failures, r.Failed = map[string]int{"no_access": 40, "throttled": 40}, 80
		for u := range NamedPerShard {
			r.FailedUsers = append(r.FailedUsers, fu(fmt.Sprintf("user%d-%02d", s, u), []string{"throttled", "no_access"}[u%2]))
		}
	}
	p := newPage(h, queue.Health{})
	a := decode(t, get(t, p, map[string]string{"format": "json"}).Body).Affected
	if len(a.Failing) != MaxAffected || a.Failed != 320 {
		t.Fatalf("%d named of %d", len(a.Failing), a.Failed)
	}
	// The list: no_access (100 named), all of them; throttled past the cap.
	for i, u := range a.Failing {
		if u.Class != "no_access" || i > 0 && a.Failing[i-1].User >= u.User {
			t.Fatalf("not by class then user at %d: %+v", i, a.Failing[max(0, i-1):i+1])
		}
	}
	if fmt.Sprint(a.Unlisted) != "map[no_access:60 throttled:160]" {
		t.Fatalf("unlisted %v", a.Unlisted)
	}
	sec := section(t, get(t, p, nil).Body, "affected")
	if n := strings.Count(sec, "<tr><td>"); n != MaxAffected {
		t.Fatalf("%d rows", n)
	}
	for _, s := range []string{"320 users failing", "220 more counted, not named here: throttled 160, no_access 60", "at most 100"} {
		if !strings.Contains(sec, s) {
			t.Errorf("lacks %q:\n%s", s, sec)
		}
	}
}

func TestWhoIsAffectedWithoutData(t *testing.T) {
	// No settings source: the counts are not available, and that is no problem of the page.
	p := newPage(quiet(3), queue.Health{})
	rep := decode(t, get(t, p, map[string]string{"format": "json"}).Body)
	sec := section(t, get(t, p, nil).Body, "affected")
	if rep.Affected.Settings != nil || len(rep.Problems) != 0 || len(rep.Affected.Failing) != 0 || rep.Affected.Failing == nil ||
		!strings.Contains(sec, "calstatus off, paused: <span class=\"muted\">not available") || !strings.Contains(sec, "No user failing in the last cycle") {
		t.Fatalf("no settings source: %+v %v\n%s", rep.Affected, rep.Problems, sec)
	}
	// Counting fails: a problem of the page; the error itself only in the log.
	p.Settings = &fakeSettings{err: errors.New("table: AccountKey=SECRETKEY")}
	rep = decode(t, get(t, p, map[string]string{"format": "json"}).Body)
	if rep.Affected.Settings != nil || strings.Join(rep.Problems, "|") != "could not count the users who turned calstatus off or paused it" ||
		rep.Headline.State != StateAttention {
		t.Fatalf("settings error: %+v %v %+v", rep.Affected, rep.Problems, rep.Headline)
	}
	if page := get(t, p, nil).Body; strings.Contains(page, "SECRETKEY") || !strings.Contains(section(t, page, "affected"), "not available") {
		t.Fatal("settings error: the page")
	}
	// No cycle at all.
	p = newPage(nil, queue.Health{})
	p.Settings = &fakeSettings{}
	rep = decode(t, get(t, p, map[string]string{"format": "json"}).Body)
	sec = section(t, get(t, p, nil).Body, "affected")
	if rep.Affected.Cycle != "" || rep.Affected.Failing == nil || rep.Affected.Settings == nil ||
		!strings.Contains(sec, "calstatus off: 0 users; paused: 0 users") || !strings.Contains(sec, "No cycle with shard reports") {
		t.Fatalf("no cycle: %+v\n%s", rep.Affected, sec)
	}
}
