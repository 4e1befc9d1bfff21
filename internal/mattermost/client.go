// Package mattermost is calstatus's adapter to the Mattermost REST API (model.Client4). The token
// needs the edit_other_users permission to set other users' statuses: a system admin's personal
// access token, or a bot account given the system_admin role.
//
// Mattermost's model types stay inside this package: callers get calstatus's own values (User,
// Status, CustomStatus). One file per remote operation.
package mattermost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/calstatus/calstatus/internal/logctx"
)

// Client talks to one Mattermost server.
type Client struct {
	api      *model.Client4
	log      *slog.Logger
	attempts int
	selfMu   sync.Mutex
	selfID   string
	serverMu sync.Mutex
	server   *Server // what Server read, at serverAt
	serverAt time.Time
	// heldUntil (unix nanoseconds) is when Mattermost's rate limiter lets this process call again: a
	// 429 told to one shard holds every call of every shard (the limit is the token's, not a call's).
	heldUntil atomic.Int64
	// writeSlots bounds the writes this process has in flight (BoundWrites); nil: no bound.
	writeSlots chan struct{}
	// writeTimeout bounds one attempt of a write (defaultWriteTimeout).
	writeTimeout time.Duration
	// Reads and Writes count API calls, so callers can report (and tests assert) the cost of a shard.
	Reads, Writes atomic.Int64
}

// DefaultWriteBound is how many writes one process has in flight at most unless told otherwise
// (MATTERMOST_WRITE_CONCURRENCY): past it Mattermost writes no faster (docs/BENCHMARKS.md).
const DefaultWriteBound = 8

// readHeadroom is how many reads (a shard's two, the timer's listing, checks) the transport keeps
// connections for besides the writes.
const readHeadroom = 16

// defaultWriteTimeout bounds one attempt of a write: a hung Mattermost frees the write's slot long
// before a shard's budget ends (the attempt may have landed: see MayHaveLanded).
const defaultWriteTimeout = 10 * time.Second

// New returns a client for the server at baseURL acting with token, its writes bounded by
// DefaultWriteBound; log receives its warnings (retries), nil discards them.
func New(baseURL, token string, log *slog.Logger) *Client {
	api := model.NewAPIv4Client(strings.TrimRight(baseURL, "/"))
	api.SetToken(token)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{api: api, log: log, attempts: 4, writeTimeout: defaultWriteTimeout}
	c.BoundWrites(DefaultWriteBound)
	return c
}

// BoundWrites lets at most n writes of this process be in flight at once (n < 1: no bound) and
// gives the client a transport that keeps a connection alive for each of them and for the reads
// beside them (http.DefaultTransport keeps two: every other call would open a new connection, a
// new TLS handshake in Azure). Reads are never bounded. Call it before the first call.
func (c *Client) BoundWrites(n int) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = readHeadroom + max(n, DefaultWriteBound)
	t.MaxIdleConns = t.MaxIdleConnsPerHost
	c.api.HTTPClient = &http.Client{Transport: t, Timeout: 30 * time.Second}
	c.writeSlots = nil
	if n > 0 {
		c.writeSlots = make(chan struct{}, n)
	}
}

// WriteBound is how many writes the client has in flight at most (0: no bound).
func (c *Client) WriteBound() int { return cap(c.writeSlots) }

// call runs one API call, retrying throttling (429), server errors and lost answers with backoff.
// Only idempotent calls go through it: a dnd status is not (see SetStatus).
func (c *Client) call(ctx context.Context, what string, write bool, fn func(api *model.Client4) (*model.Response, error)) error {
	unsure := false // an earlier attempt may have landed
	for attempt := 1; ; attempt++ {
		err := c.once(ctx, what, write, fn)
		if err == nil {
			return nil
		}
		unsure = unsure || err.mayHaveLanded()
		err.earlierMayHaveLanded = unsure
		if !err.Retryable() || attempt >= c.attempts {
			return err
		}
		if werr := c.backoff(ctx, err, attempt); werr != nil {
			werr.earlierMayHaveLanded = unsure
			return werr
		}
	}
}

