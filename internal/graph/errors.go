package graph

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// statusError is an error status Graph answered, to a whole call or to one sub-request.
type statusError struct {
	status        int
	code, message string
	retryAfter    time.Duration
}

func (e *statusError) Error() string {
	s := fmt.Sprintf("status %d", e.status)
	if e.code != "" {
		s += " " + e.code
	}
	if e.message != "" {
		s += ": " + e.message
	}
	return s
}

// answerStatusError describes a call ($batch, presence) answered with an error status as a whole.
func answerStatusError(ans httpAnswer) error {
	code, msg := errorCodeMessage(ans.body)
	return &statusError{status: ans.status, code: code, message: msg, retryAfter: parseRetryAfter(ans.header.Get("Retry-After"))}
}

// errorStatus reads the status and Retry-After of a failed call (0, 0 for a network error).
func errorStatus(err error) (int, time.Duration) {
	var se *statusError
	if !errors.As(err, &se) {
		return 0, 0
	}
	return se.status, se.retryAfter
}

// credentialError is Entra ID refusing the app's credential. Its message is the one line that
// says why (azidentity's own dumps the whole HTTP exchange); the full error stays wrapped.
type credentialError struct{ err error }

func (e *credentialError) Error() string {
	return "Entra ID refused the app credentials: " + BriefAuthError(e.err)
}

func (e *credentialError) Unwrap() error { return e.err }

// credentialFailure is err as a credentialError when it is Entra ID refusing the app's credential,
// else nil.
func credentialFailure(err error) error {
	var authErr *azidentity.AuthenticationFailedError
	if errors.As(err, &authErr) {
		return &credentialError{err}
	}
	return nil
}

// callFailure describes a call (or sub-request) that failed as a whole: its error answer, or
// class "graph" when Graph did not answer (network, AttemptTimeout).
func callFailure(err error) Failure {
	var se *statusError
	if !errors.As(err, &se) {
		return Failure{Class: "graph", Message: err.Error()}
	}
	return Failure{Class: permissionClass(se.status, se.code), Code: se.code, Message: se.message, Status: se.status}
}

// permissionClass names the kind of an error answer to a presence or directory call: a 403 there
// is the app lacking the permission (Presence.Read.All, User.ReadBasic.All), "forbidden", where
// classify, made for mailboxes, would say "unauthorized".
func permissionClass(status int, code string) string {
	if status == http.StatusForbidden {
		return "forbidden"
	}
	return classify(status, code)
}

// failAll records f against each of the sub-request's users.
func failAll(sr *subRequest, f Failure, res *Result) {
	for _, e := range sr.emails {
		f.Email, f.Mailbox = strings.ToLower(e), sr.mailbox
		res.Failures = append(res.Failures, f)
	}
}

// errorFailure describes an error sub-response; class "" lets classify name it.
func errorFailure(sub subResponse, class string) Failure {
	code, msg := errorCodeMessage(sub.body)
	if msg == "" {
		msg = sub.problem
	}
	if class == "" {
		class = classify(sub.status, code)
	}
	f := Failure{Class: class, Code: code, Message: msg, Status: sub.status}
	if class == "unknown" {
		f.Detail = detail(sub.raw)
	}
	return f
}

// malformedFailure describes an answer calstatus could not read. raw, the answer as sent, is kept
// (cut short) to be logged.
func malformedFailure(status int, problem string, raw []byte) Failure {
	return Failure{Class: "malformed", Message: problem, Status: status, Detail: detail(raw)}
}

func detail(raw []byte) string { return string(raw[:min(len(raw), 2000)]) }

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

// mailboxRefused recognises a sub-request refused because of the mailbox named in its URL.
func mailboxRefused(status int, body []byte) bool {
	if status != http.StatusNotFound && status != http.StatusForbidden && status != http.StatusBadRequest {
		return false
	}
	code, _ := errorCodeMessage(body)
	switch classify(status, code) {
	case "not_found", "no_mailbox":
		return true
	}
	return false
}

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

// IsCredentialError reports whether err is Entra ID refusing the app's credentials (or its
// consent), which no retry fixes.
func IsCredentialError(err error) bool {
	var c *credentialError
	return errors.As(err, &c)
}
