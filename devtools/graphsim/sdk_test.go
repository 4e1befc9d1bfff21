package graphsim

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	abstractions "github.com/microsoft/kiota-abstractions-go"
	absser "github.com/microsoft/kiota-abstractions-go/serialization"
	kauth "github.com/microsoft/kiota-authentication-azure-go"
	khttp "github.com/microsoft/kiota-http-go"
	jsonserialization "github.com/microsoft/kiota-serialization-json-go"
	msgraphgocore "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

// recorder keeps the (decompressed) bodies of $batch requests.
type recorder struct {
	next   http.RoundTripper
	mu     sync.Mutex
	bodies [][]byte
	hdrs   []http.Header
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, "/$batch") && req.Body != nil {
		b, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(b))
		plain := b
		if req.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err == nil {
				plain, _ = io.ReadAll(zr)
			}
		}
		r.mu.Lock()
		r.bodies = append(r.bodies, plain)
		r.hdrs = append(r.hdrs, req.Header.Clone())
		r.mu.Unlock()
	}
	return r.next.RoundTrip(req)
}

// sdkAdapter builds a Graph request adapter the way production code does: azidentity client
// secret credential + kiota azure auth provider + msgraph-sdk-go-core adapter.
func sdkAdapter(t *testing.T, s *Server) (*msgraphgocore.GraphRequestAdapterBase, *recorder) {
	t.Helper()
	absser.DefaultSerializationWriterFactoryInstance.ContentTypeAssociatedFactories["application/json"] = jsonserialization.NewJsonSerializationWriterFactory()
	absser.DefaultParseNodeFactoryInstance.ContentTypeAssociatedFactories["application/json"] = jsonserialization.NewJsonParseNodeFactory()
	cred, err := azidentity.NewClientSecretCredential(s.TenantID(), s.ClientID(), s.ClientSecret(), credOptions(s))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := kauth.NewAzureIdentityAuthenticationProviderWithScopes(cred, []string{GraphScope})
	if err != nil {
		t.Fatal(err)
	}
	opts := msgraphgocore.GraphClientOptions{GraphServiceLibraryVersion: "1.89.0"}
	rec := &recorder{next: s.Client().Transport}
	hc := &http.Client{Transport: khttp.NewCustomTransportWithParentTransport(rec, msgraphgocore.GetDefaultMiddlewaresWithOptions(&opts)...), Timeout: time.Minute}
	adapter, err := msgraphgocore.NewGraphRequestAdapterBaseWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, opts, nil, nil, hc)
	if err != nil {
		t.Fatal(err)
	}
	adapter.SetBaseUrl(s.GraphURL())
	return adapter, rec
}

func sdkScheduleBody(start time.Time, schedules ...string) users.ItemCalendarGetSchedulePostRequestBodyable {
	b := users.NewItemCalendarGetSchedulePostRequestBody()
	b.SetSchedules(schedules)
	mk := func(t time.Time) models.DateTimeTimeZoneable {
		d := models.NewDateTimeTimeZone()
		v, tz := t.UTC().Format("2006-01-02T15:04:05"), "UTC"
		d.SetDateTime(&v)
		d.SetTimeZone(&tz)
		return d
	}
	b.SetStartTime(mk(start))
	b.SetEndTime(mk(start.Add(2 * time.Hour)))
	iv := int32(15)
	b.SetAvailabilityViewInterval(&iv)
	return b
}

