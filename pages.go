package main

import (
	"context"
	"strings"
	"time"

	"github.com/calstatus/calstatus/handler"
	"github.com/calstatus/calstatus/internal/config"
	"github.com/calstatus/calstatus/internal/consent"
	"github.com/calstatus/calstatus/internal/graph"
	"github.com/calstatus/calstatus/internal/mattermost"
	"github.com/calstatus/calstatus/internal/slash"
	"github.com/calstatus/calstatus/internal/statuspage"
	"github.com/calstatus/calstatus/internal/store"
	"github.com/calstatus/calstatus/internal/web"
)

// pages wires the HTTP-triggered functions.
func (a *app) pages(now func() time.Time) handler.Pages {
	cons := &consent.Handler{Store: a.store, TenantID: a.cfg.TenantID, ClientID: a.cfg.ClientID,
		AuthorityHost: a.cfg.AuthorityHost, Now: now, Origin: web.Origin{Public: a.cfg.PublicURL, TrustForwarded: a.cfg.TrustForwardedHeaders},
		Prober: a.prober(), Permissions: a.cfg.GraphPermissions()}
	status := &statuspage.Page{History: a.store, Queue: a.transitions, Consent: consentRecords{a.store},
		Settings: a.store, Switch: a.store, SyncPaused: a.cfg.Paused, Now: now, Setup: a.setupCheck()}
	if a.cfg.Schedule != nil {
		t := now()
		status.Interval = a.cfg.Schedule.Next(a.cfg.Schedule.Next(t)).Sub(a.cfg.Schedule.Next(t))
	}
	slashCommand := &slash.Handler{Token: a.cfg.MattermostSlashToken, Store: a.store, Users: a.mm,
		Schedules: slash.GraphSchedules(a.graph), Policy: a.policy(), Lookahead: a.cfg.Lookahead, Now: now,
		MattermostURL: a.cfg.MattermostURL, Presence: a.cfg.PresenceSync, AutomaticReplies: a.cfg.AutomaticRepliesSync}
	a.slash = slashCommand
	return handler.Pages{AdminConsent: cons.Page, AdminConsentCallback: cons.Callback, Status: status.Serve,
		SlashCommand: slashCommand.Serve}
}

// probeSchedule asks Graph for one user's availability: the failure class if Graph answered for
// them with an error, the error if the call failed.
// prober checks the Graph permissions the settings need with one user's calendar (and presence,
// where a setting reads it).
func (a *app) prober() consent.GraphProber { return graphProber(a.cfg, a.graph, a.mm) }

func graphProber(cfg config.Config, gc *graph.Client, mm *mattermost.Client) consent.GraphProber {
	p := consent.GraphProber{Schedules: func(ctx context.Context, email string) (string, error) {
		return probeScheduleWith(ctx, gc, email)
	}, Email: mm.SampleEmail}
	if cfg.ReadsPresence() {
		p.Presence = func(ctx context.Context, email string) (string, error) { return probePresenceWith(ctx, gc, email) }
	}
	return p
}

// probePresenceWith reads one user's presence as the worker does: the object id, then presence.
func probePresenceWith(ctx context.Context, gc *graph.Client, email string) (string, error) {
	ids, err := gc.LookupUserIDs(ctx, []string{email})
	if err != nil {
		return "", err
	}
	if len(ids.Failures) > 0 {
		return ids.Failures[0].Class, nil
	}
	id, ok := ids.IDs[strings.ToLower(email)]
	if !ok {
		return "not_found", nil
	}
	res, err := gc.GetPresences(ctx, []string{id})
	if err != nil {
		return "", err
	}
	if len(res.Failures) > 0 {
		return res.Failures[0].Class, nil
	}
	return "", nil
}

func probeScheduleWith(ctx context.Context, gc *graph.Client, email string) (string, error) {
	now := time.Now().UTC()
	res, err := gc.GetSchedules(ctx, []string{email}, graph.Window{Start: now.Truncate(time.Minute), End: now.Add(time.Hour)})
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
