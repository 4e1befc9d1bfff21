package store

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/calstatus/calstatus/internal/engine"
)

// A state row written before automatic replies (no Replies, RepliesDone, RepliesKept) loads with
// them zero and the rest as stored; written again, it carries them.
func TestStateRowWithoutRepliesLoadsThemZero(t *testing.T) {
	ctx := context.Background()
	s := &Store{users: freshTable(t, "repliesrow")}
	id := "r0000000000000000000000000"
	until := time.Now().Add(time.Hour).Truncate(time.Second).UTC()
	old, err := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: Partition(id), RowKey: id}, Properties: map[string]any{
		"Prev": "away", "PrevManual": true, "Set": "dnd", "CsEmoji": "calendar", "CsText": "In a meeting", "Handled": "busy@1-2",
		"DndEnd": aztables.EDMInt64(until.Unix()), "CsUntil": aztables.EDMInt64(until.Unix()), "Until": aztables.EDMInt64(until.Unix()),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.users.AddEntity(ctx, old, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadStates(ctx, []string{id})
	if err != nil {
		t.Fatal(err)
	}
	want := engine.State{PrevStatus: "away", PrevManual: true, SetStatus: "dnd", CustomEmoji: "calendar", CustomText: "In a meeting",
		Handled: "busy@1-2", DNDEnd: until, CustomUntil: until, Until: until}
	if got[id].State != want {
		t.Fatalf("old row read as %+v, want %+v", got[id].State, want)
	}
	next := want
	next.SetStatus, next.DNDEnd, next.Replies, next.RepliesDone, next.RepliesKept = "ooo", time.Time{}, "9f86d081884c7d65", true, until.Add(time.Hour)
	if _, err := s.SaveStates(ctx, []StateChange{{UserID: id, Old: got[id], New: next}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LoadStates(ctx, []string{id}); err != nil || got[id].State != next {
		t.Fatalf("rewritten row read as %+v (%v), want %+v", got[id].State, err, next)
	}
}
