package e2e

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/devtools/mmstate"
	"github.com/calstatus/calstatus/devtools/teststack"
	"github.com/calstatus/calstatus/handler"
)

// The soak: a compressed day in real time, through the local host, while faults are injected.
const (
	// soakSlot is the calendar's grid. Cycles run on the slot (SYNC_SCHEDULE every 10 s) and events
	// start and end half a slot after one, so the transition messages apply them between cycles.
	soakSlot     = 10 * time.Second
	soakSchedule = "*/10 * * * * *"
	// soakFunctionTimeout compresses host.json's five minutes like the day is compressed: the
	// worker's budget (4/5 of it) and a killed run's claims (the whole of it) scale with it.
	soakFunctionTimeout = "00:01:00"
	// soakLease compresses the host's 10-minute lease on a message being processed the same way:
	// a message whose delete was lost (storage restarting as its shard finished) comes back, late,
	// within the day rather than after it.
	soakLease = 2 * time.Minute
	// soakGrace is how long after an event ended, or after the faults that were on since cleared
	// and calstatus had time to recover from them, a status we set may still show: two cycles.
	soakGrace = 25 * time.Second
	// soakQuiet: users change their status by hand only this far from any event boundary of theirs,
	// so a change never races a write calstatus decided before seeing it.
	soakQuiet = 45 * time.Second
	// soakTail is the free end of the day: no event, no fault, no manual change.
	soakTail = 60 * time.Second
	// soakSample is how often the test reads every user's state (from the database) and checks it.
	soakSample = 2500 * time.Millisecond
	soakSeed   = 20261201
	// soakBlock is one round of every fault; a longer day repeats it.
	soakBlock = 5 * time.Minute
)

// TestSoak runs a compressed day for every user of the stack (≥1,000) through the local Functions
// host — its own timer every 10 s, the shard queue, the handler process — against the real
// Mattermost server, Azurite and the Graph simulator, while faults are injected in turn: Graph 429
// storms, 5xx bursts and hung $batch calls; Mattermost restarted mid-shard and answering 429s and
// 503s; Azurite restarted mid-cycle; a backlog (queues paused) that makes shards stale; the handler
// killed mid-shard; and, all day, duplicate deliveries of shard and transition messages, at once and
// late. Users change their statuses by hand meanwhile. The test checks, every few seconds and at the
// end of the day: nobody left in a status calstatus set after their event ended, no previous status
// lost, no manual change overridden; and at the end: no shard or transition silently skipped, no
// retry before a Retry-After, and no secret in logs, invocation logs, pages, queue messages or
// table entities. The day lasts CALSTATUS_SOAK_DAY (default 5m: every fault once; `make soak` runs
// longer).
func TestSoak(t *testing.T) {
	day := 5 * time.Minute
	if v := os.Getenv("CALSTATUS_SOAK_DAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 5*time.Minute {
			t.Fatalf("CALSTATUS_SOAK_DAY=%q: want a duration of at least 5m", v)
		}
		day = d
	}
	s := newSoak(t, day)
	s.setup()
	s.runDay()
	s.settle()
	s.verify()
}

// soak is one run: the harness, the users' model, the faults and what was counted.
type soak struct {
	t       *testing.T
	h       *harness
	db      *mmstate.DB
	mm      *faultyMM
	secrets *secretScan
	day     time.Duration
	t0      time.Time // the day's first slot boundary
	users   []*dayUser
	ids     []string
	rng     *rand.Rand
	tally   dayTally
	samples int
	modelMu sync.Mutex // the users' model: a step, or a fault that changes what users have
	faults  faultCounts
	track   *deliveries

	slashTeam string // the users' team: MATTERMOST_SLASH_TOKEN has the slash token for it

	spansMu sync.Mutex
	spans   []span // when faults were on

	linesMu sync.Mutex
	lines   []string // every line the host logged (LOG_LEVEL DEBUG: every user's), to explain a failure
}

// span is a fault's time: from its start to its end and the time calstatus may take to recover.
type span struct{ from, to time.Time }

// faultCounts is what was injected.
type faultCounts struct {
	graphStorms, graphBursts, graphHangs, mmRestarts, mmFaults, azuriteRestarts, backlogs, kills int
}

