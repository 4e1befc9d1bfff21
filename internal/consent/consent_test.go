package consent_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calstatus/calstatus/handler"
	"github.com/calstatus/calstatus/internal/consent"
	"github.com/calstatus/calstatus/internal/store"
	"github.com/calstatus/calstatus/internal/web"
)

const (
	tenantID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	clientID = "11111111-2222-3333-4444-555555555555"
	pubHost  = "calstatus-x1.azurewebsites.net"
)

// fakeStore is the Store in memory, counting what was recorded.
type fakeStore struct {
	mu       sync.Mutex
	key      []byte
	used     map[string]time.Time
	records  []store.ConsentRecord
	useErr   error // UseState fails with it (other than ErrStateUsed)
	useCalls int
	checked  time.Time // the last Graph check claimed
}

func newFakeStore() *fakeStore {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(0xA0 + i)
	}
	return &fakeStore{key: key, used: map[string]time.Time{}}
}

func (s *fakeStore) StateKey(context.Context) ([]byte, error) {
	return append([]byte(nil), s.key...), nil
}

func (s *fakeStore) UseState(_ context.Context, nonce string, expires time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.useCalls++
	if s.useErr != nil {
		return s.useErr
	}
	if _, ok := s.used[nonce]; ok {
		return store.ErrStateUsed
	}
	s.used[nonce] = expires
	return nil
}

func (s *fakeStore) RecordConsent(_ context.Context, r store.ConsentRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = append(s.records, r)
	return nil
}

func (s *fakeStore) Consent(context.Context) (store.ConsentRecord, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.records) == 0 {
		return store.ConsentRecord{}, false, nil
	}
	return s.records[len(s.records)-1], true, nil
}

func (s *fakeStore) ClaimCheck(_ context.Context, now time.Time, every time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.checked) < every {
		return false, nil
	}
	s.checked = now
	return true, nil
}

func (s *fakeStore) recorded() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.records)
}

type fakeProber struct {
	mu    sync.Mutex
	res   consent.ProbeResult
	err   error
	calls int
}

