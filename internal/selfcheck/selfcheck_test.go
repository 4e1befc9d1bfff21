package selfcheck

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/calstatus/calstatus/internal/consent"
	"github.com/calstatus/calstatus/internal/mattermost"
)

var now = time.Date(2026, 11, 22, 10, 2, 30, 0, time.UTC)

const (
	secretValue   = "s3cr3t-Value~of-the-client"
	mmTokenValue  = "mmtoken0123456789abcdefghij"
	kvReference   = "@Microsoft.KeyVault(SecretUri=https://kv-calstatus.vault.azure.net/secrets/mattermost-token/0123abcd)"
	identityID    = "6c1f2e3d-4b5a-4978-8a6b-5c4d3e2f1a09"
	connectionStr = "InstrumentationKey=11111111-2222-3333-4444-555555555555;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/;LiveEndpoint=https://westeurope.livediagnostics.monitor.azure.com/"
)

// fakeStorage answers each part with an error (nil: fine) and counts calls.
type fakeStorage struct {
	blob          error
	queue, table  map[string]error
	hang          bool
	calls         atomic.Int64
	containerSeen string
}

func (f *fakeStorage) wait(ctx context.Context) error {
	f.calls.Add(1)
	if f.hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (f *fakeStorage) Container(ctx context.Context, name string) error {
	if err := f.wait(ctx); err != nil {
		return err
	}
	f.containerSeen = name
	return f.blob
}

func (f *fakeStorage) Queue(ctx context.Context, name string) error {
	if err := f.wait(ctx); err != nil {
		return err
	}
	return f.queue[name]
}

func (f *fakeStorage) Table(ctx context.Context, name string) error {
	if err := f.wait(ctx); err != nil {
		return err
	}
	return f.table[name]
}

// fakeCredential issues a JWT with roles, or fails.
type fakeCredential struct {
	roles []string
	err   error
	calls atomic.Int64
}

func (f *fakeCredential) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	f.calls.Add(1)
	if f.err != nil {
		return azcore.AccessToken{}, f.err
	}
	if len(o.Scopes) != 1 || o.Scopes[0] != "https://graph.microsoft.com/.default" {
		return azcore.AccessToken{}, fmt.Errorf("scopes %v", o.Scopes)
	}
	payload, _ := json.Marshal(map[string]any{"roles": f.roles, "aud": "https://graph.microsoft.com"})
	enc := base64.RawURLEncoding
	return azcore.AccessToken{Token: enc.EncodeToString([]byte(`{"typ":"JWT"}`)) + "." + enc.EncodeToString(payload) + ".c2ln", ExpiresOn: now.Add(time.Hour)}, nil
}

type fakeProber struct {
	res   consent.ProbeResult
	err   error
	calls atomic.Int64
}

func (f *fakeProber) Probe(context.Context) (consent.ProbeResult, error) {
	f.calls.Add(1)
	return f.res, f.err
}

type fakeMattermost struct {
	me                       mattermost.Me
	meErr, statusErr, cntErr error
	perms                    map[string]bool
	permErr                  error
	calls                    atomic.Int64
	statusIDs                []string
}

func (f *fakeMattermost) Me(context.Context) (mattermost.Me, error) {
	f.calls.Add(1)
	return f.me, f.meErr
}

func (f *fakeMattermost) Statuses(_ context.Context, ids []string) (map[string]mattermost.Status, error) {
	f.calls.Add(1)
	f.statusIDs = ids
	return map[string]mattermost.Status{}, f.statusErr
}

func (f *fakeMattermost) RolePermissions(_ context.Context, roles []string) (map[string]bool, error) {
	f.calls.Add(1)
	return f.perms, f.permErr
}

func (f *fakeMattermost) CountUsers(context.Context) (mattermost.UserCounts, error) {
	f.calls.Add(1)
	return mattermost.UserCounts{Active: 1200, All: 1234}, f.cntErr
}

// world is a healthy deployment's dependencies; tests break one thing each.
type world struct {
	env     map[string]string
	storage *fakeStorage
	cred    *fakeCredential
	prober  *fakeProber
	mm      *fakeMattermost
	deps    Deps
}

