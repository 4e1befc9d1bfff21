package mattermost

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"
)

// Server is what calstatus needs to know of the Mattermost server's status code, read from its
// version (upstream mattermost/mattermost, server/channels/app/platform/status.go and
// store/sqlstore/status_store.go):
//
//	version           DND end stored   expiry job     dnd_end_time after a status cache miss
//	up to 10.0        as sent          every 5 min    0 (the row is read without it)
//	about 10.1–10.5   as sent          every 5 min    0, and cache entries expire after 30 min
//	about 10.6 on     cut to minute    every minute   read (PRs #29938, #30060)
type Server struct {
	// Version is what the server says it is ("10.11.3"; "" when it did not say).
	Version string
	// DNDExpiry is how often its DND expiry job runs.
	DNDExpiry time.Duration
	// EndsAlwaysRead: its status reads carry dnd_end_time even after a cache miss.
	EndsAlwaysRead bool
	// CustomOff: its custom statuses are turned off (TeamSettings.EnableCustomUserStatuses).
	CustomOff bool
}

// serverTTL is how long what Server read is kept: an upgrade or a setting changed is seen within it.
const serverTTL = 10 * time.Minute

// ServerFor is the behaviour of a server that says it is version (X-Version-Id: "10.11.3.123.abc.false"
// or "10.11.3"); an unreadable version is taken for the oldest behaviour, which is safe everywhere
// but slower to notice a DND the user set without an end.
func ServerFor(version string) Server {
	s := Server{DNDExpiry: 5 * time.Minute}
	parts := strings.SplitN(version, ".", 4)
	if len(parts) < 3 {
		return s
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return s
	}
	s.Version = strings.Join(parts[:3], ".")
	if major > 10 || major == 10 && minor >= 6 {
		s.DNDExpiry, s.EndsAlwaysRead = time.Minute, true
	}
	return s
}

// Server reads what the server is (GET /system/ping: the version is in the X-Version-Id header of
// every answer; GET /config/client: whether custom statuses are on), kept for serverTTL; a failed
// read is tried again at the next call.
func (c *Client) Server(ctx context.Context) (Server, error) {
	c.serverMu.Lock()
	defer c.serverMu.Unlock()
	if c.server != nil && time.Since(c.serverAt) < serverTTL {
		return *c.server, nil
	}
	var version string
	err := c.call(ctx, "read server version", false, func(api *model.Client4) (*model.Response, error) {
		_, resp, err := api.GetPing()
		if resp != nil {
			version = resp.ServerVersion
		}
		return resp, err
	})
	if err != nil {
		return ServerFor(""), err
	}
	if version == "" {
		return ServerFor(""), &Error{Op: "read server version", Status: 200, Err: fmt.Errorf("no %s header", model.HeaderVersionId)}
	}
	on, err := c.CustomStatusesOn(ctx)
	if err != nil {
		return ServerFor(""), err
	}
	s := ServerFor(version)
	s.CustomOff = !on
	c.server, c.serverAt = &s, time.Now()
	return s, nil
}

// CustomStatusesOn reads, now, whether the server's custom statuses are on
// (TeamSettings.EnableCustomUserStatuses, in GET /config/client). A custom status is set by a
// patch of the user's props, which the server would take even with them off.
func (c *Client) CustomStatusesOn(ctx context.Context) (bool, error) {
	var cfg map[string]string
	err := c.call(ctx, "read client config", false, func(api *model.Client4) (*model.Response, error) {
		var resp *model.Response
		var err error
		cfg, resp, err = api.GetOldClientConfig("")
		return resp, err
	})
	return cfg["EnableCustomUserStatuses"] != "false", err
}
