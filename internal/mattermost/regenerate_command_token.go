package mattermost

import (
	"context"

	"github.com/mattermost/mattermost-server/v6/model"
)

// RegenerateCommandToken gives a custom slash command a new token, made by Mattermost, and returns
// it (one call). The old token stops working at once. Needs the permissions RegisterCommand needs.
func (c *Client) RegenerateCommandToken(ctx context.Context, commandID string) (string, error) {
	var token string
	err := c.call(ctx, "regenerate slash command token", true, func(api *model.Client4) (*model.Response, error) {
		var resp *model.Response
		var err error
		token, resp, err = api.RegenCommandToken(commandID)
		return resp, err
	})
	return token, err
}
