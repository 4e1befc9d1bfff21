package browser

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// The browser really renders and follows: a page with a link, clicked, leads to the next page, and
// the screenshot is a PNG.
func TestBrowserFollowsALinkAndTakesAScreenshot(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium: skipped under -short")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if r.URL.Path == "/next" {
			fmt.Fprint(w, `<html><head><title>Next</title></head><body><p>arrived with `+r.URL.Query().Get("x")+`</p></body></html>`)
			return
		}
		fmt.Fprint(w, `<html><head><title>Start</title></head><body><a id="go" href="/next?x=42">Go</a></body></html>`)
	}))
	defer srv.Close()
	b := Start(t, t.TempDir())
	p := b.Open(srv.URL)
	if p.Title != "Start" || b.Attribute("#go", "href") != "/next?x=42" {
		t.Fatalf("start page %s", p)
	}
	p = b.Click("#go")
	if !strings.HasSuffix(p.URL, "/next?x=42") || p.Text != "arrived with 42" {
		t.Fatalf("after the click: %s", p)
	}
	png, err := os.ReadFile(b.Screenshot("next"))
	if err != nil || len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot: %d bytes, %v", len(png), err)
	}
}
