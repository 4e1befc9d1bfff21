package graph

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// CredentialConfig is how calstatus authenticates to Entra ID as its app registration. Exactly one
// of three ways is used, in this order:
//   - a client secret (ClientSecret);
//   - a certificate: a file (CertificatePath, PEM or PKCS#12, with CertificatePassword if it has
//     one), or its content (Certificate: PEM, or base64 PKCS#12 — what a Key Vault reference to a
//     Key Vault certificate gives);
//   - workload identity federation with the function app's managed identity (ManagedIdentity):
//     the managed identity's token is the app's client assertion, so no secret exists anywhere.
type CredentialConfig struct {
	TenantID, ClientID  string
	ClientSecret        string
	CertificatePath     string
	Certificate         string
	CertificatePassword string
	// ManagedIdentity is "system" for the system-assigned identity or a user-assigned identity's
	// client id.
	ManagedIdentity string
	// AuthorityHost is the Entra endpoint (AZURE_AUTHORITY_HOST); empty for the public cloud.
	AuthorityHost string
	// Transport carries token requests (tests trust a local CA with it).
	Transport policy.Transporter
}

// Mode names the way the configuration authenticates ("" if none is configured).
func (c CredentialConfig) Mode() string {
	switch {
	case c.ClientSecret != "":
		return "secret"
	case c.CertificatePath != "", c.Certificate != "":
		return "certificate"
	case c.ManagedIdentity != "":
		return "managed-identity"
	}
	return ""
}

const (
	publicAuthority = "https://login.microsoftonline.com/"
	// tokenExchangeScope is what a managed identity token must be for to serve as a federated
	// client assertion.
	tokenExchangeScope = "api://AzureADTokenExchange/.default"
)

// NewCredential builds the token credential. Credentials cache their tokens, so build one per
// process and keep it: tokens then last across invocations.
func NewCredential(c CredentialConfig) (azcore.TokenCredential, error) {
	if c.TenantID == "" || c.ClientID == "" {
		return nil, errors.New("graph: AZURE_TENANT_ID and GRAPH_CLIENT_ID are required")
	}
	opts := azcore.ClientOptions{}
	if c.Transport != nil {
		opts.Transport = c.Transport
	}
	disableDiscovery := false
	if host := strings.TrimRight(c.AuthorityHost, "/") + "/"; c.AuthorityHost != "" && !strings.EqualFold(host, publicAuthority) {
		if !strings.HasPrefix(strings.ToLower(host), "https://") {
			return nil, fmt.Errorf("graph: AZURE_AUTHORITY_HOST %q must be an https URL", c.AuthorityHost)
		}
		opts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: host}
		// Instance discovery asks Microsoft's public login host, which a sovereign or local
		// authority does not need (and cannot reach).
		disableDiscovery = true
	}
	switch c.Mode() {
	case "secret":
		cred, err := azidentity.NewClientSecretCredential(c.TenantID, c.ClientID, c.ClientSecret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: disableDiscovery})
		return wrap(cred, err)
	case "certificate":
		data, source, err := c.certificate()
		if err != nil {
			return nil, err
		}
		var password []byte
		if c.CertificatePassword != "" {
			password = []byte(c.CertificatePassword)
		}
		certs, key, err := azidentity.ParseCertificates(data, password)
		if err != nil {
			return nil, fmt.Errorf("graph: %s: %w", source, err)
		}
		cred, err := azidentity.NewClientCertificateCredential(c.TenantID, c.ClientID, certs, key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: disableDiscovery})
		return wrap(cred, err)
	case "managed-identity":
		miOpts := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts}
		if !strings.EqualFold(c.ManagedIdentity, "system") {
			miOpts.ID = azidentity.ClientID(c.ManagedIdentity)
		}
		mi, err := azidentity.NewManagedIdentityCredential(miOpts)
		if err != nil {
			return nil, fmt.Errorf("graph: managed identity: %w", err)
		}
		assertion := func(ctx context.Context) (string, error) {
			tok, err := mi.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{tokenExchangeScope}})
			return tok.Token, err
		}
		cred, err := azidentity.NewClientAssertionCredential(c.TenantID, c.ClientID, assertion,
			&azidentity.ClientAssertionCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: disableDiscovery})
		return wrap(cred, err)
	}
	return nil, errors.New("graph: no credential configured: set AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE(_PATH) or AZURE_MANAGED_IDENTITY")
}

// certificate returns the certificate's bytes and the setting they come from.
func (c CredentialConfig) certificate() ([]byte, string, error) {
	if c.CertificatePath != "" {
		data, err := os.ReadFile(c.CertificatePath)
		if err != nil {
			return nil, "", fmt.Errorf("graph: AZURE_CLIENT_CERTIFICATE_PATH: %w", err)
		}
		return data, "AZURE_CLIENT_CERTIFICATE_PATH " + c.CertificatePath, nil
	}
	if strings.Contains(c.Certificate, "-----BEGIN") {
		return []byte(c.Certificate), "AZURE_CLIENT_CERTIFICATE", nil
	}
	data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(c.Certificate))
	if err != nil {
		return nil, "", errors.New("graph: AZURE_CLIENT_CERTIFICATE is neither PEM nor base64 PKCS#12")
	}
	return data, "AZURE_CLIENT_CERTIFICATE", nil
}

// aadsts finds Entra's error code and message ("AADSTS7000215: Invalid client secret provided.")
// in azidentity's multi-line error, which dumps the whole HTTP exchange.
var aadsts = regexp.MustCompile(`AADSTS\d+:[^\\\n"]*?\.`)

// BriefAuthError is one line saying why Entra ID refused the credential.
func BriefAuthError(err error) string {
	if m := aadsts.FindString(err.Error()); m != "" {
		return m
	}
	first, _, _ := strings.Cut(strings.TrimSpace(err.Error()), "\n")
	return first
}

func wrap(cred azcore.TokenCredential, err error) (azcore.TokenCredential, error) {
	if err != nil {
		return nil, fmt.Errorf("graph: credential: %w", err)
	}
	return cred, nil
}
