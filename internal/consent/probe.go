package consent

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/calstatus/calstatus/internal/graph"
)

// Outcome is what a check of calstatus's Graph access found.
type Outcome string

const (
	// ProbeOK: Graph answered a one-user getSchedule.
	ProbeOK Outcome = "ok"
	// ProbeNotPropagated: Entra ID does not see the consent yet (it takes a minute or more to
	// reach every Microsoft service after it is granted).
	ProbeNotPropagated Outcome = "not_propagated"
	// ProbeNoPermission: Graph answered but refuses to read calendars: the application
	// permission Calendars.ReadBasic.All is missing (or its consent has not reached Graph yet).
	ProbeNoPermission Outcome = "no_permission"
	// ProbeWrongTenant: Entra ID does not know the configured tenant.
	ProbeWrongTenant Outcome = "wrong_tenant"
	// ProbeError: anything else; Detail says what.
	ProbeError Outcome = "error"
)

// ProbeResult is a check's outcome and, for people, what Microsoft said.
type ProbeResult struct {
	Outcome Outcome
	// Detail is one line from Entra ID, Graph or Mattermost; it is logged and, for ProbeError,
	// recorded for the Status page. It may name a mailbox or an internal URL: never on an
	// anonymous page. It must never hold a secret.
	Detail string
	// Code is Microsoft's error code in Detail (AADSTS…, Graph's Error…, or the failure class
	// calstatus gave the mailbox's answer): what the anonymous pages show of it.
	Code string
	// Presence is what the check of Teams presence found ("" when it is not checked: no setting
	// reads presence); PresenceDetail is Graph's answer, logged like Detail, never on a page.
	Presence       PresenceOutcome
	PresenceDetail string
}

// PresenceOutcome is what a check of the Teams presence permissions found. Calendar sync does not
// depend on them: it never changes Outcome.
type PresenceOutcome string

const (
	// PresenceGranted: Graph answered one user's presence.
	PresenceGranted PresenceOutcome = "granted"
	// PresenceNotGranted: Graph refused: Presence.Read.All or User.Read.All is missing (or its
	// consent has not reached Graph yet).
	PresenceNotGranted PresenceOutcome = "not_granted"
	// PresenceNotChecked: the check of calendars stopped first (no token, no user to check with).
	PresenceNotChecked PresenceOutcome = "not_checked"
	// PresenceError: anything else; PresenceDetail says what.
	PresenceError PresenceOutcome = "error"
)

// errorCode finds what the anonymous pages may show of a detail: codes, never names or addresses.
var errorCode = regexp.MustCompile(`AADSTS\d{4,8}|\bError[A-Z][A-Za-z]+\b|\b(?:no_access|unauthorized|not_found|throttled|server_error)\b`)

// Public is the result as the anonymous pages show it: the outcomes and Microsoft's error code.
func (p ProbeResult) Public() ProbeResult {
	return ProbeResult{Outcome: p.Outcome, Code: errorCode.FindString(p.Detail), Presence: p.Presence}
}

// Record is the result as ConsentRecord.Probe keeps it: the outcome, or "error: <detail>". The
// presence outcome is not kept: the Status page reads the record, and calendar sync is its subject.
func (p ProbeResult) Record() string {
	if p.Outcome == ProbeError {
		return "error: " + p.Detail
	}
	return string(p.Outcome)
}

// parseRecord reads ConsentRecord.Probe back ("" when no check ran).
func parseRecord(s string) ProbeResult {
	if d, ok := strings.CutPrefix(s, "error:"); ok {
		return ProbeResult{Outcome: ProbeError, Detail: strings.TrimSpace(d)}
	}
	return ProbeResult{Outcome: Outcome(s)}
}

// Prober checks that calstatus can read availability through Graph now. An error means the check
// could not run; the handler shows and records it as ProbeError.
type Prober interface {
	Probe(ctx context.Context) (ProbeResult, error)
}

