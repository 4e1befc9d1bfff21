package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/calstatus/calstatus/devtools/teststack"
	"github.com/mattermost/mattermost-server/v6/model"
)

// writeKind is one kind of Mattermost write calstatus makes (or made, or the plugin makes), as one
// call for one user.
type writeKind struct {
	name string
	call func(api *model.Client4, u *model.User) (*model.Response, error)
}

// writeKinds, in the order they run for each user, setting cs (and taking it out of the recents
// again): every kind leaves what the next one needs, and the last ones leave the user as found
// (online, no custom status, recents as they were).
func writeKinds(cs *model.CustomStatus) []writeKind {
	customJSON := func() string {
		b, _ := json.Marshal(cs)
		return string(b)
	}
	return []writeKind{
		{"status_dnd", func(api *model.Client4, u *model.User) (*model.Response, error) {
			_, r, err := api.UpdateUserStatus(u.Id, &model.Status{UserId: u.Id, Status: model.StatusDnd, DNDEndTime: cs.ExpiresAt.Unix()})
			return r, err
		}},
		{"custom_status_put", func(api *model.Client4, u *model.User) (*model.Response, error) {
			_, r, err := api.UpdateUserCustomStatus(u.Id, cs)
			return r, err
		}},
		{"recent_custom_delete", func(api *model.Client4, u *model.User) (*model.Response, error) {
			r, err := api.DoAPIPost("/users/"+u.Id+"/status/custom/recent/delete", customJSON())
			if r != nil && r.Body != nil {
				r.Body.Close()
			}
			return model.BuildResponse(r), err
		}},
		{"custom_status_delete", func(api *model.Client4, u *model.User) (*model.Response, error) {
			return api.RemoveUserCustomStatus(u.Id)
		}},
		{"props_patch", func(api *model.Client4, u *model.User) (*model.Response, error) {
			props := model.StringMap{}
			for k, v := range u.Props {
				props[k] = v
			}
			props[model.UserPropsKeyCustomStatus] = customJSON()
			_, r, err := api.PatchUser(u.Id, &model.UserPatch{Props: props})
			return r, err
		}},
		{"custom_status_delete_after_patch", func(api *model.Client4, u *model.User) (*model.Response, error) {
			return api.RemoveUserCustomStatus(u.Id)
		}},
		{"status_online", func(api *model.Client4, u *model.User) (*model.Response, error) {
			_, r, err := api.UpdateUserStatus(u.Id, &model.Status{UserId: u.Id, Status: model.StatusOnline})
			return r, err
		}},
	}
}

// writeRate is one kind of write at one concurrency: calls per second and mean latency.
type writeRate struct {
	PerS float64 `json:"per_s"`
	MS   float64 `json:"mean_ms"`
}

// writesResult is the JSON line of the write measurements.
type writesResult struct {
	Case  string `json:"case"`
	Users int    `json:"users"`
	// ByConcurrency: concurrency → kind → rate.
	ByConcurrency map[string]map[string]writeRate `json:"by_concurrency"`
	// CeilingPerS is Mattermost's write ceiling: the most status PUTs per second at any of the
	// concurrencies tried, at CeilingConcurrency.
	CeilingPerS        float64 `json:"ceiling_writes_per_s"`
	CeilingConcurrency int     `json:"ceiling_concurrency"`
	// Changes per second the server can take at the ceiling's concurrency, a DND with a custom
	// status each: the way calstatus writes now (status PUT + props patch), the way it did
	// (+ custom status PUT + recents removal) and the plugin's (status PUT + custom status PUT).
	ChangesPerS map[string]float64 `json:"dnd_custom_changes_per_s"`
}

// writeConcurrencies are the bounds measured.
var writeConcurrencies = []int{8, 16, 32, 64}

// measureWrites measures each kind of write against the stack's Mattermost on its seeded users, at
// each of writeConcurrencies, and leaves the users as it found them.
func measureWrites(ctx context.Context, env teststack.Env) (*writesResult, error) {
	api := model.NewAPIv4Client(env.MattermostURL)
	api.SetToken(env.MattermostToken)
	api.HTTPClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}, Timeout: 30 * time.Second}
	var targets []*model.User
	for page := 0; len(targets) < 600 && page < 10; page++ {
		users, _, err := api.GetUsers(page, 200, "")
		if err != nil {
			return nil, fmt.Errorf("listing users: %w", err)
		}
		for _, u := range users {
			if !u.IsBot && u.DeleteAt == 0 && !u.IsSystemAdmin() {
				targets = append(targets, u)
			}
		}
		if len(users) < 200 {
			break
		}
	}
	targets = targets[:min(len(targets), 600)]
	res := &writesResult{Case: "mattermost_writes", Users: len(targets), ByConcurrency: map[string]map[string]writeRate{}, ChangesPerS: map[string]float64{}}
	cs := &model.CustomStatus{Emoji: "calendar", Text: "In a meeting", Duration: "date_and_time",
		ExpiresAt: time.Now().Add(time.Hour).UTC().Truncate(time.Minute)}
	for _, c := range writeConcurrencies {
		rates := map[string]writeRate{}
		for _, k := range writeKinds(cs) {
			r, err := timeWrites(ctx, api, targets, c, k)
			if err != nil {
				return nil, fmt.Errorf("%s at concurrency %d: %w", k.name, c, err)
			}
			rates[k.name] = r
		}
		res.ByConcurrency[strconv.Itoa(c)] = rates
		for _, k := range []string{"status_dnd", "status_online"} {
			if rates[k].PerS > res.CeilingPerS {
				res.CeilingPerS, res.CeilingConcurrency = rates[k].PerS, c
			}
		}
		say("mattermost writes at concurrency %d: status PUT %.0f/s, custom status PUT %.0f/s, recents removal %.0f/s, props patch %.0f/s",
			c, rates["status_dnd"].PerS, rates["custom_status_put"].PerS, rates["recent_custom_delete"].PerS, rates["props_patch"].PerS)
	}
	at := res.ByConcurrency[strconv.Itoa(res.CeilingConcurrency)]
	per := func(kinds ...string) float64 {
		var s float64
		for _, k := range kinds {
			s += 1 / at[k].PerS
		}
		return 1 / s
	}
	res.ChangesPerS["calstatus"] = per("status_dnd", "props_patch")
	res.ChangesPerS["calstatus_before"] = per("status_dnd", "custom_status_put", "recent_custom_delete")
	res.ChangesPerS["plugin"] = per("status_dnd", "custom_status_put")
	return res, nil
}

// timeWrites makes one write of kind k for every user, c at a time.
func timeWrites(ctx context.Context, api *model.Client4, users []*model.User, c int, k writeKind) (writeRate, error) {
	work := make(chan *model.User)
	var mu sync.Mutex
	var firstErr error
	var lat []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range work {
				t0 := time.Now()
				resp, err := k.call(api, u)
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				if err != nil && firstErr == nil {
					status := 0
					if resp != nil {
						status = resp.StatusCode
					}
					firstErr = fmt.Errorf("user %s: HTTP %d: %w", u.Username, status, err)
				}
				mu.Unlock()
			}
		}()
	}
	for _, u := range users {
		select {
		case work <- u:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return writeRate{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return writeRate{}, err
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	return writeRate{PerS: round1(float64(len(users)) / elapsed.Seconds()), MS: round1(float64(sum.Microseconds()) / 1000 / float64(len(lat)))}, nil
}

func round1(x float64) float64 { return math.Round(x*10) / 10 }
