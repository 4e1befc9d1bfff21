package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/devtools/teststack"
	"github.com/calstatus/calstatus/internal/engine"
	"github.com/calstatus/calstatus/internal/slash"
	"github.com/calstatus/calstatus/internal/store"
)

// secondTeam is a team the test creates beside the seeded one; the seeded users are not in it.
const secondTeam = "calstatus-e2e-second"

// /calstatus through the local host and the real handler, then cycles against the real Mattermost
// server. `calstatus register-command` registers the command in two teams, each with its own token
// made by Mattermost (a second team's command sharing the first's token, as registrations before
// tokens were bound to teams left them, gets a new one); a wrong or missing token, one team's token
// with the other's team id, and a user who is not a member of the request's team change nothing;
// off, pause and on change what the next cycle does for that user.
func TestSlashCommandChangesTheNextCycle(t *testing.T) {
	sc := graphsim.DefaultScenario()
	env := teststack.Require(t)
	admin := model.NewAPIv4Client(env.MattermostURL)
	admin.SetToken(env.MattermostToken)
	teamA, teamB := userTeam(t, admin, listSyncUsers(t, admin)[0].Id), ensureTeam(t, admin, secondTeam)
	_, sharedToken, _ := strings.Cut(registerCommand(t, env, teamA.Name), "=")
	cmds, _, err := admin.ListCommands(teamB.Id, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cmds {
		if _, err := admin.DeleteCommand(c.Id); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := admin.CreateCommand(&model.Command{TeamId: teamB.Id, Trigger: "calstatus", Method: model.CommandMethodPost,
		URL: "http://localhost:7071/api/SlashCommand", Token: sharedToken}); err != nil {
		t.Fatal(err)
	}
	setting := registerCommand(t, env, teamA.Name, teamB.Name)
	tokens := map[string]string{}
	for _, entry := range strings.Split(setting, ",") {
		team, token, _ := strings.Cut(entry, "=")
		tokens[team] = token
	}
	tokenA, tokenB := tokens[teamA.Id], tokens[teamB.Id]
	if len(tokens) != 2 || tokenA != sharedToken || len(tokenB) != 26 || tokenA == tokenB {
		t.Fatalf("register-command printed %q: want team %s's token %s kept and a token of its own for team %s", setting, teamA.Id, sharedToken, teamB.Id)
	}
	for team, token := range tokens { // Mattermost's own tokens
		cmds, _, err := admin.ListCommands(team, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(cmds) != 1 || cmds[0].Trigger != "calstatus" || cmds[0].Token != token {
			t.Fatalf("team %s: commands %+v, want /calstatus with token %s", team, cmds, token)
		}
	}

	h := newHarness(t, harnessOptions{scenario: sc, settings: map[string]string{"MATTERMOST_SLASH_TOKEN": setting}})
	u := busyForAWhile(t, h, sc)
	ctx := context.Background()
	status := func() string {
		st, _, err := h.mm.GetUserStatus(u.Id, "")
		if err != nil {
			t.Fatal(err)
		}
		return st.Status
	}

	for _, tc := range []struct {
		name, team, token string
		want              int
	}{
		{"wrong token", teamA.Id, "wrongtoken0000000000000001", http.StatusUnauthorized},
		{"no token", teamA.Id, "", http.StatusUnauthorized},
		{"team A's token with team B's id", teamB.Id, tokenA, http.StatusUnauthorized},
		{"team B's token with team A's id", teamA.Id, tokenB, http.StatusUnauthorized},
		{"team B's token for a user not in team B", teamB.Id, tokenB, http.StatusForbidden},
	} {
		code, text := h.slash(t, tc.team, tc.token, u.Id, "off")
		settings, err := h.store.LoadSettings(ctx, u.Id)
		if code != tc.want || err != nil || settings != (store.UserSettings{}) {
			t.Fatalf("%s: %d %q, settings %+v (%v): want %d and nothing changed", tc.name, code, text, settings, err, tc.want)
		}
	}
	if code, text := h.slash(t, teamA.Id, tokenA, "not-a-user-id", "off"); code != http.StatusBadRequest {
		t.Fatalf("an invalid user_id: %d %q, want 400", code, text)
	}

	if code, text := h.slash(t, teamA.Id, tokenA, u.Id, "off"); code != http.StatusOK || !strings.Contains(strings.ToLower(text), "off") {
		t.Fatalf("off: %d %q", code, text)
	}
	h.cycle(2 * time.Minute)
	if s := status(); s == model.StatusDnd {
		t.Fatalf("off: the next cycle still set %s", s)
	}

	if code, text := h.slash(t, teamA.Id, tokenA, u.Id, "on"); code != http.StatusOK {
		t.Fatalf("on: %d %q", code, text)
	}
	h.cycle(2 * time.Minute)
	if s := status(); s != model.StatusDnd {
		t.Fatalf("on, in a meeting: status %s after the next cycle, want dnd", s)
	}
	_, text := h.slash(t, teamA.Id, tokenA, u.Id, "status")
	if !strings.Contains(text, "Do Not Disturb") {
		t.Fatalf("status: %q", text)
	}

	if code, text := h.slash(t, teamA.Id, tokenA, u.Id, "pause 2h"); code != http.StatusOK {
		t.Fatalf("pause: %d %q", code, text)
	}
	h.cycle(2 * time.Minute)
	if s := status(); s != model.StatusOnline {
		t.Fatalf("paused: status %s after the next cycle, want the previous status (online) back", s)
	}
	if settings, _ := h.store.LoadSettings(ctx, u.Id); !settings.PausedUntil.After(time.Now().Add(time.Hour)) {
		t.Fatalf("pause not stored: %+v", settings)
	}
}

// "/calstatus settings only custom", then a cycle: the user in a meeting gets the custom status and
// not Do Not Disturb, and "status" says so. Then "/calstatus today" with Graph slower than the
// command waits: the command answers "Looking at your calendar…" and the handler posts the answer
// to the request's response_url — a command hook of the real server, which shows it to the user
// alone (an ephemeral post, read here over the user's websocket).
func TestSlashSettingsAndTodayThroughTheServer(t *testing.T) {
	sc := graphsim.DefaultScenario()
	env := teststack.Require(t)
	if env.SQLDSN == "" {
		t.Fatal("the test stack env file has no STACK_POSTGRES_DSN: rerun devtools/stack/stack.sh up")
	}
	admin := model.NewAPIv4Client(env.MattermostURL)
	admin.SetToken(env.MattermostToken)
	team := userTeam(t, admin, listSyncUsers(t, admin)[0].Id)
	setting := registerCommand(t, env, team.Name)
	_, token, _ := strings.Cut(setting, "=")
	h := newHarness(t, harnessOptions{scenario: sc, settings: map[string]string{"MATTERMOST_SLASH_TOKEN": setting}})
	u := busyForAWhile(t, h, sc)
	ctx := context.Background()
	// A custom status of the user's own would be left alone: start from none, and leave none.
	clear := func() {
		if _, err := h.mm.RemoveUserCustomStatus(u.Id); err != nil {
			t.Errorf("removing %s's custom status: %v", u.Username, err)
		}
	}
	clear()
	t.Cleanup(clear)

	code, text := h.slash(t, team.Id, token, u.Id, "settings only custom")
	if code != http.StatusOK || !strings.Contains(text, "only the custom status") {
		t.Fatalf("settings only custom: %d %q", code, text)
	}
	if settings, err := h.store.LoadSettings(ctx, u.Id); err != nil || settings.Only != engine.OnlyCustom {
		t.Fatalf("stored %+v %v", settings, err)
	}
	h.cycle(2 * time.Minute)
	st, _, err := h.mm.GetUserStatus(u.Id, "")
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := h.mm.GetUser(u.Id, "")
	if err != nil {
		t.Fatal(err)
	}
	cs := got.GetCustomStatus()
	if st.Status == model.StatusDnd || cs == nil || cs.Emoji != engine.MeetingEmoji || !strings.HasPrefix(cs.Text, "In a meeting") {
		t.Fatalf("only custom, in a meeting: status %s, custom status %+v; want no DND and the meeting's custom status", st.Status, cs)
	}
	if _, text := h.slash(t, team.Id, token, u.Id, "status"); !strings.Contains(text, "Your settings: only the custom status") ||
		strings.Contains(text, "sets Do Not Disturb") {
		t.Fatalf("status: %q", text)
	}

	// today, answered late through the real server.
	if err := h.sim.UpdateFaults(func(f *graphsim.Faults) { f.BatchLatency = graphsim.Duration(slash.QuickAnswer + time.Second) }); err != nil {
		t.Fatal(err)
	}
	posts := ephemeralPosts(t, env, admin, u.Id)
	hookID := commandHook(t, env, admin, team.Id, u.Id)
	start := time.Now()
	code, text = h.slashWith(t, team.Id, token, u.Id, "today", env.MattermostURL+"/hooks/commands/"+hookID)
	if code != http.StatusOK || text != slash.Looking {
		t.Fatalf("today: %d %q, want %q at once", code, text, slash.Looking)
	}
	select {
	case p := <-posts:
		if !strings.Contains(p.Message, "The rest of your day (") || !strings.Contains(p.Message, "(now)") ||
			!strings.Contains(p.Message, "no Do Not Disturb, because of your settings") {
			t.Fatalf("the answer posted through response_url: %q", p.Message)
		}
		t.Logf("answered through response_url after %v:\n%s", time.Since(start).Round(time.Millisecond), p.Message)
	case <-time.After(slash.LateTimeout + 10*time.Second):
		t.Fatal("no ephemeral post from the response_url")
	}
}

// commandHook stores a command hook as Mattermost does when it runs /calstatus for a user
// (app.CreateCommandWebhook: the team's command, the user, a channel of theirs): its id is what
// Mattermost sends as response_url. Mattermost never calls the command's URL here (it refuses
// loopback addresses), so the test makes the hook itself.
func commandHook(t *testing.T, env teststack.Env, admin *model.Client4, teamID, userID string) string {
	t.Helper()
	cmds, _, err := admin.ListCommands(teamID, true)
	if err != nil {
		t.Fatal(err)
	}
	cmdID := ""
	for _, c := range cmds {
		if c.Trigger == "calstatus" {
			cmdID = c.Id
		}
	}
	ch, _, err := admin.GetChannelByName("town-square", teamID, "")
	if err != nil || cmdID == "" {
		t.Fatalf("command %q, town-square: %v", cmdID, err)
	}
	db, err := sql.Open("postgres", env.SQLDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	id := model.NewId()
	if _, err := db.Exec(`INSERT INTO commandwebhooks (id, createat, commandid, userid, channelid, rootid, usecount) VALUES ($1, $2, $3, $4, $5, '', 0)`,
		id, model.GetMillis(), cmdID, userID, ch.Id); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = db.Exec(`DELETE FROM commandwebhooks WHERE id = $1`, id) })
	return id
}

// ephemeralPosts listens on the user's websocket (a personal access token made for the test) and
// gives the ephemeral posts Mattermost sends them.
func ephemeralPosts(t *testing.T, env teststack.Env, admin *model.Client4, userID string) <-chan *model.Post {
	t.Helper()
	tok, _, err := admin.CreateUserAccessToken(userID, "calstatus e2e: /calstatus answers")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.RevokeUserAccessToken(tok.Id) })
	ws, err := model.NewWebSocketClient4("ws"+strings.TrimPrefix(env.MattermostURL, "http"), tok.Token)
	if err != nil {
		t.Fatal(err)
	}
	ws.Listen()
	t.Cleanup(ws.Close)
	posts := make(chan *model.Post, 10)
	go func() {
		for ev := range ws.EventChannel {
			if ev.EventType() != model.WebsocketEventEphemeralMessage {
				continue
			}
			raw, _ := ev.GetData()["post"].(string)
			var p model.Post
			if json.Unmarshal([]byte(raw), &p) == nil {
				posts <- &p
			}
		}
	}()
	go func() {
		for range ws.ResponseChannel {
		}
	}()
	go func() {
		for range ws.PingTimeoutChannel {
		}
	}()
	return posts
}

