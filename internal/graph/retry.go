package graph

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	maxThrottles = 10
	// coalesce lets retries that fall due close together go out in one $batch.
	coalesce = 250 * time.Millisecond
)

// tries is how often one request (a sub-request, a presence call) was sent and when it may go
// again.
type tries struct {
	// attempts counts sends; throttles those answered 429, which are retried while the invocation's
	// time allows (up to maxThrottles) rather than MaxAttempts.
	attempts, throttles int
	// sent counts every send, for the results' Retries.
	sent      int
	notBefore time.Time
}

// turn is the request's place in the queue (due).
func (t *tries) turn() *tries { return t }

// queued is a request waiting its turn: a sub-request, a user query, a presence call.
type queued interface{ turn() *tries }

// due splits pending into the requests that may go now, at most max of them in their order, and
// the rest, each first held back to when this process was told to wait for its kind (held: a 429
// to another shard counts too); earliest is when the first of the rest may go.
func due[T queued](pending []T, max int, held func(T) time.Time) (ready, waiting []T, earliest time.Time) {
	now := time.Now()
	for _, r := range pending {
		t := r.turn()
		if h := held(r); h.After(t.notBefore) {
			t.notBefore = h
		}
		if !t.notBefore.After(now) && len(ready) < max {
			ready = append(ready, r)
			continue
		}
		waiting = append(waiting, r)
		if earliest.IsZero() || t.notBefore.Before(earliest) {
			earliest = t.notBefore
		}
	}
	return ready, waiting, earliest
}

// holdAll keeps every pending request back until pause: a whole $batch throttled means the app is
// throttled, and nothing goes out before its Retry-After.
func holdAll[T queued](pending []T, pause time.Time) {
	for _, r := range pending {
		if t := r.turn(); t.notBefore.Before(pause) {
			t.notBefore = pause
		}
	}
}

// waitFor sleeps until earliest and extra (to let requests falling due together go out at once);
// pastDeadline, without sleeping, when earliest is past the context's deadline: the caller gives
// those requests up rather than wait for nothing.
func (c *Client) waitFor(ctx context.Context, earliest time.Time, extra time.Duration) (pastDeadline bool, err error) {
	if dl, ok := ctx.Deadline(); ok && earliest.After(dl) {
		return true, nil
	}
	return false, c.cfg.Sleep(ctx, time.Until(earliest)+extra)
}

// send counts one more send, and reports whether it is a retry.
func (t *tries) send() (retry bool) {
	t.attempts++
	t.sent++
	return t.sent > 1
}

// retryLater puts a request back after delay, unless it has had all its attempts.
func (c *Client) retryLater(t *tries, status int, delay time.Duration) bool {
	if status == http.StatusTooManyRequests {
		t.attempts-- // throttling is waited out, not counted as a failure
		t.throttles++
		if t.throttles > maxThrottles {
			return false
		}
	} else if t.attempts >= c.cfg.MaxAttempts {
		return false
	}
	t.notBefore = time.Now().Add(delay)
	return true
}

// attempt makes one call (send makes it) within AttemptTimeout: a call still unanswered then has
// failed like a network error. An answer with an error status is a *statusError; what names the
// call in errors.
func (c *Client) attempt(ctx context.Context, what string, send func(context.Context) (httpAnswer, error)) (httpAnswer, error) {
	attemptCtx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
	defer cancel()
	ans, err := send(attemptCtx)
	if err != nil {
		if ctx.Err() == nil && attemptCtx.Err() != nil {
			return httpAnswer{}, fmt.Errorf("no answer to %s within %v: %w", what, c.cfg.AttemptTimeout, err)
		}
		return httpAnswer{}, err
	}
	if ans.status < 200 || ans.status > 299 {
		return ans, answerStatusError(ans)
	}
	return ans, nil
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

// parseRetryAfter reads a Retry-After value in seconds (0 when absent or not a number).
func parseRetryAfter(v string) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	return 0
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
