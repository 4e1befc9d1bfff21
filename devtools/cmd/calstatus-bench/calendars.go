package main

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/calstatus/calstatus/devtools/graphsim"
)

// benchUser is a user the sync lists: its Mattermost id and email.
type benchUser struct{ ID, Email string }

// syncedUsers are the users calstatus syncs (active, not bots, with an email), in a fixed order.
func syncedUsers(ctx context.Context, db *sql.DB) ([]benchUser, error) {
	rows, err := db.QueryContext(ctx, `SELECT u.id, lower(u.email) FROM users u LEFT JOIN bots b ON b.userid = u.id
		WHERE u.deleteat = 0 AND b.userid IS NULL AND u.email <> '' ORDER BY u.id`)
	if err != nil {
		return nil, fmt.Errorf("listing the synced users: %w", err)
	}
	defer rows.Close()
	var out []benchUser
	for rows.Next() {
		var u benchUser
		if err := rows.Scan(&u.ID, &u.Email); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// benchCalendars: a third of the users in one meeting from 10 minutes before the first cycle to
// 50 minutes after it (the first cycle sets their DND, later ones have nothing to change), the
// rest free; the bench users in badDomain have no mailbox.
func benchCalendars(users []benchUser, first time.Time) *graphsim.Scenario {
	return calendars(users, func(i int) []graphsim.Event {
		if i%3 == 0 {
			return []graphsim.Event{{Status: "busy", Start: first.Add(-10 * time.Minute), End: first.Add(50 * time.Minute), Subject: "Quarterly planning"}}
		}
		return nil
	})
}

// benchWave adds the top-of-the-hour wave to benchCalendars: another third of the users start a
// 30-minute meeting at the same minute, at's.
func benchWave(users []benchUser, first, at time.Time) *graphsim.Scenario {
	at = at.Truncate(time.Minute)
	return calendars(users, func(i int) []graphsim.Event {
		switch i % 3 {
		case 0:
			return []graphsim.Event{{Status: "busy", Start: first.Add(-10 * time.Minute), End: first.Add(50 * time.Minute), Subject: "Quarterly planning"}}
		case 1:
			return []graphsim.Event{{Status: "busy", Start: at, End: at.Add(30 * time.Minute), Subject: "Sync"}}
		}
		return nil
	})
}

// waveUsers are the ids of the users benchWave puts in the wave.
func waveUsers(users []benchUser) map[string]bool {
	out := map[string]bool{}
	for i, u := range users {
		if i%3 == 1 && !strings.HasSuffix(u.Email, "@"+badDomain) {
			out[u.ID] = true
		}
	}
	return out
}

func calendars(users []benchUser, events func(i int) []graphsim.Event) *graphsim.Scenario {
	sc := &graphsim.Scenario{Generator: graphsim.Generator{Disabled: true}, Mailboxes: make(map[string]*graphsim.Mailbox, len(users))}
	for i, u := range users {
		if strings.HasSuffix(u.Email, "@"+badDomain) {
			sc.Mailboxes[u.Email] = &graphsim.Mailbox{Missing: true}
			continue
		}
		sc.Mailboxes[u.Email] = &graphsim.Mailbox{Events: events(i)}
	}
	return sc
}

// waveResult is the lag from the wave's meetings' start to each user's DND landing in Mattermost.
type waveResult struct {
	Users  int          `json:"users"`  // wave users whose DND was written
	Missed int          `json:"missed"` // wave users with no DND written in the cycle
	P50S   float64      `json:"lag_p50_s"`
	P95S   float64      `json:"lag_p95_s"`
	MaxS   float64      `json:"lag_max_s"`
	Cycle  *cycleResult `json:"cycle,omitempty"`
}

// waveLag measures the wave from the DND writes seen (user id → when the write was answered).
func waveLag(written map[string]time.Time, wave map[string]bool, start time.Time) *waveResult {
	var lags []float64
	for id := range wave {
		if t, ok := written[id]; ok {
			lags = append(lags, t.Sub(start).Seconds())
		}
	}
	sort.Float64s(lags)
	r := &waveResult{Users: len(lags), Missed: len(wave) - len(lags)}
	if len(lags) > 0 {
		q := func(p float64) float64 { return round1(lags[min(len(lags)-1, int(p*float64(len(lags))))]) }
		r.P50S, r.P95S, r.MaxS = q(0.5), q(0.95), round1(lags[len(lags)-1])
	}
	return r
}
