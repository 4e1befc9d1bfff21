package consent_test

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/calstatus/calstatus/internal/config"
	"github.com/calstatus/calstatus/internal/consent"
)

var update = flag.Bool("update", false, "rewrite testdata/pages from the pages as they are now")

// states hides what differs between two loads of the same page: the single-use state.
var states = regexp.MustCompile(`state=[A-Za-z0-9_.-]+`)

// pages renders the consent pages a visit goes through: the page before any consent, Microsoft's
// answer with the check failing, then succeeding, and the page after it.
func pages(t *testing.T, permissions []string, presence consent.PresenceOutcome) map[string]string {
	t.Helper()
	e := newEnv()
	e.h.Permissions = permissions
	out := map[string]string{}
	first := e.page(t, nil)
	out["page"] = first.Body
	out["consent-url"] = consentLink(t, first).String()
	e.prober.res = consent.ProbeResult{Outcome: consent.ProbeNoPermission, Detail: "Graph refused to read the calendar (no_access)", Presence: presence}
	out["callback-received"] = e.callback(t, success(consentLink(t, first).Query().Get("state"))).Body
	e.clock.t = e.clock.t.Add(time.Minute)
	e.prober.res = consent.ProbeResult{Outcome: consent.ProbeOK, Presence: presence}
	out["callback-granted"] = e.callback(t, success(e.freshState(t))).Body
	e.clock.t = e.clock.t.Add(time.Minute)
	out["page-checked"] = e.page(t, map[string]string{"check": "1"}).Body
	for k, v := range out {
		out[k] = states.ReplaceAllString(v, "state=STATE")
	}
	e.checkSafe(t)
	return out
}

// With PRESENCE_SYNC and AUTOMATIC_REPLIES_SYNC off the pages and the link to Microsoft are
// exactly what they were before those settings existed (testdata/pages, written before them).
func TestPagesWithoutPresenceAreUnchanged(t *testing.T) {
	dir := filepath.Join("testdata", "pages")
	for _, permissions := range [][]string{nil, config.Config{}.GraphPermissions()} {
		for name, body := range pages(t, permissions, "") {
			path := filepath.Join(dir, name+".html")
			if *update && permissions == nil {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if body != string(want) {
				t.Errorf("permissions %q: %s differs from %s:\n%s", permissions, name, path, body)
			}
		}
	}
}

// With a presence setting on, the page lists the two extra permissions and what each is for,
// says what calstatus then writes, and the link to Microsoft stays the same: consent grants what
// the app registration asks for.
func TestPageListsThePresencePermissions(t *testing.T) {
	on := config.Config{PresenceSync: true}.GraphPermissions()
	got := pages(t, on, consent.PresenceNotGranted)
	off := pages(t, nil, "")
	page := got["page"]
	for _, s := range []string{
		"<li><strong>Calendars.ReadBasic.All</strong>: calendars' basic event details",
		"<li><strong>Presence.Read.All</strong>: Teams presence — availability and activity (in a call, presenting), and the out-of-office settings with the automatic-reply text.</li>",
		"<li><strong>User.Read.All</strong>: finds each user's Microsoft Entra object id, which presence is keyed by, from their email.",
		"<code>PRESENCE_SYNC</code>", "<code>AUTOMATIC_REPLIES_SYNC</code>", "getPresencesByUserId",
		"Without them calendar sync carries on.",
		"Automatic replies a user set in Mattermost themselves are left alone.",
	} {
		if !strings.Contains(page, s) {
			t.Errorf("the page lacks %q:\n%s", s, page)
		}
	}
	if strings.Contains(page, "It uses one application permission") || strings.Contains(off["page"], "Presence.Read.All") {
		t.Error("the page names one permission with three, or presence with none")
	}
	if got["consent-url"] != off["consent-url"] {
		t.Errorf("the consent link changed: %s, was %s", got["consent-url"], off["consent-url"])
	}
	// The check's presence line: its own, and calendar sync goes on.
	for _, name := range []string{"callback-received", "callback-granted"} {
		if !strings.Contains(got[name], "Teams presence: not granted — calendar sync carries on.") {
			t.Errorf("%s does not say presence is not granted:\n%s", name, got[name])
		}
	}
	if !strings.Contains(got["callback-granted"], "Admin consent granted") {
		t.Errorf("presence not granted withheld the calendar consent:\n%s", got["callback-granted"])
	}
	if !strings.Contains(got["page-checked"], "Graph access works.") || !strings.Contains(got["page-checked"], "<p>Teams presence: not granted") {
		t.Errorf("the checked page:\n%s", got["page-checked"])
	}
	if granted := pages(t, on, consent.PresenceGranted); !strings.Contains(granted["callback-granted"], "Teams presence: granted") {
		t.Errorf("presence granted:\n%s", granted["callback-granted"])
	}
}

// The check's log line carries presence and Graph's answer (the page shows only the outcome).
func TestCheckLogsPresence(t *testing.T) {
	e := newEnv()
	e.prober.res = consent.ProbeResult{Outcome: consent.ProbeOK, Presence: consent.PresenceNotGranted, PresenceDetail: "Graph refused to read Teams presence (no_access)"}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	if _, err := e.h.Page(context.Background(), log, request(consent.PagePath, map[string]string{"check": "1"}, "")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"probe":"ok","detail":"","presence":"not_granted","presence_detail":"Graph refused to read Teams presence (no_access)"`) {
		t.Errorf("log: %s", buf.String())
	}
	buf.Reset()
	e.clock.t = e.clock.t.Add(time.Minute)
	e.prober.res = consent.ProbeResult{Outcome: consent.ProbeOK}
	if _, err := e.h.Page(context.Background(), log, request(consent.PagePath, map[string]string{"check": "1"}, "")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "Graph access checked") || strings.Contains(buf.String(), "presence") {
		t.Errorf("presence off, log: %s", buf.String())
	}
}
