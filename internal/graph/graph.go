// Package graph fetches free/busy availability from Microsoft Graph: one JSON $batch of up to 20
// calendar/getSchedule sub-requests of up to 20 schedules each, i.e. 400 users in one HTTP call.
// With presence on, it also reads Teams presence (presence.go: getPresencesByUserId, 650 users a
// call) and the Entra object ids presence is keyed by (userids.go: GET /users $filter lookups,
// batched). Requests are built and sent through msgraph-sdk-go and msgraph-sdk-go-core: client.go,
// presence.go and userids.go are the files that know the SDK's types. The answers are read here
// (parse.go, and each operation's file), so that one unreadable sub-response or presence costs
// only its own users.
//
// Every error this package returns starts with "graph: " and wraps its cause.
package graph

import (
	"time"

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

	// DefaultAttemptTimeout bounds one $batch call. Graph answers a full $batch in a second or two,
	// so a call still open after this has hung; retrying it beats holding it until the invocation's
	// deadline.
	DefaultAttemptTimeout = 30 * time.Second
)

// Window is the period schedules are asked for.
type Window struct{ Start, End time.Time }

// Failure is one user (or a whole sub-request) Graph could not answer for.
type Failure struct {
	Email   string
	Mailbox string // the mailbox in the sub-request's URL
	Class   string // see classify; "malformed" when the answer could not be read
	Code    string
	Message string
	Status  int
	// Detail is the raw answer, kept for errors calstatus does not know (class "unknown") or could
	// not read (class "malformed") so they can be logged in full.
	Detail string
}

// Result is what GetSchedules learned.
type Result struct {
	// Availability by lower-cased email, for every user Graph answered for readably.
	Availability map[string]calendar.Availability
	Failures     []Failure
	// Calls counts $batch HTTP calls made; Retries the sub-requests sent again (throttled, failed,
	// unanswered); Throttled the sub-requests answered 429 (a whole $batch answered 429 counts
	// each of its sub-requests).
	Calls, Retries, Throttled int
}
