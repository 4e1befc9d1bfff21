package mattermost

import (
	"context"

	"github.com/mattermost/mattermost-server/v6/model"
)

// UserStatus reads one user's status (one call).
func (c *Client) UserStatus(ctx context.Context, userID string) (Status, error) {
	var st *model.Status
	err := c.call(ctx, "get status", false, func(api *model.Client4) (*model.Response, error) {
		var resp *model.Response
		var err error
		st, resp, err = api.GetUserStatus(userID, "")
		return resp, err
	})
	if err != nil {
		return Status{}, err
	}
	return toStatus(st), nil
}
