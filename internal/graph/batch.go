package graph

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/calstatus/calstatus/internal/calendar"
	"github.com/calstatus/calstatus/internal/logctx"
)

// subRequest is one getSchedule call for up to 20 users.
type subRequest struct {
	emails []string
	// mailbox is the user named in the URL; tried are those already refused as such.
	mailbox string
	tried   map[string]bool
	tries
}

// GetSchedules fetches availability for emails over w, in as few $batch calls as Graph allows, and
// retries throttled and failed sub-requests alone, never before their Retry-After. Per-user problems
// are reported in Result.Failures. An error means some users could not be fetched at all (Graph or
// the network kept failing, the credential was refused, the context ended): the Result still holds
// everything that was fetched, so a caller can act on those users and retry only the rest.
func (c *Client) GetSchedules(ctx context.Context, emails []string, w Window) (Result, error) {
	res := Result{Availability: make(map[string]calendar.Availability, len(emails))}
	// Sorted, so a shard's sub-requests hold the same users every cycle (Mattermost returns them in
	// any order) and a mailbox refused in a URL is not named first by a new sub-request again.
	emails = slices.Sorted(slices.Values(emails))
	var pending []*subRequest
	for i := 0; i < len(emails); i += SchedulesPerRequest {
		chunk := emails[i:min(i+SchedulesPerRequest, len(emails))]
		// Each sub-request names one of its own users as the mailbox in the URL: Outlook limits
		// concurrent requests per mailbox, so one service mailbox for all would throttle us.
		pending = append(pending, &subRequest{emails: chunk, mailbox: c.refused.anchor(chunk), tried: map[string]bool{}})
	}
	var fatal error
	for len(pending) > 0 && fatal == nil {
		ready, waiting, earliest := due(pending, RequestsPerBatch, func(sr *subRequest) time.Time { return c.throttle.until(sr.mailbox) })
		if len(ready) == 0 {
			switch past, err := c.waitFor(ctx, earliest, coalesce); {
			case past:
				fatal = fmt.Errorf("retry due at %s is past the invocation's deadline", earliest.Format(time.RFC3339))
			case err != nil:
				fatal = fmt.Errorf("waiting to retry: %w", err)
			}
			continue
		}
		retry, pause, err := c.sendBatch(ctx, ready, w, &res)
		fatal = err
		pending = append(waiting, retry...)
		holdAll(pending, pause)
	}
	if fatal != nil {
		n := 0
		for _, sr := range pending {
			n += len(sr.emails)
		}
		return res, fmt.Errorf("graph: %d users not fetched: %w", n, fatal)
	}
	return res, nil
}

// sendBatch sends one $batch and sorts its sub-responses: answers and failures into res,
// sub-requests to try again into the returned slice. An error means a sub-request is out of
// attempts, or the credential is refused; every other sub-request of the batch is still sorted.
//
// pause, when set, is the end of a Retry-After given to the whole batch.
func (c *Client) sendBatch(ctx context.Context, reqs []*subRequest, w Window, res *Result) (retry []*subRequest, pause time.Time, fatal error) {
	batch, err := c.newBatch(ctx, reqs, w)
	if err != nil {
		return reqs, time.Time{}, err
	}
	for _, sr := range reqs {
		if sr.send() {
			res.Retries++
		}
	}
	res.Calls++
	subs, err := c.exchange(ctx, func(ctx context.Context) (httpAnswer, error) { return c.postBatch(ctx, batch.sdk) })
	if err != nil {
		return c.batchFailed(ctx, reqs, err, res)
	}
	for _, sub := range subs {
		sr := batch.byID[sub.id]
		if sr == nil {
			continue
		}
		delete(batch.byID, sub.id)
		switch {
		case sub.ok() && sub.problem == "":
			interpret(sr, sub.status, sub.body, w, c.cfg.Interval, res)
		case sub.ok() || sub.status == 0:
			// Graph answered, but not readably: retrying would get the same answer.
			failAll(sr, malformedFailure(sub.status, sub.problem, sub.raw), res)
		case sub.status == http.StatusTooManyRequests || sub.status >= 500:
			delay := c.backoff(sr.attempts, sub.status, sub.retryAfter())
			if sub.status == http.StatusTooManyRequests {
				res.Throttled++
				c.throttle.holdMailbox(sr.mailbox, time.Now().Add(delay))
			}
			if c.retryLater(&sr.tries, sub.status, delay) {
				retry = append(retry, sr)
			} else if sub.status == http.StatusTooManyRequests {
				failAll(sr, errorFailure(sub, "throttled"), res)
			} else {
				retry = append(retry, sr)
				if fatal == nil {
					fatal = fmt.Errorf("sub-request through %s failed %d times: %w", sr.mailbox, sr.attempts, sub.err())
				}
			}
		case mailboxRefused(sub.status, sub.body):
			logctx.From(ctx, c.cfg.Log).Warn("graph refused the mailbox in the URL; retrying through another user's", "mailbox", sr.mailbox, "status", sub.status)
			c.refused.add(sr.mailbox)
			if c.refused.reroute(sr) {
				sr.attempts = 0
				retry = append(retry, sr)
			} else {
				failAll(sr, errorFailure(sub, ""), res)
			}
		default:
			failAll(sr, errorFailure(sub, ""), res)
		}
	}
	// A sub-request the batch did not answer is retried like a 5xx.
	for _, sr := range batch.byID {
		retry = append(retry, sr)
		if !c.retryLater(&sr.tries, 0, c.backoff(sr.attempts, 0, 0)) && fatal == nil {
			fatal = fmt.Errorf("no answer for the sub-request through %s after %d attempts", sr.mailbox, sr.attempts)
		}
	}
	return retry, time.Time{}, fatal
}

