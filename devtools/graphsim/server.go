// Package graphsim is a local simulator of the parts of Microsoft Entra ID (client-credential
// token flow) and Microsoft Graph (calendar getSchedule, JSON $batch) that calstatus uses,
// including Outlook's per-mailbox throttling and injectable faults. It also serves a mailbox's
// calendarView (GET /users/{id|upn}/calendarView?startDateTime&endDateTime, from the same events),
// which the bench's baseline reads as the official Mattermost calendar plugin does, and Teams
// presence: POST /communications/getPresencesByUserId (presence.go) and the directory lookup that
// turns addresses into the object ids presence is keyed by, GET /users?$filter=… (users.go). It is
// test tooling, kept apart from production code. It serves HTTPS only (MSAL refuses non-https
// authorities) with a CA generated at start.
//
// In-process:
//
//	sim, _ := graphsim.Start(graphsim.Config{Scenario: sc})
//	defer sim.Close()
//	cred, _ := azidentity.NewClientSecretCredential(sim.TenantID(), sim.ClientID(), sim.ClientSecret(),
//		&azidentity.ClientSecretCredentialOptions{
//			ClientOptions: azcore.ClientOptions{
//				Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: sim.URL() + "/"},
//				Transport: sim.Client(), // trusts the generated CA
//			},
//			DisableInstanceDiscovery: true,
//		})
//	// Graph request adapter base URL: sim.GraphURL() (= sim.URL()+"/v1.0")
//
// Out of process (cmd/graphsim): SSL_CERT_FILE=<ca file>, AZURE_AUTHORITY_HOST=<url>/,
// GRAPH_BASE_URL=<url>/v1.0; control through /_sim/faults and /_sim/stats.
//
// Throttling model: each request (direct or $batch sub-request) is throttled on the mailbox named
// in its URL (/users/{id|upn}/...): at most Config.MailboxConcurrency run at once (the sub-requests
// of a $batch start together, in request order, and hold their slot for the batch's latency), and
// at most Config.MailboxRateLimit are admitted per Config.MailboxRateWindow. A 429 carries
// Retry-After; the simulator remembers it and counts requests for that mailbox that arrive before
// it elapsed (Stats.EarlyRetries). getPresencesByUserId names no mailbox: it is limited per app, at
// most Config.PresenceRateLimit requests per Config.PresenceRateWindow (Graph's 1,500 per 30 s).
package graphsim

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// Defaults used when Config leaves the identity fields empty.
const (
	DefaultTenantID     = "8f0c1a52-2b7e-4c1d-9a63-5d1f0e7b3c21"
	DefaultClientID     = "3d6b7e2a-91f4-4b8e-a0c5-7e2f1d9c4b10"
	DefaultClientSecret = "graphsim-secret~not-a-real-one"
	// GraphScope is the scope a client-credential client asks for.
	GraphScope = "https://graph.microsoft.com/.default"
)

// Config configures a simulator. Zero values get defaults.
type Config struct {
	Addr                             string    // default 127.0.0.1:0
	TenantID, ClientID, ClientSecret string    // defaults DefaultTenantID, DefaultClientID, DefaultClientSecret
	Scenario                         *Scenario // default DefaultScenario()

	// BatchLatency is added to every $batch (sub-requests hold their mailbox slot meanwhile);
	// RequestLatency to every direct Graph request. Both can be changed at runtime through Faults.
	BatchLatency, RequestLatency time.Duration

	MailboxConcurrency    int           // concurrent requests per mailbox in the URL; default 4
	MailboxRateLimit      int           // requests per MailboxRateWindow per mailbox; default 10000
	MailboxRateWindow     time.Duration // default 10m
	ConcurrencyRetryAfter int           // Retry-After seconds for MailboxConcurrency 429s; default 1

	// PresenceRateLimit getPresencesByUserId requests (direct or sub-requests) are admitted per
	// PresenceRateWindow for the app; default 1500 per 30 s, Graph's documented limit.
	PresenceRateLimit  int
	PresenceRateWindow time.Duration

	TokenLifetime time.Duration // default 3599s
	// Roles are the application permissions put in issued tokens (SetRoles changes them for the
	// tokens issued after). getSchedule and calendarView need a Calendars.* role (else 403
	// ErrorAccessDenied); getPresencesByUserId Presence.Read.All or Presence.ReadWrite.All (else
	// 403 Forbidden); GET /users User.ReadBasic.All, User.Read.All or a higher user or directory
	// role (else 403 Authorization_RequestDenied). Default ["Calendars.ReadBasic.All"], what
	// calstatus asks for with presence off.
	Roles []string

	CAFile string // if set, the CA certificate (PEM) is written there

	// Faults are the initial faults (see SetFaults). Non-zero BatchLatency/RequestLatency
	// above override the latencies in it.
	Faults Faults

	Now func() time.Time // clock for tokens, rate windows and Retry-After; default time.Now
	// PresenceNow is the time presence is answered as of (presence has no time in the request):
	// tests on a simulated clock set it; default Now.
	PresenceNow func() time.Time
	Logf        func(format string, args ...any) // default: no logging
	Verbose     bool                             // log one line per $batch and direct Graph request
	// Observe, if set, is called (synchronously) after each Graph request or sub-request.
	Observe func(Record)
}

