package graphsim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

func usersN(n int, f string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(f, i)
	}
	return out
}

func one(i int) []string { return []string{fmt.Sprintf("s%02d@contoso.example", i)} }

func TestBatch20AndLimits(t *testing.T) {
	s := startSim(t, Config{})
	tok := fetchToken(t, s)
	r, br := postBatch(t, s, tok, batchOf(usersN(20, "u%02d@contoso.example"), testDay, one))
	if r.status != 200 || len(br.Responses) != 20 || br.statuses()[200] != 20 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	for _, resp := range br.Responses {
		if resp.Headers["Content-Type"] == "" {
			t.Fatal("sub-response without Content-Type")
		}
		var v map[string]any
		if err := json.Unmarshal(resp.Body, &v); err != nil || v["value"] == nil {
			t.Fatalf("sub body %s", resp.Body)
		}
	}
	// 21 -> 400 for the whole batch.
	r, _ = postBatch(t, s, tok, batchOf(usersN(21, "u%02d@contoso.example"), testDay, one))
	if r.status != 400 {
		t.Fatalf("21: %d", r.status)
	}
	// empty, duplicate ids, missing Content-Type on a body.
	for name, b := range map[string]any{
		"empty":     map[string]any{"requests": []any{}},
		"not json":  "{",
		"duplicate": map[string]any{"requests": []any{map[string]any{"id": "1", "method": "GET", "url": "/users/a@b.c"}, map[string]any{"id": "1", "method": "GET", "url": "/users/a@b.c"}}},
		"no content-type": map[string]any{"requests": []any{map[string]any{"id": "1", "method": "POST", "url": "/users/a@contoso.example/calendar/getSchedule",
			"body": scheduleBody(testDay, testDay.Add(time.Hour), 15, "a@contoso.example")}}},
		"numeric id":        map[string]any{"requests": []any{map[string]any{"id": 1, "method": "GET", "url": "/users/a@b.c"}}},
		"unknown dependsOn": map[string]any{"requests": []any{map[string]any{"id": "1", "method": "GET", "url": "/users/a@b.c", "dependsOn": []string{"9"}}}},
	} {
		if r, _ := postBatch(t, s, tok, b); r.status != 400 {
			t.Fatalf("%s: %d %s", name, r.status, r.body)
		}
	}
	if st := s.Stats(); st.HTTPStatuses[400] != 7 || st.Requests["$batch"] != 8 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBatchURLsAndBodies(t *testing.T) {
	s := startSim(t, Config{})
	tok := fetchToken(t, s)
	body := scheduleBody(testDay, testDay.Add(time.Hour), 15, "a@contoso.example")
	raw, _ := json.Marshal(body)
	reqs := []any{
		map[string]any{"id": "slash", "method": "POST", "url": "/users/a%40contoso.example/calendar/getSchedule", "headers": map[string]string{"content-type": "application/json"}, "body": body},
		map[string]any{"id": "noslash", "method": "POST", "url": "users/a@contoso.example/calendar/getSchedule", "headers": map[string]string{"Content-Type": "application/json"}, "body": body},
		map[string]any{"id": "base64", "method": "POST", "url": "/users/b@contoso.example/calendar/getSchedule", "headers": map[string]string{"Content-Type": "application/json"}, "body": base64.StdEncoding.EncodeToString(raw)},
		map[string]any{"id": "versioned", "method": "POST", "url": "/v1.0/users/c@contoso.example/calendar/getSchedule", "headers": map[string]string{"Content-Type": "application/json"}, "body": body},
		map[string]any{"id": "absolute", "method": "POST", "url": s.GraphURL() + "/users/c@contoso.example/calendar/getSchedule", "headers": map[string]string{"Content-Type": "application/json"}, "body": body},
		map[string]any{"id": "unknown", "method": "GET", "url": "/users/c@contoso.example/messages"},
		map[string]any{"id": "dep-fails", "method": "POST", "url": "/users/ghost@fabrikam.example/calendar/getSchedule", "headers": map[string]string{"Content-Type": "application/json"}, "body": body},
		map[string]any{"id": "dependent", "method": "POST", "url": "/users/d@contoso.example/calendar/getSchedule", "headers": map[string]string{"Content-Type": "application/json"}, "body": body, "dependsOn": []string{"dep-fails"}},
		map[string]any{"id": "dependent-ok", "method": "POST", "url": "/users/e@contoso.example/calendar/getSchedule", "headers": map[string]string{"Content-Type": "application/json"}, "body": body, "dependsOn": []string{"slash"}},
	}
	s.SetScenario(&Scenario{Generator: Generator{Seed: 1, Domain: "contoso.example"}})
	r, br := postBatch(t, s, tok, map[string]any{"requests": reqs})
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	want := map[string]int{"slash": 200, "noslash": 200, "base64": 200, "versioned": 400, "absolute": 400, "unknown": 400, "dep-fails": 404, "dependent": 424, "dependent-ok": 200}
	idx := br.byID()
	for id, st := range want {
		if got := br.Responses[idx[id]].Status; got != st {
			t.Fatalf("%s: %d want %d (%s)", id, got, st, br.Responses[idx[id]].Body)
		}
	}
}

func TestBatchMailboxConcurrencyAndEarlyRetries(t *testing.T) {
	clock := newFakeClock(testDay.Add(8 * time.Hour))
	s := startSim(t, Config{Now: clock.Now})
	tok := fetchToken(t, s)
	batch := batchOf(repeat("alice@contoso.example", 6), testDay, one)
	r, br := postBatch(t, s, tok, batch)
	if r.status != 200 {
		t.Fatal(r.status)
	}
	idx := br.byID()
	for i := 1; i <= 6; i++ {
		resp := br.Responses[idx[fmt.Sprint(i)]]
		want := 200
		if i > 4 {
			want = 429
		}
		if resp.Status != want {
			t.Fatalf("id %d: %d", i, resp.Status)
		}
		if want == 429 {
			if resp.Headers["Retry-After"] != "1" {
				t.Fatalf("Retry-After %q", resp.Headers["Retry-After"])
			}
			var e map[string]map[string]any
			_ = json.Unmarshal(resp.Body, &e)
			if e["error"]["code"] != "ApplicationThrottled" {
				t.Fatalf("body %s", resp.Body)
			}
		}
	}
	st := s.Stats()
	if st.Throttled != 2 || st.ThrottledByReason["concurrency"] != 2 || st.MaxConcurrentPerMailbox["alice@contoso.example"] != 6 || st.EarlyRetries != 0 {
		t.Fatalf("stats %+v", st)
	}
	// Sent the moment the answer went out: on its way before the client could read it, not early.
	postBatch(t, s, tok, batch)
	if st = s.Stats(); st.EarlyRetries != 0 || st.RetriesInFlight != 6 {
		t.Fatalf("stats %+v", st)
	}
	// Re-sent later within the Retry-After: every request for alice is early; the two throttled
	// ones are the same requests.
	clock.Advance(inFlight)
	_, br = postBatch(t, s, tok, batch)
	st = s.Stats()
	if st.EarlyRetries != 6 || st.EarlyRetriesSameRequest != 2 || st.RetriesInFlight != 6 || br.statuses()[429] != 2 {
		t.Fatalf("stats %+v", st)
	}
	// Other mailboxes are not affected.
	postBatch(t, s, tok, batchOf([]string{"bob@contoso.example"}, testDay, one))
	if s.Stats().EarlyRetries != 6 {
		t.Fatal("bob counted early")
	}
	// After Retry-After: not early.
	clock.Advance(time.Second)
	postBatch(t, s, tok, batch)
	if st := s.Stats(); st.EarlyRetries != 6 {
		t.Fatalf("stats %+v", st)
	}
	// Punishing early retries.
	clock.Advance(inFlight)
	s.UpdateFaults(func(f *Faults) { f.PunishEarlyRetries = true })
	_, br = postBatch(t, s, tok, batch)
	if br.statuses()[429] != 6 || s.Stats().ThrottledByReason["early"] != 6 {
		t.Fatalf("%v %+v", br.statuses(), s.Stats())
	}
}

func TestDirectConcurrency(t *testing.T) {
	s := startSim(t, Config{RequestLatency: 300 * time.Millisecond})
	tok := fetchToken(t, s)
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	retryAfter := ""
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := doJSON(t, s, "POST", "/v1.0/users/alice@contoso.example/calendar/getSchedule", tok, scheduleBody(testDay, testDay.Add(time.Hour), 15, one(i)...), nil)
			mu.Lock()
			codes[r.status]++
			if r.status == 429 {
				retryAfter = r.header.Get("Retry-After")
			}
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	if codes[200] != 4 || codes[429] != 2 || retryAfter != "1" {
		t.Fatalf("codes %v retry-after %q", codes, retryAfter)
	}
	// A rejected request is answered at once, so the 6th may arrive after the 5th was answered.
	if st := s.Stats(); st.MaxConcurrentPerMailbox["alice@contoso.example"] < 5 || st.HTTPStatuses[429] != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestConcurrencyAcrossBatches(t *testing.T) {
	s := startSim(t, Config{BatchLatency: 400 * time.Millisecond})
	tok := fetchToken(t, s)
	var wg sync.WaitGroup
	results := make([]batchResp, 2)
	for k := 0; k < 2; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			time.Sleep(time.Duration(k) * 150 * time.Millisecond)
			_, results[k] = postBatch(t, s, tok, batchOf(repeat("alice@contoso.example", 3), testDay.Add(time.Duration(k)*time.Hour), one))
		}(k)
	}
	start := time.Now()
	wg.Wait()
	if el := time.Since(start); el < 500*time.Millisecond {
		t.Fatalf("latency not applied: %v", el)
	}
	if results[0].statuses()[200] != 3 || results[1].statuses()[200] != 1 || results[1].statuses()[429] != 2 {
		t.Fatalf("%v %v", results[0].statuses(), results[1].statuses())
	}
}

