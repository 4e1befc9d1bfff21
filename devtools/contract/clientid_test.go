package contract

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/calstatus/calstatus/devtools/bicepcheck"
	"github.com/calstatus/calstatus/internal/config"
)

// AZURE_CLIENT_ID is what the Azure SDKs read as a user-assigned managed identity's client id
// (DefaultAzureCredential's managed identity, WorkloadIdentityCredential): holding the app
// registration's id under that name in the function app (or in the azd environment, whose values
// azd hands to hooks) misleads every SDK-based tool that runs there. calstatus names its app
// registration GRAPH_CLIENT_ID; AZURE_CLIENT_ID is read only as a deprecated fallback.
func TestAppRegistrationIsNotAzureClientID(t *testing.T) {
	const sdkName, ours = "AZURE_CLIENT_ID", "GRAPH_CLIENT_ID"
	settings, err := bicepcheck.AppSettings(filepath.Join(root(), "infra", "main.bicep"))
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(settings, sdkName) {
		t.Errorf("infra/main.bicep sets the app setting %s (Azure SDKs read it as a managed identity's client id): name it %s", sdkName, ours)
	}
	if !slices.Contains(settings, ours) {
		t.Errorf("infra/main.bicep does not set %s", ours)
	}
	main, err := os.ReadFile(filepath.Join(root(), "infra", "main.bicep"))
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`(?m)^output ` + sdkName + `\b`).Match(main) {
		t.Errorf("infra/main.bicep outputs %s: azd puts outputs in the environment it gives hooks, where Azure SDKs read it as a managed identity's client id; name it %s", sdkName, ours)
	}
	data, err := os.ReadFile(filepath.Join(root(), "local.settings.example.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Values map[string]string }
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Values[sdkName]; ok {
		t.Errorf("local.settings.example.json shows %s: name it %s", sdkName, ours)
	}
	found := false
	for _, s := range config.Settings {
		switch s.Name {
		case sdkName:
			if s.Azure || s.Local {
				t.Errorf("internal/config.Settings: %s is set by the deployment or shown locally; it may only be a deprecated fallback of %s", sdkName, ours)
			}
		case ours:
			found = s.Required == "yes" && s.Azure && s.Local
		}
	}
	if !found {
		t.Errorf("internal/config.Settings has no required %s set by the deployment and shown locally", ours)
	}
}
