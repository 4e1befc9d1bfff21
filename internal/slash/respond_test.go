package slash

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/calstatus/calstatus/internal/calendar"
	"github.com/calstatus/calstatus/internal/graph"
)

const hook = "hhhhhhhhhhhhhhhhhhhhhhhhhh" // a command hook's id

func TestResponseTarget(t *testing.T) {
	h := &Handler{MattermostURL: "https://chat.example/"}
	sub := &Handler{MattermostURL: "https://example.org:8443/mattermost"}
	for _, tc := range []struct {
		h           *Handler
		responseURL string
		want        string // "" refused
	}{
		{h, "https://chat.example/hooks/commands/" + hook, "https://chat.example/hooks/commands/" + hook},
		{h, "https://CHAT.example:443/hooks/commands/" + hook, "https://chat.example/hooks/commands/" + hook},
		// A proxy that does not tell Mattermost it took https: posted over MATTERMOST_URL's scheme.
		{h, "http://chat.example/hooks/commands/" + hook, "https://chat.example/hooks/commands/" + hook},
		{h, "/hooks/commands/" + hook, "https://chat.example/hooks/commands/" + hook},
		{sub, "https://example.org:8443/mattermost/hooks/commands/" + hook, "https://example.org:8443/mattermost/hooks/commands/" + hook},
		{sub, "/mattermost/hooks/commands/" + hook, "https://example.org:8443/mattermost/hooks/commands/" + hook},
		// Anywhere else: refused.
		{h, "https://evil.example/hooks/commands/" + hook, ""},
		{h, "https://chat.example.evil.example/hooks/commands/" + hook, ""},
		{h, "https://chat.example:8443/hooks/commands/" + hook, ""},
		{h, "https://user@chat.example/hooks/commands/" + hook, ""},
		{h, "//evil.example/hooks/commands/" + hook, ""},
		{h, "https://chat.example/hooks/commands/" + hook + "?x=1", ""},
		{h, "https://chat.example/hooks/commands/" + hook + "#x", ""},
		{h, "https://chat.example/hooks/commands/" + hook + "/../../api/v4/users", ""},
		{h, "https://chat.example/hooks/commands/../../api/v4/" + hook, ""},
		{h, "https://chat.example/api/v4/hooks/" + hook, ""},
		{h, "https://chat.example/hooks/commands/x", ""},
		{h, "https://chat.example/hooks/commands/" + hook + "%2F..", ""},
		{h, "ftp://chat.example/hooks/commands/" + hook, ""},
		{h, "javascript:alert(1)", ""},
		{h, "", ""},
		{sub, "https://example.org:8443/hooks/commands/" + hook, ""}, // outside MATTERMOST_URL's path
		{&Handler{}, "https://chat.example/hooks/commands/" + hook, ""},
	} {
		got, err := tc.h.responseTarget(tc.responseURL)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("%s with MATTERMOST_URL %s: %q %v, want %q", tc.responseURL, tc.h.MattermostURL, got, err, tc.want)
		}
	}
}

// fakeMattermost records what is posted to its command hooks, as Mattermost's /hooks/commands/{id}
// reads it (model.CommandResponseFromHTTPBody).
type fakeMattermost struct {
	*httptest.Server
	mu    sync.Mutex
	posts map[string][]*model.CommandResponse // path → answers
	other int                                 // requests to anything else
}

