package store

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/calstatus/calstatus/internal/engine"
)

// SettingsSuffix ends the row key of a user's settings: userID + SettingsSuffix, in the user's
// state partition, sorting right after the state row (user ids are [a-z0-9], "~" sorts after them),
// so LoadStates' range query reads both. A settings row has no Until: PurgeEnded never selects it.
const SettingsSuffix = "~settings"

// UserSettings are a user's own choices (the /calstatus slash command). The zero value is the
// default: calstatus on.
type UserSettings struct {
	// Disabled: "/calstatus off".
	Disabled bool
	// PausedUntil: "/calstatus pause …"; a time past is no pause.
	PausedUntil time.Time
}

// Engine is the settings as the engine takes them, without a time zone (Mattermost has it).
func (u UserSettings) Engine() engine.Settings {
	return engine.Settings{Disabled: u.Disabled, PausedUntil: u.PausedUntil}
}

func settingsRowKey(userID string) string { return userID + SettingsSuffix }

// isSettingsRow tells a settings row from a state row, and gives the user id.
func isSettingsRow(rowKey string) (userID string, ok bool) {
	return strings.CutSuffix(rowKey, SettingsSuffix)
}

// SaveSettings stores a user's settings (upsert, last writer wins: they are the user's own). The
// default settings delete the row.
func (s *Store) SaveSettings(ctx context.Context, userID string, u UserSettings) error {
	key := aztables.Entity{PartitionKey: Partition(userID), RowKey: settingsRowKey(userID)}
	if u == (UserSettings{}) {
		if _, err := s.users.DeleteEntity(ctx, key.PartitionKey, key.RowKey, nil); err != nil && !hasCode(err, aztables.ResourceNotFound) {
			return &Error{Op: "deleting user settings", Err: err}
		}
		return nil
	}
	entity, err := json.Marshal(aztables.EDMEntity{Entity: key, Properties: map[string]any{
		"Kind": "settings", "Disabled": u.Disabled, "PausedUntil": aztables.EDMInt64(unix(u.PausedUntil)),
	}})
	if err != nil {
		return &Error{Op: "encoding user settings", Err: err}
	}
	if _, err := s.users.UpsertEntity(ctx, entity, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		return &Error{Op: "writing user settings", Err: err}
	}
	return nil
}

// LoadSettings reads a user's settings (the default when none are stored).
func (s *Store) LoadSettings(ctx context.Context, userID string) (UserSettings, error) {
	resp, err := s.users.GetEntity(ctx, Partition(userID), settingsRowKey(userID), nil)
	if err != nil {
		if hasCode(err, aztables.ResourceNotFound) {
			return UserSettings{}, nil
		}
		return UserSettings{}, &Error{Op: "reading user settings", Err: err}
	}
	var e aztables.EDMEntity
	if err := json.Unmarshal(resp.Value, &e); err != nil {
		return UserSettings{}, &Error{Op: "reading user settings", Err: err}
	}
	return settingsFromEntity(e), nil
}

func settingsFromEntity(e aztables.EDMEntity) UserSettings {
	b, _ := e.Properties["Disabled"].(bool)
	return UserSettings{Disabled: b, PausedUntil: unixProp(e.Properties["PausedUntil"])}
}
