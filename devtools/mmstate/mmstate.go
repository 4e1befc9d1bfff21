// Package mmstate reads and changes a Mattermost user's status as the real
// server keeps it, for tests against the local test stack (Mattermost v6.7.2 on
// PostgreSQL, see devtools/stack), whatever server profile it runs
// (teststack.Env.Profile).
//
// The REST API shows only part of a status: PrevStatus is never serialised
// (json:"-"), and on a status-cache miss (server restart, /caches/invalidate)
// the v6 server fills its cache from a query that selects only UserId, Status,
// Manual and LastActivityAt, so dnd_end_time then reads 0 through both
// POST /users/status/ids and GET /users/{id}/status. Row and Rows read the
// status table itself.
//
// Under the "v10" profile (like Mattermost 10.6 onwards) that differs: a cache
// miss reads the full row, so dnd_end_time stays right after a restart or
// InvalidateCaches; the server cuts a DND end to the whole minute when it is
// set (the dnd_end_time read back may be up to 59 s earlier than the one sent);
// and it expires DND itself every minute, on the minute (v6: every 5 minutes).
// Under "v10early" (like 10.1–10.5) reads still leave DNDEndTime out, and status
// cache entries also expire 30 minutes after they were set (as under v10), so
// dnd_end_time can read 0 without any restart or invalidation.
//
// ExpireDND does in the database what the server's DND expiry job does, with a
// clock of the caller's choosing; the server's status cache is stale after it,
// so callers must then call InvalidateCaches (Expire does both).
//
// Custom statuses and their recents live in the user's props and preferences
// (Custom reads them through the API); the auto-responder lives in the user's
// notify props, which the API hides from everyone but the user (AutoResponder
// reads them from the database, SetAutoResponder patches them the way the webapp
// does).
package mmstate

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"
	"github.com/mattermost/mattermost-server/v6/model"
)

// ErrNoStatus: the user has no row in the status table. The server keeps none
// until a status is first saved (a user who never logged in and was never set);
// the API then reports "offline".
var ErrNoStatus = errors.New("no status row")

// Row is a user's status as stored in the status table.
type Row struct {
	Status         string // online, away, offline, dnd, ooo
	Manual         bool
	PrevStatus     string // what DND expiry restores; set when dnd is set through the API
	DNDEndTime     int64  // unix seconds; 0 = no end
	LastActivityAt int64  // unix milliseconds
}

// String renders the row for test messages, e.g. "dnd manual prev=online end=1735689600"
// ("auto" instead of "manual"; prev= and end= only when set; LastActivityAt is left out).
func (r Row) String() string {
	var b strings.Builder
	b.WriteString(r.Status)
	if b.Len() == 0 {
		b.WriteString(`""`)
	}
	if r.Manual {
		b.WriteString(" manual")
	} else {
		b.WriteString(" auto")
	}
	if r.PrevStatus != "" {
		b.WriteString(" prev=" + r.PrevStatus)
	}
	if r.DNDEndTime != 0 {
		b.WriteString(" end=" + strconv.FormatInt(r.DNDEndTime, 10))
	}
	return b.String()
}

// DB is a connection pool to Mattermost's PostgreSQL database.
type DB struct {
	sql *sql.DB
}

// Open connects to the database at dsn (postgres://user:pw@host:port/db?sslmode=disable,
// teststack.Env.SQLDSN) and checks that it answers.
func Open(dsn string) (*DB, error) {
	if dsn == "" {
		return nil, errors.New("mmstate: empty DSN")
	}
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return nil, fmt.Errorf("mmstate: %w", err)
	}
	db.SetMaxOpenConns(4)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("mmstate: connect: %w", err)
	}
	return &DB{sql: db}, nil
}

// Close closes the pool.
func (db *DB) Close() error { return db.sql.Close() }

const selectRows = `SELECT userid, COALESCE(status, ''), COALESCE(manual, false), COALESCE(prevstatus, ''),
	COALESCE(dndendtime, 0), COALESCE(lastactivityat, 0) FROM status WHERE userid = ANY($1)`

