package e2e

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/calstatus/calstatus/devtools/browser"
	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/handler"
	"github.com/calstatus/calstatus/internal/selfcheck"
)

// A well-formed Application Insights connection string (nothing is sent: the local host has no
// telemetry), so the line checks its shape.
const appInsightsSetting = "InstrumentationKey=0f4e2d1c-5b6a-4978-8a6b-5c4d3e2f1a09;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/;LiveEndpoint=https://westeurope.livediagnostics.monitor.azure.com/"

// unresolvedReference is what App Service leaves in a setting whose Key Vault reference failed.
const unresolvedReference = "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/x)"

// setupRow is one line of the Setup section as the browser shows it.
type setupRow struct{ state, id, title, text string }

var setupRowRE = regexp.MustCompile(`(?s)<tr class="([a-z_]+)" id="setup-([a-z_]+)"><td class="state">[^<]*</td><td class="title">([^<]*)</td><td>(.*?)</td></tr>`)
var tagRE = regexp.MustCompile(`<[^>]+>`)

// setupRows reads the Setup section's lines from the page the browser loaded.
func setupRows(t *testing.T, p browser.Page) map[string]setupRow {
	t.Helper()
	rows := map[string]setupRow{}
	for _, m := range setupRowRE.FindAllStringSubmatch(p.HTML, -1) {
		rows[m[2]] = setupRow{state: m[1], id: m[2], title: html.UnescapeString(m[3]), text: html.UnescapeString(tagRE.ReplaceAllString(m[4], " "))}
	}
	if len(rows) != 13 {
		t.Fatalf("the Setup section has %d lines, want 13:\n%s", len(rows), p.Text)
	}
	return rows
}

// wantRow asserts a line's state and what it says.
func wantRow(t *testing.T, rows map[string]setupRow, id, state string, says ...string) {
	t.Helper()
	r := rows[id]
	if r.state != state {
		t.Errorf("setup line %s (%s) is %s, want %s: %s", id, r.title, r.state, state, r.text)
		return
	}
	for _, s := range says {
		if !strings.Contains(r.text, s) {
			t.Errorf("setup line %s (%s) does not say %q: %s", id, r.title, s, r.text)
		}
	}
}

// statusReport is what the tests read of the Status page's JSON.
type statusReport struct {
	Headline struct{ State, Text string } `json:"headline"`
	Setup    *selfcheck.Report            `json:"setup"`
}

// statusJSON fetches the Status page's JSON.
func statusJSON(t *testing.T, api string) (string, statusReport) {
	t.Helper()
	resp, err := http.Get(api + "Status?format=json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var rep statusReport
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &rep) != nil || rep.Setup == nil {
		t.Fatalf("Status?format=json: %d %s", resp.StatusCode, body)
	}
	return string(body), rep
}

// noSecrets fails when the Status page (HTML as the browser has it, and JSON) shows any of secrets.
func noSecrets(t *testing.T, p browser.Page, js string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && (strings.Contains(p.HTML, s) || strings.Contains(js, s)) {
			t.Errorf("the Status page shows a secret or a setting's value (%.12s…)", s)
		}
	}
}

