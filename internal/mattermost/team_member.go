package mattermost

import (
	"context"
	"errors"
	"net/http"

	"github.com/mattermost/mattermost-server/v6/model"
)

// IsTeamMember reports whether the user is a member of the team now (one call). Mattermost keeps
// the membership of someone who left a team, marked deleted: that is not a member. A team or user
// it does not know is not a member either.
func (c *Client) IsTeamMember(ctx context.Context, teamID, userID string) (bool, error) {
	var m *model.TeamMember
	err := c.call(ctx, "get team member", false, func(api *model.Client4) (*model.Response, error) {
		var resp *model.Response
		var err error
		m, resp, err = api.GetTeamMember(teamID, userID, "")
		return resp, err
	})
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return m.DeleteAt == 0, nil
}
