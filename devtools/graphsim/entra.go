package graphsim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

type tokenInfo struct {
	exp   time.Time
	roles []string
}

// serveEntra handles the Entra ID (login.microsoftonline.com) endpoints:
//
//	GET  /{tenant}/v2.0/.well-known/openid-configuration (also /{tenant}/.well-known/...)
//	POST /{tenant}/oauth2/v2.0/token
//	GET  /{tenant}/discovery/v2.0/keys
//	GET  /{tenant}/v2.0/adminconsent (and /{tenant}/adminconsent)
func (s *Server) serveEntra(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 2 {
		s.count("other")
		http.NotFound(w, r)
		return
	}
	tenant := parts[0]
	rest := strings.ToLower(strings.Join(parts[1:], "/"))
	switch rest {
	case "v2.0/.well-known/openid-configuration", ".well-known/openid-configuration":
		s.count("openid-configuration")
		s.serveOpenIDConfig(w, r, tenant)
	case "oauth2/v2.0/token":
		s.count("token")
		s.serveToken(w, r, tenant)
	case "discovery/v2.0/keys", "discovery/keys":
		s.count("other")
		writeJSON(w, http.StatusOK, "", map[string]any{"keys": []any{}})
	case "v2.0/adminconsent", "adminconsent":
		s.count("adminconsent")
		s.serveAdminConsent(w, r, tenant)
	default:
		s.count("other")
		s.writeOAuthError(w, http.StatusNotFound, "invalid_request", 900561, "The endpoint only accepts POST, OPTIONS requests.", "")
	}
}

func (s *Server) knownTenant(t string) bool {
	return strings.EqualFold(t, s.cfg.TenantID)
}

func (s *Server) hostURL(r *http.Request) string {
	if r.Host != "" {
		return "https://" + r.Host
	}
	return s.url
}

func (s *Server) serveOpenIDConfig(w http.ResponseWriter, r *http.Request, tenant string) {
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if !s.knownTenant(tenant) {
		s.writeOAuthError(w, http.StatusBadRequest, "invalid_tenant", 90002, tenantNotFound(tenant), "")
		return
	}
	base := s.hostURL(r) + "/" + s.cfg.TenantID
	writeJSON(w, http.StatusOK, "", map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                base + "/v2.0",
		"request_uri_parameter_supported":       false,
		"userinfo_endpoint":                     "https://graph.microsoft.com/oidc/userinfo",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"http_logout_supported":                 true,
		"frontchannel_logout_supported":         true,
		"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
		"claims_supported":                      []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"},
		"kerberos_endpoint":                     base + "/kerberos",
		"tenant_region_scope":                   "EU",
		"cloud_instance_name":                   "microsoftonline.com",
		"cloud_graph_host_name":                 "graph.windows.net",
		"msgraph_host":                          "graph.microsoft.com",
		"rbac_url":                              "https://pas.windows.net",
	})
}

func tenantNotFound(t string) string {
	return fmt.Sprintf("AADSTS90002: Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", t)
}

// writeOAuthError writes an Entra-style OAuth error.
func (s *Server) writeOAuthError(w http.ResponseWriter, status int, code string, aadsts int, desc, correlationID string) {
	if correlationID == "" {
		correlationID = newGUID()
	}
	trace := newGUID()
	ts := s.now().Format("2006-01-02 15:04:05Z")
	if !strings.HasPrefix(desc, "AADSTS") {
		desc = fmt.Sprintf("AADSTS%d: %s", aadsts, desc)
	}
	s.mu.Lock()
	s.st.httpStatuses[status]++
	s.mu.Unlock()
	writeJSON(w, status, "", map[string]any{
		"error":             code,
		"error_description": fmt.Sprintf("%s Trace ID: %s Correlation ID: %s Timestamp: %s", desc, trace, correlationID, ts),
		"error_codes":       []int{aadsts},
		"timestamp":         ts,
		"trace_id":          trace,
		"correlation_id":    correlationID,
		"error_uri":         fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", aadsts),
	})
}

