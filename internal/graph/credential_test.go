package graph_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/internal/graph"
)

func getToken(t *testing.T, cfg graph.CredentialConfig) error {
	t.Helper()
	cred, err := graph.NewCredential(cfg)
	if err != nil {
		return err
	}
	_, err = cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
	return err
}

func TestCertificateCredential(t *testing.T) {
	sim := startSim(t, graphsim.DefaultScenario())
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "calstatus"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	path := filepath.Join(t.TempDir(), "app.pem")
	pemData := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})...)
	if err := os.WriteFile(path, pemData, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := graph.CredentialConfig{TenantID: sim.TenantID(), ClientID: sim.ClientID(), CertificatePath: path,
		AuthorityHost: sim.URL(), Transport: sim.Client()}
	if cfg.Mode() != "certificate" {
		t.Fatalf("mode %q", cfg.Mode())
	}
	if err := getToken(t, cfg); err != nil {
		t.Fatalf("certificate credential: %v", err)
	}
	cfg.CertificatePath = filepath.Join(t.TempDir(), "missing.pem")
	if err := getToken(t, cfg); err == nil {
		t.Fatal("a missing certificate file was accepted")
	}
	// The certificate's content (AZURE_CLIENT_CERTIFICATE, e.g. a Key Vault reference): PEM, or base64.
	for _, content := range []string{string(pemData), base64.StdEncoding.EncodeToString(pemData)} {
		cfg.CertificatePath, cfg.Certificate = "", content
		if err := getToken(t, cfg); err != nil {
			t.Fatalf("certificate content: %v", err)
		}
	}
	cfg.Certificate = "not a certificate"
	if err := getToken(t, cfg); err == nil || !strings.Contains(err.Error(), "AZURE_CLIENT_CERTIFICATE") {
		t.Fatalf("bad certificate content: %v", err)
	}
}

// The app has no secret at all: the function app's managed identity (App Service protocol, as in
// Azure Functions) issues a token for api://AzureADTokenExchange that the app registration trusts.
func TestManagedIdentityFederation(t *testing.T) {
	sim := startSim(t, graphsim.DefaultScenario())
	t.Setenv("IDENTITY_ENDPOINT", sim.IdentityEndpoint())
	t.Setenv("IDENTITY_HEADER", graphsim.DefaultIdentityHeader)
	cfg := graph.CredentialConfig{TenantID: sim.TenantID(), ClientID: sim.ClientID(),
		ManagedIdentity: graphsim.DefaultManagedIdentityClientID, AuthorityHost: sim.URL(), Transport: sim.Client()}
	if err := getToken(t, cfg); err != nil {
		t.Fatalf("federated managed identity: %v", err)
	}
	if sim.Stats().Requests["msi"] > 1 { // MSAL caches managed identity tokens process-wide
		t.Fatalf("managed identity endpoint asked %d times", sim.Stats().Requests["msi"])
	}
	// An identity the app does not trust is refused.
	cfg.ManagedIdentity = "00000000-0000-0000-0000-000000000000"
	if err := getToken(t, cfg); err == nil {
		t.Fatal("an unknown managed identity got a token")
	}
}

func TestTokensAreCachedAcrossCalls(t *testing.T) {
	sim := startSim(t, graphsim.DefaultScenario())
	c := newClient(t, sim)
	for i := 0; i < 3; i++ {
		if _, err := c.GetSchedules(context.Background(), emails(20), window()); err != nil {
			t.Fatal(err)
		}
	}
	if n := sim.Stats().TokensIssued; n != 1 {
		t.Fatalf("%d tokens issued for 3 calls: the token is not cached", n)
	}
}
