package graphsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var testDay = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

func startSim(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Logf == nil {
		cfg.Logf = t.Logf
	}
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// fetchToken gets a token with a plain form POST.
func fetchToken(t *testing.T, s *Server) string {
	t.Helper()
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {s.ClientID()},
		"client_secret": {s.ClientSecret()},
		"scope":         {GraphScope},
	}
	resp, err := s.Client().PostForm(s.URL()+"/"+s.TenantID()+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("token: %d %s", resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, &out); err != nil || out.AccessToken == "" || out.TokenType != "Bearer" || out.ExpiresIn != 3599 {
		t.Fatalf("token response %s (%v)", b, err)
	}
	return out.AccessToken
}

type httpResult struct {
	status int
	header http.Header
	body   []byte
}

func (r httpResult) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("bad JSON %q: %v", r.body, err)
	}
	return m
}

func doJSON(t *testing.T, s *Server, method, path, token string, body any, hdr map[string]string) httpResult {
	t.Helper()
	var rd io.Reader
	if body != nil {
		var b []byte
		switch v := body.(type) {
		case []byte:
			b = v
		case string:
			b = []byte(v)
		default:
			var err error
			if b, err = json.Marshal(body); err != nil {
				t.Fatal(err)
			}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpResult{status: resp.StatusCode, header: resp.Header, body: b}
}

func scheduleBody(start, end time.Time, interval int, schedules ...string) map[string]any {
	return map[string]any{
		"schedules":                schedules,
		"startTime":                map[string]string{"dateTime": start.UTC().Format("2006-01-02T15:04:05"), "timeZone": "UTC"},
		"endTime":                  map[string]string{"dateTime": end.UTC().Format("2006-01-02T15:04:05"), "timeZone": "UTC"},
		"availabilityViewInterval": interval,
	}
}

type batchResp struct {
	Responses []struct {
		ID      string            `json:"id"`
		Status  int               `json:"status"`
		Headers map[string]string `json:"headers"`
		Body    json.RawMessage   `json:"body"`
	} `json:"responses"`
}

func (b batchResp) byID() map[string]int {
	m := map[string]int{}
	for i, r := range b.Responses {
		m[r.ID] = i
	}
	return m
}

func (b batchResp) statuses() map[int]int {
	m := map[int]int{}
	for _, r := range b.Responses {
		m[r.Status]++
	}
	return m
}

// batchOf builds a raw $batch with one getSchedule sub-request per (pathMailbox, schedule).
func batchOf(pathMailboxes []string, start time.Time, schedules func(i int) []string) map[string]any {
	var reqs []any
	for i, mb := range pathMailboxes {
		reqs = append(reqs, map[string]any{
			"id":      fmt.Sprint(i + 1),
			"method":  "POST",
			"url":     "/users/" + url.PathEscape(mb) + "/calendar/getSchedule",
			"headers": map[string]string{"Content-Type": "application/json"},
			"body":    scheduleBody(start, start.Add(time.Hour), 15, schedules(i)...),
		})
	}
	return map[string]any{"requests": reqs}
}

func postBatch(t *testing.T, s *Server, token string, batch any) (httpResult, batchResp) {
	t.Helper()
	r := doJSON(t, s, "POST", "/v1.0/$batch", token, batch, nil)
	var br batchResp
	if r.status == 200 {
		if err := json.Unmarshal(r.body, &br); err != nil {
			t.Fatalf("batch body %s: %v", r.body, err)
		}
	}
	return r, br
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func mustContain(t *testing.T, haystack, needle string) {
	t.Helper()
	if !strings.Contains(haystack, needle) {
		t.Fatalf("%q does not contain %q", haystack, needle)
	}
}