func healthy() *world {
	w := &world{
		env: map[string]string{
			"AzureWebJobsStorage__accountName":          "calstatusabc",
			"AZURE_TENANT_ID":                           "72f988bf-86f1-41af-91ab-2d7cd011db47",
			"GRAPH_CLIENT_ID":                           "0b5f3b4e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
			"AZURE_MANAGED_IDENTITY":                    identityID,
			"MATTERMOST_URL":                            "https://chat.example.com",
			"MATTERMOST_TOKEN":                          mmTokenValue,
			"SYNC_SCHEDULE":                             "0 */5 * * * *",
			"APPLICATIONINSIGHTS_CONNECTION_STRING":     connectionStr,
			"APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "ClientId=" + identityID + ";Authorization=AAD",
		},
		storage: &fakeStorage{},
		cred:    &fakeCredential{roles: []string{"Calendars.ReadBasic.All"}},
		prober:  &fakeProber{res: consent.ProbeResult{Outcome: consent.ProbeOK}},
		mm: &fakeMattermost{me: mattermost.Me{ID: "bot0000000000000000000000a", Username: "calstatus", Roles: []string{"system_user", "system_admin"}, Bot: true},
			perms: map[string]bool{"edit_other_users": true, "manage_system": true}},
	}
	w.deps = Deps{
		Settings: []string{"AzureWebJobsStorage", "AzureWebJobsStorage__accountName", "AZURE_TENANT_ID", "GRAPH_CLIENT_ID", "AZURE_CLIENT_SECRET",
			"AZURE_CLIENT_CERTIFICATE", "AZURE_MANAGED_IDENTITY", "MATTERMOST_URL", "MATTERMOST_TOKEN", "MATTERMOST_SLASH_TOKEN", "SYNC_SCHEDULE",
			"APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"},
		Secrets:        []string{secretValue, mmTokenValue},
		StorageAccount: "calstatusabc", StorageIdentity: identityID,
		HostContainer: "azure-webjobs-hosts", Queues: []string{"sync-shards", "sync-shards-poison"},
		Tables:         []string{"calstatususers", "calstatuscycles", "calstatussettings"},
		CredentialMode: "managed-identity", MattermostURL: "https://chat.example.com",
		TimerFunction: "SyncTimer", InAzure: true,
	}
	return w
}

func (w *world) check(t *testing.T) Report {
	t.Helper()
	d := w.deps
	d.Getenv = func(k string) string { return w.env[k] }
	if d.Storage == nil && w.storage != nil {
		d.Storage = w.storage
	}
	if d.Credential == nil && w.cred != nil && d.CredentialError == nil {
		d.Credential = w.cred
	}
	if d.Permission == nil && w.prober != nil {
		d.Permission = w.prober
	}
	if d.Mattermost == nil && w.mm != nil {
		d.Mattermost = w.mm
	}
	c := &Checker{Deps: d, Now: func() time.Time { return now }, Timeout: 200 * time.Millisecond}
	rep := c.Run(context.Background())
	js, _ := json.Marshal(rep)
	for _, s := range []string{secretValue, mmTokenValue, "kv-calstatus", "0123abcd", "c2ln"} {
		if strings.Contains(string(js), s) {
			t.Fatalf("the report shows %q:\n%s", s, js)
		}
	}
	return rep
}

// want asserts a line's state and that its detail and fix say each of says.
func want(t *testing.T, rep Report, id, state string, says ...string) Line {
	t.Helper()
	l := rep.Line(id)
	if l.ID != id {
		t.Fatalf("no line %s in %+v", id, rep.Lines)
	}
	if l.State != state {
		t.Fatalf("%s: state %s, want %s: %s | fix: %s", id, l.State, state, l.Detail, l.Fix)
	}
	for _, s := range says {
		if !strings.Contains(l.Detail+" | "+l.Fix, s) {
			t.Errorf("%s does not say %q:\n%s\nfix: %s", id, s, l.Detail, l.Fix)
		}
	}
	return l
}

