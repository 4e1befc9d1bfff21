package funchost

import (
	"fmt"
	"strings"
	"time"

	"github.com/calstatus/calstatus/internal/ncrontab"
)

// Schedule computes the occurrences of a timer trigger schedule.
type Schedule = ncrontab.Schedule

// ParseNCRONTAB parses a six-field (or five-field) NCRONTAB expression.
func ParseNCRONTAB(expr string) (Schedule, error) { return ncrontab.Parse(expr) }

// intervalSchedule is a TimeSpan schedule ("00:05:00"), which the host
// accepts on App Service plans: the next occurrence is now + interval.
type intervalSchedule struct {
	expr     string
	interval time.Duration
}

func (s *intervalSchedule) Next(t time.Time) time.Time { return t.Add(s.interval) }
func (s *intervalSchedule) String() string             { return s.expr }

// parseTimerSchedule accepts what the timer trigger's "schedule" accepts:
// an NCRONTAB expression or a TimeSpan.
func parseTimerSchedule(expr string) (Schedule, error) {
	expr = strings.TrimSpace(expr)
	if !strings.Contains(expr, " ") && strings.Contains(expr, ":") {
		d, err := ParseTimeSpan(expr)
		if err != nil {
			return nil, err
		}
		if d <= 0 {
			return nil, fmt.Errorf("invalid timer schedule %q: interval must be positive", expr)
		}
		return &intervalSchedule{expr: expr, interval: d}, nil
	}
	return ParseNCRONTAB(expr)
}