func TestRateLimit(t *testing.T) {
	clock := newFakeClock(testDay.Add(8 * time.Hour))
	s := startSim(t, Config{Now: clock.Now, MailboxRateLimit: 3, MailboxRateWindow: 10 * time.Second})
	tok := fetchToken(t, s)
	_, br := postBatch(t, s, tok, batchOf(repeat("carol@contoso.example", 5), testDay, one))
	if br.statuses()[200] != 3 || br.statuses()[429] != 2 {
		t.Fatalf("%v", br.statuses())
	}
	for _, r := range br.Responses {
		if r.Status == 429 && r.Headers["Retry-After"] != "10" {
			t.Fatalf("Retry-After %q", r.Headers["Retry-After"])
		}
	}
	clock.Advance(5 * time.Second)
	_, br = postBatch(t, s, tok, batchOf([]string{"carol@contoso.example"}, testDay, one))
	if br.Responses[0].Status != 429 || s.Stats().ThrottledByReason["rate"] != 3 {
		t.Fatalf("%v %+v", br.statuses(), s.Stats())
	}
	clock.Advance(5 * time.Second)
	_, br = postBatch(t, s, tok, batchOf(repeat("carol@contoso.example", 3), testDay, one))
	if br.statuses()[200] != 3 {
		t.Fatalf("%v", br.statuses())
	}
}