// exchange posts a $batch (post sends it) and reads its sub-responses, within AttemptTimeout. An
// error is about the whole call.
func (c *Client) exchange(ctx context.Context, post func(context.Context) (httpAnswer, error)) ([]subResponse, error) {
	ans, err := c.attempt(ctx, "the $batch", post)
	if err != nil {
		return nil, err
	}
	subs, err := parseBatch(ans.body)
	if err != nil {
		return nil, fmt.Errorf("reading the $batch answer: %w", err)
	}
	return subs, nil
}

// batchFailed handles a $batch call that failed as a whole (network, no answer in time, 5xx, a 429
// for the whole batch, an unreadable answer): every sub-request goes back after the batch's
// Retry-After or a backoff, bounded by its attempts.
func (c *Client) batchFailed(ctx context.Context, reqs []*subRequest, err error, res *Result) (retry []*subRequest, pause time.Time, fatal error) {
	if cerr := credentialFailure(err); cerr != nil {
		return reqs, time.Time{}, cerr
	}
	if ctx.Err() != nil {
		return reqs, time.Time{}, ctx.Err()
	}
	status, retryAfter := errorStatus(err)
	if status == http.StatusTooManyRequests {
		res.Throttled += len(reqs)
	}
	logctx.From(ctx, c.cfg.Log).Warn("graph batch failed", "status", status, "error", err.Error(), "subrequests", len(reqs), "attempt", reqs[0].attempts)
	delay := c.backoff(reqs[0].attempts, status, retryAfter) // one delay: they go out together again
	if status == http.StatusTooManyRequests {
		pause = time.Now().Add(delay)
		c.throttle.holdApp(pause)
	}
	for _, sr := range reqs {
		if !c.retryLater(&sr.tries, status, delay) {
			if status == http.StatusTooManyRequests {
				return reqs, time.Time{}, fmt.Errorf("$batch throttled %d times: %w", sr.throttles, err)
			}
			return reqs, time.Time{}, fmt.Errorf("$batch failed %d times: %w", sr.attempts, err)
		}
	}
	return reqs, pause, nil
}

// reroute names another of the sub-request's users in the URL after the current one was refused
// (no mailbox, not licensed), so its 20 users are not lost for one bad mailbox: one not refused
// before if there is one.
func (r *refusedMailboxes) reroute(sr *subRequest) bool {
	sr.tried[strings.ToLower(sr.mailbox)] = true
	var untried []string
	for _, e := range sr.emails {
		if !sr.tried[strings.ToLower(e)] {
			untried = append(untried, e)
		}
	}
	if len(untried) == 0 {
		return false
	}
	sr.mailbox, sr.notBefore = r.anchor(untried), time.Time{}
	return true
}

// refusedMailboxes remembers, for the process, the addresses Graph refused as the mailbox in a URL
// (no mailbox, not licensed), so later sub-requests name another of their users first instead of
// paying a second $batch each cycle. A refused address is still asked for as a schedule.
type refusedMailboxes struct {
	mu  sync.Mutex
	set map[string]bool
}

// maxRefused bounds the memory (1% of a million users); beyond it, new ones are not remembered.
const maxRefused = 10000

func (r *refusedMailboxes) add(email string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.set == nil {
		r.set = map[string]bool{}
	}
	if len(r.set) < maxRefused {
		r.set[strings.ToLower(email)] = true
	}
}

// anchor is the mailbox to name in the URL of a sub-request for emails: the first not refused before.
func (r *refusedMailboxes) anchor(emails []string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range emails {
		if !r.set[strings.ToLower(e)] {
			return e
		}
	}
	return emails[0]
}
