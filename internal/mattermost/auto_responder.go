package mattermost

import (
	"context"
	"fmt"

	"github.com/mattermost/mattermost-server/v6/model"
)

// AutoResponder is a user's Mattermost automatic replies as their notify props keep them, with the
// props read so that a change patches them back whole.
type AutoResponder struct {
	Active  bool
	Message string
	notify  model.StringMap
}

// AutoResponder reads a user's auto-responder. Mattermost strips the notify props from every user a
// GET answers with, even to an admin (User.SanitizeProfile); PATCH /users/{id}/patch answers with
// the whole user, so an empty patch reads them — one user write (and a user_updated event), made
// only when an auto-responder calstatus holds or is about to set must be checked.
func (c *Client) AutoResponder(ctx context.Context, userID string) (AutoResponder, error) {
	var u *model.User
	err := c.call(ctx, "read auto-responder", true, func(api *model.Client4) (*model.Response, error) {
		var resp *model.Response
		var err error
		u, resp, err = api.PatchUser(userID, &model.UserPatch{})
		return resp, err
	})
	if err != nil {
		return AutoResponder{}, err
	}
	if u == nil || u.NotifyProps == nil {
		return AutoResponder{}, fmt.Errorf("mattermost: read auto-responder: the server answered without the user's notify props")
	}
	return AutoResponder{
		Active:  u.NotifyProps[model.AutoResponderActiveNotifyProp] == "true",
		Message: u.NotifyProps[model.AutoResponderMessageNotifyProp],
		notify:  u.NotifyProps,
	}, nil
}

// SetAutoResponder turns on the auto-responder read as ar with message (or changes the message of
// one on). Mattermost replaces the notify props whole, so they are sent back as read with the two
// props changed; turning it on, the server sets the status ooo by hand (SetAutoResponderStatus). A
// notification setting the user changes between the read and this write is lost: the read is
// made just before, only for this.
func (c *Client) SetAutoResponder(ctx context.Context, userID string, ar AutoResponder, message string) error {
	if ar.notify == nil {
		return fmt.Errorf("mattermost: set auto-responder: its notify props were not read")
	}
	props := make(model.StringMap, len(ar.notify)+2)
	for k, v := range ar.notify {
		props[k] = v
	}
	props[model.AutoResponderActiveNotifyProp] = "true"
	props[model.AutoResponderMessageNotifyProp] = message
	return c.call(ctx, "set auto-responder", true, func(api *model.Client4) (*model.Response, error) {
		_, resp, err := api.PatchUser(userID, &model.UserPatch{NotifyProps: props})
		return resp, err
	})
}
