package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/devtools/mmstate"
	"github.com/calstatus/calstatus/devtools/teststack"
	"github.com/calstatus/calstatus/internal/azstorage"
	"github.com/calstatus/calstatus/internal/engine"
	"github.com/calstatus/calstatus/internal/graph"
	"github.com/calstatus/calstatus/internal/mattermost"
	"github.com/calstatus/calstatus/internal/shard"
	"github.com/calstatus/calstatus/internal/store"
	"github.com/calstatus/calstatus/internal/syncer"
)

// world runs the worker in this process with the real adapters — the real Mattermost server, Azurite
// and the Graph simulator — on a clock the test sets, so rules can be exercised at any moment of a
// (simulated) day. Calendars are explicit per user; users without one are free.
type world struct {
	t      *testing.T
	env    teststack.Env
	sim    *graphsim.Server
	admin  *model.Client4 // the test's own view of Mattermost, and its hands for "manual" changes
	db     *mmstate.DB    // Mattermost's database: the whole status row, as the API does not show it
	mm     *mattermost.Client
	store  *store.Store
	worker *syncer.Worker
	// server is how the Mattermost under test keeps statuses (its profile: v6 or v10, see devtools/stack).
	server engine.Server

	mu        sync.Mutex
	clock     time.Time
	calendars map[string][]graphsim.Event
	hidden    map[string]bool // mailboxes that show only their availability view
	teams     map[string][]graphsim.PresenceWindow
	replies   map[string][]graphsim.AutomaticReplies // Outlook's automatic replies
	cycle     int
	logs      strings.Builder
}

func newWorld(t *testing.T, policy engine.Policy) *world {
	t.Helper()
	return newWorldWith(t, policy, graphsim.Config{})
}

// newWorldWith is newWorld with a Graph simulator configured so (its scenario is the world's).
func newWorldWith(t *testing.T, policy engine.Policy, sim graphsim.Config) *world {
	t.Helper()
	env := teststack.Require(t)
	w := &world{t: t, env: env, calendars: map[string][]graphsim.Event{}, hidden: map[string]bool{}, teams: map[string][]graphsim.PresenceWindow{},
		replies: map[string][]graphsim.AutomaticReplies{}}
	var err error
	sim.Scenario = w.scenario()
	w.sim, err = graphsim.Start(sim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.sim.Close() })
	cred, err := graph.NewCredential(graph.CredentialConfig{TenantID: w.sim.TenantID(), ClientID: w.sim.ClientID(),
		ClientSecret: w.sim.ClientSecret(), AuthorityHost: w.sim.URL(), Transport: w.sim.Client()})
	if err != nil {
		t.Fatal(err)
	}
	gc, err := graph.New(graph.Config{BaseURL: w.sim.GraphURL(), Credential: cred, Transport: w.sim.Client().Transport})
	if err != nil {
		t.Fatal(err)
	}
	if w.store, err = store.Open(context.Background(), azstorage.Account{ConnectionString: env.StorageConnectionString}); err != nil {
		t.Fatal(err)
	}
	w.admin = model.NewAPIv4Client(env.MattermostURL)
	w.admin.SetToken(env.MattermostToken)
	if w.db, err = mmstate.Open(env.SQLDSN); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.db.Close() })
	w.mm = mattermost.New(env.MattermostURL, env.MattermostToken, nil)
	srv, err := w.mm.Server(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w.server = syncer.EngineServer(srv)
	w.worker = &syncer.Worker{Mattermost: w.mm, Graph: gc, Store: w.store, Policy: policy,
		Lookahead: 10 * time.Minute, Now: w.now}
	return w
}

func (w *world) now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.clock
}

// at sets the clock.
func (w *world) at(t time.Time) {
	w.mu.Lock()
	w.clock = t
	w.mu.Unlock()
}

func (w *world) scenario() *graphsim.Scenario {
	sc := &graphsim.Scenario{Generator: graphsim.Generator{Disabled: true}, Mailboxes: map[string]*graphsim.Mailbox{}}
	for email, evs := range w.calendars {
		sc.Mailboxes[email] = &graphsim.Mailbox{Events: append([]graphsim.Event{}, evs...), HideItems: w.hidden[email]}
	}
	for email, p := range w.teams {
		if sc.Mailboxes[email] == nil {
			sc.Mailboxes[email] = &graphsim.Mailbox{}
		}
		sc.Mailboxes[email].Presence = append([]graphsim.PresenceWindow{}, p...)
	}
	for email, r := range w.replies {
		if sc.Mailboxes[email] == nil {
			sc.Mailboxes[email] = &graphsim.Mailbox{}
		}
		sc.Mailboxes[email].AutomaticReplies = append([]graphsim.AutomaticReplies{}, r...)
	}
	return sc
}

