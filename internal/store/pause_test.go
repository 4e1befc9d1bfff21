package store

import (
	"context"
	"testing"
	"time"
)

func TestPauseSwitchRecordsWhoAndWhenUntilCleared(t *testing.T) {
	s := appStore(t)
	ctx := context.Background()
	if sw, err := s.PauseSwitch(ctx); err != nil || sw != (PauseSwitch{}) {
		t.Fatalf("never turned: %+v (%v)", sw, err)
	}
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	if err := s.Pause(ctx, `function key "default"`, at); err != nil {
		t.Fatal(err)
	}
	sw, err := s.PauseSwitch(ctx)
	if err != nil || !sw.On || sw.By != `function key "default"` || !sw.At.Equal(at) {
		t.Fatalf("after pausing: %+v (%v)", sw, err)
	}
	for range 2 { // clearing twice is fine
		if err := s.ClearPauseSwitch(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if sw, err := s.PauseSwitch(ctx); err != nil || sw != (PauseSwitch{}) {
		t.Fatalf("after clearing: %+v (%v)", sw, err)
	}
}
