package graphsim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	odataJSON       = "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8"
	graphDateLayout = "2006-01-02T15:04:05.0000000"
	maxSchedules    = 20
	maxBatch        = 20
)

// gReq is a Graph request, direct or from a $batch.
type gReq struct {
	method  string
	path    string // below /v1.0, decoded, starting with "/"
	query   string
	header  http.Header
	body    []byte
	roles   []string
	batchID string
	id      string
	key     string // identity of the request for fault draws and early-retry detection
	kind    string // the endpoint (route.kind), for faults selected by endpoint
}

// gResp is a Graph answer.
type gResp struct {
	status     int
	header     map[string]string
	body       json.RawMessage
	retryAfter int
	reason     string
	schedules  []string
	early      bool
}

// route is a parsed Graph URL.
type route struct {
	kind    string // an endpoint (see endpoints), or "" when errResp is set
	mailbox string // canonical lowercased mailbox of the URL; "" for endpoints that name none
	errResp *gResp // answer without throttling (unknown route, bad mailbox, ...)
}

// The endpoints the simulator serves, as route kinds and as Faults.FaultEndpoints names them.
const (
	endpointGetSchedule  = "getSchedule"
	endpointCalendarView = "calendarView"
	endpointPresences    = "getPresencesByUserId"
	endpointUsers        = "users"
)

var endpoints = []string{endpointGetSchedule, endpointCalendarView, endpointPresences, endpointUsers}

// appScope prefixes the throttling scope of an endpoint limited per app rather than per mailbox.
const appScope = "app:"

// scope is what the request is throttled on: the mailbox in its URL, or the endpoint itself for
// those that name no mailbox (presence is limited per app and tenant).
func (rt route) scope() string {
	if rt.mailbox != "" || rt.kind == "" {
		return rt.mailbox
	}
	return appScope + rt.kind
}

func isMailboxScope(scope string) bool { return !strings.HasPrefix(scope, appScope) }

func requestKey(method, path, query string, body []byte) string {
	h := sha256.Sum256(body)
	return strings.ToUpper(method) + " " + strings.ToLower(path) + "?" + query + " " + hex.EncodeToString(h[:8])
}

func (s *Server) graphErrorBody(code, msg, clientRequestID string) json.RawMessage {
	if clientRequestID == "" {
		clientRequestID = newGUID()
	}
	b, _ := json.Marshal(map[string]any{"error": map[string]any{
		"code":    code,
		"message": msg,
		"innerError": map[string]any{
			"date":              s.now().Format("2006-01-02T15:04:05"),
			"request-id":        newGUID(),
			"client-request-id": clientRequestID,
		},
	}})
	return b
}

func (s *Server) errResp(status int, code, msg string, req *gReq) *gResp {
	crid := ""
	if req != nil {
		crid = req.header.Get("client-request-id")
	}
	return &gResp{
		status: status,
		header: map[string]string{"Content-Type": "application/json", "Cache-Control": "private"},
		body:   s.graphErrorBody(code, msg, crid),
	}
}

func (s *Server) throttleResp(req *gReq, secs int, reason, msg string) *gResp {
	code := "ApplicationThrottled"
	if reason == "fault" || reason == "batch" || reason == "presenceRate" {
		code = "TooManyRequests"
	}
	r := s.errResp(http.StatusTooManyRequests, code, msg, req)
	r.header["Retry-After"] = strconv.Itoa(secs)
	r.retryAfter = secs
	r.reason = reason
	return r
}

func (s *Server) serverErrorResp(req *gReq, status int, reason string) *gResp {
	code, msg := "generalException", "General exception while processing."
	switch status {
	case http.StatusServiceUnavailable:
		code, msg = "serviceNotAvailable", "The service is temporarily unavailable. Please retry later."
	case http.StatusGatewayTimeout:
		code, msg = "UnknownError", "Gateway Timeout: the backend did not answer in time."
	case http.StatusBadGateway:
		code, msg = "UnknownError", "Bad Gateway."
	}
	r := s.errResp(status, code, msg, req)
	r.reason = reason
	return r
}

