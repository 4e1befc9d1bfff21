package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// The roster — the users to sync as last listed from Mattermost — lives in AppTable under one
// partition: a head row naming the current generation, and that generation's chunks of ids.
// Listing 100,000 users takes Mattermost a minute (its user list pages by OFFSET); reading the
// roster back is one query.
const (
	rosterPartition = "roster"
	rosterHeadRow   = "head"
	// rosterChunk ids of 26 characters make a 26,000-character property (the limit is 32,768).
	rosterChunk  = 1000
	rosterIDSize = 26
)

// Roster is the users to sync as last listed.
type Roster struct {
	UserIDs []string
	// ListedAt is when the listing started.
	ListedAt time.Time
	// Fingerprint is what the lister saw of the user list before listing it (Mattermost's user
	// counts): when it differs now, users came or went and the roster is listed again.
	Fingerprint string
}

// SaveRoster stores r as the current roster: its chunks first, under a new generation, then the
// head that names it, then it deletes the other generations. A reader sees the old roster or the
// new one, never a mix; a save that stopped half-way leaves chunks the next save deletes.
func (s *Store) SaveRoster(ctx context.Context, r Roster) error {
	for _, id := range r.UserIDs {
		if len(id) != rosterIDSize {
			return &Error{Op: "saving the roster", Err: fmt.Errorf("user id %q is not %d characters", id, rosterIDSize)}
		}
	}
	gen := fmt.Sprintf("g%016x", r.ListedAt.UnixNano())
	var actions []aztables.TransactionAction
	for i := 0; i < len(r.UserIDs); i += rosterChunk {
		chunk := r.UserIDs[i:min(i+rosterChunk, len(r.UserIDs))]
		e, err := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: s.roster, RowKey: fmt.Sprintf("%s-%06d", gen, i/rosterChunk)},
			Properties: map[string]any{"Ids": strings.Join(chunk, "")}})
		if err != nil {
			return err
		}
		actions = append(actions, aztables.TransactionAction{ActionType: aztables.TransactionTypeInsertReplace, Entity: e})
	}
	if _, failures := submitTo(ctx, s.app, map[string][]aztables.TransactionAction{s.roster: actions}); len(failures) > 0 {
		return &Error{Op: "saving the roster", Err: failures[0].err}
	}
	head, err := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: s.roster, RowKey: rosterHeadRow},
		Properties: map[string]any{"Generation": gen, "Users": int32(len(r.UserIDs)), "Chunks": int32(len(actions)),
			"ListedAt": aztables.EDMDateTime(r.ListedAt.UTC()), "Fingerprint": r.Fingerprint}})
	if err != nil {
		return err
	}
	if _, err := s.app.UpsertEntity(ctx, head, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		return &Error{Op: "saving the roster head", Err: err}
	}
	filter := fmt.Sprintf("PartitionKey eq %s", odataQuote(s.roster))
	_, err = deleteWhere(ctx, s.app, filter, "old rosters", func(rk string) bool { return rk != rosterHeadRow && !strings.HasPrefix(rk, gen+"-") })
	return err
}

// errRosterTorn: the head names chunks that are not all there (a save or a purge half-done).
var errRosterTorn = errors.New("the roster's chunks do not match its head")

// LoadRoster reads the current roster; found is false when none was saved.
func (s *Store) LoadRoster(ctx context.Context) (r Roster, found bool, err error) {
	const op = "reading the roster"
	resp, err := s.app.GetEntity(ctx, s.roster, rosterHeadRow, nil)
	if err != nil {
		if hasCode(err, aztables.ResourceNotFound) {
			return Roster{}, false, nil
		}
		return Roster{}, false, &Error{Op: op, Err: err}
	}
	var head aztables.EDMEntity
	if err := json.Unmarshal(resp.Value, &head); err != nil {
		return Roster{}, false, &Error{Op: op, Err: err}
	}
	gen, _ := head.Properties["Generation"].(string)
	users, _ := head.Properties["Users"].(int32)
	chunks, _ := head.Properties["Chunks"].(int32)
	r.Fingerprint, _ = head.Properties["Fingerprint"].(string)
	if t, ok := head.Properties["ListedAt"].(aztables.EDMDateTime); ok {
		r.ListedAt = time.Time(t).UTC()
	}
	// Row keys of the generation: gen + "-" + number, and "-" sorts just before ".".
	filter := fmt.Sprintf("PartitionKey eq %s and RowKey gt %s and RowKey lt %s", odataQuote(s.roster), odataQuote(gen+"-"), odataQuote(gen+"."))
	pager := s.app.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
	r.UserIDs = make([]string, 0, users)
	var read int32
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return Roster{}, false, &Error{Op: op, Err: err}
		}
		for _, raw := range page.Entities {
			var e aztables.EDMEntity
			if err := json.Unmarshal(raw, &e); err != nil {
				return Roster{}, false, &Error{Op: op, Err: err}
			}
			ids, _ := e.Properties["Ids"].(string)
			if len(ids)%rosterIDSize != 0 {
				return Roster{}, false, &Error{Op: op, Err: errRosterTorn}
			}
			for i := 0; i < len(ids); i += rosterIDSize {
				r.UserIDs = append(r.UserIDs, ids[i:i+rosterIDSize])
			}
			read++
		}
	}
	if read != chunks || len(r.UserIDs) != int(users) {
		return Roster{}, false, &Error{Op: op, Err: errRosterTorn}
	}
	return r, true, nil
}

// DeleteRoster forgets the roster: the next cycle lists the users.
func (s *Store) DeleteRoster(ctx context.Context) error {
	_, err := deleteWhere(ctx, s.app, "PartitionKey eq "+odataQuote(s.roster), "the roster", func(string) bool { return true })
	return err
}
