package store

import (
	"context"
	"testing"
	"time"

	"github.com/calstatus/calstatus/internal/engine"
)

// The choices of "/calstatus settings" live in the settings row: saved and read back (alone and
// with the state, as the worker reads them), absent ones the organisation's defaults; the defaults
// delete the row; the Status page's counts are only of off and paused.
func TestSettingsChoicesRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := &Store{users: freshTable(t, "settingstest")}
	now := time.Now().UTC().Truncate(time.Second)
	on, off := true, false
	same := func(a, b *bool) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }
	users := map[string]UserSettings{
		"a0000000000000000000000000": {Only: engine.OnlyCustom},
		"b0000000000000000000000000": {Only: engine.OnlyDND, ShowSubject: &on, Notify: &off},
		"c0000000000000000000000000": {Disabled: true, ShowSubject: &off},
		"d0000000000000000000000000": {PausedUntil: now.Add(time.Hour), Notify: &on},
		"e0000000000000000000000000": {CallsOff: true},
		"f0000000000000000000000000": {RepliesOff: true},
	}
	for id, u := range users {
		if err := s.SaveSettings(ctx, id, u); err != nil {
			t.Fatal(err)
		}
	}
	ids := make([]string, 0, len(users))
	for id := range users {
		ids = append(ids, id)
	}
	states, err := s.LoadStates(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range users {
		got, err := s.LoadSettings(ctx, id)
		if err != nil || got.Disabled != want.Disabled || !got.PausedUntil.Equal(want.PausedUntil) || got.Only != want.Only ||
			!same(got.ShowSubject, want.ShowSubject) || !same(got.Notify, want.Notify) || got.CallsOff != want.CallsOff ||
			got.RepliesOff != want.RepliesOff {
			t.Fatalf("%s: read %+v (%v), want %+v", id, got, err, want)
		}
		e := states[id].Settings
		if e.Only != want.Only || !same(e.ShowSubject, want.ShowSubject) || !same(e.Notify, want.Notify) || e.Disabled != want.Disabled ||
			e.CallsOff != want.CallsOff || e.RepliesOff != want.RepliesOff {
			t.Fatalf("%s: LoadStates gives the engine %+v, want %+v", id, e, want)
		}
	}
	if got, err := s.CountSettings(ctx, now); err != nil || got != (SettingsCounts{Off: 1, Paused: 1}) {
		t.Fatalf("counts %+v (%v), want 1 off, 1 paused", got, err)
	}
	// Back to the defaults ("settings reset" of someone on): the row goes.
	if err := s.SaveSettings(ctx, "a0000000000000000000000000", UserSettings{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LoadStates(ctx, []string{"a0000000000000000000000000"}); len(got) != 0 {
		t.Fatalf("defaults kept a row: %+v", got)
	}
	// A choice reset to the default is absent again (the row is replaced whole).
	if err := s.SaveSettings(ctx, "b0000000000000000000000000", UserSettings{Only: engine.OnlyDND}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LoadSettings(ctx, "b0000000000000000000000000"); got.ShowSubject != nil || got.Notify != nil || got.Only != engine.OnlyDND {
		t.Fatalf("after subject and notify default: %+v", got)
	}
}