// parseRoute recognises the Graph URLs the simulator serves.
func (s *Server) parseRoute(req *gReq, sc *Scenario) route {
	var segs []string
	for _, p := range strings.Split(req.path, "/") {
		if p != "" {
			segs = append(segs, p)
		}
	}
	isGetSchedule := func(a, b string) bool {
		return strings.EqualFold(a, "calendar") && (strings.EqualFold(b, "getSchedule") || strings.EqualFold(b, "microsoft.graph.getSchedule"))
	}
	switch {
	case len(segs) >= 1 && strings.EqualFold(segs[0], "me"):
		return route{errResp: s.errResp(http.StatusBadRequest, "BadRequest", "/me request is only valid with delegated authentication flow.", req)}
	case len(segs) == 4 && strings.EqualFold(segs[0], "users") && isGetSchedule(segs[2], segs[3]):
		if req.method != http.MethodPost {
			return route{errResp: s.errResp(http.StatusMethodNotAllowed, "BadRequest", "Specified HTTP method is not allowed for the request target.", req)}
		}
		return s.mailboxRoute(req, sc, endpointGetSchedule, segs[1])
	case (len(segs) == 3 && strings.EqualFold(segs[0], "users") && strings.EqualFold(segs[2], "calendarView")) ||
		(len(segs) == 4 && strings.EqualFold(segs[0], "users") && strings.EqualFold(segs[2], "calendar") && strings.EqualFold(segs[3], "calendarView")):
		if req.method != http.MethodGet {
			return route{errResp: s.errResp(http.StatusMethodNotAllowed, "BadRequest", "Specified HTTP method is not allowed for the request target.", req)}
		}
		return s.mailboxRoute(req, sc, endpointCalendarView, segs[1])
	case len(segs) == 2 && strings.EqualFold(segs[0], "communications") &&
		(strings.EqualFold(segs[1], "getPresencesByUserId") || strings.EqualFold(segs[1], "microsoft.graph.getPresencesByUserId")):
		if req.method != http.MethodPost {
			return route{errResp: s.errResp(http.StatusMethodNotAllowed, "BadRequest", "Specified HTTP method is not allowed for the request target.", req)}
		}
		return route{kind: endpointPresences}
	case len(segs) == 1 && strings.EqualFold(segs[0], "users"):
		if req.method != http.MethodGet {
			return route{errResp: s.errResp(http.StatusMethodNotAllowed, "BadRequest", "Specified HTTP method is not allowed for the request target.", req)}
		}
		return route{kind: endpointUsers}
	case len(segs) == 0:
		return route{errResp: s.errResp(http.StatusBadRequest, "BadRequest", "Invalid request URL.", req)}
	default:
		seg := segs[len(segs)-1]
		return route{errResp: s.errResp(http.StatusBadRequest, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", seg), req)}
	}
}

// mailboxRoute routes a request for the mailbox who (an email or id in the URL): a mailbox that
// cannot be used in a URL (missing, unlicensed, PathError) is answered 404 without throttling.
func (s *Server) mailboxRoute(req *gReq, sc *Scenario, kind, who string) route {
	res := sc.resolve(who)
	switch {
	case res.mb != nil && res.mb.PathError != "":
		return route{errResp: s.errResp(http.StatusNotFound, res.mb.PathError, pathErrorMessage(res.mb.PathError, who), req)}
	case res.mb != nil && res.mb.Unlicensed:
		return route{errResp: s.errResp(http.StatusNotFound, "MailboxNotEnabledForRESTAPI", pathErrorMessage("MailboxNotEnabledForRESTAPI", who), req)}
	case res.missing:
		return route{errResp: s.errResp(http.StatusNotFound, "ErrorItemNotFound", pathErrorMessage("ErrorItemNotFound", who), req)}
	}
	return route{kind: kind, mailbox: res.email}
}

func pathErrorMessage(code, who string) string {
	switch code {
	case "ErrorItemNotFound":
		return "The specified object was not found in the store., The process failed to get the correct properties."
	case "MailboxNotEnabledForRESTAPI":
		return "The mailbox is either inactive, soft-deleted, or is hosted on-premise."
	case "ErrorInvalidUser":
		return fmt.Sprintf("The requested user '%s' is invalid.", who)
	case "ResourceNotFound":
		return fmt.Sprintf("User not found: '%s'.", who)
	}
	return fmt.Sprintf("The mailbox '%s' cannot be used: %s.", who, code)
}

// ---- authentication ----

// authenticate checks the bearer token; it returns the token's roles or an error answer.
func (s *Server) authenticate(r *http.Request) ([]string, *gResp) {
	h := r.Header.Get("Authorization")
	tok := ""
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		tok = strings.TrimSpace(h[7:])
	}
	fail := func(msg string) ([]string, *gResp) {
		s.mu.Lock()
		s.st.unauthorized++
		s.mu.Unlock()
		resp := s.errResp(http.StatusUnauthorized, "InvalidAuthenticationToken", msg, &gReq{header: r.Header})
		resp.header["WWW-Authenticate"] = `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`
		return nil, resp
	}
	if tok == "" {
		return fail("Access token is empty.")
	}
	s.mu.Lock()
	info, ok := s.tokens[tok]
	now := s.now()
	s.mu.Unlock()
	switch {
	case !ok && strings.Count(tok, ".") != 2:
		return fail("IDX14100: JWT is not well formed, there are no dots (.).")
	case !ok:
		return fail("Access token validation failure. Invalid audience.")
	case !now.Before(info.exp):
		return fail("Lifetime validation failed, the token is expired.")
	}
	return info.roles, nil
}

// ---- throttling ----

// mbState is the throttling state of one scope: a mailbox, or an endpoint limited per app.
type mbState struct {
	inflight    int         // admitted and executing
	outstanding int         // arrived and not yet answered (including rejected ones)
	accepted    []time.Time // admission times within the rate window
	retryUntil  time.Time
	toldAt      time.Time // when the Retry-After in force was first answered
}

// inFlight is how long after a Retry-After answer a request is taken as already on its way — sent
// (by a concurrent shard, or a duplicate copy of one) before its client could have read the answer
// — and counted as in flight, not early.
const inFlight = 100 * time.Millisecond

// heldAt tells a request arriving at now, during a Retry-After answered at told and in force until
// until, early (its client could have known) or in flight (it could not).
func heldAt(now, told, until time.Time) (early, inflight bool) {
	if !now.Before(until) {
		return false, false
	}
	if now.Sub(told) < inFlight {
		return false, true
	}
	return true, false
}

// hold extends a Retry-After in force until *until to u, answered now; a new one starts at now.
func hold(until, told *time.Time, u, now time.Time) {
	if !now.Before(*until) {
		*told = now
	}
	if u.After(*until) {
		*until = u
	}
}

func (s *Server) mbLocked(mailbox string) *mbState {
	m := s.mailboxes[mailbox]
	if m == nil {
		m = &mbState{}
		s.mailboxes[mailbox] = m
	}
	return m
}

// arrive registers a request for mailbox (a scope) and reports whether it came before a
// Retry-After the simulator had given (for the scope, and for this very request).
// alreadyEarly (a whole-batch Retry-After was violated) avoids counting the request twice.
func (s *Server) arrive(mailbox, key string, alreadyEarly bool) (early bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	m := s.mbLocked(mailbox)
	m.outstanding++
	if isMailboxScope(mailbox) { // the stats are about mailboxes
		if m.outstanding > s.st.maxConcurrentPerMailbox[mailbox] {
			s.st.maxConcurrentPerMailbox[mailbox] = m.outstanding
		}
		if m.outstanding > s.st.maxConcurrent {
			s.st.maxConcurrent = m.outstanding
		}
	}
	early, inflight := heldAt(now, m.toldAt, m.retryUntil)
	if inflight && !alreadyEarly {
		s.st.retriesInFlight++
	}
	if early {
		if !alreadyEarly {
			s.st.earlyRetries++
		}
		if until, ok := s.keyRetryUntil[key]; ok && now.Before(until) {
			s.st.earlyRetriesSameRequest++
		}
	}
	return early
}

func (s *Server) depart(mailbox string) {
	s.mu.Lock()
	if m := s.mailboxes[mailbox]; m != nil && m.outstanding > 0 {
		m.outstanding--
	}
	s.mu.Unlock()
}

// arriveGlobal checks a request against a whole-batch Retry-After.
func (s *Server) arriveGlobal() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	early, inflight := heldAt(s.now(), s.globalToldAt, s.globalRetryUntil)
	switch {
	case early:
		s.st.earlyRetries++
	case inflight:
		s.st.retriesInFlight++
	}
	return early
}

