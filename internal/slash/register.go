package slash

import (
	"context"
	"errors"
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
// token, or one with manage_slash_commands in the team).
type Registrar interface {
	RegisterCommand(ctx context.Context, team string, cmd mattermost.SlashCommand) (mattermost.SlashCommand, error)
}

// ErrOtherToken means the team already had a /calstatus command whose token is not among the ones
// given: Register updated its URL and returns that token, which must be added to
// MATTERMOST_SLASH_TOKEN (comma-separated) — or the command deleted and registered again.
var ErrOtherToken = errors.New("the team's existing /calstatus command has a token of its own")

// Register adds the /calstatus command to a team (by name, or id) pointing at appURL's
// SlashCommand function (https://<app>/api/SlashCommand), or updates the team's existing one, and
// returns the command's token for MATTERMOST_SLASH_TOKEN.
//
// token is MATTERMOST_SLASH_TOKEN as it is (empty, one token, or several comma-separated): a new
// command gets its first token, so one token can serve every team; with none Mattermost makes one.
// An existing command keeps its token (Mattermost never changes it on update): if that is not one
// of token's, Register returns it with ErrOtherToken.
func Register(ctx context.Context, client Registrar, team, appURL, token string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(appURL))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("app URL %q: want https://<app host>", appURL)
	}
	var tokens []string
	for _, t := range strings.Split(token, ",") {
		if t = strings.TrimSpace(t); t != "" {
			if len(t) != 26 {
				return "", errors.New("MATTERMOST_SLASH_TOKEN: a token is 26 letters and digits")
			}
			tokens = append(tokens, t)
		}
	}
	cmd := mattermost.SlashCommand{Trigger: Trigger, URL: strings.TrimRight(u.String(), "/") + Route,
		DisplayName: "calstatus", Description: "Your Outlook calendar sets your Mattermost status",
		AutocompleteHint: "[status | off | on | pause 2h | help]", AutocompleteDesc: "calendar → status: see what it does, turn it off, on, or pause it"}
	if len(tokens) > 0 {
		cmd.Token = tokens[0]
	}
	got, err := client.RegisterCommand(ctx, team, cmd)
	if err != nil {
		return "", err
	}
	if len(tokens) > 0 && !got.Created {
		for _, t := range tokens {
			if t == got.Token {
				return got.Token, nil
			}
		}
		return got.Token, fmt.Errorf("team %s: %w", team, ErrOtherToken)
	}
	return got.Token, nil
}