func (p *fakeProber) Probe(context.Context) (consent.ProbeResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	return p.res, p.err
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

type env struct {
	h      *consent.Handler
	store  *fakeStore
	prober *fakeProber
	clock  *clock
	seen   []web.Response // every response, for the checks on secrets and headers
	// cookie is the browser's: the binding cookie the last page set, sent with every request.
	cookie string
}

func newEnv() *env {
	e := &env{store: newFakeStore(), prober: &fakeProber{res: consent.ProbeResult{Outcome: consent.ProbeOK}},
		clock: &clock{t: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}}
	e.h = &consent.Handler{Store: e.store, Prober: e.prober, TenantID: tenantID, ClientID: clientID, Now: e.clock.now,
		Origin: web.Origin{Public: "https://" + pubHost}}
	return e
}

// request is what the Functions host passes for a page: the URL it listens on, and what the
// client sent (here with its cookie).
func request(path string, query map[string]string, cookie string) web.Request {
	r := web.Request{Method: "GET", URL: "http://127.0.0.1:7071" + path, Query: query,
		Headers: map[string][]string{"Host": {"127.0.0.1:7071"}}}
	if cookie != "" {
		r.Headers["Cookie"] = []string{"other=1; " + cookie}
	}
	return r
}

func (e *env) page(t *testing.T, query map[string]string) web.Response {
	t.Helper()
	resp, err := e.h.Page(context.Background(), nil, request(consent.PagePath, query, e.cookie))
	if err != nil {
		t.Fatal(err)
	}
	e.seen = append(e.seen, resp)
	if c, ok := resp.Headers["Set-Cookie"]; ok {
		e.cookie, _, _ = strings.Cut(c, ";")
	}
	return resp
}

func (e *env) callback(t *testing.T, query map[string]string) web.Response {
	t.Helper()
	resp, err := e.h.Callback(context.Background(), nil, request(consent.CallbackPath, query, e.cookie))
	if err != nil {
		t.Fatal(err)
	}
	e.seen = append(e.seen, resp)
	return resp
}

var buttonHref = regexp.MustCompile(`<a class="button" href="([^"]+)">Grant admin consent</a>`)

// consentLink is the page's link to Microsoft.
func consentLink(t *testing.T, resp web.Response) *url.URL {
	t.Helper()
	m := buttonHref.FindStringSubmatch(resp.Body)
	if m == nil {
		t.Fatalf("no consent button in:\n%s", resp.Body)
	}
	u, err := url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// success is Microsoft's redirect after a granted consent.
func success(state string) map[string]string {
	return map[string]string{"admin_consent": "True", "tenant": tenantID, "state": state, "scope": "https://graph.microsoft.com/.default"}
}

func (e *env) freshState(t *testing.T) string {
	t.Helper()
	return consentLink(t, e.page(t, nil)).Query().Get("state")
}

func expect(t *testing.T, resp web.Response, status int, texts ...string) {
	t.Helper()
	if resp.Status != status {
		t.Fatalf("status %d, want %d:\n%s", resp.Status, status, resp.Body)
	}
	for _, s := range texts {
		if !strings.Contains(resp.Body, s) {
			t.Fatalf("body lacks %q:\n%s", s, resp.Body)
		}
	}
}

// checkSafe asserts what every response must hold: the security headers, and no trace of the key.
func (e *env) checkSafe(t *testing.T) {
	t.Helper()
	k := e.store.key
	forms := []string{base64.StdEncoding.EncodeToString(k), base64.RawStdEncoding.EncodeToString(k),
		base64.URLEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k), hex.EncodeToString(k),
		strings.ToUpper(hex.EncodeToString(k)), string(k)}
	for i, resp := range e.seen {
		h := resp.Headers
		csp := h["Content-Security-Policy"]
		for _, d := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'none'", "img-src data:"} {
			if !strings.Contains(csp, d) {
				t.Fatalf("response %d: CSP %q lacks %q", i, csp, d)
			}
		}
		if strings.Contains(csp, "script-src") || strings.Contains(csp, "unsafe") {
			t.Fatalf("response %d: CSP %q allows too much", i, csp)
		}
		if h["Cache-Control"] != "no-store" || h["X-Content-Type-Options"] != "nosniff" || h["Referrer-Policy"] != "no-referrer" ||
			h["Content-Type"] != "text/html; charset=utf-8" {
			t.Fatalf("response %d: headers %v", i, h)
		}
		all := resp.Body
		for k, v := range h {
			all += "\n" + k + ": " + v
		}
		for _, f := range forms {
			if strings.Contains(all, f) {
				t.Fatalf("response %d holds the state key", i)
			}
		}
		if strings.Contains(strings.ToLower(resp.Body), "<script") {
			t.Fatalf("response %d holds a script tag:\n%s", i, resp.Body)
		}
	}
}

func TestPageLinksToMicrosoftAndTheCallbackAcceptsItsState(t *testing.T) {
	e := newEnv()
	resp := e.page(t, nil)
	expect(t, resp, http.StatusOK, "Calendars.ReadBasic.All", "Free/busy availability", "never event bodies or attachments",
		"no mail", "What calstatus writes", "Mattermost", "custom statuses", "No admin consent recorded yet.")
	u := consentLink(t, resp)
	if u.Scheme != "https" || u.Host != "login.microsoftonline.com" || u.Path != "/"+tenantID+"/v2.0/adminconsent" {
		t.Fatalf("consent link %s", u)
	}
	q := u.Query()
	if q.Get("client_id") != clientID || q.Get("scope") != "https://graph.microsoft.com/.default" ||
		q.Get("redirect_uri") != "https://"+pubHost+"/api/AdminConsentCallback" || q.Get("state") == "" || len(q) != 4 {
		t.Fatalf("consent link query %v", q)
	}
	// The state is URL-safe as issued: no encoding needed, none lost.
	if !regexp.MustCompile(`^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`).MatchString(q.Get("state")) {
		t.Fatalf("state %q", q.Get("state"))
	}

	e.clock.t = e.clock.t.Add(9 * time.Minute) // within the TTL
	// Microsoft names the tenant in its own case: compared case-insensitively.
	ok := success(q.Get("state"))
	ok["tenant"] = strings.ToUpper(tenantID)
	cb := e.callback(t, ok)
	expect(t, cb, http.StatusOK, "Admin consent granted", tenantID, "access works", "Next steps", "MATTERMOST_TOKEN",
		`href="Status"`, "/api/Status", "README")
	if e.prober.calls != 1 {
		t.Fatalf("probe ran %d times", e.prober.calls)
	}
	if len(e.store.records) != 2 {
		t.Fatalf("records %+v: want the consent, then its probe", e.store.records)
	}
	first, last := e.store.records[0], e.store.records[1]
	if first.Tenant != tenantID || !first.At.Equal(e.clock.t) || first.Probe != "" {
		t.Fatalf("consent record %+v", first)
	}
	if last.Tenant != tenantID || !last.At.Equal(e.clock.t) || last.Probe != "ok" || last.ProbedAt.IsZero() {
		t.Fatalf("probe record %+v", last)
	}
	// The page now shows the consent.
	expect(t, e.page(t, nil), http.StatusOK, "Consent granted: tenant <code>"+tenantID+"</code>'s consent answer arrived on Mon 30 Nov 2026 09:09 UTC",
		"access works")
	e.checkSafe(t)
}

