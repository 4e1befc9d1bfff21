package slash

import (
	"testing"
	"time"
)

// Whatever a user types after /calstatus pause, it is a time within MaxPause from now, or an
// error — never a panic.
func FuzzParsePause(f *testing.F) {
	for _, s := range []string{"2h", "30m", "1h30m", "1d", "2 hours", "until 14:00", "until 5pm", "until tomorrow", "until monday", "", "until", "-3h", "99999999h", "until 25:99"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	berlin, _ := time.LoadLocation("Europe/Berlin")
	f.Fuzz(func(t *testing.T, s string) {
		for _, loc := range []*time.Location{time.UTC, berlin} {
			until, err := ParsePause(s, now, loc)
			if err != nil {
				continue
			}
			if !until.After(now) || until.Sub(now) > MaxPause {
				t.Fatalf("pause %q ends at %v: want within (now, now+%v]", s, until, MaxPause)
			}
		}
	})
}
