// Package consent serves the admin consent pages: AdminConsent, which says what calstatus reads and
// writes and sends an administrator to Microsoft's v2 admin consent endpoint, and
// AdminConsentCallback, where Microsoft sends them back. The callback accepts only an answer that
// follows a consent page calstatus served, in the same browser — its state is signed, time-limited,
// single-use and bound to a cookie the page set — records that the answer came, and checks Graph
// access at once. Only a successful check says the consent is granted: anyone can follow the
// pages' way with a client of their own.
//
// Both are anonymous pages: they show nothing secret (the signing key never leaves the store), no
// user's email or internal address (a check's detail goes to the logs and the Status page; these
// show its outcome and Microsoft's error code), and every value they show is HTML-escaped. Graph
// checks, which cost a Mattermost and a Graph call, run at most once per checkEvery whoever asks.
package consent

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/calstatus/calstatus/internal/config"
	"github.com/calstatus/calstatus/internal/store"
	"github.com/calstatus/calstatus/internal/web"
)

const (
	// DefaultAuthorityHost is Entra ID in the public cloud.
	DefaultAuthorityHost = "https://login.microsoftonline.com/"
	// DefaultTTL is how long a consent link stays valid: signing in as an administrator may first
	// need a role activated (Privileged Identity Management), which can take longer than 10 minutes.
	DefaultTTL = time.Hour
	// GraphScope asks for the application permissions configured on the app registration.
	GraphScope = "https://graph.microsoft.com/.default"

	// PagePath and CallbackPath are where the Functions host serves AdminConsent and
	// AdminConsentCallback (routePrefix "api" + the function names declared in package handler;
	// consent_test.go checks them). The callback is the redirect URI registered on the app.
	PagePath     = "/api/AdminConsent"
	CallbackPath = "/api/AdminConsentCallback"

	// checkEvery bounds how often the anonymous pages run the Graph check, all requests together.
	checkEvery = 30 * time.Second
	// BindingCookie binds a consent link's state to the browser it was handed to.
	BindingCookie = "calstatus_consent"
	// probeTimeout bounds one Graph check.
	probeTimeout = 30 * time.Second
	// Relative links between the pages (all under /api/).
	consentPageLink = "AdminConsent"
	checkLink       = "AdminConsent?check=1"
	statusLink      = "Status"
)

// Store keeps the pages' records (store.Store).
type Store interface {
	// StateKey returns the key states are signed with, the same for every instance.
	StateKey(ctx context.Context) ([]byte, error)
	// UseState records a state's nonce as used; store.ErrStateUsed if it already was.
	UseState(ctx context.Context, nonce string, expires time.Time) error
	RecordConsent(ctx context.Context, r store.ConsentRecord) error
	Consent(ctx context.Context) (store.ConsentRecord, bool, error)
	// ClaimCheck takes the slot for a Graph check if none was taken within every.
	ClaimCheck(ctx context.Context, now time.Time, every time.Duration) (bool, error)
}

// Handler serves the two pages.
type Handler struct {
	Store Store
	// Prober checks Graph access after a consent (nil: not checked).
	Prober Prober
	// TenantID and ClientID are AZURE_TENANT_ID and GRAPH_CLIENT_ID.
	TenantID, ClientID string
	// AuthorityHost is Entra ID's endpoint (AZURE_AUTHORITY_HOST); DefaultAuthorityHost if empty.
	AuthorityHost string
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// TTL is how long a consent link stays valid (DefaultTTL if zero).
	TTL time.Duration
	// Origin names the app in the callback URL handed to Microsoft.
	Origin web.Origin
	// Permissions are the Graph application permissions the page lists
	// (config.Config.GraphPermissions); nil: Calendars.ReadBasic.All alone.
	Permissions []string
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) ttl() time.Duration {
	if h.TTL > 0 {
		return h.TTL
	}
	return DefaultTTL
}

func (h *Handler) permissions() []string {
	if h.Permissions == nil {
		return config.Config{}.GraphPermissions()
	}
	return h.Permissions
}