func TestEachLoadGivesAnotherState(t *testing.T) {
	e := newEnv()
	seen := map[string]bool{}
	for range 20 {
		s := e.freshState(t)
		if seen[s] {
			t.Fatalf("state %q issued twice", s)
		}
		seen[s] = true
	}
	e.checkSafe(t)
}

func TestRefusedCallbacksRecordNothing(t *testing.T) {
	flip := func(state string) string {
		p, s, _ := strings.Cut(state, ".")
		mac, _ := base64.RawURLEncoding.DecodeString(s)
		mac[5] ^= 0x01
		return p + "." + base64.RawURLEncoding.EncodeToString(mac)
	}
	cases := []struct {
		name  string
		query func(e *env, state string) map[string]string
		// before runs just before the callback.
		before func(e *env)
		want   []string
		// consumed: the state was recorded as used (a bad state or an error never is).
		consumed bool
	}{
		{name: "forged signature", query: func(_ *env, s string) map[string]string { return success(flip(s)) },
			want: []string{"not issued by calstatus", "Nothing was recorded"}},
		{name: "forged payload", query: func(_ *env, s string) map[string]string {
			p, sig, _ := strings.Cut(s, ".")
			raw, _ := base64.RawURLEncoding.DecodeString(p)
			raw[len(raw)-1]++ // a later expiry
			return success(base64.RawURLEncoding.EncodeToString(raw) + "." + sig)
		}, want: []string{"not issued by calstatus"}},
		{name: "malformed", query: func(_ *env, _ string) map[string]string { return success("not-a-state") },
			want: []string{"not issued by calstatus"}},
		{name: "missing", query: func(_ *env, _ string) map[string]string { return success("") },
			want: []string{"carries no state"}},
		{name: "expired", query: func(_ *env, s string) map[string]string { return success(s) },
			before: func(e *env) { e.clock.t = e.clock.t.Add(time.Hour + time.Second) },
			want:   []string{"expired", "valid for 60 minutes"}},
		{name: "another browser", query: func(_ *env, s string) map[string]string { return success(s) },
			before: func(e *env) { e.cookie = "" },
			want:   []string{"did not come back to the browser that opened the consent page"}},
		{name: "another browser's cookie", query: func(_ *env, s string) map[string]string { return success(s) },
			before: func(e *env) {
				other := newEnv()
				other.page(t, nil)
				e.cookie = other.cookie
			},
			want: []string{"did not come back to the browser"}},
		{name: "error with a forged state", query: func(_ *env, s string) map[string]string {
			q := success(flip(s))
			q["error"] = "access_denied"
			q["error_description"] = "Your session expired: sign in again at https://evil.example"
			return q
		}, want: []string{"not issued by calstatus"}},
		{name: "error", query: func(_ *env, s string) map[string]string {
			q := success(s)
			delete(q, "scope")
			q["error"] = "access_denied"
			q["error_description"] = `AADSTS65004: User declined to consent to access the app. <script>alert("x")</script>`
			return q
		}, want: []string{"declined or cancelled", "access_denied", "AADSTS65004",
			"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"}, consumed: true},
		{name: "error without admin_consent", query: func(_ *env, s string) map[string]string {
			return map[string]string{"error": "invalid_request", "error_description": "AADSTS90014: missing field", "state": s}
		}, want: []string{"Microsoft answered with an error", "invalid_request"}, consumed: true},
		{name: "admin_consent missing", query: func(_ *env, s string) map[string]string {
			q := success(s)
			delete(q, "admin_consent")
			return q
		}, want: []string{"does not confirm an admin consent"}, consumed: true},
		{name: "wrong tenant", query: func(_ *env, s string) map[string]string {
			q := success(s)
			q["tenant"] = `<b>evil</b>-tenant`
			return q
		}, want: []string{"Wrong tenant", "&lt;b&gt;evil&lt;/b&gt;-tenant", "configured for tenant <code>" + tenantID, "AZURE_TENANT_ID"},
			consumed: true},
		{name: "no tenant", query: func(_ *env, s string) map[string]string {
			q := success(s)
			delete(q, "tenant")
			return q
		}, want: []string{"Wrong tenant", "(none)"}, consumed: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv()
			state := e.freshState(t)
			if c.before != nil {
				c.before(e)
			}
			resp := e.callback(t, c.query(e, state))
			expect(t, resp, http.StatusBadRequest, c.want...)
			if !strings.Contains(resp.Body, "Nothing was recorded") {
				t.Fatalf("body does not say nothing was recorded:\n%s", resp.Body)
			}
			if n := e.store.recorded(); n != 0 || e.prober.calls != 0 {
				t.Fatalf("%d records, %d probes after a refused callback", n, e.prober.calls)
			}
			if got := len(e.store.used) == 1; got != c.consumed {
				t.Fatalf("state consumed: %v, want %v", got, c.consumed)
			}
			if strings.Contains(resp.Body, "<b>evil") {
				t.Fatal("tenant shown unescaped")
			}
			if strings.Contains(resp.Body, "evil.example") {
				t.Fatal("an error text came with no valid state, and was shown")
			}
			e.checkSafe(t)
			// A refusal that did not consume the state leaves it usable (for the legitimate answer,
			// in the browser the state was issued to).
			if !c.consumed && c.before == nil {
				expect(t, e.callback(t, success(state)), http.StatusOK, "Admin consent granted")
			}
		})
	}
}

