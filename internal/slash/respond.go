package slash

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/calstatus/calstatus/internal/logctx"
	"github.com/calstatus/calstatus/internal/mattermost"
)

// Late answers.
//
// Mattermost waits 30 seconds for a slash command's answer; reading a calendar (a cold start, a
// token, Graph) can take longer. So "status" and "today" wait QuickAnswer for their answer, and
// past that answer "Looking at your calendar…" at once and post the answer to the request's
// response_url when it is ready: Mattermost shows it to the user alone, as a reply to the command.
//
// A custom handler's invocation ends with its HTTP answer: the host no longer waits for anything,
// and the process may be stopped (scale-in, a restart, a deployment) with a late answer still under
// way — it is then lost, the user having been told only "Looking at your calendar…". That risk is
// kept small rather than avoided: a late answer is bounded by LateTimeout (the process lives on
// between invocations, and an idle instance is kept for minutes), and the handler waits for late
// answers on shutdown (Drain). Keeping every answer within the invocation would mean answering
// after Mattermost has given up. Where there is no usable response_url, the answer is waited for
// within the request, as before (up to Timeout).
//
// Mattermost v6.7.2 (app/command.go) sends response_url as SiteURL + "/hooks/commands/<id>", where
// SiteURL is the scheme, Host and subpath of the user's own request to Mattermost (web/handlers.go;
// the configured SiteURL only on Mattermost Cloud): absolute, and its host chosen by whoever sent
// that request. The hook (web/webhook.go, POST /hooks/commands/{id}, no authentication: the id is
// the secret) takes a CommandResponse as JSON, at most 5 times within 30 minutes, for the user and
// channel the command was typed in. calstatus posts only to MATTERMOST_URL: a response_url on
// another host (or not a hook) is refused and the answer is given within the request, so a request
// can never make calstatus post anywhere else (SSRF).
const (
	// QuickAnswer is how long an answer that reads the calendar is waited for before the command
	// answers "Looking at your calendar…" and posts it later.
	QuickAnswer = 2 * time.Second
	// LateTimeout bounds a late answer, its post included (the last PostTimeout of it), from the
	// command's start.
	LateTimeout = 25 * time.Second
	PostTimeout = 5 * time.Second
)

// Looking is the first answer of a command that answers late.
const Looking = "Looking at your calendar… the answer follows here in a few seconds."

// answer runs work, a subcommand that reads the calendar: its text if it is ready within Quick (or
// if it cannot be posted later), else Looking, the text then going to response_url. late reports
// the latter.
func (c *call) answer(ctx context.Context, responseURL string, work func(ctx context.Context) string) (text string, late bool) {
	target, err := c.h.responseTarget(responseURL)
	if err != nil {
		if responseURL != "" {
			c.log.Warn("slash command: response_url refused, answering within the request", "error", err.Error())
		}
		return work(ctx), false
	}
	// The work outlives the request: its context is not the request's, and what it logs after the
	// invocation has answered goes to the process's log (the host drops an invocation's late lines).
	answered := &atomic.Bool{} // set by Serve once it has answered (call.release)
	c.answered = answered
	process := c.h.processLog()
	inv := logctx.From(ctx, nil)
	c.log = slog.New(handoff{inv: c.log.Handler(), late: process.With("user_id", c.userID, "subcommand", c.sub).Handler(), done: answered})
	lateCtx := logctx.With(context.WithoutCancel(ctx), slog.New(handoff{inv: inv.Handler(), late: process.Handler(), done: answered}))
	bound := c.h.lateTimeout
	if bound <= 0 {
		bound = LateTimeout
	}
	workCtx, cancel := context.WithTimeout(lateCtx, bound-PostTimeout)

	var mu sync.Mutex
	ready := make(chan string, 1)
	deferred := false
	c.h.late.Add(1)
	go func() {
		defer c.h.late.Done()
		text := c.safely(workCtx, work)
		cancel()
		mu.Lock()
		if !deferred {
			ready <- text
			mu.Unlock()
			return
		}
		mu.Unlock()
		postCtx, cancel := context.WithTimeout(lateCtx, PostTimeout)
		defer cancel()
		if err := c.h.post(postCtx, target, text); err != nil {
			c.log.Error("slash command: the late answer could not be posted", "error", err.Error())
			return
		}
		c.log.Info("slash command answered late")
	}()
	quick := c.h.Quick
	if quick <= 0 {
		quick = QuickAnswer
	}
	timer := time.NewTimer(quick)
	defer timer.Stop()
	select {
	case text := <-ready:
		return text, false
	case <-timer.C:
	}
	mu.Lock()
	defer mu.Unlock()
	select {
	case text := <-ready: // ready just now
		return text, false
	default:
	}
	deferred = true
	return Looking, true
}