func (h *Handler) authority() string {
	a := h.AuthorityHost
	if a == "" {
		a = DefaultAuthorityHost
	}
	return strings.TrimRight(a, "/")
}

func logger(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}

func isGet(r web.Request) bool {
	return r.Method == "" || strings.EqualFold(r.Method, http.MethodGet) || strings.EqualFold(r.Method, http.MethodHead)
}

// consentURL is Microsoft's admin consent endpoint for the configured tenant and app, coming back
// to redirect with state.
func (h *Handler) consentURL(redirect, state string) string {
	q := url.Values{"client_id": {h.ClientID}, "scope": {GraphScope}, "redirect_uri": {redirect}, "state": {state}}
	return h.authority() + "/" + url.PathEscape(h.TenantID) + "/v2.0/adminconsent?" + q.Encode()
}

// recordView is a consent record as pages show it.
type recordView struct {
	Tenant, At, ProbedAt string
	Probe                ProbeResult
}

func showTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("Mon 2 Jan 2006 15:04 UTC")
}

func newRecordView(r store.ConsentRecord) *recordView {
	return &recordView{Tenant: r.Tenant, At: showTime(r.At), ProbedAt: showTime(r.ProbedAt), Probe: parseRecord(r.Probe)}
}

type consentView struct {
	frame
	Record        *recordView
	RecordUnknown bool
	// CheckedRecently: a check was asked for, but one ran less than checkEvery ago.
	CheckedRecently bool
	ConsentURL      string
	Callback        string
	CheckURL        string
	TenantID        string
	ClientID        string
	TTLMinutes      int
	// Permissions are the Graph permissions listed; ReadsPresence: Presence.Read.All is one.
	Permissions   []string
	ReadsPresence bool
}

// Page serves AdminConsent: what calstatus reads and writes, the current consent, and a fresh
// single-use link to Microsoft's admin consent, bound to this browser by a cookie. With ?check=1 it
// first checks Graph access again (at most once per checkEvery, whoever asks: the page is
// anonymous).
func (h *Handler) Page(ctx context.Context, log *slog.Logger, r web.Request) (web.Response, error) {
	log = logger(log)
	if !isGet(r) {
		return methodNotAllowed(), nil
	}
	now := h.now()
	key, err := h.Store.StateKey(ctx)
	if err != nil {
		log.Error("admin consent page: reading the state key", "error", err.Error())
		return h.storageFailure(false)
	}
	view := consentView{frame: newFrame("Admin consent"), TenantID: h.TenantID, ClientID: h.ClientID,
		CheckURL: checkLink, TTLMinutes: int((h.ttl() + time.Minute - 1) / time.Minute), Permissions: h.permissions()}
	view.ReadsPresence = slices.Contains(view.Permissions, config.PermissionPresence)
	rec, found, err := h.Store.Consent(ctx)
	if err != nil {
		log.Warn("admin consent page: reading the consent record", "error", err.Error())
		view.RecordUnknown = true
	}
	if found {
		view.Record = newRecordView(rec)
	}
	if r.Query["check"] != "" && h.Prober != nil && err == nil {
		// With no answer on record, a successful check finds a consent granted elsewhere (by the
		// deployment's GRANT_GRAPH_PERMISSION, or in the Entra admin center).
		if !found {
			rec = store.ConsentRecord{Tenant: strings.ToLower(h.TenantID)}
		}
		rec, res, ran := h.check(ctx, log, rec)
		if ran || found {
			view.Record = newRecordView(rec)
			view.Record.Probe = res
		}
		view.CheckedRecently = !ran
	}
	cookie := cookieValue(r, BindingCookie)
	if !validBindingCookie(cookie) {
		if cookie, err = newBindingCookie(); err != nil {
			return web.Response{}, err
		}
	}
	state, err := newState(key, now.Add(h.ttl()), cookie)
	if err != nil {
		return web.Response{}, err
	}
	base := h.Origin.Of(r)
	view.Callback = base + CallbackPath
	view.ConsentURL = h.consentURL(view.Callback, state)
	resp, err := render(consentPage, http.StatusOK, view)
	if err == nil {
		resp.Headers["Set-Cookie"] = bindingCookieHeader(cookie, h.ttl(), strings.HasPrefix(base, "https://"))
	}
	return resp, err
}

