// Package config reads calstatus's settings from the environment: the same names as the function
// app's application settings and local.settings.json.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/calstatus/calstatus/internal/azstorage"
	"github.com/calstatus/calstatus/internal/graph"
	"github.com/calstatus/calstatus/internal/ncrontab"
)

// Config is every setting calstatus reads.
type Config struct {
	Port string // FUNCTIONS_CUSTOMHANDLER_PORT

	// Storage is AzureWebJobsStorage: a connection string, or AzureWebJobsStorage__accountName
	// (+ __credential, __clientId) reached with a managed identity.
	Storage azstorage.Account

	TenantID string // AZURE_TENANT_ID
	// ClientID is GRAPH_CLIENT_ID, the app registration's client id (AZURE_CLIENT_ID, its old name,
	// when unset: a deprecation).
	ClientID string
	// One of: ClientSecret (AZURE_CLIENT_SECRET), a certificate (AZURE_CLIENT_CERTIFICATE_PATH,
	// AZURE_CLIENT_CERTIFICATE_PASSWORD), or the app's managed identity federated with the app
	// registration (AZURE_MANAGED_IDENTITY: "system" or a user-assigned identity's client id).
	ClientSecret                                      string
	CertificatePath, Certificate, CertificatePassword string
	ManagedIdentity                                   string
	AuthorityHost                                     string // AZURE_AUTHORITY_HOST
	GraphBaseURL                                      string // GRAPH_BASE_URL (default graph.DefaultBaseURL)

	MattermostURL, MattermostToken string // MATTERMOST_URL, MATTERMOST_TOKEN
	// MattermostSlashToken is MATTERMOST_SLASH_TOKEN: the /calstatus command's token in each team,
	// as comma-separated TEAM_ID=TOKEN entries (a token works only with its team's id); empty turns
	// the command away.
	MattermostSlashToken string
	// MattermostWriteConcurrency is MATTERMOST_WRITE_CONCURRENCY: the Mattermost writes one
	// process has in flight at most (0: the adapter's default).
	MattermostWriteConcurrency int

	SyncSchedule    string            // SYNC_SCHEDULE (read by the Functions host for the timer)
	Schedule        ncrontab.Schedule // SYNC_SCHEDULE parsed
	Lookahead       time.Duration     // SYNC_LOOKAHEAD
	TentativeAsBusy bool              // TENTATIVE_AS_BUSY
	ShowSubject     bool              // SHOW_SUBJECT
	NotifyUsers     bool              // NOTIFY_USERS
	DryRun          bool              // DRY_RUN
	Paused          bool              // SYNC_PAUSED
	TimeZone        *time.Location    // TIME_ZONE (dates shown to users)
	// PresenceSync is PRESENCE_SYNC: Do Not Disturb while Teams shows a call or a presentation.
	// AutomaticRepliesSync is AUTOMATIC_REPLIES_SYNC: Mattermost's out of office while Outlook's
	// automatic replies are on. Both read Teams presence: see GraphPermissions.
	PresenceSync         bool
	AutomaticRepliesSync bool
	// Warnings are problems that disable a part (the slash command), not calstatus: logged at
	// start as errors.
	Warnings []string
	// Deprecations name settings read under an old name: logged at start as warnings.
	Deprecations []string
	// PublicURL is the app's base URL for links it hands out (the consent callback): PUBLIC_URL,
	// else https:// + WEBSITE_HOSTNAME (App Service sets it), else empty (the request's own URL).
	PublicURL string
	// TrustForwardedHeaders takes the base URL from X-Forwarded-Host/Proto instead
	// (TRUST_FORWARDED_HEADERS, behind a proxy that sets them).
	TrustForwardedHeaders bool
	LogLevel              string // LOG_LEVEL
}

// Defaults.
const (
	DefaultSchedule  = "0 */5 * * * *"
	DefaultLookahead = 10 * time.Minute
)