// GraphProber checks Graph access with a one-user getSchedule, and, when a setting reads Teams
// presence, that user's presence.
type GraphProber struct {
	// Schedules asks Graph for one user's availability. class is the graph.Failure class Graph
	// gave that user ("" when it answered); err is what graph.Client.GetSchedules returned.
	Schedules func(ctx context.Context, email string) (class string, err error)
	// Presence reads one user's Teams presence the way the presence settings do (the user's
	// object id by email, then getPresencesByUserId), class and err as Schedules'. nil: no
	// setting reads presence, and it is not checked.
	Presence func(ctx context.Context, email string) (class string, err error)
	// Email names a user to check with (e.g. the first Mattermost user with an email).
	Email func(ctx context.Context) (string, error)
}

// Entra ID's codes that mean the app is not (yet) consented in the tenant: AADSTS650xx (consent
// missing or declined), 7000229 (no service principal for the app in the tenant yet), 500011 (the
// resource's principal not found in the tenant), 700016 (the app not found in the directory).
var (
	notConsented = regexp.MustCompile(`AADSTS(650\d\d|7000229|500011|700016)\b`)
	noTenant     = regexp.MustCompile(`AADSTS(90002|90023|900023)\b`)
)

// Probe runs the check.
func (p GraphProber) Probe(ctx context.Context) (ProbeResult, error) {
	if p.Schedules == nil || p.Email == nil {
		return ProbeResult{}, errors.New("calstatus cannot check Graph access: not configured")
	}
	email, err := p.Email(ctx)
	if err != nil {
		return ProbeResult{}, errors.New("finding a user to check with: " + err.Error())
	}
	var res ProbeResult
	tokened := false
	if email == "" {
		res = ProbeResult{Outcome: ProbeError, Detail: "no user with an email to check Graph access with"}
	} else {
		res, tokened = p.calendar(ctx, email)
	}
	if p.Presence != nil {
		// Without a token the presence call would only fail the same way.
		res.Presence, res.PresenceDetail = PresenceNotChecked, "the check of calendars stopped first"
		if tokened {
			res.Presence, res.PresenceDetail = p.presence(ctx, email)
		}
	}
	return res, nil
}

// calendar checks one user's getSchedule; tokened is false when Entra ID gave no token.
func (p GraphProber) calendar(ctx context.Context, email string) (res ProbeResult, tokened bool) {
	class, err := p.Schedules(ctx, email)
	switch {
	case err != nil && graph.IsCredentialError(err):
		msg := graph.BriefAuthError(err)
		switch {
		case noTenant.MatchString(msg):
			return ProbeResult{Outcome: ProbeWrongTenant, Detail: brief(msg)}, false
		case notConsented.MatchString(msg) || strings.Contains(strings.ToLower(msg), "consent"):
			return ProbeResult{Outcome: ProbeNotPropagated, Detail: brief(msg)}, false
		}
		return ProbeResult{Outcome: ProbeError, Detail: brief(err.Error())}, false
	case class == "no_access" || class == "unauthorized":
		d := "Graph refused to read the calendar (" + class + ")"
		if err != nil {
			d += ": " + err.Error()
		}
		return ProbeResult{Outcome: ProbeNoPermission, Detail: brief(d)}, true
	case err != nil:
		return ProbeResult{Outcome: ProbeError, Detail: brief(err.Error())}, true
	case class != "":
		// Graph let calstatus in but could not answer for this user (no mailbox, throttled, ...).
		return ProbeResult{Outcome: ProbeError, Detail: "Graph could not answer for the user checked (" + class + ")"}, true
	}
	return ProbeResult{Outcome: ProbeOK}, true
}

// presence checks one user's Teams presence.
func (p GraphProber) presence(ctx context.Context, email string) (PresenceOutcome, string) {
	class, err := p.Presence(ctx, email)
	switch {
	case class == "forbidden" || class == "no_access" || class == "unauthorized":
		d := "Graph refused to read Teams presence (" + class + ")"
		if err != nil {
			d += ": " + err.Error()
		}
		return PresenceNotGranted, brief(d)
	case err != nil:
		return PresenceError, brief(err.Error())
	case class != "":
		return PresenceError, "Graph could not answer presence for the user checked (" + class + ")"
	}
	return PresenceGranted, ""
}

// brief keeps the first line of a message, at most 300 bytes (whole runes).
func brief(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) <= 300 {
		return s
	}
	cut := 300
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
