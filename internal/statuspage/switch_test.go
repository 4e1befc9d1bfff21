package statuspage

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/calstatus/calstatus/internal/web"
)

type fakeSwitch struct{ on bool }

func (f *fakeSwitch) Paused(context.Context) (bool, error) { return f.on, nil }
func (f *fakeSwitch) SetPaused(_ context.Context, on bool, _ string, _ time.Time) error {
	f.on = on
	return nil
}

func TestThePauseSwitch(t *testing.T) {
	sw := &fakeSwitch{}
	p := &Page{Switch: sw, Now: func() time.Time { return time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC) }}
	url := "https://app.example/api/Status?code=k"
	get := func() string {
		resp, err := p.Serve(context.Background(), nil, web.Request{Method: http.MethodGet, URL: url})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Body
	}
	if body := get(); !strings.Contains(body, `value="pause"`) || strings.Contains(body, "Paused:") {
		t.Fatal("a running sync must offer to pause")
	}
	resp, err := p.Serve(context.Background(), nil, web.Request{Method: http.MethodPost, URL: url, Body: []byte("action=pause")})
	if err != nil || resp.Status != http.StatusSeeOther || resp.Headers["Location"] != url || !sw.on {
		t.Fatalf("pause: %+v (%v), switch on %v", resp, err, sw.on)
	}
	if body := get(); !strings.Contains(body, "Paused:") || !strings.Contains(body, `value="resume"`) {
		t.Fatal("a paused sync must say so and offer to resume")
	}
	json, _ := p.Serve(context.Background(), nil, web.Request{Method: http.MethodGet, URL: url, Query: map[string]string{"format": "json"}})
	if !strings.Contains(json.Body, `"paused": true`) {
		t.Fatalf("JSON: %s", json.Body)
	}
	if _, err := p.Serve(context.Background(), nil, web.Request{Method: http.MethodPost, URL: url, Body: []byte("action=resume")}); err != nil || sw.on {
		t.Fatalf("resume: switch on %v (%v)", sw.on, err)
	}
	// Anything else posted changes nothing.
	_, _ = p.Serve(context.Background(), nil, web.Request{Method: http.MethodPost, URL: url, Body: []byte("action=<script>")})
	if sw.on {
		t.Fatal("an unknown action turned the switch")
	}
}