// limits are the concurrency and rate limits of a throttling scope (0: none), and the reason a
// request over the rate is throttled for.
func (s *Server) limits(scope string) (concurrency, rate int, window time.Duration, reason string) {
	switch {
	case isMailboxScope(scope):
		return s.cfg.MailboxConcurrency, s.cfg.MailboxRateLimit, s.cfg.MailboxRateWindow, "rate"
	case scope == appScope+endpointPresences:
		return 0, s.cfg.PresenceRateLimit, s.cfg.PresenceRateWindow, "presenceRate"
	}
	return 0, 0, 0, ""
}

// admit decides whether a request for mailbox (a scope) may run; if so it takes a concurrency slot
// (to be given back with release), otherwise it returns the rejection.
func (s *Server) admit(req *gReq, mailbox string, early bool) *gResp {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	f := &s.faults
	m := s.mbLocked(mailbox)
	n := s.attempts[req.key]
	s.attempts[req.key] = n + 1
	concurrency, rate, window, rateReason := s.limits(mailbox)
	switch {
	case f.failsMailbox(mailbox):
		return s.serverErrorResp(req, http.StatusServiceUnavailable, "failMailbox")
	case early && f.PunishEarlyRetries:
		secs := int(math.Ceil(m.retryUntil.Sub(now).Seconds()))
		return s.throttleResp(req, max(secs, 1), "early", "Application is over its MailboxConcurrency limit.")
	case concurrency > 0 && m.inflight >= concurrency:
		return s.throttleResp(req, s.cfg.ConcurrencyRetryAfter, "concurrency", "Application is over its MailboxConcurrency limit.")
	}
	if rate > 0 {
		cut := now.Add(-window)
		i := 0
		for i < len(m.accepted) && !m.accepted[i].After(cut) {
			i++
		}
		m.accepted = m.accepted[i:]
		if len(m.accepted) >= rate {
			secs := int(math.Ceil(m.accepted[0].Add(window).Sub(now).Seconds()))
			return s.throttleResp(req, max(secs, 1), rateReason, "Application is over its RequestRate limit.")
		}
	}
	selected := f.selects(req.kind)
	if selected && f.ThrottleFraction > 0 && draw(f.Seed, "throttle", req.key, n) < f.ThrottleFraction {
		return s.throttleResp(req, f.throttleRetryAfter(), "fault", fmt.Sprintf("Too many requests. Please retry after %d seconds.", f.throttleRetryAfter()))
	}
	if selected && f.ServerErrorFraction > 0 && draw(f.Seed, "5xx", req.key, n) < f.ServerErrorFraction {
		sts := f.ServerErrorStatuses
		if len(sts) == 0 {
			sts = []int{500, 503, 504}
		}
		st := sts[int(draw(f.Seed, "5xx-status", req.key, n)*float64(len(sts)))%len(sts)]
		return s.serverErrorResp(req, st, "fault")
	}
	m.inflight++
	if rate > 0 {
		m.accepted = append(m.accepted, now)
	}
	return nil
}