// calendar gives users their calendars (replacing earlier ones).
func (w *world) calendar(u *model.User, events ...graphsim.Event) {
	w.t.Helper()
	w.calendars[strings.ToLower(u.Email)] = events
	if err := w.sim.SetScenario(w.scenario()); err != nil {
		w.t.Fatal(err)
	}
}

// outlookReplies gives a user Outlook automatic replies (replacing earlier ones).
func (w *world) outlookReplies(u *model.User, replies ...graphsim.AutomaticReplies) {
	w.t.Helper()
	w.replies[strings.ToLower(u.Email)] = replies
	if err := w.sim.SetScenario(w.scenario()); err != nil {
		w.t.Fatal(err)
	}
}

// inTeams gives users what Teams shows of them: calls, presentations (replacing earlier ones).
func (w *world) inTeams(u *model.User, windows ...graphsim.PresenceWindow) {
	w.t.Helper()
	w.teams[strings.ToLower(u.Email)] = windows
	if err := w.sim.SetScenario(w.scenario()); err != nil {
		w.t.Fatal(err)
	}
}

// seeded returns n seeded users, skipping the first skip, and puts them in a known state: online, no
// custom status nor recent ones, nothing stored, a free calendar. Tests take disjoint ranges so they never share users.
func (w *world) seeded(skip, n int) []*model.User {
	w.t.Helper()
	var out []*model.User
	for page := 0; len(out) < skip+n; page++ {
		users, _, err := w.admin.GetUsers(page, 200, "")
		if err != nil {
			w.t.Fatal(err)
		}
		if len(users) == 0 {
			w.t.Fatalf("the stack has fewer than %d users to sync", skip+n)
		}
		for _, u := range users {
			if u.DeleteAt == 0 && !u.IsBot && strings.HasSuffix(u.Email, "@"+w.env.EmailDomain) {
				out = append(out, u)
			}
		}
	}
	out = out[skip : skip+n]
	ids := make([]string, len(out))
	for i, u := range out {
		ids[i] = u.Id
		w.calendars[strings.ToLower(u.Email)] = nil
		delete(w.teams, strings.ToLower(u.Email))
		delete(w.replies, strings.ToLower(u.Email))
	}
	if err := w.sim.SetScenario(w.scenario()); err != nil {
		w.t.Fatal(err)
	}
	w.clearState(ids)
	parallel(out, 8, func(u *model.User) {
		w.setStatus(u, model.StatusOnline)
		if _, err := w.admin.RemoveUserCustomStatus(u.Id); err != nil {
			w.t.Errorf("clearing %s's custom status: %v", u.Username, err)
		}
		recents := model.Preferences{{UserId: u.Id, Category: model.PreferenceCategoryCustomStatus, Name: model.PreferenceNameRecentCustomStatuses}}
		if _, err := w.admin.DeletePreferences(u.Id, recents); err != nil {
			w.t.Errorf("clearing %s's recent custom statuses: %v", u.Username, err)
		}
	})
	return out
}

// scenarios gives a suite of scenarios on w: scenario runs one as a subtest of t (the world's
// checks fail the scenario, not the suite), users hands out seeded users from first on, failing
// the suite past last (suites keep to their own ranges).
func (w *world) scenarios(t *testing.T, first, last int) (scenario func(name string, f func(t *testing.T)), users func(n int) []*model.User) {
	scenario = func(name string, f func(t *testing.T)) {
		t.Run(name, func(st *testing.T) {
			w.t = st
			defer func() { w.t = t }()
			f(st)
		})
	}
	next := first
	users = func(n int) []*model.User {
		if next+n > last {
			t.Fatalf("this suite uses users %d–%d; %d more wanted at %d", first, last-1, n, next)
		}
		u := w.seeded(next, n)
		next += n
		return u
	}
	return scenario, users
}

