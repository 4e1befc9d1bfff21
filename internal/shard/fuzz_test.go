package shard

import (
	"encoding/json"
	"testing"
	"time"
)

// A shard message from the queue is decoded and validated, or refused with an error — never a
// panic; what is accepted encodes and decodes to the same message.
func FuzzDecode(f *testing.F) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for _, m := range Split("c1", now, now.Add(5*time.Minute), []string{"aaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbb"}) {
		b, _ := json.Marshal(m)
		f.Add(b)
		b, _ = json.Marshal(m.Transition(now.Add(time.Minute), m.UserIDs[:1], now))
		f.Add(b)
	}
	for _, s := range []string{`{}`, `{"v":1}`, `null`, `{"v":1,"cycle":"x","users":["not-an-id"]}`, `{"v":1,"shard":-1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("Decode accepted an invalid message: %v", err)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Decode(b)
		if err != nil || again.CycleID != m.CycleID || len(again.UserIDs) != len(m.UserIDs) || !again.ApplyAt.Equal(m.ApplyAt) {
			t.Fatalf("round trip: %+v vs %+v (%v)", again, m, err)
		}
	})
}
