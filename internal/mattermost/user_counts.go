package mattermost

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mattermost/mattermost-server/v6/model"
)

// UserCounts are two counts of the user list that change when users come or go: active users
// (a deactivation lowers it) and all users ever (every new account raises it). Two cheap COUNT
// queries tell the planner whether its stored roster still holds; listing 100,000 users takes
// Mattermost a minute. Bots are counted: one more bot lists the users once more, harmlessly.
type UserCounts struct {
	Active, All int64
}

// CountUsers reads the user counts (two calls; the token needs sysconsole_read_user_management_users,
// which a system admin has).
func (c *Client) CountUsers(ctx context.Context) (UserCounts, error) {
	var out UserCounts
	for _, q := range []struct {
		query string
		n     *int64
	}{{"include_bots=true", &out.Active}, {"include_bots=true&include_deleted=true", &out.All}} {
		err := c.call(ctx, "count users", false, func(api *model.Client4) (*model.Response, error) {
			r, err := api.DoAPIGet("/users/stats/filtered?"+q.query, "")
			if err != nil {
				return model.BuildResponse(r), err
			}
			defer r.Body.Close()
			var stats model.UsersStats
			if err := json.NewDecoder(r.Body).Decode(&stats); err != nil {
				return model.BuildResponse(r), fmt.Errorf("user counts: %w", err)
			}
			*q.n = stats.TotalUsersCount
			return model.BuildResponse(r), nil
		})
		if err != nil {
			return UserCounts{}, err
		}
	}
	return out, nil
}

// String is the counts as a roster fingerprint.
func (u UserCounts) String() string { return fmt.Sprintf("active=%d all=%d", u.Active, u.All) }
