// Package graph fetches free/busy availability from Microsoft Graph: one JSON $batch of up to 20
// calendar/getSchedule sub-requests of up to 20 schedules each, i.e. 400 users in one HTTP call.
// Requests are built and sent by msgraph-sdk-go and msgraph-sdk-go-core; only the interpretation of
// each sub-response is ours.
package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoft/kiota-abstractions-go/serialization"
	azauth "github.com/microsoft/kiota-authentication-azure-go"
	khttp "github.com/microsoft/kiota-http-go"
	kjson "github.com/microsoft/kiota-serialization-json-go"
	core "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/calstatus/calstatus/internal/calendar"
)

const (
	// SchedulesPerRequest is Graph's documented limit of schedules in one getSchedule call.
	SchedulesPerRequest = 20
	// RequestsPerBatch is Graph's limit of sub-requests in one $batch.
	RequestsPerBatch = 20
	// UsersPerBatch is what one $batch call covers.
	UsersPerBatch = SchedulesPerRequest * RequestsPerBatch

	// DefaultBaseURL is Microsoft Graph v1.0 in the public cloud.
	DefaultBaseURL = "https://graph.microsoft.com/v1.0"
	scope          = "https://graph.microsoft.com/.default"
)

// Config configures a Client.
type Config struct {
	BaseURL    string // GRAPH_BASE_URL; default DefaultBaseURL
	Credential azcore.TokenCredential
	// Transport, when set, carries the HTTP calls under the SDK's middleware (tests trust a local CA
	// with it).
	Transport http.RoundTripper
	// Interval is getSchedule's availabilityViewInterval in minutes (5..1440).
	Interval int
	// MaxAttempts bounds how often one sub-request is sent (throttling and 5xx retries).
	MaxAttempts int
	// Sleep waits between attempts; tests may replace it.
	Sleep func(ctx context.Context, d time.Duration) error
	Log   *slog.Logger
}

var registerSerializers sync.Once

// Client fetches schedules. It is safe for concurrent use; its token cache lives as long as it does.
type Client struct {
	cfg     Config
	base    string
	adapter *core.GraphRequestAdapterBase
}

// New builds a Client on the SDK's request adapter.
func New(cfg Config) (*Client, error) {
	if cfg.Credential == nil {
		return nil, errors.New("graph: no credential")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("graph: GRAPH_BASE_URL %q is not an absolute URL", cfg.BaseURL)
	}
	if cfg.Interval == 0 {
		cfg.Interval = 5
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 4
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	registerSerializers.Do(func() {
		// What msgraph-sdk-go's service client registers; batching parses with the defaults.
		abstractions.RegisterDefaultSerializer(func() serialization.SerializationWriterFactory {
			return kjson.NewJsonSerializationWriterFactory()
		})
		abstractions.RegisterDefaultDeserializer(func() serialization.ParseNodeFactory {
			return kjson.NewJsonParseNodeFactory()
		})
	})
	auth, err := azauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(cfg.Credential, []string{scope}, []string{u.Hostname()})
	if err != nil {
		return nil, fmt.Errorf("graph: auth provider: %w", err)
	}
	opts := core.GraphClientOptions{GraphServiceVersion: "v1.0", GraphServiceLibraryVersion: "calstatus"}
	// The SDK's own retry middleware is left out: it would retry a throttled or failing $batch
	// blindly (3 times, seconds apart); GetSchedules retries per sub-request within its budget.
	var middleware []khttp.Middleware
	for _, m := range core.GetDefaultMiddlewaresWithOptions(&opts) {
		if _, isRetry := m.(*khttp.RetryHandler); !isRetry {
			middleware = append(middleware, m)
		}
	}
	httpClient := khttp.GetDefaultClient(middleware...)
	if cfg.Transport != nil {
		httpClient.Transport = khttp.NewCustomTransportWithParentTransport(cfg.Transport, middleware...)
	}
	adapter, err := core.NewGraphRequestAdapterBaseWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, opts, nil, nil, httpClient)
	if err != nil {
		return nil, fmt.Errorf("graph: request adapter: %w", err)
	}
	adapter.SetBaseUrl(base)
	return &Client{cfg: cfg, base: base, adapter: adapter}, nil
}

// Window is the period schedules are asked for.
type Window struct{ Start, End time.Time }