// Row reads one user's status row; errors.Is(err, ErrNoStatus) when there is none.
func (db *DB) Row(ctx context.Context, userID string) (Row, error) {
	rows, err := db.Rows(ctx, []string{userID})
	if err != nil {
		return Row{}, err
	}
	r, ok := rows[userID]
	if !ok {
		return Row{}, fmt.Errorf("mmstate: user %s: %w", userID, ErrNoStatus)
	}
	return r, nil
}

// Rows reads the status rows of ids in one query; users without a row are
// absent from the map.
func (db *DB) Rows(ctx context.Context, ids []string) (map[string]Row, error) {
	out := make(map[string]Row, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rs, err := db.sql.QueryContext(ctx, selectRows, pq.Array(ids))
	if err != nil {
		return nil, fmt.Errorf("mmstate: read status: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var id string
		var r Row
		if err := rs.Scan(&id, &r.Status, &r.Manual, &r.PrevStatus, &r.DNDEndTime, &r.LastActivityAt); err != nil {
			return nil, fmt.Errorf("mmstate: read status: %w", err)
		}
		out[id] = r
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("mmstate: read status: %w", err)
	}
	return out, nil
}

// ExpireDND does what the server's DND expiry job does (UpdateExpiredDNDStatuses,
// PostgreSQL branch, Mattermost v6.7.2), with now as the clock: every row with
// Status='dnd' AND DNDEndTime > 0 AND DNDEndTime <= now.Unix() gets
// Status=PrevStatus, PrevStatus='dnd', DNDEndTime=0, Manual=false. It returns
// how many rows changed.
//
// The SQL is the same under every profile (and in Mattermost 10.x); what differs
// is when the server runs it itself: every 5 minutes under v6 and v10early,
// every minute on the minute under v10. So under v10 a DND whose end has passed
// on the wall clock is expired by the server within a minute, and ExpireDND with
// a now near the wall clock may find nothing left to change (0).
//
// With userIDs, only those users' rows are considered (the server's job has no
// such filter; use it so a simulated clock does not end other tests' DND).
//
// The server's status cache still holds the old statuses afterwards, and the
// server does not broadcast the change: call InvalidateCaches before reading
// statuses through the API again, or use Expire.
func (db *DB) ExpireDND(ctx context.Context, now time.Time, userIDs ...string) (int, error) {
	q := `UPDATE status SET status = prevstatus, prevstatus = 'dnd', dndendtime = 0, manual = false
	WHERE status = 'dnd' AND dndendtime > 0 AND dndendtime <= $1`
	args := []any{now.Unix()}
	if len(userIDs) > 0 {
		q += ` AND userid = ANY($2)`
		args = append(args, pq.Array(userIDs))
	}
	res, err := db.sql.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("mmstate: expire dnd: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("mmstate: expire dnd: %w", err)
	}
	return int(n), nil
}

// InvalidateCaches purges all the server's caches (POST /api/v4/caches/invalidate;
// needs a system admin). It is server-wide: afterwards every status the API
// serves is re-read from the database without DNDEndTime (dnd_end_time 0) until
// that user's status is saved again — other tests reading dnd_end_time through
// the API at the same time will see 0. (Not under the v10 profile, whose reads
// return the full row.)
func InvalidateCaches(c *model.Client4) error {
	if _, err := c.InvalidateCaches(); err != nil {
		return fmt.Errorf("mmstate: invalidate caches: %w", err)
	}
	return nil
}

// Expire runs db.ExpireDND(ctx, now, userIDs...) and, when it changed any row,
// InvalidateCaches so the API serves the restored statuses.
func Expire(ctx context.Context, db *DB, c *model.Client4, now time.Time, userIDs ...string) (int, error) {
	n, err := db.ExpireDND(ctx, now, userIDs...)
	if err != nil || n == 0 {
		return n, err
	}
	return n, InvalidateCaches(c)
}

// Custom returns the user's custom status as the server keeps it (the
// "customStatus" user prop; nil when none or cleared — the server never clears
// an expired one, so check ExpiresAt yourself) and the recent custom statuses,
// newest first, at most five (the preference custom_status/recent_custom_statuses;
// nil when the user never set one).
func (db *DB) Custom(ctx context.Context, c *model.Client4, userID string) (current *model.CustomStatus, recents []model.CustomStatus, err error) {
	u, _, err := c.GetUser(userID, "")
	if err != nil {
		return nil, nil, fmt.Errorf("mmstate: get user %s: %w", userID, err)
	}
	current = u.GetCustomStatus()
	// From the database: the API answers an error, not an empty list, for a user with none.
	var value sql.NullString
	err = db.sql.QueryRowContext(ctx, `SELECT value FROM preferences WHERE userid = $1 AND category = $2 AND name = $3`,
		userID, model.PreferenceCategoryCustomStatus, model.PreferenceNameRecentCustomStatuses).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return current, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("mmstate: recent custom statuses of %s: %w", userID, err)
	}
	if value.String != "" {
		if err := json.Unmarshal([]byte(value.String), &recents); err != nil {
			return nil, nil, fmt.Errorf("mmstate: recent custom statuses of %s: %w", userID, err)
		}
	}
	return current, recents, nil
}

// CustomStatuses reads the users' custom statuses from the users table (the "customStatus" prop,
// as Custom's current), in one query and whether or not the server is up; users without one are
// absent.
func (db *DB) CustomStatuses(ctx context.Context, ids []string) (map[string]*model.CustomStatus, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT id, COALESCE(props->>'customStatus', '') FROM users WHERE id = ANY($1)`, pq.Array(ids))
	if err != nil {
		return nil, fmt.Errorf("mmstate: custom statuses: %w", err)
	}
	defer rows.Close()
	out := map[string]*model.CustomStatus{}
	for rows.Next() {
		var id, raw string
		if err := rows.Scan(&id, &raw); err != nil {
			return nil, fmt.Errorf("mmstate: custom statuses: %w", err)
		}
		if raw == "" {
			continue
		}
		var cs model.CustomStatus
		if err := json.Unmarshal([]byte(raw), &cs); err != nil {
			return nil, fmt.Errorf("mmstate: custom status of %s: %w", id, err)
		}
		if cs.Emoji != "" || cs.Text != "" {
			out[id] = &cs
		}
	}
	return out, rows.Err()
}

// NotifyProps reads the user's notify props from the users table. The API
// cannot: GET /users/{id} (and the other user lists) return notify_props empty
// for anyone but the caller, system admins included.
func (db *DB) NotifyProps(ctx context.Context, userID string) (model.StringMap, error) {
	var raw sql.NullString
	err := db.sql.QueryRowContext(ctx, `SELECT notifyprops FROM users WHERE id = $1`, userID).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("mmstate: no user %s", userID)
	}
	if err != nil {
		return nil, fmt.Errorf("mmstate: read notify props of %s: %w", userID, err)
	}
	props := model.StringMap{}
	if raw.Valid && raw.String != "" {
		if err := json.Unmarshal([]byte(raw.String), &props); err != nil {
			return nil, fmt.Errorf("mmstate: notify props of %s: %w", userID, err)
		}
	}
	return props, nil
}

// AutoResponder reports whether the user's automatic replies are on, and their
// message (notify props auto_responder_active, auto_responder_message, read from
// the database: see NotifyProps).
func (db *DB) AutoResponder(ctx context.Context, userID string) (active bool, message string, err error) {
	props, err := db.NotifyProps(ctx, userID)
	if err != nil {
		return false, "", err
	}
	return props[model.AutoResponderActiveNotifyProp] == "true", props[model.AutoResponderMessageNotifyProp], nil
}

// SetAutoResponder turns the user's automatic replies on or off the way the
// webapp does: PUT /users/{id}/patch with the user's whole notify props (read
// from the database; a patch replaces the whole map) and auto_responder_active /
// auto_responder_message changed; message is left as it was when turning off
// with an empty message. Turning it on makes the server set the status "ooo"
// (manual); turning it off sets "online" (api4 patchUser → SetAutoResponderStatus;
// only on a change of auto_responder_active, and only the patch endpoint does
// this: PUT /users/{id} stores the props without touching the status).
func (db *DB) SetAutoResponder(ctx context.Context, c *model.Client4, userID string, on bool, message string) error {
	props, err := db.NotifyProps(ctx, userID)
	if err != nil {
		return err
	}
	props[model.AutoResponderActiveNotifyProp] = strconv.FormatBool(on)
	if on || message != "" {
		props[model.AutoResponderMessageNotifyProp] = message
	}
	if _, _, err := c.PatchUser(userID, &model.UserPatch{NotifyProps: props}); err != nil {
		return fmt.Errorf("mmstate: patch notify props of %s: %w", userID, err)
	}
	return nil
}

// DeleteRow removes a user's status row (the server's permanent delete of a user leaves it).
func (db *DB) DeleteRow(ctx context.Context, userID string) error {
	if _, err := db.sql.ExecContext(ctx, `DELETE FROM status WHERE userid = $1`, userID); err != nil {
		return fmt.Errorf("mmstate: delete status row: %w", err)
	}
	return nil
}

// SetAutomatic makes a user's status automatic (manual=false), as Mattermost itself leaves an
// inactive user (away on idleness, offline on disconnect), which the API cannot do: a status set
// through it is manual. Call InvalidateCaches afterwards.
func (db *DB) SetAutomatic(ctx context.Context, userID string) error {
	if _, err := db.sql.ExecContext(ctx, `UPDATE status SET manual = false WHERE userid = $1`, userID); err != nil {
		return fmt.Errorf("mmstate: set automatic: %w", err)
	}
	return nil
}

// StaleProfileCache leaves the server's profile cache of a user without their custom status while
// the database keeps it: what a read that raced a custom status write leaves (LocalCacheUserStore
// fills the cache with what the database answered a read that started before the write, after the
// write invalidated it; it stays up to 30 minutes). It takes the prop out of the database, has the
// server cache the user so, and puts the prop back. It clears every cache of the server first.
func (db *DB) StaleProfileCache(ctx context.Context, c *model.Client4, userID string) error {
	var raw sql.NullString
	if err := db.sql.QueryRowContext(ctx, `SELECT props->'customStatus' FROM users WHERE id = $1`, userID).Scan(&raw); err != nil {
		return fmt.Errorf("mmstate: custom status of %s: %w", userID, err)
	}
	if !raw.Valid {
		return fmt.Errorf("mmstate: %s has no custom status to hide", userID)
	}
	if _, err := db.sql.ExecContext(ctx, `UPDATE users SET props = props - 'customStatus' WHERE id = $1`, userID); err != nil {
		return fmt.Errorf("mmstate: hide custom status of %s: %w", userID, err)
	}
	if err := InvalidateCaches(c); err != nil {
		return err
	}
	if _, _, err := c.GetUsersByIds([]string{userID}); err != nil {
		return fmt.Errorf("mmstate: cache user %s: %w", userID, err)
	}
	if _, err := db.sql.ExecContext(ctx, `UPDATE users SET props = jsonb_set(props, '{customStatus}', $2::jsonb) WHERE id = $1`, userID, raw.String); err != nil {
		return fmt.Errorf("mmstate: put back custom status of %s: %w", userID, err)
	}
	return nil
}

// SetLastActivity sets when the server last saw the user active (LastActivityAt), as activity at a
// simulated time would have (the server's own clock is the real one). Call InvalidateCaches
// afterwards.
func (db *DB) SetLastActivity(ctx context.Context, userID string, t time.Time) error {
	if _, err := db.sql.ExecContext(ctx, `UPDATE status SET lastactivityat = $2 WHERE userid = $1`, userID, t.UnixMilli()); err != nil {
		return fmt.Errorf("mmstate: set last activity: %w", err)
	}
	return nil
}

// KeepDNDToGiveBack leaves a DND's status to give back as "dnd": what the server records when a
// status read that missed its cache (GetUserStatusesByIds fills the cache with what the database
// answered) races the status set before a DND, and the DND is then set over the stale "dnd" in the
// cache. Its expiry then gives back dnd, automatic, without an end. Call InvalidateCaches afterwards.
func (db *DB) KeepDNDToGiveBack(ctx context.Context, userID string) error {
	if _, err := db.sql.ExecContext(ctx, `UPDATE status SET prevstatus = 'dnd' WHERE userid = $1 AND status = 'dnd'`, userID); err != nil {
		return fmt.Errorf("mmstate: keep dnd to give back: %w", err)
	}
	return nil
}
