package mattermost

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"
)

// expiredMargin: a custom status expiring sooner than this is taken as expired (the server checks
// against its own clock, after the request's way there).
const expiredMargin = 2 * time.Second

// SetCustomStatus sets u's custom status, which clients stop showing at its ExpiresAt (Mattermost
// keeps it stored: calstatus clears its own), in one write: a patch of the user's props, u's props
// as read with the custom status in them. PUT /users/{id}/status/custom would also add it to the
// user's five recent custom statuses, pushing their oldest out (RecentCustomStatuses.Add drops it
// before any removal could follow) and costing a preference read and write; the patch leaves the
// recents as the user made them. The server starts both from the same cached profile (GetUser),
// so the patch overwrites nothing the server's own call would not.
//
// One whose expiry has passed (an event that ended while its shard ran) is not sent: clients
// would not show it; the caller's record of it expires with it.
func (c *Client) SetCustomStatus(ctx context.Context, u User, cs CustomStatus) error {
	if Expired(cs.ExpiresAt, time.Now()) {
		return nil
	}
	mcs := &model.CustomStatus{Emoji: cs.Emoji, Text: cs.Text}
	if !cs.ExpiresAt.IsZero() {
		mcs.Duration, mcs.ExpiresAt = "date_and_time", cs.ExpiresAt.UTC().Truncate(time.Second)
	}
	mcs.PreSave()
	raw, err := json.Marshal(mcs)
	if err != nil {
		return fmt.Errorf("mattermost: set custom status: %w", err)
	}
	return c.patchCustom(ctx, "set custom status", u, string(raw))
}

// patchCustom patches u's props to hold the custom status raw (JSON; "" for none).
func (c *Client) patchCustom(ctx context.Context, op string, u User, raw string) error {
	props := make(model.StringMap, len(u.props)+1)
	for k, v := range u.props {
		props[k] = v
	}
	if raw == "" {
		delete(props, model.UserPropsKeyCustomStatus)
	} else {
		props[model.UserPropsKeyCustomStatus] = raw
	}
	return c.call(ctx, op, true, func(api *model.Client4) (*model.Response, error) {
		_, resp, err := api.PatchUser(u.ID, &model.UserPatch{Props: props})
		return resp, err
	})
}

// Expired reports whether a custom status expiring at expiresAt is over for Mattermost at now
// (zero: never).
func Expired(expiresAt, now time.Time) bool {
	return !expiresAt.IsZero() && expiresAt.Before(now.Add(expiredMargin))
}

// ClearCustomStatus removes u's custom status (one write). Where custom statuses are turned off
// the server refuses DELETE /users/{id}/status/custom (501), so one calstatus set before is taken
// out of u's props instead.
func (c *Client) ClearCustomStatus(ctx context.Context, u User) error {
	c.serverMu.Lock()
	off := c.server != nil && c.server.CustomOff
	c.serverMu.Unlock()
	if off {
		return c.patchCustom(ctx, "clear custom status", u, "")
	}
	return c.call(ctx, "clear custom status", true, func(api *model.Client4) (*model.Response, error) {
		return api.RemoveUserCustomStatus(u.ID)
	})
}