// busyForAWhile picks a user whose simulated calendar keeps them in a meeting for the next ten
// minutes (and who is online, as the harness leaves everyone).
func busyForAWhile(t *testing.T, h *harness, sc *graphsim.Scenario) *model.User {
	t.Helper()
	now := time.Now()
	for _, u := range h.syncUsers() {
		if wantsDND(sc.StatusAt(u.Email, now)) && !changesWithin(sc, u.Email, now, now.Add(10*time.Minute)) {
			return u
		}
	}
	t.Fatal("no user in a meeting for the next ten minutes")
	return nil
}

// userTeam is the user's first team (the stack's seeded users are in one).
func userTeam(t *testing.T, admin *model.Client4, userID string) *model.Team {
	t.Helper()
	teams, _, err := admin.GetTeamsForUser(userID, "")
	if err != nil || len(teams) == 0 {
		t.Fatalf("user %s's team: %v %v", userID, teams, err)
	}
	return teams[0]
}

// ensureTeam finds the team, or creates it (open, its creator the admin).
func ensureTeam(t *testing.T, admin *model.Client4, name string) *model.Team {
	t.Helper()
	if team, _, err := admin.GetTeamByName(name, ""); err == nil {
		return team
	}
	team, _, err := admin.CreateTeam(&model.Team{Name: name, DisplayName: name, Type: model.TeamOpen})
	if err != nil {
		t.Fatalf("creating team %s: %v", name, err)
	}
	return team
}

