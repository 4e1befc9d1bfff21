package consent_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/calstatus/calstatus/internal/consent"
	"github.com/calstatus/calstatus/internal/graph"
)

// refusingCredential is Entra ID answering the token request with an AADSTS error.
type refusingCredential struct{ body string }

func (c refusingCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{}, &azidentity.AuthenticationFailedError{RawResponse: &http.Response{
		StatusCode: http.StatusBadRequest, Status: "400 Bad Request", Body: io.NopCloser(strings.NewReader(c.body))}}
}

// credentialError is what graph.Client.GetSchedules returns when Entra ID refuses the token with
// this AADSTS description.
func credentialError(t *testing.T, desc string) error {
	t.Helper()
	c, err := graph.New(graph.Config{BaseURL: "https://graph.invalid/v1.0", MaxAttempts: 1,
		Credential: refusingCredential{body: `{"error":"invalid_client","error_description":"` + desc + ` Trace ID: 1 Correlation ID: 2 Timestamp: 2026-11-30 09:00:00Z"}`}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	_, err = c.GetSchedules(context.Background(), []string{"ada@contoso.example"}, graph.Window{Start: now, End: now.Add(time.Hour)})
	if !graph.IsCredentialError(err) {
		t.Fatalf("want a credential error, got %v", err)
	}
	return err
}

func TestGraphProberMapsOutcomes(t *testing.T) {
	email := func(context.Context) (string, error) { return "ada@contoso.example", nil }
	cases := []struct {
		name   string
		class  string
		err    error
		want   consent.Outcome
		detail string
	}{
		{name: "answered", want: consent.ProbeOK},
		{name: "AADSTS65001", err: credentialError(t, "AADSTS65001: The user or administrator has not consented to use the application with ID 'x'."),
			want: consent.ProbeNotPropagated, detail: "AADSTS65001"},
		{name: "AADSTS7000229", err: credentialError(t, "AADSTS7000229: The client application x is missing service principal in the tenant y."),
			want: consent.ProbeNotPropagated, detail: "AADSTS7000229"},
		{name: "app not in directory", err: credentialError(t, "AADSTS700016: Application with identifier 'x' was not found in the directory 'y'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."),
			want: consent.ProbeNotPropagated, detail: "AADSTS700016"},
		{name: "tenant unknown", err: credentialError(t, "AADSTS90002: Tenant 'z' not found. Check to make sure you have the correct tenant ID."),
			want: consent.ProbeWrongTenant, detail: "AADSTS90002"},
		{name: "bad secret", err: credentialError(t, "AADSTS7000215: Invalid client secret provided."),
			want: consent.ProbeError, detail: "AADSTS7000215"},
		{name: "no access", class: "no_access", want: consent.ProbeNoPermission, detail: "no_access"},
		{name: "unauthorized", class: "unauthorized", err: errors.New("graph: 1 users not fetched: status 403 Authorization_RequestDenied"),
			want: consent.ProbeNoPermission, detail: "Authorization_RequestDenied"},
		{name: "graph down", err: errors.New("graph: 1 users not fetched: $batch failed 4 times: status 503"), want: consent.ProbeError, detail: "503"},
		{name: "no mailbox", class: "no_mailbox", want: consent.ProbeError, detail: "no_mailbox"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var asked string
			p := consent.GraphProber{Email: email, Schedules: func(_ context.Context, e string) (string, error) {
				asked = e
				return c.class, c.err
			}}
			res, err := p.Probe(context.Background())
			if err != nil || res.Outcome != c.want || !strings.Contains(res.Detail, c.detail) || asked != "ada@contoso.example" {
				t.Fatalf("%+v %v (asked %q), want %s with %q", res, err, asked, c.want, c.detail)
			}
			if strings.Contains(res.Detail, "\n") || len(res.Detail) > 320 {
				t.Fatalf("detail not one short line: %q", res.Detail)
			}
		})
	}
}

func TestGraphProberWithoutAUser(t *testing.T) {
	called := false
	sched := func(context.Context, string) (string, error) { called = true; return "", nil }
	p := consent.GraphProber{Schedules: sched, Email: func(context.Context) (string, error) { return "", nil }}
	if res, err := p.Probe(context.Background()); err != nil || res.Outcome != consent.ProbeError || called {
		t.Fatalf("no user: %+v %v", res, err)
	}
	p.Email = func(context.Context) (string, error) { return "", errors.New("mattermost: 401") }
	if _, err := p.Probe(context.Background()); err == nil || !strings.Contains(err.Error(), "mattermost: 401") || called {
		t.Fatalf("email lookup failing: %v", err)
	}
}

func TestProbeResultRecord(t *testing.T) {
	for _, c := range []struct {
		r    consent.ProbeResult
		want string
	}{
		{consent.ProbeResult{Outcome: consent.ProbeOK, Detail: "ignored"}, "ok"},
		{consent.ProbeResult{Outcome: consent.ProbeNotPropagated, Detail: "AADSTS65001"}, "not_propagated"},
		{consent.ProbeResult{Outcome: consent.ProbeError, Detail: "status 503"}, "error: status 503"},
	} {
		if got := c.r.Record(); got != c.want {
			t.Fatalf("%+v records %q, want %q", c.r, got, c.want)
		}
	}
}

// With a presence setting on, the check reads one user's presence too and reports it apart: the
// calendar outcome is the same whatever presence found.
func TestGraphProberChecksPresenceOnlyWhenAsked(t *testing.T) {
	email := func(context.Context) (string, error) { return "ada@contoso.example", nil }
	answered := func(context.Context, string) (string, error) { return "", nil }
	p := consent.GraphProber{Email: email, Schedules: answered}
	if res, err := p.Probe(context.Background()); err != nil || res.Presence != "" || res.Outcome != consent.ProbeOK {
		t.Fatalf("presence off: %+v %v, want no presence outcome", res, err)
	}
	for _, c := range []struct {
		name     string
		calendar func(context.Context, string) (string, error)
		class    string
		err      error
		outcome  consent.Outcome
		want     consent.PresenceOutcome
		detail   string
		asked    bool
	}{
		{name: "granted", calendar: answered, outcome: consent.ProbeOK, want: consent.PresenceGranted, asked: true},
		{name: "not granted", calendar: answered, class: "no_access", err: errors.New("status 403 Forbidden"),
			outcome: consent.ProbeOK, want: consent.PresenceNotGranted, detail: "Graph refused to read Teams presence (no_access): status 403", asked: true},
		{name: "unauthorized", calendar: answered, class: "unauthorized", outcome: consent.ProbeOK, want: consent.PresenceNotGranted, detail: "(unauthorized)", asked: true},
		{name: "graph down", calendar: answered, err: errors.New("status 503"), outcome: consent.ProbeOK, want: consent.PresenceError, detail: "status 503", asked: true},
		{name: "user not found", calendar: answered, class: "not_found", outcome: consent.ProbeOK, want: consent.PresenceError, detail: "(not_found)", asked: true},
		{name: "calendars refused, presence granted", calendar: func(context.Context, string) (string, error) { return "no_access", nil },
			outcome: consent.ProbeNoPermission, want: consent.PresenceGranted, asked: true},
		{name: "no token", calendar: func(context.Context, string) (string, error) {
			return "", credentialError(t, "AADSTS65001: The user or administrator has not consented to use the application with ID 'x'.")
		}, outcome: consent.ProbeNotPropagated, want: consent.PresenceNotChecked},
	} {
		t.Run(c.name, func(t *testing.T) {
			asked := false
			p := consent.GraphProber{Email: email, Schedules: c.calendar, Presence: func(_ context.Context, e string) (string, error) {
				asked = e == "ada@contoso.example"
				return c.class, c.err
			}}
			res, err := p.Probe(context.Background())
			if err != nil || res.Outcome != c.outcome || res.Presence != c.want || !strings.Contains(res.PresenceDetail, c.detail) || asked != c.asked {
				t.Fatalf("%+v %v (presence asked %v), want calendar %s, presence %s with %q", res, err, asked, c.outcome, c.want, c.detail)
			}
			if pub := res.Public(); pub.Presence != c.want || pub.PresenceDetail != "" {
				t.Errorf("public %+v: want the presence outcome without its detail", pub)
			}
			if res.Record() != string(c.outcome) {
				t.Errorf("record %q: presence must not change what the Status page reads", res.Record())
			}
		})
	}
	// No user to check with: neither is checked.
	p = consent.GraphProber{Schedules: answered, Presence: answered, Email: func(context.Context) (string, error) { return "", nil }}
	if res, err := p.Probe(context.Background()); err != nil || res.Outcome != consent.ProbeError || res.Presence != consent.PresenceNotChecked {
		t.Fatalf("no user: %+v %v", res, err)
	}
}
