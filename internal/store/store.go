// Package store keeps calstatus's state in Azure Table Storage: per user, the status we replaced and
// the event we handled (table calstatususers); per sync cycle, what each shard did (calstatuscycles).
//
// User state is partitioned by the first character of the Mattermost user id. Shards are contiguous
// ranges of sorted user ids, so a shard's state lies in a few partitions and is read with one range
// query per partition and written in transactions of at most 100 entities of one partition.
package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/calstatus/calstatus/internal/engine"
)

const (
	UsersTable  = "calstatususers"
	CyclesTable = "calstatuscycles"
	// MaxTransaction is Table Storage's limit of entities in one transaction.
	MaxTransaction = 100
)

// Store is the Table Storage adapter.
type Store struct {
	users, cycles *aztables.Client
	// Writes counts entity writes, so callers can report (and tests assert) the cost of a shard.
	Writes int
}

// Open connects with a storage connection string and creates the tables if they are missing.
func Open(ctx context.Context, connectionString string) (*Store, error) {
	svc, err := aztables.NewServiceClientFromConnectionString(connectionString, nil)
	if err != nil {
		return nil, fmt.Errorf("table storage: %w", err)
	}
	for _, name := range []string{UsersTable, CyclesTable} {
		if _, err := svc.CreateTable(ctx, name, nil); err != nil && !hasCode(err, aztables.TableAlreadyExists) {
			return nil, fmt.Errorf("table storage: creating table %s: %w", name, err)
		}
	}
	return &Store{users: svc.NewClient(UsersTable), cycles: svc.NewClient(CyclesTable)}, nil
}

func hasCode(err error, code aztables.TableErrorCode) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && (re.ErrorCode == string(code) || strings.Contains(re.Error(), string(code)))
}

// UserState is one user's stored state with the ETag it was read at.
type UserState struct {
	engine.State
	etag azcore.ETag
}

// Partition is the partition key of a user's state.
func Partition(userID string) string {
	if userID == "" {
		return "u_"
	}
	return "u" + userID[:1]
}

// odataQuote quotes a string for an OData filter.
func odataQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// LoadStates reads the state of the given users (sorted or not) with one range query per partition.
func (s *Store) LoadStates(ctx context.Context, userIDs []string) (map[string]UserState, error) {
	want := make(map[string]bool, len(userIDs))
	ranges := map[string][2]string{}
	for _, id := range userIDs {
		want[id] = true
		p := Partition(id)
		r, ok := ranges[p]
		if !ok {
			r = [2]string{id, id}
		}
		if id < r[0] {
			r[0] = id
		}
		if id > r[1] {
			r[1] = id
		}
		ranges[p] = r
	}
	out := map[string]UserState{}
	for p, r := range ranges {
		filter := fmt.Sprintf("PartitionKey eq %s and RowKey ge %s and RowKey le %s", odataQuote(p), odataQuote(r[0]), odataQuote(r[1]))
		pager := s.users.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("table storage: reading user state: %w", err)
			}
			for _, raw := range page.Entities {
				var e aztables.EDMEntity
				if err := json.Unmarshal(raw, &e); err != nil {
					return nil, fmt.Errorf("table storage: user state entity: %w", err)
				}
				if !want[e.RowKey] {
					continue
				}
				out[e.RowKey] = UserState{State: fromEntity(e), etag: azcore.ETag(e.ETag)}
			}
		}
	}
	return out, nil
}