// bindingCookieHeader sets the binding cookie: sent back on Microsoft's redirect (a top-level GET,
// which SameSite=Lax allows) and to the pages only, never readable by script.
func bindingCookieHeader(value string, ttl time.Duration, secure bool) string {
	c := &http.Cookie{Name: BindingCookie, Value: value, Path: "/api/", MaxAge: int(ttl / time.Second),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: secure}
	return c.String()
}

// cookieValue is the value of the request's cookie name ("" when it has none).
func cookieValue(r web.Request, name string) string {
	hr := http.Request{Header: http.Header{}}
	for k, vs := range r.Headers {
		if strings.EqualFold(k, "Cookie") {
			for _, v := range vs {
				hr.Header.Add("Cookie", v)
			}
		}
	}
	c, err := hr.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// check runs the Graph check if it takes the one slot of checkEvery (ran false: it did not run, rec
// is as it was), and records its outcome in rec. The result keeps Microsoft's error code for the
// pages; the detail goes to the logs and, recorded, to the Status page.
func (h *Handler) check(ctx context.Context, log *slog.Logger, rec store.ConsentRecord) (store.ConsentRecord, ProbeResult, bool) {
	claimed, err := h.Store.ClaimCheck(ctx, h.now(), checkEvery)
	if err != nil {
		log.Warn("admin consent: claiming the Graph check", "error", err.Error())
	}
	if !claimed {
		return rec, parseRecord(rec.Probe).Public(), false
	}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	res, err := h.Prober.Probe(pctx)
	if err != nil {
		res = ProbeResult{Outcome: ProbeError, Detail: brief(err.Error())}
	}
	rec.Probe, rec.ProbedAt = res.Record(), h.now()
	level := slog.LevelInfo
	if res.Outcome != ProbeOK {
		level = slog.LevelWarn
	}
	attrs := []any{"tenant", rec.Tenant, "probe", res.Outcome, "detail", res.Detail}
	if res.Presence != "" {
		// Not a failure of the check: calendar sync goes on without presence.
		attrs = append(attrs, "presence", res.Presence, "presence_detail", res.PresenceDetail)
	}
	log.Log(ctx, level, "admin consent: Graph access checked", attrs...)
	if err := h.Store.RecordConsent(ctx, rec); err != nil {
		log.Error("admin consent: recording the check", "error", err.Error())
	}
	return rec, res.Public(), true
}

type callbackView struct {
	frame
	// Kind: granted (the Graph check succeeded), received (the answer is recorded, access not yet
	// confirmed), denied, state, unconfirmed, tenant, storage.
	Kind string
	// Reason (Kind state): missing, malformed, forged, expired, browser, used.
	Reason              string
	Error, Description  string
	AdminConsent        string
	Tenant, TenantID    string
	At                  string
	Probe               ProbeResult
	CheckedRecently     bool
	Granted             bool
	TTLMinutes          int
	ConsentPageURL      string
	CheckURL, StatusURL string
}

func (h *Handler) callbackView(title, kind string) callbackView {
	return callbackView{frame: newFrame(title), Kind: kind, TenantID: h.TenantID, ConsentPageURL: consentPageLink,
		CheckURL: checkLink, StatusURL: statusLink, TTLMinutes: int((h.ttl() + time.Minute - 1) / time.Minute)}
}

func (h *Handler) storageFailure(granted bool) (web.Response, error) {
	v := h.callbackView("Storage unavailable", "storage")
	v.Granted = granted
	return render(callbackPage, http.StatusInternalServerError, v)
}

// Callback serves AdminConsentCallback. In this order: the state must be present, signed by
// calstatus, unexpired, issued to this browser and unused (it is then marked used) — before
// anything of the answer is believed or shown, so a made-up error text never appears on the
// organisation's own domain; then an error from Microsoft is shown; then the tenant must be the
// configured one (only compared, never trusted for anything else); then the answer is recorded and
// Graph access checked (within the one rate limit): only a successful check says "granted". Every
// refusal answers 400, records nothing and calls nothing.
func (h *Handler) Callback(ctx context.Context, log *slog.Logger, r web.Request) (web.Response, error) {
	log = logger(log)
	if !isGet(r) {
		return methodNotAllowed(), nil
	}
	q := r.Query
	// (1) The state: signed by calstatus, unexpired, this browser's, then single use.
	key, err := h.Store.StateKey(ctx)
	if err != nil {
		log.Error("admin consent callback: reading the state key", "error", err.Error())
		return h.storageFailure(false)
	}
	now := h.now()
	nonce, expires, err := checkState(key, q["state"], cookieValue(r, BindingCookie), now)
	if err == nil {
		err = h.Store.UseState(ctx, nonce, expires)
	}
	if err != nil {
		reason := ""
		switch {
		case errors.Is(err, errStateMissing):
			reason = "missing"
		case errors.Is(err, errStateMalformed):
			reason = "malformed"
		case errors.Is(err, errStateForged):
			reason = "forged"
		case errors.Is(err, errStateExpired):
			reason = "expired"
		case errors.Is(err, errStateUnbound):
			reason = "browser"
		case errors.Is(err, store.ErrStateUsed):
			reason = "used"
		default:
			log.Error("admin consent callback: recording the state as used", "error", err.Error())
			return h.storageFailure(false)
		}
		log.Warn("admin consent callback refused: bad state", "reason", reason, "microsoft_error", clip(q["error"], 100))
		v := h.callbackView("Consent answer refused", "state")
		v.Reason = reason
		return render(callbackPage, http.StatusBadRequest, v)
	}
	// (2) Microsoft's error, whatever else the answer says.
	if e, ok := q["error"]; ok || q["error_description"] != "" {
		v := h.callbackView("Consent not granted", "denied")
		v.Error, v.Description = clip(e, 200), clip(q["error_description"], 1000)
		if v.Error == "" {
			v.Error = "(none)"
		}
		log.Warn("admin consent refused by Microsoft", "error", v.Error, "description", v.Description)
		return render(callbackPage, http.StatusBadRequest, v)
	}
	if !strings.EqualFold(q["admin_consent"], "true") {
		v := h.callbackView("Consent not confirmed", "unconfirmed")
		v.AdminConsent = clip(q["admin_consent"], 50)
		log.Warn("admin consent callback without admin_consent=True", "admin_consent", v.AdminConsent)
		return render(callbackPage, http.StatusBadRequest, v)
	}
	// (3) The tenant must be the one calstatus serves.
	tenant := q["tenant"]
	if h.TenantID == "" || !strings.EqualFold(tenant, h.TenantID) {
		v := h.callbackView("Wrong tenant", "tenant")
		v.Tenant = clip(tenant, 100)
		log.Warn("admin consent callback refused: wrong tenant", "tenant", v.Tenant, "configured", h.TenantID)
		return render(callbackPage, http.StatusBadRequest, v)
	}
	// (4) Record the answer (the last check's outcome stays until the next check replaces it).
	rec, _, err := h.Store.Consent(ctx)
	if err == nil {
		rec.Tenant, rec.At = strings.ToLower(tenant), now
		err = h.Store.RecordConsent(ctx, rec)
	}
	if err != nil {
		log.Error("admin consent: recording the consent answer", "tenant", strings.ToLower(tenant), "error", err.Error())
		return h.storageFailure(true)
	}
	log.Info("admin consent answer recorded", "tenant", rec.Tenant)
	// (5) Check Graph access now: only a successful check says the consent is granted.
	v := h.callbackView("Consent answer received", "received")
	v.Tenant, v.At = rec.Tenant, showTime(rec.At)
	if h.Prober != nil {
		var ran bool
		_, v.Probe, ran = h.check(ctx, log, rec)
		v.CheckedRecently = !ran
		if ran && v.Probe.Outcome == ProbeOK {
			v.Kind, v.Title = "granted", "Admin consent granted"
		}
	}
	return render(callbackPage, http.StatusOK, v)
}

// clip shortens a value from the query (at most n bytes, whole runes) before it is shown or logged.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
