package mattermost

import (
	"context"
	"fmt"
	"net/http"

	"github.com/calstatus/calstatus/internal/logctx"
)

// Check verifies that the server answers and the token is accepted, with one clear error if not.
func (c *Client) Check(ctx context.Context) error {
	if _, _, err := c.api.GetPing(); err != nil {
		return fmt.Errorf("Mattermost at %s does not answer (MATTERMOST_URL): %s", c.api.URL, brief(err))
	}
	me, resp, err := c.api.GetMe("")
	if err != nil {
		if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
			return fmt.Errorf("Mattermost at %s rejects MATTERMOST_TOKEN (HTTP %d)", c.api.URL, resp.StatusCode)
		}
		return fmt.Errorf("Mattermost at %s: checking MATTERMOST_TOKEN: %s", c.api.URL, brief(err))
	}
	if !me.IsSystemAdmin() {
		logctx.From(ctx, c.log).Warn("the Mattermost token's user is not a system admin: setting other users' statuses needs edit_other_users",
			"user", me.Username)
	}
	return nil
}
