package mattermost

import (
	"context"

	"github.com/mattermost/mattermost-server/v6/model"
)

// Me is the account calstatus's token acts as.
type Me struct {
	ID, Username string
	// Roles are its system roles (system_user, system_admin, ...).
	Roles []string
	Bot   bool
}

// Me reads the token's own account (one call).
func (c *Client) Me(ctx context.Context) (Me, error) {
	var me *model.User
	if err := c.call(ctx, "get me", false, func(api *model.Client4) (*model.Response, error) {
		var resp *model.Response
		var err error
		me, resp, err = api.GetMe("")
		return resp, err
	}); err != nil {
		return Me{}, err
	}
	return Me{ID: me.Id, Username: me.Username, Roles: me.GetRoles(), Bot: me.IsBot}, nil
}

// RolePermissions returns the permissions the named roles grant together (one call; any valid
// token may read roles).
func (c *Client) RolePermissions(ctx context.Context, roles []string) (map[string]bool, error) {
	var rs []*model.Role
	if err := c.call(ctx, "get roles", false, func(api *model.Client4) (*model.Response, error) {
		var resp *model.Response
		var err error
		rs, resp, err = api.GetRolesByNames(roles)
		return resp, err
	}); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, r := range rs {
		for _, p := range r.Permissions {
			out[p] = true
		}
	}
	return out, nil
}
