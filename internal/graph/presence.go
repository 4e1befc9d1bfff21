package graph

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/communications"

	"github.com/calstatus/calstatus/internal/logctx"
)

// PresencesPerRequest is getPresencesByUserId's documented limit of user ids in one call.
const PresencesPerRequest = 650

// Presence is what Teams shows of one user.
type Presence struct {
	Availability string // as Graph gives it: Available, Busy, DoNotDisturb, …
	Activity     string // InACall, InAConferenceCall, Presenting, …
	OutOfOffice  bool   // outOfOfficeSettings.isOutOfOffice
	OOFMessage   string // outOfOfficeSettings.message, as Graph gives it (HTML from Outlook)
	// AutoReply is the automatic reply as plain text while automatic replies are on; "" when off,
	// or when only an out-of-office event makes the user out of office (Graph gives no message).
	AutoReply string
}

// PresenceResult is what GetPresences learned.
type PresenceResult struct {
	Presence map[string]Presence // by object id, lower-cased
	// Failures are the ids Graph gave no presence for; Email is the object id. Class is
	// "forbidden" when the app lacks Presence.Read.All, "not_found" for an id Graph left out of
	// its answer (no such user), "invalid" for an id that is not an object id (not sent), else
	// what classify gives ("throttled", "server"…), or "graph" when Graph did not answer in time.
	Failures []Failure
	// Calls counts getPresencesByUserId calls made; Retries the calls sent again; Throttled the
	// calls answered 429.
	Calls, Retries, Throttled int
}

// presenceCall is one getPresencesByUserId call for up to PresencesPerRequest ids.
type presenceCall struct {
	ids []string
	tries
	last Failure // why it was last sent in vain
}

// objectIDShape is an Entra object id: a GUID.
var objectIDShape = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// GetPresences makes one call per 650 ids (PresencesPerRequest = 650), retrying throttled and
// failed calls within Config.MaxAttempts and the context, never before their Retry-After. What
// Graph cannot answer for is a Failure for each id, a missing permission included, so a caller
// carries on with the calendar; an error means the context ended or Entra ID refused the
// credential, and the result still holds what was fetched.
func (c *Client) GetPresences(ctx context.Context, ids []string) (PresenceResult, error) {
	res := PresenceResult{Presence: make(map[string]Presence, len(ids))}
	var valid []string
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		id = strings.ToLower(strings.TrimSpace(id))
		switch {
		case seen[id]:
		case !objectIDShape.MatchString(id):
			res.Failures = append(res.Failures, Failure{Email: id, Class: "invalid", Message: "not an Entra object id (a GUID)"})
		default:
			valid = append(valid, id)
		}
		seen[id] = true
	}
	// Sorted, so a shard's calls hold the same users every cycle.
	slices.Sort(valid)
	var pending []*presenceCall
	for chunk := range slices.Chunk(valid, PresencesPerRequest) {
		pending = append(pending, &presenceCall{ids: chunk})
	}
	for len(pending) > 0 {
		ready, waiting, earliest := due(pending, 1, func(*presenceCall) time.Time { return c.throttle.until(presenceHold) })
		if len(ready) == 0 {
			past, err := c.waitFor(ctx, earliest, 0)
			if past {
				for _, call := range pending {
					failIDs(call.ids, gaveUp(call.last, earliest), &res)
				}
				return res, nil
			}
			if err != nil {
				return res, fmt.Errorf("graph: presence of %d users not fetched: waiting to retry: %w", countIDs(pending), err)
			}
			continue
		}
		call := ready[0]
		pending = waiting
		retry, err := c.callPresences(ctx, call, &res)
		if err != nil {
			return res, fmt.Errorf("graph: presence of %d users not fetched: %w", len(call.ids)+countIDs(pending), err)
		}
		if retry {
			pending = append(pending, call)
		}
	}
	return res, nil
}

// callPresences makes one call and sorts its answer into res; retry means the call goes again (its
// notBefore set). An error is the context's end or a refused credential.
func (c *Client) callPresences(ctx context.Context, call *presenceCall, res *PresenceResult) (retry bool, err error) {
	if call.send() {
		res.Retries++
	}
	res.Calls++
	ans, err := c.attempt(ctx, "getPresencesByUserId", func(ctx context.Context) (httpAnswer, error) {
		return c.postPresences(ctx, call.ids)
	})
	if err == nil {
		readPresences(call.ids, ans, res)
		return false, nil
	}
	if ctx.Err() != nil { // before the credential: a token not fetched for it fails as one
		return false, ctx.Err()
	}
	if cerr := credentialFailure(err); cerr != nil {
		return false, cerr
	}
	status, retryAfter := errorStatus(err)
	call.last = callFailure(err)
	logctx.From(ctx, c.cfg.Log).Warn("graph presence call failed", "status", status, "error", err.Error(), "ids", len(call.ids), "attempt", call.attempts)
	if status != 0 && status != http.StatusTooManyRequests && status < 500 {
		failIDs(call.ids, call.last, res) // a refusal (403: no Presence.Read.All) that no retry changes
		return false, nil
	}
	delay := c.backoff(call.attempts, status, retryAfter)
	if status == http.StatusTooManyRequests {
		res.Throttled++
		c.throttle.holdMailbox(presenceHold, time.Now().Add(delay))
	}
	if c.retryLater(&call.tries, status, delay) {
		return true, nil
	}
	failIDs(call.ids, call.last, res)
	return false, nil
}

