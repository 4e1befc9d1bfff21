package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// DueForPurge records today's purge and reports whether it was due (once per day, whichever
// instance's timer gets there first).
func (s *Store) DueForPurge(ctx context.Context, now time.Time) (bool, error) {
	today := now.UTC().Format("2006-01-02")
	resp, err := s.cycles.GetEntity(ctx, "maintenance", "purge", nil)
	var etag *azcore.ETag
	if err == nil {
		var e aztables.EDMEntity
		if err := json.Unmarshal(resp.Value, &e); err != nil {
			return false, err
		}
		if last, _ := e.Properties["Day"].(string); last == today {
			return false, nil
		}
		etag = &resp.ETag
	} else if !hasCode(err, aztables.ResourceNotFound) {
		return false, &Error{Op: "reading the purge marker", Err: err}
	}
	entity, _ := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: "maintenance", RowKey: "purge"},
		Properties: map[string]any{"Day": today}})
	if etag == nil {
		_, err = s.cycles.AddEntity(ctx, entity, nil)
	} else {
		_, err = s.cycles.UpdateEntity(ctx, entity, &aztables.UpdateEntityOptions{IfMatch: etag, UpdateMode: aztables.UpdateModeReplace})
	}
	if err != nil {
		if isConflict(err) {
			return false, nil // another instance took it
		}
		return false, &Error{Op: "writing the purge marker", Err: err}
	}
	return true, nil
}

// ShardReport is what one shard did in one cycle.
type ShardReport struct {
	CycleID   string
	Shard     int
	Users     int
	Changed   int
	Unchanged int
	Failed    int
	Failures  map[string]int // by class
	// FailedUsers names failing users and their class (the first few: the counts are whole).
	FailedUsers []FailedUser
	GraphCalls  int
	// Throttled counts Graph sub-requests answered 429; Retries those sent again.
	Throttled, Retries int
	// PresenceCalls counts the Graph calls for Teams presence (the Entra lookups included);
	// PresenceFailures the users it could not be read for, by class ("forbidden": the permission is
	// not granted). Their calendar is synced all the same.
	PresenceCalls    int
	PresenceFailures map[string]int
	Outcome          string // ok | stale | failed
	Error            string
	// ErrorClass names what failed the shard: graph_auth, mattermost_auth, graph, mattermost,
	// storage ("" when it did not fail).
	ErrorClass string
	Duration   time.Duration
	// Finished is when the shard's run ended.
	Finished time.Time
	Attempt  int
	// Done marks, by position in the shard message, the users this shard has dealt with, so a
	// retried delivery does only the rest.
	Done []bool
}

// FailedUser is a user a shard could not bring up to date, and why (a failure class).
type FailedUser struct {
	User  string `json:"u"` // username (an email or user id where Mattermost gave none)
	Class string `json:"c"`
}

// CycleReport is what the timer planned for one cycle.
type CycleReport struct {
	CycleID string
	Started time.Time
	Users   int
	Shards  int
}

// RecordCycle writes the cycle's plan row and makes it the latest cycle.
func (s *Store) RecordCycle(ctx context.Context, r CycleReport) error {
	props := map[string]any{"Started": aztables.EDMDateTime(r.Started.UTC()), "Users": int32(r.Users), "Shards": int32(r.Shards)}
	if err := s.upsertCycleRow(ctx, r.CycleID, "plan", props); err != nil {
		return err
	}
	props["Cycle"] = r.CycleID
	return s.upsertCycleRow(ctx, "maintenance", "last-cycle", props)
}

// LastCycle reads the plan of the latest cycle recorded; found is false before the first.
func (s *Store) LastCycle(ctx context.Context) (r CycleReport, found bool, err error) {
	resp, err := s.cycles.GetEntity(ctx, "maintenance", "last-cycle", nil)
	if err != nil {
		if hasCode(err, aztables.ResourceNotFound) {
			return CycleReport{}, false, nil
		}
		return CycleReport{}, false, &Error{Op: "reading the latest cycle", Err: err}
	}
	var e aztables.EDMEntity
	if err := json.Unmarshal(resp.Value, &e); err != nil {
		return CycleReport{}, false, &Error{Op: "reading the latest cycle", Err: err}
	}
	num := func(k string) int { v, _ := e.Properties[k].(int32); return int(v) }
	r = CycleReport{Users: num("Users"), Shards: num("Shards")}
	r.CycleID, _ = e.Properties["Cycle"].(string)
	if t, ok := e.Properties["Started"].(aztables.EDMDateTime); ok {
		r.Started = time.Time(t).UTC()
	}
	return r, r.CycleID != "", nil
}

