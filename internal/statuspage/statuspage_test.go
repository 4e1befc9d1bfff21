package statuspage

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/calstatus/calstatus/internal/queue"
	"github.com/calstatus/calstatus/internal/store"
	"github.com/calstatus/calstatus/internal/web"
)

// These tests need no stack: the sources are fakes.

type fakeHistory struct {
	cycles []store.CycleHistory
	err    error
	since  time.Time
}

func (f *fakeHistory) Cycles(_ context.Context, since time.Time) ([]store.CycleHistory, error) {
	f.since = since
	return f.cycles, f.err
}

type fakeQueue struct {
	h   queue.Health
	err error
}

func (f fakeQueue) Health(context.Context, time.Time) (queue.Health, error) { return f.h, f.err }

type fakeConsent struct {
	c     Consent
	found bool
	err   error
}

func (f fakeConsent) Consent(context.Context) (Consent, bool, error) { return f.c, f.found, f.err }

var now = time.Date(2026, 11, 22, 10, 7, 30, 0, time.UTC)

const (
	scriptError = `<script>alert(1)</script>`
	markupClass = `<img src=x onerror=alert(2)>`
)

// history is n cycles five minutes apart, the last one two minutes before now, of 1,201 users in
// four shards: changes, failures by class (one with markup in its name), Graph calls, a failed
// shard whose error text is a script every seventh cycle.
func history(n int) []store.CycleHistory {
	var out []store.CycleHistory
	for i := range n {
		start := now.Add(-2*time.Minute - time.Duration(n-1-i)*5*time.Minute)
		id := start.Format("20060102T150405Z") + fmt.Sprintf("-%06x", i)
		h := store.CycleHistory{Plan: store.CycleReport{CycleID: id, Started: start, Users: 1201, Shards: 4}}
		for s := range 4 {
			r := store.ShardReport{CycleID: id, Shard: s, Users: 400, Changed: (i*3 + s) % 11, Unchanged: 390,
				Failures: map[string]int{}, GraphCalls: 1 + (i+s)%3, Throttled: (i + s) % 2, Retries: (i + s) % 2,
				Outcome: "ok", Duration: time.Duration(800+10*i) * time.Millisecond, Finished: start.Add(time.Duration(20+s*5+i%9) * time.Second), Attempt: 1}
			if s == 3 {
				r.Users = 1
			}
			if i%4 == 1 && s == 0 && i != n-1 {
				r.Failures["throttled"] = 2
				r.Failures[markupClass] = 1
				r.Failed = 3
			}
			if i%5 == 2 && s == 2 {
				r.Failures["mailbox_not_found"] = 1
				r.Failed++
			}
			if i%7 == 3 && s == 1 && i != n-1 {
				r.Outcome, r.ErrorClass, r.Error, r.Attempt = "failed", "graph", "graph: 503 "+scriptError, 3
			}
			h.Shards = append(h.Shards, r)
		}
		out = append(out, h)
	}
	return out
}

func newPage(cycles []store.CycleHistory, h queue.Health) *Page {
	return &Page{History: &fakeHistory{cycles: cycles}, Queue: fakeQueue{h: h},
		Consent: fakeConsent{c: Consent{Tenant: "8a3c1f0e-tenant", At: now.Add(-72 * time.Hour), Probe: "ok", ProbedAt: now.Add(-71 * time.Hour)}, found: true},
		Now:     func() time.Time { return now }}
}

