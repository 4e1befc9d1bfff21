package statuspage

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/calstatus/calstatus/internal/store"
	"github.com/calstatus/calstatus/internal/web"
)

// fakeSwitch is the stored pause switch; writes counts the calls that would write to storage.
type fakeSwitch struct {
	sw     store.PauseSwitch
	writes int
}

func (f *fakeSwitch) PauseSwitch(context.Context) (store.PauseSwitch, error) { return f.sw, nil }
func (f *fakeSwitch) Pause(_ context.Context, by string, at time.Time) error {
	f.writes++
	f.sw = store.PauseSwitch{On: true, By: by, At: at}
	return nil
}
func (f *fakeSwitch) ClearPauseSwitch(context.Context) error {
	f.writes++
	f.sw = store.PauseSwitch{}
	return nil
}

const switchURL = "https://app.example/api/Status?code=k"

func serveSwitch(t *testing.T, p *Page, r web.Request) web.Response {
	t.Helper()
	if r.URL == "" {
		r.URL = switchURL
	}
	resp, err := p.Serve(context.Background(), nil, r)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestThePauseSwitch(t *testing.T) {
	sw := &fakeSwitch{}
	pausedAt := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	now := pausedAt
	p := &Page{Switch: sw, Now: func() time.Time { return now }}
	get := func() string { return serveSwitch(t, p, web.Request{Method: http.MethodGet}).Body }
	if body := get(); !strings.Contains(body, `value="pause"`) || strings.Contains(body, "Paused") {
		t.Fatal("a running sync must offer to pause")
	}

	// Paused by an App Service user: who and when are stored, never shown.
	resp := serveSwitch(t, p, web.Request{Method: http.MethodPost, Body: []byte("action=pause"), Caller: "admin@contoso.example"})
	if resp.Status != http.StatusSeeOther || resp.Headers["Location"] != switchURL || !sw.sw.On {
		t.Fatalf("pause: %+v, switch %+v", resp, sw.sw)
	}
	if sw.sw.By != "admin@contoso.example" || !sw.sw.At.Equal(pausedAt) {
		t.Fatalf("pause recorded %+v, want by admin@contoso.example at %v", sw.sw, pausedAt)
	}
	now = pausedAt.Add(15 * time.Minute)
	body := get()
	if !strings.Contains(body, "Paused from this page since 2026-11-22 10:00:00 UTC (15 min ago)") || !strings.Contains(body, `value="resume"`) {
		t.Fatalf("a sync paused from the page must say since when and offer to resume:\n%s", body)
	}
	json := serveSwitch(t, p, web.Request{Method: http.MethodGet, Query: map[string]string{"format": "json"}}).Body
	if !strings.Contains(json, `"paused": true`) || !strings.Contains(json, `"paused_from_page": true`) ||
		!strings.Contains(json, `"paused_since": "2026-11-22T10:00:00Z"`) || !strings.Contains(json, `"paused_by_setting": false`) {
		t.Fatalf("JSON: %s", json)
	}
	if strings.Contains(body, "admin@contoso.example") || strings.Contains(json, "admin@contoso.example") {
		t.Fatal("the page shows who paused")
	}

	// Resumed: the record of who paused and when is gone.
	serveSwitch(t, p, web.Request{Method: http.MethodPost, Body: []byte("action=resume"), Caller: "admin@contoso.example"})
	if sw.sw != (store.PauseSwitch{}) {
		t.Fatalf("resume left %+v", sw.sw)
	}
	// A caller the platform does not name paused with the function key.
	serveSwitch(t, p, web.Request{Method: http.MethodPost, Body: []byte("action=pause")})
	if sw.sw.By != "function key" {
		t.Fatalf("anonymous pause recorded by %q", sw.sw.By)
	}
	serveSwitch(t, p, web.Request{Method: http.MethodPost, Body: []byte("action=resume")})
	// Anything else posted changes nothing.
	writes := sw.writes
	serveSwitch(t, p, web.Request{Method: http.MethodPost, Body: []byte("action=<script>")})
	if sw.sw.On || sw.writes != writes {
		t.Fatal("an unknown action turned the switch")
	}
}

// With SYNC_PAUSED on, the page says the setting paused the sync and how to resume, and neither
// offers nor accepts the switch: a Resume would write to storage and change nothing.
func TestSyncPausedSettingOffersNoResume(t *testing.T) {
	for name, stored := range map[string]store.PauseSwitch{
		"switch off": {},
		"switch on":  {On: true, By: "admin@contoso.example", At: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)},
	} {
		t.Run(name, func(t *testing.T) {
			sw := &fakeSwitch{sw: stored}
			p := &Page{Switch: sw, SyncPaused: true, Now: func() time.Time { return time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC) }}
			body := serveSwitch(t, p, web.Request{Method: http.MethodGet}).Body
			if !strings.Contains(body, `id="headline">Paused by the SYNC_PAUSED app setting`) ||
				!strings.Contains(body, "Function App's configuration") || !strings.Contains(body, "local.settings.json") {
				t.Fatalf("the page must say SYNC_PAUSED paused the sync and how to resume:\n%s", body)
			}
			if strings.Contains(body, "<button") {
				t.Fatalf("the page offers the switch while SYNC_PAUSED is on:\n%s", body)
			}
			if stored.On && !strings.Contains(body, "pause switch is on too since 2026-11-22 09:00:00 UTC") {
				t.Fatalf("the switch, on too, must be mentioned:\n%s", body)
			}
			if strings.Contains(body, "admin@contoso.example") {
				t.Fatal("the page shows who paused")
			}
			for _, action := range []string{"resume", "pause"} {
				resp := serveSwitch(t, p, web.Request{Method: http.MethodPost, Body: []byte("action=" + action), Caller: "admin@contoso.example"})
				if resp.Status != http.StatusConflict || !strings.Contains(resp.Body, "paused by the SYNC_PAUSED app setting") ||
					!strings.Contains(resp.Body, "nothing was changed") {
					t.Fatalf("%s: %d %q", action, resp.Status, resp.Body)
				}
			}
			if sw.writes != 0 || sw.sw != stored {
				t.Fatalf("the switch was written while SYNC_PAUSED is on: %d writes, %+v", sw.writes, sw.sw)
			}
		})
	}
}
