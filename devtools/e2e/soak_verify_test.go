package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/calstatus/calstatus/handler"
	"github.com/calstatus/calstatus/internal/shard"
)

// verify counts, prints and checks the soak's invariants.
func (s *soak) verify() {
	t := s.t
	d := s.track
	d.stop()
	s.scanPages()
	entities := s.scanTables()
	for _, q := range []string{handler.ShardQueue, handler.ShardQueue + "-poison"} {
		for _, text := range s.h.peek(q) {
			s.secrets.scan("queue messages", text)
		}
	}

	// Shards: each the timer planned has its outcome recorded (ok, stale or paused), or failed
	// every delivery, is in the poison queue and recorded as failed. Every delivery of every
	// message (copies and transitions included) ended well or in the poison queue.
	ctx := context.Background()
	outcomes := map[string]int{}
	var skipped []string
	cycles := map[string][]shard.Message{}
	for _, m := range d.shards {
		cycles[m.CycleID] = append(cycles[m.CycleID], m)
	}
	poisoned := map[string]bool{}
	for _, text := range d.poisoned {
		if m, err := shard.Decode([]byte(text)); err == nil && !m.IsTransition() {
			poisoned[fmt.Sprintf("%s/%d", m.CycleID, m.Shard)] = true
		}
	}
	for cycle, msgs := range cycles {
		reps, err := s.h.store.ShardReports(ctx, cycle)
		if err != nil {
			t.Fatal(err)
		}
		recorded := map[int]string{}
		for _, r := range reps {
			recorded[r.Shard] = r.Outcome
		}
		for _, m := range msgs {
			key := fmt.Sprintf("%s/%d", cycle, m.Shard)
			outcome, ok := recorded[m.Shard]
			switch {
			case ok && (outcome == "ok" || outcome == "stale" || outcome == "paused"):
				outcomes[outcome]++
			case ok && outcome == "failed" && poisoned[key]:
				outcomes["failed, in the poison queue"]++
			default:
				skipped = append(skipped, fmt.Sprintf("shard %s: recorded %q, in the poison queue %v", key, outcome, poisoned[key]))
			}
		}
	}
	transitions := 0
	for id, m := range d.msgs {
		if m.transition {
			transitions++
		}
		if !m.ok && !m.poisoned {
			skipped = append(skipped, fmt.Sprintf("message %s (%s) neither done nor in the poison queue: %s", id, m.text, d.lastErr[id]))
		}
	}
	copies := d.copiesNow + d.copiesLate

	st := s.h.sim.Stats()
	mmCalls, mmThrottled, mmRefused, mmEarly, mmEarlyEx := s.mm.counts()
	sort.Strings(skipped)
	f := s.faults
	report(t, "soak: %d users, a day of %v (every %v, events %s to %s), seed %d, %d samples of everyone",
		len(s.users), s.day, soakSlot, s.t0.Format("15:04:05"), s.t0.Add(s.day-soakTail).Format("15:04:05"), soakSeed, s.samples)
	report(t, "soak: faults: Graph 429 storms %d (%d throttled), 5xx bursts %d (%d server errors), hangs %d (%d $batch calls hung); Mattermost restarts %d, 429/503 spells %d (%d and %d of %d calls); Azurite restarts %d; backlogs %d; handler kills %d; copies of messages %d at once, %d late",
		f.graphStorms, st.Throttled, f.graphBursts, st.ServerErrors, f.graphHangs, st.Hung, f.mmRestarts, f.mmFaults, mmThrottled, mmRefused, mmCalls,
		f.azuriteRestarts, f.backlogs, f.kills, d.copiesNow, d.copiesLate)
	report(t, "soak: %d cycles (%d timer runs failed by the host), %d shards (%s), %d messages delivered (%d transitions, %d copies), %d failed deliveries retried, %d poisoned; %d manual changes",
		len(cycles), d.timerFailures, len(d.shards), outcomeText(outcomes), len(d.msgs), transitions, copies, d.failed, len(d.poisoned), s.tally.manual)
	report(t, "soak: left in a status we set after the event ended: %d (%d during the day, %d at its end)", s.tally.left, s.tally.left-s.tally.leftEnd, s.tally.leftEnd)
	report(t, "soak: previous statuses lost: %d", s.tally.lost)
	report(t, "soak: manual changes overridden: %d", s.tally.overridden)
	report(t, "soak: shards silently skipped: %d", len(skipped))
	report(t, "soak: Retry-After violations: %d (Graph %d, of which the very request throttled %d; Mattermost %d); Graph requests in flight when another was told to wait: %d",
		st.EarlyRetries+int64(mmEarly), st.EarlyRetries, st.EarlyRetriesSameRequest, mmEarly, st.RetriesInFlight)
	report(t, "soak: secrets seen: %d (%s; %d table entities)", s.secrets.total(), s.secrets.summary(), entities)
	report(t, "soak: manual flags the user did not set: %d; automatic replies turned off: %d", s.tally.pinned, s.tally.autoReplyOff)

	fail := func(n int, what string, ex []string) {
		if n > 0 {
			t.Errorf("%d %s, e.g.:\n  %s", n, what, strings.Join(ex[:min(len(ex), 12)], "\n  "))
		}
	}
	fail(s.tally.left, "times a user was left in a status calstatus set after the event ended", s.tally.leftEx)
	fail(s.tally.lost, "users lost their previous status", s.tally.lostEx)
	fail(s.tally.overridden, "manual changes were overridden", s.tally.overriddenEx)
	fail(s.tally.pinned, "times a user was left with a manual flag they did not set", s.tally.pinnedEx)
	fail(s.tally.autoReplyOff, "users' automatic replies were turned off", s.tally.autoReplyOffEx)
	fail(len(skipped), "shards or messages silently skipped", skipped)
	if n := st.EarlyRetries + int64(mmEarly); n > 0 {
		t.Errorf("%d retries before their Retry-After (Graph %d, Mattermost %d)\n  %s", n, st.EarlyRetries, mmEarly, strings.Join(mmEarlyEx, "\n  "))
	}
	fail(s.secrets.total(), "secrets seen", s.secrets.examples)
	if f.graphStorms == 0 || f.graphBursts == 0 || f.graphHangs == 0 || f.mmRestarts == 0 || f.mmFaults == 0 ||
		f.azuriteRestarts == 0 || f.backlogs == 0 || f.kills == 0 || d.copiesNow == 0 || d.copiesLate == 0 || transitions == 0 {
		t.Errorf("a fault was never injected or a path never taken: %+v, copies %d/%d, transitions %d", f, d.copiesNow, d.copiesLate, transitions)
	}
	if outcomes["stale"] == 0 {
		t.Errorf("the backlog made no shard stale")
	}
}

