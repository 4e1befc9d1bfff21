package graphsim

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"time"
)

// Duration is a time.Duration that reads and writes JSON as "1.2s" (a bare number is seconds).
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "1.2s", "300ms" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case string:
		p, err := time.ParseDuration(x)
		if err != nil {
			return err
		}
		*d = Duration(p)
	case float64:
		*d = Duration(x * float64(time.Second))
	case nil:
		*d = 0
	default:
		return fmt.Errorf("bad duration %s", b)
	}
	return nil
}

// Faults are injected failures and latencies. All fractions are in [0,1]. Decisions are
// deterministic given Seed: each depends on the seed, the request (method, URL, body) and how many
// times that same request has been seen since the faults were set, so a retried request gets a
// fresh draw but the outcome does not depend on goroutine scheduling.
type Faults struct {
	Seed int64 `json:"seed"`

	// ThrottleFraction of Graph requests / sub-requests are answered 429 with
	// Retry-After ThrottleRetryAfter seconds (default 2).
	ThrottleFraction   float64 `json:"throttleFraction,omitempty"`
	ThrottleRetryAfter int     `json:"throttleRetryAfter,omitempty"`
	// ServerErrorFraction of Graph requests / sub-requests are answered with one of
	// ServerErrorStatuses (default 500, 503, 504).
	ServerErrorFraction float64 `json:"serverErrorFraction,omitempty"`
	ServerErrorStatuses []int   `json:"serverErrorStatuses,omitempty"`
	// Whole-batch failures: the $batch itself answers 429 (Retry-After ThrottleRetryAfter) or 5xx.
	BatchThrottleFraction    float64 `json:"batchThrottleFraction,omitempty"`
	BatchServerErrorFraction float64 `json:"batchServerErrorFraction,omitempty"`
	// BatchHangFraction of $batch calls (past the whole-batch faults above) are accepted and never
	// answered: the simulator holds them until the client gives up (Stats.Hung), or for at most
	// hangLimit, then answers 504.
	BatchHangFraction float64 `json:"batchHangFraction,omitempty"`
	// FailMailboxes: every request whose URL names one of these mailboxes fails with 503.
	FailMailboxes []string `json:"failMailboxes,omitempty"`

	// FaultEndpoints, when set, limits ThrottleFraction, ServerErrorFraction and HangFraction to
	// the requests (direct or sub-requests) of these endpoints: "getSchedule", "calendarView",
	// "getPresencesByUserId", "users". Empty: every endpoint, as before they were named.
	FaultEndpoints []string `json:"faultEndpoints,omitempty"`
	// HangFraction of the requests of the selected endpoints are accepted and never answered, like
	// BatchHangFraction: a direct request hangs itself, a sub-request its whole $batch.
	HangFraction float64 `json:"hangFraction,omitempty"`
	// EndpointLatency is added to every request of an endpoint (by its FaultEndpoints name): to a
	// direct one, and to a $batch holding one (the slowest endpoint's).
	EndpointLatency map[string]Duration `json:"endpointLatency,omitempty"`

	// String bodies: a $batch sub-request whose URL names one of these mailboxes, when it succeeds,
	// answers with its body as a JSON string instead of an object. TextBodyMailboxes send plain
	// text (Content-Type text/plain), which no getSchedule reader can use; Base64BodyMailboxes send
	// the real answer base64-encoded, as Graph does for some content types. msgraph-sdk-go-core
	// v1.4.0 fails a whole $batch on either.
	TextBodyMailboxes   []string `json:"textBodyMailboxes,omitempty"`
	Base64BodyMailboxes []string `json:"base64BodyMailboxes,omitempty"`
	// MalformedItemAddresses: getSchedule answers these addresses (as schedules) with their first
	// schedule item's start dateTime unreadable. The address needs an item in the window.
	MalformedItemAddresses []string `json:"malformedItemAddresses,omitempty"`

	BatchLatency   Duration `json:"batchLatency,omitempty"`   // added to every $batch
	RequestLatency Duration `json:"requestLatency,omitempty"` // added to every direct Graph request

	// ShuffleBatchResponses answers $batch sub-responses in a (seeded) random order.
	ShuffleBatchResponses bool `json:"shuffleBatchResponses,omitempty"`
	// PunishEarlyRetries answers 429 to requests re-sent before their Retry-After elapsed
	// (they are counted as early retries either way).
	PunishEarlyRetries bool `json:"punishEarlyRetries,omitempty"`
	// ConsentError makes the admin consent redirect carry error=<value>.
	ConsentError string `json:"consentError,omitempty"`
}

