package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/calstatus/calstatus/internal/store"
)

// counter is a reverse proxy that counts the calls calstatus makes to one server: reads, writes,
// and when the last write went through.
type counter struct {
	srv  *http.Server
	url  string
	read func(r *http.Request) bool

	mu                         sync.Mutex
	reads, writes, stateWrites int // stateWrites: writes to calstatus's user state table
	lastWrite                  time.Time
	dnd                        map[string]time.Time // user id → when a DND status write was answered
}

func newCounter(target string, read func(r *http.Request) bool) (*counter, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c := &counter{read: read, url: "http://" + ln.Addr().String()}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 256}
	c.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rp.ServeHTTP(w, r)
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.read(r) {
			c.reads++
			return
		}
		c.writes++
		c.lastWrite = time.Now()
		if id, ok := statusWrite(r); ok && bytes.Contains(body, []byte(`"status":"dnd"`)) {
			if c.dnd == nil {
				c.dnd = map[string]time.Time{}
			}
			if _, seen := c.dnd[id]; !seen {
				c.dnd[id] = c.lastWrite
			}
		}
		// A Table Storage transaction names its table in its body.
		if strings.Contains(r.URL.Path, store.UsersTable) || bytes.Contains(body, []byte(store.UsersTable)) {
			c.stateWrites++
		}
	})}
	go func() { _ = c.srv.Serve(ln) }()
	return c, nil
}

// take returns the counts so far and starts again from zero.
func (c *counter) take() (reads, writes, stateWrites int, lastWrite time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	reads, writes, stateWrites, lastWrite = c.reads, c.writes, c.stateWrites, c.lastWrite
	c.reads, c.writes, c.stateWrites, c.lastWrite = 0, 0, 0, time.Time{}
	return reads, writes, stateWrites, lastWrite
}

// dndWrites returns the DND status writes seen since the last call (user id → when the first was
// answered) and starts again.
func (c *counter) dndWrites() map[string]time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.dnd
	c.dnd = nil
	return out
}

// statusWrite says whether r sets a user's status (PUT /api/v4/users/{id}/status), and whose.
func statusWrite(r *http.Request) (string, bool) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/v4/users/")
	if !ok || r.Method != http.MethodPut {
		return "", false
	}
	id, tail, _ := strings.Cut(rest, "/")
	return id, tail == "status"
}

func (c *counter) close() { _ = c.srv.Close() }

// mattermostRead tells Mattermost's reads: GETs, and the POSTs that look users and statuses up.
func mattermostRead(r *http.Request) bool {
	if r.Method == http.MethodGet {
		return true
	}
	return r.Method == http.MethodPost && (strings.HasSuffix(r.URL.Path, "/users/ids") ||
		strings.HasSuffix(r.URL.Path, "/users/status/ids") || strings.HasSuffix(r.URL.Path, "/users/usernames"))
}

// tableRead tells Table Storage's reads (queries and gets) from writes (inserts, updates, deletes,
// $batch transactions).
func tableRead(r *http.Request) bool { return r.Method == http.MethodGet }