func get(t *testing.T, p *Page, query map[string]string) web.Response {
	t.Helper()
	q := map[string]string{"code": "FUNCTION-KEY-SECRET"}
	for k, v := range query {
		q[k] = v
	}
	resp, err := p.Serve(context.Background(), nil, web.Request{Method: "GET",
		URL: "https://calstatus.example/api/Status?code=FUNCTION-KEY-SECRET", Query: q,
		Headers: map[string][]string{"X-Functions-Key": {"HEADER-KEY-SECRET"}}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 200 {
		t.Fatalf("status %d", resp.Status)
	}
	for _, secret := range []string{"FUNCTION-KEY-SECRET", "HEADER-KEY-SECRET"} {
		if strings.Contains(resp.Body, secret) {
			t.Fatalf("the body shows %s", secret)
		}
		for k, v := range resp.Headers {
			if strings.Contains(v, secret) {
				t.Fatalf("header %s shows %s", k, secret)
			}
		}
	}
	return resp
}

func decode(t *testing.T, body string) Report {
	t.Helper()
	var r Report
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	return r
}

var cellRE = regexp.MustCompile(`<td class="n">([^<]*)</td>`)

func TestJSONAndHTMLCarryTheSameNumbers(t *testing.T) {
	p := newPage(history(40), queue.Health{Depth: 12, PoisonDepth: 0, OldestAge: 95 * time.Second})
	js := get(t, p, map[string]string{"format": "json"})
	page := get(t, p, nil).Body
	rep := decode(t, js.Body)

	// Stable snake_case names.
	var raw map[string]any
	_ = json.Unmarshal([]byte(js.Body), &raw)
	for _, k := range []string{"generated_at", "since", "headline", "consent", "last_cycle", "queue", "cycles", "recent_errors", "interval_s", "problems"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("JSON has no %q", k)
		}
	}
	cycle := raw["last_cycle"].(map[string]any)
	for _, k := range []string{"cycle", "started", "users", "shards", "shards_ok", "shards_failed", "shards_missing", "changed", "failed",
		"failures", "graph_calls", "throttled", "retries", "duration_ms", "complete"} {
		if _, ok := cycle[k]; !ok {
			t.Errorf("JSON last_cycle has no %q", k)
		}
	}
	for _, k := range []string{"queue_depth", "poison_depth", "oldest_message_age_s"} {
		if _, ok := raw["queue"].(map[string]any)[k]; !ok {
			t.Errorf("JSON queue has no %q", k)
		}
	}

	if len(rep.Cycles) != 40 || rep.LastCycle == nil || rep.LastCycle.ID != rep.Cycles[39].ID {
		t.Fatalf("%d cycles, last %+v", len(rep.Cycles), rep.LastCycle)
	}
	// The summary is syncer.Summarize's.
	last := rep.LastCycle
	if last.Users != 1201 || last.Shards != 4 || last.ShardsOK != 4 || !last.Complete || last.DurationMs <= 0 {
		t.Fatalf("last cycle %+v", last)
	}
	for _, c := range rep.Cycles {
		row := regexp.MustCompile(`<tr id="cycle-` + regexp.QuoteMeta(c.ID) + `">.*</tr>`).FindString(page)
		if row == "" {
			t.Fatalf("no row for cycle %s", c.ID)
		}
		var cells []string
		for _, m := range cellRE.FindAllStringSubmatch(row, -1) {
			cells = append(cells, m[1])
		}
		want := []string{num(c.Users), num(c.ShardsOK), num(c.ShardsFailed), num(c.ShardsMissing), num(c.Changed), num(c.Failed),
			num(c.GraphCalls), num(c.Throttled), seconds(c.DurationMs)}
		if strings.Join(cells, "|") != strings.Join(want, "|") {
			t.Fatalf("cycle %s: HTML %v, JSON %v", c.ID, cells, want)
		}
	}
	card := section(t, page, "last-cycle")
	for _, s := range []string{num(last.Users), last.ID, num(last.Changed), num(last.GraphCalls), seconds(last.DurationMs),
		fmt.Sprintf("%d ok", last.ShardsOK), fmt.Sprintf("of %d", last.Shards)} {
		if !strings.Contains(card, s) {
			t.Errorf("last cycle card lacks %q:\n%s", s, card)
		}
	}
	q := section(t, page, "queue")
	if rep.Queue.Depth != 12 || rep.Queue.OldestMessageAge != 95 || !strings.Contains(q, "<dd>12</dd>") || !strings.Contains(q, "1 minute") {
		t.Errorf("queue: JSON %+v, HTML %s", rep.Queue, q)
	}
	if !strings.Contains(section(t, page, "consent"), "8a3c1f0e-tenant") || rep.Consent == nil || rep.Consent.Tenant != "8a3c1f0e-tenant" {
		t.Errorf("consent: %+v", rep.Consent)
	}
	// Recent errors: the failed shards, newest first, at most ten.
	if len(rep.RecentErrors) == 0 || len(rep.RecentErrors) > MaxErrors {
		t.Fatalf("%d recent errors", len(rep.RecentErrors))
	}
	for i := 1; i < len(rep.RecentErrors); i++ {
		if rep.RecentErrors[i].Time.After(rep.RecentErrors[i-1].Time) {
			t.Fatalf("errors not newest first: %+v", rep.RecentErrors)
		}
	}
	if n := strings.Count(section(t, page, "errors"), `<td class="err">`); n != len(rep.RecentErrors) {
		t.Fatalf("HTML lists %d errors, JSON %d", n, len(rep.RecentErrors))
	}
	if !strings.Contains(page, html(rep.Headline.Text)) {
		t.Fatalf("HTML lacks the headline %q", rep.Headline.Text)
	}
}

// html escapes like html/template does for text.
func html(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;", "+", "&#43;").Replace(s)
}

// section is the HTML of the element with the given id, up to its </section>.
func section(t *testing.T, page, id string) string {
	t.Helper()
	i := strings.Index(page, `id="`+id+`"`)
	if i < 0 {
		t.Fatalf("no section %s", id)
	}
	j := strings.Index(page[i:], "</section>")
	return page[i : i+j]
}

func TestRemoteTextIsEscaped(t *testing.T) {
	cycles := history(12)
	cycles[11].Shards[0].Outcome, cycles[11].Shards[0].ErrorClass, cycles[11].Shards[0].Error = "failed", `<b>class</b>`, scriptError+" & more"
	p := newPage(cycles, queue.Health{})
	p.Consent = fakeConsent{c: Consent{Tenant: `"><script>alert(3)</script>`, Probe: "error: " + scriptError}, found: true}
	page := get(t, p, nil).Body
	for _, raw := range []string{"<script", "<img", "<b>", "onerror=alert(2)>"} {
		if strings.Contains(strings.ToLower(page), raw) {
			i := strings.Index(strings.ToLower(page), raw)
			t.Fatalf("raw %q in the page: …%s…", raw, page[max(0, i-100):min(len(page), i+100)])
		}
	}
	for _, escaped := range []string{"&lt;script&gt;alert(1)&lt;/script&gt; &amp; more", html(markupClass), "&lt;b&gt;class&lt;/b&gt;"} {
		if !strings.Contains(page, escaped) {
			t.Errorf("page lacks %q", escaped)
		}
	}
	js := get(t, p, map[string]string{"format": "json"}).Body
	if strings.Contains(js, "<script") || strings.Contains(js, "<img") {
		t.Fatalf("raw markup in the JSON")
	}
	if rep := decode(t, js); rep.RecentErrors[0].Error != scriptError+" & more" || rep.RecentErrors[0].ErrorClass != "<b>class</b>" {
		t.Fatalf("JSON changed the texts: %+v", rep.RecentErrors[0])
	}
}

// svgs are the page's <svg> elements.
func svgs(page string) []string {
	return regexp.MustCompile(`(?s)<svg.*?</svg>`).FindAllString(page, -1)
}

func TestChartsAreWellFormedSVGWithOneBarPerCycle(t *testing.T) {
	for _, n := range []int{1, 7, 288} {
		p := newPage(history(n), queue.Health{})
		page := get(t, p, nil).Body
		charts := svgs(page)
		if len(charts) != 4 {
			t.Fatalf("%d cycles: %d charts", n, len(charts))
		}
		for _, svg := range charts {
			d := xml.NewDecoder(strings.NewReader(svg))
			d.Strict = true
			bars, titles, depth := 0, 0, 0
			inBar := false
			for {
				tok, err := d.Token()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("%d cycles: not well-formed XML: %v\n%s", n, err, svg)
				}
				switch e := tok.(type) {
				case xml.StartElement:
					depth++
					if e.Name.Local == "g" && attr(e, "class") == "bar" {
						bars++
						inBar = true
					}
					if e.Name.Local == "title" && inBar {
						titles++
					}
					if e.Name.Local == "rect" {
						for _, a := range []string{"x", "y", "width", "height"} {
							var v float64
							if _, err := fmt.Sscan(attr(e, a), &v); err != nil || v < 0 {
								t.Fatalf("rect %s=%q", a, attr(e, a))
							}
						}
					}
				case xml.EndElement:
					depth--
					if e.Name.Local == "g" {
						inBar = false
					}
				}
			}
			if depth != 0 || bars != n || titles != n {
				t.Fatalf("%d cycles: %d bars, %d tooltips (depth %d)", n, bars, titles, depth)
			}
			for _, label := range []string{"time (UTC)", `class="yl"`, `class="xl"`} {
				if !strings.Contains(svg, label) {
					t.Fatalf("chart lacks %s", label)
				}
			}
		}
		// The failure chart stacks classes with a legend.
		failures := section(t, page, "chart-failures")
		if n > 1 && (!strings.Contains(failures, `<ul class="legend">`) || !strings.Contains(failures, "throttled")) {
			t.Fatalf("%d cycles: failure chart without a legend", n)
		}
		if n == 1 && !strings.Contains(failures, "No failures in the last 24 hours.") {
			t.Fatalf("one cycle without failures: no note")
		}
	}
}