func TestHealthyDeployment(t *testing.T) {
	w := healthy()
	rep := w.check(t)
	// No presence setting: no presence line, nothing else changes.
	lines := slices.DeleteFunc(slices.Clone(order), func(id string) bool { return id == CheckGraphPresence })
	if !rep.OK || rep.Problems != 0 || len(rep.Lines) != len(lines) || !rep.CheckedAt.Equal(now) {
		t.Fatalf("healthy: %+v", rep)
	}
	for i, l := range rep.Lines {
		if l.ID != lines[i] || l.Title == "" || l.Fix != "" || l.Detail == "" {
			t.Errorf("line %d: %+v", i, l)
		}
	}
	want(t, rep, CheckKeyVault, StateOK, "none of the 13 settings", "every reference resolved")
	want(t, rep, CheckBlob, StateOK, "reached container azure-webjobs-hosts in storage account calstatusabc with the managed identity "+identityID)
	want(t, rep, CheckQueues, StateOK, "sync-shards and sync-shards-poison")
	want(t, rep, CheckTables, StateOK, "calstatususers, calstatuscycles and calstatussettings")
	want(t, rep, CheckGraphToken, StateOK, "managed identity", "federated", "Calendars.ReadBasic.All")
	want(t, rep, CheckGraphPermission, StateOK, "getSchedule")
	want(t, rep, CheckMattermostToken, StateOK, "@calstatus (a bot)", "system_admin")
	want(t, rep, CheckMattermostRead, StateOK)
	want(t, rep, CheckMattermostWrite, StateOK, "edit_other_users", "without writing")
	want(t, rep, CheckMattermostCounts, StateOK, "1200 active users, 1234 in all")
	want(t, rep, CheckAppInsights, StateOK, "westeurope-5.in.applicationinsights.azure.com", "managed identity "+identityID)
	want(t, rep, CheckSchedule, StateOK, "next run 2026-11-22 10:05:00 UTC (in 2 minutes 30 seconds), then every 5 minutes")
	if w.storage.containerSeen != "azure-webjobs-hosts" || w.storage.calls.Load() != 6 || w.cred.calls.Load() != 1 ||
		w.prober.calls.Load() != 1 || w.mm.calls.Load() != 4 || fmt.Sprint(w.mm.statusIDs) != "[bot0000000000000000000000a]" {
		t.Fatalf("calls: storage %d, token %d, probe %d, mattermost %d (%v)", w.storage.calls.Load(), w.cred.calls.Load(),
			w.prober.calls.Load(), w.mm.calls.Load(), w.mm.statusIDs)
	}
}

func TestUnresolvedKeyVaultReference(t *testing.T) {
	w := healthy()
	w.env["MATTERMOST_TOKEN"] = kvReference
	w.env["AZURE_CLIENT_CERTIFICATE"] = "  @microsoft.keyvault(VaultName=kv-calstatus;SecretName=cert)"
	w.mm.meErr = &mattermost.Error{Op: "get me", Status: http.StatusUnauthorized, Err: errors.New("Invalid or expired session, please login again.")}
	w.deps.Credential, w.deps.CredentialError, w.deps.CredentialMode = nil, errors.New("graph: AZURE_CLIENT_CERTIFICATE is neither PEM nor base64 PKCS#12"), "certificate"
	rep := w.check(t)
	want(t, rep, CheckKeyVault, StateProblem, "AZURE_CLIENT_CERTIFICATE, MATTERMOST_TOKEN settings still read @Microsoft.KeyVault(…)",
		"Key Vault Secrets User", "secret's name or version", "firewall", "Environment variables", "restart the function app")
	want(t, rep, CheckMattermostToken, StateProblem, "HTTP 401", "MATTERMOST_TOKEN still reads a Key Vault reference: see Key Vault references")
	want(t, rep, CheckGraphToken, StateProblem, "neither PEM nor base64", "still reads a Key Vault reference")
	want(t, rep, CheckGraphPermission, StateNotChecked, "needs a Graph token")

	// One: the singular.
	w = healthy()
	w.env["MATTERMOST_SLASH_TOKEN"] = kvReference
	w.deps.Warnings = []string{"MATTERMOST_SLASH_TOKEN: entry 1 does not start with a Mattermost team id (26 letters and digits) and =; run `calstatus register-command` again: it prints the entries"}
	rep = w.check(t)
	want(t, rep, CheckKeyVault, StateProblem, "MATTERMOST_SLASH_TOKEN setting still reads")
	want(t, rep, CheckSettings, StateProblem, "a part of calstatus is off: MATTERMOST_SLASH_TOKEN: entry 1",
		"MATTERMOST_SLASH_TOKEN still reads a Key Vault reference: see Key Vault references")
}

func TestSettingUnderAnOldName(t *testing.T) {
	w := healthy()
	w.deps.Deprecations = []string{"AZURE_CLIENT_ID is the old name of GRAPH_CLIENT_ID: rename the setting"}
	want(t, w.check(t), CheckSettings, StateProblem, "a setting under an old name: AZURE_CLIENT_ID is the old name of GRAPH_CLIENT_ID", "Rename it")
}

