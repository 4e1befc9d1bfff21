package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	be "encoding/binary"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calstatus/calstatus/devtools/browser"
	"github.com/calstatus/calstatus/devtools/graphsim"
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
// probes Graph; forged, replayed and expired states and an error callback each get a clear error
// page and record nothing; the status page shows the sync.
func TestPagesInABrowser(t *testing.T) {
	h := newHarness(t, harnessOptions{scenario: graphsim.DefaultScenario()})
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
	if again := b.Open(api + "AdminConsent"); again.HTML == p.HTML {
		t.Fatal("the state is not fresh on every load")
	}

	// Error callback (admin_consent=True beside an error), forged state: refused, nothing recorded.
	callback := api + "AdminConsentCallback?"
	for name, query := range map[string]url.Values{
		"callback-error": {"admin_consent": {"True"}, "tenant": {h.sim.TenantID()}, "state": {state},
			"error": {"access_denied"}, "error_description": {"AADSTS65004: <script>alert(1)</script> declined"}},
		"callback-forged":  {"admin_consent": {"True"}, "tenant": {h.sim.TenantID()}, "state": {forge(state)}},
		"callback-expired": {"admin_consent": {"True"}, "tenant": {h.sim.TenantID()}, "state": {expired(t, h)}},
	} {
		p := b.Open(callback + query.Encode())
		b.Screenshot(name)
		if strings.Contains(p.HTML, "<script>alert(1)") || !strings.Contains(p.Text, "Nothing was recorded") {
			t.Fatalf("%s: %s", name, p)
		}
		requireNoConsent(t, h, name)
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

	// Replayed: the same state again is refused and changes nothing.
	clearConsent(t, h)
	p = b.Open(link.String())
	b.Screenshot("callback-replayed")
	if !strings.Contains(p.Text, "already") {
		t.Fatalf("replayed state: %s", p)
	}
	requireNoConsent(t, h, "replayed")

	// The status page, after a cycle.
	h.cycle(2 * time.Minute)
	p = b.Open(api + "Status")
	b.Screenshot("status")
	if !strings.Contains(p.Text, "Last cycle") || !strings.Contains(p.HTML, "<svg") {
		t.Fatalf("status page: %s", p)
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

// expired is a state signed with the app's own key (internal/consent's documented format) that
// expired a minute ago.
func expired(t *testing.T, h *harness) string {
	t.Helper()
	key, err := h.store.StateKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 24)
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

func azstorageAccount(h *harness) azstorage.Account {
	return azstorage.Account{ConnectionString: h.env.StorageConnectionString}
}
