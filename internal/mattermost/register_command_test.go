package mattermost

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/mattermost/mattermost-server/v6/model"
)

// commandServer keeps a team's custom commands the way Mattermost v6.7.2 does (api4/command.go,
// app/command.go): create keeps a given token or makes one, update keeps the token, regen_token
// makes a new one.
type commandServer struct {
	mu          sync.Mutex
	cmds        []*model.Command
	creates     int
	updates     int
	tokensGiven int // tokens that came with a create
	authSeen    string
}

const teamID = "tttttttttttttttttttttttttt"

func (s *commandServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authSeen = r.Header.Get("Authorization")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/api/v4/teams/name/contoso":
		_ = json.NewEncoder(w).Encode(&model.Team{Id: teamID, Name: "contoso"})
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/v4/teams/name/"):
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"id":"app.team.get_by_name.missing.app_error","message":"not found","status_code":404}`))
	case r.Method == http.MethodGet && r.URL.Path == "/api/v4/teams/"+teamID:
		_ = json.NewEncoder(w).Encode(&model.Team{Id: teamID, Name: "contoso"})
	case r.Method == http.MethodGet && r.URL.Path == "/api/v4/commands":
		if r.URL.Query().Get("team_id") != teamID || r.URL.Query().Get("custom_only") != "true" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(s.cmds)
	case r.Method == http.MethodPost && r.URL.Path == "/api/v4/commands":
		var c model.Command
		_ = json.NewDecoder(r.Body).Decode(&c)
		if c.Token != "" {
			s.tokensGiven++
		}
		for _, o := range s.cmds {
			if o.Trigger == c.Trigger {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"id":"api.command.duplicate_trigger.app_error","message":"duplicate","status_code":400}`))
				return
			}
		}
		c.PreSave()
		c.CreatorId = "creatorcreatorcreatorcreat"
		if err := c.IsValid(); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(err)
			return
		}
		s.creates++
		s.cmds = append(s.cmds, &c)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(&c)
	case r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/regen_token"):
		for _, o := range s.cmds {
			if r.URL.Path == "/api/v4/commands/"+o.Id+"/regen_token" {
				o.Token = model.NewId()
				_, _ = w.Write([]byte(model.MapToJSON(map[string]string{"token": o.Token})))
				return
			}
		}
		w.WriteHeader(http.StatusNotFound)
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/api/v4/commands/"):
		var c model.Command
		_ = json.NewDecoder(r.Body).Decode(&c)
		for _, o := range s.cmds {
			if o.Id == c.Id && strings.HasSuffix(r.URL.Path, "/"+c.Id) {
				c.Token, c.CreateAt, c.CreatorId, c.TeamId = o.Token, o.CreateAt, o.CreatorId, o.TeamId
				*o = c
				s.updates++
				_ = json.NewEncoder(w).Encode(o)
				return
			}
		}
		w.WriteHeader(http.StatusNotFound)
	default:
		http.NotFound(w, r)
	}
}

func TestRegisterCommandCreatesThenUpdates(t *testing.T) {
	srv := &commandServer{}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	c := New(hs.URL, "admintoken", nil)
	ctx := context.Background()
	spec := SlashCommand{Trigger: "calstatus", URL: "https://app.example/api/SlashCommand", DisplayName: "calstatus",
		AutocompleteHint: "[on|off|pause 2h|status|help]", AutocompleteDesc: "calendar → status"}
	got, err := c.RegisterCommand(ctx, "contoso", spec)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Created || len(got.Token) != 26 || srv.tokensGiven != 0 || got.TeamID != teamID || got.ID == "" || !strings.EqualFold(srv.authSeen, "Bearer admintoken") {
		t.Fatalf("created %+v (auth %q)", got, srv.authSeen)
	}
	if m := srv.cmds[0]; m.Method != model.CommandMethodPost || !m.AutoComplete || m.URL != spec.URL || m.AutoCompleteHint != spec.AutocompleteHint {
		t.Fatalf("stored command %+v", m)
	}
	// Again, with a new URL and by team id: updated in place, the token kept.
	spec.URL = "https://other.example/api/SlashCommand"
	again, err := c.RegisterCommand(ctx, teamID, spec)
	if err != nil {
		t.Fatal(err)
	}
	if again.Created || again.Token != got.Token || again.ID != got.ID || again.URL != spec.URL || srv.creates != 1 || srv.updates != 1 {
		t.Fatalf("again %+v (%d creates, %d updates)", again, srv.creates, srv.updates)
	}
	if _, err := c.RegisterCommand(ctx, "nosuchteam", SlashCommand{Trigger: "calstatus", URL: "https://x.example"}); err == nil ||
		!strings.HasPrefix(err.Error(), "mattermost: get team: HTTP 404") {
		t.Fatalf("unknown team: %v", err)
	}
}

func TestRegenerateCommandToken(t *testing.T) {
	srv := &commandServer{}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	c := New(hs.URL, "admintoken", nil)
	ctx := context.Background()
	got, err := c.RegisterCommand(ctx, "contoso", SlashCommand{Trigger: "calstatus", URL: "https://app.example/api/SlashCommand"})
	if err != nil {
		t.Fatal(err)
	}
	token, err := c.RegenerateCommandToken(ctx, got.ID)
	if err != nil || len(token) != 26 || token == got.Token || srv.cmds[0].Token != token {
		t.Fatalf("regenerated %q (was %q, stored %q): %v", token, got.Token, srv.cmds[0].Token, err)
	}
	if _, err := c.RegenerateCommandToken(ctx, "nosuchcommand"); err == nil || !strings.HasPrefix(err.Error(), "mattermost: regenerate slash command token: HTTP 404") {
		t.Fatalf("unknown command: %v", err)
	}
}