// Failure is one user (or a whole sub-request) Graph could not answer for.
type Failure struct {
	Email   string
	Mailbox string // the mailbox in the sub-request's URL
	Class   string // see classify
	Code    string
	Message string
	Status  int
	// Detail is the raw answer, kept for errors calstatus does not know (class "unknown") so they
	// can be logged in full.
	Detail string
}

// Result is what GetSchedules learned.
type Result struct {
	// Availability by lower-cased email, for every user Graph answered for.
	Availability map[string]calendar.Availability
	Failures     []Failure
	// Calls counts $batch HTTP calls made.
	Calls int
	// Throttled counts sub-responses answered 429.
	Throttled int
}

// subRequest is one getSchedule call for up to 20 users.
type subRequest struct {
	emails []string
	// mailbox is the user named in the URL; tried are those already refused as such.
	mailbox string
	tried   map[string]bool
	// attempts counts sends; throttles those answered 429, which are retried while the invocation's
	// time allows (up to maxThrottles) rather than MaxAttempts.
	attempts, throttles int
	notBefore           time.Time
}

const (
	maxThrottles = 10
	// coalesce lets retries that fall due close together go out in one $batch.
	coalesce = 250 * time.Millisecond
)

// GetSchedules fetches availability for emails over w, in as few $batch calls as Graph allows, and
// retries throttled and failed sub-requests alone, never before their Retry-After. Per-user problems
// are reported in Result.Failures. An error means some users could not be fetched at all (Graph or
// the network kept failing, the credential was refused, the context ended): the Result still holds
// everything that was fetched, so a caller can act on those users and retry only the rest.
func (c *Client) GetSchedules(ctx context.Context, emails []string, w Window) (Result, error) {
	res := Result{Availability: make(map[string]calendar.Availability, len(emails))}
	var pending []*subRequest
	for i := 0; i < len(emails); i += SchedulesPerRequest {
		chunk := emails[i:min(i+SchedulesPerRequest, len(emails))]
		// Each sub-request names one of its own users as the mailbox in the URL: Outlook limits
		// concurrent requests per mailbox, so one service mailbox for all would throttle us.
		pending = append(pending, &subRequest{emails: chunk, mailbox: chunk[0], tried: map[string]bool{}})
	}
	var fatal error
	for len(pending) > 0 && fatal == nil {
		now := time.Now()
		var ready, waiting []*subRequest
		earliest := time.Time{}
		for _, sr := range pending {
			if !sr.notBefore.After(now) && len(ready) < RequestsPerBatch {
				ready = append(ready, sr)
				continue
			}
			waiting = append(waiting, sr)
			if earliest.IsZero() || sr.notBefore.Before(earliest) {
				earliest = sr.notBefore
			}
		}
		if len(ready) == 0 {
			if dl, ok := ctx.Deadline(); ok && earliest.After(dl) {
				fatal = fmt.Errorf("graph: retry due at %s is past the invocation's deadline", earliest.Format(time.RFC3339))
				break
			}
			if err := c.cfg.Sleep(ctx, time.Until(earliest)+coalesce); err != nil {
				fatal = fmt.Errorf("graph: waiting to retry: %w", err)
			}
			continue
		}
		retry, pause, err := c.sendBatch(ctx, ready, w, &res)
		fatal = err
		pending = append(waiting, retry...)
		// A whole $batch throttled means the app is throttled: nothing goes out before Retry-After.
		for _, sr := range pending {
			if sr.notBefore.Before(pause) {
				sr.notBefore = pause
			}
		}
	}
	if fatal != nil {
		n := 0
		for _, sr := range pending {
			n += len(sr.emails)
		}
		return res, fmt.Errorf("%w (%d users not fetched)", fatal, n)
	}
	return res, nil
}

// retryLater puts a sub-request back after delay, unless it has had all its attempts.
func (c *Client) retryLater(sr *subRequest, status int, delay time.Duration) bool {
	if status == http.StatusTooManyRequests {
		sr.attempts-- // throttling is waited out, not counted as a failure
		sr.throttles++
		if sr.throttles > maxThrottles {
			return false
		}
	} else if sr.attempts >= c.cfg.MaxAttempts {
		return false
	}
	sr.notBefore = time.Now().Add(delay)
	return true
}