func newSoak(t *testing.T, day time.Duration) *soak {
	env := teststack.Require(t)
	s := &soak{t: t, day: day, rng: rand.New(rand.NewPCG(soakSeed, soakSeed*31+7))}
	s.secrets = newSecretScan(env.MattermostToken, env.StorageConnectionString)
	// Recognisable, in the shape Mattermost's tokens have (26 letters and digits).
	fakeToken := s.secrets.add(token26("soakmmtoken"))
	graphSecret := s.secrets.add("soak-graph-client-secret-" + token26(""))
	slashToken := s.secrets.add(token26("soakslash"))
	s.mm = newFaultyMM(t, env.MattermostURL, env.MattermostToken, fakeToken)

	// Everyone's calendar, fixed before the host starts: the day begins once the users are set up.
	admin := model.NewAPIv4Client(env.MattermostURL)
	admin.SetToken(env.MattermostToken)
	all := listSyncUsers(t, admin)
	if len(all) < 1000 {
		t.Fatalf("the stack has %d users to sync, the soak wants at least 1,000", len(all))
	}
	s.slashTeam = userTeam(t, admin, all[0].Id).Id
	s.t0 = time.Now().Truncate(soakSlot).Add(60*time.Second + soakSlot/2)
	sc := &graphsim.Scenario{Generator: graphsim.Generator{Disabled: true}, Mailboxes: map[string]*graphsim.Mailbox{}}
	for _, u := range all {
		du := &dayUser{u: u, own: model.StatusOnline, events: s.calendar()}
		s.users = append(s.users, du)
		s.ids = append(s.ids, u.Id)
		sc.Mailboxes[strings.ToLower(u.Email)] = &graphsim.Mailbox{Events: du.events}
	}

	s.h = newHarness(t, harnessOptions{
		scenario: sc, timers: true, visibility: 2 * time.Second, lease: soakLease, clientSecret: graphSecret,
		appDir: soakAppDir(t), onLog: s.keepLine,
		faults: soakBaseFaults(),
		settings: map[string]string{
			"SYNC_SCHEDULE": soakSchedule, "MATTERMOST_URL": s.mm.srv.URL, "MATTERMOST_TOKEN": fakeToken,
			"MATTERMOST_SLASH_TOKEN": s.slashTeam + "=" + slashToken, "LOG_LEVEL": "DEBUG",
			// The write bound under test (default: calstatus's own): make soak SOAK_WRITES=8.
			"MATTERMOST_WRITE_CONCURRENCY": os.Getenv("CALSTATUS_SOAK_WRITES"),
		},
	})
	var err error
	if s.db, err = mmstate.Open(env.SQLDSN); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.db.Close() })
	s.track = newDeliveries(s)
	return s
}

// soakBaseFaults are on all day: a realistic Graph latency, and early retries punished (and counted).
func soakBaseFaults() graphsim.Faults {
	return graphsim.Faults{Seed: soakSeed, BatchLatency: graphsim.Duration(300 * time.Millisecond), PunishEarlyRetries: true}
}

