package main

import (
	"context"
	"database/sql"
	"fmt"

	_ "github.com/lib/pq" // Mattermost's PostgreSQL
)

// benchDomain is the email domain of the users the benchmark adds to the stack's Mattermost (its
// own seeded users stay as they are); badDomain, of the 1% whose mailbox does not exist.
// Every badEvery-th bench user (k % badEvery == badEvery-1) is in badDomain.
const (
	benchDomain = "bench.example"
	badDomain   = "gone.bench.example"
	badEvery    = 100
)

// seedTo makes the stack's Mattermost hold n users to sync: its own seeded ones plus bench users,
// copies (in SQL, like the stack's seed) of its template user. It returns how many bench users
// there are.
func seedTo(ctx context.Context, db *sql.DB, n, stackUsers int) (int, error) {
	want := max(n-stackUsers, 0)
	var have int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE email LIKE '%bench.example'`).Scan(&have); err != nil {
		return 0, fmt.Errorf("counting bench users: %w", err)
	}
	if have > want {
		if _, err := db.ExecContext(ctx, `DELETE FROM users WHERE email LIKE '%bench.example' AND username >= $1`, benchName(want)); err != nil {
			return 0, fmt.Errorf("removing bench users: %w", err)
		}
	}
	if have < want {
		// Every badEvery-th bench user's mailbox is gone (a leaver's address, a typo in the directory).
		_, err := db.ExecContext(ctx, `
INSERT INTO users
SELECT (jsonb_populate_record(u, jsonb_build_object(
          'id',        substr(md5(gen_random_uuid()::text), 1, 26),
          'username',  'bench' || lpad(k::text, 6, '0'),
          'email',     'bench' || lpad(k::text, 6, '0') || '@' || CASE WHEN k % $5::int = $5::int - 1 THEN $3 ELSE $2 END,
          'firstname', 'Bench',
          'lastname',  'User ' || k,
          'nickname',  '',
          'props',     '{}'::jsonb,
          'createat',  (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
          'updateat',  (extract(epoch FROM clock_timestamp()) * 1000)::bigint
       ))).*
FROM users u CROSS JOIN generate_series($1::int, $4::int - 1) AS k
WHERE u.username = 'aaliyah.abbott'
ON CONFLICT DO NOTHING`, have, benchDomain, badDomain, want, badEvery)
		if err != nil {
			return 0, fmt.Errorf("adding bench users: %w", err)
		}
	}
	return want, nil
}

func benchName(k int) string { return fmt.Sprintf("bench%06d", k) }

// badMailbox says whether bench user k's address has no mailbox (as seedTo makes them).
func badMailbox(k int) bool { return k%badEvery == badEvery-1 }

// unseed removes every bench user and what Mattermost keeps of them.
func unseed(ctx context.Context, db *sql.DB) error {
	for _, q := range []string{
		`DELETE FROM status WHERE userid IN (SELECT id FROM users WHERE email LIKE '%bench.example')`,
		`DELETE FROM preferences WHERE userid IN (SELECT id FROM users WHERE email LIKE '%bench.example')`,
		`DELETE FROM users WHERE email LIKE '%bench.example'`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("removing bench users: %w", err)
		}
	}
	return nil
}

// resetStatuses puts every user online with no custom status, in SQL (the API is too slow for
// 100,000 users); the caller purges Mattermost's caches afterwards.
func resetStatuses(ctx context.Context, db *sql.DB) error {
	for _, q := range []string{
		`UPDATE status SET status = 'online', manual = false, prevstatus = '', dndendtime = 0`,
		`UPDATE users SET props = props - 'customStatus' WHERE props ? 'customStatus'`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("resetting statuses: %w", err)
		}
	}
	return nil
}
