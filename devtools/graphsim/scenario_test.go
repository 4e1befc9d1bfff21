package graphsim

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestGeneratorDeterminismAndShape(t *testing.T) {
	a := &Scenario{Generator: Generator{Seed: 42, BusyFraction: 0.4}}
	b := &Scenario{Generator: Generator{Seed: 42, BusyFraction: 0.4}}
	c := &Scenario{Generator: Generator{Seed: 43, BusyFraction: 0.4}}
	from, to := testDay, testDay.AddDate(0, 0, 2)
	if !reflect.DeepEqual(a.EventsFor("X@Contoso.example", from, to), b.EventsFor("x@contoso.example", from, to)) {
		t.Fatal("not deterministic / not case-insensitive")
	}
	if reflect.DeepEqual(a.EventsFor("x@contoso.example", from, to), c.EventsFor("x@contoso.example", from, to)) {
		t.Fatal("seed ignored")
	}
	if reflect.DeepEqual(a.EventsFor("x@contoso.example", from, to), a.EventsFor("y@contoso.example", from, to)) {
		t.Fatal("email ignored")
	}
	// Asking for a sub-window gives the same events as filtering a larger one.
	sub := a.EventsFor("x@contoso.example", testDay.Add(10*time.Hour), testDay.Add(12*time.Hour))
	var want []Event
	for _, e := range a.EventsFor("x@contoso.example", from, to) {
		if e.Start.Before(testDay.Add(12*time.Hour)) && e.End.After(testDay.Add(10*time.Hour)) {
			want = append(want, e)
		}
	}
	if !reflect.DeepEqual(sub, want) {
		t.Fatal("window-dependent generation")
	}

	// Statistics over many user-days.
	var busy, total time.Duration
	statuses := map[string]int{}
	oofDays, private, userDays := 0, 0, 0
	hours := map[int]bool{}
	for u := 0; u < 300; u++ {
		email := fmt.Sprintf("user%03d@contoso.example", u)
		for d := 0; d < 7; d++ {
			day := testDay.AddDate(0, 0, d)
			userDays++
			evs := a.GenerateDay(email, day)
			if len(evs) == 1 && evs[0].Status == StatusOOF {
				oofDays++
				continue
			}
			for _, e := range evs {
				statuses[e.Status]++
				if e.IsPrivate {
					private++
				}
				if e.Start.Minute()%5 != 0 || e.Start.Second() != 0 {
					t.Fatalf("not on a 5-minute boundary: %v", e.Start)
				}
				if e.Subject != "Working from home" {
					if dur := e.End.Sub(e.Start); dur < 15*time.Minute || dur > 90*time.Minute {
						t.Fatalf("duration %v", dur)
					}
				}
				hours[e.Start.Hour()] = true
			}
			// Busy time = time covered by a non-free status, in 5-minute slots.
			var slots [24 * 12]bool
			for _, e := range a.EventsFor(email, day, day.AddDate(0, 0, 1)) {
				for k := range slots {
					st := day.Add(time.Duration(k) * 5 * time.Minute)
					if e.Status != StatusFree && e.Start.Before(st.Add(5*time.Minute)) && e.End.After(st) {
						slots[k] = true
					}
				}
			}
			for _, b := range slots {
				total += 5 * time.Minute
				if b {
					busy += 5 * time.Minute
				}
			}
			if d == 0 && u < 20 { // spot-check StatusAt against the slots
				for k := 0; k < len(slots); k += 7 {
					if (a.StatusAt(email, day.Add(time.Duration(k)*5*time.Minute)) != StatusFree) != slots[k] {
						t.Fatalf("StatusAt disagrees with events for %s slot %d", email, k)
					}
				}
			}
		}
	}
	frac := float64(busy) / float64(total)
	oofFrac := float64(oofDays) / float64(userDays)
	t.Logf("busy fraction %.3f, oof days %.3f, statuses %v, private %d", frac, oofFrac, statuses, private)
	if frac < 0.33 || frac > 0.52 { // includes the 3% whole-day OOF and working-elsewhere blocks
		t.Fatalf("busy fraction %.3f", frac)
	}
	if oofFrac < 0.01 || oofFrac > 0.06 {
		t.Fatalf("oof day fraction %.3f", oofFrac)
	}
	if statuses[StatusBusy] < 3*statuses[StatusTentative] || statuses[StatusTentative] == 0 || statuses[StatusWorkingElsewhere] == 0 || private == 0 {
		t.Fatalf("status mix %v private %d", statuses, private)
	}
	if len(hours) != 24 {
		t.Fatalf("meetings only start in hours %v", hours)
	}
}