// RecordShard writes (or overwrites, on a retry) the shard's row of its cycle.
func (s *Store) RecordShard(ctx context.Context, r ShardReport) error {
	failures, _ := json.Marshal(r.Failures)
	failed, _ := json.Marshal(r.FailedUsers)
	presenceFailures, _ := json.Marshal(r.PresenceFailures)
	return s.upsertCycleRow(ctx, r.CycleID, shardRowKey(r.Shard), map[string]any{
		"PresenceCalls": int32(r.PresenceCalls), "PresenceFailures": string(presenceFailures),
		"Users": int32(r.Users), "Changed": int32(r.Changed), "Unchanged": int32(r.Unchanged), "Failed": int32(r.Failed),
		"Failures": string(failures), "FailedUsers": string(failed), "GraphCalls": int32(r.GraphCalls), "Throttled": int32(r.Throttled), "Retries": int32(r.Retries),
		"Outcome": r.Outcome, "Error": truncate(r.Error, 1000), "ErrorClass": r.ErrorClass,
		"DurationMs": int32(r.Duration.Milliseconds()), "Finished": aztables.EDMDateTime(r.Finished.UTC()), "Attempt": int32(r.Attempt), "Done": packBits(r.Done),
	})
}

// ShardReport reads one shard's row of a cycle; found is false when the shard has no row yet.
func (s *Store) ShardReport(ctx context.Context, cycleID string, shard int) (r ShardReport, found bool, err error) {
	resp, err := s.cycles.GetEntity(ctx, cycleID, shardRowKey(shard), nil)
	if err != nil {
		if hasCode(err, aztables.ResourceNotFound) {
			return ShardReport{}, false, nil
		}
		return ShardReport{}, false, &Error{Op: fmt.Sprintf("reading shard %d of cycle %s", shard, cycleID), Err: err}
	}
	var e aztables.EDMEntity
	if err := json.Unmarshal(resp.Value, &e); err != nil {
		return ShardReport{}, false, err
	}
	return shardFromEntity(cycleID, e), true, nil
}

func shardRowKey(shard int) string { return fmt.Sprintf("shard-%05d", shard) }

// packBits stores a []bool compactly (a shard's 400 users in 67 characters).
func packBits(bits []bool) string {
	b := make([]byte, (len(bits)+7)/8)
	for i, v := range bits {
		if v {
			b[i/8] |= 1 << (i % 8)
		}
	}
	return fmt.Sprintf("%d:%s", len(bits), base64.StdEncoding.EncodeToString(b))
}

func unpackBits(s string) []bool {
	n, enc, ok := strings.Cut(s, ":")
	count, err := strconv.Atoi(n)
	if !ok || err != nil {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(b) < (count+7)/8 {
		return nil
	}
	out := make([]bool, count)
	for i := range out {
		out[i] = b[i/8]&(1<<(i%8)) != 0
	}
	return out
}

// ShardReports reads back a cycle's shard rows (for tests and the status page).
func (s *Store) ShardReports(ctx context.Context, cycleID string) ([]ShardReport, error) {
	filter := fmt.Sprintf("PartitionKey eq %s and RowKey ge 'shard-' and RowKey lt 'shard.'", odataQuote(cycleID))
	pager := s.cycles.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
	var out []ShardReport
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, &Error{Op: "reading cycle " + cycleID, Err: err}
		}
		for _, raw := range page.Entities {
			var e aztables.EDMEntity
			if err := json.Unmarshal(raw, &e); err != nil {
				return nil, err
			}
			r := shardFromEntity(cycleID, e)
			out = append(out, r)
		}
	}
	return out, nil
}

