// Package statuspage is the Status function: the health of the sync at a glance — admin consent,
// the last cycle, the shard queue, who is affected (the users failing now, how many turned
// calstatus off or paused it), charts of the last 24 hours drawn as inline SVG by the server, and
// the most recent errors. ?format=json gives the same data as JSON.
//
// The page is plain HTML and CSS from html/template (every value escaped: error texts come from
// remote systems), with no external assets and no script, served under a strict
// Content-Security-Policy. It never shows the request's URL or query: the function key is there.
package statuspage

import (
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/calstatus/calstatus/internal/queue"
	"github.com/calstatus/calstatus/internal/selfcheck"
	"github.com/calstatus/calstatus/internal/store"
	"github.com/calstatus/calstatus/internal/syncer"
	"github.com/calstatus/calstatus/internal/web"
)

// Window is how far back the page looks.
const Window = 24 * time.Hour

// DefaultInterval is the sync period assumed when it is neither set nor measurable.
const DefaultInterval = 5 * time.Minute

// MaxErrors is how many recent shard errors the page lists.
const MaxErrors = 10

// Consent is the admin consent on record.
type Consent struct {
	// Tenant is the Entra ID tenant that consented.
	Tenant string
	// At is when the consent was recorded.
	At time.Time
	// Probe is what the last check of Graph access found: "ok", "not_propagated",
	// "no_permission", "wrong_tenant" or "error: <detail>"; "" before the first check
	// (store.ConsentRecord's values).
	Probe string
	// ProbedAt is when that check ran (zero if unknown).
	ProbedAt time.Time
}

// History reads the cycle records (store.Store).
type History interface {
	Cycles(ctx context.Context, since time.Time) ([]store.CycleHistory, error)
}

// QueueHealth measures the shard queue (queue.Queue).
type QueueHealth interface {
	Health(ctx context.Context, now time.Time) (queue.Health, error)
}

// ConsentSource reads the admin consent on record; found is false when there is none.
type ConsentSource interface {
	Consent(ctx context.Context) (Consent, bool, error)
}

