package funchost

import (
	"testing"
	"time"
)

func TestTimerScheduleTimeSpan(t *testing.T) {
	s, err := parseTimerSchedule("00:00:30")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if got := s.Next(now); got.Sub(now) != 30*time.Second {
		t.Fatalf("interval schedule next = %v", got.Sub(now))
	}
}
