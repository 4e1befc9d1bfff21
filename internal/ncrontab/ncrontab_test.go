package ncrontab

import (
	"testing"
	"time"
)

func TestParseNext(t *testing.T) {
	utc := func(s string) time.Time {
		tm, err := time.Parse("2006-01-02 15:04:05", s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	// 2024-05-01 is a Wednesday.
	tests := []struct {
		expr string
		from string
		want []string
	}{
		{"0 */5 * * * *", "2024-05-01 10:02:30", []string{"2024-05-01 10:05:00", "2024-05-01 10:10:00", "2024-05-01 10:15:00"}},
		{"0 */5 * * * *", "2024-05-01 10:05:00", []string{"2024-05-01 10:10:00"}}, // strictly after
		{"0 */5 * * * *", "2024-05-01 23:58:00", []string{"2024-05-02 00:00:00"}},
		{"*/15 * * * * *", "2024-05-01 10:00:50", []string{"2024-05-01 10:01:00", "2024-05-01 10:01:15"}},
		{"0 0 * * * *", "2024-05-01 10:00:00", []string{"2024-05-01 11:00:00"}},
		{"0 30 9 * * MON-FRI", "2024-05-03 10:00:00", []string{"2024-05-06 09:30:00", "2024-05-07 09:30:00"}}, // Fri after 9:30 → Mon
		{"0 30 9 * * 1-5", "2024-05-03 10:00:00", []string{"2024-05-06 09:30:00"}},
		{"0 0 8-10 * * *", "2024-05-01 09:30:00", []string{"2024-05-01 10:00:00", "2024-05-02 08:00:00"}},
		{"0 0 9-17/4 * * *", "2024-05-01 00:00:00", []string{"2024-05-01 09:00:00", "2024-05-01 13:00:00", "2024-05-01 17:00:00", "2024-05-02 09:00:00"}},
		{"0 0,30 12 * * *", "2024-05-01 12:10:00", []string{"2024-05-01 12:30:00", "2024-05-02 12:00:00"}},
		{"0 0 0 1 JAN *", "2024-05-01 00:00:00", []string{"2025-01-01 00:00:00"}},
		{"0 0 0 * * sun", "2024-05-01 00:00:00", []string{"2024-05-05 00:00:00"}},
		{"0 0 0 * * Saturday", "2024-05-01 00:00:00", []string{"2024-05-04 00:00:00"}},
		{"0 0 0 29 2 *", "2024-03-01 00:00:00", []string{"2028-02-29 00:00:00"}},
		// NCrontab: day-of-month AND day-of-week must both match.
		{"0 0 0 13 * FRI", "2024-01-01 00:00:00", []string{"2024-09-13 00:00:00"}},
		{"5/20 * * * * *", "2024-05-01 10:00:00", []string{"2024-05-01 10:00:05", "2024-05-01 10:00:25", "2024-05-01 10:00:45", "2024-05-01 10:01:05"}},
		// five fields: no seconds
		{"*/10 * * * *", "2024-05-01 10:01:00", []string{"2024-05-01 10:10:00"}},
	}
	for _, tt := range tests {
		s, err := Parse(tt.expr)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.expr, err)
			continue
		}
		cur := utc(tt.from)
		for i, w := range tt.want {
			cur = s.Next(cur)
			if !cur.Equal(utc(w)) {
				t.Errorf("%q from %s: occurrence %d = %s, want %s", tt.expr, tt.from, i+1, cur.Format(time.DateTime), w)
				break
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, expr := range []string{
		"", "* * * *", "* * * * * * *", "60 * * * * *", "* 60 * * * *", "* * 24 * * *",
		"* * * 0 * *", "* * * 32 * *", "* * * * 13 *", "* * * * * 7", "* * * * FOO *",
		"*/0 * * * * *", "10-5 * * * * *", "1,,2 * * * * *", "a * * * * *", "/5 * * * * *",
	} {
		if _, err := Parse(expr); err == nil {
			t.Errorf("Parse(%q) = nil error, want error", expr)
		}
	}
}

func TestNextNeverMatches(t *testing.T) {
	s, err := Parse("0 0 0 30 2 *")
	if err != nil {
		t.Fatal(err)
	}
	if n := s.Next(time.Now()); !n.IsZero() {
		t.Fatalf("Feb 30 occurred at %v", n)
	}
}

func TestNextInLocation(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	s, _ := Parse("0 0 9 * * *")
	got := s.Next(time.Date(2024, 5, 1, 10, 0, 0, 0, loc))
	if want := time.Date(2024, 5, 2, 9, 0, 0, 0, loc); !got.Equal(want) || got.Location() != loc {
		t.Fatalf("got %v, want %v", got, want)
	}
}
