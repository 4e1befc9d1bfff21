package mattermost

import (
	"context"
	"errors"
	"strings"

	"github.com/mattermost/mattermost-server/v6/model"
)

// SampleEmail returns the email of one user calstatus syncs (the first of the user list), for
// checking that Graph answers for a real mailbox. One call.
func (c *Client) SampleEmail(ctx context.Context) (string, error) {
	var users []*model.User
	if err := c.call(ctx, "list users", false, func(api *model.Client4) (*model.Response, error) {
		var resp *model.Response
		var err error
		users, resp, err = api.GetUsers(0, 50, "")
		return resp, err
	}); err != nil {
		return "", err
	}
	for _, u := range users {
		if syncable(u) {
			return strings.ToLower(u.Email), nil
		}
	}
	return "", errors.New("mattermost: no user with an email among the first 50")
}