func TestCannotStart(t *testing.T) {
	w := healthy()
	w.deps.ConfigError = "configuration: MATTERMOST_URL is not set; no Graph credential: set AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE(_PATH) or AZURE_MANAGED_IDENTITY"
	w.deps.Storage, w.storage, w.deps.CredentialMode, w.cred, w.mm, w.prober = nil, nil, "", nil, nil, nil
	rep := w.check(t)
	want(t, rep, CheckSettings, StateProblem, "calstatus cannot start, so only this page runs: MATTERMOST_URL is not set", "Environment variables")
	for _, id := range []string{CheckBlob, CheckQueues, CheckTables} {
		want(t, rep, id, StateNotChecked, "AzureWebJobsStorage gives no storage account")
	}
	want(t, rep, CheckGraphToken, StateNotChecked, "no Graph credential is configured")
	want(t, rep, CheckMattermostToken, StateNotChecked, "MATTERMOST_URL or MATTERMOST_TOKEN is not set")
	want(t, rep, CheckMattermostCounts, StateNotChecked, "needs the Mattermost token")
	if rep.OK || rep.Problems != 1 || rep.NotChecked != 9 {
		t.Fatalf("%d problems, %d not checked, ok %v", rep.Problems, rep.NotChecked, rep.OK)
	}
}

func respErr(status int, code string) error {
	return &azcore.ResponseError{StatusCode: status, ErrorCode: code}
}

func TestStorageFaults(t *testing.T) {
	for _, c := range []struct {
		name      string
		connStr   bool
		storage   *fakeStorage
		id, state string
		says      []string
	}{
		{name: "queue role missing", storage: &fakeStorage{queue: map[string]error{"sync-shards-poison": respErr(403, "AuthorizationPermissionMismatch")}},
			id: CheckQueues, state: StateProblem, says: []string{"queue sync-shards-poison: storage account calstatusabc answered 403 AuthorizationPermissionMismatch",
				"Give the managed identity " + identityID + " the role Storage Queue Data Contributor on storage account calstatusabc", "no shard runs"}},
		{name: "table role missing", storage: &fakeStorage{table: map[string]error{"calstatususers": respErr(403, "AuthorizationPermissionMismatch"),
			"calstatuscycles": respErr(403, "AuthorizationPermissionMismatch")}},
			id: CheckTables, state: StateProblem, says: []string{"table calstatususers, calstatuscycles", "Storage Table Data Contributor", "changes nothing"}},
		{name: "blob role missing", storage: &fakeStorage{blob: respErr(403, "AuthorizationPermissionMismatch")},
			id: CheckBlob, state: StateProblem, says: []string{"blob container azure-webjobs-hosts", "Storage Blob Data Owner", "function key"}},
		{name: "container not there yet", storage: &fakeStorage{blob: respErr(404, "ContainerNotFound")},
			id: CheckBlob, state: StateOK, says: []string{"does not exist yet"}},
		{name: "table missing", storage: &fakeStorage{table: map[string]error{"calstatussettings": respErr(404, "TableNotFound")}},
			id: CheckTables, state: StateProblem, says: []string{"table calstatussettings is missing", "restart the function app"}},
		{name: "firewall", storage: &fakeStorage{blob: respErr(403, "AuthorizationFailure")},
			id: CheckBlob, state: StateProblem, says: []string{"refuses the app", "Networking"}},
		{name: "shared key off", connStr: true, storage: &fakeStorage{queue: map[string]error{"sync-shards": respErr(403, "KeyBasedAuthenticationNotPermitted")}},
			id: CheckQueues, state: StateProblem, says: []string{"shared key access is off", "AzureWebJobsStorage__accountName"}},
		{name: "rotated key", connStr: true, storage: &fakeStorage{table: map[string]error{"calstatususers": respErr(403, "AuthenticationFailed")}},
			id: CheckTables, state: StateProblem, says: []string{"key is not the account's", "current connection string"}},
		{name: "no such account", storage: &fakeStorage{blob: &net.DNSError{Err: "no such host", Name: "calstatusabc.blob.core.windows.net", IsNotFound: true}},
			id: CheckBlob, state: StateProblem, says: []string{"does not exist (no such host calstatusabc.blob.core.windows.net)", "AzureWebJobsStorage__accountName"}},
		{name: "identity not assigned", storage: &fakeStorage{queue: map[string]error{"sync-shards": errors.New("ManagedIdentityCredential: no default identity is assigned to this resource")}},
			id: CheckQueues, state: StateProblem, says: []string{"could not get a token for storage", "Identity page", "not its object (principal) id"}},
		{name: "no answer", storage: &fakeStorage{hang: true},
			id: CheckTables, state: StateProblem, says: []string{"no answer within 200ms", "Networking"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := healthy()
			w.storage = c.storage
			if c.connStr {
				w.deps.StorageIdentity = ""
			}
			start := time.Now()
			rep := w.check(t)
			if time.Since(start) > 2*time.Second {
				t.Fatalf("the run took %v", time.Since(start))
			}
			want(t, rep, c.id, c.state, c.says...)
			if c.state == StateProblem && rep.OK {
				t.Fatal("a problem, yet the report is ok")
			}
		})
	}
}