func TestReplayedStateIsRefused(t *testing.T) {
	e := newEnv()
	state := e.freshState(t)
	expect(t, e.callback(t, success(state)), http.StatusOK, "Admin consent granted")
	n := e.store.recorded()
	expect(t, e.callback(t, success(state)), http.StatusBadRequest, "already received once", "Nothing was recorded")
	if e.store.recorded() != n || e.prober.calls != 1 {
		t.Fatalf("replay recorded %d more, probes %d", e.store.recorded()-n, e.prober.calls)
	}
	e.checkSafe(t)
}

func TestStateFromAnotherKeyIsForged(t *testing.T) {
	other := newEnv()
	other.store.key[0] ^= 0xff
	state := other.freshState(t)
	e := newEnv()
	expect(t, e.callback(t, success(state)), http.StatusBadRequest, "not issued by calstatus")
	if e.store.recorded() != 0 || e.store.useCalls != 0 {
		t.Fatal("a state signed with another key reached the store")
	}
}

func TestAnErrorBesideAdminConsentTrueIsAnError(t *testing.T) {
	// What Microsoft's endpoint (and the simulator) send on failure: admin_consent=True and error.
	e := newEnv()
	state := e.freshState(t)
	q := success(state)
	q["error"] = "consent_required"
	q["error_description"] = "AADSTS65001: The user or administrator has not consented."
	expect(t, e.callback(t, q), http.StatusBadRequest, "consent_required", "AADSTS65001", "Nothing was recorded")
	if e.store.recorded() != 0 || len(e.store.used) != 1 || e.prober.calls != 0 {
		t.Fatal("an error answer went further than its error, or its state stays usable")
	}
	e.checkSafe(t)
}