func (s *Server) tokenFailure() {
	s.mu.Lock()
	s.st.tokenFailures++
	s.mu.Unlock()
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, tenant string) {
	corr := r.Header.Get("client-request-id")
	if r.Method != http.MethodPost {
		s.tokenFailure()
		s.writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", 900561, "The endpoint only accepts POST, OPTIONS requests. Received a GET request.", corr)
		return
	}
	if !s.knownTenant(tenant) {
		s.tokenFailure()
		s.writeOAuthError(w, http.StatusBadRequest, "invalid_request", 90002, tenantNotFound(tenant), corr)
		return
	}
	body, err := readBody(r)
	if err != nil {
		s.tokenFailure()
		s.writeOAuthError(w, http.StatusBadRequest, "invalid_request", 900144, "Could not read the request body.", corr)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		s.tokenFailure()
		s.writeOAuthError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.", corr)
		return
	}
	clientID := form.Get("client_id")
	secret := form.Get("client_secret")
	// client_secret_basic
	if u, p, ok := r.BasicAuth(); ok {
		uu, _ := url.QueryUnescape(u)
		pp, _ := url.QueryUnescape(p)
		if clientID == "" {
			clientID = uu
		}
		if secret == "" {
			secret = pp
		}
	}
	grant := form.Get("grant_type")
	switch {
	case grant == "":
		s.tokenFailure()
		s.writeOAuthError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.", corr)
		return
	case grant != "client_credentials":
		s.tokenFailure()
		s.writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, fmt.Sprintf("The app requested an unsupported grant type '%s'.", grant), corr)
		return
	case clientID == "":
		s.tokenFailure()
		s.writeOAuthError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.", corr)
		return
	case !strings.EqualFold(clientID, s.cfg.ClientID):
		s.tokenFailure()
		s.writeOAuthError(w, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", clientID, tenant), corr)
		return
	}
	// Client authentication.
	assertion := form.Get("client_assertion")
	switch {
	case secret != "" && assertion != "":
		s.tokenFailure()
		s.writeOAuthError(w, http.StatusBadRequest, "invalid_request", 50027, "Client credential must be provided only once: both client_secret and client_assertion were sent.", corr)
		return
	case secret != "":
		if secret != s.cfg.ClientSecret {
			s.tokenFailure()
			s.writeOAuthError(w, http.StatusUnauthorized, "invalid_client", 7000215, fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", s.cfg.ClientID), corr)
			return
		}
	case assertion != "":
		if t := form.Get("client_assertion_type"); t != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			s.tokenFailure()
			s.writeOAuthError(w, http.StatusBadRequest, "invalid_request", 50027, fmt.Sprintf("Invalid client_assertion_type '%s'.", t), corr)
			return
		}
		if code, msg := s.checkAssertion(assertion, r, tenant); code != 0 {
			s.tokenFailure()
			s.writeOAuthError(w, http.StatusUnauthorized, "invalid_client", code, msg, corr)
			return
		}
	default:
		s.tokenFailure()
		s.writeOAuthError(w, http.StatusUnauthorized, "invalid_client", 7000216, "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.", corr)
		return
	}
	// Scope: exactly one resource/.default (OIDC scopes, which MSAL adds, are ignored).
	var resource []string
	for _, sc := range strings.Fields(form.Get("scope")) {
		switch strings.ToLower(sc) {
		case "openid", "profile", "offline_access", "email":
			continue
		}
		resource = append(resource, sc)
	}
	if len(resource) != 1 || !strings.HasSuffix(strings.ToLower(resource[0]), "/.default") {
		s.tokenFailure()
		s.writeOAuthError(w, http.StatusBadRequest, "invalid_scope", 1002012, fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", form.Get("scope")), corr)
		return
	}
	res := strings.TrimSuffix(strings.ToLower(resource[0]), "/.default")
	if res != "https://graph.microsoft.com" && res != "00000003-0000-0000-c000-000000000000" {
		s.tokenFailure()
		s.writeOAuthError(w, http.StatusBadRequest, "invalid_resource", 500011, fmt.Sprintf("The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", res, tenant), corr)
		return
	}

	now := s.now()
	exp := now.Add(s.cfg.TokenLifetime)
	roles := s.Roles()
	tok := s.makeAccessToken(now, exp, roles)
	s.mu.Lock()
	for k, v := range s.tokens { // prune long-expired tokens
		if now.Sub(v.exp) > time.Hour {
			delete(s.tokens, k)
		}
	}
	s.tokens[tok] = tokenInfo{exp: exp, roles: roles}
	s.st.tokensIssued++
	s.st.httpStatuses[http.StatusOK]++
	s.mu.Unlock()
	secs := int(s.cfg.TokenLifetime / time.Second)
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, "", map[string]any{
		"token_type":     "Bearer",
		"expires_in":     secs,
		"ext_expires_in": secs,
		"access_token":   tok,
	})
}

// makeAccessToken returns a JWT-shaped token (not verifiable; the simulator recognises tokens by
// value).
func (s *Server) makeAccessToken(now, exp time.Time, roles []string) string {
	enc := base64.RawURLEncoding
	hdr, _ := json.Marshal(map[string]any{"typ": "JWT", "alg": "RS256", "x5t": "graphsim", "kid": "graphsim"})
	payload, _ := json.Marshal(map[string]any{
		"aud":      "https://graph.microsoft.com",
		"iss":      "https://sts.windows.net/" + s.cfg.TenantID + "/",
		"iat":      now.Unix(),
		"nbf":      now.Unix(),
		"exp":      exp.Unix(),
		"appid":    s.cfg.ClientID,
		"appidacr": "1",
		"idtyp":    "app",
		"oid":      "0f9a8b7c-6d5e-4f3a-9b2c-1d0e9f8a7b6c",
		"sub":      "0f9a8b7c-6d5e-4f3a-9b2c-1d0e9f8a7b6c",
		"roles":    roles,
		"tid":      s.cfg.TenantID,
		"uti":      randHex(8),
		"ver":      "1.0",
	})
	return enc.EncodeToString(hdr) + "." + enc.EncodeToString(payload) + "." + enc.EncodeToString([]byte(randHex(32)))
}

