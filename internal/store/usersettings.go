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
// state partition, sorting after the state row and the directory row (user ids are [a-z0-9], "~"
// sorts after them), so LoadStates' range query reads all three. A settings row has no Until:
// PurgeEnded never selects it.
const SettingsSuffix = "~settings"

// UserSettings are a user's own choices (the /calstatus slash command). The zero value is the
// default: calstatus on, setting both the status and the custom status, with the organisation's
// SHOW_SUBJECT and NOTIFY_USERS.
type UserSettings struct {
	// Disabled: "/calstatus off".
	Disabled bool
	// PausedUntil: "/calstatus pause …"; a time past is no pause.
	PausedUntil time.Time
	// Only: "/calstatus settings only dnd|custom" (engine.OnlyDND, engine.OnlyCustom); "" both.
	Only engine.Only
	// ShowSubject and Notify: "/calstatus settings subject|notify on|off"; nil is the
	// organisation's SHOW_SUBJECT and NOTIFY_USERS ("… default").
	ShowSubject, Notify *bool
	// CallsOff: "/calstatus settings calls off" (Teams calls and presentations left alone).
	CallsOff bool
	// RepliesOff: "/calstatus settings replies off" (Outlook's automatic replies not turned on in
	// Mattermost; ones calstatus turned on given back).
	RepliesOff bool
}

// IsDefault reports whether u is the default (no settings row).
func (u UserSettings) IsDefault() bool {
	return !u.Disabled && u.PausedUntil.IsZero() && u.Only == "" && u.ShowSubject == nil && u.Notify == nil && !u.CallsOff &&
		!u.RepliesOff
}

// Engine is the settings as the engine takes them, without a time zone (Mattermost has it).
func (u UserSettings) Engine() engine.Settings {
	return engine.Settings{Disabled: u.Disabled, PausedUntil: u.PausedUntil, Only: u.Only,
		ShowSubject: copyBool(u.ShowSubject), Notify: copyBool(u.Notify), CallsOff: u.CallsOff,
		RepliesOff: u.RepliesOff}
}

func copyBool(b *bool) *bool {
	if b == nil {
		return nil
	}
	v := *b
	return &v
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
	if u.IsDefault() {
		if _, err := s.users.DeleteEntity(ctx, key.PartitionKey, key.RowKey, nil); err != nil && !hasCode(err, aztables.ResourceNotFound) {
			return &Error{Op: "deleting user settings", Err: err}
		}
		return nil
	}
	props := map[string]any{"Kind": "settings", "Disabled": u.Disabled, "PausedUntil": aztables.EDMInt64(unix(u.PausedUntil))}
	// The choices left to the defaults are absent (the row is replaced whole).
	if u.Only != "" {
		props["Only"] = string(u.Only)
	}
	if u.ShowSubject != nil {
		props["ShowSubject"] = *u.ShowSubject
	}
	if u.Notify != nil {
		props["Notify"] = *u.Notify
	}
	if u.CallsOff {
		props["CallsOff"] = true
	}
	if u.RepliesOff {
		props["RepliesOff"] = true
	}
	entity, err := json.Marshal(aztables.EDMEntity{Entity: key, Properties: props})
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
	u := UserSettings{Disabled: b, PausedUntil: unixProp(e.Properties["PausedUntil"])}
	// A value this version does not know (a later one's) reads as the default.
	switch only, _ := e.Properties["Only"].(string); engine.Only(only) {
	case engine.OnlyDND, engine.OnlyCustom:
		u.Only = engine.Only(only)
	}
	if v, ok := e.Properties["ShowSubject"].(bool); ok {
		u.ShowSubject = &v
	}
	if v, ok := e.Properties["Notify"].(bool); ok {
		u.Notify = &v
	}
	u.CallsOff, _ = e.Properties["CallsOff"].(bool)
	u.RepliesOff, _ = e.Properties["RepliesOff"].(bool)
	return u
}

// SettingsCounts are how many users turned calstatus off, and paused it, at a time.
type SettingsCounts struct {
	Off, Paused int
}

// CountSettings counts the users who turned calstatus off or have it paused at now (one query over
// the settings rows: a scan of the users table, for the Status page).
func (s *Store) CountSettings(ctx context.Context, now time.Time) (SettingsCounts, error) {
	filter, sel := "Kind eq 'settings'", "Disabled,PausedUntil"
	pager := s.users.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Select: &sel})
	var c SettingsCounts
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return SettingsCounts{}, &Error{Op: "counting user settings", Err: err}
		}
		for _, raw := range page.Entities {
			var e aztables.EDMEntity
			if err := json.Unmarshal(raw, &e); err != nil {
				return SettingsCounts{}, &Error{Op: "counting user settings", Err: err}
			}
			switch u := settingsFromEntity(e); {
			case u.Disabled:
				c.Off++
			case now.Before(u.PausedUntil):
				c.Paused++
			}
		}
	}
	return c, nil
}
