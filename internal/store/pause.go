package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// pauseRow is the pause switch's row in AppTable: there while the switch is on.
const pauseRow = "paused"

// PauseSwitch is the status page's pause switch as stored.
type PauseSwitch struct {
	On bool
	// By is who turned it on (Pause's by), At when. By is for the logs and the table only: the
	// status page does not show it.
	By string
	At time.Time
}

// PauseSwitch reads the pause switch: off when it was never turned on, or was cleared.
func (s *Store) PauseSwitch(ctx context.Context) (PauseSwitch, error) {
	resp, err := s.app.GetEntity(ctx, appPartition, pauseRow, nil)
	if err != nil {
		if hasCode(err, aztables.ResourceNotFound) {
			return PauseSwitch{}, nil
		}
		return PauseSwitch{}, &Error{Op: "reading the pause switch", Err: err}
	}
	var e aztables.EDMEntity
	if err := json.Unmarshal(resp.Value, &e); err != nil {
		return PauseSwitch{}, &Error{Op: "reading the pause switch", Err: err}
	}
	var p PauseSwitch
	p.On, _ = e.Properties["On"].(bool)
	p.By, _ = e.Properties["By"].(string)
	if t, ok := e.Properties["At"].(aztables.EDMDateTime); ok {
		p.At = time.Time(t).UTC()
	}
	return p, nil
}

// Pause turns the pause switch on, recording who turned it (for the logs and the table) and when.
// No run writes to Mattermost or the state table while it is on.
func (s *Store) Pause(ctx context.Context, by string, at time.Time) error {
	entity, err := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: appPartition, RowKey: pauseRow},
		Properties: map[string]any{"On": true, "By": by, "At": aztables.EDMDateTime(at.UTC())}})
	if err != nil {
		return &Error{Op: "writing the pause switch", Err: err}
	}
	if _, err := s.app.UpsertEntity(ctx, entity, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		return &Error{Op: "writing the pause switch", Err: err}
	}
	return nil
}

// ClearPauseSwitch turns the pause switch off and forgets who turned it on and when.
func (s *Store) ClearPauseSwitch(ctx context.Context) error {
	if _, err := s.app.DeleteEntity(ctx, appPartition, pauseRow, nil); err != nil && !hasCode(err, aztables.ResourceNotFound) {
		return &Error{Op: "clearing the pause switch", Err: err}
	}
	return nil
}