// checkAssertion accepts any well-formed JWT whose iss and sub are the client id, whose aud names
// this authority's token endpoint (or issuer) and which has not expired. The signature is not
// checked.
func (s *Server) checkAssertion(a string, r *http.Request, tenant string) (int, string) {
	if s.federatedAssertion(a) {
		return 0, ""
	}
	parts := strings.Split(a, ".")
	if len(parts) != 3 {
		return 50012, "The client assertion is not a well-formed JWT."
	}
	var hdr map[string]any
	var claims map[string]any
	hb, err1 := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[0], "="))
	pb, err2 := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err1 != nil || err2 != nil || json.Unmarshal(hb, &hdr) != nil || json.Unmarshal(pb, &claims) != nil {
		return 50012, "The client assertion is not a well-formed JWT."
	}
	if parts[2] == "" {
		return 700027, "Client assertion failed signature validation."
	}
	str := func(k string) string { v, _ := claims[k].(string); return v }
	if !strings.EqualFold(str("iss"), s.cfg.ClientID) || !strings.EqualFold(str("sub"), s.cfg.ClientID) {
		return 700021, fmt.Sprintf("Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials (iss=%q sub=%q).", str("iss"), str("sub"))
	}
	var auds []string
	switch v := claims["aud"].(type) {
	case string:
		auds = []string{v}
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok {
				auds = append(auds, s)
			}
		}
	}
	okAud := false
	for _, aud := range auds {
		u, err := url.Parse(aud)
		if err != nil {
			continue
		}
		p := strings.ToLower(strings.TrimSuffix(u.Path, "/"))
		t := strings.ToLower(tenant)
		if p == "/"+t+"/oauth2/v2.0/token" || p == "/"+t+"/v2.0" || p == "/"+strings.ToLower(s.cfg.TenantID)+"/oauth2/v2.0/token" {
			okAud = true
		}
	}
	if !okAud {
		return 700212, fmt.Sprintf("No matching federated identity record found for presented assertion audience '%s'.", strings.Join(auds, ","))
	}
	if exp, ok := claims["exp"].(float64); ok {
		if s.now().After(time.Unix(int64(exp), 0)) {
			return 700024, "Client assertion is not within its valid time range."
		}
	} else {
		return 700024, "Client assertion contains no exp claim."
	}
	return 0, ""
}

// serveAdminConsent simulates the admin consent redirect: it sends the browser back to
// redirect_uri with tenant, state, admin_consent=True and scope (and error/error_description when
// Faults.ConsentError is set, still saying admin_consent=True as Entra does).
func (s *Server) serveAdminConsent(w http.ResponseWriter, r *http.Request, tenant string) {
	q := r.URL.Query()
	redirect := q.Get("redirect_uri")
	if q.Get("client_id") == "" || redirect == "" {
		s.writeOAuthError(w, http.StatusBadRequest, "invalid_request", 900144, "The request must contain client_id and redirect_uri.", "")
		return
	}
	if !strings.EqualFold(q.Get("client_id"), s.cfg.ClientID) {
		s.writeOAuthError(w, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'.", q.Get("client_id"), tenant), "")
		return
	}
	if !s.knownTenant(tenant) && tenant != "organizations" && tenant != "common" {
		s.writeOAuthError(w, http.StatusBadRequest, "invalid_request", 90002, tenantNotFound(tenant), "")
		return
	}
	u, err := url.Parse(redirect)
	if err != nil {
		s.writeOAuthError(w, http.StatusBadRequest, "invalid_request", 50011, "The redirect URI is not valid.", "")
		return
	}
	s.mu.Lock()
	consentErr := s.faults.ConsentError
	s.mu.Unlock()
	rq := u.Query()
	rq.Set("admin_consent", "True")
	rq.Set("tenant", s.cfg.TenantID)
	if st := q.Get("state"); st != "" {
		rq.Set("state", st)
	}
	if consentErr != "" {
		rq.Set("error", consentErr)
		rq.Set("error_description", "AADSTS65004: User declined to consent to access the app.")
	} else {
		rq.Set("scope", q.Get("scope"))
	}
	u.RawQuery = rq.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}
