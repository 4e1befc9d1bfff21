package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/calstatus/calstatus/devtools/graphsim"
)

// TestBadConfigurationStopsWithOneClearMessage runs `calstatus check` (what `make run` does first)
// and the handler itself with broken settings: each stops with one line naming what is wrong.
func TestBadConfigurationStopsWithOneClearMessage(t *testing.T) {
	env := handlerEnvForCheck(t)
	bin := handlerBinary(t)
	run := func(override map[string]string, args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = os.Environ()
		for k, v := range env {
			if nv, ok := override[k]; ok {
				v = nv
			}
			if v != "" {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
		}
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := run(nil, "check"); err != nil {
		t.Fatalf("good configuration rejected: %s", out)
	}
	cases := []struct {
		name     string
		override map[string]string
		args     []string
		want     string
	}{
		{"missing setting", map[string]string{"MATTERMOST_TOKEN": ""}, nil, "MATTERMOST_TOKEN is not set"},
		{"unreachable Mattermost", map[string]string{"MATTERMOST_URL": "http://127.0.0.1:1"}, []string{"check"}, "does not answer (MATTERMOST_URL)"},
		{"wrong token", map[string]string{"MATTERMOST_TOKEN": "wrongtoken"}, []string{"check"}, "rejects MATTERMOST_TOKEN (HTTP 401)"},
		{"wrong secret", map[string]string{"AZURE_CLIENT_SECRET": "wrong"}, []string{"check"}, "AADSTS7000215"},
		{"bad schedule", map[string]string{"SYNC_SCHEDULE": "every 5 minutes"}, nil, "SYNC_SCHEDULE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(tc.override, tc.args...)
			if err == nil {
				t.Fatalf("accepted: %s", out)
			}
			if !strings.Contains(out, tc.want) || strings.Count(out, "\n") > 0 {
				t.Fatalf("want one line naming %q, got:\n%s", tc.want, out)
			}
			if strings.Contains(out, env["MATTERMOST_TOKEN"]) || strings.Contains(out, env["AZURE_CLIENT_SECRET"]) {
				t.Fatalf("a secret leaked into the message: %s", out)
			}
		})
	}
}

func handlerEnvForCheck(t *testing.T) map[string]string {
	h := newHarness(t, harnessOptions{scenario: graphsim.DefaultScenario()})
	dir := t.TempDir()
	ca := dir + "/ca.pem"
	if err := os.WriteFile(ca, h.sim.CAPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"AzureWebJobsStorage": h.env.StorageConnectionString, "AZURE_TENANT_ID": h.sim.TenantID(),
		"GRAPH_CLIENT_ID": h.sim.ClientID(), "AZURE_CLIENT_SECRET": h.sim.ClientSecret(), "AZURE_AUTHORITY_HOST": h.sim.URL(),
		"GRAPH_BASE_URL": h.sim.GraphURL(), "MATTERMOST_URL": h.env.MattermostURL, "MATTERMOST_TOKEN": h.env.MattermostToken,
		"SYNC_SCHEDULE": "0 */5 * * * *", "SSL_CERT_FILE": ca, "FUNCTIONS_CUSTOMHANDLER_PORT": "0",
	}
}
