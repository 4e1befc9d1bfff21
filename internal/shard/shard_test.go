package shard

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%026d", n-i) // reverse order: Split must sort
	}
	return out
}

func TestSplit(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for _, n := range []int{1, 399, 400, 401, 1200, 10_000} {
		msgs := Split("c1", now, now.Add(5*time.Minute), ids(n))
		want := (n + 399) / 400
		if len(msgs) != want {
			t.Fatalf("%d users: %d shards, want %d", n, len(msgs), want)
		}
		total := 0
		last := ""
		for i, m := range msgs {
			if err := m.Validate(); err != nil {
				t.Fatalf("shard %d invalid: %v", i, err)
			}
			if m.Shard != i || m.Shards != want || len(m.UserIDs) > MaxUsers {
				t.Fatalf("shard %d: %+v", i, m)
			}
			for _, id := range m.UserIDs {
				if id <= last {
					t.Fatalf("ids not sorted across shards")
				}
				last = id
			}
			total += len(m.UserIDs)
		}
		if total != n {
			t.Fatalf("%d users in shards, want %d", total, n)
		}
	}
}

func TestMessageSizeIndependentOfEmails(t *testing.T) {
	now := time.Now()
	m := Split("20261122T100000Z-abcdef", now, now.Add(time.Hour), ids(MaxUsers))[0]
	b, _ := json.Marshal(m)
	if enc := base64.StdEncoding.EncodedLen(len(b)); enc > 48<<10 {
		t.Fatalf("full shard is %d bytes base64-encoded, too close to 64 KB", enc)
	}
	if len(b) > MaxMessageBytes {
		t.Fatalf("full shard %d bytes > %d", len(b), MaxMessageBytes)
	}
}

func TestDecodeRejects(t *testing.T) {
	now := time.Now()
	good := Split("c", now, now.Add(time.Minute), ids(3))[0]
	mutate := func(f func(*Message)) []byte { m := good; f(&m); b, _ := json.Marshal(m); return b }
	cases := map[string][]byte{
		"not json":    []byte("hello"),
		"version":     mutate(func(m *Message) { m.Version = 9 }),
		"no cycle":    mutate(func(m *Message) { m.CycleID = "" }),
		"slash cycle": mutate(func(m *Message) { m.CycleID = "a/b" }),
		"bad index":   mutate(func(m *Message) { m.Shard = 5 }),
		"no users":    mutate(func(m *Message) { m.UserIDs = nil }),
		"bad id":      mutate(func(m *Message) { m.UserIDs = []string{"../../etc"} }),
		"upper id":    mutate(func(m *Message) { m.UserIDs = []string{strings.Repeat("A", 26)} }),
		"stale first": mutate(func(m *Message) { m.StaleAfter = m.IssuedAt.Add(-time.Second) }),
		"too many":    mutate(func(m *Message) { m.UserIDs = ids(401) }),
	}
	for name, body := range cases {
		if _, err := Decode(body); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	b, _ := json.Marshal(good)
	if _, err := Decode(b); err != nil {
		t.Fatalf("good message rejected: %v", err)
	}
}