// A failed check is explained; the anonymous pages show its outcome and Microsoft's error code,
// never its detail (which can name a mailbox or an internal URL): that goes to the logs and the
// Status page.
func TestProbeOutcomesAreExplained(t *testing.T) {
	leak := "sub-request through alice@contoso.com failed: Get \"http://mm.internal:8065/api/v4/users\""
	cases := []struct {
		res    consent.ProbeResult
		err    error
		record string
		want   []string
	}{
		{res: consent.ProbeResult{Outcome: consent.ProbeNotPropagated, Detail: "AADSTS7000229: The client application is missing service principal for alice@contoso.com."},
			record: "not_propagated", want: []string{"Consent not yet propagated", "Retry in a minute", "<code>AADSTS7000229</code>", "Check again"}},
		{res: consent.ProbeResult{Outcome: consent.ProbeNoPermission, Detail: "Graph refused to read the calendar (no_access): " + leak},
			record: "no_permission", want: []string{"Permission missing", "Calendars.ReadBasic.All", "<code>no_access</code>", "Check again"}},
		{res: consent.ProbeResult{Outcome: consent.ProbeWrongTenant, Detail: "AADSTS90002: Tenant not found."},
			record: "wrong_tenant", want: []string{"Wrong tenant", "AZURE_TENANT_ID"}},
		{res: consent.ProbeResult{Outcome: consent.ProbeError, Detail: leak},
			record: "error: " + leak, want: []string{"check of Graph access failed", "Status page", "Check again"}},
		{err: errors.New("finding a user to check with: Get http://mm.internal:8065: connection refused"),
			record: "error: finding a user to check with: Get http://mm.internal:8065: connection refused",
			want:   []string{"check of Graph access failed"}},
	}
	for _, c := range cases {
		t.Run(c.record, func(t *testing.T) {
			e := newEnv()
			e.prober.res, e.prober.err = c.res, c.err
			resp := e.callback(t, success(e.freshState(t)))
			expect(t, resp, http.StatusOK, append([]string{"Consent answer received", `href="AdminConsent?check=1"`}, c.want...)...)
			if strings.Contains(resp.Body, "Next steps") || strings.Contains(resp.Body, "Admin consent granted") {
				t.Fatal("granted, or next steps shown, after a failed check")
			}
			if got := e.store.records[len(e.store.records)-1].Probe; got != c.record {
				t.Fatalf("recorded probe %q, want %q", got, c.record)
			}
			// The consent page shows the stored outcome, with a way to check again.
			page := e.page(t, nil)
			expect(t, page, http.StatusOK, "Consent answer from tenant", "not granted until a check of Graph access succeeds", `href="AdminConsent?check=1"`)
			for _, resp := range []web.Response{resp, page} {
				for _, private := range []string{"alice@", "mm.internal", "connection refused"} {
					if strings.Contains(resp.Body, private) {
						t.Fatalf("an anonymous page shows %q:\n%s", private, resp.Body)
					}
				}
			}
			e.checkSafe(t)
		})
	}
}

func TestCheckAgainFromThePage(t *testing.T) {
	e := newEnv()
	e.prober.res = consent.ProbeResult{Outcome: consent.ProbeNotPropagated}
	expect(t, e.callback(t, success(e.freshState(t))), http.StatusOK, "not yet propagated")
	// Right away: not checked again (the page is anonymous; checks are spaced).
	e.prober.res = consent.ProbeResult{Outcome: consent.ProbeOK}
	expect(t, e.page(t, map[string]string{"check": "1"}), http.StatusOK, "checked less than 30 seconds ago", "not yet propagated")
	if e.prober.calls != 1 {
		t.Fatalf("%d probes, want 1", e.prober.calls)
	}
	e.clock.t = e.clock.t.Add(time.Minute)
	expect(t, e.page(t, map[string]string{"check": "1"}), http.StatusOK, "access works")
	if e.prober.calls != 2 || e.store.records[len(e.store.records)-1].Probe != "ok" {
		t.Fatalf("%d probes, records %+v", e.prober.calls, e.store.records)
	}
	// A plain load never probes.
	e.clock.t = e.clock.t.Add(time.Minute)
	e.page(t, nil)
	if e.prober.calls != 2 {
		t.Fatal("a plain page load ran the probe")
	}
	// No answer on record: the page offers a check, which finds a consent granted elsewhere (by
	// the deployment, in the Entra admin center) — and says so when it finds none.
	f := newEnv()
	expect(t, f.page(t, nil), http.StatusOK, "No admin consent recorded yet.", `href="AdminConsent?check=1"`, "GRANT_GRAPH_PERMISSION")
	f.prober.res = consent.ProbeResult{Outcome: consent.ProbeNoPermission, Detail: "Graph refused (no_access)"}
	expect(t, f.page(t, map[string]string{"check": "1"}), http.StatusOK, "No consent found for tenant <code>"+tenantID+"</code>", "Permission missing")
	f.clock.t = f.clock.t.Add(time.Minute)
	f.prober.res = consent.ProbeResult{Outcome: consent.ProbeOK}
	expect(t, f.page(t, map[string]string{"check": "1"}), http.StatusOK, "the consent was granted outside this page", "access works")
	if f.prober.calls != 2 || f.store.records[len(f.store.records)-1].Probe != "ok" || !f.store.records[len(f.store.records)-1].At.IsZero() {
		t.Fatalf("%d checks; records %+v", f.prober.calls, f.store.records)
	}
	e.checkSafe(t)
}

