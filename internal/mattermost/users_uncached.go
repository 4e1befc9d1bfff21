package mattermost

import (
	"context"

	"github.com/mattermost/mattermost-server/v6/model"
)

// UsersUncached reads users by username from Mattermost's database, past its profile cache, in one
// call (POST /users/usernames); a username that is no user is left out. The cache
// (store/localcachelayer) is filled by reads that missed it, after the database answered: a read
// that started before a write and ended after it leaves the profile as it was before the write for
// up to 30 minutes. Mattermost reads users by username straight from the database (GetProfilesByUsernames
// has no cache layer, in v6.7.2 and upstream).
func (c *Client) UsersUncached(ctx context.Context, usernames []string) ([]User, error) {
	if len(usernames) == 0 {
		return nil, nil // Mattermost refuses an empty list
	}
	var users []*model.User
	err := c.call(ctx, "get users by username", false, func(api *model.Client4) (*model.Response, error) {
		var resp *model.Response
		var err error
		users, resp, err = api.GetUsersByUsernames(usernames)
		return resp, err
	})
	if err != nil {
		return nil, err
	}
	out := make([]User, 0, len(users))
	for _, u := range users {
		out = append(out, toUser(u))
	}
	return out, nil
}
