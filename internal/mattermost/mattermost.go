// Package mattermost is calstatus's adapter to the Mattermost REST API (model.Client4). The token
// needs the edit_other_users permission to set other users' statuses: a system admin's personal
// access token, or a bot account given the system_admin role.
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
)

// User is a Mattermost user as calstatus needs it.
type User struct {
	ID       string
	Username string
	Email    string
	// CustomStatus is the user's current custom status, nil when none is set.
	CustomStatus *model.CustomStatus
}

// Client talks to one Mattermost server.
type Client struct {
	api      *model.Client4
	log      *slog.Logger
	attempts int
	selfMu   sync.Mutex
	selfID   string
	// Reads and Writes count API calls, so callers can report (and tests assert) the cost of a shard.
	Reads, Writes atomic.Int64
}

// New returns a client for the server at baseURL acting with token.
func New(baseURL, token string, log *slog.Logger) *Client {
	api := model.NewAPIv4Client(strings.TrimRight(baseURL, "/"))
	api.SetToken(token)
	api.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{api: api, log: log, attempts: 4}
}

// Check verifies that the server answers and the token is accepted, with one clear error if not.
func (c *Client) Check(ctx context.Context) error {
	if _, _, err := c.api.GetPing(); err != nil {
		return fmt.Errorf("Mattermost at %s does not answer (MATTERMOST_URL): %s", c.api.URL, brief(err))
	}
	me, resp, err := c.api.GetMe("")
	if err != nil {
		if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
			return fmt.Errorf("Mattermost at %s rejects MATTERMOST_TOKEN (HTTP %d)", c.api.URL, resp.StatusCode)
		}
		return fmt.Errorf("Mattermost at %s: checking MATTERMOST_TOKEN: %s", c.api.URL, brief(err))
	}
	if !me.IsSystemAdmin() {
		c.log.Warn("the Mattermost token's user is not a system admin: setting other users' statuses needs edit_other_users",
			"user", me.Username)
	}
	return nil
}

// ListSyncUsers returns every active, non-bot user with an email, paging through the user list.
func (c *Client) ListSyncUsers(ctx context.Context) ([]User, error) {
	const perPage = 200
	var out []User
	for page := 0; ; page++ {
		var users []*model.User
		err := c.call(ctx, "list users", false, func() (*model.Response, error) {
			var resp *model.Response
			var err error
			users, resp, err = c.api.GetUsers(page, perPage, "")
			return resp, err
		})
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			if u.DeleteAt == 0 && !u.IsBot && u.Email != "" {
				out = append(out, toUser(u))
			}
		}
		if len(users) < perPage {
			return out, nil
		}
	}
}

// Users fetches users by id (one call), with their custom statuses.
func (c *Client) Users(ctx context.Context, ids []string) ([]User, error) {
	var users []*model.User
	err := c.call(ctx, "get users", false, func() (*model.Response, error) {
		var resp *model.Response
		var err error
		users, resp, err = c.api.GetUsersByIds(ids)
		return resp, err
	})
	out := make([]User, 0, len(users))
	for _, u := range users {
		out = append(out, toUser(u))
	}
	return out, err
}

func toUser(u *model.User) User {
	cs := u.GetCustomStatus()
	// An expired custom status is no custom status (Mattermost leaves it in the user's props).
	if cs != nil && ((cs.Emoji == "" && cs.Text == "") || !cs.AreDurationAndExpirationTimeValid()) {
		cs = nil
	}
	return User{ID: u.Id, Username: u.Username, Email: strings.ToLower(u.Email), CustomStatus: cs}
}

// Statuses fetches the statuses of users by id (one call).
func (c *Client) Statuses(ctx context.Context, ids []string) (map[string]model.Status, error) {
	var sts []*model.Status
	err := c.call(ctx, "get statuses", false, func() (*model.Response, error) {
		var resp *model.Response
		var err error
		sts, resp, err = c.api.GetUsersStatusesByIds(ids)
		return resp, err
	})
	out := make(map[string]model.Status, len(sts))
	for _, s := range sts {
		out[s.UserId] = *s
	}
	return out, err
}