func TestStorageFailureIsNotAConsent(t *testing.T) {
	e := newEnv()
	e.store.useErr = errors.New("table storage: 503 ServerBusy")
	resp := e.callback(t, success(e.freshState(t)))
	expect(t, resp, http.StatusInternalServerError, "could not reach its storage", "Nothing was recorded")
	if strings.Contains(resp.Body, "ServerBusy") || e.store.recorded() != 0 || e.prober.calls != 0 {
		t.Fatal("storage failure leaked or recorded")
	}
	e.checkSafe(t)
}

func TestOnlyGet(t *testing.T) {
	e := newEnv()
	r := request(consent.CallbackPath, nil, "")
	r.Method = "POST"
	for _, page := range []web.Page{e.h.Page, e.h.Callback} {
		resp, err := page(context.Background(), nil, r)
		if err != nil || resp.Status != http.StatusMethodNotAllowed || resp.Headers["Allow"] != "GET" {
			t.Fatalf("POST: %d %v %v", resp.Status, resp.Headers, err)
		}
	}
}

func TestAuthorityHostAndTTL(t *testing.T) {
	e := newEnv()
	e.h.AuthorityHost = "https://login.microsoftonline.us/"
	e.h.TTL = 2 * time.Minute
	resp := e.page(t, nil)
	u := consentLink(t, resp)
	if u.Host != "login.microsoftonline.us" || u.Path != "/"+tenantID+"/v2.0/adminconsent" {
		t.Fatalf("consent link %s", u)
	}
	expect(t, resp, http.StatusOK, "within 2 minutes")
	e.clock.t = e.clock.t.Add(2 * time.Minute)
	expect(t, e.callback(t, success(u.Query().Get("state"))), http.StatusBadRequest, "expired")
}

func TestStyleIsAllowedByItsHashOnly(t *testing.T) {
	e := newEnv()
	resp := e.page(t, nil)
	m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindAllStringSubmatch(resp.Body, -1)
	if len(m) != 1 {
		t.Fatalf("%d style blocks", len(m))
	}
	sum := sha256.Sum256([]byte(m[0][1]))
	want := "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	if !strings.Contains(resp.Headers["Content-Security-Policy"], want) {
		t.Fatalf("CSP %q lacks %q", resp.Headers["Content-Security-Policy"], want)
	}
	for _, bad := range []string{"<link", "<img", "<iframe", "<script", "<form", "style=\"", "src=", "@import"} {
		if strings.Contains(resp.Body, bad) {
			t.Fatalf("page holds %q", bad)
		}
	}
	// The only external URL is Microsoft's, in the button.
	urls := regexp.MustCompile(`https?://[^"<\s]+`).FindAllString(resp.Body, -1)
	for _, u := range urls {
		if !strings.HasPrefix(u, "https://login.microsoftonline.com/") && !strings.HasPrefix(u, "https://"+pubHost+"/") {
			t.Fatalf("page links to %s", u)
		}
	}
	if !strings.Contains(resp.Body, `name="viewport"`) {
		t.Fatal("no viewport: unreadable on a phone")
	}
}