// reroute names another of the sub-request's users in the URL after the current one was refused
// (no mailbox, not licensed), so its 20 users are not lost for one bad mailbox.
func reroute(sr *subRequest) bool {
	sr.tried[strings.ToLower(sr.mailbox)] = true
	for _, e := range sr.emails {
		if !sr.tried[strings.ToLower(e)] {
			sr.mailbox = e
			sr.notBefore = time.Time{}
			return true
		}
	}
	return false
}

// sendBatch sends one $batch and sorts its sub-responses: answers into res, sub-requests to try
// again into the returned slice. An error means a sub-request is out of attempts, or the credential
// is refused; every other sub-request of the batch is still sorted.
//
// pause, when set, is the end of a Retry-After given to the whole batch.
func (c *Client) sendBatch(ctx context.Context, reqs []*subRequest, w Window, res *Result) (retry []*subRequest, pause time.Time, fatal error) {
	batch := core.NewBatchRequest(c.adapter)
	byID := make(map[string]*subRequest, len(reqs))
	for _, sr := range reqs {
		info, err := c.requestInfo(ctx, sr, w)
		if err != nil {
			return reqs, time.Time{}, err
		}
		item, err := batch.AddBatchRequestStep(*info)
		if err != nil {
			return reqs, time.Time{}, fmt.Errorf("graph: adding batch step: %w", err)
		}
		byID[*item.GetId()] = sr
		sr.attempts++
	}
	res.Calls++
	resp, err := batch.Send(ctx, c.adapter)
	if err != nil {
		var authErr *azidentity.AuthenticationFailedError
		if errors.As(err, &authErr) {
			return reqs, time.Time{}, fmt.Errorf("graph: Entra ID refused the app credentials: %s", BriefAuthError(err))
		}
		if ctx.Err() != nil {
			return reqs, time.Time{}, fmt.Errorf("graph: %w", ctx.Err())
		}
		// The whole call failed (network, 5xx, or a 429 for the whole batch): every sub-request goes
		// back after the batch's Retry-After or a backoff, bounded by its attempts.
		status, retryAfter := errorStatus(err)
		if status == http.StatusTooManyRequests {
			res.Throttled += len(reqs)
		}
		c.cfg.Log.Warn("graph batch failed", "status", status, "error", err.Error(), "subrequests", len(reqs), "attempt", reqs[0].attempts)
		delay := c.backoff(reqs[0].attempts, status, retryAfter) // one delay: they go out together again
		for _, sr := range reqs {
			if !c.retryLater(sr, status, delay) {
				return reqs, time.Time{}, fmt.Errorf("graph: $batch failed %d times: %w", sr.attempts, err)
			}
		}
		if status == http.StatusTooManyRequests {
			pause = time.Now().Add(delay)
		}
		return reqs, pause, nil
	}
	for _, item := range resp.GetResponses() {
		sr := byID[deref(item.GetId())]
		if sr == nil {
			continue
		}
		delete(byID, deref(item.GetId()))
		status := int(deref(item.GetStatus()))
		body, _ := json.Marshal(item.GetBody())
		switch {
		case status >= 200 && status < 300:
			interpret(sr, body, res, w, c.cfg.Interval)
		case status == http.StatusTooManyRequests || status >= 500:
			if status == http.StatusTooManyRequests {
				res.Throttled++
			}
			if c.retryLater(sr, status, c.backoff(sr.attempts, status, retryAfterHeader(item.GetHeaders()))) {
				retry = append(retry, sr)
			} else if status == http.StatusTooManyRequests {
				failAll(sr, status, body, "throttled", res)
			} else {
				retry = append(retry, sr)
				fatal = fmt.Errorf("graph: sub-request for %s still failing with %d after %d attempts", sr.mailbox, status, sr.attempts)
			}
		case mailboxRefused(status, body):
			c.cfg.Log.Warn("graph refused the mailbox in the URL; retrying through another user's", "mailbox", sr.mailbox, "status", status)
			if reroute(sr) {
				sr.attempts = 0
				retry = append(retry, sr)
			} else {
				failAll(sr, status, body, "", res)
			}
		default:
			failAll(sr, status, body, "", res)
		}
	}
	// A sub-request the batch did not answer is retried like a 5xx.
	for _, sr := range byID {
		retry = append(retry, sr)
		if !c.retryLater(sr, 0, c.backoff(sr.attempts, 0, 0)) {
			fatal = fmt.Errorf("graph: no answer for the sub-request through %s after %d attempts", sr.mailbox, sr.attempts)
		}
	}
	return retry, time.Time{}, fatal
}