// SetStatus sets a user's status; for dnd, dndEnd (if not zero) is when Mattermost ends it by itself.
func (c *Client) SetStatus(ctx context.Context, userID, status string, dndEnd time.Time) error {
	st := &model.Status{UserId: userID, Status: status}
	if status == model.StatusDnd && !dndEnd.IsZero() {
		st.DNDEndTime = dndEnd.Unix()
	}
	return c.call(ctx, "set status", true, func() (*model.Response, error) {
		_, resp, err := c.api.UpdateUserStatus(userID, st)
		return resp, err
	})
}

// SetStatusVia sets a status after first setting via (when not empty): re-setting DND through the
// previous status keeps Mattermost from remembering "dnd" as the status to return to.
func (c *Client) SetStatusVia(ctx context.Context, userID, via, status string, dndEnd time.Time) error {
	if via != "" {
		if err := c.SetStatus(ctx, userID, via, time.Time{}); err != nil {
			return err
		}
	}
	return c.SetStatus(ctx, userID, status, dndEnd)
}

// SetCustomStatus sets a custom status that Mattermost itself clears at expiresAt.
func (c *Client) SetCustomStatus(ctx context.Context, userID, emoji, text string, expiresAt time.Time) error {
	cs := &model.CustomStatus{Emoji: emoji, Text: text}
	if !expiresAt.IsZero() {
		cs.Duration, cs.ExpiresAt = "date_and_time", expiresAt.UTC()
	}
	return c.call(ctx, "set custom status", true, func() (*model.Response, error) {
		_, resp, err := c.api.UpdateUserCustomStatus(userID, cs)
		return resp, err
	})
}

// ClearCustomStatus removes a user's custom status.
func (c *Client) ClearCustomStatus(ctx context.Context, userID string) error {
	return c.call(ctx, "clear custom status", true, func() (*model.Response, error) {
		return c.api.RemoveUserCustomStatus(userID)
	})
}

// Notify sends a user a direct message from the token's account (a bot, typically).
func (c *Client) Notify(ctx context.Context, userID, message string) error {
	c.selfMu.Lock()
	defer c.selfMu.Unlock()
	if c.selfID == "" {
		var me *model.User
		if err := c.call(ctx, "get me", false, func() (*model.Response, error) {
			var resp *model.Response
			var err error
			me, resp, err = c.api.GetMe("")
			return resp, err
		}); err != nil {
			return err
		}
		c.selfID = me.Id
	}
	var ch *model.Channel
	if err := c.call(ctx, "open direct channel", true, func() (*model.Response, error) {
		var resp *model.Response
		var err error
		ch, resp, err = c.api.CreateDirectChannel(c.selfID, userID)
		return resp, err
	}); err != nil {
		return err
	}
	return c.call(ctx, "post message", true, func() (*model.Response, error) {
		_, resp, err := c.api.CreatePost(&model.Post{ChannelId: ch.Id, Message: message})
		return resp, err
	})
}

// call runs one API call, retrying throttling (429) and server errors with backoff.
func (c *Client) call(ctx context.Context, what string, write bool, fn func() (*model.Response, error)) error {
	for attempt := 1; ; attempt++ {
		if write {
			c.Writes.Add(1)
		} else {
			c.Reads.Add(1)
		}
		resp, err := fn()
		if err == nil {
			return nil
		}
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		retryable := status == 0 || status == http.StatusTooManyRequests || status >= 500
		if !retryable || attempt >= c.attempts {
			return &Error{Op: what, Status: status, Err: errors.New(brief(err))}
		}
		wait := time.Duration(1<<attempt) * 200 * time.Millisecond
		if resp != nil {
			if s, err := strconv.Atoi(resp.Header.Get("X-Ratelimit-Reset")); err == nil && s > 0 {
				wait = time.Duration(s) * time.Second
			}
		}
		wait = wait/2 + rand.N(wait/2+1)
		c.log.Warn("mattermost call failed, retrying", "op", what, "status", status, "attempt", attempt, "wait", wait.String())
		select {
		case <-ctx.Done():
			return &Error{Op: what, Status: status, Err: ctx.Err()}
		case <-time.After(wait):
		}
	}
}

// Error is a failed Mattermost call.
type Error struct {
	Op     string
	Status int
	Err    error
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("mattermost %s: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("mattermost %s: HTTP %d: %v", e.Op, e.Status, e.Err)
}
func (e *Error) Unwrap() error { return e.Err }

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
