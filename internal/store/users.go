package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/calstatus/calstatus/internal/engine"
)

// UserState is one user's stored state with the ETag it was read at. Claim, when set, says the
// state is a decision stored before being applied in Mattermost (see engine.Claim). Settings are
// the user's own settings, read by the same query (their own row, never written with the state);
// without a time zone, which Mattermost has. Directory is what calstatus learned of the user in
// Microsoft Entra (its own row too, see SaveDirectory), nil when nothing is stored.
type UserState struct {
	engine.State
	Claim     *engine.Claim
	Settings  engine.Settings
	Directory *Directory
	etag      azcore.ETag
}

// Partition is the partition key of a user's state.
func Partition(userID string) string {
	if userID == "" {
		return "u_"
	}
	return "u" + userID[:1]
}

// odataQuote quotes a string for an OData filter.
func odataQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// LoadStates reads the state, directory and settings rows of the given users (sorted or not) with
// one range query per partition: from the first user's state row to the last user's settings row.
// A user with none is absent from the map; one with only settings or a directory row is present
// with a zero State, no Claim and no ETag, so a first state is inserted, as for a user absent.
func (s *Store) LoadStates(ctx context.Context, userIDs []string) (map[string]UserState, error) {
	want := make(map[string]bool, len(userIDs))
	ranges := map[string][2]string{}
	for _, id := range userIDs {
		want[id] = true
		p := Partition(id)
		r, ok := ranges[p]
		if !ok {
			r = [2]string{id, id}
		}
		r[0], r[1] = min(r[0], id), max(r[1], id)
		ranges[p] = r
	}
	out := map[string]UserState{}
	for p, r := range ranges {
		filter := fmt.Sprintf("PartitionKey eq %s and RowKey ge %s and RowKey le %s", odataQuote(p), odataQuote(r[0]), odataQuote(settingsRowKey(r[1])))
		pager := s.users.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return nil, &Error{Op: "reading user state", Err: err}
			}
			for _, raw := range page.Entities {
				var e aztables.EDMEntity
				if err := json.Unmarshal(raw, &e); err != nil {
					return nil, &Error{Op: "reading user state", Err: err}
				}
				if id, ok := isSettingsRow(e.RowKey); ok {
					if want[id] {
						us := out[id]
						us.Settings = settingsFromEntity(e).Engine()
						out[id] = us
					}
				} else if id, ok := isDirectoryRow(e.RowKey); ok {
					if want[id] {
						us := out[id]
						us.Directory = directoryFromEntity(e)
						out[id] = us
					}
				} else if want[e.RowKey] {
					us := fromEntity(e)
					us.Settings, us.Directory = out[e.RowKey].Settings, out[e.RowKey].Directory
					out[e.RowKey] = us
				}
			}
		}
	}
	return out, nil
}