func (s *Server) release(mailbox string) {
	s.mu.Lock()
	if m := s.mailboxes[mailbox]; m != nil && m.inflight > 0 {
		m.inflight--
	}
	s.mu.Unlock()
}

// commit records, at the moment an answer is sent, the Retry-After it carries, and counts it.
func (s *Server) commit(req *gReq, mailbox string, resp *gResp, inBatch bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if inBatch {
		s.st.subStatuses[resp.status]++
	} else {
		s.st.httpStatuses[resp.status]++
	}
	if resp.status == http.StatusTooManyRequests {
		s.st.throttled++
		s.st.throttledByReason[resp.reason]++
		if resp.retryAfter > 0 {
			until := now.Add(time.Duration(resp.retryAfter) * time.Second)
			if mailbox != "" {
				m := s.mbLocked(mailbox)
				hold(&m.retryUntil, &m.toldAt, until, now)
			}
			if req != nil {
				if len(s.keyRetryUntil) > 20000 {
					for k, v := range s.keyRetryUntil {
						if !now.Before(v) {
							delete(s.keyRetryUntil, k)
						}
					}
				}
				s.keyRetryUntil[req.key] = until
			}
		}
	}
	if resp.status >= 500 && (resp.reason == "fault" || resp.reason == "failMailbox" || resp.reason == "batch") {
		s.st.serverErrors++
	}
}