// postPresences sends getPresencesByUserId for ids, built by the SDK.
func (c *Client) postPresences(ctx context.Context, ids []string) (httpAnswer, error) {
	rb := communications.NewGetPresencesByUserIdRequestBuilderInternal(map[string]string{"baseurl": c.base}, c.adapter)
	body := communications.NewGetPresencesByUserIdPostRequestBody()
	body.SetIds(ids)
	info, err := rb.ToPostRequestInformation(ctx, body, nil)
	if err != nil {
		return httpAnswer{}, fmt.Errorf("building getPresencesByUserId request: %w", err)
	}
	return c.send(ctx, info)
}

// wirePresence is one presence of a getPresencesByUserId answer.
type wirePresence struct {
	ID                  string `json:"id"`
	Availability        string `json:"availability"`
	Activity            string `json:"activity"`
	OutOfOfficeSettings *struct {
		IsOutOfOffice bool    `json:"isOutOfOffice"`
		Message       *string `json:"message"`
	} `json:"outOfOfficeSettings"`
}

// readPresences reads a getPresencesByUserId answer for ids: a presence for each id answered
// readably, a Failure for every other. Each presence is read on its own, so one unreadable
// presence costs only its user.
func readPresences(ids []string, ans httpAnswer, res *PresenceResult) {
	var answer struct {
		Value []json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(ans.body, &answer); err != nil || answer.Value == nil {
		problem := "getPresencesByUserId answer without a value"
		if err != nil {
			problem = "getPresencesByUserId answer: " + err.Error()
		}
		failIDs(ids, malformedFailure(ans.status, problem, ans.body), res)
		return
	}
	asked := make(map[string]bool, len(ids))
	for _, id := range ids {
		asked[id] = true
	}
	answered := make(map[string]bool, len(ids))
	for _, raw := range answer.Value {
		var p wirePresence
		err := json.Unmarshal(raw, &p) // on a wrong type, the fields it could read are kept
		id := strings.ToLower(p.ID)
		if !asked[id] || answered[id] {
			continue // whose it is cannot be told, or not one asked for
		}
		answered[id] = true
		if err != nil {
			res.Failures = append(res.Failures, Failure{Email: id, Class: "malformed", Message: "presence: " + err.Error(), Status: ans.status, Detail: detail(raw)})
			continue
		}
		pr := Presence{Availability: p.Availability, Activity: p.Activity}
		if oof := p.OutOfOfficeSettings; oof != nil {
			pr.OutOfOffice = oof.IsOutOfOffice
			if oof.Message != nil {
				pr.OOFMessage = *oof.Message
			}
			if oof.IsOutOfOffice { // a message kept while replies are off is not a reply
				pr.AutoReply = plainText(pr.OOFMessage)
			}
		}
		res.Presence[id] = pr
	}
	for _, id := range ids {
		if !answered[id] {
			res.Failures = append(res.Failures, Failure{Email: id, Class: "not_found", Message: "not in getPresencesByUserId answer", Status: ans.status})
		}
	}
}

// failIDs records f against each id.
func failIDs(ids []string, f Failure, res *PresenceResult) {
	for _, id := range ids {
		f.Email = id
		res.Failures = append(res.Failures, f)
	}
}

// gaveUp is the failure of a request whose next try, due at due, is past the context's deadline:
// what it last failed with, or throttling when it was only held back.
func gaveUp(last Failure, due time.Time) Failure {
	if last.Class == "" {
		last = Failure{Class: "throttled", Status: http.StatusTooManyRequests}
	}
	last.Message = fmt.Sprintf("retry due at %s is past the invocation's deadline (last: %s)", due.Format(time.RFC3339), cmp.Or(last.Message, last.Class))
	return last
}

func countIDs(calls []*presenceCall) int {
	n := 0
	for _, call := range calls {
		n += len(call.ids)
	}
	return n
}
