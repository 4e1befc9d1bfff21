package mattermost

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"
)

// User is a Mattermost user as calstatus needs it.
type User struct {
	ID       string
	Username string
	Email    string
	// CustomStatus is the user's custom status, nil when none is set. Mattermost keeps one that
	// expired (clients hide it): ExpiresAt says.
	CustomStatus *CustomStatus
	// TimeZone is the user's time zone in Mattermost (the automatic one, from their device, or the
	// one they picked); nil when they have none or it is not an IANA name.
	TimeZone *time.Location
	// Deactivated users are no longer synced (a roster listed before may still name them).
	Deactivated bool
	// props are the user's props as read: SetCustomStatus sends them back whole with the custom
	// status in them (a patch replaces all of them).
	props map[string]string
}

// ValidID reports whether id has the shape of a Mattermost id (a user's, a team's): 26 letters and
// digits.
func ValidID(id string) bool { return model.IsValidId(id) }

// CustomStatus is a Mattermost custom status.
type CustomStatus struct {
	Emoji, Text string
	// ExpiresAt is when clients stop showing it; zero for never.
	ExpiresAt time.Time
}

// ListSyncUsers returns every active, non-bot user with an email, paging through the user list.
func (c *Client) ListSyncUsers(ctx context.Context) ([]User, error) {
	// Pages are read listPagesAtOnce at a time: one after another, 100,000 users are 500 round trips.
	const perPage, listPagesAtOnce = 200, 8
	var out []User
	for first := 0; ; first += listPagesAtOnce {
		pages := make([][]*model.User, listPagesAtOnce)
		errs := make([]error, listPagesAtOnce)
		var wg sync.WaitGroup
		for i := range pages {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = c.call(ctx, "list users", false, func(api *model.Client4) (*model.Response, error) {
					var resp *model.Response
					var err error
					pages[i], resp, err = api.GetUsers(first+i, perPage, "")
					return resp, err
				})
			}()
		}
		wg.Wait()
		for i, users := range pages {
			if errs[i] != nil {
				return nil, errs[i]
			}
			for _, u := range users {
				if syncable(u) {
					out = append(out, toUser(u))
				}
			}
			if len(users) < perPage {
				return out, nil
			}
		}
	}
}

// Users fetches users by id (one call), with their custom statuses.
func (c *Client) Users(ctx context.Context, ids []string) ([]User, error) {
	var users []*model.User
	err := c.call(ctx, "get users", false, func(api *model.Client4) (*model.Response, error) {
		var resp *model.Response
		var err error
		users, resp, err = api.GetUsersByIds(ids)
		return resp, err
	})
	out := make([]User, 0, len(users))
	for _, u := range users {
		out = append(out, toUser(u))
	}
	return out, err
}

func toUser(u *model.User) User {
	out := User{ID: u.Id, Username: u.Username, Email: strings.ToLower(u.Email), TimeZone: timeZone(u.Timezone), Deactivated: u.DeleteAt != 0, props: u.Props}
	if cs := u.GetCustomStatus(); cs != nil && (cs.Emoji != "" || cs.Text != "") {
		out.CustomStatus = &CustomStatus{Emoji: cs.Emoji, Text: cs.Text}
		if cs.Duration != "" {
			out.CustomStatus.ExpiresAt = cs.ExpiresAt.UTC()
		}
	}
	return out
}

// zones caches the time zones read: a shard's users share a few, and loading one parses its file.
// Only real zones are kept (a few hundred at most, whatever users type).
var zones sync.Map // name → *time.Location

// timeZone is the user's preferred time zone as Mattermost picks it (model.GetPreferredTimezone:
// useAutomaticTimezone "true" → automaticTimezone, else manualTimezone); nil if empty or unknown.
func timeZone(tz model.StringMap) *time.Location {
	name := strings.TrimSpace(model.GetPreferredTimezone(tz))
	if name == "" || name == "Local" { // "Local" would be the server's zone
		return nil
	}
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil
	}
	zones.Store(name, loc)
	return loc
}

// syncable: an active, human user with an email (calstatus syncs those).
func syncable(u *model.User) bool { return u.DeleteAt == 0 && !u.IsBot && u.Email != "" }