// entraError is what azidentity returns: a dump of the exchange with Entra's description in it.
func entraError(desc string) error {
	return errors.New("ClientSecretCredential: authentication failed. Credential: ...\nPOST https://login.microsoftonline.com/t/oauth2/v2.0/token\n" +
		"RESPONSE 401: 401 Unauthorized\n{\"error\":\"invalid_client\",\"error_description\":\"" + desc + " Trace ID: 1 Correlation ID: 2 Timestamp: 2026-11-22 10:00:00Z\"}")
}

func TestGraphTokenFaults(t *testing.T) {
	for _, c := range []struct {
		name, mode string
		err        error
		says       []string
	}{
		{"wrong secret", "secret", entraError("AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app 'x'."),
			[]string{"AADSTS7000215: Invalid client secret provided.", "copy the secret's Value (not its Secret ID)", "AZURE_CLIENT_SECRET"}},
		{"expired secret", "secret", entraError("AADSTS7000222: The provided client secret keys for app 'x' are expired."),
			[]string{"AADSTS7000222", "has expired", "add a new one"}},
		{"app not found", "managed-identity", entraError("AADSTS700016: Application with identifier 'x' was not found in the directory 'y'."),
			[]string{"AADSTS700016", "no app with the id in GRAPH_CLIENT_ID", "Application (client) ID"}},
		{"federated credential subject", "managed-identity", entraError("AADSTS700213: No matching federated identity record found for presented assertion subject 'a3b2'."),
			[]string{"AADSTS700213", "(its subject does not match)", "Federated credentials", "api://AzureADTokenExchange", "MANAGED_IDENTITY_PRINCIPAL_ID"}},
		{"federated credential", "managed-identity", entraError("AADSTS70021: No matching federated identity record found for presented assertion."),
			[]string{"AADSTS70021", "No federated credential", "issuer https://login.microsoftonline.com/<AZURE_TENANT_ID>/v2.0"}},
		{"tenant", "secret", entraError("AADSTS90002: Tenant 'z' not found."), []string{"AADSTS90002", "AZURE_TENANT_ID is not a tenant"}},
		{"certificate", "certificate", entraError("AADSTS700027: Client assertion failed signature validation."), []string{"AADSTS700027", "Certificates & secrets > Certificates"}},
		{"consent", "secret", entraError("AADSTS7000229: The client application x is missing service principal in the tenant y."), []string{"AADSTS7000229", "consent page"}},
		{"conditional access", "secret", entraError("AADSTS53003: Access has been blocked by Conditional Access policies."), []string{"Conditional Access"}},
		{"unknown code", "secret", entraError("AADSTS1234567: Something new."), []string{"Look up AADSTS1234567 at https://login.microsoftonline.com/error"}},
		{"managed identity", "managed-identity", errors.New("ClientAssertionCredential: ManagedIdentityCredential: no default identity is assigned to this resource"),
			[]string{"the managed identity could not get its token", "Identity page"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := healthy()
			w.cred.err, w.deps.CredentialMode = c.err, c.mode
			rep := w.check(t)
			l := want(t, rep, CheckGraphToken, StateProblem, c.says...)
			if strings.Contains(l.Detail, "Trace ID") || strings.Contains(l.Detail, "\n") {
				t.Errorf("the detail is not one line of Entra's: %q", l.Detail)
			}
			want(t, rep, CheckGraphPermission, StateNotChecked, "needs a Graph token")
			if w.prober.calls.Load() != 0 {
				t.Fatal("Graph was asked for a calendar without a token")
			}
		})
	}
	// A token without the permission: still a token (the permission line decides).
	w := healthy()
	w.cred.roles = nil
	w.prober.res = consent.ProbeResult{Outcome: consent.ProbeNoPermission, Detail: "Graph refused to read the calendar (no_access)"}
	rep := w.check(t)
	want(t, rep, CheckGraphToken, StateOK, "carries no application permission yet")
	want(t, rep, CheckGraphPermission, StateProblem, "no_access", "Calendars.ReadBasic.All", "Grant admin consent", "application access policy")
}