func (w *world) clearState(ids []string) {
	w.t.Helper()
	svc, err := aztables.NewServiceClientFromConnectionString(w.env.StorageConnectionString, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	tc := svc.NewClient(store.UsersTable)
	for _, id := range ids {
		for _, row := range []string{id, id + store.DirectorySuffix, id + store.SettingsSuffix} {
			_, _ = tc.DeleteEntity(context.Background(), store.Partition(id), row, nil)
		}
	}
}

// run processes the users as one shard of a new cycle at the current clock.
func (w *world) run(users ...*model.User) store.ShardReport {
	w.t.Helper()
	rep, err := w.process(users...)
	if err != nil {
		w.t.Fatalf("shard failed: %v\n%s", err, w.logs.String())
	}
	return rep
}

// runAt sets the clock and runs the users.
func (w *world) runAt(t time.Time, users ...*model.User) store.ShardReport {
	w.t.Helper()
	w.at(t)
	return w.run(users...)
}

// runAtWritingNothing runs the users at t and fails if the run wrote anything to Mattermost (when
// says what it must leave alone).
func (w *world) runAtWritingNothing(t time.Time, when string, users ...*model.User) {
	w.t.Helper()
	writes := w.mm.Writes.Load()
	w.runAt(t, users...)
	if n := w.mm.Writes.Load() - writes; n != 0 {
		w.t.Fatalf("%d Mattermost writes %s: want none\n%s", n, when, w.logs.String())
	}
}

func (w *world) process(users ...*model.User) (store.ShardReport, error) {
	msg := w.message(users...)
	w.logs.Reset()
	log := slog.New(slog.NewTextHandler(&w.logs, nil))
	return w.worker.Process(context.Background(), log, msg, 1)
}

// message is a shard message of a new cycle at the current clock for the users.
func (w *world) message(users ...*model.User) shard.Message {
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.Id
	}
	w.cycle++
	now := w.now()
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, w.t.Name())
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return shard.Split(fmt.Sprintf("%s-%s-%d", name, now.Format("150405"), w.cycle), now, now.Add(5*time.Minute), ids)[0]
}

// mmState is what Mattermost keeps of a user's status: the status row, the custom status with its
// recent ones, and whether automatic replies are on.
type mmState struct {
	Row           mmstate.Row
	Custom        *model.CustomStatus
	Recents       []model.CustomStatus
	AutoResponder bool
}

func (s mmState) customText() string {
	if s.Custom == nil {
		return ""
	}
	return s.Custom.Text
}

func (s mmState) String() string {
	out := s.Row.String()
	if s.Custom != nil {
		out += fmt.Sprintf(" + %s %q", s.Custom.Emoji, s.Custom.Text)
	}
	if len(s.Recents) > 0 {
		var texts []string
		for _, r := range s.Recents {
			texts = append(texts, r.Text)
		}
		out += fmt.Sprintf(" recents %q", texts)
	}
	if s.AutoResponder {
		out += " auto-responder on"
	}
	return out
}

func (w *world) state(u *model.User) mmState {
	w.t.Helper()
	row, err := w.db.Row(context.Background(), u.Id)
	if err != nil {
		w.t.Fatal(err)
	}
	cs, recents, err := w.db.Custom(context.Background(), w.admin, u.Id)
	if err != nil {
		w.t.Fatal(err)
	}
	if cs != nil && cs.Text == "" && cs.Emoji == "" {
		cs = nil
	}
	auto, _, err := w.db.AutoResponder(context.Background(), u.Id)
	if err != nil {
		w.t.Fatal(err)
	}
	return mmState{Row: row, Custom: cs, Recents: recents, AutoResponder: auto}
}

// expire does what Mattermost's DND expiry job does, at the simulated time (the server's own job
// uses the real clock), for the given users.
func (w *world) expire(users ...*model.User) {
	w.t.Helper()
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.Id
	}
	if _, err := mmstate.Expire(context.Background(), w.db, w.admin, w.now(), ids...); err != nil {
		w.t.Fatal(err)
	}
}

// setStatus and setCustom are the user's own, manual changes.
func (w *world) setStatus(u *model.User, status string) {
	w.t.Helper()
	if _, _, err := w.admin.UpdateUserStatus(u.Id, &model.Status{UserId: u.Id, Status: status}); err != nil {
		w.t.Errorf("setting %s to %s: %v", u.Username, status, err)
	}
}

func (w *world) setCustom(u *model.User, emoji, text string) {
	w.t.Helper()
	if _, _, err := w.admin.UpdateUserCustomStatus(u.Id, &model.CustomStatus{Emoji: emoji, Text: text}); err != nil {
		w.t.Errorf("setting %s's custom status: %v", u.Username, err)
	}
}

func (w *world) clearCustom(u *model.User) {
	w.t.Helper()
	if _, err := w.admin.RemoveUserCustomStatus(u.Id); err != nil {
		w.t.Errorf("clearing %s's custom status: %v", u.Username, err)
	}
}

// event is a calendar entry for graphsim.
func event(status string, start, end time.Time) graphsim.Event {
	return graphsim.Event{Status: status, Start: start, End: end, Subject: "Quarterly planning", Location: "Room 4"}
}

// simDay is a day in the future, so that the DND end times and custom status expiries calstatus
// sets are in the future for the real Mattermost server too.
func simDay() time.Time {
	return time.Now().UTC().Truncate(24 * time.Hour).Add(48 * time.Hour)
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
