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
