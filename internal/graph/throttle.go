package graph

import (
	"strings"
	"sync"
	"time"
)

// throttle is when Graph lets this process send again, shared by every shard it runs: a 429 given
// to one shard holds the others too — for the whole app after a $batch was throttled, for one
// mailbox after a sub-request naming it was (a duplicate delivery of a shard names the same ones),
// for one operation with a limit of its own (presenceHold, usersHold) after a call of it was.
type throttle struct {
	mu        sync.Mutex
	app       time.Time
	mailboxes map[string]time.Time
}

// Operations limited apart from mailboxes are held under these keys, which no address matches: a
// 429 to presence holds presence calls, not the calendars' getSchedule.
const (
	presenceHold = "op:getPresencesByUserId"
	usersHold    = "op:users"
)

// until is when a sub-request naming mailbox (or an operation's key) may go out.
func (t *throttle) until(mailbox string) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.mailboxes[strings.ToLower(mailbox)]
	if t.app.After(u) {
		return t.app
	}
	return u
}

// holdApp keeps every request back until u.
func (t *throttle) holdApp(u time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if u.After(t.app) {
		t.app = u
	}
}

// holdMailbox keeps requests naming mailbox (or an operation's calls) back until u.
func (t *throttle) holdMailbox(mailbox string, u time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mailboxes == nil {
		t.mailboxes = map[string]time.Time{}
	}
	if len(t.mailboxes) > 10000 { // forget the past ones now and then
		now := time.Now()
		for mb, until := range t.mailboxes {
			if until.Before(now) {
				delete(t.mailboxes, mb)
			}
		}
	}
	key := strings.ToLower(mailbox)
	if u.After(t.mailboxes[key]) {
		t.mailboxes[key] = u
	}
}
