package consent

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"time"
)

// A state ties Microsoft's callback to a consent page calstatus served:
//
//	base64url(nonce | expiry) "." base64url(HMAC-SHA256(key, nonce | expiry))
//
// with a 16-byte random nonce and the expiry as 8 bytes of big-endian Unix seconds. The signature
// proves calstatus issued it, the expiry bounds its life, and the nonce, recorded as used by the
// callback, makes it work once.
const (
	nonceSize   = 16
	payloadSize = nonceSize + 8
)

// Why a state is refused.
var (
	errStateMissing   = errors.New("state missing")
	errStateMalformed = errors.New("state malformed")
	errStateForged    = errors.New("state signature invalid")
	errStateExpired   = errors.New("state expired")
)

// Strict: a state has one spelling (no ignored padding bits).
var b64 = base64.RawURLEncoding.Strict()

// newState signs a fresh state expiring at expires.
func newState(key []byte, expires time.Time) (string, error) {
	payload := make([]byte, payloadSize)
	if _, err := rand.Read(payload[:nonceSize]); err != nil {
		return "", err
	}
	binary.BigEndian.PutUint64(payload[nonceSize:], uint64(expires.Unix()))
	return b64.EncodeToString(payload) + "." + b64.EncodeToString(sign(key, payload)), nil
}

// notStateRune is true outside base64url and the dot: Go's decoder skips line breaks, which would
// give one state several spellings (found by fuzzing).
func notStateRune(r rune) bool {
	return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
}

func sign(key, payload []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(payload)
	return m.Sum(nil)
}

// checkState verifies a state's form, signature and expiry, and returns its nonce (hex, to be
// recorded as used) and expiry. It does not record anything.
func checkState(key []byte, state string, now time.Time) (nonce string, expires time.Time, err error) {
	if state == "" {
		return "", time.Time{}, errStateMissing
	}
	p, s, ok := strings.Cut(state, ".")
	if !ok || len(state) > 200 || strings.IndexFunc(state, notStateRune) >= 0 {
		return "", time.Time{}, errStateMalformed
	}
	payload, err1 := b64.DecodeString(p)
	mac, err2 := b64.DecodeString(s)
	if err1 != nil || err2 != nil || len(payload) != payloadSize || len(mac) != sha256.Size {
		return "", time.Time{}, errStateMalformed
	}
	if !hmac.Equal(mac, sign(key, payload)) {
		return "", time.Time{}, errStateForged
	}
	expires = time.Unix(int64(binary.BigEndian.Uint64(payload[nonceSize:])), 0).UTC()
	if !now.Before(expires) {
		return "", expires, errStateExpired
	}
	return hex.EncodeToString(payload[:nonceSize]), expires, nil
}