func TestInjectedFaults(t *testing.T) {
	clock := newFakeClock(testDay.Add(8 * time.Hour))
	s := startSim(t, Config{Now: clock.Now})
	tok := fetchToken(t, s)
	batch := batchOf(usersN(20, "u%02d@contoso.example"), testDay, one)
	s.SetFaults(Faults{Seed: 7, ServerErrorFraction: 0.5})
	_, br1 := postBatch(t, s, tok, batch)
	n5 := 0
	for _, r := range br1.Responses {
		switch r.Status {
		case 200:
		case 500, 503, 504:
			n5++
		default:
			t.Fatalf("status %d", r.Status)
		}
	}
	if n5 < 3 || n5 > 17 || s.Stats().ServerErrors != int64(n5) {
		t.Fatalf("5xx %d, stats %+v", n5, s.Stats())
	}
	// Deterministic: same seed, same request, same outcome.
	s.SetFaults(Faults{Seed: 7, ServerErrorFraction: 0.5})
	_, br2 := postBatch(t, s, tok, batch)
	i2 := br2.byID()
	for _, r := range br1.Responses {
		if br2.Responses[i2[r.ID]].Status != r.Status {
			t.Fatalf("not deterministic for %s", r.ID)
		}
	}
	// A retry of the same request gets a fresh draw.
	_, br3 := postBatch(t, s, tok, batch)
	same := true
	i3 := br3.byID()
	for _, r := range br1.Responses {
		same = same && br3.Responses[i3[r.ID]].Status == r.Status
	}
	if same {
		t.Fatal("retry got the very same outcome for all 20")
	}

	// Throttle fraction 1: all 429 with Retry-After 2.
	s.SetFaults(Faults{ThrottleFraction: 1, ThrottleRetryAfter: 2})
	_, br := postBatch(t, s, tok, batch)
	for _, r := range br.Responses {
		if r.Status != 429 || r.Headers["Retry-After"] != "2" {
			t.Fatalf("%d %v", r.Status, r.Headers)
		}
	}
	clock.Advance(2 * time.Second)

	// A mailbox failing forever.
	s.SetFaults(Faults{FailMailboxes: []string{"U03@contoso.example"}})
	for k := 0; k < 3; k++ {
		_, br = postBatch(t, s, tok, batch)
		if br.statuses()[503] != 1 || br.Responses[br.byID()["4"]].Status != 503 {
			t.Fatalf("%v", br.statuses())
		}
	}

	// Whole-batch 429, then an early re-send.
	s.ResetStats()
	s.SetFaults(Faults{BatchThrottleFraction: 1, ThrottleRetryAfter: 3})
	r, _ := postBatch(t, s, tok, batch)
	if r.status != 429 || r.header.Get("Retry-After") != "3" {
		t.Fatalf("%d %v", r.status, r.header)
	}
	clock.Advance(time.Second)
	r, _ = postBatch(t, s, tok, batch)
	if st := s.Stats(); st.EarlyRetries != 1 || st.ThrottledByReason["batch"] != 2 {
		t.Fatalf("stats %+v", st)
	}
	clock.Advance(3 * time.Second)
	// Whole-batch 5xx.
	s.SetFaults(Faults{BatchServerErrorFraction: 1, ServerErrorStatuses: []int{502}})
	r, _ = postBatch(t, s, tok, batch)
	if r.status != 502 {
		t.Fatalf("%d", r.status)
	}
	if err := s.SetFaults(Faults{ThrottleFraction: 2}); err == nil {
		t.Fatal("fraction 2 accepted")
	}
}

