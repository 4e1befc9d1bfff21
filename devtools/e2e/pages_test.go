package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	be "encoding/binary"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/calstatus/calstatus/devtools/browser"
	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/handler"
	"github.com/calstatus/calstatus/internal/azstorage"
	"github.com/calstatus/calstatus/internal/store"
)

// screenshots is where the pages' screenshots are kept for review (make test prints the folder).
func screenshots(t *testing.T) string {
	dir := filepath.Join(repoRoot(), ".stack", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The admin's way through the pages, in a real browser, through the local Functions host and the
// real handler: the consent page's button leads to the Entra (simulator's) admin consent endpoint
// with a valid state, which sends the browser back to the callback, which records the consent and
// probes Graph; forged, replayed and expired states, a state taken to another browser and an error
// callback each get a clear error page, record nothing and call neither Graph nor Mattermost;
// concurrent checks run one; the status page shows the sync.
func TestPagesInABrowser(t *testing.T) {
	var checks atomic.Int64 // Graph checks run (each: a Mattermost read and a Graph call)
	h := newHarness(t, harnessOptions{scenario: graphsim.DefaultScenario(), onLog: func(line string) {
		if strings.Contains(line, "Graph access checked") {
			checks.Add(1)
		}
	}})
	ctx := context.Background()
	clearConsent(t, h)
	b := browser.Start(t, screenshots(t), browser.IgnoreCertificateErrors)
	api := h.host.HTTPURL() + "/api/"

	p := b.Open(api + "AdminConsent")
	b.Screenshot("consent")
	if !strings.Contains(p.Text, "Calendars.ReadBasic.All") || !strings.Contains(p.Text, "No admin consent recorded") {
		t.Fatalf("consent page: %s", p)
	}
	link, err := url.Parse(b.Attribute("a.button", "href"))
	if err != nil {
		t.Fatal(err)
	}
	q := link.Query()
	if link.Host != strings.TrimPrefix(h.sim.URL(), "https://") || link.Path != "/"+h.sim.TenantID()+"/v2.0/adminconsent" ||
		q.Get("client_id") != h.sim.ClientID() || q.Get("scope") != "https://graph.microsoft.com/.default" ||
		q.Get("redirect_uri") != api+"AdminConsentCallback" || q.Get("state") == "" {
		t.Fatalf("consent button links to %s", link)
	}
	state := q.Get("state")
	again := b.Open(api + "AdminConsent")
	if again.HTML == p.HTML {
		t.Fatal("the state is not fresh on every load")
	}
	stateOf := func() string {
		b.Open(api + "AdminConsent")
		u, err := url.Parse(b.Attribute("a.button", "href"))
		if err != nil {
			t.Fatal(err)
		}
		return u.Query().Get("state")
	}

	// Error callback (admin_consent=True beside an error), forged state, a state taken to another
	// browser: refused, nothing recorded, neither Graph nor Mattermost asked anything.
	callback := api + "AdminConsentCallback?"
	other := browser.Start(t, screenshots(t), browser.IgnoreCertificateErrors)
	before := h.sim.Stats().Requests
	for _, c := range []struct {
		name    string
		query   url.Values
		browser *browser.Browser
		want    string
	}{
		{"callback-error", url.Values{"admin_consent": {"True"}, "tenant": {h.sim.TenantID()}, "state": {stateOf()},
			"error": {"access_denied"}, "error_description": {"AADSTS65004: <script>alert(1)</script> declined"}}, b, "declined"},
		{"callback-forged", url.Values{"admin_consent": {"True"}, "tenant": {h.sim.TenantID()}, "state": {forge(state)},
			"error": {"x"}, "error_description": {"Sign in again at https://evil.example"}}, b, "not issued by calstatus"},
		{"callback-expired", url.Values{"admin_consent": {"True"}, "tenant": {h.sim.TenantID()}, "state": {expired(t, h)}}, b, "expired"},
		{"callback-other-browser", url.Values{"admin_consent": {"True"}, "tenant": {h.sim.TenantID()}, "state": {stateOf()}}, other,
			"did not come back to the browser"},
	} {
		p := c.browser.Open(callback + c.query.Encode())
		c.browser.Screenshot(c.name)
		if strings.Contains(p.HTML, "<script>alert(1)") || strings.Contains(p.Text, "evil.example") ||
			!strings.Contains(p.Text, c.want) || !strings.Contains(p.Text, "Nothing was recorded") {
			t.Fatalf("%s: %s", c.name, p)
		}
		requireNoConsent(t, h, c.name)
	}
	if after := h.sim.Stats().Requests; after["$batch"] != before["$batch"] || after["getSchedule"] != before["getSchedule"] ||
		after["token"] != before["token"] || checks.Load() != 0 {
		t.Fatalf("refused callbacks reached Graph (requests %v, before %v) or ran %d checks", after, before, checks.Load())
	}

	// The button, followed: Entra (the simulator) sends the browser back with the state.
	p = b.Open(link.String())
	b.Screenshot("callback")
	if !strings.HasPrefix(p.URL, api+"AdminConsentCallback") || !strings.Contains(p.Text, "access works") {
		t.Fatalf("after consent: %s", p)
	}
	rec, found, err := h.store.Consent(ctx)
	if err != nil || !found || !strings.EqualFold(rec.Tenant, h.sim.TenantID()) || rec.Probe != "ok" || time.Since(rec.At) > time.Minute {
		t.Fatalf("consent record %+v found %v (%v)", rec, found, err)
	}

	// Concurrent checks from anyone (no browser needed): one runs.
	clearCheck(t, h)
	checks.Store(0)
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			resp, err := http.Get(api + "AdminConsent?check=1")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("check: %s", resp.Status)
			}
		})
	}
	wg.Wait()
	if n := checks.Load(); n != 1 {
		t.Fatalf("12 concurrent checks ran %d Graph checks, want 1", n)
	}
	p = b.Open(api + "AdminConsent?check=1")
	b.Screenshot("consent-checked-recently")
	if !strings.Contains(p.Text, "checked less than 30 seconds ago") || checks.Load() != 1 {
		t.Fatalf("a check within 30 s: %s (%d checks)", p, checks.Load())
	}

	// Replayed: the same state again is refused and changes nothing.
	clearConsent(t, h)
	p = b.Open(link.String())
	b.Screenshot("callback-replayed")
	if !strings.Contains(p.Text, "already") {
		t.Fatalf("replayed state: %s", p)
	}
	requireNoConsent(t, h, "replayed")

	// The status page, after a cycle in which one user's mailbox is not found, with one user who
	// turned calstatus off and one who paused it: it names who is affected.
	users := h.syncUsers()
	missing, off, paused := users[len(users)-1], users[len(users)-2], users[len(users)-3]
	sc := graphsim.DefaultScenario()
	sc.Mailboxes = map[string]*graphsim.Mailbox{strings.ToLower(missing.Email): {Missing: true}}
	if err := h.sim.SetScenario(sc); err != nil {
		t.Fatal(err)
	}
	if err := h.store.SaveSettings(ctx, off.Id, store.UserSettings{Disabled: true}); err != nil {
		t.Fatal(err)
	}
	if err := h.store.SaveSettings(ctx, paused.Id, store.UserSettings{PausedUntil: time.Now().Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	_, reps, _ := h.cycle(2 * time.Minute)
	p = b.Open(api + "Status")
	b.Screenshot("status")
	if !strings.Contains(p.Text, "Last cycle") || !strings.Contains(p.HTML, "<svg") {
		t.Fatalf("status page: %s", p)
	}
	started := reps[0].CycleID // the cycle id begins with its start: 20060102T150405Z
	since, err := time.Parse("20060102T150405Z", started[:16])
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(missing.Username) + `\s+not_found\s+` +
		regexp.QuoteMeta(since.UTC().Format("2006-01-02 15:04:05")) + ` UTC`)
	if !strings.Contains(p.Text, "Who is affected") || !row.MatchString(p.Text) ||
		!strings.Contains(p.Text, "calstatus off: 1 user; paused: 1 user") || !strings.Contains(p.Text, "at most 50") {
		t.Fatalf("who is affected: want %s failing (not_found) since %s, 1 user off and 1 paused:\n%s", missing.Username, since, p.Text)
	}
	p = b.Click(`#consent a[href="AdminConsent"]`)
	if p.URL != api+"AdminConsent" || !strings.Contains(p.Text, "Calendars.ReadBasic.All") {
		t.Fatalf("the status page's consent link led to %s", p)
	}
	// No page carries a secret.
	for _, secret := range []string{h.sim.ClientSecret(), h.env.MattermostToken} {
		for _, page := range []string{"AdminConsent", "Status", "Status?format=json"} {
			if p := b.Open(api + page); strings.Contains(p.HTML, secret) {
				t.Fatalf("%s shows a secret", page)
			}
		}
	}
	t.Logf("screenshots in %s", screenshots(t))
}