// release sends what a late answer logs from now on to the process's log: the invocation has
// answered.
func (c *call) release() {
	if c.answered != nil {
		c.answered.Store(true)
	}
}

// safely runs work; a panic becomes an apology (a panic in a goroutine would stop the process).
func (c *call) safely(ctx context.Context, work func(ctx context.Context) string) (text string) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("slash command failed", "step", "answer", "panic", fmt.Sprint(r))
			text = "calstatus could not answer just now; please try again in a minute."
		}
	}()
	return work(ctx)
}

// Drain waits for the late answers under way, or until ctx ends (on shutdown).
func (h *Handler) Drain(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		h.late.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Handler) processLog() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, nil))
}

// responseTarget is where to post a late answer for responseURL: the same hook on MATTERMOST_URL.
// responseURL must name a command hook (…/hooks/commands/<id>) under MATTERMOST_URL's path, and be
// relative or on MATTERMOST_URL's host and port (its scheme may differ: a proxy in front of
// Mattermost may not say it took https). The answer always goes to MATTERMOST_URL's scheme and
// host, never to one the request chose.
func (h *Handler) responseTarget(responseURL string) (string, error) {
	if responseURL == "" {
		return "", errors.New("no response_url")
	}
	base, err := url.Parse(strings.TrimRight(strings.TrimSpace(h.MattermostURL), "/"))
	if err != nil || base.Host == "" || base.Scheme != "https" && base.Scheme != "http" {
		return "", errors.New("MATTERMOST_URL is not an http(s) URL")
	}
	u, err := url.Parse(responseURL)
	switch {
	case err != nil:
		return "", errors.New("response_url is not a URL")
	case u.User != nil || u.Opaque != "" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "", errors.New("response_url is not a command hook")
	case u.Scheme == "" && u.Host == "":
		// relative: on MATTERMOST_URL
	case u.Scheme != "https" && u.Scheme != "http":
		return "", errors.New("response_url is not an http(s) URL")
	case !strings.EqualFold(u.Hostname(), base.Hostname()) || port(u) != port(base):
		return "", fmt.Errorf("response_url's host %q is not MATTERMOST_URL's", u.Host)
	}
	id, ok := strings.CutPrefix(u.EscapedPath(), strings.TrimRight(base.EscapedPath(), "/")+"/hooks/commands/")
	if !ok || !mattermost.ValidID(id) {
		return "", errors.New("response_url is not a command hook under MATTERMOST_URL")
	}
	return base.Scheme + "://" + base.Host + strings.TrimRight(base.EscapedPath(), "/") + "/hooks/commands/" + id, nil
}

// port is u's port, "" for its scheme's default.
func port(u *url.URL) string {
	switch p := u.Port(); {
	case p == "80" && u.Scheme == "http", p == "443" && u.Scheme == "https":
		return ""
	default:
		return p
	}
}

// post sends text, shown to the user alone, to a command hook.
func (h *Handler) post(ctx context.Context, target, text string) error {
	body, _ := json.Marshal(struct {
		ResponseType string `json:"response_type"`
		Text         string `json:"text"`
	}{"ephemeral", text})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	client := h.HTTP
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second,
			// A redirect could lead anywhere: the hook answers 200 itself.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("mattermost answered %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}

// handoff logs to the invocation while it is open, then (once done) to the process's log.
type handoff struct {
	inv, late slog.Handler
	done      *atomic.Bool
}

func (h handoff) pick() slog.Handler {
	if h.done.Load() {
		return h.late
	}
	return h.inv
}

func (h handoff) Enabled(ctx context.Context, l slog.Level) bool  { return h.pick().Enabled(ctx, l) }
func (h handoff) Handle(ctx context.Context, r slog.Record) error { return h.pick().Handle(ctx, r) }
func (h handoff) WithAttrs(as []slog.Attr) slog.Handler {
	return handoff{inv: h.inv.WithAttrs(as), late: h.late.WithAttrs(as), done: h.done}
}
func (h handoff) WithGroup(name string) slog.Handler {
	return handoff{inv: h.inv.WithGroup(name), late: h.late.WithGroup(name), done: h.done}
}