// once makes one call and counts it. Client4 takes no context, so the call gets its own copy of the
// client whose HTTP timeout ends at ctx's deadline: a hung Mattermost holds a shard no longer than
// its budget allows.
func (c *Client) once(ctx context.Context, what string, write bool, fn func(api *model.Client4) (*model.Response, error)) *Error {
	if err := c.waitHeld(ctx); err != nil {
		return &Error{Op: what, Err: err}
	}
	if write {
		// A slot per attempt, never across a backoff: a throttled write waits without one.
		if c.writeSlots != nil {
			select {
			case c.writeSlots <- struct{}{}:
				defer func() { <-c.writeSlots }()
			case <-ctx.Done():
				return &Error{Op: what, Err: ctx.Err()}
			}
		}
		c.Writes.Add(1)
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.writeTimeout)
		defer cancel()
	} else {
		c.Reads.Add(1)
	}
	api, err := c.within(ctx)
	if err != nil {
		return &Error{Op: what, Err: err}
	}
	resp, err := fn(api)
	if err == nil {
		return nil
	}
	e := &Error{Op: what, Err: errors.New(brief(err))}
	if resp != nil {
		e.Status = resp.StatusCode
		// Mattermost's rate limiter sends both: seconds until its window resets, and Retry-After.
		for _, h := range []string{"Retry-After", "X-Ratelimit-Reset"} {
			if s, perr := strconv.Atoi(resp.Header.Get(h)); perr == nil && s > 0 {
				e.retryAfter = max(e.retryAfter, time.Duration(s)*time.Second)
			}
		}
		if e.Status == http.StatusTooManyRequests && e.retryAfter > 0 {
			c.hold(time.Now().Add(e.retryAfter))
		}
	}
	return e
}

// hold keeps every call back until t (never shortening an earlier hold).
func (c *Client) hold(t time.Time) {
	for {
		cur := c.heldUntil.Load()
		if t.UnixNano() <= cur || c.heldUntil.CompareAndSwap(cur, t.UnixNano()) {
			return
		}
	}
}

// waitHeld waits out a hold, or fails when ctx ends first.
func (c *Client) waitHeld(ctx context.Context) error {
	return sleep(ctx, time.Until(time.Unix(0, c.heldUntil.Load())))
}

// sleep waits d, or fails when ctx ends first.
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

// backoff waits before another attempt (the server's rate-limit reset, or jittered exponential).
func (c *Client) backoff(ctx context.Context, e *Error, attempt int) *Error {
	wait := time.Duration(1<<attempt) * 200 * time.Millisecond
	wait = wait/2 + rand.N(wait/2+1)
	if e.retryAfter > 0 {
		// Never before the server said; the jitter only ever adds, so shards do not return at once.
		wait = e.retryAfter + rand.N(e.retryAfter/4+1)
	}
	logctx.From(ctx, c.log).Warn("mattermost call failed, retrying", "op", e.Op, "status", e.Status, "attempt", attempt, "wait", wait.String())
	if err := sleep(ctx, wait); err != nil {
		return &Error{Op: e.Op, Status: e.Status, Err: err}
	}
	return nil
}

// within returns the client for one call made under ctx: the shared one, or a copy whose HTTP
// timeout is what remains of ctx's deadline.
func (c *Client) within(ctx context.Context) (*model.Client4, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		return c.api, nil
	}
	left := time.Until(deadline)
	if left >= c.api.HTTPClient.Timeout {
		return c.api, nil
	}
	api := *c.api
	api.HTTPClient = &http.Client{Transport: c.api.HTTPClient.Transport, Timeout: left}
	return &api, nil
}

func errOrNil(e *Error) error {
	if e == nil {
		return nil
	}
	return e
}

// Error is a failed Mattermost call.
type Error struct {
	Op         string
	Status     int // 0: no answer
	Err        error
	retryAfter time.Duration
	// earlierMayHaveLanded: an earlier attempt of the same call may have been applied.
	earlierMayHaveLanded bool
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("mattermost: %s: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("mattermost: %s: HTTP %d: %v", e.Op, e.Status, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether trying again may help: throttling, a server error, or no answer.
func (e *Error) Retryable() bool {
	return e.Status == 0 || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// MayHaveLanded reports whether a failed call may still have been applied by the server: no answer
// came (a timeout, a lost connection) or a server or gateway error did (5xx; a proxy in front of
// Mattermost answers 502 or 504 for a change the server made). A refused call (4xx, 429) was not.
//
// Every attempt counts: a 502 that landed followed by 429s may have landed.
func MayHaveLanded(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.mayHaveLanded() || e.earlierMayHaveLanded)
}

func (e *Error) mayHaveLanded() bool { return e.Status == 0 || e.Status >= 500 }

// brief shortens Client4's errors (an *AppError with a long detailed message) to one line.
func brief(err error) string {
	var ae *model.AppError
	if errors.As(err, &ae) {
		if ae.Message != "" {
			return ae.Message
		}
		return ae.Id
	}
	return err.Error()
}

// Rejected reports whether Mattermost refused the token (401) or its permissions (403): no retry
// fixes that, an admin must.
func (e *Error) Rejected() bool {
	return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
}
