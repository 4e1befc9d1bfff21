// Package selfcheck is the Status page's Setup section: live checks of what only the deployed app
// can show, because only it runs with the app's settings, identity and network — each Key Vault
// reference resolved, the settings calstatus read, the identity reaching the storage account's
// blob container, queues and tables, a Graph token through the configured credential, the Graph
// permission (one getSchedule), the Mattermost token and what it may do, the Application Insights
// settings, the schedule.
//
// Every check is one line: ok, a problem with the fix in an administrator's words, or not checked
// (a check it needs failed). The checks run concurrently, each within Timeout, and the report is
// kept for TTL so that reloading the page (it reloads itself every minute) costs no more than one
// run a minute: about a dozen cheap calls. A line never shows a setting's value: settings are named,
// remote errors are cut to their first line and every value in Secrets is redacted.
package selfcheck

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/calstatus/calstatus/internal/consent"
	"github.com/calstatus/calstatus/internal/logctx"
	"github.com/calstatus/calstatus/internal/ncrontab"
)

// The states of a line.
const (
	StateOK         = "ok"
	StateProblem    = "problem"
	StateNotChecked = "not_checked"
)

// The lines, in the order the report lists them. CheckGraphPresence is listed only while a
// setting reads Teams presence (Deps.Permissions).
const (
	CheckKeyVault         = "key_vault"
	CheckSettings         = "settings"
	CheckBlob             = "storage_blob"
	CheckQueues           = "storage_queues"
	CheckTables           = "storage_tables"
	CheckGraphToken       = "graph_token"
	CheckGraphPermission  = "graph_permission"
	CheckGraphPresence    = "graph_presence"
	CheckMattermostToken  = "mattermost_token"
	CheckMattermostRead   = "mattermost_read"
	CheckMattermostWrite  = "mattermost_write"
	CheckMattermostCounts = "mattermost_counts"
	CheckAppInsights      = "app_insights"
	CheckSchedule         = "schedule"
)

var order = []string{CheckKeyVault, CheckSettings, CheckBlob, CheckQueues, CheckTables, CheckGraphToken, CheckGraphPermission, CheckGraphPresence,
	CheckMattermostToken, CheckMattermostRead, CheckMattermostWrite, CheckMattermostCounts, CheckAppInsights, CheckSchedule}

var titles = map[string]string{
	CheckSettings:         "Settings",
	CheckKeyVault:         "Key Vault references",
	CheckBlob:             "Storage: the host's blob container",
	CheckQueues:           "Storage: queues",
	CheckTables:           "Storage: tables",
	CheckGraphToken:       "Microsoft Graph: token",
	CheckGraphPermission:  "Microsoft Graph: permission",
	CheckGraphPresence:    "Microsoft Graph: Teams presence",
	CheckMattermostToken:  "Mattermost: token",
	CheckMattermostRead:   "Mattermost: read statuses",
	CheckMattermostWrite:  "Mattermost: set statuses",
	CheckMattermostCounts: "Mattermost: count users",
	CheckAppInsights:      "Application Insights",
	CheckSchedule:         "Schedule",
}

// Line is one check's outcome.
type Line struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	State string `json:"state"`
	// Detail is what the check found; Fix, for a problem, what to do.
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// OK reports whether the line found nothing wrong.
func (l Line) OK() bool { return l.State == StateOK }

// Report is one run of the checks.
type Report struct {
	CheckedAt time.Time `json:"checked_at"`
	// OK: every line is ok. Problems counts the lines with a problem, NotChecked those a problem
	// elsewhere kept from running.
	OK         bool   `json:"ok"`
	Problems   int    `json:"problems"`
	NotChecked int    `json:"not_checked"`
	Lines      []Line `json:"checks"`
}

// Line returns the report's line id (the zero Line when it has none).
func (r Report) Line(id string) Line {
	for _, l := range r.Lines {
		if l.ID == id {
			return l
		}
	}
	return Line{}
}

// Storage makes one cheap call to each part of the storage account (AzureStorage).
type Storage interface {
	// Container reads a blob container's properties.
	Container(ctx context.Context, name string) error
	// Queue reads a queue's properties.
	Queue(ctx context.Context, name string) error
	// Table reads at most one entity of a table.
	Table(ctx context.Context, name string) error
}