func shardFromEntity(cycleID string, e aztables.EDMEntity) ShardReport {
	num := func(k string) int { v, _ := e.Properties[k].(int32); return int(v) }
	r := ShardReport{CycleID: cycleID, Users: num("Users"), Changed: num("Changed"), Unchanged: num("Unchanged"),
		Failed: num("Failed"), GraphCalls: num("GraphCalls"), Throttled: num("Throttled"), Retries: num("Retries"), Attempt: num("Attempt"),
		PresenceCalls: num("PresenceCalls"),
		Duration:      time.Duration(num("DurationMs")) * time.Millisecond}
	r.Outcome, _ = e.Properties["Outcome"].(string)
	r.Error, _ = e.Properties["Error"].(string)
	r.ErrorClass, _ = e.Properties["ErrorClass"].(string)
	if f, ok := e.Properties["Finished"].(aztables.EDMDateTime); ok {
		r.Finished = time.Time(f).UTC()
	}
	if f, ok := e.Properties["Failures"].(string); ok {
		_ = json.Unmarshal([]byte(f), &r.Failures)
	}
	if f, ok := e.Properties["FailedUsers"].(string); ok {
		_ = json.Unmarshal([]byte(f), &r.FailedUsers)
	}
	if f, ok := e.Properties["PresenceFailures"].(string); ok {
		_ = json.Unmarshal([]byte(f), &r.PresenceFailures)
	}
	if d, ok := e.Properties["Done"].(string); ok {
		r.Done = unpackBits(d)
	}
	fmt.Sscanf(e.RowKey, "shard-%d", &r.Shard)
	return r
}

func (s *Store) upsertCycleRow(ctx context.Context, pk, rk string, props map[string]any) error {
	entity, err := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: pk, RowKey: rk}, Properties: props})
	if err != nil {
		return err
	}
	if _, err := s.cycles.UpsertEntity(ctx, entity, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		return &Error{Op: "recording cycle " + pk, Err: err}
	}
	return nil
}

// PurgeCycles deletes the records of cycles started before cutoff (the status page shows a day;
// a week is kept), in per-partition transactions — each cycle is its own partition.
func (s *Store) PurgeCycles(ctx context.Context, cutoff time.Time) (int, error) {
	filter := fmt.Sprintf("PartitionKey lt %s", odataQuote(cutoff.UTC().Format(cycleIDTime)))
	return deleteWhere(ctx, s.cycles, filter, "old cycles", func(string) bool { return true })
}

// deleteWhere deletes a table's entities matching filter (and pick, by row key) in per-partition
// transactions, every partition whatever happened to the others; it returns how many it deleted.
func deleteWhere(ctx context.Context, table *aztables.Client, filter, what string, pick func(rowKey string) bool) (int, error) {
	sel := "PartitionKey,RowKey"
	pager := table.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Select: &sel})
	byPartition := map[string][]aztables.TransactionAction{}
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return 0, &Error{Op: "listing " + what, Err: err}
		}
		for _, raw := range page.Entities {
			var e aztables.Entity
			if err := json.Unmarshal(raw, &e); err != nil {
				return 0, &Error{Op: "listing " + what, Err: err}
			}
			if !pick(e.RowKey) {
				continue
			}
			key, _ := json.Marshal(aztables.Entity{PartitionKey: e.PartitionKey, RowKey: e.RowKey})
			byPartition[e.PartitionKey] = append(byPartition[e.PartitionKey], aztables.TransactionAction{ActionType: aztables.TransactionTypeDelete, Entity: key})
		}
	}
	written, failures := submitTo(ctx, table, byPartition)
	n := 0
	for _, chunks := range written {
		for _, ch := range chunks {
			n += ch[1] - ch[0]
		}
	}
	if len(failures) > 0 {
		return n, &Error{Op: "purging " + what + " (partition " + failures[0].partition + ")", Err: failures[0].err}
	}
	return n, nil
}

// submitTo writes actions to a table in transactions of at most MaxTransaction entities of one
// partition, partitions in order, every one whatever happened to the others. It returns, per
// partition, the index ranges of the actions written, and the failures.
func submitTo(ctx context.Context, table *aztables.Client, byPartition map[string][]aztables.TransactionAction) (map[string][][2]int, []partitionFailure) {
	partitions := make([]string, 0, len(byPartition))
	for p := range byPartition {
		partitions = append(partitions, p)
	}
	sort.Strings(partitions)
	written := map[string][][2]int{}
	var failures []partitionFailure
	for _, p := range partitions {
		actions := byPartition[p]
		for i := 0; i < len(actions); i += MaxTransaction {
			j := min(i+MaxTransaction, len(actions))
			if _, err := table.SubmitTransaction(ctx, actions[i:j], nil); err != nil {
				failures = append(failures, partitionFailure{p, err})
				continue
			}
			written[p] = append(written[p], [2]int{i, j})
		}
	}
	return written, failures
}