// soakAppDir is the app with host.json's functionTimeout compressed (soakFunctionTimeout).
func soakAppDir(t *testing.T) string {
	t.Helper()
	root := repoRoot()
	b, err := os.ReadFile(filepath.Join(root, "host.json"))
	if err != nil {
		t.Fatal(err)
	}
	hostJSON := strings.Replace(string(b), `"functionTimeout": "00:05:00"`, `"functionTimeout": "`+soakFunctionTimeout+`"`, 1)
	if hostJSON == string(b) {
		t.Fatal(`host.json has no "functionTimeout": "00:05:00" to compress`)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "host.json"), []byte(hostJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "functions"), filepath.Join(dir, "functions")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// calendar draws one user's day on the slot grid: ~3% out of office for the whole day, ~6% working
// elsewhere for a long block, everyone 0–4 meetings per 5 minutes lasting 30 s to 4 min (busy, some
// tentative, some working elsewhere; some back to back). The tail of the day is free.
func (s *soak) calendar() []graphsim.Event {
	slots := int((s.day - soakTail) / soakSlot)
	at := func(n int) time.Time { return s.t0.Add(time.Duration(n) * soakSlot) }
	var evs []graphsim.Event
	switch r := s.rng.IntN(100); {
	case r < 3:
		evs = append(evs, event(graphsim.StatusOOF, at(0), at(slots)))
	case r < 9:
		from := s.rng.IntN(slots / 3)
		evs = append(evs, event(graphsim.StatusWorkingElsewhere, at(from), at(from+slots/2)))
	}
	n := s.rng.IntN(5 * int(s.day/soakBlock))
	prevEnd := -1
	for i := 0; i < n; i++ {
		start := s.rng.IntN(slots - 3)
		if prevEnd >= 0 && prevEnd < slots-3 && s.rng.IntN(100) < 30 {
			start = prevEnd
		}
		end := min(start+3+s.rng.IntN(22), slots)
		status := graphsim.StatusBusy
		switch r := s.rng.IntN(100); {
		case r < 20:
			status = graphsim.StatusTentative
		case r < 28:
			status = graphsim.StatusWorkingElsewhere
		}
		evs = append(evs, event(status, at(start), at(end)))
		prevEnd = end
	}
	return evs
}

// setup gives everyone a known start: their own status (some automatic, a few on automatic
// replies), some their own custom status, no recent custom statuses.
func (s *soak) setup() {
	t, h := s.t, s.h
	hands := soakHands{t: t, mm: h.mm}
	parallel(s.users, 8, func(du *dayUser) {
		hands.clearCustom(du.u)
		recents := model.Preferences{{UserId: du.u.Id, Category: model.PreferenceCategoryCustomStatus, Name: model.PreferenceNameRecentCustomStatuses}}
		if _, err := h.mm.DeletePreferences(du.u.Id, recents); err != nil {
			t.Errorf("clearing %s's recent custom statuses: %v", du.u.Username, err)
		}
	})
	automatic, autoReplies := dayStart(t, s.rng, s.users, hands, s.db, h.mm)
	if wait := time.Until(s.t0); wait < 0 {
		t.Fatalf("setup took too long: the day started %v ago", -wait)
	}
	t.Logf("soak: %d users (%d automatically away or offline, %d on automatic replies), day of %v from %s; setup done %v before it",
		len(s.users), automatic, autoReplies, s.day, s.t0.Format("15:04:05"), time.Until(s.t0).Round(time.Second))
}

// runDay runs the day: faults in turn (one round per soakBlock), duplicate deliveries all day, and
// the users' model: Mattermost's DND expiry, a read and check of everyone, a few manual changes.
func (s *soak) runDay() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.track.run(ctx, s.t0.Add(s.day-soakTail)) // until verify stops it
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.injectFaults(ctx) }()
	end := s.t0.Add(s.day)
	for i := 0; time.Now().Before(end); i++ {
		now := time.Now()
		s.step(now, i%2 == 0 && now.Before(end.Add(-soakTail)))
		if s.t.Failed() {
			break
		}
		time.Sleep(time.Until(now.Add(soakSample)))
	}
	cancel()
	wg.Wait()
}

// step is one turn of the users' model at now: Mattermost's DND expiry (its job runs every 5
// minutes; here as often as the test looks), everyone read and checked, and maybe manual changes.
func (s *soak) step(now time.Time, changes bool) {
	s.modelMu.Lock()
	defer s.modelMu.Unlock()
	ctx := context.Background()
	if _, err := mmstate.Expire(ctx, s.db, s.h.mm, now, s.ids...); err != nil {
		s.t.Logf("soak: DND expiry at %s: %v (Mattermost restarting?)", now.Format("15:04:05"), err)
	}
	state, err := soakRead(ctx, s.db, s.ids)
	if err != nil {
		s.t.Fatal(err)
	}
	s.samples++
	for _, du := range s.users {
		cur := state[du.u.Id]
		if cur.String() != du.last.String() {
			du.note("%s shows %s", now.Format("15:04:05"), cur)
			du.last = cur
		}
		if nearBoundary(du.events, now, 3*time.Second) {
			continue // which event covers "now" depends on a second's timing
		}
		dayCheck(&s.tally, du, cur, dayKey(du.events, now), now, false, s.late)
		if du.autoReply && !du.autoReplyOff && s.samples%8 == 0 {
			if on, _, err := s.db.AutoResponder(ctx, du.u.Id); err != nil {
				s.t.Fatal(err)
			} else if !on {
				du.autoReplyOff = true
				s.tally.add(&s.tally.autoReplyOff, &s.tally.autoReplyOffEx, "%s at %s: automatic replies turned off%s", du.u.Username, now.Format("15:04:05"), du.story())
			}
		}
	}
	if changes {
		s.manualChanges(now, state)
	}
}