func newMattermost(t *testing.T) *fakeMattermost {
	f := &fakeMattermost{posts: map[string][]*model.CommandResponse{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/hooks/commands/") {
			f.other++
			http.NotFound(w, r)
			return
		}
		cr, err := model.CommandResponseFromHTTPBody(r.Header.Get("Content-Type"), r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.posts[r.URL.Path] = append(f.posts[r.URL.Path], cr)
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeMattermost) got() (map[string][]*model.CommandResponse, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]*model.CommandResponse{}
	for k, v := range f.posts {
		out[k] = append([]*model.CommandResponse(nil), v...)
	}
	return out, f.other
}

// slowCalendar makes the env's Graph answer only once released.
func (e *env) slowCalendar() (release func()) {
	ch := make(chan struct{})
	inner := e.h.Schedules
	e.h.Schedules = func(ctx context.Context, email string, w graph.Window) (calendar.Availability, error) {
		select {
		case <-ch:
		case <-ctx.Done():
			return calendar.Availability{}, ctx.Err()
		}
		return inner(ctx, email, w)
	}
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

// serveWith runs the command with the request's response_url set.
func (e *env) serveWith(t *testing.T, text, responseURL string, log *slog.Logger) string {
	t.Helper()
	r := request(token, text, true)
	form, _ := url.ParseQuery(string(r.Body))
	form.Set("response_url", responseURL)
	r.Body = []byte(form.Encode())
	resp, err := e.h.Serve(context.Background(), log, r)
	if err != nil || resp.Status != 200 {
		t.Fatalf("%q: %d %v", text, resp.Status, err)
	}
	cr, err := model.CommandResponseFromHTTPBody(resp.Headers["Content-Type"], strings.NewReader(resp.Body))
	if err != nil || cr.ResponseType != model.CommandResponseTypeEphemeral {
		t.Fatalf("%q: answer %+v %v", text, cr, err)
	}
	return cr.Text
}

func drain(t *testing.T, h *Handler) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Drain(ctx); err != nil {
		t.Fatalf("late answers still under way: %v", err)
	}
}

// Past QuickAnswer, "status" and "today" answer "Looking at your calendar…" at once and post the
// answer, for the user alone, to the request's response_url on MATTERMOST_URL.
func TestLateAnswersGoToResponseURL(t *testing.T) {
	for _, sub := range []string{"status", "today"} {
		t.Run(sub, func(t *testing.T) {
			mm := newMattermost(t)
			e := newEnv()
			e.events = []calendar.Event{{Start: t0.Add(-10 * time.Minute), End: t0.Add(20 * time.Minute), Status: calendar.Busy}}
			var invocation, process bytes.Buffer
			e.h.MattermostURL, e.h.Quick, e.h.Log = mm.URL, 20*time.Millisecond, slog.New(slog.NewTextHandler(&process, nil))
			release := e.slowCalendar()
			defer release()
			got := e.serveWith(t, sub, mm.URL+"/hooks/commands/"+hook, slog.New(slog.NewTextHandler(&invocation, nil)))
			if got != Looking {
				t.Fatalf("first answer %q, want %q", got, Looking)
			}
			if posts, _ := mm.got(); len(posts) != 0 {
				t.Fatalf("posted before the answer was ready: %v", posts)
			}
			release()
			drain(t, e.h)
			posts, other := mm.got()
			answers := posts["/hooks/commands/"+hook]
			if len(answers) != 1 || other != 0 || answers[0].ResponseType != model.CommandResponseTypeEphemeral ||
				!strings.Contains(answers[0].Text, "in a meeting (busy)") && !strings.Contains(answers[0].Text, "10:50–11:20 (now) busy") {
				t.Fatalf("posted %+v (%d other requests)", answers, other)
			}
			if !strings.Contains(invocation.String(), "late=true") || !strings.Contains(process.String(), "slash command answered late") ||
				strings.Contains(invocation.String(), "answered late") {
				t.Fatalf("logs: invocation %q, process %q", invocation.String(), process.String())
			}
		})
	}
}

// An answer ready within QuickAnswer is the command's own answer: nothing is posted.
func TestQuickAnswersAreGivenAtOnce(t *testing.T) {
	mm := newMattermost(t)
	e := newEnv()
	e.h.MattermostURL = mm.URL
	got := e.serveWith(t, "status", mm.URL+"/hooks/commands/"+hook, slog.New(slog.DiscardHandler))
	drain(t, e.h)
	if posts, other := mm.got(); !strings.Contains(got, "Your calendar shows you free now.") || len(posts) != 0 || other != 0 {
		t.Fatalf("%q; posted %v", got, posts)
	}
}

// A response_url elsewhere than MATTERMOST_URL is never posted to: the answer is waited for within
// the request instead.
func TestForeignResponseURLIsRefused(t *testing.T) {
	mm, evil := newMattermost(t), newMattermost(t)
	for _, responseURL := range []string{evil.URL + "/hooks/commands/" + hook, mm.URL + "/api/v4/users/" + hook, "file:///etc/passwd"} {
		e := newEnv()
		var invocation bytes.Buffer
		e.h.MattermostURL, e.h.Quick = mm.URL, time.Millisecond
		release := e.slowCalendar()
		time.AfterFunc(50*time.Millisecond, release)
		got := e.serveWith(t, "status", responseURL, slog.New(slog.NewTextHandler(&invocation, nil)))
		drain(t, e.h)
		if !strings.Contains(got, "Your calendar shows you free now.") {
			t.Fatalf("%s: answer %q, want the answer itself", responseURL, got)
		}
		if !strings.Contains(invocation.String(), "response_url refused") {
			t.Errorf("%s: not logged: %s", responseURL, invocation.String())
		}
	}
	for name, f := range map[string]*fakeMattermost{"Mattermost": mm, "the other host": evil} {
		if posts, other := f.got(); len(posts) != 0 || other != 0 {
			t.Fatalf("%s got %v, %d other requests", name, posts, other)
		}
	}
}

// A hook that redirects is not followed; a failed post is logged to the process's log.
func TestLatePostFailures(t *testing.T) {
	evil := newMattermost(t)
	redirect := httptest.NewServer(http.RedirectHandler(evil.URL+"/hooks/commands/"+hook, http.StatusTemporaryRedirect))
	defer redirect.Close()
	e := newEnv()
	var process bytes.Buffer
	e.h.MattermostURL, e.h.Quick, e.h.Log = redirect.URL, time.Millisecond, slog.New(slog.NewTextHandler(&process, nil))
	release := e.slowCalendar()
	if got := e.serveWith(t, "today", redirect.URL+"/hooks/commands/"+hook, slog.New(slog.DiscardHandler)); got != Looking {
		t.Fatalf("%q", got)
	}
	release()
	drain(t, e.h)
	if posts, other := evil.got(); len(posts) != 0 || other != 0 {
		t.Fatalf("the redirect was followed: %v", posts)
	}
	if !strings.Contains(process.String(), "the late answer could not be posted") || !strings.Contains(process.String(), "307") {
		t.Fatalf("process log: %s", process.String())
	}
}

// A late answer is bounded: Graph never answering ends with an apology, posted within LateTimeout.
func TestLateAnswerIsBounded(t *testing.T) {
	mm := newMattermost(t)
	e := newEnv()
	e.h.MattermostURL, e.h.Quick, e.h.Log = mm.URL, time.Millisecond, slog.New(slog.DiscardHandler)
	e.h.lateTimeout = PostTimeout + 300*time.Millisecond
	_ = e.slowCalendar() // never released
	start := time.Now()
	if got := e.serveWith(t, "status", mm.URL+"/hooks/commands/"+hook, slog.New(slog.DiscardHandler)); got != Looking {
		t.Fatalf("%q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.h.lateTimeout+5*time.Second)
	defer cancel()
	if err := e.h.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	posts, _ := mm.got()
	if a := posts["/hooks/commands/"+hook]; len(a) != 1 || !strings.Contains(a[0].Text, "could not read your calendar just now") ||
		time.Since(start) > e.h.lateTimeout+2*time.Second {
		t.Fatalf("after %v: %+v", time.Since(start), a)
	}
}
