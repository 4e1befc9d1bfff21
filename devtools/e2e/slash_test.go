package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/internal/store"
)

const slashToken = "e2eslashtoken0000000000001" // 26 characters, like Mattermost's

// /calstatus through the local host and the real handler, then cycles against the real Mattermost
// server: a wrong or missing token changes nothing; off, pause and on change what the next cycle
// does for that user.
func TestSlashCommandChangesTheNextCycle(t *testing.T) {
	sc := graphsim.DefaultScenario()
	h := newHarness(t, harnessOptions{scenario: sc, settings: map[string]string{"MATTERMOST_SLASH_TOKEN": slashToken}})
	u := busyForAWhile(t, h, sc)
	ctx := context.Background()
	status := func() string {
		st, _, err := h.mm.GetUserStatus(u.Id, "")
		if err != nil {
			t.Fatal(err)
		}
		return st.Status
	}

	for name, token := range map[string]string{"wrong token": "wrongtoken0000000000000001", "no token": ""} {
		code, text := h.slash(t, token, u.Id, "off")
		settings, err := h.store.LoadSettings(ctx, u.Id)
		if code != http.StatusUnauthorized || err != nil || settings != (store.UserSettings{}) {
			t.Fatalf("%s: %d %q, settings %+v (%v): want 401 and nothing changed", name, code, text, settings, err)
		}
	}

	if code, text := h.slash(t, slashToken, u.Id, "off"); code != http.StatusOK || !strings.Contains(strings.ToLower(text), "off") {
		t.Fatalf("off: %d %q", code, text)
	}
	h.cycle(2 * time.Minute)
	if s := status(); s == model.StatusDnd {
		t.Fatalf("off: the next cycle still set %s", s)
	}

	if code, text := h.slash(t, slashToken, u.Id, "on"); code != http.StatusOK {
		t.Fatalf("on: %d %q", code, text)
	}
	h.cycle(2 * time.Minute)
	if s := status(); s != model.StatusDnd {
		t.Fatalf("on, in a meeting: status %s after the next cycle, want dnd", s)
	}
	_, text := h.slash(t, slashToken, u.Id, "status")
	if !strings.Contains(text, "Do Not Disturb") {
		t.Fatalf("status: %q", text)
	}

	if code, text := h.slash(t, slashToken, u.Id, "pause 2h"); code != http.StatusOK {
		t.Fatalf("pause: %d %q", code, text)
	}
	h.cycle(2 * time.Minute)
	if s := status(); s != model.StatusOnline {
		t.Fatalf("paused: status %s after the next cycle, want the previous status (online) back", s)
	}
	if settings, _ := h.store.LoadSettings(ctx, u.Id); !settings.PausedUntil.After(time.Now().Add(time.Hour)) {
		t.Fatalf("pause not stored: %+v", settings)
	}
}

// busyForAWhile picks a user whose simulated calendar keeps them in a meeting for the next ten
// minutes (and who is online, as the harness leaves everyone).
func busyForAWhile(t *testing.T, h *harness, sc *graphsim.Scenario) *model.User {
	t.Helper()
	now := time.Now()
	for _, u := range h.syncUsers() {
		if wantsDND(sc.StatusAt(u.Email, now)) && !changesWithin(sc, u.Email, now, now.Add(10*time.Minute)) {
			return u
		}
	}
	t.Fatal("no user in a meeting for the next ten minutes")
	return nil
}

// slash posts /calstatus as Mattermost does (a form, the token in it and in the header).
func (h *harness) slash(t *testing.T, token, userID, text string) (int, string) {
	t.Helper()
	form := url.Values{"token": {token}, "user_id": {userID}, "command": {"/calstatus"}, "text": {text},
		"team_id": {"t"}, "channel_id": {"c"}, "user_name": {"someone"}}
	req, err := http.NewRequest(http.MethodPost, h.host.HTTPURL()+"/api/SlashCommand", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if token != "" {
		req.Header.Set("Authorization", "Token "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		ResponseType string `json:"response_type"`
		Text         string `json:"text"`
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &r); err != nil || r.ResponseType != "ephemeral" {
			t.Fatalf("answer %s: want an ephemeral JSON reply", body)
		}
		return resp.StatusCode, r.Text
	}
	return resp.StatusCode, string(body)
}