func TestShuffleAndLatency(t *testing.T) {
	s := startSim(t, Config{})
	tok := fetchToken(t, s)
	s.SetFaults(Faults{Seed: 1, ShuffleBatchResponses: true, BatchLatency: Duration(150 * time.Millisecond)})
	start := time.Now()
	_, br := postBatch(t, s, tok, batchOf(usersN(20, "u%02d@contoso.example"), testDay, one))
	if time.Since(start) < 150*time.Millisecond {
		t.Fatal("no latency")
	}
	inOrder := true
	for i, r := range br.Responses {
		inOrder = inOrder && r.ID == fmt.Sprint(i+1)
	}
	if inOrder || len(br.byID()) != 20 {
		t.Fatal("not shuffled")
	}
}

func TestAdminHTTP(t *testing.T) {
	s := startSim(t, Config{})
	tok := fetchToken(t, s)
	r := doJSON(t, s, "PUT", "/_sim/faults", "", `{"seed":5,"throttleFraction":0.25,"batchLatency":"10ms","failMailboxes":["x@y.z"]}`, nil)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	f := s.Faults()
	if f.Seed != 5 || f.ThrottleFraction != 0.25 || time.Duration(f.BatchLatency) != 10*time.Millisecond || len(f.FailMailboxes) != 1 {
		t.Fatalf("%+v", f)
	}
	r = doJSON(t, s, "PATCH", "/_sim/faults", "", `{"requestLatency":0.02}`, nil)
	if f := s.Faults(); r.status != 200 || f.ThrottleFraction != 0.25 || time.Duration(f.RequestLatency) != 20*time.Millisecond {
		t.Fatalf("%d %+v", r.status, f)
	}
	if r := doJSON(t, s, "PUT", "/_sim/faults", "", `{"throttleFractio":1}`, nil); r.status != 400 {
		t.Fatal("unknown field accepted")
	}
	doJSON(t, s, "PUT", "/_sim/faults", "", `{}`, nil)
	postBatch(t, s, tok, batchOf([]string{"a@contoso.example"}, testDay, one))
	r = doJSON(t, s, "GET", "/_sim/stats", "", nil, nil)
	var st Stats
	if err := json.Unmarshal(r.body, &st); err != nil || st.SubRequests != 1 || st.Requests["$batch"] != 1 || st.TokensIssued != 1 {
		t.Fatalf("%s %v", r.body, err)
	}
	if r := doJSON(t, s, "POST", "/_sim/stats/reset", "", nil, nil); r.status != http.StatusNoContent {
		t.Fatal(r.status)
	}
	if st := s.Stats(); st.SubRequests != 0 {
		t.Fatal("not reset")
	}
	r = doJSON(t, s, "PUT", "/_sim/scenario", "", `{"generator":{"disabled":true},"mailboxes":{"a@contoso.example":{"events":[{"status":"Busy","start":"2026-11-22T10:00:00Z","end":"2026-11-22T11:00:00Z"}]}}}`, nil)
	if r.status != 204 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	r = doJSON(t, s, "GET", "/_sim/status?email=A@contoso.example&at=2026-11-22T10:30:00Z", "", nil, nil)
	if r.json(t)["status"] != "busy" {
		t.Fatalf("%s", r.body)
	}
	r = doJSON(t, s, "GET", "/_sim/status?email=b@contoso.example&at=2026-11-22T10:30:00Z", "", nil, nil)
	if r.json(t)["status"] != "unknown" {
		t.Fatalf("%s", r.body)
	}
}
