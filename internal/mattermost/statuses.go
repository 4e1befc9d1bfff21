package mattermost

import (
	"context"
	"fmt"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"
)

// Status is a user's status row as Mattermost shows it.
type Status struct {
	Status string
	// Manual is true for a status set by hand (or through the API): activity does not change it.
	Manual bool
	// DNDEnd is when Mattermost ends a DND. Zero for none — and for any row Mattermost read past
	// its status cache (after a restart, or beyond its size), whose query leaves the end out.
	DNDEnd time.Time
	// LastActivity is when Mattermost last saw the user active or set them online.
	LastActivity time.Time
}

// Statuses fetches the statuses of users by id (one call).
func (c *Client) Statuses(ctx context.Context, ids []string) (map[string]Status, error) {
	var sts []*model.Status
	err := c.call(ctx, "get statuses", false, func(api *model.Client4) (*model.Response, error) {
		var resp *model.Response
		var err error
		sts, resp, err = api.GetUsersStatusesByIds(ids)
		return resp, err
	})
	out := make(map[string]Status, len(sts))
	for _, s := range sts {
		out[s.UserId] = toStatus(s)
	}
	return out, err
}

func toStatus(s *model.Status) Status {
	out := Status{Status: s.Status, Manual: s.Manual}
	if s.LastActivityAt > 0 {
		out.LastActivity = time.UnixMilli(s.LastActivityAt).UTC()
	}
	if s.DNDEndTime > 0 {
		out.DNDEnd = time.Unix(s.DNDEndTime, 0).UTC()
	}
	return out
}

// StatusChange is a status to set: Via first when not empty, then Status (DNDEnd for dnd).
type StatusChange struct {
	Via, Status string
	DNDEnd      time.Time
}

// SetStatus sets a user's status, through Via first when given. viaDone reports whether Via was
// set, so a caller can record a change that failed half way.
//
// Setting dnd is not idempotent: Mattermost remembers the status it replaces as the one to return
// to, so a dnd PUT repeated after a lost answer would remember "dnd" and the DND would never end.
// A failed dnd PUT is therefore retried only after reading the status shows it did not land.
func (c *Client) SetStatus(ctx context.Context, userID string, ch StatusChange) (viaDone bool, err error) {
	if ch.Via != "" {
		if err := c.put(ctx, userID, &model.Status{UserId: userID, Status: ch.Via}); err != nil {
			return false, err
		}
		viaDone = true
	}
	st := &model.Status{UserId: userID, Status: ch.Status}
	if ch.Status != model.StatusDnd {
		return viaDone, c.put(ctx, userID, st)
	}
	st.DNDEndTime = ch.DNDEnd.Unix()
	unsure := false // an earlier attempt may have landed (and may still, after the read below)
	for attempt := 1; ; attempt++ {
		e := c.once(ctx, "set status", true, func(api *model.Client4) (*model.Response, error) {
			_, resp, err := api.UpdateUserStatus(userID, st)
			return resp, err
		})
		if e == nil {
			return viaDone, nil
		}
		unsure = unsure || e.mayHaveLanded()
		e.earlierMayHaveLanded = unsure
		if !e.Retryable() || attempt >= c.attempts {
			return viaDone, e
		}
		if werr := c.backoff(ctx, e, attempt); werr != nil {
			werr.earlierMayHaveLanded = unsure
			return viaDone, werr
		}
		now, rerr := c.UserStatus(ctx, userID)
		switch {
		case rerr != nil:
			return viaDone, fmt.Errorf("%w (and reading the status to check: %w)", e, rerr)
		case now.Status == model.StatusDnd && sameDNDEnd(now.DNDEnd, ch.DNDEnd):
			return viaDone, nil // the lost answer's PUT landed
		case now.Status == model.StatusDnd:
			return viaDone, &Error{Op: "set status", Err: fmt.Errorf("already dnd (until %v) after a failed attempt: not set again", now.DNDEnd)}
		}
	}
}

// sameDNDEnd compares a DND end read back with the one sent as the server keeps it: in seconds,
// cut to the minute from about v10.6 (calstatus sends whole minutes; a server cuts older ones).
func sameDNDEnd(read, sent time.Time) bool {
	return read.Truncate(time.Minute).Equal(sent.Truncate(time.Minute))
}

func (c *Client) put(ctx context.Context, userID string, st *model.Status) error {
	return c.call(ctx, "set status", true, func(api *model.Client4) (*model.Response, error) {
		_, resp, err := api.UpdateUserStatus(userID, st)
		return resp, err
	})
}
