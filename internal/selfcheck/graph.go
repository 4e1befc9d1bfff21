package selfcheck

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/calstatus/calstatus/internal/config"
	"github.com/calstatus/calstatus/internal/consent"
	"github.com/calstatus/calstatus/internal/graph"
)

// graphScope is what calstatus asks Entra ID for (internal/graph's scope).
const graphScope = "https://graph.microsoft.com/.default"

// readPermission is the application permission getSchedule needs.
const readPermission = config.PermissionCalendars

var aadstsCode = regexp.MustCompile(`AADSTS(\d{4,8})`)

// noMailbox is the consent prober's detail when Graph answered, for the user checked, that there is
// no mailbox (graph's failure classes not_found and no_mailbox).
var noMailbox = regexp.MustCompile(`\((not_found|no_mailbox)\)$`)

// credentialName says how calstatus signs in, for the lines.
func (r *run) credentialName() string {
	switch r.d.CredentialMode {
	case "secret":
		return "the client secret (AZURE_CLIENT_SECRET)"
	case "certificate":
		return "the certificate (AZURE_CLIENT_CERTIFICATE)"
	case "managed-identity":
		return "the managed identity (AZURE_MANAGED_IDENTITY) federated with the app registration"
	}
	return "the configured credential"
}

// graph checks the token, then the permissions with it.
func (r *run) graph(ctx context.Context) {
	if !r.graphToken(ctx) {
		r.skip(CheckGraphPermission, "needs a Graph token (see Microsoft Graph: token)")
		r.skip(CheckGraphPresence, "needs a Graph token (see Microsoft Graph: token)")
		return
	}
	r.graphPermission(ctx)
}

// readsPresence: a setting reads Teams presence, so its permissions are checked too.
func (r *run) readsPresence() bool {
	return slices.Contains(r.d.Permissions, config.PermissionPresence)
}

// graphPresence reports the probe's check of Teams presence. Calendar sync does not need it: a
// missing permission is a problem of the presence settings alone.
func (r *run) graphPresence(res consent.ProbeResult) {
	perms := config.PermissionPresence + " and " + config.PermissionUserLookup
	switch res.Presence {
	case consent.PresenceGranted:
		r.ok(CheckGraphPresence, "Graph answered one user's Teams presence ("+perms+")")
	case consent.PresenceNotGranted:
		r.problem(CheckGraphPresence, "not granted — calendar sync carries on: "+res.PresenceDetail,
			"PRESENCE_SYNC or AUTOMATIC_REPLIES_SYNC needs the application permissions "+perms+" with admin consent: the deployment adds them to the app registration "+
				"(an app registration of your own needs them added under API permissions); then an administrator grants admin consent again on the consent page (AdminConsent). "+
				"Consent takes a few minutes to reach Graph.")
	case consent.PresenceError:
		r.problem(CheckGraphPresence, "the check failed — calendar sync carries on: "+res.PresenceDetail,
			"The consent page (AdminConsent?check=1) runs the same check; the function's log has the details.")
	case consent.PresenceNotChecked:
		r.skip(CheckGraphPresence, "the check of calendars stopped first (see Microsoft Graph: permission)")
	default:
		r.skip(CheckGraphPresence, "calstatus does not check Teams presence in this build")
	}
}