func (s *Server) observe(req *gReq, mailbox string, resp *gResp) {
	if s.cfg.Observe == nil {
		return
	}
	s.cfg.Observe(Record{
		Time: s.now(), BatchID: req.batchID, ID: req.id, Method: req.method, Path: req.path,
		Mailbox: mailbox, Schedules: resp.schedules, Status: resp.status, RetryAfter: resp.retryAfter,
		Reason: resp.reason, Early: resp.early,
	})
}

// ---- direct requests ----

func (s *Server) serveGraphDirect(w http.ResponseWriter, r *http.Request, path string) {
	start := time.Now()
	req := &gReq{method: r.Method, path: path, query: r.URL.RawQuery, header: r.Header}
	sc := s.Scenario()
	rt := s.parseRoute(req, sc)
	req.kind = rt.kind
	if rt.kind != "" {
		s.count(rt.kind) // "getSchedule", "calendarView", "getPresencesByUserId", "users"
	} else {
		s.count("graph-other")
	}
	roles, authErr := s.authenticate(r)
	if authErr != nil {
		s.commit(nil, "", authErr, false)
		s.writeGraph(w, r, authErr)
		return
	}
	req.roles = roles
	body, err := readBody(r)
	if err != nil {
		resp := s.errResp(http.StatusUnsupportedMediaType, "BadRequest", err.Error(), req)
		if err != errUnsupportedEncoding {
			resp = s.errResp(http.StatusBadRequest, "BadRequest", err.Error(), req)
		}
		s.commit(nil, "", resp, false)
		s.writeGraph(w, r, resp)
		return
	}
	req.body = body
	req.key = requestKey(req.method, req.path, req.query, body)
	if rt.errResp == nil && s.drawHang(req) {
		s.hang(w, r, req.method+" "+req.path, start)
		return
	}
	early := s.arriveGlobal()
	scope := rt.scope()
	var resp *gResp
	if rt.errResp != nil {
		resp = rt.errResp
	} else {
		if s.arrive(scope, req.key, early) {
			early = true
		}
		resp = s.admit(req, scope, early)
		if resp == nil {
			f := s.Faults()
			lat := time.Duration(f.RequestLatency) + time.Duration(f.EndpointLatency[rt.kind])
			if err := s.sleep(r.Context(), lat); err != nil {
				s.release(scope)
				s.depart(scope)
				return
			}
			resp = s.execute(req, rt, sc)
			s.release(scope)
		}
	}
	resp.early = early
	s.commit(req, scope, resp, false)
	if rt.errResp == nil {
		s.depart(scope)
	}
	s.observe(req, rt.mailbox, resp)
	if s.cfg.Verbose {
		s.cfg.Logf("graphsim: %s %s -> %d %s (%s)", req.method, req.path, resp.status, resp.reason, time.Since(start).Round(time.Millisecond))
	}
	s.writeGraph(w, r, resp)
}

func (s *Server) writeGraph(w http.ResponseWriter, r *http.Request, resp *gResp) {
	h := w.Header()
	for k, v := range resp.header {
		h.Set(k, v)
	}
	crid := r.Header.Get("client-request-id")
	if crid == "" {
		crid = newGUID()
	}
	h.Set("request-id", newGUID())
	h.Set("client-request-id", crid)
	h.Set("x-ms-ags-diagnostic", `{"ServerInfo":{"DataCenter":"Local","Slice":"E","Ring":"0","ScaleUnit":"000","RoleInstance":"graphsim"}}`)
	h.Set("Strict-Transport-Security", "max-age=31536000")
	w.WriteHeader(resp.status)
	if len(resp.body) > 0 {
		_, _ = w.Write(resp.body)
	}
}

