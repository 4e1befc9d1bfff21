package consent

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

// Whatever comes back as state, checking it never panics, and nothing but a state signed with the
// key is accepted.
func FuzzCheckState(f *testing.F) {
	key := bytes.Repeat([]byte{7}, 32)
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	// A fixed nonce: every fuzzing worker must compute the same valid state.
	payload := make([]byte, payloadSize)
	copy(payload, bytes.Repeat([]byte{1}, nonceSize))
	binary.BigEndian.PutUint64(payload[nonceSize:], uint64(now.Add(10*time.Minute).Unix()))
	const cookie = "the browser's cookie"
	copy(payload[nonceSize+8:], binding(cookie))
	valid := b64.EncodeToString(payload) + "." + b64.EncodeToString(sign(key, payload))
	for _, s := range []string{valid, "", ".", "a.b", valid + "x", valid[:len(valid)-3], "AAAA.AAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, state string) {
		if _, _, err := checkState(key, state, cookie, now); err == nil && state != valid {
			t.Fatalf("accepted %q, which calstatus never signed", state)
		}
	})
}
