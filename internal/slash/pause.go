package slash

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// MaxPause is the longest pause; longer is "off".
const MaxPause = 31 * 24 * time.Hour

// MorningHour is when "until tomorrow" (or a weekday) ends a pause, in the user's time zone.
const MorningHour = 9

// NightEnds is the hour (in the user's time zone) before which "tomorrow" and weekdays still count
// from the day before: someone typing "until tomorrow" at 00:30 has not slept yet and means the
// coming morning — the same calendar date — not the one a day later.
const NightEnds = 4

var (
	clockRe  = regexp.MustCompile(`^(\d{1,2})(?::(\d{2}))?\s*(am|pm)?$`)
	amountRe = regexp.MustCompile(`^(\d+)\s*(d|day|days|h|hr|hrs|hour|hours|m|min|mins|minute|minutes)$`)
)

var weekdays = map[string]time.Weekday{}

func init() {
	for d := time.Sunday; d <= time.Saturday; d++ {
		name := strings.ToLower(d.String())
		weekdays[name], weekdays[name[:3]] = d, d
	}
}

// ParsePause reads how long to pause, as typed after "/calstatus pause", and returns when the pause
// ends. loc is the user's time zone. It takes:
//   - a Go duration: "30m", "2h", "1h30m"; or a number of days, hours or minutes: "1d", "2 hours";
//   - "until tomorrow" (or "tomorrow"): the next day at 9:00;
//   - "until monday" (a weekday, also "mon"): that day's next occurrence after today, at 9:00 (on
//     a Monday, next week's);
//   - "until 14:00", "until 9", "until 5pm", "until 5:30pm": the next time the clock shows it.
//
// Between midnight and NightEnds (4:00) the night still belongs to the day before: "tomorrow" is
// the same calendar date at 9:00, and weekdays count from yesterday (at 00:30 on a Tuesday, "until
// tuesday" is that morning, "until monday" is six days later).
//
// A leading "for" is ignored. The pause must last at least a minute and at most MaxPause.
func ParsePause(s string, now time.Time, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = time.UTC
	}
	s = strings.ToLower(strings.Join(strings.Fields(s), " "))
	s = strings.TrimPrefix(s, "for ")
	if s == "" {
		return time.Time{}, errors.New("say for how long")
	}
	local := now.In(loc)
	at := func(days, hour, minute int) time.Time {
		y, m, d := local.Date()
		return time.Date(y, m, d+days, hour, minute, 0, 0, loc)
	}
	// today is the day the user is living: before NightEnds, still yesterday.
	today, weekday := 0, local.Weekday()
	if local.Hour() < NightEnds {
		today, weekday = -1, (weekday+6)%7
	}
	var until time.Time
	if rest, ok := strings.CutPrefix(s, "until "); ok || s == "tomorrow" {
		if !ok {
			rest = s
		}
		wd, isDay := weekdays[rest]
		switch {
		case rest == "tomorrow":
			until = at(today+1, MorningHour, 0)
		case isDay:
			days := (int(wd) - int(weekday) + 7) % 7
			if days == 0 {
				days = 7 // the same weekday: next week's, not now
			}
			until = at(today+days, MorningHour, 0)
		default:
			m := clockRe.FindStringSubmatch(rest)
			if m == nil {
				return time.Time{}, errors.New("not a time, a weekday or tomorrow")
			}
			hour, _ := strconv.Atoi(m[1])
			minute, _ := strconv.Atoi(m[2])
			switch {
			case m[3] != "" && (hour < 1 || hour > 12):
				return time.Time{}, errors.New("not a time")
			case m[3] == "am" && hour == 12:
				hour = 0
			case m[3] == "pm" && hour < 12:
				hour += 12
			}
			if hour > 23 || minute > 59 {
				return time.Time{}, errors.New("not a time")
			}
			until = at(0, hour, minute)
			if !until.After(now) {
				until = at(1, hour, minute)
			}
		}
	} else {
		d, err := duration(s)
		if err != nil {
			return time.Time{}, err
		}
		until = now.Add(d)
	}
	switch {
	case !until.After(now):
		return time.Time{}, errors.New("that is not in the future")
	case until.Sub(now) < time.Minute: // found by fuzzing: "1us" ended at now once truncated
		return time.Time{}, errors.New("a pause lasts at least a minute")
	case until.Sub(now) > MaxPause:
		return time.Time{}, fmt.Errorf("that is longer than %d days (use off, then on)", int(MaxPause/(24*time.Hour)))
	}
	return until.Truncate(time.Second), nil
}

func duration(s string) (time.Duration, error) {
	if m := amountRe.FindStringSubmatch(s); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil || n > 10000 {
			return 0, errors.New("too long")
		}
		unit := time.Minute
		switch m[2][0] {
		case 'd':
			unit = 24 * time.Hour
		case 'h':
			unit = time.Hour
		}
		return time.Duration(n) * unit, nil
	}
	d, err := time.ParseDuration(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		return 0, errors.New("not a duration")
	}
	if d <= 0 {
		return 0, errors.New("that is not in the future")
	}
	return d, nil
}