func TestStatusAt(t *testing.T) {
	sc := &Scenario{
		Generator: Generator{Disabled: true},
		Mailboxes: map[string]*Mailbox{
			"A@x.example": {Events: []Event{
				{Status: StatusBusy, Start: at(10, 0), End: at(11, 0)},
				{Status: StatusOOF, Start: at(10, 30), End: at(10, 45)},
				{Status: StatusTentative, Start: at(12, 0), End: at(13, 0)},
				{Status: StatusWorkingElsewhere, Start: at(12, 30), End: at(14, 0)},
				{Status: StatusFree, Start: at(15, 0), End: at(16, 0), Subject: "free item"},
			}},
			"err@x.example": {ScheduleError: "ErrorNoFreeBusyAccess"},
		},
	}
	for _, c := range []struct {
		t    time.Time
		want string
	}{
		{at(9, 59), "free"}, {at(10, 0), "busy"}, {at(10, 35), "oof"}, {at(10, 45), "busy"}, {at(11, 0), "free"},
		{at(12, 45), "tentative"}, {at(13, 0), "workingElsewhere"}, {at(14, 0), "free"}, {at(15, 30), "free"},
	} {
		if got := sc.StatusAt("a@X.example", c.t); got != c.want {
			t.Fatalf("%v: %s want %s", c.t, got, c.want)
		}
	}
	if sc.StatusAt("nobody@x.example", at(10, 0)) != StatusUnknown || sc.StatusAt("err@x.example", at(10, 0)) != StatusUnknown {
		t.Fatal("unreadable mailboxes should be unknown")
	}
	if n := len(sc.EventsFor("a@x.example", at(10, 40), at(12, 1))); n != 3 {
		t.Fatalf("EventsFor overlap: %d", n)
	}
}

func TestLoadScenario(t *testing.T) {
	sc, err := LoadScenario(filepath.Join("testdata", "demo.json"))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Generator.Domain == "" || len(sc.Mailboxes) == 0 {
		t.Fatalf("%+v", sc)
	}
	p := filepath.Join(t.TempDir(), "s.json")
	os.WriteFile(p, []byte(`{"mailboxes":{"a@b.c":{"events":[{"status":"OOF","start":"2026-11-22T10:00:00","end":"2026-11-22T09:00:00"}]}}}`), 0o644)
	if _, err := LoadScenario(p); err == nil {
		t.Fatal("end before start accepted")
	}
	os.WriteFile(p, []byte(`{"mailboxes":{"a@b.c":{"evnts":[]}}}`), 0o644)
	if _, err := LoadScenario(p); err == nil {
		t.Fatal("unknown field accepted")
	}
	os.WriteFile(p, []byte(`{"generator":{"seed":9,"busyFraction":0.2},"mailboxes":{"A@B.c":{"events":[{"status":"workingelsewhere","start":"2026-11-22T10:00:00Z","end":"2026-11-22T12:00:00+01:00","subject":"s","isPrivate":true},{"start":"2026-11-22T13:00:00","end":"2026-11-22T14:00:00"}]}}}`), 0o644)
	sc, err = LoadScenario(p)
	if err != nil {
		t.Fatal(err)
	}
	ev := sc.EventsFor("a@b.c", testDay, testDay.AddDate(0, 0, 1))
	if len(ev) != 2 || ev[0].Status != StatusWorkingElsewhere || !ev[0].End.Equal(at(11, 0)) || ev[1].Status != StatusBusy || !ev[1].Start.Equal(at(13, 0)) {
		t.Fatalf("%+v", ev)
	}
}