func TestEmptyState(t *testing.T) {
	p := newPage(nil, queue.Health{})
	page := get(t, p, nil).Body
	if len(svgs(page)) != 0 || strings.Count(page, emptyChart) != 4 {
		t.Fatalf("empty state: %d charts", len(svgs(page)))
	}
	rep := decode(t, get(t, p, map[string]string{"format": "json"}).Body)
	if rep.LastCycle != nil || rep.Cycles == nil || rep.RecentErrors == nil || rep.Headline.State != StateNoData {
		t.Fatalf("empty report %+v", rep)
	}
	if !strings.Contains(get(t, p, map[string]string{"format": "json"}).Body, `"cycles": []`) {
		t.Fatalf("cycles is not an empty list")
	}
}

func TestHeadline(t *testing.T) {
	stale := history(6)
	for i := range stale { // the last cycle 17 minutes ago
		stale[i].Plan.Started = stale[i].Plan.Started.Add(-15 * time.Minute)
	}
	inProgress := history(6)
	inProgress[5].Shards = inProgress[5].Shards[:2]
	missing := history(6)
	missing[5].Shards = missing[5].Shards[:3]
	for i := range missing { // the last cycle 7 minutes ago
		missing[i].Plan.Started = missing[i].Plan.Started.Add(-5 * time.Minute)
	}
	failed := history(6)
	failed[5].Shards[2].Outcome, failed[5].Shards[2].ErrorClass = "failed", "graph_auth"
	userFailures := history(6)
	userFailures[5].Shards[1].Failed, userFailures[5].Shards[1].Failures = 3, map[string]int{"mailbox_not_found": 3}
	storageDown := &Page{History: &fakeHistory{err: errors.New("table storage: GET https://acct.table.core.windows.net/?sig=SECRETSIG: 403")},
		Queue: fakeQueue{err: errors.New("queue: AccountKey=SECRETKEY")}, Consent: fakeConsent{}, Now: func() time.Time { return now }}

	for _, tc := range []struct {
		name  string
		page  *Page
		state string
		text  string
		notes []string
	}{
		{"healthy", newPage(history(6), queue.Health{Depth: 4}), StateHealthy, "Healthy: last cycle 2 min ago, complete", nil},
		{"poison", newPage(history(6), queue.Health{PoisonDepth: 3}), StateAttention, "Attention: 3 messages in the poison queue", nil},
		{"one poison", newPage(history(6), queue.Health{PoisonDepth: 1}), StateAttention, "Attention: 1 message in the poison queue", nil},
		{"stale", newPage(stale, queue.Health{PoisonDepth: 2}), StateStale, "No cycle for 17 minutes",
			[]string{"Attention: 2 messages in the poison queue"}},
		{"no data", newPage(nil, queue.Health{}), StateNoData, "No cycle in the last 24 hours", nil},
		{"in progress", newPage(inProgress, queue.Health{Depth: 2}), StateHealthy, "Healthy: last cycle 2 min ago, in progress (2 of 4 shards done)", nil},
		{"missing shard", newPage(missing, queue.Health{}), StateAttention, "Attention: the last cycle (7 min ago) is missing 1 of 4 shards", nil},
		{"failed shard", newPage(failed, queue.Health{}), StateAttention, "Attention: the last cycle (2 min ago) had 1 of 4 shards fail (graph_auth)", nil},
		{"user failures", newPage(userFailures, queue.Health{}), StateHealthy, "Healthy: last cycle 2 min ago, complete; 3 users failed", nil},
		{"backlog", newPage(history(6), queue.Health{Depth: 900, OldestAge: 12 * time.Minute}), StateAttention,
			"Attention: the oldest queue message has waited 12 minutes", nil},
		{"consent not in effect", func() *Page {
			p := newPage(history(6), queue.Health{})
			p.Consent = fakeConsent{c: Consent{Tenant: "t", Probe: "no_permission"}, found: true}
			return p
		}(), StateAttention, "Attention: admin consent check: Graph refuses to read calendars (application permission Calendars.ReadBasic.All missing or not in effect yet)", nil},
		{"storage down", storageDown, StateAttention, "Attention: could not read the cycle records",
			[]string{"Attention: could not measure the shard queue"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := decode(t, get(t, tc.page, map[string]string{"format": "json"}).Body)
			if rep.Headline.State != tc.state || rep.Headline.Text != tc.text {
				t.Fatalf("headline %s %q, want %s %q", rep.Headline.State, rep.Headline.Text, tc.state, tc.text)
			}
			if strings.Join(rep.Headline.Notes, "|") != strings.Join(tc.notes, "|") {
				t.Fatalf("notes %q, want %q", rep.Headline.Notes, tc.notes)
			}
			page := get(t, tc.page, nil).Body
			if !strings.Contains(page, `<div class="headline `+tc.state+`" id="headline">`+html(tc.text)) {
				t.Fatalf("HTML headline differs:\n%s", page[strings.Index(page, "<body>"):][:400])
			}
			for _, secret := range []string{"SECRETSIG", "SECRETKEY", "windows.net"} {
				if strings.Contains(page, secret) {
					t.Fatalf("the page shows %s", secret)
				}
			}
		})
	}
}