func fromEntity(e aztables.EDMEntity) engine.State {
	str := func(k string) string { v, _ := e.Properties[k].(string); return v }
	st := engine.State{PrevStatus: str("Prev"), SetStatus: str("Set"), CustomEmoji: str("CsEmoji"), CustomText: str("CsText"), EventKey: str("Event")}
	st.Until = unixProp(e.Properties["Until"])
	st.DNDEnd = unixProp(e.Properties["DndEnd"])
	return st
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// unixProp reads a time stored as Unix seconds (absent or 0: the zero time).
func unixProp(v any) time.Time {
	var n int64
	switch v := v.(type) {
	case aztables.EDMInt64:
		n = int64(v)
	case int32:
		n = int64(v)
	}
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(n, 0).UTC()
}

// StateChange is a new state for a user: Old is what LoadStates returned (zero if nothing), New the
// state to store (a zero State deletes).
type StateChange struct {
	UserID string
	Old    UserState
	New    engine.State
}

// ErrConflict means another writer changed a user's state since it was read: the caller must not
// act on its decisions (another delivery of the same shard is doing so).
var ErrConflict = errors.New("table storage: user state changed concurrently")

// SaveStates writes changes in per-partition transactions of at most MaxTransaction entities. New
// entities are inserted (failing if one appeared meanwhile) and existing ones replaced or deleted
// only at the ETag they were read at, so two deliveries of one shard cannot both apply.
func (s *Store) SaveStates(ctx context.Context, changes []StateChange) error {
	byPartition := map[string][]aztables.TransactionAction{}
	for _, c := range changes {
		action, ok, err := stateAction(c)
		if err != nil {
			return err
		}
		if ok {
			p := Partition(c.UserID)
			byPartition[p] = append(byPartition[p], action)
		}
	}
	n, p, err := s.submit(ctx, byPartition)
	s.Writes += n
	if err != nil {
		if isConflict(err) {
			return fmt.Errorf("%w (partition %s: %s)", ErrConflict, p, brief(err))
		}
		return fmt.Errorf("table storage: writing user state (partition %s): %s", p, brief(err))
	}
	return nil
}

// submit writes user-state actions in transactions of at most MaxTransaction entities of one
// partition, partitions in order. It returns how many entities were written and, on error, the
// partition that failed.
func (s *Store) submit(ctx context.Context, byPartition map[string][]aztables.TransactionAction) (int, string, error) {
	partitions := make([]string, 0, len(byPartition))
	for p := range byPartition {
		partitions = append(partitions, p)
	}
	sort.Strings(partitions)
	n := 0
	for _, p := range partitions {
		actions := byPartition[p]
		for i := 0; i < len(actions); i += MaxTransaction {
			chunk := actions[i:min(i+MaxTransaction, len(actions))]
			if _, err := s.users.SubmitTransaction(ctx, chunk, nil); err != nil {
				return n, p, err
			}
			n += len(chunk)
		}
	}
	return n, "", nil
}

func stateAction(c StateChange) (aztables.TransactionAction, bool, error) {
	had := c.Old.etag != ""
	keep := c.New.Held()
	switch {
	case !had && !keep:
		return aztables.TransactionAction{}, false, nil
	case had && !keep:
		etag := c.Old.etag
		entity, _ := json.Marshal(aztables.Entity{PartitionKey: Partition(c.UserID), RowKey: c.UserID})
		return aztables.TransactionAction{ActionType: aztables.TransactionTypeDelete, Entity: entity, IfMatch: &etag}, true, nil
	}
	entity, err := json.Marshal(aztables.EDMEntity{
		Entity: aztables.Entity{PartitionKey: Partition(c.UserID), RowKey: c.UserID},
		Properties: map[string]any{
			"Prev": c.New.PrevStatus, "Set": c.New.SetStatus, "CsEmoji": c.New.CustomEmoji, "CsText": c.New.CustomText, "Event": c.New.EventKey,
			"Until": aztables.EDMInt64(unix(c.New.Until)), "DndEnd": aztables.EDMInt64(unix(c.New.DNDEnd)),
		},
	})
	if err != nil {
		return aztables.TransactionAction{}, false, err
	}
	if !had {
		return aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: entity}, true, nil
	}
	etag := c.Old.etag
	return aztables.TransactionAction{ActionType: aztables.TransactionTypeUpdateReplace, Entity: entity, IfMatch: &etag}, true, nil
}

// isConflict recognises 409/412 answers; a failed transaction reports its real code only in the
// message (as status 202).
func isConflict(err error) bool {
	var re *azcore.ResponseError
	if errors.As(err, &re) && (re.StatusCode == http.StatusConflict || re.StatusCode == http.StatusPreconditionFailed) {
		return true
	}
	msg := err.Error()
	for _, code := range []string{"EntityAlreadyExists", "UpdateConditionNotSatisfied", "412", "409"} {
		if strings.Contains(msg, code) {
			return true
		}
	}
	return false
}

