package mmstate

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mattermost/mattermost-server/v6/model"
)

// ChangedBehindProfileCache gives the user the custom status cs in the database while the server's
// profile cache keeps the user as it was: what a read that raced the user's own custom status write
// leaves (the write invalidates the cache, the read that started before it fills it again with the
// old user, for up to 30 minutes). The server's own SetCustomStatus and RemoveCustomStatus start
// from that cached copy and write it back.
func (db *DB) ChangedBehindProfileCache(ctx context.Context, c *model.Client4, userID string, cs *model.CustomStatus) error {
	if _, _, err := c.GetUsersByIds([]string{userID}); err != nil { // cached now, as it is
		return fmt.Errorf("mmstate: cache user %s: %w", userID, err)
	}
	b, err := json.Marshal(cs)
	if err != nil {
		return fmt.Errorf("mmstate: custom status of %s: %w", userID, err)
	}
	if _, err := db.sql.ExecContext(ctx, `UPDATE users SET props = jsonb_set(props, '{customStatus}', to_jsonb($2::text)) WHERE id = $1`,
		userID, string(b)); err != nil {
		return fmt.Errorf("mmstate: set custom status of %s behind the cache: %w", userID, err)
	}
	return nil
}
