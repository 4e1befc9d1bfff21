package main

import (
	"context"
	"fmt"
	"time"

	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/internal/config"
	"github.com/calstatus/calstatus/internal/engine"
	"github.com/calstatus/calstatus/internal/graph"
	"github.com/calstatus/calstatus/internal/mattermost"
)

// baseline syncs like the official Mattermost calendar plugin does: one process, 20 users per
// Graph call and the calls one after another, one Mattermost status read per user, then the
// changes one by one. It decides with calstatus's own engine (state kept in memory, as the plugin
// keeps its own in its KV store), so the two differ only in how they do their I/O.
type baseline struct {
	mm    *mattermost.Client
	graph *graph.Client
	state map[string]engine.State
}

func newBaseline(sim *graphsim.Server, mmURL, token string) (*baseline, error) {
	cred, err := graph.NewCredential(graph.CredentialConfig{TenantID: sim.TenantID(), ClientID: sim.ClientID(),
		ClientSecret: sim.ClientSecret(), AuthorityHost: sim.URL(), Transport: sim.Client()})
	if err != nil {
		return nil, err
	}
	gc, err := graph.New(graph.Config{BaseURL: sim.GraphURL(), Credential: cred, Transport: sim.Client().Transport})
	if err != nil {
		return nil, err
	}
	return &baseline{mm: mattermost.New(mmURL, token, nil), graph: gc, state: map[string]engine.State{}}, nil
}

// cycle runs one sync of every user and reports what it cost (Graph and Mattermost calls are
// counted by the simulator and the proxy, as for calstatus).
func (b *baseline) cycle(ctx context.Context, sim *graphsim.Server, mm *counter) (cycleResult, error) {
	sim.ResetStats()
	start := time.Now()
	users, err := b.mm.ListSyncUsers(ctx)
	if err != nil {
		return cycleResult{}, err
	}
	res := cycleResult{ListUsersS: time.Since(start).Seconds()}
	for i := 0; i < len(users); i += graph.SchedulesPerRequest {
		chunk := users[i:min(i+graph.SchedulesPerRequest, len(users))]
		emails := make([]string, len(chunk))
		for j, u := range chunk {
			emails[j] = u.Email
		}
		now := time.Now().UTC()
		// One call for the chunk's 20 users (the client sends it as a $batch of one getSchedule).
		sched, err := b.graph.GetSchedules(ctx, emails, graph.Window{Start: now.Truncate(time.Minute), End: now.Add(config.DefaultLookahead)})
		if err != nil {
			return res, fmt.Errorf("baseline: getSchedule: %w", err)
		}
		res.Retries += sched.Retries
		for _, u := range chunk {
			av, ok := sched.Availability[u.Email]
			if !ok {
				res.Failed++ // no mailbox
				continue
			}
			// A user's Mattermost error is the user's: counted, and the plugin goes on.
			st, err := b.mm.UserStatus(ctx, u.ID)
			if err != nil {
				res.Failed++
				continue
			}
			cur := engine.Current{Status: st.Status, Manual: st.Manual, DNDEndTime: st.DNDEnd}
			if cs := u.CustomStatus; cs != nil {
				cur.Custom = &engine.CustomStatus{Emoji: cs.Emoji, Text: cs.Text, ExpiresAt: cs.ExpiresAt}
			}
			d := engine.Decide(engine.Input{Now: now, Availability: av, Current: cur, State: b.state[u.ID], Policy: engine.DefaultPolicy})
			if err := b.apply(ctx, u.ID, d); err != nil {
				res.Failed++
				continue
			}
			if d.Changes() {
				res.Changed++
			}
			b.state[u.ID] = d.NewState
		}
	}
	end := time.Now()
	s := sim.Stats()
	res.GraphCalls, res.SubRequests, res.Throttled = s.Requests["$batch"], s.SubRequests, s.Throttled
	var lastWrite time.Time
	res.MMReads, res.MMWrites, _, lastWrite = mm.take()
	if lastWrite.After(end) || lastWrite.IsZero() {
		lastWrite = end
	}
	res.CycleS = lastWrite.Sub(start).Seconds()
	return res, nil
}

func (b *baseline) apply(ctx context.Context, id string, d engine.Decision) error {
	if s := d.SetStatus; s != nil {
		if _, err := b.mm.SetStatus(ctx, id, mattermost.StatusChange{Via: s.Via, Status: s.Status, DNDEnd: s.DNDEndTime}); err != nil {
			return err
		}
	}
	switch {
	case d.SetCustom != nil:
		return b.mm.SetCustomStatus(ctx, id, mattermost.CustomStatus{Emoji: d.SetCustom.Emoji, Text: d.SetCustom.Text, ExpiresAt: d.SetCustom.ExpiresAt})
	case d.ClearCustom:
		return b.mm.ClearCustomStatus(ctx, id)
	}
	return nil
}
