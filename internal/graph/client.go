package graph

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoft/kiota-abstractions-go/serialization"
	azauth "github.com/microsoft/kiota-authentication-azure-go"
	khttp "github.com/microsoft/kiota-http-go"
	kjson "github.com/microsoft/kiota-serialization-json-go"
	core "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

const scope = "https://graph.microsoft.com/.default"

// maxBody bounds what is read of one answer (400 users' schedules are well below).
const maxBody = 64 << 20

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
	// AttemptTimeout bounds one $batch call; default DefaultAttemptTimeout. A call that runs out
	// of it failed like a network error: it is retried within MaxAttempts and the context's time.
	AttemptTimeout time.Duration
	// Sleep waits between attempts; tests may replace it.
	Sleep func(ctx context.Context, d time.Duration) error
	Log   *slog.Logger
}

var registerSerializers sync.Once

// Client fetches schedules. It is safe for concurrent use; its token cache lives as long as it does.
type Client struct {
	cfg      Config
	base     string
	adapter  *core.GraphRequestAdapterBase
	throttle throttle
	refused  refusedMailboxes
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
	if err != nil {
		return nil, fmt.Errorf("graph: GRAPH_BASE_URL %q: %w", cfg.BaseURL, err)
	}
	if u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("graph: GRAPH_BASE_URL %q is not an absolute URL", cfg.BaseURL)
	}
	if cfg.Interval == 0 {
		cfg.Interval = 5
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 4
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = DefaultAttemptTimeout
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	adapter, err := newAdapter(cfg, base, u.Hostname())
	if err != nil {
		return nil, fmt.Errorf("graph: %w", err)
	}
	return &Client{cfg: cfg, base: base, adapter: adapter}, nil
}

// newAdapter builds the SDK's request adapter: token from the credential, the SDK's middleware
// (telemetry, compression, redirects…) minus its retry handler.
func newAdapter(cfg Config, base, host string) (*core.GraphRequestAdapterBase, error) {
	registerSerializers.Do(func() {
		// What msgraph-sdk-go's service client registers; request bodies are serialized with them.
		abstractions.RegisterDefaultSerializer(func() serialization.SerializationWriterFactory {
			return kjson.NewJsonSerializationWriterFactory()
		})
		abstractions.RegisterDefaultDeserializer(func() serialization.ParseNodeFactory {
			return kjson.NewJsonParseNodeFactory()
		})
	})
	auth, err := azauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(cfg.Credential, []string{scope}, []string{host})
	if err != nil {
		return nil, fmt.Errorf("auth provider: %w", err)
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
		return nil, fmt.Errorf("request adapter: %w", err)
	}
	adapter.SetBaseUrl(base)
	return adapter, nil
}

// scheduleBatch is one $batch of getSchedule sub-requests, built by the SDK.
type scheduleBatch struct {
	sdk  core.BatchRequest
	byID map[string]*subRequest // by the step ids the SDK gave them
}

// newBatch builds the $batch body with the SDK: one getSchedule step per sub-request.
func (c *Client) newBatch(ctx context.Context, reqs []*subRequest, w Window) (*scheduleBatch, error) {
	b := &scheduleBatch{sdk: core.NewBatchRequest(c.adapter), byID: make(map[string]*subRequest, len(reqs))}
	for _, sr := range reqs {
		info, err := c.getScheduleRequest(ctx, sr, w)
		if err != nil {
			return nil, err
		}
		step, err := b.sdk.AddBatchRequestStep(*info)
		if err != nil {
			return nil, fmt.Errorf("adding batch step: %w", err)
		}
		b.byID[*step.GetId()] = sr
	}
	return b, nil
}

func (c *Client) getScheduleRequest(ctx context.Context, sr *subRequest, w Window) (*abstractions.RequestInformation, error) {
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
		return nil, fmt.Errorf("building getSchedule request: %w", err)
	}
	return info, nil
}

// dateTimeLayout is how a window bound is sent (whole seconds, UTC); the availability view's
// slots start at the bound as sent.
const dateTimeLayout = "2006-01-02T15:04:05"

func dateTime(t time.Time) models.DateTimeTimeZoneable {
	d := models.NewDateTimeTimeZone()
	s := t.UTC().Format(dateTimeLayout)
	tz := "UTC"
	d.SetDateTime(&s)
	d.SetTimeZone(&tz)
	return d
}

// httpAnswer is the raw answer to a call.
type httpAnswer struct {
	status int
	header http.Header
	body   []byte
}

// postBatch sends a $batch the SDK built: msgraph-sdk-go-core v1.4.0 parses every sub-response
// body as a JSON object and fails the whole batch on any other body (Graph sends a string, base64
// or text, for non-JSON content), which would throw away the other 19 answers, so parseBatch reads
// the raw answer instead.
func (c *Client) postBatch(ctx context.Context, b core.BatchRequest) (httpAnswer, error) {
	info := abstractions.NewRequestInformation()
	info.Method = abstractions.POST
	info.UrlTemplate = "{+baseurl}/$batch"
	if err := info.SetContentFromParsable(ctx, c.adapter, "application/json", b); err != nil {
		return httpAnswer{}, fmt.Errorf("serializing $batch: %w", err)
	}
	return c.send(ctx, info)
}

// send sends a request the SDK built through its request adapter (token, CAE, telemetry,
// compression middleware stay in the path) but takes the raw HTTP answer through a response
// handler, so that the status, Retry-After and body are read here, alike for every call.
func (c *Client) send(ctx context.Context, info *abstractions.RequestInformation) (httpAnswer, error) {
	var ans httpAnswer
	handler := abstractions.NewRequestHandlerOption()
	handler.SetResponseHandler(func(native any, _ abstractions.ErrorMappings) (any, error) {
		resp, ok := native.(*http.Response)
		if !ok {
			return nil, fmt.Errorf("unexpected native response %T", native)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		if err != nil {
			return nil, fmt.Errorf("reading the answer: %w", err)
		}
		ans = httpAnswer{status: resp.StatusCode, header: resp.Header, body: body}
		return nil, nil
	})
	info.AddRequestOptions([]abstractions.RequestOption{handler})
	if err := c.adapter.SendNoContent(ctx, info, nil); err != nil {
		return httpAnswer{}, err
	}
	return ans, nil
}