func (r *run) graphToken(ctx context.Context) bool {
	if r.d.Credential == nil {
		if r.d.CredentialError == nil {
			r.skip(CheckGraphToken, "no Graph credential is configured (see Settings)")
			return false
		}
		detail := "calstatus could not build its Graph credential: " + brief(r.d.CredentialError)
		fix := "AZURE_CLIENT_CERTIFICATE must hold the certificate with its private key: PEM, or base64 PKCS#12 (what a Key Vault reference to a Key Vault certificate's secret gives)."
		switch {
		case r.isUnresolved("AZURE_CLIENT_CERTIFICATE") || r.isUnresolved("AZURE_CLIENT_SECRET"):
			fix = "The credential's setting still reads a Key Vault reference: see Key Vault references."
		case r.d.CredentialMode != "certificate":
			fix = "Correct the setting the message names."
		}
		r.problem(CheckGraphToken, detail, fix)
		return false
	}
	var tok string
	err := r.within(ctx, func(ctx context.Context) error {
		t, err := r.d.Credential.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{graphScope}})
		tok = t.Token
		return err
	})
	if err != nil {
		detail, fix := r.tokenFailure(err)
		r.problem(CheckGraphToken, detail, fix)
		return false
	}
	detail := "Entra ID issued a token for Microsoft Graph through " + r.credentialName()
	if roles, ok := tokenRoles(tok); ok {
		if len(roles) == 0 {
			detail += "; it carries no application permission yet (admin consent not granted, or not in effect yet)"
		} else {
			detail += "; its application permissions: " + strings.Join(roles, ", ")
		}
	}
	r.ok(CheckGraphToken, detail)
	return true
}