// Page is the Status function. Any source may be nil (that part of the page says it is not
// available).
type Page struct {
	History History
	Queue   QueueHealth
	Consent ConsentSource
	// Settings counts the users who turned calstatus off or paused it.
	Settings Settings
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Interval is the sync period (SYNC_SCHEDULE's). Zero: measured from the recorded cycles, or
	// DefaultInterval. A cycle older than twice the interval is overdue.
	Interval time.Duration
	// Switch, when set, is the pause switch: the page shows it and a POST with action=pause or
	// action=resume turns it (the page is behind the function's key).
	Switch Switch
	// SyncPaused is SYNC_PAUSED: the sync is paused whatever the switch says, and only the app
	// setting resumes it, so the page offers no Resume and refuses the switch.
	SyncPaused bool
	// Setup, when set, is the deployment's self-check: the page's Setup section and the report's
	// setup.
	Setup Setup
	// StartError, when set, is why calstatus could not start: only this page runs, with its Setup
	// section (the other sources are nil and not reported missing).
	StartError string
}

// Setup checks the deployment (selfcheck.Checker).
type Setup interface {
	Check(ctx context.Context) selfcheck.Report
}

// Switch is the sync's pause switch (store.Store).
type Switch interface {
	PauseSwitch(ctx context.Context) (store.PauseSwitch, error)
	// Pause turns it on, recording who turned it and when.
	Pause(ctx context.Context, by string, at time.Time) error
	ClearPauseSwitch(ctx context.Context) error
}

// anonymousCaller names a caller the platform did not name: the page is behind the function key.
const anonymousCaller = "function key"

// Report is the page's data: the HTML page shows it, ?format=json returns it.
type Report struct {
	GeneratedAt time.Time `json:"generated_at"`
	// Since is the start of the window the cycles and errors come from.
	Since    time.Time `json:"since"`
	Headline Headline  `json:"headline"`
	// Consent is null when it could not be read.
	Consent *ConsentState `json:"consent"`
	// LastCycle is the most recent cycle (null when none in the window).
	LastCycle *Cycle `json:"last_cycle"`
	// Queue is null when it could not be measured.
	Queue *QueueState `json:"queue"`
	// Cycles are the window's cycles, oldest first.
	Cycles []Cycle `json:"cycles"`
	// RecentErrors are the latest failed shard runs, newest first.
	RecentErrors []ShardError `json:"recent_errors"`
	// Affected is who the sync fails for now, and who turned it off or paused it.
	Affected Affected `json:"affected"`
	// IntervalS is the sync period the headline judges by, in seconds.
	IntervalS int `json:"interval_s"`
	// Problems are the parts of the page that could not be read (details in the logs).
	Problems []string `json:"problems"`
	// Paused: the sync is paused (no cycle, no writes), by the SYNC_PAUSED app setting
	// (PausedBySetting) or from this page (PausedFromPage, since PausedSince); both may hold.
	// Switchable: the page has the switch. Who paused is never part of the report.
	Paused          bool       `json:"paused"`
	PausedBySetting bool       `json:"paused_by_setting"`
	PausedFromPage  bool       `json:"paused_from_page"`
	PausedSince     *time.Time `json:"paused_since"`
	Switchable      bool       `json:"-"`
	// Setup is the deployment's self-check (null when the page has none); StartError is why
	// calstatus could not start ("" when it runs).
	Setup      *selfcheck.Report `json:"setup"`
	StartError string            `json:"start_error,omitempty"`
}

// Headline is the verdict: State is healthy, attention, stale or no_data; Notes are further
// findings after the first.
type Headline struct {
	State string   `json:"state"`
	Text  string   `json:"text"`
	Notes []string `json:"notes"`
}

// The headline states.
const (
	StateHealthy   = "healthy"
	StateAttention = "attention"
	StateStale     = "stale"
	StateNoData    = "no_data"
)

// ConsentState is the admin consent as the page shows it.
type ConsentState struct {
	Recorded bool       `json:"recorded"`
	Tenant   string     `json:"tenant,omitempty"`
	At       *time.Time `json:"at,omitempty"`
	Probe    string     `json:"probe,omitempty"`
	ProbedAt *time.Time `json:"probed_at,omitempty"`
	// ProbeText says what Probe means; ProbeOK is false when the check found a problem.
	ProbeText string `json:"probe_text,omitempty"`
	ProbeOK   bool   `json:"probe_ok"`
}

// Cycle is one cycle's summary (syncer.Summarize), with the field names of the "cycle summary"
// log line.
type Cycle struct {
	ID            string         `json:"cycle"`
	Started       time.Time      `json:"started"`
	Users         int            `json:"users"`
	Shards        int            `json:"shards"`
	ShardsOK      int            `json:"shards_ok"`
	ShardsFailed  int            `json:"shards_failed"`
	ShardsMissing int            `json:"shards_missing"`
	Changed       int            `json:"changed"`
	Failed        int            `json:"failed"`
	Failures      map[string]int `json:"failures"`
	GraphCalls    int            `json:"graph_calls"`
	Throttled     int            `json:"throttled"`
	Retries       int            `json:"retries"`
	// PresenceFailures counts by class the users whose Teams presence could not be read (only with
	// PRESENCE_SYNC or AUTOMATIC_REPLIES_SYNC on).
	PresenceFailures map[string]int `json:"presence_failures,omitempty"`
	// DurationMs runs from planning to the last shard's end (0 before any shard ended).
	DurationMs int64 `json:"duration_ms"`
	Complete   bool  `json:"complete"`
}

// QueueState is the shard queue's health, with the field names of the "queue health" log line.
type QueueState struct {
	Depth            int `json:"queue_depth"`
	PoisonDepth      int `json:"poison_depth"`
	OldestMessageAge int `json:"oldest_message_age_s"`
}

// ShardError is a failed shard run.
type ShardError struct {
	Time       time.Time `json:"time"`
	Cycle      string    `json:"cycle"`
	Shard      int       `json:"shard"`
	Attempt    int       `json:"attempt"`
	ErrorClass string    `json:"error_class"`
	Error      string    `json:"error"`
}

// Headers every answer carries: nothing is cached, nothing is loaded, the URL (which holds the
// function key) is never sent on as a referrer.
func headers(contentType string) map[string]string {
	return map[string]string{
		"Content-Type":            contentType,
		"Cache-Control":           "no-store",
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
	}
}

var _ web.Page = (&Page{}).Serve

// Serve answers a request: the HTML page, or with ?format=json the same data as JSON.
func (p *Page) Serve(ctx context.Context, log *slog.Logger, r web.Request) (web.Response, error) {
	switch strings.ToUpper(r.Method) {
	case "", http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		h := headers("text/plain; charset=utf-8")
		h["Allow"] = "GET, HEAD, POST"
		return web.Response{Status: http.StatusMethodNotAllowed, Body: "method not allowed\n", Headers: h}, nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if strings.EqualFold(r.Method, http.MethodPost) {
		if resp, handled := p.turn(ctx, log, r); handled {
			return resp, nil
		}
	}
	rep := p.Collect(ctx, log)
	var resp web.Response
	if strings.EqualFold(strings.TrimSpace(r.Query["format"]), "json") {
		body, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return web.Response{}, err
		}
		resp = web.Response{Status: http.StatusOK, Body: string(body) + "\n", Headers: headers("application/json")}
	} else {
		body, err := renderHTML(rep)
		if err != nil {
			return web.Response{}, err
		}
		resp = web.Response{Status: http.StatusOK, Body: body, Headers: headers("text/html; charset=utf-8")}
	}
	if strings.EqualFold(r.Method, http.MethodHead) {
		resp.Body = ""
	}
	return resp, nil
}

// Collect reads the sources (concurrently) and builds the report. A source that fails leaves its
// part empty and a problem named on the page; the error itself goes to the log only (it may hold
// addresses or details an admin page need not show).
func (p *Page) Collect(ctx context.Context, log *slog.Logger) Report {
	now := time.Now()
	if p.Now != nil {
		now = p.Now()
	}
	now = now.UTC()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rep := Report{GeneratedAt: now, Since: now.Add(-Window), Cycles: []Cycle{}, RecentErrors: []ShardError{}, Problems: []string{}}

	var (
		wg                           sync.WaitGroup
		history                      []store.CycleHistory
		health                       queue.Health
		consent                      Consent
		consentFound                 bool
		counts                       store.SettingsCounts
		historyErr, queueErr, conErr error
		settingsErr                  error
		setup                        selfcheck.Report
	)
	if p.Setup != nil {
		wg.Go(func() { setup = p.Setup.Check(ctx) })
	}
	if p.History != nil {
		wg.Go(func() { history, historyErr = p.History.Cycles(ctx, rep.Since) })
	}
	if p.Queue != nil {
		wg.Go(func() { health, queueErr = p.Queue.Health(ctx, now) })
	}
	if p.Consent != nil {
		wg.Go(func() { consent, consentFound, conErr = p.Consent.Consent(ctx) })
	}
	if p.Settings != nil {
		wg.Go(func() { counts, settingsErr = p.Settings.CountSettings(ctx, now) })
	}
	wg.Wait()

	if p.Setup != nil {
		rep.Setup = cleanSetup(setup)
	}
	rep.StartError = clean(p.StartError)
	switch {
	case p.History == nil && p.StartError != "": // calstatus is not running: only the setup is shown
	case p.History == nil:
		rep.Problems = append(rep.Problems, "the cycle records are not configured")
	case historyErr != nil:
		log.Warn("status page: could not read the cycle records", "error", historyErr.Error())
		rep.Problems = append(rep.Problems, "could not read the cycle records")
	}
	switch {
	case p.Queue == nil && p.StartError != "":
	case p.Queue == nil:
		rep.Problems = append(rep.Problems, "the shard queue is not configured")
	case queueErr != nil:
		log.Warn("status page: could not measure the shard queue", "error", queueErr.Error())
		rep.Problems = append(rep.Problems, "could not measure the shard queue")
	default:
		rep.Queue = &QueueState{Depth: health.Depth, PoisonDepth: health.PoisonDepth, OldestMessageAge: int(health.OldestAge.Seconds())}
	}
	switch {
	case p.Consent == nil && p.StartError != "":
	case p.Consent == nil:
		rep.Problems = append(rep.Problems, "the consent record is not configured")
	case conErr != nil:
		log.Warn("status page: could not read the consent record", "error", conErr.Error())
		rep.Problems = append(rep.Problems, "could not read the consent record")
	case !consentFound:
		rep.Consent = &ConsentState{}
	default:
		c := &ConsentState{Recorded: true, Tenant: clean(consent.Tenant), Probe: clean(consent.Probe)}
		c.ProbeText, c.ProbeOK = probeText(c.Probe)
		c.At, c.ProbedAt = timePtr(consent.At), timePtr(consent.ProbedAt)
		rep.Consent = c
	}
	rep.Affected = affected(history, rep.Since)
	switch {
	case p.Settings == nil: // the page says the counts are not available
	case settingsErr != nil:
		log.Warn("status page: could not count the users' settings", "error", settingsErr.Error())
		rep.Problems = append(rep.Problems, "could not count the users who turned calstatus off or paused it")
	default:
		rep.Affected.Settings = &SettingsState{Off: counts.Off, Paused: counts.Paused}
	}

	var failed []store.ShardReport
	for _, h := range history {
		if h.Plan.Started.Before(rep.Since) {
			continue
		}
		rep.Cycles = append(rep.Cycles, summarize(h))
		for _, r := range h.Shards {
			if r.Outcome == "failed" {
				failed = append(failed, r)
			}
		}
	}
	sort.SliceStable(rep.Cycles, func(i, j int) bool { return rep.Cycles[i].Started.Before(rep.Cycles[j].Started) })
	if n := len(rep.Cycles); n > 0 {
		last := rep.Cycles[n-1]
		rep.LastCycle = &last
	}
	sort.SliceStable(failed, func(i, j int) bool { return failed[i].Finished.After(failed[j].Finished) })
	for _, r := range failed[:min(len(failed), MaxErrors)] {
		rep.RecentErrors = append(rep.RecentErrors, ShardError{Time: r.Finished, Cycle: clean(r.CycleID), Shard: r.Shard,
			Attempt: r.Attempt, ErrorClass: clean(r.ErrorClass), Error: clean(r.Error)})
	}

	interval := p.Interval
	if interval <= 0 {
		interval = measureInterval(rep.Cycles)
	}
	rep.IntervalS = int(interval.Seconds())
	rep.PausedBySetting = p.SyncPaused
	if p.Switch != nil {
		rep.Switchable = true
		sw, err := p.Switch.PauseSwitch(ctx)
		if err != nil {
			log.Warn("status page: reading the pause switch", "error", err.Error())
			rep.Problems = append(rep.Problems, "could not read the pause switch")
		}
		rep.PausedFromPage = sw.On
		if sw.On {
			rep.PausedSince = timePtr(sw.At)
		}
	}
	rep.Paused = rep.PausedBySetting || rep.PausedFromPage
	rep.Headline = headline(now, interval, rep, historyErr == nil && p.History != nil)
	if rep.StartError != "" {
		notes := []string{}
		if rep.Setup != nil {
			notes = setupFindings(*rep.Setup)
		}
		rep.Headline = Headline{State: StateAttention, Text: "calstatus cannot start, so it syncs nothing: " + rep.StartError, Notes: notes}
	}
	if rep.Paused {
		rep.Headline = Headline{State: StateAttention, Text: pausedText(now, rep),
			Notes: append([]string{rep.Headline.Text}, rep.Headline.Notes...)}
		if rep.PausedBySetting && rep.PausedFromPage {
			// Else turning the setting off would leave the sync paused, to everyone's surprise.
			rep.Headline.Notes = append([]string{"The page's pause switch is on too" + since(now, rep.PausedSince) +
				": once SYNC_PAUSED is off, resume here"}, rep.Headline.Notes...)
		}
	}
	return rep
}

// pausedText is the headline of a paused sync: why, and since when.
func pausedText(now time.Time, rep Report) string {
	if rep.PausedBySetting {
		return "Paused by the SYNC_PAUSED app setting: calstatus plans no cycle and writes nothing"
	}
	return "Paused from this page" + since(now, rep.PausedSince) + ": calstatus plans no cycle and writes nothing until resumed"
}

// since is " since <time> (<ago>)", or "" when the time is unknown.
func since(now time.Time, t *time.Time) string {
	if t == nil {
		return ""
	}
	return " since " + utc(*t) + " (" + ago(max(0, now.Sub(*t))) + ")"
}

// settingPaused is the answer to the switch's form while SYNC_PAUSED is on: the switch would change
// nothing the admin can see, so it writes nothing.
const settingPaused = "The sync is paused by the SYNC_PAUSED app setting, so this page cannot resume it and nothing was changed.\n" +
	"To resume, set SYNC_PAUSED to false (or delete it) in the Function App's configuration (Settings > Environment variables), " +
	"or in local.settings.json when it runs locally.\n"

// turn handles the pause switch's form (action=pause or resume). handled is false for a POST that
// is not the switch's (the page is then shown as for GET).
func (p *Page) turn(ctx context.Context, log *slog.Logger, r web.Request) (web.Response, bool) {
	form, _ := url.ParseQuery(string(r.Body))
	action := form.Get("action")
	if p.Switch == nil || (action != "pause" && action != "resume") {
		return web.Response{}, false
	}
	if p.SyncPaused {
		log.Warn("status page: pause switch refused, SYNC_PAUSED is on", "action", action)
		return web.Response{Status: http.StatusConflict, Body: settingPaused, Headers: headers("text/plain; charset=utf-8")}, true
	}
	now := time.Now()
	if p.Now != nil {
		now = p.Now()
	}
	by := cmp.Or(r.Caller, anonymousCaller)
	var err error
	if action == "pause" {
		err = p.Switch.Pause(ctx, by, now)
	} else {
		err = p.Switch.ClearPauseSwitch(ctx)
	}
	if err != nil {
		log.Error("status page: turning the pause switch", "action", action, "by", by, "error", err.Error())
		return web.Response{Status: http.StatusInternalServerError, Body: "could not turn the pause switch; try again\n",
			Headers: headers("text/plain; charset=utf-8")}, true
	}
	log.Warn("sync "+action+"d from the status page", "action", action, "by", by)
	// Back to the page (same URL, its key included) with a GET, so a reload does not post again.
	h := headers("text/plain; charset=utf-8")
	h["Location"] = r.URL
	return web.Response{Status: http.StatusSeeOther, Body: "", Headers: h}, true
}

// summarize is syncer.Summarize (the numbers of the "cycle summary" log line) in the page's shape.
func summarize(h store.CycleHistory) Cycle {
	s := syncer.Summarize(h.Plan, h.Shards)
	failures := make(map[string]int, len(s.Failures))
	for k, v := range s.Failures {
		failures[clean(k)] += v
	}
	var presence map[string]int
	for k, v := range s.PresenceFailures {
		if presence == nil {
			presence = map[string]int{}
		}
		presence[clean(k)] += v
	}
	return Cycle{ID: clean(s.CycleID), Started: s.Started.UTC(), Users: s.Users, Shards: s.Shards, ShardsOK: s.ShardsOK,
		ShardsFailed: s.ShardsFailed, ShardsMissing: s.ShardsMissing, Changed: s.Changed, Failed: s.Failed, Failures: failures,
		GraphCalls: s.GraphCalls, Throttled: s.Throttled, Retries: s.Retries, PresenceFailures: presence, DurationMs: s.Duration.Milliseconds(), Complete: s.Complete}
}

// measureInterval is the median gap between the recorded cycles (DefaultInterval with fewer than
// three cycles), within a minute and an hour.
func measureInterval(cycles []Cycle) time.Duration {
	if len(cycles) < 3 {
		return DefaultInterval
	}
	gaps := make([]time.Duration, 0, len(cycles)-1)
	for i := 1; i < len(cycles); i++ {
		gaps = append(gaps, cycles[i].Started.Sub(cycles[i-1].Started))
	}
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	return min(max(gaps[len(gaps)/2], time.Minute), time.Hour)
}

// headline judges the sync: the first finding (most serious first) is the headline, the others
// are its notes; with none, the last cycle's summary.
func headline(now time.Time, interval time.Duration, rep Report, historyRead bool) Headline {
	type finding struct{ state, text string }
	var found []finding
	add := func(state, text string) { found = append(found, finding{state, text}) }

	if rep.Setup != nil {
		for _, f := range setupFindings(*rep.Setup) {
			add(StateAttention, f)
		}
	}
	for _, p := range rep.Problems {
		if strings.HasPrefix(p, "could not") {
			add(StateAttention, "Attention: "+p)
		}
	}
	last := rep.LastCycle
	var age time.Duration
	if last != nil {
		age = max(0, now.Sub(last.Started))
	}
	switch {
	case last == nil && historyRead:
		add(StateNoData, "No cycle in the last "+span(Window))
	case last != nil && age > 2*interval:
		add(StateStale, "No cycle for "+span(age))
	}
	if q := rep.Queue; q != nil && q.PoisonDepth > 0 {
		add(StateAttention, "Attention: "+plural(q.PoisonDepth, "message")+" in the poison queue")
	}
	inProgress := false
	if last != nil {
		if last.ShardsFailed > 0 {
			add(StateAttention, "Attention: the last cycle ("+ago(age)+") had "+itoa(last.ShardsFailed)+" of "+itoa(last.Shards)+
				" shards fail"+shardClasses(rep.RecentErrors, last.ID))
		}
		if last.ShardsMissing > 0 {
			if age <= interval {
				inProgress = true
			} else {
				add(StateAttention, "Attention: the last cycle ("+ago(age)+") is missing "+itoa(last.ShardsMissing)+" of "+
					itoa(last.Shards)+" shards")
			}
		}
	}
	if q := rep.Queue; q != nil && time.Duration(q.OldestMessageAge)*time.Second > interval {
		add(StateAttention, "Attention: the oldest queue message has waited "+span(time.Duration(q.OldestMessageAge)*time.Second))
	}
	if c := rep.Consent; c != nil && c.Recorded && !c.ProbeOK {
		add(StateAttention, "Attention: admin consent check: "+c.ProbeText)
	}

	h := Headline{State: StateHealthy, Notes: []string{}}
	if len(found) > 0 {
		h.State, h.Text = found[0].state, found[0].text
		for _, f := range found[1:] {
			h.Notes = append(h.Notes, f.text)
		}
		return h
	}
	switch {
	case last == nil:
		// Nothing could be read and nothing was found wrong: only the problems say why.
		h.State, h.Text = StateNoData, "No data"
	case inProgress:
		h.Text = "Healthy: last cycle " + ago(age) + ", in progress (" + itoa(last.ShardsOK) + " of " + itoa(last.Shards) + " shards done)"
	default:
		h.Text = "Healthy: last cycle " + ago(age) + ", complete"
		if last.Failed > 0 {
			h.Text += "; " + plural(last.Failed, "user") + " failed"
		}
	}
	return h
}

// setupFindings is the headline's finding of the self-check: its one problem, or how many and which
// (the Setup section, open, says what and what to do). A line not checked follows from a problem.
func setupFindings(r selfcheck.Report) []string {
	var problems []selfcheck.Line
	for _, l := range r.Lines {
		if l.State == selfcheck.StateProblem {
			problems = append(problems, l)
		}
	}
	switch len(problems) {
	case 0:
		return nil
	case 1:
		return []string{"Attention: setup: " + problems[0].Title + ": " + problems[0].Detail}
	}
	titles := make([]string, len(problems))
	for i, l := range problems {
		titles[i] = l.Title
	}
	return []string{"Attention: setup: " + itoa(len(problems)) + " problems (" + strings.Join(titles, "; ") + "): the Setup section says what to do"}
}

// cleanSetup is the self-check's report fit to show (its lines are remote texts too).
func cleanSetup(r selfcheck.Report) *selfcheck.Report {
	out := r
	out.CheckedAt = r.CheckedAt.UTC()
	out.Lines = make([]selfcheck.Line, len(r.Lines))
	for i, l := range r.Lines {
		l.Title, l.Detail, l.Fix = clean(l.Title), clean(l.Detail), clean(l.Fix)
		out.Lines[i] = l
	}
	return &out
}

// probeText says what a consent check's outcome means; ok is false for a problem.
func probeText(probe string) (text string, ok bool) {
	if detail, isErr := strings.CutPrefix(probe, "error:"); isErr {
		return "the check failed: " + strings.TrimSpace(detail), false
	}
	switch probe {
	case "":
		return "not checked yet", true
	case "ok":
		return "Graph access works", true
	case "not_propagated":
		return "Entra ID does not see the consent yet (it takes a minute or more to propagate)", false
	case "no_permission":
		return "Graph refuses to read calendars (application permission Calendars.ReadBasic.All missing or not in effect yet)", false
	case "wrong_tenant":
		return "Entra ID does not know the configured tenant", false
	}
	return probe, false
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// shardClasses names the error classes of a cycle's failed shards, e.g. " (graph_auth)".
func shardClasses(errs []ShardError, cycle string) string {
	seen := map[string]bool{}
	var classes []string
	for _, e := range errs {
		if e.Cycle == cycle && e.ErrorClass != "" && !seen[e.ErrorClass] {
			seen[e.ErrorClass] = true
			classes = append(classes, e.ErrorClass)
		}
	}
	if len(classes) == 0 {
		return ""
	}
	sort.Strings(classes)
	return " (" + strings.Join(classes, ", ") + ")"
}

// secrets are things an error text must not show even if a remote system put them there.
var secrets = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}`), "$1 [redacted]"},
	{regexp.MustCompile(`(?i)\b([a-z_-]*(?:key|secret|token|password|passwd|pwd|sig|signature|assertion)|code)=[^&;\s"'<>]+`), "$1=[redacted]"},
}

// clean makes a text from a remote system fit to show: redacts credential-like parameters, and
// replaces invalid UTF-8 and characters XML does not allow (the charts are inline SVG). Escaping is
// the templates' job.
func clean(s string) string {
	for _, r := range secrets {
		s = r.re.ReplaceAllString(s, r.with)
	}
	if !strings.ContainsFunc(s, badChar) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if badChar(r) {
			r = '\uFFFD'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func badChar(r rune) bool {
	return (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f || (r >= 0xFFFE && r <= 0xFFFF) || (r >= 0xD800 && r <= 0xDFFF)
}
