package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// CycleHistory is one cycle's records: the timer's plan and the rows of the shards that have
// reported so far (sorted by shard).
type CycleHistory struct {
	Plan   CycleReport
	Shards []ShardReport
}

// cycleIDTime is how a cycle id begins (newCycleID in internal/syncer): its start in UTC, so cycle
// partitions sort by time.
const cycleIDTime = "20060102T150405Z"

// cyclesAbove bounds the cycle partitions from above: every cycle id starts with a digit, and ':'
// sorts right after '9' — before "maintenance" and any other named partition of the table.
const cyclesAbove = ":"

// Cycles reads the records of the cycles started at or after since, oldest first, with two range
// queries on the cycles table: one for the plan rows, one for the shard rows. Shard rows whose
// cycle has no plan row are left out.
func (s *Store) Cycles(ctx context.Context, since time.Time) ([]CycleHistory, error) {
	since = since.UTC()
	partitions := fmt.Sprintf("PartitionKey ge %s and PartitionKey lt %s",
		odataQuote(since.Format(cycleIDTime)), odataQuote(cyclesAbove))

	byCycle := map[string]*CycleHistory{}
	err := s.listCycleRows(ctx, partitions+" and RowKey eq 'plan'", func(e aztables.EDMEntity) {
		plan := planFromEntity(e.PartitionKey, e)
		// The id has whole seconds: drop a cycle started within since's second but before it.
		if plan.Started.IsZero() || !plan.Started.Before(since) {
			byCycle[e.PartitionKey] = &CycleHistory{Plan: plan}
		}
	})
	if err != nil {
		return nil, err
	}
	if len(byCycle) == 0 {
		return nil, nil
	}
	err = s.listCycleRows(ctx, partitions+" and RowKey ge 'shard-' and RowKey lt 'shard.'", func(e aztables.EDMEntity) {
		if c := byCycle[e.PartitionKey]; c != nil {
			c.Shards = append(c.Shards, shardFromEntity(e.PartitionKey, e))
		}
	})
	if err != nil {
		return nil, err
	}

	out := make([]CycleHistory, 0, len(byCycle))
	for _, c := range byCycle {
		sort.Slice(c.Shards, func(i, j int) bool { return c.Shards[i].Shard < c.Shards[j].Shard })
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Plan, out[j].Plan
		if !a.Started.Equal(b.Started) {
			return a.Started.Before(b.Started)
		}
		return a.CycleID < b.CycleID
	})
	return out, nil
}

// listCycleRows runs a query on the cycles table, page by page.
func (s *Store) listCycleRows(ctx context.Context, filter string, each func(aztables.EDMEntity)) error {
	pager := s.cycles.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return &Error{Op: "reading the cycle history", Err: err}
		}
		for _, raw := range page.Entities {
			var e aztables.EDMEntity
			if err := json.Unmarshal(raw, &e); err != nil {
				return &Error{Op: "reading the cycle history", Err: err}
			}
			each(e)
		}
	}
	return nil
}

// planFromEntity reads a cycle's plan row (the properties RecordCycle writes).
func planFromEntity(cycleID string, e aztables.EDMEntity) CycleReport {
	num := func(k string) int { v, _ := e.Properties[k].(int32); return int(v) }
	r := CycleReport{CycleID: cycleID, Users: num("Users"), Shards: num("Shards")}
	if t, ok := e.Properties["Started"].(aztables.EDMDateTime); ok {
		r.Started = time.Time(t).UTC()
	}
	return r
}
