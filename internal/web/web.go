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
	// Caller is who the platform says made the request (App Service authentication's user, or the
	// function key's name), "" when it does not say.
	Caller string
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

// Origin is how calstatus names itself in the links it hands out, above all the consent callback
// Microsoft sends an administrator's browser back to. The request's own Host and forwarding
// headers are the client's to choose: a link built from them can send the next admin (and the
// consent answer) elsewhere.
type Origin struct {
	// Public is the app's public base URL (PUBLIC_URL, or https:// + App Service's
	// WEBSITE_HOSTNAME); empty locally, where the URL the request came in on is used.
	Public string
	// TrustForwarded takes X-Forwarded-Host and X-Forwarded-Proto from the request instead
	// (TRUST_FORWARDED_HEADERS, for a reverse proxy that sets them and strips clients' own).
	TrustForwarded bool
}

// Of is the scheme and host for links answering r, without a trailing slash: Public when set.
func (o Origin) Of(r Request) string {
	if o.Public != "" {
		return strings.TrimRight(o.Public, "/")
	}
	u, err := url.Parse(r.URL)
	scheme, host := "https", r.Header("Host")
	if err == nil && u.Host != "" {
		scheme, host = u.Scheme, u.Host
	}
	if o.TrustForwarded {
		if p := r.Header("X-Forwarded-Proto"); p != "" {
			scheme = strings.TrimSpace(strings.Split(p, ",")[0])
		}
		if h := r.Header("X-Forwarded-Host"); h != "" {
			host = strings.TrimSpace(strings.Split(h, ",")[0])
		}
	}
	if scheme != "http" {
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
