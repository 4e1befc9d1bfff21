package selfcheck

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/calstatus/calstatus/internal/mattermost"
)

// Mattermost is what the checks ask Mattermost (mattermost.Client). None of it writes.
type Mattermost interface {
	// Me reads the token's own account.
	Me(ctx context.Context) (mattermost.Me, error)
	// Statuses reads users' statuses (POST /users/status/ids).
	Statuses(ctx context.Context, ids []string) (map[string]mattermost.Status, error)
	// RolePermissions returns what the named roles allow together.
	RolePermissions(ctx context.Context, roles []string) (map[string]bool, error)
	// CountUsers reads the user counts the planner compares its roster with.
	CountUsers(ctx context.Context) (mattermost.UserCounts, error)
}

// editOthers is the permission setting another user's status needs.
const editOthers = "edit_other_users"

const tokenFix = "Create an access token for a system admin, or for a bot account given the system_admin role " +
	"(Profile > Security > Personal Access Tokens, or Integrations > Bot Accounts), and put it in the Key Vault secret MATTERMOST_TOKEN's reference names " +
	"(or in MATTERMOST_TOKEN itself); then restart the function app. Personal access tokens must be enabled " +
	"(System Console > Integrations > Integration Management)."

func (r *run) mattermost(ctx context.Context) {
	rest := []string{CheckMattermostRead, CheckMattermostWrite, CheckMattermostCounts}
	skipRest := func(why string) {
		for _, id := range rest {
			r.skip(id, why)
		}
	}
	if r.d.Mattermost == nil {
		r.skip(CheckMattermostToken, "MATTERMOST_URL or MATTERMOST_TOKEN is not set (see Settings)")
		skipRest("needs the Mattermost token (see Mattermost: token)")
		return
	}
	var me mattermost.Me
	err := r.within(ctx, func(ctx context.Context) error {
		var err error
		me, err = r.d.Mattermost.Me(ctx)
		return err
	})
	if err != nil {
		detail, fix := r.mattermostFailure(err, "checking the token")
		if r.isUnresolved("MATTERMOST_TOKEN") {
			fix = "MATTERMOST_TOKEN still reads a Key Vault reference: see Key Vault references."
		}
		r.problem(CheckMattermostToken, detail, fix)
		skipRest("needs the Mattermost token (see Mattermost: token)")
		return
	}
	who := "@" + me.Username
	if me.Bot {
		who += " (a bot)"
	}
	r.ok(CheckMattermostToken, fmt.Sprintf("Mattermost at %s accepts the token: it acts as %s with roles %s", r.d.MattermostURL, who, strings.Join(me.Roles, ", ")))

	// Reading statuses: the token's own, one user.
	err = r.within(ctx, func(ctx context.Context) error {
		_, err := r.d.Mattermost.Statuses(ctx, []string{me.ID})
		return err
	})
	if err != nil {
		detail, fix := r.mattermostFailure(err, "reading a status")
		r.problem(CheckMattermostRead, detail, fix)
	} else {
		r.ok(CheckMattermostRead, "read one user's status (POST /users/status/ids)")
	}

	// Setting others' statuses: edit_other_users, read from the token's roles (nothing is written).
	var perms map[string]bool
	err = r.within(ctx, func(ctx context.Context) error {
		var err error
		perms, err = r.d.Mattermost.RolePermissions(ctx, me.Roles)
		return err
	})
	admin := slices.Contains(me.Roles, "system_admin")
	const roleFix = "Give the account the system_admin role (System Console > User Management > Users > the account > Manage roles, " +
		"or mmctl roles system_admin <name>), or use a system admin's personal access token."
	switch {
	case err == nil && perms[editOthers]:
		r.ok(CheckMattermostWrite, fmt.Sprintf("its roles grant %s: it may set other users' statuses (checked without writing one)", editOthers))
	case err == nil:
		r.problem(CheckMattermostWrite, fmt.Sprintf("%s's roles (%s) do not grant %s: every status change calstatus makes is refused (403)", who, strings.Join(me.Roles, ", "), editOthers), roleFix)
	case admin:
		r.ok(CheckMattermostWrite, "it is a system admin, who may set other users' statuses (its roles could not be read: "+brief(err)+")")
	default:
		detail, _ := r.mattermostFailure(err, "reading the token's roles")
		r.problem(CheckMattermostWrite, detail+"; and it is not a system admin", roleFix)
	}

	// Counting users (the planner's roster check).
	var counts mattermost.UserCounts
	err = r.within(ctx, func(ctx context.Context) error {
		var err error
		counts, err = r.d.Mattermost.CountUsers(ctx)
		return err
	})
	if err != nil {
		detail, fix := r.mattermostFailure(err, "counting users")
		var merr *mattermost.Error
		if errors.As(err, &merr) && merr.Rejected() {
			fix = "Counting users needs sysconsole_read_user_management_users, which a system admin has: " + roleFix
		}
		r.problem(CheckMattermostCounts, detail+": the timer cannot plan a cycle without the counts", fix)
		return
	}
	r.ok(CheckMattermostCounts, fmt.Sprintf("%d active users, %d in all (bots included)", counts.Active, counts.All))
}

// mattermostFailure says what a failed call means and what to do.
func (r *run) mattermostFailure(err error, doing string) (detail, fix string) {
	var e *mattermost.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("Mattermost at %s gave no answer within %s (%s)", r.d.MattermostURL, r.timeout, doing),
			"Check MATTERMOST_URL (the address people open Mattermost at) and that Mattermost lets the function app in (its firewall or proxy)."
	case errors.As(err, &e) && e.Status == http.StatusUnauthorized:
		return fmt.Sprintf("Mattermost at %s rejects MATTERMOST_TOKEN (HTTP 401, %s): the token is wrong, revoked or expired, or its account is deactivated", r.d.MattermostURL, doing), tokenFix
	case errors.As(err, &e) && e.Status == http.StatusForbidden:
		return fmt.Sprintf("Mattermost at %s refuses the token (HTTP 403, %s)", r.d.MattermostURL, doing),
			"Use a system admin's token, or a bot account's given the system_admin role."
	case errors.As(err, &e) && e.Status == 0:
		return fmt.Sprintf("Mattermost at %s does not answer (%s): %s", r.d.MattermostURL, doing, brief(e.Err)),
			"Check MATTERMOST_URL (the address people open Mattermost at) and that Mattermost lets the function app in (its firewall or proxy)."
	case errors.As(err, &e):
		return fmt.Sprintf("Mattermost at %s answered HTTP %d (%s): %s", r.d.MattermostURL, e.Status, doing, brief(e.Err)),
			"Mattermost's own log says why."
	}
	return fmt.Sprintf("Mattermost at %s: %s: %s", r.d.MattermostURL, doing, brief(err)), "Mattermost's own log says why."
}