func TestGraphPermissionFaults(t *testing.T) {
	w := healthy()
	w.prober.res = consent.ProbeResult{Outcome: consent.ProbeNotPropagated, Detail: "AADSTS65001: consent missing."}
	want(t, w.check(t), CheckGraphPermission, StateProblem, "does not see the admin consent yet", "AdminConsent", "a few minutes")

	w = healthy()
	w.prober.err = errors.New("finding a user to check with: mattermost: list users: HTTP 401: Invalid or expired session")
	want(t, w.check(t), CheckGraphPermission, StateNotChecked, "could not run: finding a user", "see the Mattermost lines")

	// A user without a mailbox: Graph let calstatus in.
	w = healthy()
	w.prober.res = consent.ProbeResult{Outcome: consent.ProbeError, Detail: "Graph could not answer for the user checked (not_found)"}
	want(t, w.check(t), CheckGraphPermission, StateOK, "accepted calstatus's permission", "no Exchange Online mailbox", "(not_found)")

	w = healthy()
	w.prober.res = consent.ProbeResult{Outcome: consent.ProbeError, Detail: "Graph could not answer for the user checked (server)"}
	want(t, w.check(t), CheckGraphPermission, StateProblem, "(server)", "AdminConsent?check=1")
}

func TestMattermostFaults(t *testing.T) {
	// A wrong token: the rest is not checked.
	w := healthy()
	w.mm.meErr = &mattermost.Error{Op: "get me", Status: 401, Err: errors.New("Invalid or expired session, please login again.")}
	rep := w.check(t)
	want(t, rep, CheckMattermostToken, StateProblem, "Mattermost at https://chat.example.com rejects MATTERMOST_TOKEN (HTTP 401",
		"system admin", "bot account given the system_admin role", "Personal Access Tokens", "restart the function app")
	for _, id := range []string{CheckMattermostRead, CheckMattermostWrite, CheckMattermostCounts} {
		want(t, rep, id, StateNotChecked, "needs the Mattermost token")
	}
	if w.mm.calls.Load() != 1 {
		t.Fatalf("%d calls after the token was refused", w.mm.calls.Load())
	}

	// A plain user's token: reads, but may not set statuses nor count users.
	w = healthy()
	w.mm.me = mattermost.Me{ID: "u", Username: "alice", Roles: []string{"system_user"}}
	w.mm.perms = map[string]bool{"create_post": true}
	w.mm.cntErr = &mattermost.Error{Op: "count users", Status: 403, Err: errors.New("You do not have the appropriate permissions.")}
	rep = w.check(t)
	want(t, rep, CheckMattermostToken, StateOK, "@alice with roles system_user")
	want(t, rep, CheckMattermostRead, StateOK)
	want(t, rep, CheckMattermostWrite, StateProblem, "@alice's roles (system_user) do not grant edit_other_users", "refused (403)", "system_admin role", "mmctl roles system_admin")
	want(t, rep, CheckMattermostCounts, StateProblem, "HTTP 403", "cannot plan a cycle", "sysconsole_read_user_management_users")

	// Roles unreadable: a system admin is still taken at its role.
	w = healthy()
	w.mm.permErr = &mattermost.Error{Op: "get roles", Status: 500, Err: errors.New("boom")}
	want(t, w.check(t), CheckMattermostWrite, StateOK, "system admin")

	// Unreachable, and a status read refused.
	w = healthy()
	w.mm.meErr = &mattermost.Error{Op: "get me", Err: errors.New("dial tcp: connection refused")}
	want(t, w.check(t), CheckMattermostToken, StateProblem, "does not answer", "connection refused", "MATTERMOST_URL")
	w = healthy()
	w.mm.statusErr = &mattermost.Error{Op: "get statuses", Status: 403, Err: errors.New("no")}
	want(t, w.check(t), CheckMattermostRead, StateProblem, "refuses the token (HTTP 403, reading a status)")

	// A secret echoed back is never shown.
	w = healthy()
	w.mm.meErr = &mattermost.Error{Op: "get me", Status: 400, Err: errors.New("bad token " + mmTokenValue + " (Authorization: Bearer " + mmTokenValue + ")")}
	l := want(t, w.check(t), CheckMattermostToken, StateProblem, "HTTP 400", "[redacted]")
	if strings.Contains(l.Detail, mmTokenValue) {
		t.Fatal(l.Detail)
	}
}

