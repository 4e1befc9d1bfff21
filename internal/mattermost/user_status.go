package mattermost

import "context"

// UserStatus reads one user's status (one call).
func (c *Client) UserStatus(ctx context.Context, userID string) (Status, error) {
	return c.status(ctx, userID)
}