// execute runs an admitted request.
func (s *Server) execute(req *gReq, rt route, sc *Scenario) *gResp {
	switch rt.kind {
	case endpointGetSchedule:
		return s.getSchedule(req, rt, sc)
	case endpointCalendarView:
		return s.calendarView(req, rt, sc)
	case endpointPresences:
		return s.getPresences(req, sc)
	case endpointUsers:
		return s.listUsers(req, sc)
	}
	return s.errResp(http.StatusBadRequest, "BadRequest", "Invalid request URL.", req)
}

// ---- getSchedule ----

type dateTimeTZ struct {
	DateTime string `json:"dateTime"`
	TimeZone string `json:"timeZone"`
}

type getScheduleBody struct {
	Schedules                []string    `json:"schedules"`
	StartTime                *dateTimeTZ `json:"startTime"`
	EndTime                  *dateTimeTZ `json:"endTime"`
	AvailabilityViewInterval *int        `json:"availabilityViewInterval"`
}

var windowsZones = map[string]string{
	"pacific standard time":          "America/Los_Angeles",
	"mountain standard time":         "America/Denver",
	"central standard time":          "America/Chicago",
	"eastern standard time":          "America/New_York",
	"gmt standard time":              "Europe/London",
	"w. europe standard time":        "Europe/Berlin",
	"romance standard time":          "Europe/Paris",
	"central europe standard time":   "Europe/Budapest",
	"fle standard time":              "Europe/Helsinki",
	"india standard time":            "Asia/Kolkata",
	"tokyo standard time":            "Asia/Tokyo",
	"aus eastern standard time":      "Australia/Sydney",
	"singapore standard time":        "Asia/Singapore",
	"china standard time":            "Asia/Shanghai",
	"e. south america standard time": "America/Sao_Paulo",
}

// loadTZ resolves a Graph time zone name: UTC variants, a few Windows names, IANA names.
func loadTZ(name string) (*time.Location, bool) {
	n := strings.TrimSpace(name)
	switch strings.ToLower(n) {
	case "utc", "etc/utc", "gmt", "etc/gmt", "z", "coordinated universal time", "utc+00:00", "tzone://microsoft/utc":
		return time.UTC, true
	case "", "local":
		return nil, false
	}
	if iana, ok := windowsZones[strings.ToLower(n)]; ok {
		n = iana
	}
	if !strings.Contains(n, "/") {
		return nil, false
	}
	loc, err := time.LoadLocation(n)
	if err != nil {
		return nil, false
	}
	return loc, true
}

// preferTimeZone extracts outlook.timezone="..." from Prefer headers.
func preferTimeZone(h http.Header) (string, bool) {
	for _, v := range h.Values("Prefer") {
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			k, val, ok := strings.Cut(part, "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "outlook.timezone") {
				return strings.Trim(strings.TrimSpace(val), `"`), true
			}
		}
	}
	return "", false
}

func parseGraphDateTime(d *dateTimeTZ) (time.Time, *time.Location, error) {
	if d == nil || strings.TrimSpace(d.DateTime) == "" {
		return time.Time{}, nil, fmt.Errorf("missing dateTime")
	}
	loc, ok := loadTZ(d.TimeZone)
	if !ok {
		return time.Time{}, nil, fmt.Errorf("time zone '%s' is not valid", d.TimeZone)
	}
	s := strings.TrimSpace(d.DateTime)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, loc, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05.9999999", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, loc, nil
		}
	}
	return time.Time{}, nil, fmt.Errorf("cannot parse dateTime '%s'", d.DateTime)
}

type dateTimeOut struct {
	DateTime string `json:"dateTime"`
	TimeZone string `json:"timeZone"`
}

func graphDT(t time.Time, loc *time.Location, label string) dateTimeOut {
	return dateTimeOut{DateTime: t.In(loc).Format(graphDateLayout), TimeZone: label}
}

type scheduleItemOut struct {
	IsPrivate bool        `json:"isPrivate"`
	Status    string      `json:"status"`
	Subject   string      `json:"subject,omitempty"`
	Location  string      `json:"location,omitempty"`
	Start     dateTimeOut `json:"start"`
	End       dateTimeOut `json:"end"`
}

