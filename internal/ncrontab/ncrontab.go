// Package ncrontab reads the six-field NCRONTAB schedules of Azure Functions timer triggers
// ({second} {minute} {hour} {day} {month} {day-of-week}). The handler uses it to know when the
// timer fires next; the local Functions host uses it to fire timers.
package ncrontab

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule computes the occurrences of a timer trigger schedule.
type Schedule interface {
	// Next returns the first occurrence strictly after t, in t's location.
	// It returns the zero time if there is none (e.g. "0 0 0 30 2 *").
	Next(t time.Time) time.Time
	String() string
}

// Cron is an NCRONTAB expression as the Azure Functions timer
// trigger understands it (NCrontab with seconds):
//
//	{second} {minute} {hour} {day} {month} {day-of-week}
//
// Like the host (CronSchedule.HasSeconds), a five-field expression is also
// accepted and then has no seconds field (second = 0).
//
// NCrontab semantics kept here: day-of-month and day-of-week must BOTH match
// (unlike Vixie cron's OR); day-of-week is 0-6 with 0 = Sunday; names are
// matched on their first three letters, case-insensitively; "a/n" means
// a..max every n.
type Cron struct {
	expr    string
	seconds [60]bool
	minutes [60]bool
	hours   [24]bool
	days    [32]bool // 1..31
	months  [13]bool // 1..12
	dows    [7]bool  // 0..6, Sunday = 0
}

var (
	monthNames = []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}
	dowNames   = []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}
)

type cronField struct {
	label    string
	min, max int
	names    []string // names[i] is value min+i
}

// Parse parses a six-field (or five-field) NCRONTAB expression.
func Parse(expr string) (Schedule, error) {
	fields := strings.Fields(expr)
	if len(fields) != 6 && len(fields) != 5 {
		return nil, fmt.Errorf("invalid NCRONTAB expression %q: want 6 fields {second} {minute} {hour} {day} {month} {day-of-week}, got %d", expr, len(fields))
	}
	s := &Cron{expr: strings.Join(fields, " ")}
	if len(fields) == 5 {
		fields = append([]string{"0"}, fields...)
	}
	specs := []struct {
		f   cronField
		set []bool
	}{
		{cronField{"second", 0, 59, nil}, s.seconds[:]},
		{cronField{"minute", 0, 59, nil}, s.minutes[:]},
		{cronField{"hour", 0, 23, nil}, s.hours[:]},
		{cronField{"day", 1, 31, nil}, s.days[:]},
		{cronField{"month", 1, 12, monthNames}, s.months[:]},
		{cronField{"day-of-week", 0, 6, dowNames}, s.dows[:]},
	}
	for i, sp := range specs {
		if err := parseCronField(fields[i], sp.f, sp.set); err != nil {
			return nil, fmt.Errorf("invalid NCRONTAB expression %q: %w", expr, err)
		}
	}
	return s, nil
}

func parseCronField(text string, f cronField, set []bool) error {
	for _, part := range strings.Split(text, ",") {
		if part == "" {
			return fmt.Errorf("%s field %q: empty list element", f.label, text)
		}
		every := 1
		if i := strings.IndexByte(part, '/'); i >= 0 {
			n, err := strconv.Atoi(part[i+1:])
			if err != nil || n <= 0 {
				return fmt.Errorf("%s field %q: invalid step %q", f.label, text, part[i+1:])
			}
			every = n
			part = part[:i]
			if part == "" {
				return fmt.Errorf("%s field %q: step without a start", f.label, text)
			}
		}
		var first, last int
		switch {
		case part == "*":
			first, last = f.min, f.max
		case strings.IndexByte(part[1:], '-') >= 0:
			i := strings.IndexByte(part[1:], '-') + 1
			a, err := parseCronValue(part[:i], f)
			if err != nil {
				return err
			}
			b, err := parseCronValue(part[i+1:], f)
			if err != nil {
				return err
			}
			if a > b {
				return fmt.Errorf("%s field %q: range %d-%d is reversed", f.label, text, a, b)
			}
			first, last = a, b
		default:
			v, err := parseCronValue(part, f)
			if err != nil {
				return err
			}
			first, last = v, v
			if every > 1 {
				last = f.max
			}
		}
		for v := first; v <= last; v += every {
			set[v] = true
		}
	}
	return nil
}

func parseCronValue(s string, f cronField) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("%s field: missing value", f.label)
	}
	if s[0] >= '0' && s[0] <= '9' {
		v, err := strconv.Atoi(s)
		if err != nil || v < f.min || v > f.max {
			return 0, fmt.Errorf("%s field: %q is not a valid value; it must be between %d and %d", f.label, s, f.min, f.max)
		}
		return v, nil
	}
	if f.names != nil && len(s) >= 3 {
		for i, n := range f.names {
			if strings.EqualFold(s[:3], n) {
				return f.min + i, nil
			}
		}
	}
	return 0, fmt.Errorf("%s field: %q is not a valid value", f.label, s)
}

func (s *Cron) String() string { return s.expr }

// Next returns the first occurrence strictly after t (in t's location).
func (s *Cron) Next(t time.Time) time.Time {
	loc := t.Location()
	start := t.Truncate(time.Second).Add(time.Second)
	y, mo, d := start.Date()
	h0, m0, s0 := start.Clock()
	// Search at most ~5 years ahead (covers Feb 29 schedules).
	for i := 0; i <= 366*5; i++ {
		// Noon avoids DST gaps at midnight when computing the date.
		yy, mm, dd := time.Date(y, mo, d+i, 12, 0, 0, 0, loc).Date()
		if !s.months[mm] || !s.days[dd] {
			continue
		}
		if !s.dows[time.Date(yy, mm, dd, 12, 0, 0, 0, loc).Weekday()] {
			continue
		}
		sh, sm, ss := 0, 0, 0
		if i == 0 {
			sh, sm, ss = h0, m0, s0
		}
		if hh, mi, se, ok := s.firstTimeOfDay(sh, sm, ss); ok {
			n := time.Date(yy, mm, dd, hh, mi, se, 0, loc)
			if !n.After(t) { // DST normalisation moved it back; try later
				continue
			}
			return n
		}
	}
	return time.Time{}
}

func (s *Cron) firstTimeOfDay(h0, m0, s0 int) (int, int, int, bool) {
	for h := h0; h < 24; h++ {
		if !s.hours[h] {
			continue
		}
		ms := 0
		if h == h0 {
			ms = m0
		}
		for m := ms; m < 60; m++ {
			if !s.minutes[m] {
				continue
			}
			ss := 0
			if h == h0 && m == m0 {
				ss = s0
			}
			for sec := ss; sec < 60; sec++ {
				if s.seconds[sec] {
					return h, m, sec, true
				}
			}
		}
	}
	return 0, 0, 0, false
}
