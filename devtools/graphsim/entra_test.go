package graphsim

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

func credOptions(s *Server) *azidentity.ClientSecretCredentialOptions {
	return &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: s.URL() + "/"},
			Transport: s.Client(),
		},
		DisableInstanceDiscovery: true,
	}
}

func getToken(ctx context.Context, s *Server, tenant, client, secret string) (azcore.AccessToken, error) {
	cred, err := azidentity.NewClientSecretCredential(tenant, client, secret, credOptions(s))
	if err != nil {
		return azcore.AccessToken{}, err
	}
	return cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{GraphScope}})
}

func TestAzidentityClientSecret(t *testing.T) {
	s := startSim(t, Config{})
	ctx := context.Background()
	cred, err := azidentity.NewClientSecretCredential(s.TenantID(), s.ClientID(), s.ClientSecret(), credOptions(s))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{GraphScope}})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Token == "" || time.Until(tok.ExpiresOn) < 50*time.Minute {
		t.Fatalf("token %+v", tok)
	}
	// Cached by MSAL: no second token request.
	if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{GraphScope}}); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.TokensIssued != 1 || st.Requests["token"] != 1 || st.Requests["openid-configuration"] != 1 {
		t.Fatalf("stats %+v", st)
	}
	// The token works on Graph.
	r := doJSON(t, s, "POST", "/v1.0/users/alice@contoso.example/calendar/getSchedule", tok.Token,
		scheduleBody(testDay, testDay.Add(time.Hour), 30, "alice@contoso.example"), nil)
	if r.status != 200 {
		t.Fatalf("getSchedule with azidentity token: %d %s", r.status, r.body)
	}
}

func TestAzidentityFailures(t *testing.T) {
	s := startSim(t, Config{})
	ctx := context.Background()
	cases := []struct {
		name, tenant, client, secret, want string
	}{
		{"wrong secret", s.TenantID(), s.ClientID(), "nope", "AADSTS7000215"},
		{"wrong tenant", "00000000-1111-2222-3333-444444444444", s.ClientID(), s.ClientSecret(), "AADSTS90002"},
		{"unknown client", s.TenantID(), "99999999-1111-2222-3333-444444444444", s.ClientSecret(), "AADSTS700016"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := getToken(ctx, s, c.tenant, c.client, c.secret)
			if err == nil {
				t.Fatal("want an error")
			}
			mustContain(t, err.Error(), c.want)
		})
	}
	if st := s.Stats(); st.TokensIssued != 0 || st.TokenFailures < 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTokenEndpointErrorsRaw(t *testing.T) {
	s := startSim(t, Config{})
	post := func(form url.Values) (int, map[string]any) {
		resp, err := s.Client().PostForm(s.URL()+"/"+s.TenantID()+"/oauth2/v2.0/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	st, m := post(url.Values{"grant_type": {"client_credentials"}, "client_id": {s.ClientID()}, "client_secret": {"bad"}, "scope": {GraphScope}})
	if st != 401 || m["error"] != "invalid_client" || !strings.HasPrefix(m["error_description"].(string), "AADSTS7000215: Invalid client secret provided.") {
		t.Fatalf("%d %v", st, m)
	}
	st, m = post(url.Values{"grant_type": {"client_credentials"}, "client_id": {s.ClientID()}, "client_secret": {s.ClientSecret()}, "scope": {"https://graph.microsoft.com/Calendars.Read"}})
	if st != 400 || m["error"] != "invalid_scope" {
		t.Fatalf("%d %v", st, m)
	}
	st, m = post(url.Values{"grant_type": {"password"}, "client_id": {s.ClientID()}})
	if st != 400 || m["error"] != "unsupported_grant_type" {
		t.Fatalf("%d %v", st, m)
	}
	st, m = post(url.Values{"grant_type": {"client_credentials"}, "client_id": {s.ClientID()}, "scope": {GraphScope}})
	if st != 401 || m["error"] != "invalid_client" {
		t.Fatalf("%d %v", st, m)
	}
	// Unknown tenant on discovery.
	r := doJSON(t, s, "GET", "/contoso-unknown/v2.0/.well-known/openid-configuration", "", nil, nil)
	if r.status != 400 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	mustContain(t, string(r.body), "AADSTS90002")
	r = doJSON(t, s, "GET", "/"+s.TenantID()+"/.well-known/openid-configuration", "", nil, nil)
	if r.status != 200 || r.json(t)["token_endpoint"] != s.URL()+"/"+s.TenantID()+"/oauth2/v2.0/token" {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

func fakeJWT(claims map[string]any) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]any{"alg": "RS256", "typ": "JWT", "x5t": "abc"})
	c, _ := json.Marshal(claims)
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + "." + enc.EncodeToString([]byte("sig"))
}

func TestClientAssertion(t *testing.T) {
	s := startSim(t, Config{})
	ctx := context.Background()
	mk := func(aud string) func(context.Context) (string, error) {
		return func(context.Context) (string, error) {
			return fakeJWT(map[string]any{
				"aud": aud, "iss": s.ClientID(), "sub": s.ClientID(),
				"exp": time.Now().Add(10 * time.Minute).Unix(), "nbf": time.Now().Unix(), "jti": "x",
			}), nil
		}
	}
	opts := &azidentity.ClientAssertionCredentialOptions{
		ClientOptions:            azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: s.URL() + "/"}, Transport: s.Client()},
		DisableInstanceDiscovery: true,
	}
	cred, err := azidentity.NewClientAssertionCredential(s.TenantID(), s.ClientID(), mk(s.URL()+"/"+s.TenantID()+"/oauth2/v2.0/token"), opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{GraphScope}}); err != nil {
		t.Fatal(err)
	}
	bad, _ := azidentity.NewClientAssertionCredential(s.TenantID(), s.ClientID(), mk("https://elsewhere.example/x"), opts)
	_, err = bad.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{GraphScope}})
	if err == nil {
		t.Fatal("want an audience error")
	}
	mustContain(t, err.Error(), "AADSTS700212")
}

