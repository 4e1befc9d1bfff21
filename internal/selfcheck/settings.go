package selfcheck

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// keyVaultPrefix starts a Key Vault reference; App Service leaves it in place when it cannot
// resolve the reference.
const keyVaultPrefix = "@microsoft.keyvault("

// unresolvedReferences lists the settings that still read @Microsoft.KeyVault(…), in Settings' order.
func unresolvedReferences(d Deps) []string {
	var out []string
	seen := map[string]bool{}
	for _, name := range d.Settings {
		if seen[name] || d.Getenv == nil {
			continue
		}
		seen[name] = true
		if strings.HasPrefix(strings.ToLower(strings.TrimSpace(d.Getenv(name))), keyVaultPrefix) {
			out = append(out, name)
		}
	}
	return out
}

// keyVaultFix is what to do about an unresolved reference.
const keyVaultFix = "App Service could not fetch the secret, so the setting holds the reference itself. The usual causes: " +
	"the identity App Service resolves references with (the site's keyVaultReferenceIdentity: the deployment's user-assigned identity) " +
	"lacks the Key Vault Secrets User role on the vault (a new role assignment takes a few minutes to apply); " +
	"the secret's name or version in the reference is wrong, or the secret is disabled or deleted; " +
	"the vault's firewall does not let the app in. In the portal, the Function App's Settings > Environment variables " +
	"shows each reference's status and error. After the fix, restart the function app: App Service fetches references " +
	"again at a restart or a change of settings (otherwise within 24 hours)."

func (r *run) keyVault(context.Context) {
	if len(r.unresolved) == 0 {
		r.ok(CheckKeyVault, fmt.Sprintf("none of the %d settings calstatus and its host read still reads @Microsoft.KeyVault(…): every reference resolved", len(dedupe(r.d.Settings))))
		return
	}
	what := "setting still reads"
	if len(r.unresolved) > 1 {
		what = "settings still read"
	}
	r.problem(CheckKeyVault, fmt.Sprintf("%s %s @Microsoft.KeyVault(…): the reference did not resolve", strings.Join(r.unresolved, ", "), what), keyVaultFix)
}