// manualChanges: a few users change their status or custom status by hand — mostly users in an
// event, all far from their event boundaries (soakQuiet).
func (s *soak) manualChanges(now time.Time, state map[string]dayShown) {
	var inEvent, free []*dayUser
	for _, du := range s.users {
		if du.autoReply || nearBoundary(du.events, now, soakQuiet) {
			continue
		}
		if dayKey(du.events, now) != "" {
			inEvent = append(inEvent, du)
		} else {
			free = append(free, du)
		}
	}
	hands := soakHands{t: s.t, mm: s.h.mm}
	for c := 0; c < 2+s.rng.IntN(4); c++ {
		pool := inEvent
		if len(pool) == 0 || (len(free) > 0 && s.rng.IntN(100) >= 75) {
			pool = free
		}
		if len(pool) == 0 {
			return
		}
		du := pool[s.rng.IntN(len(pool))]
		cur := state[du.u.Id]
		what := dayManual(s.rng, hands, du, &cur, now)
		du.changed(dayKey(du.events, now), what+" at "+now.Format("15:04:05"), cur)
		s.tally.manual++
	}
}

// late: a status we set still shows more than soakGrace after its event ended and after every
// fault on since then was over and recovered from (while Graph or Mattermost fail, nothing can be
// given back).
func (s *soak) late(ended, now time.Time) bool {
	from := ended
	s.spansMu.Lock()
	for _, f := range s.spans {
		if f.to.After(from) && f.from.Before(now) {
			from = f.to
		}
	}
	s.spansMu.Unlock()
	return now.Sub(from) > soakGrace
}

// nearBoundary reports whether one of the events starts or ends within d of now.
func nearBoundary(evs []graphsim.Event, now time.Time, d time.Duration) bool {
	for _, e := range evs {
		for _, b := range []time.Time{e.Start, e.End} {
			if diff := b.Sub(now); diff > -d && diff < d {
				return true
			}
		}
	}
	return false
}

// settle waits, faults off, until every event has been over for a while and the queue is idle,
// then runs Mattermost's expiry once more, lets calstatus run after it (a status the user had set
// by hand, which the expiry gives back as automatic — or as the offline a Mattermost restart left —
// is set again by the next cycle) and checks everyone as at the end of a day.
func (s *soak) settle() {
	t := s.t
	time.Sleep(time.Until(s.t0.Add(s.day)))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.h.host.WaitIdle(ctx, handler.ShardQueue); err != nil {
		// What is left says why: the visible messages (peek shows no invisible ones) and the
		// host's last lines.
		s.linesMu.Lock()
		lines := append([]string(nil), s.lines...)
		s.linesMu.Unlock()
		var hostErrs []string
		for _, l := range lines {
			if strings.HasPrefix(l, "funchost: ERROR") || strings.HasPrefix(l, "funchost: WARNING") {
				hostErrs = append(hostErrs, l)
			}
		}
		t.Fatalf("the shard queue did not drain after the day: %v\n  visible messages left: %q\n  the host's storage errors:\n    %s\n  the host's last lines:\n    %s",
			err, s.h.peek(handler.ShardQueue), strings.Join(hostErrs, "\n    "), strings.Join(lines[max(0, len(lines)-25):], "\n    "))
	}
	if _, err := mmstate.Expire(ctx, s.db, s.h.mm, time.Now(), s.ids...); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * soakSlot) // a cycle starts and reads after the expiry
	if err := s.h.host.WaitIdle(ctx, handler.ShardQueue); err != nil {
		t.Fatalf("the shard queue did not drain after Mattermost's last expiry: %v", err)
	}
	now := time.Now()
	state, err := soakRead(ctx, s.db, s.ids)
	if err != nil {
		t.Fatal(err)
	}
	var wrong []*dayUser
	for _, du := range s.users {
		dayCheck(&s.tally, du, state[du.u.Id], "", now, true, s.late)
		if du.leftWrong(state[du.u.Id]) {
			wrong = append(wrong, du)
		}
	}
	s.logHeld(ctx, wrong)
}

