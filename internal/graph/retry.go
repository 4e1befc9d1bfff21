package graph

import (
	"context"
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