func fromEntity(e aztables.EDMEntity) UserState {
	str := func(k string) string { v, _ := e.Properties[k].(string); return v }
	b, _ := e.Properties["PrevManual"].(bool)
	done, _ := e.Properties["RepliesDone"].(bool) // absent (a row written before replies): false
	st := engine.State{PrevStatus: str("Prev"), PrevManual: b, SetStatus: str("Set"), CustomEmoji: str("CsEmoji"), CustomText: str("CsText"),
		Handled: str("Handled"), DNDEnd: unixProp(e.Properties["DndEnd"]), CustomUntil: unixProp(e.Properties["CsUntil"]),
		Replies: str("Replies"), RepliesDone: done, RepliesKept: unixProp(e.Properties["RepliesKept"]), Until: unixProp(e.Properties["Until"])}
	us := UserState{State: st, etag: azcore.ETag(e.ETag)}
	if owner := str("ClaimOwner"); owner != "" {
		c := &engine.Claim{Owner: owner, Until: unixProp(e.Properties["ClaimUntil"])}
		if prev := str("ClaimPrev"); prev != "" {
			_ = json.Unmarshal([]byte(prev), &c.Prev) // unreadable: decide from nothing held
		}
		us.Claim = c
	}
	return us
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// unixProp reads a time stored as Unix seconds (absent or 0: the zero time).
func unixProp(v any) time.Time {
	var n int64
	switch v := v.(type) {
	case aztables.EDMInt64:
		n = int64(v)
	case int32:
		n = int64(v)
	}
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(n, 0).UTC()
}

// StateChange is a new state for a user: Old is what LoadStates returned (zero if nothing), New the
// state to store (a zero State without a claim deletes), Claim marks it as not applied yet.
type StateChange struct {
	UserID string
	Old    UserState
	New    engine.State
	Claim  *engine.Claim
}

// ErrConflict means another writer changed a user's state since it was read: the caller must not
// act on its decisions for the users of that partition (another run is doing so).
var ErrConflict = errors.New("table storage: user state changed concurrently")

// SaveStates writes changes in per-partition transactions of at most MaxTransaction entities. New
// entities are inserted (failing if one appeared meanwhile) and existing ones replaced or deleted
// only at the ETag they were read at, so two runs over the same users cannot both claim them.
//
// Each transaction stands alone: one that fails (a conflict, a storage error) does not stop the
// others. saved names the users whose change was written; err, if any, the first failure.
func (s *Store) SaveStates(ctx context.Context, changes []StateChange) (saved map[string]bool, err error) {
	return s.write(ctx, changes, true)
}

// CompleteStates replaces claimed states with what was applied, without ETags: while its claim
// stands no other run writes a user's state, and the claim's ETag changed when it was written.
func (s *Store) CompleteStates(ctx context.Context, changes []StateChange) (saved map[string]bool, err error) {
	return s.write(ctx, changes, false)
}

func (s *Store) write(ctx context.Context, changes []StateChange, guarded bool) (map[string]bool, error) {
	byPartition := map[string][]aztables.TransactionAction{}
	ids := map[string][]string{}
	for _, c := range changes {
		action, ok, err := stateAction(c, guarded)
		if err != nil {
			return nil, &Error{Op: "encoding user state", Err: err}
		}
		if ok {
			p := Partition(c.UserID)
			byPartition[p] = append(byPartition[p], action)
			ids[p] = append(ids[p], c.UserID)
		}
	}
	saved := map[string]bool{}
	written, failures := s.submit(ctx, byPartition)
	for p, chunks := range written {
		for _, ch := range chunks {
			for _, id := range ids[p][ch[0]:ch[1]] {
				saved[id] = true
			}
		}
	}
	s.Writes.Add(int64(len(saved)))
	var first error
	for _, f := range failures {
		err := &Error{Op: "writing user state (partition " + f.partition + ")", Err: f.err}
		if isConflict(f.err) {
			err.Err = fmt.Errorf("%w: %w", ErrConflict, f.err)
		}
		if first == nil {
			first = err
		}
	}
	// Changes that needed no write count as saved.
	for _, c := range changes {
		if _, ok, _ := stateAction(c, guarded); !ok {
			saved[c.UserID] = true
		}
	}
	return saved, first
}

type partitionFailure struct {
	partition string
	err       error
}

// submit writes user-state actions (see submitTo).
func (s *Store) submit(ctx context.Context, byPartition map[string][]aztables.TransactionAction) (map[string][][2]int, []partitionFailure) {
	return submitTo(ctx, s.users, byPartition)
}

func stateAction(c StateChange, guarded bool) (aztables.TransactionAction, bool, error) {
	had := c.Old.etag != ""
	keep := c.New.Held() || c.Claim != nil
	key := aztables.Entity{PartitionKey: Partition(c.UserID), RowKey: c.UserID}
	var ifMatch *azcore.ETag
	if guarded && had {
		etag := c.Old.etag
		ifMatch = &etag
	}
	switch {
	case !keep && !had && guarded:
		return aztables.TransactionAction{}, false, nil
	case !keep:
		entity, _ := json.Marshal(key)
		return aztables.TransactionAction{ActionType: aztables.TransactionTypeDelete, Entity: entity, IfMatch: ifMatch}, true, nil
	}
	props := map[string]any{
		"Prev": c.New.PrevStatus, "PrevManual": c.New.PrevManual, "Set": c.New.SetStatus, "CsEmoji": c.New.CustomEmoji, "CsText": c.New.CustomText,
		"Handled": c.New.Handled, "DndEnd": aztables.EDMInt64(unix(c.New.DNDEnd)), "CsUntil": aztables.EDMInt64(unix(c.New.CustomUntil)),
		"Replies": c.New.Replies, "RepliesDone": c.New.RepliesDone, "RepliesKept": aztables.EDMInt64(unix(c.New.RepliesKept)),
		"Until": aztables.EDMInt64(unix(c.New.Until)),
	}
	if cl := c.Claim; cl != nil {
		prev, err := json.Marshal(cl.Prev)
		if err != nil {
			return aztables.TransactionAction{}, false, err
		}
		props["ClaimOwner"], props["ClaimUntil"], props["ClaimPrev"] = cl.Owner, aztables.EDMInt64(unix(cl.Until)), string(prev)
		// A claim is purged like the state it may fall back to.
		props["Until"] = aztables.EDMInt64(max(unix(c.New.Until), unix(cl.Prev.Until), unix(cl.Until)))
	}
	entity, err := json.Marshal(aztables.EDMEntity{Entity: key, Properties: props})
	if err != nil {
		return aztables.TransactionAction{}, false, err
	}
	switch {
	case !guarded:
		return aztables.TransactionAction{ActionType: aztables.TransactionTypeUpdateReplace, Entity: entity}, true, nil
	case !had:
		return aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: entity}, true, nil
	}
	return aztables.TransactionAction{ActionType: aztables.TransactionTypeUpdateReplace, Entity: entity, IfMatch: ifMatch}, true, nil
}

// isConflict recognises a write refused because the entity changed since it was read: 409/412, or
// 404 when another run deleted it. A failed transaction reports its real code only in the message
// (as status 202).
func isConflict(err error) bool {
	var re *azcore.ResponseError
	if errors.As(err, &re) && (re.StatusCode == http.StatusConflict || re.StatusCode == http.StatusPreconditionFailed) {
		return true
	}
	msg := err.Error()
	for _, code := range []string{"EntityAlreadyExists", "UpdateConditionNotSatisfied", "ResourceNotFound", "412", "409"} {
		if strings.Contains(msg, code) {
			return true
		}
	}
	return false
}

// PurgeEnded deletes the state of events that ended before cutoff, in per-partition transactions.
// Normally a user's state is deleted when their event is over; this catches users who left (or whose
// calendar stopped answering) meanwhile. Nothing is lost: by then Mattermost has ended the DND we
// set by itself (dnd_end_time), and clients no longer show our expired custom status. A user's
// other rows (settings, directory: userID + "~…") have no Until, and are skipped even if one had.
func (s *Store) PurgeEnded(ctx context.Context, cutoff time.Time) (int, error) {
	return deleteWhere(ctx, s.users, fmt.Sprintf("Until lt %dL", cutoff.Unix()), "ended state",
		func(rowKey string) bool { return !strings.Contains(rowKey, "~") })
}
