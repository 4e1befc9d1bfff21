package slash

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/calstatus/calstatus/internal/mattermost"
)

// Trigger is the command's trigger word.
const Trigger = "calstatus"

// Route is the path of the SlashCommand function under the app's URL.
const Route = "/api/SlashCommand"

// Registrar is what Register needs of the Mattermost adapter (a client with a system admin's
// token, or one with manage_slash_commands and manage_others_slash_commands in the teams).
type Registrar interface {
	RegisterCommand(ctx context.Context, team string, cmd mattermost.SlashCommand) (mattermost.SlashCommand, error)
	RegenerateCommandToken(ctx context.Context, commandID string) (string, error)
}

// Register adds the /calstatus command to each team (by name, or id) pointing at appURL's
// SlashCommand function (https://<app>/api/SlashCommand), or updates the team's existing one, and
// returns the teams' MATTERMOST_SLASH_TOKEN entries, TEAM_ID=TOKEN, in the order given.
//
// Every team has a token of its own, made by Mattermost: a team admin can read their team's token,
// and it must not work for another team. A new command gets the token Mattermost makes; an existing
// one keeps its token, unless another of the teams has it too (registrations before tokens were
// bound to teams gave every team the same one): then Mattermost makes it a new one.
func Register(ctx context.Context, client Registrar, appURL string, teams []string) ([]string, error) {
	u, err := url.Parse(strings.TrimSpace(appURL))
	if err != nil || u.Host == "" || !(u.Scheme == "https" || u.Scheme == "http" && loopback(u.Hostname())) {
		// The token travels with every use of the command: in clear over http.
		return nil, fmt.Errorf("app URL %q: want https://<app host> (http only for localhost)", appURL)
	}
	cmd := mattermost.SlashCommand{Trigger: Trigger, URL: strings.TrimRight(u.String(), "/") + Route,
		DisplayName: "calstatus", Description: "Your Outlook calendar sets your Mattermost status",
		AutocompleteHint: "[status | today | settings | off | on | pause 2h | help]",
		AutocompleteDesc: "calendar → status: see what it does now and today, change your settings, turn it off, on, or pause it"}
	var entries []string
	teamsDone, tokensGiven := map[string]bool{}, map[string]bool{}
	for _, team := range teams {
		got, err := client.RegisterCommand(ctx, team, cmd)
		if err != nil {
			return nil, fmt.Errorf("team %s: %w", team, err)
		}
		if teamsDone[got.TeamID] { // the same team named twice (by name and by id)
			continue
		}
		if tokensGiven[got.Token] {
			if got.Token, err = client.RegenerateCommandToken(ctx, got.ID); err != nil {
				return nil, fmt.Errorf("team %s: %w", team, err)
			}
		}
		teamsDone[got.TeamID], tokensGiven[got.Token] = true, true
		entries = append(entries, got.TeamID+"="+got.Token)
	}
	return entries, nil
}

// loopback reports whether host is this machine (the local dev stack serves the app over http).
func loopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}
