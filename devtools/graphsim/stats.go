package graphsim

import (
	"maps"
	"time"
)

// Stats are the simulator's counters since start or the last ResetStats.
type Stats struct {
	// Requests counts HTTP requests by endpoint: "$batch", "getSchedule" (direct), "calendarView"
	// (direct), "getPresencesByUserId" (direct), "users" (direct GET /users), "graph-other",
	// "token", "openid-configuration", "adminconsent", "sim", "other".
	Requests map[string]int64 `json:"requests"`
	// HTTPStatuses counts top-level HTTP responses of Graph and token endpoints by status.
	HTTPStatuses map[int]int64 `json:"httpStatuses"`
	// SubRequests counts $batch sub-requests; SubStatuses their statuses.
	SubRequests int64         `json:"subRequests"`
	SubStatuses map[int]int64 `json:"subStatuses"`
	// GetScheduleCalls counts getSchedule calls (direct or batched) that reached the handler;
	// SchedulesLookedUp the schedules they asked for; ScheduleLookups the same by address.
	GetScheduleCalls  int64            `json:"getScheduleCalls"`
	SchedulesLookedUp int64            `json:"schedulesLookedUp"`
	ScheduleLookups   map[string]int64 `json:"scheduleLookups"`
	// CalendarViewCalls counts calendarView calls (direct or batched) that reached the handler.
	CalendarViewCalls int64 `json:"calendarViewCalls"`
	// PresenceCalls counts getPresencesByUserId calls (direct or batched) that reached the handler
	// (not those throttled before it); PresenceIDs the ids they asked for.
	PresenceCalls int64 `json:"presenceCalls"`
	PresenceIDs   int64 `json:"presenceIds"`
	// UserQueries counts GET /users calls (direct or batched) that reached the handler.
	UserQueries int64 `json:"userQueries"`
	// Throttled counts 429 answers (direct, sub-request or whole batch); ThrottledByReason splits
	// them: "concurrency", "rate", "fault", "batch", "early", "presenceRate" (the app's
	// getPresencesByUserId limit).
	Throttled         int64            `json:"throttled"`
	ThrottledByReason map[string]int64 `json:"throttledByReason"`
	// EarlyRetries counts requests for a mailbox or an endpoint limited per app (or, after a
	// whole-batch 429, any request) that arrived before a Retry-After the simulator had given for
	// it elapsed. EarlyRetriesSameRequest
	// counts those that repeated the very request (method, URL, body) that had been throttled.
	EarlyRetries            int64 `json:"earlyRetries"`
	EarlyRetriesSameRequest int64 `json:"earlyRetriesSameRequest"`
	// RetriesInFlight counts the requests that arrived during a Retry-After but within 100 ms of
	// its answer: sent before their client could have read it, so not early.
	RetriesInFlight int64 `json:"retriesInFlight"`
	// ServerErrors counts injected 5xx answers (sub-requests, direct requests and whole batches).
	ServerErrors int64 `json:"serverErrors"`
	// Hung counts $batch calls and direct requests held unanswered (Faults.BatchHangFraction,
	// Faults.HangFraction).
	Hung          int64 `json:"hung"`
	TokensIssued  int64 `json:"tokensIssued"`
	TokenFailures int64 `json:"tokenFailures"`
	Unauthorized  int64 `json:"unauthorized"` // Graph requests rejected for a missing/bad token
	// MaxConcurrentPerMailbox is, per mailbox in the URL, the most requests outstanding at once
	// (including those that were rejected: what the client attempted). MaxConcurrent is the
	// highest of them.
	MaxConcurrentPerMailbox map[string]int `json:"maxConcurrentPerMailbox"`
	MaxConcurrent           int            `json:"maxConcurrent"`
}

type statsData struct {
	requests                map[string]int64
	httpStatuses            map[int]int64
	subRequests             int64
	subStatuses             map[int]int64
	getScheduleCalls        int64
	schedulesLookedUp       int64
	scheduleLookups         map[string]int64
	calendarViewCalls       int64
	presenceCalls           int64
	presenceIDs             int64
	userQueries             int64
	throttled               int64
	throttledByReason       map[string]int64
	earlyRetries            int64
	earlyRetriesSameRequest int64
	retriesInFlight         int64
	serverErrors            int64
	hung                    int64
	tokensIssued            int64
	tokenFailures           int64
	unauthorized            int64
	maxConcurrentPerMailbox map[string]int
	maxConcurrent           int
}

func newStatsData() statsData {
	return statsData{
		requests:                map[string]int64{},
		httpStatuses:            map[int]int64{},
		subStatuses:             map[int]int64{},
		scheduleLookups:         map[string]int64{},
		throttledByReason:       map[string]int64{},
		maxConcurrentPerMailbox: map[string]int{},
	}
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := &s.st
	return Stats{
		Requests:                maps.Clone(d.requests),
		HTTPStatuses:            maps.Clone(d.httpStatuses),
		SubRequests:             d.subRequests,
		SubStatuses:             maps.Clone(d.subStatuses),
		GetScheduleCalls:        d.getScheduleCalls,
		SchedulesLookedUp:       d.schedulesLookedUp,
		ScheduleLookups:         maps.Clone(d.scheduleLookups),
		CalendarViewCalls:       d.calendarViewCalls,
		PresenceCalls:           d.presenceCalls,
		PresenceIDs:             d.presenceIDs,
		UserQueries:             d.userQueries,
		Throttled:               d.throttled,
		ThrottledByReason:       maps.Clone(d.throttledByReason),
		EarlyRetries:            d.earlyRetries,
		EarlyRetriesSameRequest: d.earlyRetriesSameRequest,
		RetriesInFlight:         d.retriesInFlight,
		ServerErrors:            d.serverErrors,
		Hung:                    d.hung,
		TokensIssued:            d.tokensIssued,
		TokenFailures:           d.tokenFailures,
		Unauthorized:            d.unauthorized,
		MaxConcurrentPerMailbox: maps.Clone(d.maxConcurrentPerMailbox),
		MaxConcurrent:           d.maxConcurrent,
	}
}

// ResetStats zeroes the counters. Throttling state (in-flight requests, rate windows, pending
// Retry-After periods) and issued tokens are kept.
func (s *Server) ResetStats() {
	s.mu.Lock()
	s.st = newStatsData()
	s.mu.Unlock()
}

// ResetThrottling forgets rate windows and pending Retry-After periods (in-flight requests are
// kept).
func (s *Server) ResetThrottling() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.mailboxes {
		m.accepted = nil
		m.retryUntil = time.Time{}
	}
	s.globalRetryUntil, s.globalToldAt = time.Time{}, time.Time{}
	s.keyRetryUntil = map[string]time.Time{}
}
