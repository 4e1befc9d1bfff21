package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/calstatus/calstatus/handler"
	"github.com/calstatus/calstatus/internal/config"
	"github.com/calstatus/calstatus/internal/graph"
	"github.com/calstatus/calstatus/internal/mattermost"
	"github.com/calstatus/calstatus/internal/queue"
	"github.com/calstatus/calstatus/internal/selfcheck"
	"github.com/calstatus/calstatus/internal/shard"
	"github.com/calstatus/calstatus/internal/statuspage"
	"github.com/calstatus/calstatus/internal/store"
)

// hostContainer is the blob container the Functions host keeps its leases, timer schedules and
// keys in (AzureWebJobsStorage).
const hostContainer = "azure-webjobs-hosts"

// clientIDSetting names the app registration's client id setting in the lines (config's name).
const clientIDSetting = "GRAPH_CLIENT_ID"

// inAzure reports whether the app runs in Azure: App Service (Flex Consumption too) names the site,
// its owner and the instance in every app's environment (the Functions host derives its id from the
// site's name).
func inAzure() bool {
	return os.Getenv("WEBSITE_SITE_NAME") != "" || os.Getenv("WEBSITE_INSTANCE_ID") != "" || os.Getenv("WEBSITE_OWNER_NAME") != ""
}

// setupParts are what wiring made for the self-check; a nil part (wiring failed before it) makes
// its lines say why.
type setupParts struct {
	cfg     config.Config
	cfgErr  error
	cred    azcore.TokenCredential
	credErr error
	mm      *mattermost.Client
	graph   *graph.Client
}

// setupCheck is the Status page's Setup section of the running app, with its own clients.
func (a *app) setupCheck() *selfcheck.Checker {
	return newSetupCheck(a.log, setupParts{cfg: a.cfg, cred: a.cred, mm: a.mm, graph: a.graph})
}

// newSetupCheck builds the self-check from the settings as the process got them.
func newSetupCheck(log *slog.Logger, p setupParts) *selfcheck.Checker {
	cfg := p.cfg
	names := make([]string, 0, len(config.Settings)+len(config.HostSettings))
	for _, s := range config.Settings {
		names = append(names, s.Name)
	}
	names = append(names, config.HostSettings...)
	d := selfcheck.Deps{
		Getenv: os.Getenv, Settings: names, Secrets: secretValues(os.Getenv), Names: selfcheck.Names{ClientID: clientIDSetting},
		Warnings: cfg.Warnings, Deprecations: cfg.Deprecations,
		HostContainer: hostContainer, Queues: []string{handler.ShardQueue, queue.PoisonName(handler.ShardQueue)}, Tables: store.Tables,
		CredentialMode: credentialConfig(cfg).Mode(), MattermostURL: cfg.MattermostURL, TimerFunction: handler.SyncTimerFunction,
		InAzure: inAzure(), Permissions: cfg.GraphPermissions(),
	}
	if p.cfgErr != nil {
		d.ConfigError = p.cfgErr.Error()
	}
	if acct := cfg.Storage; acct.ConnectionString != "" || acct.Name != "" {
		d.Storage = &selfcheck.AzureStorage{Account: acct}
		d.StorageAccount = acct.Name
		if acct.UsesIdentity() {
			d.StorageIdentity = acct.ClientID
			if d.StorageIdentity == "" {
				d.StorageIdentity = "system"
			}
		} else {
			d.StorageAccount = connectionStringPart(acct.ConnectionString, "AccountName")
		}
	}
	if p.cred != nil {
		d.Credential = p.cred
	} else {
		d.CredentialError = p.credErr
	}
	if p.mm != nil {
		d.Mattermost = p.mm
		if p.graph != nil {
			// The consent pages' check: one getSchedule for Mattermost's first user with an email.
			d.Permission = graphProber(cfg, p.graph, p.mm)
		}
	}
	return &selfcheck.Checker{Deps: d, Log: log}
}

// secretValues are the values of the settings that hold secrets, for the self-check to redact
// wherever a remote system echoes one.
func secretValues(getenv func(string) string) []string {
	var out []string
	for _, name := range []string{"AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE", "AZURE_CLIENT_CERTIFICATE_PASSWORD", "MATTERMOST_TOKEN", "MATTERMOST_SLASH_TOKEN"} {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			continue
		}
		out = append(out, v)
		if name == "MATTERMOST_SLASH_TOKEN" {
			for _, entry := range strings.Split(v, ",") {
				if _, token, ok := strings.Cut(entry, "="); ok {
					out = append(out, strings.TrimSpace(token))
				}
			}
		}
	}
	for _, name := range []string{"AzureWebJobsStorage", "APPLICATIONINSIGHTS_CONNECTION_STRING"} {
		for _, part := range []string{"AccountKey", "SharedAccessSignature", "InstrumentationKey"} {
			if v := connectionStringPart(getenv(name), part); v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

// connectionStringPart is a connection string's Key=Value (its first = splits).
func connectionStringPart(cs, key string) string {
	for _, p := range strings.Split(cs, ";") {
		k, v, ok := strings.Cut(p, "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), key) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// setupParts builds what it can for the self-check when calstatus cannot start.
func partialSetup(log *slog.Logger) setupParts {
	cfg, err := config.Load(os.Getenv)
	p := setupParts{cfg: cfg, cfgErr: err}
	if credentialConfig(cfg).Mode() != "" {
		p.cred, p.credErr = graph.NewCredential(credentialConfig(cfg))
		if p.cred != nil {
			p.graph, _ = graph.New(graph.Config{BaseURL: cfg.GraphBaseURL, Credential: p.cred, Log: log})
		}
	}
	if cfg.MattermostURL != "" && cfg.MattermostToken != "" {
		p.mm = mattermost.New(cfg.MattermostURL, cfg.MattermostToken, log)
	}
	return p
}

// setupOnly is the handler while calstatus cannot start: the Status page alone, saying why, with
// its Setup section; the timer plans nothing and a shard fails (to be retried) with the reason.
func setupOnly(log *slog.Logger, startErr error) http.Handler {
	status := &statuspage.Page{Setup: newSetupCheck(log, partialSetup(log)), StartError: firstLine(startErr.Error())}
	down := notStarted{err: startErr}
	return handler.New(handler.Deps{Planner: down, Worker: down, Pages: handler.Pages{Status: status.Serve}, LogLevel: slog.LevelInfo})
}

// notStarted stands in for the planner and the worker while calstatus cannot start.
type notStarted struct{ err error }

func (n notStarted) Plan(_ context.Context, log *slog.Logger, _ time.Time) ([]shard.Message, error) {
	log.Error("calstatus cannot start: no cycle planned (the Status page's Setup section says why)", "error", firstLine(n.err.Error()))
	return nil, n.err
}

func (n notStarted) Process(_ context.Context, log *slog.Logger, _ shard.Message, _ int) (store.ShardReport, error) {
	log.Error("calstatus cannot start: the shard waits (the Status page's Setup section says why)", "error", firstLine(n.err.Error()))
	return store.ShardReport{}, n.err
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