// keepLine scans a line the host logged for secrets and keeps it.
func (s *soak) keepLine(line string) {
	s.secrets.scan("logs", line)
	s.linesMu.Lock()
	s.lines = append(s.lines, line)
	s.linesMu.Unlock()
}

// logHeld logs, for users left wrong at the end of the day, what calstatus holds for them and every
// line it logged about them: whether it still knows the status or custom status as its own tells a
// lost write from a wrong decision.
func (s *soak) logHeld(ctx context.Context, wrong []*dayUser) {
	if len(wrong) == 0 {
		return
	}
	ids := make([]string, len(wrong))
	for i, du := range wrong {
		ids[i] = du.u.Id
	}
	held, err := s.h.store.LoadStates(ctx, ids)
	if err != nil {
		s.t.Logf("soak: reading what calstatus holds: %v", err)
	}
	rows, err := s.db.Rows(ctx, ids) // the whole row: prev_status and the end say who set what
	if err != nil {
		s.t.Logf("soak: reading their status rows: %v", err)
	}
	s.linesMu.Lock()
	defer s.linesMu.Unlock()
	for _, du := range wrong {
		var about []string
		for _, l := range s.lines {
			if strings.Contains(l, du.u.Username) || strings.Contains(l, du.u.Id) {
				about = append(about, "    "+l)
			}
		}
		s.t.Logf("soak: %s (%s): Mattermost's row %s; calstatus holds %+v; its lines about them:\n%s", du.u.Username, du.u.Id, rows[du.u.Id],
			held[du.u.Id], strings.Join(about, "\n"))
	}
}

// soakRead reads every user's status row and custom status from Mattermost's database (it answers
// while the server restarts).
func soakRead(ctx context.Context, db *mmstate.DB, ids []string) (map[string]dayShown, error) {
	rows, err := db.Rows(ctx, ids)
	if err != nil {
		return nil, err
	}
	customs, err := db.CustomStatuses(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]dayShown, len(ids))
	for _, id := range ids {
		r := rows[id]
		out[id] = dayShown{status: r.Status, manual: r.Manual, custom: customs[id]}
	}
	return out, nil
}

// soakHands are the users' own hands: straight to Mattermost, not through calstatus's proxy.
type soakHands struct {
	t  *testing.T
	mm *model.Client4
}

func (h soakHands) setStatus(u *model.User, status string) {
	if _, _, err := h.mm.UpdateUserStatus(u.Id, &model.Status{UserId: u.Id, Status: status}); err != nil {
		h.t.Errorf("setting %s to %s: %v", u.Username, status, err)
	}
}

func (h soakHands) setCustom(u *model.User, emoji, text string) {
	if _, _, err := h.mm.UpdateUserCustomStatus(u.Id, &model.CustomStatus{Emoji: emoji, Text: text}); err != nil {
		h.t.Errorf("setting %s's custom status: %v", u.Username, err)
	}
}

func (h soakHands) clearCustom(u *model.User) {
	if _, err := h.mm.RemoveUserCustomStatus(u.Id); err != nil {
		h.t.Errorf("clearing %s's custom status: %v", u.Username, err)
	}
}

// restartStack restarts one of the stack's servers (stack.sh restart), data kept.
func restartStack(t *testing.T, server string) time.Duration {
	start := time.Now()
	out, err := exec.Command(filepath.Join(repoRoot(), "devtools", "stack", "stack.sh"), "restart", server).CombinedOutput()
	if err != nil {
		t.Errorf("restarting %s: %v\n%s", server, err, out)
	}
	return time.Since(start)
}
