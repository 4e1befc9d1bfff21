// Package shard defines the queue message that carries one shard of users from the timer to a worker,
// and how users are cut into shards.
package shard

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/calstatus/calstatus/internal/graph"
)

const (
	// MaxUsers is the shard size: what one Graph $batch covers (graph.RequestsPerBatch getSchedule
	// sub-requests of graph.SchedulesPerRequest users each).
	MaxUsers = graph.UsersPerBatch
	// Version is the message format version.
	Version = 1
	// MaxMessageBytes keeps a message well under the queue's 64 KB limit after base64 encoding
	// (which grows it by a third).
	MaxMessageBytes = 40 << 10
)

// Message is one shard's work: everything a worker needs to act on it alone. It carries Mattermost
// user ids (fixed-size), not emails, so its size does not depend on what the emails look like; the
// worker fetches the users (and their custom statuses) in one call.
type Message struct {
	Version int    `json:"v"`
	CycleID string `json:"cycle"`
	// IssuedAt is when the cycle was planned; StaleAfter is when the next cycle supersedes this
	// shard: a worker that gets it later (a backlog) drops it.
	IssuedAt   time.Time `json:"issuedAt"`
	StaleAfter time.Time `json:"staleAfter"`
	Shard      int       `json:"shard"`
	Shards     int       `json:"shards"`
	UserIDs    []string  `json:"users"`
	// ApplyAt, on a transition message, is the meeting start or end it applies: such a message is
	// enqueued by a worker with a visibility delay so it arrives then, between two cycles.
	ApplyAt time.Time `json:"applyAt,omitzero"`
}

// IsTransition reports whether the message applies a transition rather than a cycle's shard.
func (m Message) IsTransition() bool { return !m.ApplyAt.IsZero() }

// Transition is the message that re-applies the rules for userIDs at t.
func (m Message) Transition(t time.Time, userIDs []string, now time.Time) Message {
	return Message{Version: Version, CycleID: m.CycleID, IssuedAt: now.UTC(), StaleAfter: t.Add(TransitionGrace).UTC(),
		Shard: m.Shard, Shards: m.Shards, UserIDs: userIDs, ApplyAt: t.UTC()}
}

// TransitionGrace is how late a transition may still be applied; later, a cycle has covered it.
const TransitionGrace = 10 * time.Minute

// Split cuts user ids into messages of at most MaxUsers. Ids are sorted so a shard is a contiguous
// id range (its stored state then lies in few table partitions).
func Split(cycleID string, issuedAt, staleAfter time.Time, userIDs []string) []Message {
	ids := append([]string(nil), userIDs...)
	sort.Strings(ids)
	n := (len(ids) + MaxUsers - 1) / MaxUsers
	out := make([]Message, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, Message{
			Version: Version, CycleID: cycleID, IssuedAt: issuedAt.UTC(), StaleAfter: staleAfter.UTC(),
			Shard: i, Shards: n, UserIDs: ids[i*MaxUsers : min((i+1)*MaxUsers, len(ids))],
		})
	}
	return out
}

// Decode parses and validates a message; any problem is reported as an error naming it.
func Decode(body []byte) (Message, error) {
	if len(body) > MaxMessageBytes*2 {
		return Message{}, fmt.Errorf("shard message is %d bytes, too large", len(body))
	}
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		return Message{}, fmt.Errorf("shard message is not valid JSON: %v", err)
	}
	return m, m.Validate()
}

// Validate checks a message's fields.
func (m Message) Validate() error {
	switch {
	case m.Version != Version:
		return fmt.Errorf("shard message version %d, want %d", m.Version, Version)
	case !validCycleID(m.CycleID):
		return fmt.Errorf("shard message cycle id %q is not 1-64 characters of [A-Za-z0-9._-]", m.CycleID)
	case m.IssuedAt.IsZero() || m.StaleAfter.Before(m.IssuedAt):
		return fmt.Errorf("shard message times are invalid (issuedAt %v, staleAfter %v)", m.IssuedAt, m.StaleAfter)
	case m.Shards < 1 || m.Shard < 0 || m.Shard >= m.Shards:
		return fmt.Errorf("shard message index %d of %d is invalid", m.Shard, m.Shards)
	case m.IsTransition() && (m.ApplyAt.Before(m.IssuedAt) || m.StaleAfter.Before(m.ApplyAt)):
		return fmt.Errorf("transition message applyAt %v is outside issuedAt..staleAfter", m.ApplyAt)
	case len(m.UserIDs) == 0 || len(m.UserIDs) > MaxUsers:
		return fmt.Errorf("shard message has %d users, want 1..%d", len(m.UserIDs), MaxUsers)
	}
	for _, id := range m.UserIDs {
		if !validID(id) {
			return fmt.Errorf("shard message has an invalid user id %q", id)
		}
	}
	return nil
}

// validCycleID keeps cycle ids usable as Table Storage keys (no / \\ # ? or control characters).
func validCycleID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// validID accepts Mattermost ids: 26 characters of [a-z0-9].
func validID(id string) bool {
	if len(id) != 26 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
