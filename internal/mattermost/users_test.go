package mattermost

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	_ "time/tzdata"

	"github.com/mattermost/mattermost-server/v6/model"
)

func TestUsersTimeZone(t *testing.T) {
	users := []*model.User{
		{Id: "auto", Email: "A@x.test", Timezone: model.StringMap{"useAutomaticTimezone": "true", "automaticTimezone": "Europe/Berlin", "manualTimezone": "Asia/Tokyo"}},
		{Id: "manual", Email: "m@x.test", Timezone: model.StringMap{"useAutomaticTimezone": "false", "automaticTimezone": "Europe/Berlin", "manualTimezone": "Asia/Tokyo"}},
		{Id: "auto-empty", Email: "e@x.test", Timezone: model.StringMap{"useAutomaticTimezone": "true", "automaticTimezone": "", "manualTimezone": "Asia/Tokyo"}},
		{Id: "invalid", Email: "i@x.test", Timezone: model.StringMap{"useAutomaticTimezone": "false", "manualTimezone": "Mars/Olympus"}},
		{Id: "local", Email: "l@x.test", Timezone: model.StringMap{"useAutomaticTimezone": "false", "manualTimezone": "Local"}},
		{Id: "none", Email: "n@x.test"},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v4/users/ids" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(users)
	}))
	defer srv.Close()
	got, err := New(srv.URL, "token", nil).Users(context.Background(), []string{"auto", "manual", "auto-empty", "invalid", "local", "none"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"auto": "Europe/Berlin", "manual": "Asia/Tokyo", "auto-empty": "", "invalid": "", "local": "", "none": ""}
	for _, u := range got {
		name := ""
		if u.TimeZone != nil {
			name = u.TimeZone.String()
		}
		if name != want[u.ID] {
			t.Errorf("%s: time zone %q, want %q", u.ID, name, want[u.ID])
		}
	}
	if got[0].Email != "a@x.test" {
		t.Errorf("email %q", got[0].Email)
	}
}

func TestUserStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v4/users/u1/status" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(`{"user_id":"u1","status":"dnd","manual":true,"dnd_end_time":1795429200}`))
	}))
	defer srv.Close()
	c := New(srv.URL, "token", nil)
	st, err := c.UserStatus(context.Background(), "u1")
	if err != nil || st.Status != "dnd" || !st.Manual || st.DNDEnd.Unix() != 1795429200 || c.Reads.Load() != 1 {
		t.Fatalf("%+v %v (%d reads)", st, err, c.Reads.Load())
	}
}

// The user list is read several pages at a time: every user once, in order, whatever the number of
// pages, and not a page read past the end more than a window's worth.
func TestListSyncUsersReadsEveryPage(t *testing.T) {
	for _, n := range []int{0, 199, 200, 1750, 3200} {
		var mu sync.Mutex
		pagesRead := 0
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			page, _ := strconv.Atoi(r.URL.Query().Get("page"))
			per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
			mu.Lock()
			pagesRead++
			mu.Unlock()
			users := []*model.User{}
			for i := page * per; i < min((page+1)*per, n); i++ {
				users = append(users, &model.User{Id: fmt.Sprintf("u%05d", i), Email: fmt.Sprintf("u%05d@x.test", i)})
			}
			_ = json.NewEncoder(w).Encode(users)
		}))
		c := New(srv.URL, "token", nil)
		got, err := c.ListSyncUsers(context.Background())
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("%d users: listed %d", n, len(got))
		}
		for i, u := range got {
			if u.ID != fmt.Sprintf("u%05d", i) {
				t.Fatalf("%d users: #%d is %s", n, i, u.ID)
			}
		}
		if need := n/200 + 1; pagesRead < need || pagesRead > need+8 {
			t.Fatalf("%d users: %d pages read, want %d to %d", n, pagesRead, need, need+8)
		}
	}
}
