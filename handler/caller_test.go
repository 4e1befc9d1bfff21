package handler

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/calstatus/calstatus/internal/web"
)

// A page learns who the host says the caller is (the status page records who paused the sync).
func TestPagesGetTheCaller(t *testing.T) {
	var got web.Request
	status := func(_ context.Context, _ *slog.Logger, r web.Request) (web.Response, error) {
		got = r
		return web.Response{}, nil
	}
	h := New(Deps{Pages: Pages{Status: status}})
	payload := `{"Data":{"req":{"Url":"https://app.example/api/Status","Method":"POST","Headers":{},"Body":"action=pause",` +
		`"Identities":[{"AuthenticationType":"WebJobsAuthLevel","Claims":[{"Type":"http://schemas.microsoft.com/2017/07/functions/claims/keyid","Value":"ops"}]}]}},"Metadata":{}}`
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/"+StatusFunction, strings.NewReader(payload)))
	if rec.Code != http.StatusOK || got.Caller != `function key "ops"` {
		t.Fatalf("%d: the page got caller %q", rec.Code, got.Caller)
	}
}