// With SYNC_PAUSED on, the status page says the app setting paused the sync and how to resume,
// offers no switch, and refuses a Resume posted anyway without writing the switch.
func TestStatusPagePausedBySetting(t *testing.T) {
	// SyncShard off: this host must not take (and, paused, consume) other tests' shards.
	h := newHarness(t, harnessOptions{scenario: graphsim.DefaultScenario(),
		settings: map[string]string{"SYNC_PAUSED": "true", "AzureWebJobs." + handler.SyncShardFunction + ".Disabled": "true"}})
	ctx := context.Background()
	clearPauseSwitch(t, h)
	b := browser.Start(t, screenshots(t))
	status := h.host.HTTPURL() + "/api/Status"

	p := b.Open(status)
	b.Screenshot("status-paused-setting")
	if !strings.Contains(p.Text, "Paused by the SYNC_PAUSED app setting") || !strings.Contains(p.Text, "Function App's configuration") ||
		!strings.Contains(p.Text, "local.settings.json") || strings.Contains(p.HTML, "<button") {
		t.Fatalf("paused by SYNC_PAUSED: %s", p)
	}
	resp, err := http.PostForm(status, url.Values{"action": {"resume"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), "SYNC_PAUSED") || !strings.Contains(string(body), "nothing was changed") {
		t.Fatalf("resume posted while SYNC_PAUSED is on: %d %s", resp.StatusCode, body)
	}
	svc, err := azstorageAccount(h).Tables()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.NewClient(store.AppTable).GetEntity(ctx, "app", "paused", nil); err == nil {
		t.Fatal("the refused resume wrote the pause switch")
	}
}

// clearPauseSwitch turns the status page's pause switch off, now and after the test.
func clearPauseSwitch(t *testing.T, h *harness) {
	t.Helper()
	if err := h.store.ClearPauseSwitch(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.store.ClearPauseSwitch(context.Background()) })
}

