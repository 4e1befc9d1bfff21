package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// DirectorySuffix ends the row key of what calstatus learned of a user in Microsoft Entra:
// userID + DirectorySuffix, in the user's state partition, sorting between the state row and the
// settings row ("~entra" < "~settings"), so LoadStates' range query reads it at no extra cost. It
// has no Until: PurgeEnded never selects it, and state writes never touch it (another row key).
const DirectorySuffix = "~entra"

// Directory is what calstatus learned of a user in Microsoft Entra.
type Directory struct {
	ObjectID  string    // "" when Graph had no user for Email
	Email     string    // the email it was looked up for (lower-cased): a different email now means look again
	CheckedAt time.Time // when Graph answered (stored to the second)
}

func directoryRowKey(userID string) string { return userID + DirectorySuffix }

// isDirectoryRow tells a directory row from the others, and gives the user id.
func isDirectoryRow(rowKey string) (userID string, ok bool) {
	return strings.CutSuffix(rowKey, DirectorySuffix)
}

// SaveDirectory stores what Graph answered for users (user id → entry), in per-partition
// transactions of at most MaxTransaction entities. Rows are upserted whole, without ETags: two
// runs looking the same user up write the same answer, and both must succeed. An invalid entry
// fails the call before anything is written. Each transaction stands alone (as in SaveStates): the
// error names the first that failed, and its users are simply looked up again later.
func (s *Store) SaveDirectory(ctx context.Context, entries map[string]Directory) error {
	ids := make([]string, 0, len(entries))
	for id, d := range entries {
		if err := validDirectory(id, d); err != nil {
			return &Error{Op: "saving user directory", Err: err}
		}
		ids = append(ids, id)
	}
	sort.Strings(ids) // the same transactions for the same entries, whichever run writes them
	byPartition := map[string][]aztables.TransactionAction{}
	for _, id := range ids {
		d := entries[id]
		p := Partition(id)
		entity, err := json.Marshal(aztables.EDMEntity{
			Entity: aztables.Entity{PartitionKey: p, RowKey: directoryRowKey(id)},
			Properties: map[string]any{"Kind": "entra", "ObjectID": d.ObjectID, "Email": d.Email,
				"CheckedAt": aztables.EDMInt64(unix(d.CheckedAt))},
		})
		if err != nil {
			return &Error{Op: "encoding user directory", Err: err}
		}
		byPartition[p] = append(byPartition[p], aztables.TransactionAction{ActionType: aztables.TransactionTypeInsertReplace, Entity: entity})
	}
	if _, failures := submitTo(ctx, s.users, byPartition); len(failures) > 0 {
		return &Error{Op: "writing user directory (partition " + failures[0].partition + ")", Err: failures[0].err}
	}
	return nil
}

// validDirectory checks an entry before anything is written: a Mattermost id (26 characters of
// [a-z0-9], which the row keys' order relies on), and the lower-cased email it was looked up for
// (compared as is with the user's next email).
func validDirectory(id string, d Directory) error {
	if len(id) != rosterIDSize || strings.IndexFunc(id, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') }) >= 0 {
		return fmt.Errorf("user id %q is not %d characters of [a-z0-9]", id, rosterIDSize)
	}
	switch {
	case d.Email == "":
		return fmt.Errorf("user %s: no email", id)
	case d.Email != strings.ToLower(d.Email):
		return fmt.Errorf("user %s: email %q is not lower-case", id, d.Email)
	case d.CheckedAt.IsZero():
		// Read back as "never checked", a user not found would be looked up every cycle.
		return fmt.Errorf("user %s: no CheckedAt", id)
	}
	return nil
}

func directoryFromEntity(e aztables.EDMEntity) *Directory {
	str := func(k string) string { v, _ := e.Properties[k].(string); return v }
	return &Directory{ObjectID: str("ObjectID"), Email: str("Email"), CheckedAt: unixProp(e.Properties["CheckedAt"])}
}
