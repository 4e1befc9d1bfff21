// Package consent serves the admin consent pages: AdminConsent, which says what calstatus reads and
// writes and sends an administrator to Microsoft's v2 admin consent endpoint, and
// AdminConsentCallback, where Microsoft sends them back. The callback accepts only an answer that
// follows a consent page calstatus served — its state is signed, time-limited and single-use —
// records the consenting tenant, and checks Graph access at once.
//
// Both are anonymous pages: they show nothing secret (the signing key never leaves the store), and
// every value they show is HTML-escaped.
package consent

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/calstatus/calstatus/internal/store"
	"github.com/calstatus/calstatus/internal/web"
)

const (
	// DefaultAuthorityHost is Entra ID in the public cloud.
	DefaultAuthorityHost = "https://login.microsoftonline.com/"
	// DefaultTTL is how long a consent link stays valid.
	DefaultTTL = 10 * time.Minute
	// GraphScope asks for the application permissions configured on the app registration.
	GraphScope = "https://graph.microsoft.com/.default"

	// PagePath and CallbackPath are where the Functions host serves AdminConsent and
	// AdminConsentCallback (routePrefix "api" + the function names declared in package handler;
	// consent_test.go checks them). The callback is the redirect URI registered on the app.
	PagePath     = "/api/AdminConsent"
	CallbackPath = "/api/AdminConsentCallback"

	// checkEvery bounds how often the anonymous consent page runs the Graph check again.
	checkEvery = 30 * time.Second
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
}

// Handler serves the two pages.
type Handler struct {
	Store Store
	// Prober checks Graph access after a consent (nil: not checked).
	Prober Prober
	// TenantID and ClientID are AZURE_TENANT_ID and AZURE_CLIENT_ID.
	TenantID, ClientID string
	// AuthorityHost is Entra ID's endpoint (AZURE_AUTHORITY_HOST); DefaultAuthorityHost if empty.
	AuthorityHost string
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// TTL is how long a consent link stays valid (DefaultTTL if zero).
	TTL time.Duration
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
	ConsentURL    string
	Callback      string
	CheckURL      string
	TenantID      string
	ClientID      string
	TTLMinutes    int
}

// Page serves AdminConsent: what calstatus reads and writes, the current consent, and a fresh
// single-use link to Microsoft's admin consent. With ?check=1 it first checks Graph access again
// (at most once per checkEvery, since the page is anonymous).
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
		CheckURL: checkLink, TTLMinutes: int((h.ttl() + time.Minute - 1) / time.Minute)}
	rec, found, err := h.Store.Consent(ctx)
	if err != nil {
		log.Warn("admin consent page: reading the consent record", "error", err.Error())
		view.RecordUnknown = true
	}
	if found {
		view.Record = newRecordView(rec)
		if r.Query["check"] != "" && h.Prober != nil && now.Sub(rec.ProbedAt) >= checkEvery {
			rec, res := h.probe(ctx, log, rec)
			view.Record = newRecordView(rec)
			view.Record.Probe = res // with Microsoft's words, which the record keeps only for errors
		}
	}
	state, err := newState(key, now.Add(h.ttl()))
	if err != nil {
		return web.Response{}, err
	}
	view.Callback = r.BaseURL() + CallbackPath
	view.ConsentURL = h.consentURL(view.Callback, state)
	return render(consentPage, http.StatusOK, view)
}

// probe checks Graph access and records the outcome in rec.
func (h *Handler) probe(ctx context.Context, log *slog.Logger, rec store.ConsentRecord) (store.ConsentRecord, ProbeResult) {
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
	log.Log(ctx, level, "admin consent: Graph access checked", "tenant", rec.Tenant, "probe", res.Outcome, "detail", res.Detail)
	if err := h.Store.RecordConsent(ctx, rec); err != nil {
		log.Error("admin consent: recording the check", "error", err.Error())
	}
	return rec, res
}

type callbackView struct {
	frame
	// Kind: granted, denied, state, unconfirmed, tenant, storage.
	Kind string
	// Reason (Kind state): missing, malformed, forged, expired, used.
	Reason              string
	Error, Description  string
	AdminConsent        string
	Tenant, TenantID    string
	At                  string
	Probe               ProbeResult
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

// Callback serves AdminConsentCallback. In this order: an error from Microsoft (even beside
// admin_consent=True) is shown and nothing recorded; then the state must be present, signed by
// calstatus, unexpired and unused (it is then marked used); then the tenant must be the configured
// one (only compared, never trusted for anything else); then the consent is recorded and Graph
// access checked, and the outcome shown and recorded. Every refusal answers 400 and records
// nothing.
func (h *Handler) Callback(ctx context.Context, log *slog.Logger, r web.Request) (web.Response, error) {
	log = logger(log)
	if !isGet(r) {
		return methodNotAllowed(), nil
	}
	q := r.Query
	// (1) Microsoft's error, whatever else the answer says.
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
	// (2) The state: signed by calstatus, unexpired, then single use.
	key, err := h.Store.StateKey(ctx)
	if err != nil {
		log.Error("admin consent callback: reading the state key", "error", err.Error())
		return h.storageFailure(false)
	}
	now := h.now()
	nonce, expires, err := checkState(key, q["state"], now)
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
		case errors.Is(err, store.ErrStateUsed):
			reason = "used"
		default:
			log.Error("admin consent callback: recording the state as used", "error", err.Error())
			return h.storageFailure(false)
		}
		log.Warn("admin consent callback refused: bad state", "reason", reason)
		v := h.callbackView("Consent answer refused", "state")
		v.Reason = reason
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
	// (4) Record the consent.
	rec := store.ConsentRecord{Tenant: strings.ToLower(tenant), At: now}
	if err := h.Store.RecordConsent(ctx, rec); err != nil {
		log.Error("admin consent: recording the consent", "tenant", rec.Tenant, "error", err.Error())
		return h.storageFailure(true)
	}
	log.Info("admin consent recorded", "tenant", rec.Tenant)
	// (5) Check Graph access now.
	v := h.callbackView("Admin consent granted", "granted")
	v.Tenant, v.At = rec.Tenant, showTime(rec.At)
	if h.Prober != nil {
		_, v.Probe = h.probe(ctx, log, rec)
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
