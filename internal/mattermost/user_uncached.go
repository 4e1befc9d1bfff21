package mattermost

import (
	"context"

	"github.com/mattermost/mattermost-server/v6/model"
)

// UserUncached reads one user from Mattermost's database, past its profile cache (one call). The
// cache (store/localcachelayer) is filled by reads that missed it, after the database answered: a
// read that started before a write and ended after it leaves the profile as it was before the
// write for up to 30 minutes. Reading by username goes to the database (not cached in v6).
func (c *Client) UserUncached(ctx context.Context, username string) (User, error) {
	var u *model.User
	err := c.call(ctx, "get user by username", false, func(api *model.Client4) (*model.Response, error) {
		var resp *model.Response
		var err error
		u, resp, err = api.GetUserByUsername(username, "")
		return resp, err
	})
	if err != nil {
		return User{}, err
	}
	return toUser(u), nil
}