func TestSDKBatch(t *testing.T) {
	sc := &Scenario{Generator: Generator{Seed: 3, BusyFraction: 0.4, Domain: "contoso.example"}}
	s := startSim(t, Config{Scenario: sc})
	adapter, rec := sdkAdapter(t, s)
	ctx := context.Background()
	ub := users.NewUsersRequestBuilderInternal(map[string]string{"baseurl": adapter.GetBaseUrl()}, adapter)
	start := testDay.Add(9 * time.Hour)

	// 20 sub-requests, each with its own mailbox in the URL: all succeed.
	batch := msgraphgocore.NewBatchRequest(adapter)
	ids := map[string]string{}
	for i := 0; i < 20; i++ {
		upn := fmt.Sprintf("user%02d@contoso.example", i)
		ri, err := ub.ByUserId(upn).Calendar().GetSchedule().ToPostRequestInformation(ctx, sdkScheduleBody(start, upn, "nobody@fabrikam.example"), nil)
		if err != nil {
			t.Fatal(err)
		}
		item, err := batch.AddBatchRequestStep(*ri)
		if err != nil {
			t.Fatal(err)
		}
		ids[*item.GetId()] = upn
	}
	resp, err := batch.Send(ctx, adapter)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetFailedResponses()) != 0 {
		t.Fatalf("failed: %v", resp.GetFailedResponses())
	}
	for id, upn := range ids {
		res, err := msgraphgocore.GetBatchResponseById[users.ItemCalendarGetSchedulePostResponseable](resp, id, users.CreateItemCalendarGetSchedulePostResponseFromDiscriminatorValue)
		if err != nil {
			t.Fatal(err)
		}
		v := res.GetValue()
		if len(v) != 2 || *v[0].GetScheduleId() != upn || len(*v[0].GetAvailabilityView()) != 8 {
			t.Fatalf("%s: %+v", upn, v)
		}
		if v[1].GetError() == nil || *v[1].GetError().GetResponseCode() != "ErrorMailRecipientNotFound" {
			t.Fatalf("expected a schedule error for the unknown address")
		}
		for _, it := range v[0].GetScheduleItems() {
			if _, err := time.Parse("2006-01-02T15:04:05.0000000", *it.GetStart().GetDateTime()); err != nil {
				t.Fatal(err)
			}
		}
		// cross-check with the scenario
		want := StatusFree
		for m := 0; m < 15; m += 5 { // events sit on 5-minute boundaries
			if st := sc.StatusAt(upn, start.Add(time.Duration(m)*time.Minute)); statusRank(st) > statusRank(want) {
				want = st
			}
		}
		got := (*v[0].GetAvailabilityView())[0]
		if availabilityDigit(want) != got {
			t.Fatalf("%s: view %c vs StatusAt %s", upn, got, want)
		}
	}
	st := s.Stats()
	if st.Requests["$batch"] != 1 || st.SubRequests != 20 || st.SubStatuses[200] != 20 || st.SchedulesLookedUp != 40 {
		t.Fatalf("stats %+v", st)
	}

	// What the SDK put on the wire.
	rec.mu.Lock()
	raw := rec.bodies[0]
	hdr := rec.hdrs[0]
	rec.mu.Unlock()
	var sent struct {
		Requests []map[string]any `json:"requests"`
	}
	if err := json.Unmarshal(raw, &sent); err != nil {
		t.Fatal(err)
	}
	first := sent.Requests[0]
	t.Logf("batch Content-Encoding=%q; first sub-request as sent: %s", hdr.Get("Content-Encoding"), mustJSON(first))
	u := first["url"].(string)
	if !strings.HasPrefix(u, "/users/") || strings.Contains(u, "v1.0") || !strings.Contains(u, "%40") {
		t.Fatalf("sub-request url %q", u)
	}
	if _, ok := first["body"].(map[string]any); !ok {
		t.Fatalf("body is not an object: %T", first["body"])
	}

	// 20 sub-requests on ONE mailbox in the URL: 4 run, 16 get 429 with Retry-After in the batch.
	batch = msgraphgocore.NewBatchRequest(adapter)
	for i := 0; i < 20; i++ {
		ri, _ := ub.ByUserId("room@contoso.example").Calendar().GetSchedule().ToPostRequestInformation(ctx, sdkScheduleBody(start, fmt.Sprintf("user%02d@contoso.example", i)), nil)
		if _, err := batch.AddBatchRequestStep(*ri); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := batch.AddBatchRequestStep(*first21(ctx, t, ub, start)); err == nil {
		t.Fatal("the SDK should refuse a 21st step")
	}
	resp, err = batch.Send(ctx, adapter)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[int32]int{}
	for id, code := range resp.GetStatusCodes() {
		codes[code]++
		if code == 429 {
			item := resp.GetResponseById(id)
			if item.GetHeaders()["Retry-After"] != "1" {
				t.Fatalf("Retry-After %q", item.GetHeaders()["Retry-After"])
			}
			_, err := msgraphgocore.GetBatchResponseById[users.ItemCalendarGetSchedulePostResponseable](resp, id, users.CreateItemCalendarGetSchedulePostResponseFromDiscriminatorValue)
			if err == nil {
				t.Fatal("want an error for a 429 item")
			}
		}
	}
	if codes[200] != 4 || codes[429] != 16 {
		t.Fatalf("codes %v", codes)
	}
	if st := s.Stats(); st.MaxConcurrentPerMailbox["room@contoso.example"] != 20 || st.ThrottledByReason["concurrency"] != 16 {
		t.Fatalf("stats %+v", st)
	}
}

func first21(ctx context.Context, t *testing.T, ub *users.UsersRequestBuilder, start time.Time) *abstractions.RequestInformation {
	ri, err := ub.ByUserId("x@contoso.example").Calendar().GetSchedule().ToPostRequestInformation(ctx, sdkScheduleBody(start, "x@contoso.example"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return ri
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// msgraph-sdk-go-core v1.4.0 reads every sub-response body as a JSON object (batch_item_model.go,
// convertToMap: "interface was not a map") and so fails a whole $batch when one sub-response has a
// string body, losing the 19 others. internal/graph reads the $batch answer itself because of this;
// if this test starts failing after an SDK upgrade, that workaround may no longer be needed.
func TestSDKBatchFailsWholeOnStringBody(t *testing.T) {
	s := startSim(t, Config{Scenario: &Scenario{Generator: Generator{Seed: 3, Domain: "contoso.example"}}})
	adapter, _ := sdkAdapter(t, s)
	ctx := context.Background()
	ub := users.NewUsersRequestBuilderInternal(map[string]string{"baseurl": adapter.GetBaseUrl()}, adapter)
	start := testDay.Add(9 * time.Hour)
	for name, f := range map[string]Faults{
		"text":   {TextBodyMailboxes: []string{"user07@contoso.example"}},
		"base64": {Base64BodyMailboxes: []string{"user07@contoso.example"}},
	} {
		if err := s.SetFaults(f); err != nil {
			t.Fatal(err)
		}
		batch := msgraphgocore.NewBatchRequest(adapter)
		for i := 0; i < 20; i++ {
			upn := fmt.Sprintf("user%02d@contoso.example", i)
			ri, err := ub.ByUserId(upn).Calendar().GetSchedule().ToPostRequestInformation(ctx, sdkScheduleBody(start, upn), nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := batch.AddBatchRequestStep(*ri); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := batch.Send(ctx, adapter)
		if err == nil {
			t.Fatalf("%s body: the SDK parsed a $batch with a string sub-response body (%d responses)", name, len(resp.GetResponses()))
		}
		t.Logf("one %s sub-response body out of 20: the SDK's batch.Send fails with %q", name, err)
	}
}
