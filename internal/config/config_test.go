package config

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calstatus/calstatus/internal/graph"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func full() map[string]string {
	return map[string]string{
		"AzureWebJobsStorage": "UseDevelopmentStorage=true", "AZURE_TENANT_ID": "t", "GRAPH_CLIENT_ID": "c",
		"AZURE_CLIENT_SECRET": "s", "MATTERMOST_URL": "http://127.0.0.1:8065", "MATTERMOST_TOKEN": "tok",
	}
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(env(full()))
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.ConnectionString != DevelopmentStorage || c.GraphBaseURL != graph.DefaultBaseURL || c.SyncSchedule != DefaultSchedule ||
		c.Lookahead != DefaultLookahead || !c.TentativeAsBusy || c.Port != "8080" {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestLoadNamesEveryProblem(t *testing.T) {
	m := full()
	delete(m, "MATTERMOST_TOKEN")
	delete(m, "AZURE_CLIENT_SECRET")
	m["MATTERMOST_URL"] = "not a url"
	m["SYNC_LOOKAHEAD"] = "soon"
	m["SYNC_SCHEDULE"] = "every five minutes"
	_, err := Load(env(m))
	if err == nil {
		t.Fatal("accepted bad configuration")
	}
	for _, name := range []string{"MATTERMOST_TOKEN", "AZURE_CLIENT_SECRET", "AZURE_MANAGED_IDENTITY", "MATTERMOST_URL", "SYNC_LOOKAHEAD", "SYNC_SCHEDULE"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
	if strings.Contains(err.Error(), "tok") {
		t.Errorf("error leaks a secret: %v", err)
	}
}

func TestLoadOverrides(t *testing.T) {
	m := full()
	m["SYNC_LOOKAHEAD"] = "15m"
	m["TENTATIVE_AS_BUSY"] = "false"
	m["AzureWebJobsStorage"] = "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=k;EndpointSuffix=core.windows.net"
	c, err := Load(env(m))
	if err != nil || c.Lookahead != 15*time.Minute || c.TentativeAsBusy || !strings.Contains(c.Storage.ConnectionString, "AccountName=a") {
		t.Fatalf("%+v %v", c, err)
	}
}

func TestLoadIdentityBasedStorage(t *testing.T) {
	m := full()
	delete(m, "AzureWebJobsStorage")
	m["AzureWebJobsStorage__accountName"] = "calstatusabc"
	m["AzureWebJobsStorage__credential"] = "managedidentity"
	m["AzureWebJobsStorage__clientId"] = "11111111-2222-3333-4444-555555555555"
	c, err := Load(env(m))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Storage.UsesIdentity() || c.Storage.Name != "calstatusabc" || c.Storage.ClientID != m["AzureWebJobsStorage__clientId"] {
		t.Fatalf("storage %+v", c.Storage)
	}
	m["AzureWebJobsStorage__credential"] = "connectionstring"
	if _, err := Load(env(m)); err == nil || !strings.Contains(err.Error(), "AzureWebJobsStorage__credential") {
		t.Fatalf("unsupported credential kind: %v", err)
	}
	delete(m, "AzureWebJobsStorage__accountName")
	if _, err := Load(env(m)); err == nil || !strings.Contains(err.Error(), "AzureWebJobsStorage is not set") {
		t.Fatalf("no storage: %v", err)
	}
}

func TestLoadReadsOnlyTheListedSettings(t *testing.T) {
	read := map[string]bool{}
	identity := full()
	delete(identity, "AzureWebJobsStorage")
	oldName := full() // AZURE_CLIENT_ID is read only without GRAPH_CLIENT_ID
	delete(oldName, "GRAPH_CLIENT_ID")
	for _, m := range []map[string]string{full(), identity, oldName} {
		_, _ = Load(func(name string) string { read[name] = true; return m[name] })
	}
	for _, s := range Settings {
		if !read[s.Name] {
			t.Errorf("%s is listed but Load never reads it", s.Name)
		}
	}
	for name := range read {
		if !known(name) {
			t.Errorf("Load reads %s, which Settings does not list", name)
		}
	}
}

func TestLoadSlashToken(t *testing.T) {
	const (
		teamA, tokenA = "aaaaaaaaaaaaaaaaaaaaaaaaaa", "abcdefghijklmnopqrstuvwxyz"
		teamB, tokenB = "bbbbbbbbbbbbbbbbbbbbbbbbbb", "0123456789abcdefghijklmnop"
	)
	m := full()
	c, err := Load(env(m))
	if err != nil || c.MattermostSlashToken != "" {
		t.Fatalf("unset: %q %v", c.MattermostSlashToken, err)
	}
	m["MATTERMOST_SLASH_TOKEN"] = teamA + "=" + tokenA + ", " + teamB + " = " + tokenB
	c, err = Load(env(m))
	if err != nil || c.MattermostSlashToken != m["MATTERMOST_SLASH_TOKEN"] {
		t.Fatalf("two teams: %q %v", c.MattermostSlashToken, err)
	}
	// Each problem names the entry, never a token, and says how to put it right. It turns the
	// command away (no token taken), not calstatus: the sync goes on.
	for value, want := range map[string]string{
		tokenA:                                            "entry 1 is a token without its team: each entry is TEAM_ID=TOKEN, one per team; run `calstatus register-command` again",
		teamA + "=" + tokenA + "," + tokenB:               "entry 2 is a token without its team",
		"contoso=" + tokenA:                               "entry 1 does not start with a Mattermost team id",
		teamA + "=secret-too-short":                       "entry 1 does not end with a Mattermost slash command token",
		teamA + "=" + tokenA + ",,":                       "entry 2 is empty",
		teamA + "=" + tokenA + "," + teamA + "=" + tokenB: "entry 2 names a team an earlier entry names",
		teamA + "=" + tokenA + "," + teamB + "=" + tokenA: "entry 2 has the token of an earlier entry: each team needs its own",
	} {
		m["MATTERMOST_SLASH_TOKEN"] = value
		c, err = Load(env(m))
		warned := strings.Join(c.Warnings, "\n")
		if err != nil || c.MattermostSlashToken != "" || !strings.Contains(warned, "MATTERMOST_SLASH_TOKEN: "+want) ||
			strings.Contains(warned, "secret") || strings.Contains(warned, tokenA) || strings.Contains(warned, tokenB) {
			t.Errorf("%s: token %q, warnings %q, error %v", value, c.MattermostSlashToken, warned, err)
		}
	}
}

// The consent callback's base URL is configured, never the request's: PUBLIC_URL, else App
// Service's WEBSITE_HOSTNAME.
func TestLoadPublicURL(t *testing.T) {
	for _, c := range []struct {
		public, hostname, want string
		bad                    bool
	}{
		{"", "", "", false},
		{"", "calstatus-x1.azurewebsites.net", "https://calstatus-x1.azurewebsites.net", false},
		{"https://calstatus.contoso.com/", "calstatus-x1.azurewebsites.net", "https://calstatus.contoso.com", false},
		{"http://localhost:7071", "", "http://localhost:7071", false},
		{"http://calstatus.contoso.com", "", "", true},
		{"https://calstatus.contoso.com/api", "", "", true},
		{"calstatus.contoso.com", "", "", true},
	} {
		m := full()
		m["PUBLIC_URL"], m["WEBSITE_HOSTNAME"] = c.public, c.hostname
		cfg, err := Load(env(m))
		if (err != nil) != c.bad || !c.bad && cfg.PublicURL != c.want {
			t.Errorf("PUBLIC_URL %q, WEBSITE_HOSTNAME %q: %q, %v; want %q (error: %v)", c.public, c.hostname, cfg.PublicURL, err, c.want, c.bad)
		}
		if c.bad && (err == nil || !strings.Contains(err.Error(), "PUBLIC_URL")) {
			t.Errorf("PUBLIC_URL %q: error %v does not name the setting", c.public, err)
		}
	}
}

// GRAPH_CLIENT_ID names the app registration; AZURE_CLIENT_ID (its old name, which Azure SDKs read
// as a managed identity's client id) is read only when it is unset, and says so.
func TestClientIDSetting(t *testing.T) {
	m := full()
	m["AZURE_CLIENT_ID"] = "old"
	c, err := Load(env(m))
	if err != nil || c.ClientID != "c" || len(c.Deprecations) != 0 {
		t.Fatalf("both set: ClientID %q, deprecations %q, err %v; want GRAPH_CLIENT_ID's, none", c.ClientID, c.Deprecations, err)
	}
	delete(m, "GRAPH_CLIENT_ID")
	c, err = Load(env(m))
	if err != nil || c.ClientID != "old" || len(c.Deprecations) != 1 || !strings.Contains(c.Deprecations[0], "GRAPH_CLIENT_ID") {
		t.Fatalf("only AZURE_CLIENT_ID: ClientID %q, deprecations %q, err %v", c.ClientID, c.Deprecations, err)
	}
	delete(m, "AZURE_CLIENT_ID")
	if _, err := Load(env(m)); err == nil || !strings.Contains(err.Error(), "GRAPH_CLIENT_ID is not set") {
		t.Fatalf("neither: err = %v", err)
	}
}

// PRESENCE_SYNC and AUTOMATIC_REPLIES_SYNC are off unless set, and read as strictly as the other
// switches.
func TestPresenceSettings(t *testing.T) {
	c, err := Load(env(full()))
	if err != nil || c.PresenceSync || c.AutomaticRepliesSync {
		t.Fatalf("unset: PresenceSync %v, AutomaticRepliesSync %v, err %v; want both off", c.PresenceSync, c.AutomaticRepliesSync, err)
	}
	m := full()
	m["PRESENCE_SYNC"], m["AUTOMATIC_REPLIES_SYNC"] = "true", "false"
	if c, err = Load(env(m)); err != nil || !c.PresenceSync || c.AutomaticRepliesSync {
		t.Fatalf("PRESENCE_SYNC=true: %v %v %v", c.PresenceSync, c.AutomaticRepliesSync, err)
	}
	m["PRESENCE_SYNC"], m["AUTOMATIC_REPLIES_SYNC"] = "false", "TRUE"
	if c, err = Load(env(m)); err != nil || c.PresenceSync || !c.AutomaticRepliesSync {
		t.Fatalf("AUTOMATIC_REPLIES_SYNC=TRUE: %v %v %v", c.PresenceSync, c.AutomaticRepliesSync, err)
	}
	if len(c.Warnings) != 0 {
		t.Fatalf("AUTOMATIC_REPLIES_SYNC=true warns: %q", c.Warnings)
	}
	for _, name := range []string{"PRESENCE_SYNC", "AUTOMATIC_REPLIES_SYNC"} {
		m := full()
		m[name] = "yes"
		_, err := Load(env(m))
		if err == nil || !strings.Contains(err.Error(), name+` "yes" must be true or false`) {
			t.Errorf("%s=yes: err = %v, want one naming the setting", name, err)
		}
	}
}

// Least privilege: the presence permissions only while a setting reads presence.
func TestGraphPermissions(t *testing.T) {
	for _, c := range []struct {
		presence, replies bool
		want              []string
	}{
		{false, false, []string{"Calendars.ReadBasic.All"}},
		{true, false, []string{"Calendars.ReadBasic.All", "Presence.Read.All", "User.Read.All"}},
		{false, true, []string{"Calendars.ReadBasic.All", "Presence.Read.All", "User.Read.All"}},
		{true, true, []string{"Calendars.ReadBasic.All", "Presence.Read.All", "User.Read.All"}},
	} {
		cfg := Config{PresenceSync: c.presence, AutomaticRepliesSync: c.replies}
		if got := cfg.GraphPermissions(); !slices.Equal(got, c.want) || cfg.ReadsPresence() != (c.presence || c.replies) {
			t.Errorf("PresenceSync %v, AutomaticRepliesSync %v: %q (reads presence %v), want %q", c.presence, c.replies, got, cfg.ReadsPresence(), c.want)
		}
		for _, p := range c.want {
			if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`).MatchString(GraphAppRoleIDs[p]) {
				t.Errorf("GraphAppRoleIDs[%s] = %q, want an app role id", p, GraphAppRoleIDs[p])
			}
		}
	}
}
