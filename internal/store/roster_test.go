package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// This test runs against Azurite, in its own roster partition: the e2e suites' planners use the
// shared one at the same time.

func TestRosterRoundTripReplacesAndDetectsATornOne(t *testing.T) {
	s := openInternal(t)
	ctx := context.Background()
	s.roster = "roster-test-" + runSuffix(4)
	ids := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("u%025d", i)
		}
		return out
	}
	if _, found, err := s.LoadRoster(ctx); err != nil || found {
		t.Fatalf("empty partition: found %v, %v", found, err)
	}
	listed := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	first := Roster{UserIDs: ids(2500), ListedAt: listed, Fingerprint: "active=2503 all=2510"}
	if err := s.SaveRoster(ctx, first); err != nil {
		t.Fatal(err)
	}
	got, found, err := s.LoadRoster(ctx)
	if err != nil || !found || !slices.Equal(got.UserIDs, first.UserIDs) || !got.ListedAt.Equal(listed) || got.Fingerprint != first.Fingerprint {
		t.Fatalf("read back %d ids (found %v, %v), listed %v, fingerprint %q", len(got.UserIDs), found, err, got.ListedAt, got.Fingerprint)
	}

	// A smaller roster replaces it; the first one's chunks are deleted.
	second := Roster{UserIDs: ids(1200)[200:], ListedAt: listed.Add(time.Hour), Fingerprint: "active=1003 all=2510"}
	if err := s.SaveRoster(ctx, second); err != nil {
		t.Fatal(err)
	}
	if got, _, err = s.LoadRoster(ctx); err != nil || !slices.Equal(got.UserIDs, second.UserIDs) || got.Fingerprint != second.Fingerprint {
		t.Fatalf("second roster read back as %d ids, %q, %v", len(got.UserIDs), got.Fingerprint, err)
	}
	if rows := s.rosterRows(t); len(rows) != 2 { // the head and one chunk
		t.Fatalf("rows left after the second save: %v", rows)
	}

	// An empty organisation is a roster too.
	if err := s.SaveRoster(ctx, Roster{ListedAt: listed.Add(2 * time.Hour), Fingerprint: "active=3 all=2510"}); err != nil {
		t.Fatal(err)
	}
	if got, found, err = s.LoadRoster(ctx); err != nil || !found || len(got.UserIDs) != 0 {
		t.Fatalf("empty roster: %d ids, found %v, %v", len(got.UserIDs), found, err)
	}

	// A chunk missing (a save or delete half-done) is an error, not a short roster.
	if err := s.SaveRoster(ctx, first); err != nil {
		t.Fatal(err)
	}
	if _, err := s.app.DeleteEntity(ctx, s.roster, fmt.Sprintf("g%016x-%06d", listed.UnixNano(), 1), nil); err != nil {
		t.Fatal(err)
	}
	if _, found, err = s.LoadRoster(ctx); !errors.Is(err, errRosterTorn) || found {
		t.Fatalf("torn roster: found %v, %v", found, err)
	}

	// Bad ids change nothing.
	if err := s.SaveRoster(ctx, Roster{UserIDs: []string{"short"}, ListedAt: listed}); err == nil {
		t.Fatal("a malformed id was saved")
	}

	if err := s.DeleteRoster(ctx); err != nil {
		t.Fatal(err)
	}
	if rows := s.rosterRows(t); len(rows) != 0 {
		t.Fatalf("rows left after DeleteRoster: %v", rows)
	}
}

// rosterRows lists the row keys of the test's roster partition.
func (s *Store) rosterRows(t *testing.T) []string {
	t.Helper()
	filter := "PartitionKey eq " + odataQuote(s.roster)
	sel := "RowKey"
	var out []string
	pager := s.app.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Select: &sel})
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range page.Entities {
			out = append(out, string(raw))
		}
	}
	return out
}