// mailboxRefused recognises a sub-request refused because of the mailbox named in its URL.
func mailboxRefused(status int, body []byte) bool {
	if status != http.StatusNotFound && status != http.StatusForbidden && status != http.StatusBadRequest {
		return false
	}
	switch classify(status, errorCode(body)) {
	case "not_found", "no_mailbox":
		return true
	}
	return false
}

func (c *Client) requestInfo(ctx context.Context, sr *subRequest, w Window) (*abstractions.RequestInformation, error) {
	rb := users.NewItemCalendarGetScheduleRequestBuilderInternal(map[string]string{
		"baseurl": c.base, "user%2Did": sr.mailbox,
	}, c.adapter)
	body := users.NewItemCalendarGetSchedulePostRequestBody()
	body.SetSchedules(sr.emails)
	body.SetStartTime(dateTime(w.Start))
	body.SetEndTime(dateTime(w.End))
	interval := int32(c.cfg.Interval)
	body.SetAvailabilityViewInterval(&interval)
	headers := abstractions.NewRequestHeaders()
	headers.Add("Prefer", `outlook.timezone="UTC"`)
	info, err := rb.ToPostRequestInformation(ctx, body, &users.ItemCalendarGetScheduleRequestBuilderPostRequestConfiguration{Headers: headers})
	if err != nil {
		return nil, fmt.Errorf("graph: building getSchedule request: %w", err)
	}
	return info, nil
}

func dateTime(t time.Time) models.DateTimeTimeZoneable {
	d := models.NewDateTimeTimeZone()
	s := t.UTC().Format("2006-01-02T15:04:05")
	tz := "UTC"
	d.SetDateTime(&s)
	d.SetTimeZone(&tz)
	return d
}

// The wire format of a getSchedule answer. Parsed from the batch item's JSON rather than the SDK's
// model because the model maps status strings case-sensitively and Graph's casing varies.
type scheduleResponse struct {
	Value []struct {
		ScheduleID       string `json:"scheduleId"`
		AvailabilityView string `json:"availabilityView"`
		ScheduleItems    []struct {
			Status    string       `json:"status"`
			Start     wireDateTime `json:"start"`
			End       wireDateTime `json:"end"`
			Subject   string       `json:"subject"`
			Location  string       `json:"location"`
			IsPrivate bool         `json:"isPrivate"`
		} `json:"scheduleItems"`
		Error *struct {
			ResponseCode string `json:"responseCode"`
			Message      string `json:"message"`
		} `json:"error"`
	} `json:"value"`
}

type wireDateTime struct {
	DateTime string `json:"dateTime"`
	TimeZone string `json:"timeZone"`
}

func (d wireDateTime) time() (time.Time, error) {
	if d.TimeZone != "" && !strings.EqualFold(d.TimeZone, "UTC") {
		return time.Time{}, fmt.Errorf("time zone %q, asked for UTC", d.TimeZone)
	}
	return time.Parse("2006-01-02T15:04:05.9999999", strings.TrimSuffix(d.DateTime, "Z"))
}

func interpret(sr *subRequest, body []byte, res *Result, w Window, interval int) {
	var sched scheduleResponse
	if err := json.Unmarshal(body, &sched); err != nil {
		failAll(sr, 200, body, "malformed", res)
		return
	}
	answered := map[string]bool{}
	for _, v := range sched.Value {
		email := strings.ToLower(v.ScheduleID)
		answered[email] = true
		if v.Error != nil {
			res.Failures = append(res.Failures, Failure{Email: email, Mailbox: sr.mailbox, Class: classify(0, v.Error.ResponseCode),
				Code: v.Error.ResponseCode, Message: v.Error.Message, Status: 200})
			continue
		}
		var events []calendar.Event
		for _, it := range v.ScheduleItems {
			start, err1 := it.Start.time()
			end, err2 := it.End.time()
			if err := errors.Join(err1, err2); err != nil {
				res.Failures = append(res.Failures, Failure{Email: email, Mailbox: sr.mailbox, Class: "malformed", Message: err.Error(), Status: 200})
				continue
			}
			events = append(events, calendar.Event{Start: start, End: end, Status: calendar.ParseStatus(it.Status),
				Subject: it.Subject, Location: it.Location, Private: it.IsPrivate})
		}
		if len(v.ScheduleItems) == 0 {
			// Without items (hidden by the mailbox's sharing settings) the availability view still
			// tells the status per interval.
			events = fromView(v.AvailabilityView, w.Start, interval)
		}
		res.Availability[email] = calendar.Availability{Email: email, Events: calendar.Normalize(events)}
	}
	for _, e := range sr.emails {
		if !answered[strings.ToLower(e)] {
			res.Failures = append(res.Failures, Failure{Email: strings.ToLower(e), Mailbox: sr.mailbox, Class: "missing", Message: "not in getSchedule answer", Status: 200})
		}
	}
}

