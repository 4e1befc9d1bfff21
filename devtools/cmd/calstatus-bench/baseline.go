// The baseline follows mattermost/mattermost-plugin-mscalendar's status sync job:
//   - calendar/engine/availability.go: SyncAll → syncUsers → retrieveUsersToSync →
//     GetCalendarViews (one window, now to now+10 min, for every user), then setUserStatuses: one
//     PluginAPI.GetMattermostUserStatusesByIds for all the users, and per user
//     setStatusFromCalendarView (a status write only on a change) and
//     setCustomStatusFromCalendarView (with an event: GetMattermostUser, then
//     UpdateMattermostUserCustomStatus on every run; without one, RemoveMattermostUserCustomStatus
//     if it had set one);
//   - msgraph/get_default_calendar_view.go: DoBatchViewCalendarRequests (a $batch of up to 20
//     GET /Users/{id}/calendarView?startDateTime&endDateTime&$top=20, prepareBatchRequests in
//     msgraph/batch_request.go, the batches one after another, no retry: a failed sub-request fails
//     its user for the run, a failed $batch the whole run);
//   - calendar/utils/pluginapi/api.go: the Mattermost calls above.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/internal/calendar"
	"github.com/calstatus/calstatus/internal/config"
	"github.com/calstatus/calstatus/internal/engine"
	"github.com/calstatus/calstatus/internal/graph"
	"github.com/calstatus/calstatus/internal/mattermost"
	"github.com/mattermost/mattermost-server/v6/model"
)

// viewsPerBatch is the plugin's maxNumRequestsPerBatch: one calendarView sub-request per user.
const viewsPerBatch = 20

// baseline syncs like the official Mattermost calendar plugin does: one process; the users'
// calendars read through calendarView, one $batch of 20 (one sub-request per user) after another;
// the statuses of all the users read in one Mattermost call; then the changes one by one, and the
// custom status of every user in a meeting set again on every cycle (after reading the user). It
// decides with calstatus's own engine (state kept in memory, as the plugin keeps its own in its KV
// store), so the two differ only in how they do their I/O.
type baseline struct {
	mm       *mattermost.Client
	api      *model.Client4 // for the plugin's own user read and custom status call
	graph    *http.Client   // trusts the simulator's CA
	graphURL string
	cred     azcore.TokenCredential
	state    map[string]engine.State
}

func newBaseline(sim *graphsim.Server, mmURL, token string) (*baseline, error) {
	cred, err := graph.NewCredential(graph.CredentialConfig{TenantID: sim.TenantID(), ClientID: sim.ClientID(),
		ClientSecret: sim.ClientSecret(), AuthorityHost: sim.URL(), Transport: sim.Client()})
	if err != nil {
		return nil, err
	}
	api := model.NewAPIv4Client(mmURL)
	api.SetToken(token)
	return &baseline{mm: mattermost.New(mmURL, token, nil), api: api, graph: sim.Client(), graphURL: sim.GraphURL(),
		cred: cred, state: map[string]engine.State{}}, nil
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

	// Graph: one window for the whole run (the plugin's and calstatus's are both 10 minutes), the
	// $batch calls one after another. A user whose sub-request failed (no mailbox, throttled) has
	// no availability: the plugin counts them failed and tries again next run.
	now := time.Now().UTC()
	w := graph.Window{Start: now.Truncate(time.Minute), End: now.Add(config.DefaultLookahead)}
	avail := make(map[string]calendar.Availability, len(users)) // by user id
	for i := 0; i < len(users); i += viewsPerBatch {
		if err := b.viewBatch(ctx, users[i:min(i+viewsPerBatch, len(users))], w, avail); err != nil {
			return res, fmt.Errorf("baseline: calendarView $batch: %w", err)
		}
	}

	// Mattermost: every user's status in one call (the client sends all the ids in one
	// POST /users/status/ids), then the changes one by one.
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	statuses, err := b.mm.Statuses(ctx, ids)
	if err != nil {
		res.Failed = len(users) // the plugin gives the run up: nothing is changed
	} else {
		for _, u := range users {
			av, ok := avail[u.ID]
			if !ok {
				res.Failed++
				continue
			}
			st, ok := statuses[u.ID]
			if !ok {
				res.Failed++
				continue
			}
			cur := engine.Current{Status: st.Status, Manual: st.Manual, DNDEndTime: st.DNDEnd}
			if cs := u.CustomStatus; cs != nil {
				cur.Custom = &engine.CustomStatus{Emoji: cs.Emoji, Text: cs.Text, ExpiresAt: cs.ExpiresAt}
			}
			// Decided as of the calendars' read, as the plugin decides from the events it read.
			d := engine.Decide(engine.Input{Now: now, Availability: av, Current: cur, State: b.state[u.ID], Policy: engine.DefaultPolicy})
			// A user's Mattermost error is the user's: counted, and the plugin goes on.
			if err := b.apply(ctx, u, d, len(av.ItemsAt(now)) > 0); err != nil {
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
	// res.Retries stays 0: the plugin retries nothing.
	var lastWrite time.Time
	res.MMReads, res.MMWrites, _, lastWrite = mm.take()
	res.CycleS = later(end, lastWrite).Sub(start).Seconds()
	return res, nil
}

// viewBatch reads the calendars of up to 20 users in one $batch of calendarView sub-requests, as
// DoBatchViewCalendarRequests builds it, and puts the availability of those answered in avail. An
// error means the $batch itself failed.
func (b *baseline) viewBatch(ctx context.Context, users []mattermost.User, w graph.Window, avail map[string]calendar.Availability) error {
	tok, err := b.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{graphsim.GraphScope}}) // cached
	if err != nil {
		return err
	}
	type subRequest struct {
		Body    any               `json:"body"`
		Headers map[string]string `json:"headers"`
		ID      string            `json:"id"`
		URL     string            `json:"url"`
		Method  string            `json:"method"`
	}
	q := url.Values{}
	q.Add("startDateTime", w.Start.Format(time.RFC3339))
	q.Add("endDateTime", w.End.Format(time.RFC3339))
	q.Add("$top", "20")
	reqs := make([]subRequest, len(users))
	for i, u := range users {
		// The plugin's id is the user's remote id, unique; the index is, too, whatever the emails.
		reqs[i] = subRequest{Headers: map[string]string{}, ID: strconv.Itoa(i), Method: http.MethodGet,
			URL: "/Users/" + url.PathEscape(u.Email) + "/calendarView?" + q.Encode()}
	}
	body, err := json.Marshal(map[string]any{"requests": reqs})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.graphURL+"/$batch", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err := b.graph.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %.200s", resp.StatusCode, data)
	}
	var answer struct {
		Responses []struct {
			ID     string          `json:"id"`
			Status int             `json:"status"`
			Body   json.RawMessage `json:"body"`
		} `json:"responses"`
	}
	if err := json.Unmarshal(data, &answer); err != nil {
		return err
	}
	for _, sub := range answer.Responses {
		i, err := strconv.Atoi(sub.ID)
		if err != nil || i < 0 || i >= len(users) || sub.Status != http.StatusOK {
			continue
		}
		if av, err := viewAvailability(strings.ToLower(users[i].Email), sub.Body); err == nil {
			avail[users[i].ID] = av
		}
	}
	return nil
}