// Load reads the settings through getenv and reports every problem at once, each naming its setting.
func Load(getenv func(string) string) (Config, error) {
	var problems []string
	get := func(name string) string {
		if !known(name) {
			panic("config: " + name + " is not in Settings") // the list is the contract
		}
		return strings.TrimSpace(getenv(name))
	}
	required := func(name string) string {
		v := get(name)
		if v == "" {
			problems = append(problems, name+" is not set")
		}
		return v
	}
	c := Config{
		Port:                 get("FUNCTIONS_CUSTOMHANDLER_PORT"),
		Storage:              storage(get, &problems),
		TenantID:             required("AZURE_TENANT_ID"),
		ClientID:             get("GRAPH_CLIENT_ID"),
		ClientSecret:         get("AZURE_CLIENT_SECRET"),
		CertificatePath:      get("AZURE_CLIENT_CERTIFICATE_PATH"),
		Certificate:          get("AZURE_CLIENT_CERTIFICATE"),
		CertificatePassword:  get("AZURE_CLIENT_CERTIFICATE_PASSWORD"),
		ManagedIdentity:      get("AZURE_MANAGED_IDENTITY"),
		AuthorityHost:        get("AZURE_AUTHORITY_HOST"),
		GraphBaseURL:         get("GRAPH_BASE_URL"),
		MattermostURL:        required("MATTERMOST_URL"),
		MattermostToken:      required("MATTERMOST_TOKEN"),
		MattermostSlashToken: get("MATTERMOST_SLASH_TOKEN"),
		SyncSchedule:         get("SYNC_SCHEDULE"),
		Lookahead:            DefaultLookahead,
		TentativeAsBusy:      true,
		LogLevel:             get("LOG_LEVEL"),
	}
	if c.ClientID == "" {
		// The old name: Azure SDKs read AZURE_CLIENT_ID as a managed identity's client id.
		if c.ClientID = get("AZURE_CLIENT_ID"); c.ClientID != "" {
			c.Deprecations = append(c.Deprecations, "AZURE_CLIENT_ID is the old name of GRAPH_CLIENT_ID: rename the setting "+
				"(Azure SDKs read AZURE_CLIENT_ID as a managed identity's client id)")
		} else {
			problems = append(problems, "GRAPH_CLIENT_ID is not set")
		}
	}
	// A wrong slash token turns the command away, not the sync: an upgrade from the single-token
	// form keeps statuses in sync until an admin runs register-command again.
	var slashProblems []string
	if checkSlashTokens(c.MattermostSlashToken, &slashProblems); len(slashProblems) > 0 {
		c.Warnings, c.MattermostSlashToken = append(c.Warnings, slashProblems...), ""
	}
	if c.ClientSecret == "" && c.CertificatePath == "" && c.Certificate == "" && c.ManagedIdentity == "" {
		problems = append(problems, "no Graph credential: set AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE(_PATH) or AZURE_MANAGED_IDENTITY")
	}
	if c.Port == "" {
		c.Port = "8080"
	}
	if c.GraphBaseURL == "" {
		c.GraphBaseURL = graph.DefaultBaseURL
	}
	if c.SyncSchedule == "" {
		c.SyncSchedule = DefaultSchedule
	}
	sched, err := ncrontab.Parse(c.SyncSchedule)
	if err != nil {
		problems = append(problems, "SYNC_SCHEDULE: "+err.Error())
	}
	c.Schedule = sched
	if v := get("SYNC_LOOKAHEAD"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute || d > 24*time.Hour {
			problems = append(problems, fmt.Sprintf("SYNC_LOOKAHEAD %q must be a duration between 1m and 24h", v))
		}
		c.Lookahead = d
	}
	for name, dst := range map[string]*bool{"TENTATIVE_AS_BUSY": &c.TentativeAsBusy, "SHOW_SUBJECT": &c.ShowSubject,
		"NOTIFY_USERS": &c.NotifyUsers, "DRY_RUN": &c.DryRun, "SYNC_PAUSED": &c.Paused, "TRUST_FORWARDED_HEADERS": &c.TrustForwardedHeaders,
		"PRESENCE_SYNC": &c.PresenceSync, "AUTOMATIC_REPLIES_SYNC": &c.AutomaticRepliesSync} {
		if v := get(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s %q must be true or false", name, v))
			}
			*dst = b
		}
	}
	if v := get("MATTERMOST_WRITE_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 256 {
			problems = append(problems, fmt.Sprintf("MATTERMOST_WRITE_CONCURRENCY %q must be a number from 1 to 256", v))
		}
		c.MattermostWriteConcurrency = n
	}
	c.PublicURL = publicURL(get, &problems)
	c.TimeZone = time.UTC
	if v := get("TIME_ZONE"); v != "" {
		loc, err := time.LoadLocation(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("TIME_ZONE %q is not an IANA time zone (e.g. Europe/Berlin)", v))
		}
		c.TimeZone = loc
	}
	for name, v := range map[string]string{"MATTERMOST_URL": c.MattermostURL, "GRAPH_BASE_URL": c.GraphBaseURL, "AZURE_AUTHORITY_HOST": c.AuthorityHost} {
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			problems = append(problems, fmt.Sprintf("%s %q is not an http(s) URL", name, v))
		}
	}
	if len(problems) > 0 {
		return c, errors.New("configuration: " + strings.Join(problems, "; "))
	}
	return c, nil
}