func (f *Faults) validate() error {
	for name, v := range map[string]float64{
		"throttleFraction": f.ThrottleFraction, "serverErrorFraction": f.ServerErrorFraction,
		"batchThrottleFraction": f.BatchThrottleFraction, "batchServerErrorFraction": f.BatchServerErrorFraction,
		"batchHangFraction": f.BatchHangFraction, "hangFraction": f.HangFraction,
	} {
		if v < 0 || v > 1 {
			return fmt.Errorf("graphsim: faults.%s = %v, want [0,1]", name, v)
		}
	}
	for _, st := range f.ServerErrorStatuses {
		if st < 500 || st > 599 {
			return fmt.Errorf("graphsim: faults.serverErrorStatuses: %d is not 5xx", st)
		}
	}
	if f.ThrottleRetryAfter < 0 || f.BatchLatency < 0 || f.RequestLatency < 0 {
		return fmt.Errorf("graphsim: negative fault value")
	}
	for _, e := range f.FaultEndpoints {
		if !slices.Contains(endpoints, e) {
			return fmt.Errorf("graphsim: faults.faultEndpoints: %q is not one of %s", e, strings.Join(endpoints, ", "))
		}
	}
	for e, d := range f.EndpointLatency {
		if !slices.Contains(endpoints, e) {
			return fmt.Errorf("graphsim: faults.endpointLatency: %q is not one of %s", e, strings.Join(endpoints, ", "))
		}
		if d < 0 {
			return fmt.Errorf("graphsim: faults.endpointLatency.%s is negative", e)
		}
	}
	return nil
}

// selects reports whether the fractions apply to a request of endpoint kind.
func (f *Faults) selects(kind string) bool {
	return len(f.FaultEndpoints) == 0 || slices.Contains(f.FaultEndpoints, kind)
}

// drawHang decides whether a request (direct or sub-request) hangs (HangFraction). Each re-send
// of the same request gets a fresh draw.
func (s *Server) drawHang(req *gReq) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := &s.faults
	if f.HangFraction <= 0 || !f.selects(req.kind) {
		return false
	}
	key := "hang|" + req.key
	n := s.attempts[key]
	s.attempts[key] = n + 1
	return draw(f.Seed, "hang", req.key, n) < f.HangFraction
}

func (f *Faults) throttleRetryAfter() int {
	if f.ThrottleRetryAfter > 0 {
		return f.ThrottleRetryAfter
	}
	return 2
}

func (f *Faults) failsMailbox(mb string) bool { return listed(f.FailMailboxes, mb) }

// listed reports whether addr is in list (case-insensitive).
func listed(list []string, addr string) bool {
	for _, m := range list {
		if strings.EqualFold(strings.TrimSpace(m), strings.TrimSpace(addr)) {
			return true
		}
	}
	return false
}

// textBody is what a sub-request listed in TextBodyMailboxes answers.
const textBody = "graphsim: this answer is text, not JSON."

// stringBody applies TextBodyMailboxes and Base64BodyMailboxes to a successful sub-response of
// mailbox: the body and headers to send instead.
func (f *Faults) stringBody(mailbox string, body json.RawMessage, header map[string]string) (json.RawMessage, map[string]string) {
	var s string
	contentType := ""
	switch {
	case listed(f.TextBodyMailboxes, mailbox):
		s, contentType = textBody, "text/plain; charset=utf-8"
	case listed(f.Base64BodyMailboxes, mailbox):
		s = base64.StdEncoding.EncodeToString(body)
	default:
		return body, header
	}
	b, _ := json.Marshal(s)
	if contentType != "" {
		header = maps.Clone(header)
		header["Content-Type"] = contentType
	}
	return b, header
}

// draw returns a deterministic number in [0,1) for (seed, kind, key, n).
func draw(seed int64, kind, key string, n int) float64 {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(seed))
	h.Write(b[:])
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(key))
	binary.LittleEndian.PutUint64(b[:], uint64(n))
	h.Write(b[:])
	x := h.Sum64()
	// finalize (splitmix64) for better low-bit mixing
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11) / float64(1<<53)
}

// SetFaults replaces the injected faults (and restarts the deterministic draw sequences).
func (s *Server) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	s.faults = f
	s.attempts = map[string]int{}
	s.mu.Unlock()
	return nil
}

// Faults returns the current faults.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults
	f.ServerErrorStatuses = append([]int(nil), f.ServerErrorStatuses...)
	f.FailMailboxes = append([]string(nil), f.FailMailboxes...)
	f.TextBodyMailboxes = append([]string(nil), f.TextBodyMailboxes...)
	f.Base64BodyMailboxes = append([]string(nil), f.Base64BodyMailboxes...)
	f.MalformedItemAddresses = append([]string(nil), f.MalformedItemAddresses...)
	f.FaultEndpoints = append([]string(nil), f.FaultEndpoints...)
	f.EndpointLatency = maps.Clone(f.EndpointLatency)
	return f
}

// UpdateFaults changes the current faults in place.
func (s *Server) UpdateFaults(fn func(*Faults)) error {
	f := s.Faults()
	fn(&f)
	return s.SetFaults(f)
}