// viewAvailability turns a calendarView answer into calstatus's Availability, as internal/graph
// does a getSchedule's items: busy, tentative, out-of-office and working-elsewhere events kept
// (free ones and cancelled ones skipped), private ones without their subject. One unreadable
// event fails the user, as one unreadable schedule item does in calstatus.
func viewAvailability(email string, body json.RawMessage) (calendar.Availability, error) {
	var v struct {
		Value []struct {
			Subject     string       `json:"subject"`
			ShowAs      string       `json:"showAs"`
			Sensitivity string       `json:"sensitivity"`
			IsCancelled bool         `json:"isCancelled"`
			Start       viewDateTime `json:"start"`
			End         viewDateTime `json:"end"`
		} `json:"value"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return calendar.Availability{}, err
	}
	items := make([]calendar.Event, 0, len(v.Value))
	for _, e := range v.Value {
		st := calendar.ParseStatus(e.ShowAs)
		switch {
		case e.IsCancelled:
			continue
		case st != calendar.Busy && st != calendar.Tentative && st != calendar.OutOfOffice && st != calendar.WorkingElsewhere:
			continue
		}
		from, err := e.Start.time()
		if err != nil {
			return calendar.Availability{}, fmt.Errorf("start: %w", err)
		}
		to, err := e.End.time()
		if err != nil {
			return calendar.Availability{}, fmt.Errorf("end: %w", err)
		}
		private := strings.EqualFold(e.Sensitivity, "private") || strings.EqualFold(e.Sensitivity, "confidential")
		items = append(items, calendar.Event{Start: from, End: to, Status: st, Subject: e.Subject, Private: private})
	}
	return calendar.NewAvailability(email, items), nil
}

// viewDateTime is an event's start or end; calendarView answers in UTC unless asked otherwise.
type viewDateTime struct {
	DateTime string `json:"dateTime"`
	TimeZone string `json:"timeZone"`
}

func (d viewDateTime) time() (time.Time, error) { return graph.ParseDateTime(d.DateTime, d.TimeZone) }

// apply makes the changes as the plugin does. The status: as decided. The custom status: set
// again through PUT …/status/custom (which also files it among the user's recent ones) for every
// user with one of ours to show, changed or not, after reading the user, as
// setCustomStatusFromCalendarView does on every run for a user with an event; a user in an event
// showing their own custom status is read and left alone; one of ours no longer wanted is removed
// (DELETE …/status/custom, recents left as they are).
func (b *baseline) apply(ctx context.Context, u mattermost.User, d engine.Decision, inEvent bool) error {
	if s := d.SetStatus; s != nil {
		if _, err := b.mm.SetStatus(ctx, u.ID, mattermost.StatusChange{Via: s.Via, Status: s.Status, DNDEnd: s.DNDEndTime}); err != nil {
			return err
		}
	}
	if d.ClearCustom {
		return b.mm.ClearCustomStatus(ctx, u)
	}
	show := d.SetCustom
	if ns := d.NewState; show == nil && (ns.CustomEmoji != "" || ns.CustomText != "") {
		show = &engine.CustomStatus{Emoji: ns.CustomEmoji, Text: ns.CustomText, ExpiresAt: ns.CustomUntil}
	}
	if show == nil && !inEvent {
		return nil
	}
	if _, _, err := b.api.GetUser(u.ID, ""); err != nil { // the plugin's GetMattermostUser
		return err
	}
	if show == nil {
		return nil
	}
	cs := &model.CustomStatus{Emoji: show.Emoji, Text: show.Text}
	if !show.ExpiresAt.IsZero() {
		cs.Duration, cs.ExpiresAt = "date_and_time", show.ExpiresAt.UTC().Truncate(time.Second)
	}
	_, _, err := b.api.UpdateUserCustomStatus(u.ID, cs)
	return err
}