type workingHoursOut struct {
	DaysOfWeek []string          `json:"daysOfWeek"`
	StartTime  string            `json:"startTime"`
	EndTime    string            `json:"endTime"`
	TimeZone   map[string]string `json:"timeZone"`
}

type freeBusyErrorOut struct {
	Message      string `json:"message"`
	ResponseCode string `json:"responseCode"`
}

type scheduleInfoOut struct {
	ScheduleID       string             `json:"scheduleId"`
	AvailabilityView *string            `json:"availabilityView,omitempty"`
	ScheduleItems    *[]scheduleItemOut `json:"scheduleItems,omitempty"`
	WorkingHours     *workingHoursOut   `json:"workingHours,omitempty"`
	Error            *freeBusyErrorOut  `json:"error,omitempty"`
}

func scheduleErrorMessage(code, addr string) string {
	switch code {
	case "ErrorMailRecipientNotFound":
		return "The specified emailAddress is invalid or no mailbox was found with the provided address."
	case "ErrorNoFreeBusyAccess":
		return "Microsoft.Exchange.InfoWorker.Common.Availability.NoFreeBusyAccessException: No free/busy access is allowed for the requester."
	case "ErrorProxyRequestNotAllowed":
		return "Proxy requests are not allowed. The mailbox " + addr + " is hosted in a different site or forest."
	case "ErrorInvalidSmtpAddress":
		return "The SMTP address has no mailbox associated with it."
	}
	return "The free/busy information for " + addr + " could not be retrieved: " + code + "."
}

// hasCalendarRole reports whether the token's roles include one of the Calendars.* permissions.
func hasCalendarRole(roles []string) bool {
	for _, r := range roles {
		if strings.HasPrefix(strings.ToLower(r), "calendars.") {
			return true
		}
	}
	return false
}