// checkSlashTokens checks MATTERMOST_SLASH_TOKEN: comma-separated TEAM_ID=TOKEN entries, a team id
// and a token both in Mattermost's own format (26 letters and digits), each team once, each token
// once (a token shared by teams would let one team's admin, who can read it, act in the other). A
// problem names an entry by position, never by value.
func checkSlashTokens(v string, problems *[]string) {
	if v == "" {
		return
	}
	const rerun = "run `calstatus register-command` again: it prints the entries"
	teams, tokens := map[string]bool{}, map[string]bool{}
	for i, entry := range strings.Split(v, ",") {
		team, token, ok := strings.Cut(entry, "=")
		team, token = strings.TrimSpace(team), strings.TrimSpace(token)
		problem := ""
		switch {
		case strings.TrimSpace(entry) == "":
			problem = "is empty"
		case !ok:
			problem = "is a token without its team: each entry is TEAM_ID=TOKEN, one per team; " + rerun
		case !mattermostID(team):
			problem = "does not start with a Mattermost team id (26 letters and digits) and =; " + rerun
		case !mattermostID(token):
			problem = "does not end with a Mattermost slash command token (26 letters and digits); " + rerun
		case teams[team]:
			problem = "names a team an earlier entry names"
		case tokens[token]:
			problem = "has the token of an earlier entry: each team needs its own; " + rerun + ", naming every team"
		}
		if problem != "" {
			*problems = append(*problems, fmt.Sprintf("MATTERMOST_SLASH_TOKEN: entry %d %s", i+1, problem))
		}
		teams[team], tokens[token] = true, true
	}
}

// mattermostID reports whether s has the shape of Mattermost's ids and tokens: 26 letters and digits.
func mattermostID(s string) bool {
	return len(s) == 26 && strings.IndexFunc(s, func(r rune) bool { return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') }) < 0
}

// storage reads AzureWebJobsStorage the way the Functions host does: a connection string, or the
// identity-based form (AzureWebJobsStorage__accountName, __credential, __clientId, and the service
// URIs of sovereign clouds).
func storage(get func(string) string, problems *[]string) azstorage.Account {
	const name = "AzureWebJobsStorage"
	if cs := get(name); cs != "" {
		cs = ExpandStorageConnectionString(cs)
		if !strings.Contains(cs, "AccountName=") {
			*problems = append(*problems, name+" is not a storage connection string (want AccountName=…;AccountKey=… or UseDevelopmentStorage=true)")
		}
		return azstorage.Account{ConnectionString: cs}
	}
	a := azstorage.Account{Name: get(name + "__accountName"), ClientID: get(name + "__clientId"),
		TableURL: get(name + "__tableServiceUri"), QueueURL: get(name + "__queueServiceUri")}
	if a.Name == "" {
		*problems = append(*problems, name+" is not set (a connection string, or "+name+"__accountName with a managed identity)")
	}
	if cred := get(name + "__credential"); cred != "" && !strings.EqualFold(cred, "managedidentity") {
		*problems = append(*problems, fmt.Sprintf("%s__credential %q: only managedidentity is supported", name, cred))
	}
	return a
}

// DevelopmentStorage is the Azurite connection string that UseDevelopmentStorage=true stands for.
const DevelopmentStorage = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;" +
	"AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;" +
	"BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;" +
	"TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"

// ExpandStorageConnectionString replaces the UseDevelopmentStorage=true shorthand, which the Azure
// SDK for Go does not understand, with Azurite's full connection string.
func ExpandStorageConnectionString(s string) string {
	if strings.EqualFold(strings.TrimSuffix(strings.ReplaceAll(s, " ", ""), ";"), "UseDevelopmentStorage=true") {
		return DevelopmentStorage
	}
	return s
}

// publicURL is PUBLIC_URL (an https:// base URL, or http:// for localhost), else App Service's
// WEBSITE_HOSTNAME over https, else "".
func publicURL(get func(string) string, problems *[]string) string {
	if v := get("PUBLIC_URL"); v != "" {
		u, err := url.Parse(v)
		local := err == nil && (u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1")
		if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" ||
			!(u.Scheme == "https" || u.Scheme == "http" && local) {
			*problems = append(*problems, fmt.Sprintf("PUBLIC_URL %q must be the app's https:// base URL, e.g. https://calstatus.example.com", v))
			return ""
		}
		return strings.TrimRight(v, "/")
	}
	if h := get("WEBSITE_HOSTNAME"); h != "" {
		return "https://" + h
	}
	return ""
}