func TestPathsAreTheHandlersFunctions(t *testing.T) {
	if consent.PagePath != "/api/"+handler.AdminConsentFunction || consent.CallbackPath != "/api/"+handler.AdminConsentCallbackFunction {
		t.Fatalf("paths %s %s do not match the functions", consent.PagePath, consent.CallbackPath)
	}
}

// Checks run at most once per 30 seconds, whoever asks and however many at once: the pages are
// anonymous, and a check costs a Mattermost and a Graph call (and the mailbox's Graph budget).
func TestChecksShareOneRateLimit(t *testing.T) {
	e := newEnv()
	expect(t, e.callback(t, success(e.freshState(t))), http.StatusOK, "Admin consent granted")
	e.clock.t = e.clock.t.Add(31 * time.Second)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, err := e.h.Page(context.Background(), nil, request(consent.PagePath, map[string]string{"check": "1"}, "")); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if e.prober.calls != 2 {
		t.Fatalf("%d checks after 16 concurrent requests, want 1 more than the callback's", e.prober.calls)
	}
	// A callback right after: the answer is recorded, the check not run, and the page says so.
	resp := e.callback(t, success(e.freshState(t)))
	expect(t, resp, http.StatusOK, "Consent answer received", "checked less than 30 seconds ago")
	if e.prober.calls != 2 || strings.Contains(resp.Body, "Admin consent granted") {
		t.Fatalf("%d checks; a callback within the limit ran one or said granted", e.prober.calls)
	}
}

// The state is bound to the browser by a cookie only the pages see, never script, and sent back
// on Microsoft's redirect (SameSite=Lax); a browser keeps its cookie across loads, so two tabs'
// links both work.
func TestBindingCookie(t *testing.T) {
	e := newEnv()
	resp := e.page(t, nil)
	c, err := http.ParseSetCookie(resp.Headers["Set-Cookie"])
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != consent.BindingCookie || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/api/" ||
		c.MaxAge != 3600 || len(c.Value) < 40 {
		t.Fatalf("binding cookie %+v", c)
	}
	first := consentLink(t, resp).Query().Get("state")
	second := e.freshState(t)
	if !strings.HasPrefix(e.cookie, consent.BindingCookie+"="+c.Value) {
		t.Fatalf("the cookie changed between loads: %q", e.cookie)
	}
	expect(t, e.callback(t, success(second)), http.StatusOK, "Admin consent granted")
	e.clock.t = e.clock.t.Add(time.Minute)
	expect(t, e.callback(t, success(first)), http.StatusOK, "Admin consent granted")
	// Served over http (locally), the cookie is not marked Secure.
	e.h.Origin = web.Origin{}
	e.cookie = ""
	c, _ = http.ParseSetCookie(e.page(t, nil).Headers["Set-Cookie"])
	if c.Secure {
		t.Fatal("a Secure cookie on http://127.0.0.1")
	}
}

// The callback URL handed to Microsoft is the app's own: the configured public URL, else the URL
// the host received; forwarding headers only when configured to trust them (any client sends them).
func TestCallbackURLIsTheAppsOwn(t *testing.T) {
	evil := func() web.Request {
		r := request(consent.PagePath, nil, "")
		r.Headers["X-Forwarded-Host"] = []string{"evil.example"}
		r.Headers["X-Forwarded-Proto"] = []string{"https"}
		return r
	}
	for _, c := range []struct {
		origin web.Origin
		want   string
	}{
		{web.Origin{Public: "https://" + pubHost}, "https://" + pubHost + "/api/AdminConsentCallback"},
		{web.Origin{Public: "https://calstatus.contoso.com/"}, "https://calstatus.contoso.com/api/AdminConsentCallback"},
		{web.Origin{}, "http://127.0.0.1:7071/api/AdminConsentCallback"},
		{web.Origin{TrustForwarded: true}, "https://evil.example/api/AdminConsentCallback"},
	} {
		e := newEnv()
		e.h.Origin = c.origin
		resp, err := e.h.Page(context.Background(), nil, evil())
		if err != nil {
			t.Fatal(err)
		}
		if got := consentLink(t, resp).Query().Get("redirect_uri"); got != c.want {
			t.Fatalf("origin %+v: redirect_uri %s, want %s", c.origin, got, c.want)
		}
	}
}