func dedupe(names []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// settings reports what reading the settings found.
func (r *run) settings(context.Context) {
	unresolved := func(text string) string {
		var names []string
		for _, n := range r.unresolved {
			if strings.Contains(text, n) {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			return ""
		}
		return " " + strings.Join(names, ", ") + " still reads a Key Vault reference: see Key Vault references."
	}
	switch {
	case r.d.ConfigError != "":
		r.problem(CheckSettings, "calstatus cannot start, so only this page runs: "+strings.TrimPrefix(r.d.ConfigError, "configuration: "),
			"Set what it names in the Function App's Settings > Environment variables (saving restarts the app), or in local.settings.json when it runs locally."+
				unresolved(r.d.ConfigError))
	case len(r.d.Warnings) > 0:
		all := strings.Join(r.d.Warnings, "; ")
		r.problem(CheckSettings, "a part of calstatus is off: "+all,
			"Correct the setting named, in the Function App's Settings > Environment variables."+unresolved(all))
	case len(r.d.Deprecations) > 0:
		r.problem(CheckSettings, "a setting under an old name: "+strings.Join(r.d.Deprecations, "; "),
			"Rename it in the Function App's Settings > Environment variables (the deployment uses the new name).")
	case len(r.unresolved) > 0:
		r.ok(CheckSettings, "apart from the Key Vault references above, every setting calstatus reads is set and well formed")
	default:
		r.ok(CheckSettings, "every setting calstatus reads is set and well formed")
	}
}

var guid = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// keyValues reads a connection string's Key=Value; pairs (keys lower-cased).
func keyValues(s string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(part, "=")
		if ok && strings.TrimSpace(k) != "" {
			out[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
	}
	return out
}

const (
	appInsightsConnection = "APPLICATIONINSIGHTS_CONNECTION_STRING"
	appInsightsAuth       = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"
)

// appInsights checks the shape of the Application Insights settings (what telemetry needs before
// anything is sent; whether the identity may publish only Application Insights can tell).
func (r *run) appInsights(context.Context) {
	conn := strings.TrimSpace(r.d.Getenv(appInsightsConnection))
	auth := strings.TrimSpace(r.d.Getenv(appInsightsAuth))
	const where = "Set it to the Application Insights resource's connection string (its Overview page shows it); the deployment sets it."
	if r.isUnresolved(appInsightsConnection) || r.isUnresolved(appInsightsAuth) {
		r.problem(CheckAppInsights, "a setting of Application Insights still reads a Key Vault reference", "See Key Vault references.")
		return
	}
	if conn == "" {
		if r.d.InAzure {
			r.problem(CheckAppInsights, appInsightsConnection+" is not set: no log line, trace or failure reaches Application Insights, "+
				"so the alerts and the workbook see nothing", where)
		} else {
			r.ok(CheckAppInsights, appInsightsConnection+" is not set: no telemetry, as expected when calstatus runs locally")
		}
		return
	}
	if guid.MatchString(conn) {
		r.problem(CheckAppInsights, appInsightsConnection+" holds a bare instrumentation key, not a connection string", where)
		return
	}
	kv := keyValues(conn)
	if !guid.MatchString(kv["instrumentationkey"]) {
		r.problem(CheckAppInsights, appInsightsConnection+" has no InstrumentationKey=<GUID>: it is not an Application Insights connection string", where)
		return
	}
	endpoint := "the default ingestion endpoint"
	if e := kv["ingestionendpoint"]; e != "" {
		u, err := url.Parse(e)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			r.problem(CheckAppInsights, appInsightsConnection+"'s IngestionEndpoint is not an https URL", where)
			return
		}
		endpoint = "ingestion at " + u.Host
	}
	detail := appInsightsConnection + " is well formed (" + endpoint + ")"
	if auth == "" {
		r.ok(CheckAppInsights, detail+"; no "+appInsightsAuth+": telemetry is sent with the instrumentation key, which a resource "+
			"with local authentication disabled (the deployment's) refuses")
		return
	}
	akv := keyValues(auth)
	authFix := "Set " + appInsightsAuth + " to Authorization=AAD (the system-assigned identity) or ClientId=<the user-assigned identity's client id>;Authorization=AAD; the deployment sets the latter."
	if !strings.EqualFold(akv["authorization"], "AAD") {
		r.problem(CheckAppInsights, appInsightsAuth+" does not say Authorization=AAD", authFix)
		return
	}
	id, hasID := akv["clientid"]
	if hasID && !guid.MatchString(id) {
		r.problem(CheckAppInsights, appInsightsAuth+"'s ClientId is not a client id (a GUID)", authFix)
		return
	}
	who := "the system-assigned identity"
	if hasID {
		who = "the managed identity " + id
	}
	r.ok(CheckAppInsights, detail+"; telemetry is sent with "+who+" (Entra ID authentication: it needs Monitoring Metrics Publisher on the resource)")
}

// schedule checks SYNC_SCHEDULE as the Functions host reads it, and that the timer is on.
func (r *run) schedule(context.Context) {
	const name = "SYNC_SCHEDULE"
	raw := strings.TrimSpace(r.d.Getenv(name))
	const fix = "Set SYNC_SCHEDULE to a six-field NCRONTAB schedule (second minute hour day month weekday), e.g. 0 */5 * * * * for every five minutes."
	if raw == "" {
		r.problem(CheckSchedule, name+" is not set: the Functions host cannot resolve %SYNC_SCHEDULE% in "+r.timer()+"'s schedule, so no cycle runs", fix)
		return
	}
	s, err := parseSchedule(raw)
	if err != nil {
		r.problem(CheckSchedule, name+" is not a schedule: "+err.Error(), fix)
		return
	}
	disabled := "AzureWebJobs." + r.timer() + ".Disabled"
	if v := strings.TrimSpace(r.d.Getenv(disabled)); strings.EqualFold(v, "true") || v == "1" {
		r.problem(CheckSchedule, r.timer()+" is disabled ("+disabled+"): no cycle runs", "Delete the app setting "+disabled+" or set it to false.")
		return
	}
	next := s.Next(r.now)
	if next.IsZero() {
		r.problem(CheckSchedule, name+" "+raw+" has no next occurrence: no cycle runs", fix)
		return
	}
	detail := fmt.Sprintf("%s: next run %s UTC (in %s)", raw, next.Format("2006-01-02 15:04:05"), inWords(next.Sub(r.now)))
	if after := s.Next(next); !after.IsZero() {
		detail += ", then every " + inWords(after.Sub(next))
	}
	r.ok(CheckSchedule, detail)
}

func (r *run) timer() string {
	if r.d.TimerFunction != "" {
		return r.d.TimerFunction
	}
	return "SyncTimer"
}

// inWords says a duration briefly: "45 seconds", "5 minutes", "1 hour 30 minutes".
func inWords(d time.Duration) string {
	plural := func(n int, what string) string {
		if n == 1 {
			return "1 " + what
		}
		return fmt.Sprintf("%d %ss", n, what)
	}
	switch {
	case d < time.Minute:
		return plural(int(d.Round(time.Second).Seconds()), "second")
	case d < time.Hour:
		if d%time.Minute == 0 {
			return plural(int(d.Minutes()), "minute")
		}
		return plural(int(d.Minutes()), "minute") + " " + plural(int((d%time.Minute).Seconds()), "second")
	default:
		s := plural(int(d.Hours()), "hour")
		if m := int((d % time.Hour).Minutes()); m > 0 {
			s += " " + plural(m, "minute")
		}
		return s
	}
}
