package consent

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"html/template"
	"net/http"

	"github.com/calstatus/calstatus/internal/web"
)

//go:embed templates/*.html templates/style.css
var files embed.FS

// The pages' one CSS block, inline (no external assets) and allowed by its hash alone.
var (
	css     = mustRead("templates/style.css")
	cspHash = func() string { h := sha256.Sum256([]byte(css)); return base64.StdEncoding.EncodeToString(h[:]) }()
	// ContentSecurityPolicy allows nothing but the pages' own style block: no script, no frame,
	// no form, no external fetch.
	ContentSecurityPolicy = "default-src 'none'; style-src 'sha256-" + cspHash + "'; img-src data:; " +
		"form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)

var (
	consentPage  = mustParse("templates/consent.html")
	callbackPage = mustParse("templates/callback.html")
)

func mustRead(name string) string {
	b, err := files.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// mustParse builds a page from the shared layout and probe text and its own content.
func mustParse(name string) *template.Template {
	return template.Must(template.New("").ParseFS(files, "templates/layout.html", "templates/probe.html", name))
}

// frame is what the layout needs of every page.
type frame struct {
	Title string
	CSS   template.CSS
}

func newFrame(title string) frame { return frame{Title: title, CSS: template.CSS(css)} }

// headers are every page's: HTML, never cached (a page holds a single-use state), the CSP, and no
// Referer sent on (the consent link carries the state).
func headers() map[string]string {
	return map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Cache-Control":           "no-store",
		"Content-Security-Policy": ContentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
	}
}

// render executes a page; html/template escapes every value for its context.
func render(t *template.Template, status int, view any) (web.Response, error) {
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout", view); err != nil {
		return web.Response{}, err
	}
	return web.Response{Status: status, Body: b.String(), Headers: headers()}, nil
}

func methodNotAllowed() web.Response {
	h := headers()
	h["Content-Type"] = "text/plain; charset=utf-8"
	h["Allow"] = "GET"
	return web.Response{Status: http.StatusMethodNotAllowed, Body: "method not allowed\n", Headers: h}
}