// The Status page's Setup section, in a real browser, on the real handler through the local
// Functions host, with faults injected through the app settings: each line is ok in a healthy
// run; an unresolved Key Vault reference, a wrong Graph client secret and a wrong Mattermost token
// each show on their line with the fix (and the lines that need them say not checked); and when
// calstatus cannot start in Azure (its certificate's Key Vault reference unresolved) the page still
// runs, alone, and says why. No page shows a secret or a setting's value.
func TestSelfCheckInABrowser(t *testing.T) {
	t.Run("healthy", func(t *testing.T) {
		h := newHarness(t, harnessOptions{scenario: graphsim.DefaultScenario(),
			settings: map[string]string{"APPLICATIONINSIGHTS_CONNECTION_STRING": appInsightsSetting}})
		api := h.host.HTTPURL() + "/api/"
		b := browser.Start(t, screenshots(t))
		p := b.Open(api + "Status")
		if !strings.Contains(p.Text, "Setup: all 13 checks pass") {
			t.Fatalf("healthy: %s", p)
		}
		p = b.Click("#setup summary") // collapsed when all pass: open it for the screenshot
		b.Screenshot("status-setup-ok")
		rows := setupRows(t, p)
		for id, r := range rows {
			if r.state != selfcheck.StateOK {
				t.Errorf("healthy: %s (%s) is %s: %s", id, r.title, r.state, r.text)
			}
		}
		wantRow(t, rows, selfcheck.CheckKeyVault, "ok", "every reference resolved")
		wantRow(t, rows, selfcheck.CheckBlob, "ok", "azure-webjobs-hosts", "devstoreaccount1")
		wantRow(t, rows, selfcheck.CheckQueues, "ok", "sync-shards and sync-shards-poison")
		wantRow(t, rows, selfcheck.CheckTables, "ok", "calstatususers, calstatuscycles and calstatussettings")
		wantRow(t, rows, selfcheck.CheckGraphToken, "ok", "client secret", "Calendars.ReadBasic.All")
		wantRow(t, rows, selfcheck.CheckGraphPermission, "ok", "getSchedule")
		wantRow(t, rows, selfcheck.CheckMattermostToken, "ok", "system_admin")
		wantRow(t, rows, selfcheck.CheckMattermostWrite, "ok", "edit_other_users")
		wantRow(t, rows, selfcheck.CheckMattermostCounts, "ok", "active users")
		wantRow(t, rows, selfcheck.CheckAppInsights, "ok", "westeurope-5.in.applicationinsights.azure.com")
		wantRow(t, rows, selfcheck.CheckSchedule, "ok", "0 */5 * * * *: next run", "then every 5 minutes")
		for _, line := range []string{"✓ ok\tKey Vault references", "✓ ok\tMicrosoft Graph: permission", "✓ ok\tMattermost: set statuses"} {
			if !strings.Contains(p.Text, line) {
				t.Errorf("the open section does not show %q:\n%s", line, p.Text)
			}
		}
		js, rep := statusJSON(t, api)
		if !rep.Setup.OK || len(rep.Setup.Lines) != 13 || rep.Headline.State == "attention" {
			t.Fatalf("healthy JSON: %s", js)
		}
		noSecrets(t, p, js, h.sim.ClientSecret(), h.env.MattermostToken, "AccountKey=", "0f4e2d1c-5b6a")
	})

	t.Run("faults", func(t *testing.T) {
		const wrongSecret, wrongToken = "wrong-graph-secret~0123456789", "wrongtoken0123456789abcdef"
		h := newHarness(t, harnessOptions{scenario: graphsim.DefaultScenario(), settings: map[string]string{
			"APPLICATIONINSIGHTS_CONNECTION_STRING": appInsightsSetting,
			"MATTERMOST_SLASH_TOKEN":                unresolvedReference,
			"AZURE_CLIENT_SECRET":                   wrongSecret,
			"MATTERMOST_TOKEN":                      wrongToken,
			// This host must not take (and fail) other tests' shards.
			"AzureWebJobs." + handler.SyncShardFunction + ".Disabled": "true",
		}})
		api := h.host.HTTPURL() + "/api/"
		b := browser.Start(t, screenshots(t))
		p := b.Open(api + "Status")
		b.Screenshot("status-setup-faults")
		if !strings.Contains(p.Text, "Setup: 4 problems, 4 not checked of 13 checks") ||
			!strings.Contains(p.Text, "Attention: setup: 4 problems (Key Vault references; Settings; Microsoft Graph: token; Mattermost: token)") {
			t.Fatalf("faults: %s", p.Text)
		}
		rows := setupRows(t, p)
		wantRow(t, rows, selfcheck.CheckSettings, "problem", "a part of calstatus is off: MATTERMOST_SLASH_TOKEN",
			"MATTERMOST_SLASH_TOKEN still reads a Key Vault reference: see Key Vault references")
		wantRow(t, rows, selfcheck.CheckKeyVault, "problem", "MATTERMOST_SLASH_TOKEN setting still reads @Microsoft.KeyVault(…)",
			"Key Vault Secrets User", "secret's name or version", "firewall", "restart the function app")
		wantRow(t, rows, selfcheck.CheckGraphToken, "problem", "AADSTS7000215: Invalid client secret provided.",
			"copy the secret's Value (not its Secret ID)", "AZURE_CLIENT_SECRET")
		wantRow(t, rows, selfcheck.CheckGraphPermission, "not_checked", "needs a Graph token")
		wantRow(t, rows, selfcheck.CheckMattermostToken, "problem", "rejects MATTERMOST_TOKEN (HTTP 401",
			"Personal Access Tokens", "bot account given the system_admin role", "restart the function app")
		for _, id := range []string{selfcheck.CheckMattermostRead, selfcheck.CheckMattermostWrite, selfcheck.CheckMattermostCounts} {
			wantRow(t, rows, id, "not_checked", "needs the Mattermost token")
		}
		for _, id := range []string{selfcheck.CheckBlob, selfcheck.CheckQueues, selfcheck.CheckTables, selfcheck.CheckAppInsights, selfcheck.CheckSchedule} {
			wantRow(t, rows, id, "ok")
		}
		// Open when something is wrong: the fixes are on screen.
		if !strings.Contains(p.Text, "✗ problem\tMicrosoft Graph: token") || !strings.Contains(p.Text, "Fix: AZURE_CLIENT_SECRET is not a secret of") {
			t.Errorf("the section is not open on its problems:\n%s", p.Text)
		}
		js, rep := statusJSON(t, api)
		if rep.Setup.OK || rep.Setup.Problems != 4 || rep.Setup.NotChecked != 4 || rep.Headline.State != "attention" ||
			rep.Setup.Line(selfcheck.CheckGraphToken).Fix == "" {
			t.Fatalf("faults JSON: %s", js)
		}
		noSecrets(t, p, js, wrongSecret, wrongToken, h.sim.ClientSecret(), h.env.MattermostToken, "kv.vault.azure.net", "secrets/x")
	})

	t.Run("cannot start", func(t *testing.T) {
		cert := "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/calstatus-cert/0123abcd)"
		h := newHarness(t, harnessOptions{scenario: graphsim.DefaultScenario(), settings: map[string]string{
			"WEBSITE_INSTANCE_ID":                                     "e2e-instance", // as in Azure, where calstatus then serves the Status page alone
			"APPLICATIONINSIGHTS_CONNECTION_STRING":                   appInsightsSetting,
			"AZURE_CLIENT_SECRET":                                     "",
			"AZURE_CLIENT_CERTIFICATE":                                cert,
			"AzureWebJobs." + handler.SyncShardFunction + ".Disabled": "true",
		}})
		api := h.host.HTTPURL() + "/api/"
		b := browser.Start(t, screenshots(t))
		p := b.Open(api + "Status")
		b.Screenshot("status-setup-cannot-start")
		if !strings.Contains(p.Text, "calstatus cannot start, so it syncs nothing: graph: AZURE_CLIENT_CERTIFICATE is neither PEM nor base64 PKCS#12") {
			t.Fatalf("cannot start: %s", p.Text)
		}
		rows := setupRows(t, p)
		wantRow(t, rows, selfcheck.CheckKeyVault, "problem", "AZURE_CLIENT_CERTIFICATE setting still reads @Microsoft.KeyVault(…)", "Key Vault Secrets User")
		wantRow(t, rows, selfcheck.CheckGraphToken, "problem", "could not build its Graph credential", "still reads a Key Vault reference: see Key Vault references")
		wantRow(t, rows, selfcheck.CheckGraphPermission, "not_checked")
		wantRow(t, rows, selfcheck.CheckSettings, "ok", "apart from the Key Vault references above")
		if strings.Contains(p.HTML, `id="last-cycle"`) {
			t.Error("cannot start, yet the page shows the last cycle")
		}
		for _, id := range []string{selfcheck.CheckSettings, selfcheck.CheckBlob, selfcheck.CheckQueues, selfcheck.CheckTables, selfcheck.CheckMattermostToken,
			selfcheck.CheckMattermostRead, selfcheck.CheckMattermostWrite, selfcheck.CheckMattermostCounts, selfcheck.CheckAppInsights, selfcheck.CheckSchedule} {
			wantRow(t, rows, id, "ok")
		}
		// Only the Status page runs.
		resp, err := http.Get(api + "AdminConsent")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("AdminConsent while calstatus cannot start: %d", resp.StatusCode)
		}
		js, _ := statusJSON(t, api)
		noSecrets(t, p, js, h.env.MattermostToken, h.sim.ClientSecret(), "kv.vault.azure.net", "calstatus-cert", "0123abcd")
	})
	t.Logf("screenshots in %s", screenshots(t))
}