// registerCommand runs `calstatus register-command TEAM... APP_URL` with only the Mattermost
// settings, as an admin would, and returns the MATTERMOST_SLASH_TOKEN it prints (its last line).
// Mattermost never calls the URL here (it refuses loopback addresses): the tests post themselves.
func registerCommand(t *testing.T, env teststack.Env, teams ...string) string {
	t.Helper()
	cmd := exec.Command(handlerBinary(t), append(append([]string{"register-command"}, teams...), "http://localhost:7071")...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "MATTERMOST_URL=" + env.MattermostURL, "MATTERMOST_TOKEN=" + env.MattermostToken}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("calstatus register-command: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	return lines[len(lines)-1]
}

// slash posts /calstatus as Mattermost does (a form, the token in it and in the header).
func (h *harness) slash(t *testing.T, teamID, token, userID, text string) (int, string) {
	t.Helper()
	return h.slashWith(t, teamID, token, userID, text, "")
}

// slashWith is slash with the request's response_url.
func (h *harness) slashWith(t *testing.T, teamID, token, userID, text, responseURL string) (int, string) {
	t.Helper()
	form := url.Values{"token": {token}, "user_id": {userID}, "command": {"/calstatus"}, "text": {text},
		"team_id": {teamID}, "channel_id": {"c"}, "user_name": {"someone"}}
	if responseURL != "" {
		form.Set("response_url", responseURL)
	}
	req, err := http.NewRequest(http.MethodPost, h.host.HTTPURL()+"/api/SlashCommand", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if token != "" {
		req.Header.Set("Authorization", "Token "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		ResponseType string `json:"response_type"`
		Text         string `json:"text"`
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &r); err != nil || r.ResponseType != "ephemeral" {
			t.Fatalf("answer %s: want an ephemeral JSON reply", body)
		}
		return resp.StatusCode, r.Text
	}
	return resp.StatusCode, string(body)
}
