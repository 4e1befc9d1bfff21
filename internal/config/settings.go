package config

// Setting is one application setting calstatus reads. Settings is the one list of them: Load reads
// no other, and tests check it against the README's table, local.settings.example.json and the
// app settings in infra/main.bicep.
type Setting struct {
	Name     string
	Required string // as the README says it: "yes", "no", "one of three", …
	Default  string // "" for none
	Meaning  string
	// Azure: the Bicep deployment sets it. Local: local.settings.example.json lists it.
	Azure, Local bool
}

// Settings is every setting calstatus reads, in the README's order.
var Settings = []Setting{
	{Name: "AzureWebJobsStorage", Required: "one of two", Local: true,
		Meaning: "storage account connection string: the shard queue and the state tables. `UseDevelopmentStorage=true` means Azurite on 127.0.0.1"},
	{Name: "AzureWebJobsStorage__accountName", Required: "one of two", Azure: true,
		Meaning: "or, with no secret, the storage account's name, reached with a managed identity (the deployment's way)"},
	{Name: "AzureWebJobsStorage__credential", Required: "with `__accountName`", Default: "`managedidentity`", Azure: true,
		Meaning: "`managedidentity` (the only kind the host and calstatus take)"},
	{Name: "AzureWebJobsStorage__clientId", Required: "no", Azure: true,
		Meaning: "the user-assigned identity's client id (else the system-assigned identity)"},
	{Name: "AzureWebJobsStorage__tableServiceUri", Required: "no", Default: "`https://<account>.table.core.windows.net`",
		Meaning: "Table endpoint, for sovereign clouds"},
	{Name: "AzureWebJobsStorage__queueServiceUri", Required: "no", Default: "`https://<account>.queue.core.windows.net`",
		Meaning: "Queue endpoint, for sovereign clouds"},
	{Name: "AZURE_TENANT_ID", Required: "yes", Azure: true, Local: true,
		Meaning: "Entra ID tenant of the organisation"},
	{Name: "GRAPH_CLIENT_ID", Required: "yes", Azure: true, Local: true,
		Meaning: "client id of the app registration with application permission `Calendars.ReadBasic.All` (admin-consented; with `PRESENCE_SYNC` or `AUTOMATIC_REPLIES_SYNC` also `Presence.Read.All` and `User.Read.All`)"},
	{Name: "AZURE_CLIENT_ID", Required: "no (deprecated)",
		Meaning: "the old name of `GRAPH_CLIENT_ID`, read only when that is unset (logged at start): Azure SDKs read `AZURE_CLIENT_ID` as a managed identity's client id"},
	{Name: "AZURE_CLIENT_SECRET", Required: "one of three", Local: true,
		Meaning: "a client secret of that app registration (never in the deployment)"},
	{Name: "AZURE_CLIENT_CERTIFICATE_PATH", Required: "one of three", Local: true,
		Meaning: "or a certificate of the app registration: a file (PEM with key, or PKCS#12)"},
	{Name: "AZURE_CLIENT_CERTIFICATE", Required: "one of three", Azure: true,
		Meaning: "or the certificate itself: PEM, or base64 PKCS#12 (the deployment's Key Vault reference to a Key Vault certificate, with an existing app registration)"},
	{Name: "AZURE_CLIENT_CERTIFICATE_PASSWORD", Required: "no", Local: true,
		Meaning: "the certificate's password, if it has one"},
	{Name: "AZURE_MANAGED_IDENTITY", Required: "one of three", Azure: true, Local: true,
		Meaning: "or no secret at all: `system` or a user-assigned identity's client id, trusted by the app registration as a federated credential (workload identity federation; the deployment's way)"},
	{Name: "AZURE_AUTHORITY_HOST", Required: "no", Default: "`https://login.microsoftonline.com/`", Local: true,
		Meaning: "Entra endpoint (sovereign clouds, the local simulator)"},
	{Name: "GRAPH_BASE_URL", Required: "no", Default: "`https://graph.microsoft.com/v1.0`", Local: true,
		Meaning: "Microsoft Graph endpoint"},
	{Name: "MATTERMOST_URL", Required: "yes", Azure: true, Local: true,
		Meaning: "the Mattermost server, e.g. `https://chat.example.com`: the address people open Mattermost at (`/calstatus` posts late answers only to a `response_url` on this host)"},
	{Name: "MATTERMOST_TOKEN", Required: "yes", Azure: true, Local: true,
		Meaning: "access token with `edit_other_users` (a system admin's personal access token, or a bot given the `system_admin` role); in Azure a Key Vault reference"},
	{Name: "MATTERMOST_SLASH_TOKEN", Required: "no", Azure: true, Local: true,
		Meaning: "the `/calstatus` command's token in each team, as `TEAM_ID=TOKEN` entries, comma-separated: a token works only with its own team's id (Mattermost makes one when the command is created; `calstatus register-command` prints the entries); unset or malformed: the command is refused (the sync goes on). In Azure a Key Vault reference"},
	{Name: "MATTERMOST_WRITE_CONCURRENCY", Required: "no", Default: "`8`",
		Meaning: "Mattermost writes one instance has in flight at most, 1–256 (reads are not held to it): Mattermost sees up to this many times the instances running (see [Load on Mattermost](#load-on-mattermost))"},
	{Name: "SYNC_SCHEDULE", Required: "yes (host)", Default: "`0 */5 * * * *`", Azure: true, Local: true,
		Meaning: "six-field NCRONTAB schedule of SyncTimer"},
	{Name: "SYNC_LOOKAHEAD", Required: "no", Default: "`10m`", Azure: true, Local: true,
		Meaning: "how far ahead availability is fetched"},
	{Name: "TENTATIVE_AS_BUSY", Required: "no", Default: "`true`", Azure: true, Local: true,
		Meaning: "treat tentative meetings as busy"},
	{Name: "SHOW_SUBJECT", Required: "no", Default: "`false`", Azure: true, Local: true,
		Meaning: "show the meeting's subject in the custom status (never for private events); a user can choose otherwise with `/calstatus settings subject on` or `off`"},
	{Name: "NOTIFY_USERS", Required: "no", Default: "`false`", Azure: true, Local: true,
		Meaning: "send users a direct message when calstatus changes their status; a user can choose otherwise with `/calstatus settings notify on` or `off`"},
	{Name: "PRESENCE_SYNC", Required: "no", Default: "`false`", Azure: true,
		Meaning: "Do Not Disturb while Microsoft Teams shows a user in a call or presenting, also with nothing on the calendar (Teams presence). Needs two more Graph application permissions, `Presence.Read.All` and `User.Read.All` (to find each user's Entra object id by email); the deployment asks for them while this or `AUTOMATIC_REPLIES_SYNC` is on, and an administrator consents again"},
	{Name: "AUTOMATIC_REPLIES_SYNC", Required: "no", Default: "`false`", Azure: true,
		Meaning: "while a user's Outlook automatic replies are on, Mattermost's out of office answers their direct messages with the automatic-reply text, off again when the replies end. Needs the same two extra Graph permissions as `PRESENCE_SYNC`"},
	{Name: "TIME_ZONE", Required: "no", Default: "`UTC`", Azure: true, Local: true,
		Meaning: "IANA time zone of dates shown to users (\"Out of office until …\")"},
	{Name: "DRY_RUN", Required: "no", Default: "`false`", Azure: true, Local: true,
		Meaning: "log every change calstatus would make and write nothing (not to Mattermost, not to its state)"},
	{Name: "SYNC_PAUSED", Required: "no", Default: "`false`", Azure: true, Local: true,
		Meaning: "stop all writes at once: no cycle is planned and no shard runs (the status page also has a pause switch)"},
	{Name: "PUBLIC_URL", Required: "no", Default: "`https://` + `WEBSITE_HOSTNAME`",
		Meaning: "the app's public base URL, for the consent callback handed to Microsoft (a custom domain); never taken from the request's headers"},
	{Name: "TRUST_FORWARDED_HEADERS", Required: "no", Default: "`false`",
		Meaning: "with no `PUBLIC_URL`, take the base URL from `X-Forwarded-Host`/`-Proto` (only behind a proxy that sets them and drops clients' own)"},
	{Name: "WEBSITE_HOSTNAME", Required: "set by App Service",
		Meaning: "the app's default host name; the consent callback's host when `PUBLIC_URL` is unset"},
	{Name: "LOG_LEVEL", Required: "no", Default: "`INFO`", Azure: true, Local: true,
		Meaning: "`DEBUG` (also every user's line: at the others a run logs 20 and counts the rest), `INFO`, `WARN`, `ERROR`"},
	{Name: "FUNCTIONS_CUSTOMHANDLER_PORT", Required: "set by the host", Default: "`8080`",
		Meaning: "port the handler listens on (127.0.0.1)"},
}

// HostSettings are settings the deployment gives the Functions host itself, not calstatus.
var HostSettings = []string{"APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "FUNCTIONS_WORKER_RUNTIME"}

func known(name string) bool {
	for _, s := range Settings {
		if s.Name == name {
			return true
		}
	}
	return false
}