func TestGraphRequiresValidToken(t *testing.T) {
	clock := newFakeClock(testDay.Add(9 * time.Hour))
	s := startSim(t, Config{Now: clock.Now})
	body := scheduleBody(testDay, testDay.Add(time.Hour), 30, "alice@contoso.example")
	for _, tok := range []string{"", "garbage", "a.b.c"} {
		r := doJSON(t, s, "POST", "/v1.0/users/alice@contoso.example/calendar/getSchedule", tok, body, nil)
		if r.status != 401 || r.json(t)["error"].(map[string]any)["code"] != "InvalidAuthenticationToken" {
			t.Fatalf("token %q: %d %s", tok, r.status, r.body)
		}
	}
	r := doJSON(t, s, "POST", "/v1.0/$batch", "", batchOf([]string{"a@b.c"}, testDay, func(int) []string { return []string{"a@b.c"} }), nil)
	if r.status != 401 {
		t.Fatalf("batch without token: %d", r.status)
	}
	tok := fetchToken(t, s)
	if r := doJSON(t, s, "POST", "/v1.0/users/alice@contoso.example/calendar/getSchedule", tok, body, nil); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	clock.Advance(3600 * time.Second)
	r = doJSON(t, s, "POST", "/v1.0/users/alice@contoso.example/calendar/getSchedule", tok, body, nil)
	if r.status != 401 {
		t.Fatalf("expired token: %d %s", r.status, r.body)
	}
	mustContain(t, string(r.body), "expired")
	if st := s.Stats(); st.Unauthorized != 5 || st.TokensIssued != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ca.pem")
	s := startSim(t, Config{CAFile: path})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil || !ca.IsCA {
		t.Fatalf("CA: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	r := doJSON(t, s, "GET", "/_sim/health", "", nil, nil)
	if r.status != 200 {
		t.Fatal(r.status)
	}
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		_ = host
	}
	if string(s.CAPEM()) != string(b) {
		t.Fatal("CAPEM differs from the file")
	}
}
