package slash

import (
	"testing"
	"time"
)

// Between midnight and 4:00 the night still belongs to the day before: "tomorrow" is the coming
// morning (the same calendar date), and weekdays count from the day before; on a weekday (from
// 4:00), that weekday is next week's. Times in the user's time zone.
func TestParsePauseAtNight(t *testing.T) {
	la := mustLoad("America/Los_Angeles")
	local := func(loc *time.Location, month time.Month, day, hour, minute int) time.Time {
		return time.Date(2026, month, day, hour, minute, 0, 0, loc)
	}
	// 2026-11-23 is a Monday.
	for _, tc := range []struct {
		name string
		in   string
		now  time.Time
		want time.Time
	}{
		{"tomorrow at 00:30 is this morning", "until tomorrow", local(berlin, 11, 24, 0, 30), local(berlin, 11, 24, 9, 0)},
		{"tomorrow at 03:59 is this morning", "tomorrow", local(berlin, 11, 24, 3, 59), local(berlin, 11, 24, 9, 0)},
		{"tomorrow at 04:00 is the next day", "until tomorrow", local(berlin, 11, 24, 4, 0), local(berlin, 11, 25, 9, 0)},
		{"tomorrow at 23:30 is the next day", "until tomorrow", local(berlin, 11, 23, 23, 30), local(berlin, 11, 24, 9, 0)},
		{"tomorrow at 00:30 in Los Angeles", "until tomorrow", local(la, 11, 24, 0, 30), local(la, 11, 24, 9, 0)},
		{"monday on a Monday is next week's", "until monday", local(berlin, 11, 23, 10, 0), local(berlin, 11, 30, 9, 0)},
		{"monday on a Monday at 08:00 is next week's", "until monday", local(berlin, 11, 23, 8, 0), local(berlin, 11, 30, 9, 0)},
		{"monday at 00:30 on a Monday is this morning", "until monday", local(berlin, 11, 23, 0, 30), local(berlin, 11, 23, 9, 0)},
		{"sunday at 00:30 on a Monday is next Sunday", "until sun", local(berlin, 11, 23, 0, 30), local(berlin, 11, 29, 9, 0)},
		{"tuesday on a Monday is tomorrow", "until tuesday", local(berlin, 11, 23, 10, 0), local(berlin, 11, 24, 9, 0)},
		{"a clock time at 00:30 is the next time the clock shows it", "until 9:00", local(berlin, 11, 24, 0, 30), local(berlin, 11, 24, 9, 0)},
		{"over a DST change", "until tomorrow", local(berlin, 3, 29, 1, 30), local(berlin, 3, 29, 9, 0)},
	} {
		got, err := ParsePause(tc.in, tc.now.UTC(), tc.now.Location())
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("%s: ParsePause(%q) at %s = %s, %v; want %s", tc.name, tc.in, tc.now.Format("Mon 2 Jan 15:04 MST"),
				got.In(tc.now.Location()).Format("Mon 2 Jan 15:04 MST"), err, tc.want.Format("Mon 2 Jan 15:04 MST"))
		}
	}
}
