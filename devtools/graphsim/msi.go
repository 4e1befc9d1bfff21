package graphsim

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The simulated managed identity, for workload identity federation: in Azure Functions (App Service)
// the host sets IDENTITY_ENDPOINT and IDENTITY_HEADER; azidentity's ManagedIdentityCredential asks
// that endpoint for a token for api://AzureADTokenExchange, and the app registration trusts that
// token as its client assertion (a federated identity credential), so no secret exists at all.
const (
	// DefaultIdentityHeader is the X-IDENTITY-HEADER value the MSI endpoint expects.
	DefaultIdentityHeader = "graphsim-identity-header"
	// DefaultManagedIdentityClientID is the user-assigned managed identity the app trusts.
	DefaultManagedIdentityClientID = "6c1f2e3d-4b5a-4978-8a6b-5c4d3e2f1a09"
	managedIdentityPrincipal       = "a3b2c1d0-e9f8-4a7b-8c6d-5e4f3a2b1c0d"
	tokenExchangeAudience          = "api://AzureADTokenExchange"
)

// IdentityEndpoint is the value for IDENTITY_ENDPOINT (App Service managed identity protocol).
func (s *Server) IdentityEndpoint() string { return s.url + "/msi/token" }

// serveMSI answers App Service's managed identity token protocol (api-version 2019-08-01).
func (s *Server) serveMSI(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	fail := func(status int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"statusCode": status, "message": msg})
	}
	switch {
	case r.Header.Get("X-IDENTITY-HEADER") != DefaultIdentityHeader:
		fail(http.StatusUnauthorized, "X-IDENTITY-HEADER is missing or wrong")
		return
	case q.Get("api-version") != "2019-08-01":
		fail(http.StatusBadRequest, "unsupported api-version "+q.Get("api-version"))
		return
	case q.Get("resource") != tokenExchangeAudience:
		fail(http.StatusBadRequest, "this managed identity only federates: resource must be "+tokenExchangeAudience)
		return
	case q.Get("client_id") != "" && q.Get("client_id") != DefaultManagedIdentityClientID:
		fail(http.StatusBadRequest, "no managed identity with client_id "+q.Get("client_id")+" is assigned to this app")
		return
	}
	now := s.now()
	exp := now.Add(time.Hour)
	enc := base64.RawURLEncoding
	hdr, _ := json.Marshal(map[string]any{"typ": "JWT", "alg": "RS256", "kid": "graphsim-msi"})
	payload, _ := json.Marshal(map[string]any{
		"aud": tokenExchangeAudience, "iss": s.url + "/" + s.cfg.TenantID + "/v2.0", "sub": managedIdentityPrincipal,
		"oid": managedIdentityPrincipal, "appid": DefaultManagedIdentityClientID, "tid": s.cfg.TenantID,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": exp.Unix(),
	})
	tok := enc.EncodeToString(hdr) + "." + enc.EncodeToString(payload) + "." + enc.EncodeToString([]byte(randHex(32)))
	s.mu.Lock()
	s.st.requests["msi"]++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": tok, "expires_on": strconv.FormatInt(exp.Unix(), 10), "resource": tokenExchangeAudience,
		"token_type": "Bearer", "client_id": DefaultManagedIdentityClientID,
	})
}

// federatedAssertion reports whether a client assertion is a valid token of the managed identity the
// app registration trusts (its federated credential: audience api://AzureADTokenExchange, subject
// the identity's principal, this tenant). Like Entra it checks claims, not which instance issued it:
// MSAL caches managed identity tokens process-wide, across simulator instances in one test binary.
func (s *Server) federatedAssertion(a string) bool {
	parts := strings.Split(a, ".")
	if len(parts) != 3 {
		return false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return false
	}
	var c struct {
		Aud, Sub, Tid string
		Exp           int64
	}
	if json.Unmarshal(payload, &c) != nil {
		return false
	}
	return c.Aud == tokenExchangeAudience && c.Sub == managedIdentityPrincipal && c.Tid == s.cfg.TenantID &&
		s.now().Before(time.Unix(c.Exp, 0))
}
