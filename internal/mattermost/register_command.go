package mattermost

import (
	"context"
	"errors"
	"net/http"

	"github.com/mattermost/mattermost-server/v6/model"
)

// SlashCommand is a custom slash command of a team: Mattermost POSTs each use of it to URL as a
// form, with Token as form field "token" and header "Authorization: Token <Token>".
type SlashCommand struct {
	Trigger string // without the slash
	URL     string
	// DisplayName and Description show in Integrations → Slash Commands; AutocompleteHint and
	// AutocompleteDesc in the autocomplete list as users type the command.
	DisplayName, Description           string
	AutocompleteHint, AutocompleteDesc string

	// Set by RegisterCommand.
	ID, TeamID string
	// Token is the command's token as Mattermost has it. RegisterCommand never chooses one:
	// Mattermost makes it when it creates the command (26 letters and digits).
	Token string
	// Created is false when the team already had a command with the trigger: it was updated to this
	// URL and descriptions, and keeps its own token (Mattermost never changes a token on update).
	Created bool
}

// RegisterCommand creates the custom slash command in the team (by name, or id), or updates the
// team's command with the same trigger, and returns it with its token. The token's account needs
// manage_slash_commands in the team (and manage_others_slash_commands to update another's command):
// a system admin has both. Integrations must allow custom slash commands (EnableCommands).
func (c *Client) RegisterCommand(ctx context.Context, team string, cmd SlashCommand) (SlashCommand, error) {
	t, err := c.team(ctx, team)
	if err != nil {
		return SlashCommand{}, err
	}
	var existing []*model.Command
	if err := c.call(ctx, "list slash commands", false, func(api *model.Client4) (*model.Response, error) {
		var resp *model.Response
		var err error
		existing, resp, err = api.ListCommands(t.Id, true)
		return resp, err
	}); err != nil {
		return SlashCommand{}, err
	}
	want := &model.Command{TeamId: t.Id, Trigger: cmd.Trigger, Method: model.CommandMethodPost, URL: cmd.URL,
		DisplayName: cmd.DisplayName, Description: cmd.Description,
		AutoComplete: true, AutoCompleteHint: cmd.AutocompleteHint, AutoCompleteDesc: cmd.AutocompleteDesc}
	for _, old := range existing {
		if old.Trigger != cmd.Trigger || old.DeleteAt != 0 {
			continue
		}
		want.Id = old.Id
		var got *model.Command
		if err := c.call(ctx, "update slash command", true, func(api *model.Client4) (*model.Response, error) {
			var resp *model.Response
			var err error
			got, resp, err = api.UpdateCommand(want)
			return resp, err
		}); err != nil {
			return SlashCommand{}, err
		}
		return fromCommand(got, false), nil
	}
	// Not retried: a create whose answer was lost would fail again as a duplicate trigger (running
	// the registration again finds the command and updates it).
	var got *model.Command
	if err := c.once(ctx, "create slash command", true, func(api *model.Client4) (*model.Response, error) {
		var resp *model.Response
		var err error
		got, resp, err = api.CreateCommand(want)
		return resp, err
	}); err != nil {
		return SlashCommand{}, err
	}
	return fromCommand(got, true), nil
}

// team finds a team by name, or else by id.
func (c *Client) team(ctx context.Context, team string) (*model.Team, error) {
	var t *model.Team
	err := c.call(ctx, "get team", false, func(api *model.Client4) (*model.Response, error) {
		var resp *model.Response
		var err error
		t, resp, err = api.GetTeamByName(team, "")
		return resp, err
	})
	var e *Error
	if err != nil && model.IsValidId(team) && errors.As(err, &e) && e.Status == http.StatusNotFound {
		err = c.call(ctx, "get team", false, func(api *model.Client4) (*model.Response, error) {
			var resp *model.Response
			var err error
			t, resp, err = api.GetTeam(team, "")
			return resp, err
		})
	}
	return t, err
}

func fromCommand(m *model.Command, created bool) SlashCommand {
	return SlashCommand{Trigger: m.Trigger, URL: m.URL, DisplayName: m.DisplayName, Description: m.Description,
		AutocompleteHint: m.AutoCompleteHint, AutocompleteDesc: m.AutoCompleteDesc, Token: m.Token,
		ID: m.Id, TeamID: m.TeamId, Created: created}
}
