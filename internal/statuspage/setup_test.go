package statuspage

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/calstatus/calstatus/internal/queue"
	"github.com/calstatus/calstatus/internal/selfcheck"
)

type fakeSetup struct {
	r     selfcheck.Report
	calls int
}

func (f *fakeSetup) Check(context.Context) selfcheck.Report {
	f.calls++
	return f.r
}

func setupReport(lines ...selfcheck.Line) selfcheck.Report {
	r := selfcheck.Report{CheckedAt: now.Add(-20 * time.Second), OK: true, Lines: lines}
	for _, l := range lines {
		switch l.State {
		case selfcheck.StateProblem:
			r.OK = false
			r.Problems++
		case selfcheck.StateNotChecked:
			r.OK = false
			r.NotChecked++
		}
	}
	return r
}

var (
	okLine      = selfcheck.Line{ID: "key_vault", Title: "Key Vault references", State: "ok", Detail: "every reference resolved"}
	problemLine = selfcheck.Line{ID: "mattermost_token", Title: "Mattermost: token", State: "problem",
		Detail: "Mattermost at https://chat.example.com rejects MATTERMOST_TOKEN (HTTP 401) <script>alert(1)</script>",
		Fix:    "Create an access token for a system admin; token=abc123secret"}
	skippedLine = selfcheck.Line{ID: "mattermost_read", Title: "Mattermost: read statuses", State: "not_checked", Detail: "needs the Mattermost token"}
)

// The Setup section lists each line with its state and fix, collapsed when all pass; a problem leads
// the headline; the JSON carries the same lines; remote text is escaped and redacted.
func TestSetupSection(t *testing.T) {
	p := newPage(history(12), queue.Health{})
	setup := &fakeSetup{r: setupReport(okLine, problemLine, skippedLine)}
	p.Setup = setup
	page := get(t, p, nil).Body
	sec := section(t, page, "setup")
	rows := regexp.MustCompile(`<tr class="([a-z_]+)" id="setup-([a-z_]+)"><td class="state">([^<]+)</td><td class="title">([^<]+)</td><td>(.*?)</td></tr>`).FindAllStringSubmatch(sec, -1)
	if len(rows) != 3 || rows[0][2] != "key_vault" || rows[0][3] != "✓ ok" || rows[1][3] != "✗ problem" || rows[2][3] != "– not checked" ||
		rows[1][4] != "Mattermost: token" || !strings.Contains(rows[1][5], `<div class="fix"><b>Fix:</b> Create an access token for a system admin; token=[redacted]</div>`) ||
		strings.Contains(rows[0][5], "Fix:") {
		t.Fatalf("setup rows %q\n%s", rows, sec)
	}
	if !strings.Contains(sec, "<details open><summary>Setup: <span class=\"bad\">1 problem, 1 not checked</span> of 3 checks") ||
		!strings.Contains(sec, "checked 2026-11-22") || strings.Contains(page, "<script>alert(1)") || strings.Contains(page, "abc123secret") ||
		!strings.Contains(sec, "&lt;script&gt;") {
		t.Fatalf("setup section:\n%s", sec)
	}
	rep := decode(t, get(t, p, map[string]string{"format": "json"}).Body)
	if rep.Setup == nil || rep.Setup.OK || rep.Setup.Problems != 1 || rep.Setup.NotChecked != 1 || len(rep.Setup.Lines) != 3 || rep.Setup.Lines[1].Fix != "Create an access token for a system admin; token=[redacted]" {
		t.Fatalf("JSON setup %+v", rep.Setup)
	}
	if rep.Headline.State != StateAttention || rep.Headline.Text != "Attention: setup: Mattermost: token: "+problemLine.Detail {
		t.Fatalf("headline %+v", rep.Headline)
	}
	var raw map[string]json.RawMessage
	_ = json.Unmarshal([]byte(get(t, p, map[string]string{"format": "json"}).Body), &raw)
	var js map[string]any
	if err := json.Unmarshal(raw["setup"], &js); err != nil || js["checked_at"] == nil || js["checks"] == nil || js["ok"] != false {
		t.Fatalf("JSON setup keys: %s", raw["setup"])
	}

	// Several problems: one finding names them.
	second := problemLine
	second.ID, second.Title, second.Detail = "graph_token", "Microsoft Graph: token", "Entra ID refused the credential: AADSTS7000215"
	setup.r = setupReport(okLine, problemLine, second, skippedLine)
	rep = decode(t, get(t, p, map[string]string{"format": "json"}).Body)
	if rep.Headline.Text != "Attention: setup: 2 problems (Mattermost: token; Microsoft Graph: token): the Setup section says what to do" {
		t.Fatalf("two problems: %+v", rep.Headline)
	}

	// All ok: collapsed, and the headline is the sync's.
	setup.r = setupReport(okLine)
	page = get(t, p, nil).Body
	if sec := section(t, page, "setup"); !strings.Contains(sec, "<details><summary>Setup: all 1 checks pass") {
		t.Fatalf("all ok:\n%s", sec)
	}
	if rep := decode(t, get(t, p, map[string]string{"format": "json"}).Body); rep.Headline.State != StateHealthy || !rep.Setup.OK {
		t.Fatalf("all ok: %+v", rep.Headline)
	}

	// No setup check: no section, and the JSON says null.
	p.Setup = nil
	if page := get(t, p, nil).Body; strings.Contains(page, `id="setup"`) {
		t.Fatal("a setup section without a check")
	}
	if js := get(t, p, map[string]string{"format": "json"}).Body; !strings.Contains(js, `"setup": null`) {
		t.Fatalf("JSON without a check: %s", js)
	}
}

// When calstatus cannot start, the page runs alone: the headline says why, the setup's problems are
// its notes, and the missing sources are not reported as problems of the page.
func TestCannotStartShowsSetup(t *testing.T) {
	p := &Page{Now: func() time.Time { return now }, StartError: "configuration: MATTERMOST_URL is not set",
		Setup: &fakeSetup{r: setupReport(problemLine, skippedLine)}}
	rep := decode(t, get(t, p, map[string]string{"format": "json"}).Body)
	if rep.Headline.State != StateAttention || rep.Headline.Text != "calstatus cannot start, so it syncs nothing: configuration: MATTERMOST_URL is not set" ||
		len(rep.Headline.Notes) != 1 || !strings.HasPrefix(rep.Headline.Notes[0], "Attention: setup: Mattermost: token") ||
		len(rep.Problems) != 0 || rep.StartError == "" {
		t.Fatalf("cannot start: %+v %v", rep.Headline, rep.Problems)
	}
	page := get(t, p, nil).Body
	if !strings.Contains(section(t, page, "setup"), "1 problem, 1 not checked</span> of 2 checks") || !strings.Contains(page, "calstatus cannot start") {
		t.Fatal(page)
	}
	// Nothing else to show: no cards, charts or lists of a sync that does not run.
	for _, id := range []string{"last-cycle", "queue", "consent", "affected", "errors", "cycles", "problems"} {
		if strings.Contains(page, `id="`+id+`"`) {
			t.Errorf("cannot start, yet the page shows %s", id)
		}
	}
}
