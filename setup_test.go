package main

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/calstatus/calstatus/internal/azstorage"
	"github.com/calstatus/calstatus/internal/config"
)

// The values the self-check redacts: every secret setting's, a connection string's key (not its
// account name, which the lines show), each slash command token.
func TestSecretValues(t *testing.T) {
	env := map[string]string{
		"AZURE_CLIENT_SECRET":                   "client-secret-value",
		"MATTERMOST_TOKEN":                      "mattermost-token-value",
		"MATTERMOST_SLASH_TOKEN":                "team0000000000000000000001=slashtoken00000000000001,team0000000000000000000002=slashtoken00000000000002",
		"AzureWebJobsStorage":                   "DefaultEndpointsProtocol=https;AccountName=calstatusabc;AccountKey=a2V5a2V5a2V5==;EndpointSuffix=core.windows.net",
		"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=11111111-2222-3333-4444-555555555555;IngestionEndpoint=https://x/",
		"MATTERMOST_URL":                        "https://chat.example.com",
	}
	got := secretValues(func(k string) string { return env[k] })
	for _, want := range []string{"client-secret-value", "mattermost-token-value", "slashtoken00000000000001", "slashtoken00000000000002",
		"a2V5a2V5a2V5==", "11111111-2222-3333-4444-555555555555"} {
		if !slices.Contains(got, want) {
			t.Errorf("%q is not redacted: %q", want, got)
		}
	}
	for _, shown := range []string{"calstatusabc", "https://chat.example.com", "core.windows.net"} {
		if slices.Contains(got, shown) {
			t.Errorf("%q would be redacted", shown)
		}
	}
}

// The self-check looks at what wiring made: the host's container, both queues, the three tables;
// a part wiring did not make stays nil (no typed nil), and its lines say why.
func TestNewSetupCheck(t *testing.T) {
	c := newSetupCheck(nil, setupParts{cfg: config.Config{Storage: azstorage.Account{Name: "calstatusabc", ClientID: "6c1f2e3d-4b5a-4978-8a6b-5c4d3e2f1a09"},
		ClientSecret: "s"}, credErr: errors.New("no")})
	d := c.Deps
	if d.HostContainer != "azure-webjobs-hosts" || fmt.Sprint(d.Queues) != "[sync-shards sync-shards-poison]" ||
		fmt.Sprint(d.Tables) != "[calstatususers calstatuscycles calstatussettings]" || d.TimerFunction != "SyncTimer" ||
		d.StorageAccount != "calstatusabc" || d.StorageIdentity != "6c1f2e3d-4b5a-4978-8a6b-5c4d3e2f1a09" || d.Storage == nil ||
		d.Mattermost != nil || d.Permission != nil || d.Credential != nil || d.CredentialError == nil || d.CredentialMode != "secret" ||
		d.Names.ClientID != "GRAPH_CLIENT_ID" || !slices.Contains(d.Settings, "MATTERMOST_TOKEN") || !slices.Contains(d.Settings, "APPLICATIONINSIGHTS_CONNECTION_STRING") {
		t.Fatalf("deps %+v", d)
	}
	c = newSetupCheck(nil, setupParts{cfg: config.Config{Storage: azstorage.Account{ConnectionString: config.DevelopmentStorage}}})
	if c.Deps.StorageAccount != "devstoreaccount1" || c.Deps.StorageIdentity != "" {
		t.Fatalf("connection string: %q %q", c.Deps.StorageAccount, c.Deps.StorageIdentity)
	}
}