// fromView turns an availabilityView ("0022…", one digit per interval from start) into periods.
func fromView(view string, start time.Time, interval int) []calendar.Event {
	var out []calendar.Event
	step := time.Duration(interval) * time.Minute
	for i, r := range view {
		st := calendar.ParseStatus(string(r))
		if st == calendar.Free || st == calendar.Unknown {
			continue
		}
		from := start.Add(time.Duration(i) * step)
		out = append(out, calendar.Event{Start: from, End: from.Add(step), Status: st})
	}
	return out
}

// failAll records a failed sub-request against each of its users.
func failAll(sr *subRequest, status int, body []byte, class string, res *Result) {
	code, msg := errorCodeMessage(body)
	if class == "" {
		class = classify(status, code)
	}
	detail := ""
	if class == "unknown" {
		detail = string(body[:min(len(body), 2000)])
	}
	for _, e := range sr.emails {
		res.Failures = append(res.Failures, Failure{Email: strings.ToLower(e), Mailbox: sr.mailbox, Class: class,
			Code: code, Message: msg, Status: status, Detail: detail})
	}
}

// errorCodeMessage reads Graph's {"error":{"code","message"}} body.
func errorCodeMessage(body []byte) (string, string) {
	var oe struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &oe)
	return oe.Error.Code, oe.Error.Message
}

func errorCode(body []byte) string { c, _ := errorCodeMessage(body); return c }

// classify names the kind of a Graph error so failures can be counted and reported by kind.
func classify(status int, code string) string {
	switch strings.ToLower(code) {
	case "errormailrecipientnotfound", "erroritemnotfound", "resourcenotfound", "errorinvaliduser", "request_resourcenotfound":
		return "not_found"
	case "mailboxnotenabledforrestapi", "errornonexistentmailbox", "mailboxnotsupportedforrestapi":
		return "no_mailbox"
	case "errornofreebusyaccess", "erroraccessdenied", "erroritemnotfoundorinsufficientpermissions":
		return "no_access"
	case "errorproxyrequestnotallowed", "errorproxyrequestprocessingfailed":
		return "proxy"
	}
	switch {
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return "unauthorized"
	case status == http.StatusNotFound:
		return "not_found"
	case status == http.StatusTooManyRequests:
		return "throttled"
	case status >= 500:
		return "server"
	}
	return "unknown"
}

// retryAfter reads a Retry-After value in seconds (0 when absent or not a number).
func retryAfter(v string) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	return 0
}

// retryAfterHeader finds Retry-After in a batch sub-response's headers (any casing).
func retryAfterHeader(h map[string]string) time.Duration {
	for k, v := range h {
		if strings.EqualFold(k, "Retry-After") {
			return retryAfter(v)
		}
	}
	return 0
}

// errorStatus reads the status and Retry-After of a failed whole $batch call.
func errorStatus(err error) (int, time.Duration) {
	var api *abstractions.ApiError
	if !errors.As(err, &api) {
		return 0, 0
	}
	var ra time.Duration
	if api.ResponseHeaders != nil {
		if v := api.ResponseHeaders.Get("Retry-After"); len(v) > 0 {
			ra = retryAfter(v[0])
		}
	}
	return api.ResponseStatusCode, ra
}

// backoff waits at least Retry-After when Graph gave one, else a jittered exponential delay.
func (c *Client) backoff(attempt, status int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return retryAfter
	}
	if status == http.StatusTooManyRequests {
		return 2 * time.Second
	}
	d := time.Duration(1<<min(attempt, 6)) * 250 * time.Millisecond
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
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

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
