// Package web holds what calstatus's pages (admin consent, status, the /calstatus slash command)
// share: a request and a response independent of how they reach the handler (an Azure Functions
// HTTP trigger), and the page frame — plain HTML and CSS, no external assets, every value escaped.
package web

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
)

// Request is an HTTP request to a page.
type Request struct {
	Method string
	// URL is the full URL the client asked for (behind App Service's front end, the public one).
	URL     string
	Query   map[string]string
	Headers map[string][]string
	Body    []byte
}

// Header returns the first value of a header, matched case-insensitively.
func (r Request) Header(name string) string {
	for k, v := range r.Headers {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// BaseURL is the scheme and host the client used (X-Forwarded-Proto/Host from App Service's front
// end when present), for links back to the app.
func (r Request) BaseURL() string {
	u, err := url.Parse(r.URL)
	scheme, host := "https", ""
	if err == nil {
		scheme, host = u.Scheme, u.Host
	}
	if p := r.Header("X-Forwarded-Proto"); p != "" {
		scheme = strings.TrimSpace(strings.Split(p, ",")[0])
	}
	if h := r.Header("X-Forwarded-Host"); h != "" {
		host = strings.TrimSpace(strings.Split(h, ",")[0])
	} else if h := r.Header("Host"); h != "" && host == "" {
		host = h
	}
	if scheme == "" {
		scheme = "https"
	}
	return scheme + "://" + host
}

// Response is a page's answer.
type Response struct {
	Status  int
	Body    string
	Headers map[string]string
}

// Page serves one function's requests.
type Page func(ctx context.Context, log *slog.Logger, r Request) (Response, error)
