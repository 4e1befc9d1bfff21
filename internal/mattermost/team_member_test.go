package mattermost

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestIsTeamMember(t *testing.T) {
	const team = "tttttttttttttttttttttttttt"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v4/teams/" + team + "/members/member":
			_, _ = w.Write([]byte(`{"team_id":"` + team + `","user_id":"member","roles":"team_user","delete_at":0}`))
		case "/api/v4/teams/" + team + "/members/left":
			_, _ = w.Write([]byte(`{"team_id":"` + team + `","user_id":"left","roles":"team_user","delete_at":1795429200000}`))
		case "/api/v4/teams/" + team + "/members/forbidden":
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"id":"api.context.permissions.app_error","message":"no permission","status_code":403}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"id":"app.team.get_member.missing.app_error","message":"not found","status_code":404}`))
		}
	}))
	defer srv.Close()
	c := New(srv.URL, "token", nil)
	for user, want := range map[string]bool{"member": true, "left": false, "stranger": false} {
		if got, err := c.IsTeamMember(context.Background(), team, user); err != nil || got != want {
			t.Errorf("%s: %v %v, want %v", user, got, err, want)
		}
	}
	if got, err := c.IsTeamMember(context.Background(), team, "forbidden"); err == nil || got || !strings.HasPrefix(err.Error(), "mattermost: get team member: HTTP 403") {
		t.Errorf("forbidden: %v %v", got, err)
	}
}
