package mattermost

import (
	"context"

	"github.com/mattermost/mattermost-server/v6/model"
)

// Notify sends a user a direct message from the token's account (a bot, typically).
func (c *Client) Notify(ctx context.Context, userID, message string) error {
	self, err := c.self(ctx)
	if err != nil {
		return err
	}
	var ch *model.Channel
	if err := c.call(ctx, "open direct channel", true, func(api *model.Client4) (*model.Response, error) {
		var resp *model.Response
		var err error
		ch, resp, err = api.CreateDirectChannel(self, userID)
		return resp, err
	}); err != nil {
		return err
	}
	return c.call(ctx, "post message", true, func(api *model.Client4) (*model.Response, error) {
		_, resp, err := api.CreatePost(&model.Post{ChannelId: ch.Id, Message: message})
		return resp, err
	})
}

// self is the token's user id, read once.
func (c *Client) self(ctx context.Context) (string, error) {
	c.selfMu.Lock()
	defer c.selfMu.Unlock()
	if c.selfID != "" {
		return c.selfID, nil
	}
	me, err := c.Me(ctx)
	if err != nil {
		return "", err
	}
	c.selfID = me.ID
	return c.selfID, nil
}
