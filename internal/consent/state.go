package consent

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"time"
)

// A state ties Microsoft's callback to a consent page calstatus served, in the browser it served:
//
//	base64url(nonce | expiry | binding) "." base64url(HMAC-SHA256(key, nonce | expiry | binding))
//
// with a 16-byte random nonce, the expiry as 8 bytes of big-endian Unix seconds and the binding as
// the first 16 bytes of SHA-256 of the browser's binding cookie. The signature proves calstatus
// issued it, the expiry bounds its life, the binding that it comes back to the browser that asked
// for it (a state copied from the page into another browser is refused), and the nonce, recorded
// as used by the callback, makes it work once.
const (
	nonceSize   = 16
	bindingSize = 16
	payloadSize = nonceSize + 8 + bindingSize
)

// Why a state is refused.
var (
	errStateMissing   = errors.New("state missing")
	errStateMalformed = errors.New("state malformed")
	errStateForged    = errors.New("state signature invalid")
	errStateExpired   = errors.New("state expired")
	errStateUnbound   = errors.New("state issued to another browser")
)

// Strict: a state has one spelling (no ignored padding bits).
var b64 = base64.RawURLEncoding.Strict()

// newState signs a fresh state expiring at expires, for the browser holding cookie.
func newState(key []byte, expires time.Time, cookie string) (string, error) {
	payload := make([]byte, payloadSize)
	if _, err := rand.Read(payload[:nonceSize]); err != nil {
		return "", err
	}
	binary.BigEndian.PutUint64(payload[nonceSize:], uint64(expires.Unix()))
	copy(payload[nonceSize+8:], binding(cookie))
	return b64.EncodeToString(payload) + "." + b64.EncodeToString(sign(key, payload)), nil
}

// binding is what a state keeps of a binding cookie.
func binding(cookie string) []byte {
	h := sha256.Sum256([]byte(cookie))
	return h[:bindingSize]
}

// newBindingCookie is a fresh binding cookie value: 32 random bytes, base64url.
func newBindingCookie() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return b64.EncodeToString(b), nil
}

// validBindingCookie accepts what newBindingCookie makes.
func validBindingCookie(v string) bool {
	b, err := b64.DecodeString(v)
	return err == nil && len(b) == 32
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

// checkState verifies a state's form, signature, expiry and binding to the browser's cookie, and
// returns its nonce (hex, to be recorded as used) and expiry. It does not record anything.
func checkState(key []byte, state, cookie string, now time.Time) (nonce string, expires time.Time, err error) {
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
	if cookie == "" || subtle.ConstantTimeCompare(binding(cookie), payload[nonceSize+8:]) != 1 {
		return "", expires, errStateUnbound
	}
	return hex.EncodeToString(payload[:nonceSize]), expires, nil
}