func TestHistoryIsAskedForTheLast24Hours(t *testing.T) {
	h := &fakeHistory{cycles: history(3)}
	p := &Page{History: h, Now: func() time.Time { return now }}
	get(t, p, nil)
	if !h.since.Equal(now.Add(-24 * time.Hour)) {
		t.Fatalf("since %v", h.since)
	}
}

func TestHeaders(t *testing.T) {
	p := newPage(history(3), queue.Health{})
	for format, ctype := range map[string]string{"": "text/html; charset=utf-8", "json": "application/json"} {
		resp := get(t, p, map[string]string{"format": format})
		want := map[string]string{
			"Content-Type":           ctype,
			"Cache-Control":          "no-store",
			"X-Content-Type-Options": "nosniff",
			"Referrer-Policy":        "no-referrer",
		}
		for k, v := range want {
			if resp.Headers[k] != v {
				t.Errorf("format %q: %s: %q, want %q", format, k, resp.Headers[k], v)
			}
		}
		csp := resp.Headers["Content-Security-Policy"]
		for _, d := range []string{"default-src 'none'", "style-src 'unsafe-inline'", "img-src data:", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, d) {
				t.Errorf("format %q: CSP %q lacks %s", format, csp, d)
			}
		}
	}
	page := get(t, p, nil).Body
	if m := regexp.MustCompile(`(?i)<script|<[a-z]+[^>]*\s(src|action)=|@import|url\(`).FindString(page); m != "" {
		t.Errorf("the page loads or runs something: %s", m)
	}
	// The one link: to the consent page, relative (the function key in this page's query stays here).
	if links := regexp.MustCompile(`(?i)\shref=("[^"]*"|[^\s>]*)`).FindAllString(page, -1); len(links) != 1 || links[0] != ` href="AdminConsent"` {
		t.Errorf("links: %q", links)
	}
	resp, _ := p.Serve(context.Background(), nil, web.Request{Method: "DELETE"})
	if resp.Status != 405 {
		t.Fatalf("DELETE: %d", resp.Status)
	}
	head, _ := p.Serve(context.Background(), nil, web.Request{Method: "HEAD"})
	if head.Status != 200 || head.Body != "" || head.Headers["Content-Type"] == "" {
		t.Fatalf("HEAD: %+v", head)
	}
}