func outcomeText(m map[string]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// scanPages reads the pages an admin and a user see — the status page (HTML and JSON), the consent
// page, a /calstatus answer — and looks for secrets in them.
func (s *soak) scanPages() {
	api := s.h.host.HTTPURL() + "/api/"
	for _, page := range []string{"Status", "Status?format=json", "AdminConsent"} {
		resp, err := http.Get(api + page)
		if err != nil {
			s.t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			s.t.Errorf("GET %s: %d", page, resp.StatusCode)
		}
		s.secrets.scan("pages", string(body))
	}
	code, body := s.h.slash(s.t, s.slashTeam, s.secrets.slashToken(), s.users[0].u.Id, "status")
	if code != http.StatusOK {
		s.t.Errorf("/calstatus status: %d %s", code, body)
	}
	s.secrets.scan("pages", body)
}

// scanTables looks for secrets in every entity of every table; it returns how many it read.
func (s *soak) scanTables() int {
	svc, err := aztables.NewServiceClientFromConnectionString(s.h.env.StorageConnectionString, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	ctx := context.Background()
	n := 0
	tables := svc.NewListTablesPager(nil)
	for tables.More() {
		page, err := tables.NextPage(ctx)
		if err != nil {
			s.t.Fatal(err)
		}
		for _, tbl := range page.Tables {
			entities := svc.NewClient(*tbl.Name).NewListEntitiesPager(nil)
			for entities.More() {
				ep, err := entities.NextPage(ctx)
				if err != nil {
					s.t.Fatal(err)
				}
				for _, e := range ep.Entities {
					s.secrets.scan("table entities", string(e))
					n++
				}
			}
		}
	}
	return n
}

// secretScan looks for known secret values, and for anything shaped like a JWT (an access token),
// in text from the places calstatus writes to.
type secretScan struct {
	mu       sync.Mutex
	values   []string
	slash    string
	scanned  map[string]int // place → texts read
	hits     map[string]int // place → secrets found
	examples []string
}

var jwtShape = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+`)

// newSecretScan knows the real Mattermost token and the storage account key in the connection
// string; add makes up more.
func newSecretScan(mattermostToken, storageConnectionString string) *secretScan {
	s := &secretScan{scanned: map[string]int{}, hits: map[string]int{}}
	s.values = append(s.values, mattermostToken)
	for _, part := range strings.Split(storageConnectionString, ";") {
		if k, v, ok := strings.Cut(part, "="); ok && strings.EqualFold(k, "AccountKey") {
			s.values = append(s.values, strings.TrimRight(v, "="))
		}
	}
	return s
}

// add registers a secret value and returns it.
func (s *secretScan) add(v string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values = append(s.values, v)
	if strings.HasPrefix(v, "soakslash") {
		s.slash = v
	}
	return v
}

func (s *secretScan) slashToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.slash
}

func (s *secretScan) scan(place, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scanned[place]++
	found := ""
	for _, v := range s.values {
		if v != "" && strings.Contains(text, v) {
			found = v[:min(len(v), 12)] + "…"
		}
	}
	if jwtShape.MatchString(text) {
		found = "an access token"
	}
	if found == "" {
		return
	}
	s.hits[place]++
	if len(s.examples) < 12 {
		s.examples = append(s.examples, fmt.Sprintf("%s in %s: %.300s", found, place, text))
	}
}

func (s *secretScan) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, h := range s.hits {
		n += h
	}
	return n
}

func (s *secretScan) summary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []string
	for place, n := range s.scanned {
		parts = append(parts, fmt.Sprintf("%d %s read", n, place))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// token26 is prefix followed by random hex digits, 26 characters in all.
func token26(prefix string) string {
	b := make([]byte, 13)
	_, _ = rand.Read(b)
	return (prefix + hex.EncodeToString(b))[:26]
}