// expired is a state signed with the app's own key (internal/consent's documented format) that
// expired a minute ago.
func expired(t *testing.T, h *harness) string {
	t.Helper()
	key, err := h.store.StateKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 40) // nonce, expiry, binding (any: the expiry is checked first)
	_, _ = rand.Read(payload[:16])
	be.BigEndian.PutUint64(payload[16:], uint64(time.Now().Add(-time.Minute).Unix()))
	m := hmac.New(sha256.New, key)
	m.Write(payload)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// forge flips one character of a state's signature.
func forge(state string) string {
	r := []rune(state)
	i := len(r) - 2
	if r[i] == 'A' {
		r[i] = 'B'
	} else {
		r[i] = 'A'
	}
	return string(r)
}

func requireNoConsent(t *testing.T, h *harness, after string) {
	t.Helper()
	if rec, found, err := h.store.Consent(context.Background()); err != nil || found {
		t.Fatalf("after %s: consent recorded %+v (%v)", after, rec, err)
	}
}

// clearConsent removes the consent record, so the test sees what it records.
func clearConsent(t *testing.T, h *harness) {
	t.Helper()
	svc, err := azstorageAccount(h).Tables()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = svc.NewClient(store.AppTable).DeleteEntity(context.Background(), "app", "consent", nil)
}

// clearCheck frees the Graph check's rate limit slot.
func clearCheck(t *testing.T, h *harness) {
	t.Helper()
	svc, err := azstorageAccount(h).Tables()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = svc.NewClient(store.AppTable).DeleteEntity(context.Background(), "app", "consent-check", nil)
}

func azstorageAccount(h *harness) azstorage.Account {
	return azstorage.Account{ConnectionString: h.env.StorageConnectionString}
}
