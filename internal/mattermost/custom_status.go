package mattermost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"
)

// ErrRecentKept marks an error of SetCustomStatus after the custom status was set: only taking it
// out of the user's recent ones failed. The status is set (and calstatus's to clear at its end).
var ErrRecentKept = errors.New("custom status set, still among the user's recent ones")

// expiredMargin: a custom status expiring sooner than this is taken as expired (the server checks
// against its own clock, after the request's way there).
const expiredMargin = 2 * time.Second

// SetCustomStatus sets a custom status that clients stop showing at expiresAt (Mattermost v6 keeps
// it stored: calstatus clears its own), then takes it out of the user's recent custom statuses, so
// calstatus's statuses (and meeting subjects) don't push the user's own out of that short list.
//
// One whose expiry has passed (an event that ended while its shard ran) is not sent: Mattermost
// refuses it, and clients would not show it anyway; the caller's record of it expires with it.
func (c *Client) SetCustomStatus(ctx context.Context, userID string, cs CustomStatus) error {
	if Expired(cs.ExpiresAt, time.Now()) {
		return nil
	}
	mcs := &model.CustomStatus{Emoji: cs.Emoji, Text: cs.Text}
	if !cs.ExpiresAt.IsZero() {
		mcs.Duration, mcs.ExpiresAt = "date_and_time", cs.ExpiresAt.UTC().Truncate(time.Second)
	}
	if err := c.call(ctx, "set custom status", true, func(api *model.Client4) (*model.Response, error) {
		_, resp, err := api.UpdateUserCustomStatus(userID, mcs)
		return resp, err
	}); err != nil {
		if MayHaveLanded(err) {
			// Set under a lost answer, it went among the recents too: take it out all the same (one
			// that is not there is refused, which is fine).
			_ = c.removeRecent(ctx, userID, mcs)
		}
		return err
	}
	if err := c.removeRecent(ctx, userID, mcs); err != nil {
		return fmt.Errorf("%w (%w)", err, ErrRecentKept)
	}
	return nil
}

// Expired reports whether a custom status expiring at expiresAt is over for Mattermost at now
// (zero: never).
func Expired(expiresAt, now time.Time) bool {
	return !expiresAt.IsZero() && expiresAt.Before(now.Add(expiredMargin))
}

// removeRecent removes a custom status from the user's recent ones. Client4's
// RemoveRecentUserCustomStatus sends no body, which the server refuses; the server's POST form
// takes the status, matched by its exact JSON.
func (c *Client) removeRecent(ctx context.Context, userID string, cs *model.CustomStatus) error {
	body, err := json.Marshal(cs)
	if err != nil {
		return err
	}
	route := "/users/" + userID + "/status/custom/recent/delete"
	return c.call(ctx, "remove recent custom status", true, func(api *model.Client4) (*model.Response, error) {
		r, err := api.DoAPIPost(route, string(body))
		if r != nil && r.Body != nil {
			r.Body.Close()
		}
		if r != nil && r.StatusCode == http.StatusBadRequest {
			return model.BuildResponse(r), nil // not among the recents (already removed): done
		}
		return model.BuildResponse(r), err
	})
}

// ClearCustomStatus removes a user's custom status.
func (c *Client) ClearCustomStatus(ctx context.Context, userID string) error {
	return c.call(ctx, "clear custom status", true, func(api *model.Client4) (*model.Response, error) {
		return api.RemoveUserCustomStatus(userID)
	})
}