// PurgeEnded deletes the state of events that ended before cutoff, in per-partition transactions.
// Normally a user's state is deleted when their event is over; this catches users who left (or whose
// calendar stopped answering) meanwhile. Nothing is lost: by then Mattermost has ended the DND and the
// custom status we set by itself (dnd_end_time, expires_at).
func (s *Store) PurgeEnded(ctx context.Context, cutoff time.Time) (int, error) {
	filter := fmt.Sprintf("Until lt %dL", cutoff.Unix())
	sel := "PartitionKey,RowKey"
	pager := s.users.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Select: &sel})
	byPartition := map[string][]aztables.TransactionAction{}
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return 0, fmt.Errorf("table storage: listing ended state: %s", brief(err))
		}
		for _, raw := range page.Entities {
			var e aztables.Entity
			if err := json.Unmarshal(raw, &e); err != nil {
				return 0, err
			}
			key, _ := json.Marshal(aztables.Entity{PartitionKey: e.PartitionKey, RowKey: e.RowKey})
			byPartition[e.PartitionKey] = append(byPartition[e.PartitionKey], aztables.TransactionAction{ActionType: aztables.TransactionTypeDelete, Entity: key})
		}
	}
	n, p, err := s.submit(ctx, byPartition)
	if err != nil {
		return n, fmt.Errorf("table storage: purging partition %s: %s", p, brief(err))
	}
	return n, nil
}

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
		return false, fmt.Errorf("table storage: %s", brief(err))
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
		return false, fmt.Errorf("table storage: %s", brief(err))
	}
	return true, nil
}

// ShardReport is what one shard did in one cycle.
type ShardReport struct {
	CycleID    string
	Shard      int
	Users      int
	Changed    int
	Unchanged  int
	Failed     int
	Failures   map[string]int // by class
	GraphCalls int
	Outcome    string // ok | stale | failed
	Error      string
	Duration   time.Duration
	Attempt    int
	// Done marks, by position in the shard message, the users this shard has dealt with, so a
	// retried delivery does only the rest.
	Done []bool
}

// CycleReport is what the timer planned for one cycle.
type CycleReport struct {
	CycleID string
	Started time.Time
	Users   int
	Shards  int
}

// RecordCycle writes the cycle's plan row.
func (s *Store) RecordCycle(ctx context.Context, r CycleReport) error {
	return s.upsertCycleRow(ctx, r.CycleID, "plan", map[string]any{
		"Started": aztables.EDMDateTime(r.Started), "Users": int32(r.Users), "Shards": int32(r.Shards),
	})
}

// RecordShard writes (or overwrites, on a retry) the shard's row of its cycle.
func (s *Store) RecordShard(ctx context.Context, r ShardReport) error {
	failures, _ := json.Marshal(r.Failures)
	return s.upsertCycleRow(ctx, r.CycleID, shardRowKey(r.Shard), map[string]any{
		"Users": int32(r.Users), "Changed": int32(r.Changed), "Unchanged": int32(r.Unchanged), "Failed": int32(r.Failed),
		"Failures": string(failures), "GraphCalls": int32(r.GraphCalls), "Outcome": r.Outcome, "Error": truncate(r.Error, 1000),
		"DurationMs": int32(r.Duration.Milliseconds()), "Attempt": int32(r.Attempt), "Done": packBits(r.Done),
	})
}

// ShardReport reads one shard's row of a cycle; found is false when the shard has no row yet.
func (s *Store) ShardReport(ctx context.Context, cycleID string, shard int) (r ShardReport, found bool, err error) {
	resp, err := s.cycles.GetEntity(ctx, cycleID, shardRowKey(shard), nil)
	if err != nil {
		if hasCode(err, aztables.ResourceNotFound) {
			return ShardReport{}, false, nil
		}
		return ShardReport{}, false, fmt.Errorf("table storage: reading shard %d of cycle %s: %w", shard, cycleID, err)
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
			return nil, fmt.Errorf("table storage: reading cycle %s: %w", cycleID, err)
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
		Failed: num("Failed"), GraphCalls: num("GraphCalls"), Attempt: num("Attempt"),
		Duration: time.Duration(num("DurationMs")) * time.Millisecond}
	r.Outcome, _ = e.Properties["Outcome"].(string)
	r.Error, _ = e.Properties["Error"].(string)
	if f, ok := e.Properties["Failures"].(string); ok {
		_ = json.Unmarshal([]byte(f), &r.Failures)
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
		return fmt.Errorf("table storage: recording cycle %s: %w", pk, err)
	}
	return nil
}

// brief is the first line of an Azure SDK error (the rest is a dump of the HTTP exchange).
func brief(err error) string {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		code := re.ErrorCode
		for _, c := range []aztables.TableErrorCode{aztables.EntityAlreadyExists, aztables.UpdateConditionNotSatisfied, aztables.ResourceNotFound} {
			if code == "" && strings.Contains(re.Error(), string(c)) {
				code = string(c) // a failed transaction names its real error only in the body
			}
		}
		return fmt.Sprintf("%d %s", re.StatusCode, code)
	}
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return msg
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