// Record describes one handled Graph request or $batch sub-request.
type Record struct {
	Time       time.Time `json:"time"`
	BatchID    string    `json:"batchId,omitempty"` // "" for direct requests
	ID         string    `json:"id,omitempty"`      // sub-request id
	Method     string    `json:"method"`
	Path       string    `json:"path"`              // below /v1.0
	Mailbox    string    `json:"mailbox,omitempty"` // mailbox in the URL, lowercased
	Schedules  []string  `json:"schedules,omitempty"`
	Status     int       `json:"status"`
	RetryAfter int       `json:"retryAfter,omitempty"`
	Reason     string    `json:"reason,omitempty"` // why a 429/5xx was produced
	Early      bool      `json:"early,omitempty"`  // re-sent before an earlier Retry-After elapsed
}

// Server is a running simulator.
type Server struct {
	cfg   Config
	certs *certs
	ln    net.Listener
	srv   *http.Server
	url   string
	wg    sync.WaitGroup
	// closing ends at Close, releasing hung $batch calls.
	closing context.Context
	stop    context.CancelFunc

	mu        sync.Mutex
	scenario  *Scenario
	faults    Faults
	attempts  map[string]int // fault decisions: attempts per request key
	tokens    map[string]tokenInfo
	mailboxes map[string]*mbState
	// retry bookkeeping
	globalRetryUntil time.Time
	globalToldAt     time.Time
	keyRetryUntil    map[string]time.Time
	batchSeq         int64
	st               statsData
	roles            []string
	// seenIDs are the object ids of generated users (no scenario entry) whose address the
	// simulator has met, so presence can be asked for them by id: id → address.
	seenIDs map[string]string
}

// Start starts a simulator listening on cfg.Addr.
func Start(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.TenantID == "" {
		cfg.TenantID = DefaultTenantID
	}
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID
	}
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = DefaultClientSecret
	}
	if cfg.Scenario == nil {
		cfg.Scenario = DefaultScenario()
	}
	if err := cfg.Scenario.Validate(); err != nil {
		return nil, err
	}
	if cfg.MailboxConcurrency <= 0 {
		cfg.MailboxConcurrency = 4
	}
	if cfg.MailboxRateLimit <= 0 {
		cfg.MailboxRateLimit = 10000
	}
	if cfg.MailboxRateWindow <= 0 {
		cfg.MailboxRateWindow = 10 * time.Minute
	}
	if cfg.ConcurrencyRetryAfter <= 0 {
		cfg.ConcurrencyRetryAfter = 1
	}
	if cfg.PresenceRateLimit <= 0 {
		cfg.PresenceRateLimit = 1500
	}
	if cfg.PresenceRateWindow <= 0 {
		cfg.PresenceRateWindow = 30 * time.Second
	}
	if cfg.TokenLifetime <= 0 {
		cfg.TokenLifetime = 3599 * time.Second
	}
	if cfg.Roles == nil {
		cfg.Roles = []string{"Calendars.ReadBasic.All"}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PresenceNow == nil {
		cfg.PresenceNow = cfg.Now
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.BatchLatency != 0 {
		cfg.Faults.BatchLatency = Duration(cfg.BatchLatency)
	}
	if cfg.RequestLatency != 0 {
		cfg.Faults.RequestLatency = Duration(cfg.RequestLatency)
	}
	if err := cfg.Faults.validate(); err != nil {
		return nil, err
	}
	c, err := newCerts()
	if err != nil {
		return nil, fmt.Errorf("graphsim: certificates: %w", err)
	}
	if cfg.CAFile != "" {
		if err := os.WriteFile(cfg.CAFile, c.caPEM, 0o644); err != nil {
			return nil, fmt.Errorf("graphsim: writing CA: %w", err)
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("graphsim: listen: %w", err)
	}
	s := &Server{
		cfg:           cfg,
		certs:         c,
		ln:            ln,
		scenario:      cfg.Scenario,
		faults:        cfg.Faults,
		attempts:      map[string]int{},
		tokens:        map[string]tokenInfo{},
		mailboxes:     map[string]*mbState{},
		keyRetryUntil: map[string]time.Time{},
		st:            newStatsData(),
		roles:         append([]string(nil), cfg.Roles...),
		seenIDs:       map[string]string{},
	}
	s.closing, s.stop = context.WithCancel(context.Background())
	host := ln.Addr().(*net.TCPAddr)
	if host.IP.To4() == nil && !host.IP.IsUnspecified() {
		s.url = fmt.Sprintf("https://[%s]:%d", host.IP, host.Port)
	} else if host.IP.IsUnspecified() {
		s.url = fmt.Sprintf("https://127.0.0.1:%d", host.Port)
	} else {
		s.url = fmt.Sprintf("https://%s:%d", host.IP, host.Port)
	}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{c.leaf}, MinVersion: tls.VersionTLS12},
		ErrorLog:          log.New(logWriter{s}, "", 0),
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.cfg.Logf("graphsim: serve: %v", err)
		}
	}()
	return s, nil
}

