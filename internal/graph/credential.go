package graph

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// CredentialConfig is how calstatus authenticates to Entra ID.
type CredentialConfig struct {
	TenantID, ClientID, ClientSecret string
	// AuthorityHost is the Entra endpoint (AZURE_AUTHORITY_HOST); empty for the public cloud.
	AuthorityHost string
	// Transport carries token requests (tests trust a local CA with it).
	Transport policy.Transporter
}

const publicAuthority = "https://login.microsoftonline.com/"

// NewCredential builds the token credential. The credential caches tokens, so one per process.
func NewCredential(c CredentialConfig) (azcore.TokenCredential, error) {
	if c.TenantID == "" || c.ClientID == "" || c.ClientSecret == "" {
		return nil, fmt.Errorf("graph: AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET are all required")
	}
	opts := &azidentity.ClientSecretCredentialOptions{}
	if c.Transport != nil {
		opts.Transport = c.Transport
	}
	if host := strings.TrimRight(c.AuthorityHost, "/") + "/"; c.AuthorityHost != "" && !strings.EqualFold(host, publicAuthority) {
		if !strings.HasPrefix(strings.ToLower(host), "https://") {
			return nil, fmt.Errorf("graph: AZURE_AUTHORITY_HOST %q must be an https URL", c.AuthorityHost)
		}
		opts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: host}
		// Instance discovery asks Microsoft's public login host, which a sovereign or local
		// authority does not need (and cannot reach).
		opts.DisableInstanceDiscovery = true
	}
	cred, err := azidentity.NewClientSecretCredential(c.TenantID, c.ClientID, c.ClientSecret, opts)
	if err != nil {
		return nil, fmt.Errorf("graph: credential: %w", err)
	}
	return cred, nil
}

// HTTPTransport adapts an *http.Client's transport for azidentity options.
func HTTPTransport(c *http.Client) policy.Transporter { return c }