// Names are the app settings the lines name.
type Names struct {
	// ClientID names the app registration's client id (GRAPH_CLIENT_ID).
	ClientID string
}

// Deps are what the checks look at. A nil dependency makes its lines say why it is missing.
type Deps struct {
	// Getenv reads the app settings as the process got them (os.Getenv).
	Getenv func(string) string
	// Settings names every app setting calstatus and its host read (config.Settings and
	// config.HostSettings): each is checked for an unresolved Key Vault reference.
	Settings []string
	// Secrets are values no line may show, wherever a remote system echoes them.
	Secrets []string
	Names   Names
	// ConfigError is why calstatus could not read its settings ("" when it could): it then serves
	// only the Status page. Warnings are the parts of calstatus its settings turned off.
	ConfigError string
	Warnings    []string
	// Deprecations name settings read under an old name (config.Config.Deprecations).
	Deprecations []string

	// Storage reaches AzureWebJobsStorage's account (nil: the settings give none). StorageAccount
	// names the account; StorageIdentity is the managed identity's client id when the account is
	// reached with one ("system" for the system-assigned identity), "" for a connection string.
	Storage                         Storage
	StorageAccount, StorageIdentity string
	// HostContainer is the blob container the Functions host keeps its leases and keys in;
	// Queues the shard queue and its poison queue; Tables calstatus's tables.
	HostContainer string
	Queues        []string
	Tables        []string

	// Credential gets calstatus's Graph tokens (nil: CredentialError says why it could not be
	// built). CredentialMode is graph.CredentialConfig.Mode: secret, certificate, managed-identity.
	Credential      azcore.TokenCredential
	CredentialError error
	CredentialMode  string
	// Permission checks the Graph permission with one getSchedule (consent.GraphProber), and
	// Teams presence when Permissions include Presence.Read.All.
	Permission consent.Prober
	// Permissions are the Graph application permissions the settings need
	// (config.Config.GraphPermissions); nil: Calendars.ReadBasic.All alone.
	Permissions []string

	// Mattermost is the server calstatus writes statuses to (nil: not configured), at
	// MattermostURL.
	Mattermost    Mattermost
	MattermostURL string

	// TimerFunction is the function SYNC_SCHEDULE starts (its AzureWebJobs.<name>.Disabled
	// setting stops it).
	TimerFunction string
	// InAzure: the app runs in Azure (App Service sets WEBSITE_SITE_NAME), where missing telemetry
	// settings are a problem.
	InAzure bool
}

// Defaults.
const (
	DefaultTimeout = 5 * time.Second
	DefaultTTL     = time.Minute
)

// Checker runs the checks and keeps the report for TTL. Concurrent callers share one run.
type Checker struct {
	Deps Deps
	// Timeout bounds each line (DefaultTimeout when zero); TTL is how long a report is kept
	// (DefaultTTL when zero).
	Timeout, TTL time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Log receives each problem a run finds (nil: discarded).
	Log *slog.Logger

	mu      sync.Mutex
	last    *Report
	running chan struct{}
}

func (c *Checker) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Check returns the latest report, running the checks when it is older than TTL. The run does not
// end with ctx (a reload must not cancel the checks another request waits for); each line has its
// own timeout. A caller whose ctx ends first gets the previous report, if any.
func (c *Checker) Check(ctx context.Context) Report {
	ttl := c.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	c.mu.Lock()
	if c.last != nil && c.now().Sub(c.last.CheckedAt) < ttl {
		r := *c.last
		c.mu.Unlock()
		return r
	}
	if c.running == nil {
		done := make(chan struct{})
		c.running = done
		// The run is shared by every request waiting for it: what the adapters log (a retry) goes
		// to the checker's log, not to the invocation that happened to start it.
		runCtx := logctx.With(context.WithoutCancel(ctx), c.Log)
		go func() {
			r := c.Run(runCtx)
			c.mu.Lock()
			c.last, c.running = &r, nil
			c.mu.Unlock()
			close(done)
		}()
	}
	wait, prev := c.running, c.last
	c.mu.Unlock()
	select {
	case <-wait:
		c.mu.Lock()
		defer c.mu.Unlock()
		return *c.last
	case <-ctx.Done():
		if prev != nil {
			return *prev
		}
		return Report{CheckedAt: c.now().UTC(), Lines: []Line{}}
	}
}

