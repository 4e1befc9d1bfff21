package graphsim

import (
	"context"
	"errors"
	"testing"

	msgraphgocore "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/communications"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

// msgraph-sdk-go's own models read the simulator's presence, users and errors.
func TestSDKPresenceAndUsers(t *testing.T) {
	sc := presenceScenario()
	sc.Mailboxes["bob@contoso.example"].UserPrincipalName = "bob.jones@contoso.onmicrosoft.example"
	s := startSim(t, Config{Scenario: sc, Roles: presenceTestRoles, Now: newFakeClock(at(10, 25)).Now})
	adapter, _ := sdkAdapter(t, s)
	ctx := context.Background()
	base := map[string]string{"baseurl": adapter.GetBaseUrl()}

	// Users looked up by mail, directly.
	filter := "mail in ('alice@contoso.example','bob@contoso.example','ghost@contoso.example')"
	got, err := users.NewUsersRequestBuilderInternal(base, adapter).Get(ctx, &users.UsersRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.UsersRequestBuilderGetQueryParameters{Filter: &filter, Select: []string{"id", "userPrincipalName", "mail"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, u := range got.GetValue() {
		ids[*u.GetMail()] = *u.GetId()
	}
	if len(ids) != 2 || ids["alice@contoso.example"] != ObjectID("alice@contoso.example") || ids["bob@contoso.example"] != ObjectID("bob@contoso.example") {
		t.Fatalf("users %v", ids)
	}
	if upn := got.GetValue()[1].GetUserPrincipalName(); *upn != "bob.jones@contoso.onmicrosoft.example" {
		t.Fatalf("bob's UPN %s", *upn)
	}

	// Their presence, the SDK's recommended way.
	body := communications.NewGetPresencesByUserIdPostRequestBody()
	body.SetIds([]string{ids["alice@contoso.example"], ids["bob@contoso.example"]})
	pres, err := communications.NewGetPresencesByUserIdRequestBuilderInternal(base, adapter).PostAsGetPresencesByUserIdPostResponse(ctx, body, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := pres.GetValue()
	if len(v) != 2 || *v[0].GetId() != ids["alice@contoso.example"] || *v[0].GetAvailability() != "DoNotDisturb" || *v[0].GetActivity() != "Presenting" ||
		*v[0].GetOutOfOfficeSettings().GetIsOutOfOffice() || v[0].GetOutOfOfficeSettings().GetMessage() != nil {
		t.Fatalf("alice %+v", v[0])
	}
	if oof := v[1].GetOutOfOfficeSettings(); !*oof.GetIsOutOfOffice() || *oof.GetMessage() != "<p>Away until <b>Monday</b>.</p>" || *v[1].GetActivity() != "OutOfOffice" {
		t.Fatalf("bob %+v", v[1])
	}

	// In a $batch: lookups by UPN and by mail, and presence.
	batch := msgraphgocore.NewBatchRequest(adapter)
	steps := map[string]string{}
	for _, f := range []string{"userPrincipalName in ('bob.jones@contoso.onmicrosoft.example')", "mail in ('alice@contoso.example')"} {
		ri, err := users.NewUsersRequestBuilderInternal(base, adapter).ToGetRequestInformation(ctx, &users.UsersRequestBuilderGetRequestConfiguration{
			QueryParameters: &users.UsersRequestBuilderGetQueryParameters{Filter: &f, Select: []string{"id", "userPrincipalName", "mail"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		step, err := batch.AddBatchRequestStep(*ri)
		if err != nil {
			t.Fatal(err)
		}
		steps[*step.GetId()] = f
	}
	ri, err := communications.NewGetPresencesByUserIdRequestBuilderInternal(base, adapter).ToPostRequestInformation(ctx, body, nil)
	if err != nil {
		t.Fatal(err)
	}
	pstep, err := batch.AddBatchRequestStep(*ri)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := batch.Send(ctx, adapter)
	if err != nil {
		t.Fatal(err)
	}
	for id, f := range steps {
		res, err := msgraphgocore.GetBatchResponseById[models.UserCollectionResponseable](resp, id, models.CreateUserCollectionResponseFromDiscriminatorValue)
		if err != nil || len(res.GetValue()) != 1 {
			t.Fatalf("%s: %v", f, err)
		}
	}
	p, err := msgraphgocore.GetBatchResponseById[communications.GetPresencesByUserIdPostResponseable](resp, *pstep.GetId(), communications.CreateGetPresencesByUserIdPostResponseFromDiscriminatorValue)
	if err != nil || len(p.GetValue()) != 2 {
		t.Fatalf("presence in a batch: %v", err)
	}
	if st := s.Stats(); st.PresenceCalls != 2 || st.UserQueries != 3 {
		t.Fatalf("stats %+v", st)
	}

	// A missing permission as the SDK maps it. (A 429 is not tried here: the SDK's retry handler,
	// which calstatus leaves out, would wait it out.)
	s.SetRoles([]string{"Calendars.ReadBasic.All"})
	adapter2, _ := sdkAdapter(t, s) // a new credential: a token with the new roles
	_, err = communications.NewGetPresencesByUserIdRequestBuilderInternal(map[string]string{"baseurl": adapter2.GetBaseUrl()}, adapter2).PostAsGetPresencesByUserIdPostResponse(ctx, body, nil)
	if code, status := odataError(t, err); code != "Forbidden" || status != 403 {
		t.Fatalf("no Presence.Read.All: %v", err)
	}
	_, err = users.NewUsersRequestBuilderInternal(map[string]string{"baseurl": adapter2.GetBaseUrl()}, adapter2).Get(ctx, &users.UsersRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.UsersRequestBuilderGetQueryParameters{Filter: &filter},
	})
	if code, status := odataError(t, err); code != "Authorization_RequestDenied" || status != 403 {
		t.Fatalf("no User.*.All: %v", err)
	}
}

// odataError reads the code and status of an error the SDK returned.
func odataError(t *testing.T, err error) (code string, status int) {
	t.Helper()
	var oe *odataerrors.ODataError
	if !errors.As(err, &oe) {
		t.Fatalf("not an OData error: %v", err)
	}
	return *oe.GetErrorEscaped().GetCode(), oe.GetStatusCode()
}
