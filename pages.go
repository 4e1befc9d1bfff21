package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/calstatus/calstatus/handler"
	"github.com/calstatus/calstatus/internal/consent"
	"github.com/calstatus/calstatus/internal/graph"
	"github.com/calstatus/calstatus/internal/slash"
	"github.com/calstatus/calstatus/internal/statuspage"
	"github.com/calstatus/calstatus/internal/store"
)

// pages wires the HTTP-triggered functions.
func (a *app) pages(now func() time.Time) handler.Pages {
	cons := &consent.Handler{Store: a.store, TenantID: a.cfg.TenantID, ClientID: a.cfg.ClientID,
		AuthorityHost: a.cfg.AuthorityHost, Now: now,
		Prober: consent.GraphProber{Schedules: a.probeSchedule, Email: a.mm.SampleEmail}}
	status := &statuspage.Page{History: a.store, Queue: a.transitions, Consent: consentRecords{a.store}, Switch: pauseSwitch{a}, Now: now}
	if a.cfg.Schedule != nil {
		t := now()
		status.Interval = a.cfg.Schedule.Next(a.cfg.Schedule.Next(t)).Sub(a.cfg.Schedule.Next(t))
	}
	slashCommand := &slash.Handler{Token: a.cfg.MattermostSlashToken, Store: a.store, Users: a.mm,
		Schedules: slash.GraphSchedules(a.graph), Policy: a.policy(), Lookahead: a.cfg.Lookahead, Now: now}
	return handler.Pages{AdminConsent: cons.Page, AdminConsentCallback: cons.Callback, Status: status.Serve,
		SlashCommand: slashCommand.Serve}
}

// registerCommand is `calstatus register-command TEAM APP_URL`: it adds (or updates) the
// /calstatus slash command in a team and prints the token for MATTERMOST_SLASH_TOKEN.
func registerCommand(ctx context.Context, log *slog.Logger, args []string) error {
	if len(args) != 2 {
		return errors.New("usage: calstatus register-command TEAM https://<app host>")
	}
	a, err := wire(ctx, log)
	if err != nil {
		return err
	}
	token, err := slash.Register(ctx, a.mm, args[0], args[1], a.cfg.MattermostSlashToken)
	if err != nil && !errors.Is(err, slash.ErrOtherToken) {
		return err
	}
	fmt.Printf("/calstatus is registered in team %s.\n", args[0])
	if err != nil || a.cfg.MattermostSlashToken == "" {
		fmt.Printf("Add its token to MATTERMOST_SLASH_TOKEN (comma-separated with others): %s\n", token)
	}
	return nil
}

// probeSchedule asks Graph for one user's availability: the failure class if Graph answered for
// them with an error, the error if the call failed.
func (a *app) probeSchedule(ctx context.Context, email string) (string, error) {
	now := time.Now().UTC()
	res, err := a.graph.GetSchedules(ctx, []string{email}, graph.Window{Start: now.Truncate(time.Minute), End: now.Add(time.Hour)})
	if err != nil {
		return "", err
	}
	if len(res.Failures) > 0 {
		return res.Failures[0].Class, nil
	}
	return "", nil
}

// consentRecords gives the status page the consent on record.
type consentRecords struct{ store *store.Store }

func (c consentRecords) Consent(ctx context.Context) (statuspage.Consent, bool, error) {
	r, found, err := c.store.Consent(ctx)
	return statuspage.Consent{Tenant: r.Tenant, At: r.At, Probe: r.Probe, ProbedAt: r.ProbedAt}, found, err
}

// pauseSwitch is the status page's pause switch: on when SYNC_PAUSED is, else as stored.
type pauseSwitch struct{ a *app }

func (p pauseSwitch) Paused(ctx context.Context) (bool, error) { return p.a.paused(ctx) }

func (p pauseSwitch) SetPaused(ctx context.Context, on bool, by string, at time.Time) error {
	return p.a.store.SetPaused(ctx, on, by, at)
}