func (s *Server) getSchedule(req *gReq, rt route, sc *Scenario) *gResp {
	s.mu.Lock()
	s.st.getScheduleCalls++
	malformedItems := s.faults.MalformedItemAddresses
	s.mu.Unlock()
	if !hasCalendarRole(req.roles) {
		return s.errResp(http.StatusForbidden, "ErrorAccessDenied", "Access is denied. Check credentials and try again.", req)
	}
	var body getScheduleBody
	if err := json.Unmarshal(req.body, &body); err != nil || len(req.body) == 0 {
		return s.errResp(http.StatusBadRequest, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.", req)
	}
	bad := func(msg string) *gResp { return s.errResp(http.StatusBadRequest, "ErrorInvalidParameter", msg, req) }
	if len(body.Schedules) == 0 {
		return bad("The parameter 'Schedules' must contain at least one email address.")
	}
	if len(body.Schedules) > maxSchedules {
		return bad(fmt.Sprintf("The number of schedules requested (%d) exceeds the maximum of %d.", len(body.Schedules), maxSchedules))
	}
	if body.StartTime == nil || body.EndTime == nil {
		return bad("The parameters 'StartTime' and 'EndTime' are required.")
	}
	start, startLoc, err := parseGraphDateTime(body.StartTime)
	if err != nil {
		return s.errResp(http.StatusBadRequest, "ErrorInvalidParameter", "StartTime: "+err.Error(), req)
	}
	end, _, err := parseGraphDateTime(body.EndTime)
	if err != nil {
		return s.errResp(http.StatusBadRequest, "ErrorInvalidParameter", "EndTime: "+err.Error(), req)
	}
	if !end.After(start) {
		return s.errResp(http.StatusBadRequest, "ErrorInvalidTimeInterval", "The time duration specified for FreeBusyViewOptions.TimeWindow is invalid: EndTime must be later than StartTime.", req)
	}
	if end.Sub(start) >= 62*24*time.Hour {
		return s.errResp(http.StatusBadRequest, "ErrorInvalidTimeInterval", "The time duration specified for FreeBusyViewOptions.TimeWindow is invalid: it must be shorter than 62 days.", req)
	}
	interval := 30
	if body.AvailabilityViewInterval != nil {
		interval = *body.AvailabilityViewInterval
	}
	if interval < 5 || interval > 1440 {
		return bad(fmt.Sprintf("The parameter 'AvailabilityViewInterval' (%d) must be between 5 and 1440 minutes.", interval))
	}
	outLoc, outLabel := startLoc, body.StartTime.TimeZone
	if startLoc == time.UTC {
		outLabel = "UTC"
	}
	if tz, ok := preferTimeZone(req.header); ok {
		loc, ok := loadTZ(tz)
		if !ok {
			return s.errResp(http.StatusBadRequest, "ErrorTimeZoneNotSupported", fmt.Sprintf("The time zone '%s' in the Prefer header is not supported.", tz), req)
		}
		outLoc, outLabel = loc, tz
		if loc == time.UTC {
			outLabel = "UTC"
		}
	}
	start, end = start.UTC(), end.UTC()
	iv := time.Duration(interval) * time.Minute
	slots := int((end.Sub(start) + iv - 1) / iv)

	values := make([]any, 0, len(body.Schedules))
	for _, addr := range body.Schedules {
		res := sc.resolve(addr)
		code := ""
		switch {
		case res.missing:
			code = "ErrorMailRecipientNotFound"
		case res.mb != nil && res.mb.ScheduleError != "":
			code = res.mb.ScheduleError
		case res.mb != nil && res.mb.Unlicensed:
			code = "ErrorMailRecipientNotFound"
		}
		if code != "" {
			values = append(values, scheduleInfoOut{
				ScheduleID: addr,
				Error:      &freeBusyErrorOut{Message: scheduleErrorMessage(code, addr), ResponseCode: code},
			})
			continue
		}
		events := sc.EventsFor(addr, start, end)
		view := make([]byte, slots)
		for i := 0; i < slots; i++ {
			a := start.Add(time.Duration(i) * iv)
			b := a.Add(iv)
			if b.After(end) {
				b = end
			}
			best := StatusFree
			for _, e := range events {
				if e.Start.Before(b) && e.End.After(a) && statusRank(e.Status) > statusRank(best) {
					best = e.Status
				}
			}
			view[i] = availabilityDigit(best)
		}
		items := make([]scheduleItemOut, 0, len(events))
		for _, e := range events {
			it := scheduleItemOut{IsPrivate: e.IsPrivate, Status: e.Status,
				Start: graphDT(e.Start, outLoc, outLabel), End: graphDT(e.End, outLoc, outLabel)}
			if !e.IsPrivate {
				it.Subject, it.Location = e.Subject, e.Location
			}
			items = append(items, it)
		}
		if res.mb != nil && res.mb.HideItems {
			items = items[:0]
		}
		if len(items) > 0 && listed(malformedItems, addr) {
			items[0].Start.DateTime = "not a date"
		}
		v := string(view)
		values = append(values, scheduleInfoOut{
			ScheduleID:       addr,
			AvailabilityView: &v,
			ScheduleItems:    &items,
			WorkingHours: &workingHoursOut{
				DaysOfWeek: []string{"monday", "tuesday", "wednesday", "thursday", "friday"},
				StartTime:  "08:00:00.0000000",
				EndTime:    "17:00:00.0000000",
				TimeZone:   map[string]string{"name": "UTC"},
			},
		})
	}
	s.mu.Lock()
	s.st.schedulesLookedUp += int64(len(body.Schedules))
	for _, a := range body.Schedules {
		s.st.scheduleLookups[strings.ToLower(strings.TrimSpace(a))]++
	}
	s.mu.Unlock()
	s.rememberGenerated(sc, body.Schedules...)
	out, _ := json.Marshal(orderedContext{
		Context: "https://graph.microsoft.com/v1.0/$metadata#Collection(microsoft.graph.scheduleInformation)",
		Value:   values,
	})
	return &gResp{
		status:    http.StatusOK,
		header:    map[string]string{"Content-Type": odataJSON, "Cache-Control": "private"},
		body:      out,
		schedules: append([]string(nil), body.Schedules...),
	}
}

type orderedContext struct {
	Context string `json:"@odata.context"`
	Value   []any  `json:"value"`
}

// sortedKeys is a helper for deterministic logs.
func sortedKeys[M ~map[K]V, K int | string, V any](m M) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	return ks
}