type logWriter struct{ s *Server }

func (w logWriter) Write(p []byte) (int, error) {
	if w.s.cfg.Verbose {
		w.s.cfg.Logf("graphsim: http: %s", strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// URL is the base URL (authority host), e.g. https://127.0.0.1:18443.
func (s *Server) URL() string { return s.url }

// GraphURL is the Graph base URL: URL()+"/v1.0".
func (s *Server) GraphURL() string { return s.url + "/v1.0" }

// TenantID, ClientID and ClientSecret return the configured identity.
func (s *Server) TenantID() string     { return s.cfg.TenantID }
func (s *Server) ClientID() string     { return s.cfg.ClientID }
func (s *Server) ClientSecret() string { return s.cfg.ClientSecret }

// CAPEM returns the CA certificate in PEM.
func (s *Server) CAPEM() []byte { return append([]byte(nil), s.certs.caPEM...) }

// CertPool returns a pool holding only the simulator's CA.
func (s *Server) CertPool() *x509.CertPool { return s.certs.pool }

// Client returns an HTTP client that trusts the simulator's CA.
func (s *Server) Client() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: s.certs.pool, MinVersion: tls.VersionTLS12}
	tr.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}
}

// Scenario returns the current scenario.
func (s *Server) Scenario() *Scenario {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.scenario
}

// SetScenario replaces the scenario.
func (s *Server) SetScenario(sc *Scenario) error {
	if sc == nil {
		return errors.New("graphsim: nil scenario")
	}
	if err := sc.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	s.scenario = sc
	s.mu.Unlock()
	return nil
}

// Roles returns the application permissions put in the tokens issued now.
func (s *Server) Roles() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.roles...)
}

// SetRoles changes the application permissions of the tokens issued from now on, as granting or
// revoking admin consent does: tokens already issued keep theirs until they expire (a client
// holding one sees the change only with a new token).
func (s *Server) SetRoles(roles []string) {
	s.mu.Lock()
	s.roles = append([]string(nil), roles...)
	s.mu.Unlock()
}

// Close stops the server at once (open connections are closed; HTTP/2's graceful shutdown would
// otherwise add a second).
func (s *Server) Close() error {
	err := s.srv.Close()
	s.stop() // after the connections are closed: a released hung call must not be answered
	s.wg.Wait()
	return err
}

func (s *Server) now() time.Time { return s.cfg.Now().UTC() }

// ServeHTTP routes all requests.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	lp := strings.ToLower(p)
	switch {
	case strings.HasPrefix(lp, "/_sim/"):
		s.count("sim")
		s.serveAdmin(w, r)
	case lp == "/v1.0/$batch" || lp == "/v1.0/$batch/":
		s.count("$batch")
		s.serveBatch(w, r)
	case strings.HasPrefix(lp, "/v1.0/"):
		s.serveGraphDirect(w, r, p[len("/v1.0"):])
	case lp == "/msi/token":
		s.serveMSI(w, r)
	case strings.HasPrefix(lp, "/beta/"):
		s.count("graph-other")
		s.writeGraph(w, r, s.errResp(http.StatusBadRequest, "BadRequest", "graphsim only serves v1.0.", &gReq{header: r.Header}))
	default:
		s.serveEntra(w, r)
	}
}

func (s *Server) count(kind string) {
	s.mu.Lock()
	s.st.requests[kind]++
	s.mu.Unlock()
}

// readBody reads a request body, undoing Content-Encoding gzip (which kiota's compression
// handler applies to every request body).
func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	switch strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))) {
	case "", "identity":
		return body, nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("bad gzip body: %w", err)
		}
		return io.ReadAll(io.LimitReader(zr, 64<<20))
	default:
		return nil, errUnsupportedEncoding
	}
}

var errUnsupportedEncoding = errors.New("unsupported Content-Encoding")

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newGUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return formatGUID(b)
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if contentType == "" {
		contentType = "application/json; charset=utf-8"
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (s *Server) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