func TestAppInsightsSettings(t *testing.T) {
	for _, c := range []struct {
		name, conn, auth string
		inAzure          bool
		state            string
		says             []string
	}{
		{"unset in Azure", "", "", true, StateProblem, []string{"is not set", "alerts and the workbook see nothing", "Overview page"}},
		{"unset locally", "", "", false, StateOK, []string{"expected when calstatus runs locally"}},
		{"bare key", "11111111-2222-3333-4444-555555555555", "", true, StateProblem, []string{"bare instrumentation key"}},
		{"no key", "IngestionEndpoint=https://x.in.applicationinsights.azure.com/", "", true, StateProblem, []string{"no InstrumentationKey"}},
		{"http endpoint", "InstrumentationKey=11111111-2222-3333-4444-555555555555;IngestionEndpoint=http://x/", "", true, StateProblem, []string{"not an https URL"}},
		{"no auth string", connectionStr, "", true, StateOK, []string{"instrumentation key", "local authentication disabled"}},
		{"auth without AAD", connectionStr, "ClientId=" + identityID, true, StateProblem, []string{"Authorization=AAD", "ClientId=<the user-assigned identity's client id>;Authorization=AAD"}},
		{"auth client id", connectionStr, "ClientId=principal;Authorization=AAD", true, StateProblem, []string{"not a client id"}},
		{"system identity", connectionStr, "Authorization=AAD", true, StateOK, []string{"system-assigned identity", "Monitoring Metrics Publisher"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := healthy()
			w.env["APPLICATIONINSIGHTS_CONNECTION_STRING"], w.env["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"], w.deps.InAzure = c.conn, c.auth, c.inAzure
			want(t, w.check(t), CheckAppInsights, c.state, c.says...)
		})
	}
	w := healthy()
	w.env["APPLICATIONINSIGHTS_CONNECTION_STRING"] = kvReference
	rep := w.check(t)
	want(t, rep, CheckAppInsights, StateProblem, "Key Vault reference")
	want(t, rep, CheckKeyVault, StateProblem, "APPLICATIONINSIGHTS_CONNECTION_STRING")
}

func TestSchedule(t *testing.T) {
	for _, c := range []struct {
		name, schedule, disabled, state string
		says                            []string
	}{
		{"unset", "", "", StateProblem, []string{"SYNC_SCHEDULE is not set", "%SYNC_SCHEDULE%", "0 */5 * * * *"}},
		{"minute 61", "0 61 * * * *", "", StateProblem, []string{"SYNC_SCHEDULE is not a schedule", "six-field"}},
		{"disabled", "0 */5 * * * *", "true", StateProblem, []string{"SyncTimer is disabled (AzureWebJobs.SyncTimer.Disabled)", "set it to false"}},
		{"hourly", "0 0 * * * *", "false", StateOK, []string{"next run 2026-11-22 11:00:00 UTC (in 57 minutes 30 seconds), then every 1 hour"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := healthy()
			w.env["SYNC_SCHEDULE"], w.env["AzureWebJobs.SyncTimer.Disabled"] = c.schedule, c.disabled
			want(t, w.check(t), CheckSchedule, c.state, c.says...)
		})
	}
}