// tokenRoles reads the roles claim of a JWT access token without verifying it (for the line only:
// the token is never shown). ok is false when the token is not a readable JWT.
func tokenRoles(tok string) (roles []string, ok bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, false
	}
	var claims struct {
		Roles []string `json:"roles"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return nil, false
	}
	sort.Strings(claims.Roles)
	return claims.Roles, true
}

// tokenFailure says why Entra ID gave no token and what to do, by its AADSTS code.
func (r *run) tokenFailure(err error) (detail, fix string) {
	msg := graph.BriefAuthError(err)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("Entra ID gave no token within %s", r.timeout),
			"Check that the function app reaches login.microsoftonline.com (or AZURE_AUTHORITY_HOST) through its network."
	}
	m := aadstsCode.FindStringSubmatch(msg)
	if m == nil {
		if strings.Contains(err.Error(), "ManagedIdentityCredential") {
			return "the managed identity could not get its token: " + msg,
				"Assign the user-assigned identity AZURE_MANAGED_IDENTITY names to the function app (its Identity page), and give its client id there, not its object (principal) id; or \"system\" for the system-assigned identity."
		}
		return "Entra ID gave no token: " + msg, "Check AZURE_TENANT_ID, " + r.d.Names.ClientID + " and the credential's settings; the function's log has the full error."
	}
	code := m[1]
	detail = "Entra ID refused the credential: " + msg
	app := "the app registration " + r.d.Names.ClientID + " names"
	federated := "In Entra admin center > App registrations > " + app + " > Certificates & secrets > Federated credentials, " +
		"a credential must have issuer https://login.microsoftonline.com/<AZURE_TENANT_ID>/v2.0, subject the managed identity's object (principal) id " +
		"(the deployment's output MANAGED_IDENTITY_PRINCIPAL_ID) and audience api://AzureADTokenExchange; the deployment creates it."
	switch code {
	case "7000215":
		fix = "AZURE_CLIENT_SECRET is not a secret of " + app + ": copy the secret's Value (not its Secret ID) from Certificates & secrets, or add a new secret, and put it in AZURE_CLIENT_SECRET."
	case "7000222":
		fix = "The client secret has expired: add a new one in " + app + "'s Certificates & secrets and put its Value in AZURE_CLIENT_SECRET (or move to the managed identity: no secret to expire)."
	case "700016":
		fix = "There is no app with the id in " + r.d.Names.ClientID + " in tenant AZURE_TENANT_ID: compare both with the app registration's Overview (Application (client) ID, Directory (tenant) ID)."
	case "90002", "90023", "900023":
		fix = "AZURE_TENANT_ID is not a tenant Entra ID knows: set it to the Directory (tenant) ID of your organisation (Entra admin center > Overview)."
	case "70021", "700211", "700212", "700213", "7002131":
		which := map[string]string{"700211": " (its issuer does not match)", "700212": " (its audience does not match)",
			"700213": " (its subject does not match)"}[code]
		detail += which
		fix = "No federated credential of " + app + " matches the managed identity's token. " + federated
	case "700024":
		fix = "The managed identity's token was not valid at that time (a clock or cache problem): restart the function app; if it persists, check the federated credential. " + federated
	case "700027":
		fix = "The certificate is not one of " + app + "'s: upload its public part under Certificates & secrets > Certificates, or point AZURE_CLIENT_CERTIFICATE at the registered one."
	case "7000112":
		fix = app + " is disabled in the tenant: enable its enterprise application (Properties > Enabled for users to sign in)."
	case "7000229", "500011":
		fix = "The tenant has no service principal for " + app + " yet: an administrator grants admin consent on calstatus's consent page (AdminConsent), which creates it."
	case "53003":
		fix = "A Conditional Access policy for workload identities blocks the app: exclude its service principal, or allow where the function app runs."
	default:
		if strings.HasPrefix(code, "650") {
			fix = "The app is not consented in the tenant: an administrator grants admin consent on calstatus's consent page (AdminConsent)."
		} else {
			fix = "Look up AADSTS" + code + " at https://login.microsoftonline.com/error (Microsoft's page of Entra ID's error codes)."
		}
	}
	return detail, fix
}

// graphPermission makes one getSchedule for one user (the consent pages' check, with its own bound:
// the report is kept for TTL).
func (r *run) graphPermission(ctx context.Context) {
	if r.d.Permission == nil {
		r.skip(CheckGraphPermission, "not configured")
		r.skip(CheckGraphPresence, "not configured")
		return
	}
	var res consent.ProbeResult
	err := r.within(ctx, func(ctx context.Context) error {
		var err error
		res, err = r.d.Permission.Probe(ctx)
		return err
	})
	if err != nil {
		r.skip(CheckGraphPermission, "could not run: "+brief(err)+" (the check asks Graph for the calendar of Mattermost's first user with an email: see the Mattermost lines)")
		r.skip(CheckGraphPresence, "could not run: "+brief(err))
		return
	}
	r.graphPresence(res)
	const consentFix = "An administrator grants admin consent on calstatus's consent page (AdminConsent), or the deployment grants the application permission " +
		readPermission + " itself; consent takes a few minutes to reach Graph."
	switch {
	case res.Outcome == consent.ProbeOK:
		r.ok(CheckGraphPermission, "Graph answered getSchedule for one user: calstatus may read calendars ("+readPermission+")")
	case res.Outcome == consent.ProbeNotPropagated:
		r.problem(CheckGraphPermission, "Entra ID does not see the admin consent yet: "+res.Detail, consentFix)
	case res.Outcome == consent.ProbeNoPermission:
		r.problem(CheckGraphPermission, "Graph refused to read the calendar: "+res.Detail,
			"The app registration needs the application permission "+readPermission+" with admin consent (Entra admin center > App registrations > the app > API permissions > Grant admin consent). "+
				"If it has it, an Exchange Online application access policy or RBAC for Applications may leave out this mailbox.")
	case res.Outcome == consent.ProbeWrongTenant:
		r.problem(CheckGraphPermission, "Entra ID does not know the tenant: "+res.Detail,
			"Set AZURE_TENANT_ID to your organisation's Directory (tenant) ID.")
	case res.Outcome == consent.ProbeError && noMailbox.MatchString(res.Detail):
		// Graph checks the permission before it looks for the mailbox: it let calstatus in.
		r.ok(CheckGraphPermission, "Graph accepted calstatus's permission ("+readPermission+"); the user checked has no Exchange Online mailbox: "+res.Detail)
	default:
		r.problem(CheckGraphPermission, "the check failed: "+res.Detail,
			"The consent page (AdminConsent?check=1) runs the same check; the function's log has the details.")
	}
}