// Run runs every check now.
func (c *Checker) Run(ctx context.Context) Report {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	d := c.Deps
	if d.Getenv == nil {
		d.Getenv = func(string) string { return "" }
	}
	if d.Names.ClientID == "" {
		d.Names.ClientID = "GRAPH_CLIENT_ID"
	}
	r := &run{d: d, timeout: timeout, now: c.now().UTC(), lines: map[string]Line{}}
	r.unresolved = unresolvedReferences(d)
	var wg sync.WaitGroup
	for _, g := range []func(context.Context){r.settings, r.keyVault, r.blob, r.queues, r.tables, r.graph, r.mattermost, r.appInsights, r.schedule} {
		wg.Go(func() { g(ctx) })
	}
	wg.Wait()

	rep := Report{CheckedAt: r.now, OK: true, Lines: make([]Line, 0, len(order))}
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, id := range order {
		if id == CheckGraphPresence && !r.readsPresence() {
			continue // with no presence setting on, nothing changes
		}
		l, ok := r.lines[id]
		if !ok {
			l = Line{ID: id, State: StateNotChecked, Detail: "not run"}
		}
		l.Title = titles[id]
		l.Detail, l.Fix = r.scrub(l.Detail), r.scrub(l.Fix)
		switch l.State {
		case StateProblem:
			rep.Problems++
		case StateNotChecked:
			rep.NotChecked++
		}
		if !l.OK() {
			rep.OK = false
			log.Warn("setup check: "+l.Title, "check", id, "state", l.State, "detail", l.Detail)
		}
		rep.Lines = append(rep.Lines, l)
	}
	return rep
}

// run is one run of the checks.
type run struct {
	d       Deps
	timeout time.Duration
	now     time.Time
	// unresolved are the settings still reading @Microsoft.KeyVault(…).
	unresolved []string

	mu    sync.Mutex
	lines map[string]Line
}

func (r *run) set(id, state, detail, fix string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines[id] = Line{ID: id, State: state, Detail: detail, Fix: fix}
}

func (r *run) ok(id, detail string)           { r.set(id, StateOK, detail, "") }
func (r *run) problem(id, detail, fix string) { r.set(id, StateProblem, detail, fix) }
func (r *run) skip(id, detail string)         { r.set(id, StateNotChecked, detail, "") }

// within runs fn under the per-line timeout.
func (r *run) within(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return fn(ctx)
}

// isUnresolved reports whether the setting still reads @Microsoft.KeyVault(…).
func (r *run) isUnresolved(name string) bool {
	for _, n := range r.unresolved {
		if n == name {
			return true
		}
	}
	return false
}

// secretish are credential-like parameters a remote error text may carry.
var secretish = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}`), "$1 [redacted]"},
	{regexp.MustCompile(`(?i)\b([a-z_-]*(?:key|secret|token|password|passwd|pwd|sig|signature|assertion)|code)=[^&;\s"'<>]+`), "$1=[redacted]"},
	{regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`), "[redacted token]"},
}

// scrub keeps every secret out of a line.
func (r *run) scrub(s string) string {
	for _, v := range r.d.Secrets {
		if v = strings.TrimSpace(v); len(v) >= 6 {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	for _, p := range secretish {
		s = p.re.ReplaceAllString(s, p.with)
	}
	return s
}

// brief is the first line of an error, at most 300 bytes.
func brief(err error) string {
	s, _, _ := strings.Cut(strings.TrimSpace(err.Error()), "\n")
	s = strings.TrimSpace(s)
	if len(s) <= 300 {
		return s
	}
	cut := 300
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Schedule parses SYNC_SCHEDULE (the checks parse the setting the Functions host reads).
var parseSchedule = ncrontab.Parse