// The report is kept for TTL: reloads within it cost no call, concurrent ones share one run, and a
// caller who cannot wait gets the previous report.
func TestCachedAndShared(t *testing.T) {
	w := healthy()
	d := w.deps
	d.Getenv = func(k string) string { return w.env[k] }
	d.Storage, d.Credential, d.Permission, d.Mattermost = w.storage, w.cred, w.prober, w.mm
	clock := now
	var mu sync.Mutex
	c := &Checker{Deps: d, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if rep := c.Check(context.Background()); !rep.OK {
				t.Errorf("%+v", rep)
			}
		})
	}
	wg.Wait()
	if w.cred.calls.Load() != 1 || w.prober.calls.Load() != 1 || w.mm.calls.Load() != 4 || w.storage.calls.Load() != 6 {
		t.Fatalf("20 loads at once ran %d token, %d probe, %d Mattermost, %d storage calls", w.cred.calls.Load(), w.prober.calls.Load(),
			w.mm.calls.Load(), w.storage.calls.Load())
	}
	mu.Lock()
	clock = clock.Add(59 * time.Second)
	mu.Unlock()
	if rep := c.Check(context.Background()); !rep.CheckedAt.Equal(now) || w.prober.calls.Load() != 1 {
		t.Fatalf("within the TTL: checked at %v, %d probes", rep.CheckedAt, w.prober.calls.Load())
	}
	mu.Lock()
	clock = clock.Add(time.Second)
	mu.Unlock()
	if rep := c.Check(context.Background()); !rep.CheckedAt.Equal(now.Add(time.Minute)) || w.prober.calls.Load() != 2 {
		t.Fatalf("after the TTL: checked at %v, %d probes", rep.CheckedAt, w.prober.calls.Load())
	}

	// A run that hangs: a caller whose request ends gets the previous report at once.
	w.storage.hang = true
	c.Timeout = time.Second
	mu.Lock()
	clock = clock.Add(2 * time.Minute)
	mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if rep := c.Check(ctx); !rep.CheckedAt.Equal(now.Add(time.Minute)) {
		t.Fatalf("a caller who could not wait got %v", rep.CheckedAt)
	}
	if rep := c.Check(context.Background()); rep.OK || rep.Line(CheckBlob).State != StateProblem {
		t.Fatalf("after the hang: %+v", rep.Line(CheckBlob))
	}
}

// With a presence setting on, Teams presence has its own line, after the calendar permission's:
// not granted is a problem of that line alone (calendar sync carries on).
func TestGraphPresenceLine(t *testing.T) {
	presence := []string{"Calendars.ReadBasic.All", "Presence.Read.All", "User.Read.All"}
	for _, c := range []struct {
		name   string
		res    consent.ProbeResult
		state  string
		says   []string
		permOK bool
	}{
		{"granted", consent.ProbeResult{Outcome: consent.ProbeOK, Presence: consent.PresenceGranted}, StateOK,
			[]string{"Teams presence", "Presence.Read.All and User.Read.All"}, true},
		{"not granted", consent.ProbeResult{Outcome: consent.ProbeOK, Presence: consent.PresenceNotGranted, PresenceDetail: "Graph refused to read Teams presence (no_access)"},
			StateProblem, []string{"not granted — calendar sync carries on", "(no_access)", "Presence.Read.All and User.Read.All", "PRESENCE_SYNC or AUTOMATIC_REPLIES_SYNC", "consent page"}, true},
		{"failed", consent.ProbeResult{Outcome: consent.ProbeOK, Presence: consent.PresenceError, PresenceDetail: "status 503"},
			StateProblem, []string{"the check failed — calendar sync carries on: status 503"}, true},
		{"calendars first", consent.ProbeResult{Outcome: consent.ProbeWrongTenant, Presence: consent.PresenceNotChecked},
			StateNotChecked, []string{"stopped first"}, false},
		{"prober without presence", consent.ProbeResult{Outcome: consent.ProbeOK}, StateNotChecked, []string{"does not check Teams presence"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := healthy()
			w.deps.Permissions = presence
			w.prober.res = c.res
			rep := w.check(t)
			want(t, rep, CheckGraphPresence, c.state, c.says...)
			if rep.Line(CheckGraphPermission).OK() != c.permOK {
				t.Errorf("the calendar permission's line: %+v", rep.Line(CheckGraphPermission))
			}
			ids := []string{}
			for _, l := range rep.Lines {
				ids = append(ids, l.ID)
			}
			if !slices.Equal(ids, order) || w.prober.calls.Load() != 1 {
				t.Errorf("lines %v (want %v), probes %d", ids, order, w.prober.calls.Load())
			}
		})
	}
	// No token: neither Graph line runs.
	w := healthy()
	w.deps.Permissions = presence
	w.cred.err = errors.New("boom")
	rep := w.check(t)
	want(t, rep, CheckGraphPresence, StateNotChecked, "needs a Graph token")
	// Settings without presence: no line, even from a prober that checked it.
	w = healthy()
	w.deps.Permissions = presence[:1]
	w.prober.res = consent.ProbeResult{Outcome: consent.ProbeOK, Presence: consent.PresenceNotGranted}
	if rep := w.check(t); rep.Line(CheckGraphPresence).ID != "" || !rep.OK {
		t.Errorf("presence off: %+v", rep.Line(CheckGraphPresence))
	}
}