func TestCleanRedactsAndKeepsXMLValid(t *testing.T) {
	for in, want := range map[string]string{
		"GET https://a.example/x?sig=abc123&sv=1 failed":  "GET https://a.example/x?sig=[redacted]&sv=1 failed",
		"Authorization: Bearer eyJhbGciOi.JIUzI1NiJ9.sig": "Authorization: Bearer [redacted]",
		"DefaultEndpointsProtocol=https;AccountKey=Zm9v;": "DefaultEndpointsProtocol=https;AccountKey=[redacted];",
		"client_secret=s3cr3t and code=K3Y":               "client_secret=[redacted] and code=[redacted]",
		"bad\x00byte\xff and \x1b[31m":                    "bad\uFFFDbyte\uFFFD and \uFFFD[31m",
		"statuscode=503 stays":                            "statuscode=503 stays",
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRender writes a page of made-up data to $STATUSPAGE_RENDER, to look at.
func TestRender(t *testing.T) {
	path := os.Getenv("STATUSPAGE_RENDER")
	if path == "" {
		t.Skip("set STATUSPAGE_RENDER=/tmp/status.html to write a sample page")
	}
	cycles := history(288)
	cycles = append(cycles[:100], cycles[112:]...) // an hour without cycles
	// Users failing for the last 40 minutes, or 10.
	for i := len(cycles) - 8; i < len(cycles); i++ {
		name(cycles, i, 0, fu("ana.petrova", "not_found"), fu("guest@partner.example", "no_mailbox"))
		if i >= len(cycles)-2 {
			name(cycles, i, 2, fu("jonas.berg", "no_access"))
		}
	}
	p := newPage(cycles, queue.Health{Depth: 7, PoisonDepth: 2, OldestAge: 40 * time.Second})
	p.Settings = &fakeSettings{c: store.SettingsCounts{Off: 4, Paused: 2}}
	if err := os.WriteFile(path, []byte(get(t, p, nil).Body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(strings.TrimSuffix(path, ".html")+".json", []byte(get(t, p, map[string]string{"format": "json"}).Body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func attr(e xml.StartElement, name string) string {
	for _, a := range e.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// Teams presence read for no one (the permission not granted): the last cycle says for how many
// users, why, and what to do; the JSON carries the counts. Without failures the line is not shown.
func TestPresenceFailuresAreShown(t *testing.T) {
	cycles := history(3)
	last := &cycles[len(cycles)-1]
	for i := range last.Shards {
		last.Shards[i].PresenceFailures = map[string]int{"forbidden": 100}
	}
	last.Shards[0].PresenceFailures["graph"] = 2
	p := newPage(cycles, queue.Health{})
	html := get(t, p, nil).Body
	for _, want := range []string{"<dt>Teams presence</dt>", "not read for 402 users", "forbidden 400", "<code>Presence.Read.All</code>"} {
		if !strings.Contains(html, want) {
			t.Errorf("the page does not say %q", want)
		}
	}
	r := decode(t, get(t, p, map[string]string{"format": "json"}).Body)
	if got := r.LastCycle.PresenceFailures; got["forbidden"] != 400 || got["graph"] != 2 || len(got) != 2 {
		t.Errorf("JSON presence_failures %v", got)
	}
	if html := get(t, newPage(history(3), queue.Health{}), nil).Body; strings.Contains(html, "Teams presence") {
		t.Error("a Teams presence line without failures")
	}
}
