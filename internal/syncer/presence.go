package syncer

import (
	"context"
	"strings"
	"time"

	"github.com/calstatus/calstatus/internal/calendar"
	"github.com/calstatus/calstatus/internal/engine"
	"github.com/calstatus/calstatus/internal/graph"
	"github.com/calstatus/calstatus/internal/mattermost"
	"github.com/calstatus/calstatus/internal/store"
)

// Presence reads Teams presence (PRESENCE_SYNC): each user's Entra object id once (presence is
// keyed by it, not by email), then one call per shard.
type Presence interface {
	LookupUserIDs(ctx context.Context, emails []string) (graph.UserIDsResult, error)
	GetPresences(ctx context.Context, ids []string) (graph.PresenceResult, error)
}

// LookUpAgainAfter is how long a user Graph had no Entra user for is left before being looked up
// again (a mailbox created later, an address corrected): not every cycle.
const LookUpAgainAfter = 24 * time.Hour

// presences is what a run learned of its users' Teams presence.
type presences struct {
	// byUser is the presence of each user it was read for; unread lists those it could not be read
	// for this time (Graph failed or throttled): a call held for them is kept as it is
	// (engine.HeldCall). Users without an Entra user are in neither.
	byUser map[string]graph.Presence
	unread map[string]bool
	calls  int
	// failures counts by class the users presence could not be read for (a missing permission:
	// "forbidden"); logged once per run.
	failures map[string]int
}

// readPresence reads the presence of users: their object ids from the directory rows read with
// their state (users without one, or looked up for another email, are looked up first, and the
// answers stored), then one presence call. It never fails the run: presence it cannot read leaves
// the calendar to decide.
func (r *run) readPresence(ctx context.Context, users []mattermost.User, states map[string]store.UserState) presences {
	out := presences{byUser: map[string]graph.Presence{}, unread: map[string]bool{}, failures: map[string]int{}}
	idOf := map[string]string{} // user id → object id
	var lookup []string
	byEmail := map[string]string{}
	for _, u := range users {
		email := strings.ToLower(u.Email)
		byEmail[email] = u.ID
		switch dir := states[u.ID].Directory; {
		case dir == nil || dir.Email != email:
			lookup = append(lookup, email)
		case dir.ObjectID != "":
			idOf[u.ID] = dir.ObjectID
		case r.now.Sub(dir.CheckedAt) >= LookUpAgainAfter:
			lookup = append(lookup, email)
		}
	}
	if len(lookup) > 0 {
		found, err := r.w.Presence.LookupUserIDs(ctx, lookup)
		out.calls += found.Calls
		entries := map[string]store.Directory{}
		checked := r.now.Truncate(time.Second)
		for email, oid := range found.IDs {
			if id, ok := byEmail[email]; ok {
				idOf[id] = oid
				entries[id] = store.Directory{ObjectID: oid, Email: email, CheckedAt: checked}
			}
		}
		for _, email := range found.NotFound {
			if id, ok := byEmail[email]; ok {
				entries[id] = store.Directory{Email: email, CheckedAt: checked}
			}
		}
		for _, f := range found.Failures {
			if id, ok := byEmail[strings.ToLower(f.Email)]; ok {
				out.unread[id] = true
				out.failures[f.Class]++
			}
		}
		if err != nil {
			r.log.Warn("could not look up users in Entra; their calls are left as they are", "users", len(lookup), "error", err.Error())
			for _, email := range lookup {
				out.unread[byEmail[email]] = true
			}
		}
		if len(entries) > 0 && !r.w.DryRun {
			if err := r.w.Store.SaveDirectory(ctx, entries); err != nil {
				r.log.Warn("could not store the users looked up in Entra; looked up again next time", "users", len(entries), "error", err.Error())
			}
		}
	}
	if len(idOf) == 0 {
		return out
	}
	ids := make([]string, 0, len(idOf))
	userOf := make(map[string]string, len(idOf))
	for uid, oid := range idOf {
		ids = append(ids, oid)
		userOf[strings.ToLower(oid)] = uid
	}
	res, err := r.w.Presence.GetPresences(ctx, ids)
	out.calls += res.Calls
	for oid, p := range res.Presence {
		if uid, ok := userOf[strings.ToLower(oid)]; ok {
			out.byUser[uid] = p
		}
	}
	for _, f := range res.Failures {
		if uid, ok := userOf[strings.ToLower(f.Email)]; ok {
			out.unread[uid] = true
			out.failures[f.Class]++
		}
	}
	for uid := range idOf {
		if _, ok := out.byUser[uid]; !ok && (err != nil || !out.unread[uid]) {
			out.unread[uid] = true // not answered for: as unreadable, never as "not in a call"
		}
	}
	if err != nil {
		r.log.Warn("could not read Teams presence; calls held are left as they are", "users", len(ids), "error", err.Error())
	}
	if len(out.failures) > 0 {
		attrs := []any{"users", len(out.unread)}
		for class, n := range out.failures {
			attrs = append(attrs, "presence_"+class, n)
		}
		r.log.Warn("Teams presence not read for some users; their calls are left as they are", attrs...)
	}
	return out
}

// withPresence adds to a user's availability the call Teams shows them in (or, presence unread, the
// call calstatus holds for them).
func (r *run) withPresence(av calendar.Availability, userID string, st engine.State, pr presences) calendar.Availability {
	if r.w.Presence == nil || !r.w.Calls {
		return av
	}
	if p, ok := pr.byUser[userID]; ok {
		if e, ok := engine.PresenceItem(p.Activity, r.now, r.w.Policy); ok {
			return av.With(e)
		}
		return av
	}
	if pr.unread[userID] {
		if e, ok := engine.HeldCall(st, r.now); ok {
			return av.With(e)
		}
	}
	return av
}

// repliesFor is what Teams presence shows of a user's Outlook automatic replies: unknown where it
// could not be read (what calstatus holds stays), none for a user without an Entra user, and none
// at all with AutomaticReplies off (any calstatus turned on are given back).
func (r *run) repliesFor(userID string, pr presences) engine.Replies {
	switch p, ok := pr.byUser[userID]; {
	case !r.w.AutomaticReplies || r.w.Presence == nil:
		return engine.Replies{Known: true}
	case ok:
		return engine.Replies{Known: true, Text: p.AutoReply}
	case pr.unread[userID]:
		return engine.Replies{}
	}
	return engine.Replies{Known: true}
}
