package store

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// The admin consent pages' records, in AppTable under one partition.
const (
	appPartition = "app"
	stateKeyRow  = "state-key"
	consentRow   = "consent"
	// checkRow holds when the Graph access check last ran (its rate limit).
	checkRow = "consent-check"
	// statePrefix + a state's nonce marks the state used.
	statePrefix = "state-"
	// StateKeySize is the size of the consent pages' HMAC key.
	StateKeySize = 32
)

// ErrStateUsed means a consent state's nonce was already recorded as used: the state is replayed.
var ErrStateUsed = errors.New("table storage: consent state already used")

// StateKey returns the key that signs the admin consent pages' states. The first call anywhere
// generates it (crypto/rand) and stores it; when another instance stores its own first, theirs is
// read and returned, so every instance signs with the same key. The key never leaves the app.
func (s *Store) StateKey(ctx context.Context) ([]byte, error) {
	key, found, err := s.readStateKey(ctx)
	if err != nil || found {
		return key, err
	}
	key = make([]byte, StateKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, &Error{Op: "generating the consent state key", Err: err}
	}
	entity, err := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: appPartition, RowKey: stateKeyRow},
		Properties: map[string]any{"Key": base64.StdEncoding.EncodeToString(key), "Created": aztables.EDMDateTime(time.Now().UTC())}})
	if err != nil {
		return nil, err
	}
	if _, err := s.app.AddEntity(ctx, entity, nil); err != nil {
		if !alreadyExists(err) {
			return nil, &Error{Op: "storing the consent state key", Err: err}
		}
		// Another instance stored its key first: use theirs.
		key, found, err = s.readStateKey(ctx)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, &Error{Op: "reading the consent state key", Err: errors.New("missing after a conflicting insert")}
		}
	}
	return key, nil
}

func (s *Store) readStateKey(ctx context.Context) ([]byte, bool, error) {
	const op = "reading the consent state key"
	resp, err := s.app.GetEntity(ctx, appPartition, stateKeyRow, nil)
	if err != nil {
		if hasCode(err, aztables.ResourceNotFound) {
			return nil, false, nil
		}
		return nil, false, &Error{Op: op, Err: err}
	}
	var e aztables.EDMEntity
	if err := json.Unmarshal(resp.Value, &e); err != nil {
		return nil, false, &Error{Op: op, Err: err}
	}
	enc, _ := e.Properties["Key"].(string)
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(key) != StateKeySize {
		// Never quote the stored value: it is the key.
		return nil, false, &Error{Op: op, Err: fmt.Errorf("stored key is not %d bytes of base64", StateKeySize)}
	}
	return key, true, nil
}

// UseState records a consent state's nonce as used, for good: it returns ErrStateUsed when the nonce
// was recorded before (by this instance or another), so a state works once. expires (the state's
// own expiry) is kept with it, so used states can be purged once they could no longer verify.
func (s *Store) UseState(ctx context.Context, nonce string, expires time.Time) error {
	if !validNonce(nonce) {
		return &Error{Op: "recording a used consent state", Err: errors.New("malformed nonce")}
	}
	entity, err := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: appPartition, RowKey: statePrefix + nonce},
		Properties: map[string]any{"Expires": aztables.EDMDateTime(expires.UTC()), "Used": aztables.EDMDateTime(time.Now().UTC())}})
	if err != nil {
		return err
	}
	if _, err := s.app.AddEntity(ctx, entity, nil); err != nil {
		if alreadyExists(err) {
			return ErrStateUsed
		}
		return &Error{Op: "recording a used consent state", Err: err}
	}
	return nil
}

// validNonce accepts what can be a RowKey suffix: 1–64 characters of [A-Za-z0-9_-].
func validNonce(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// PurgeUsedStates deletes the used consent states that expired before cutoff: past their expiry a
// state no longer verifies, so its record keeps nothing from being replayed.
func (s *Store) PurgeUsedStates(ctx context.Context, cutoff time.Time) (int, error) {
	filter := fmt.Sprintf("PartitionKey eq %s and RowKey ge %s and RowKey lt %s and Expires lt datetime'%s'",
		odataQuote(appPartition), odataQuote(statePrefix), odataQuote("state."), cutoff.UTC().Format(time.RFC3339))
	return deleteWhere(ctx, s.app, filter, "used consent states", func(row string) bool { return row != stateKeyRow })
}

// ClaimCheck takes the one slot for a Graph access check: it reports true, and records now, when no
// check was claimed in the last every — by any request on any instance (an ETag-guarded write, so
// of concurrent claims exactly one wins). The pages are anonymous: this bounds what anyone can make
// calstatus ask of Graph and Mattermost.
func (s *Store) ClaimCheck(ctx context.Context, now time.Time, every time.Duration) (bool, error) {
	const op = "claiming the Graph access check"
	resp, err := s.app.GetEntity(ctx, appPartition, checkRow, nil)
	var etag *azcore.ETag
	switch {
	case err == nil:
		var e aztables.EDMEntity
		if err := json.Unmarshal(resp.Value, &e); err != nil {
			return false, &Error{Op: op, Err: err}
		}
		if at, ok := e.Properties["At"].(aztables.EDMDateTime); ok && now.Sub(time.Time(at)) < every {
			return false, nil
		}
		etag = &resp.ETag
	case !hasCode(err, aztables.ResourceNotFound):
		return false, &Error{Op: op, Err: err}
	}
	entity, err := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: appPartition, RowKey: checkRow},
		Properties: map[string]any{"At": aztables.EDMDateTime(now.UTC())}})
	if err != nil {
		return false, err
	}
	if etag == nil {
		_, err = s.app.AddEntity(ctx, entity, nil)
	} else {
		_, err = s.app.UpdateEntity(ctx, entity, &aztables.UpdateEntityOptions{IfMatch: etag, UpdateMode: aztables.UpdateModeReplace})
	}
	if err != nil {
		if isConflict(err) {
			return false, nil // another request claimed it first
		}
		return false, &Error{Op: op, Err: err}
	}
	return true, nil
}

// ConsentRecord is the latest admin consent answer calstatus received, and what the last check of
// Graph access found. The answer alone proves nothing (anyone can follow the pages' way); a
// successful check is what says the consent is granted.
type ConsentRecord struct {
	// Tenant is the tenant the answer named (the configured one: others are refused).
	Tenant string
	// At is when the consent answer (the callback) arrived.
	At time.Time
	// Probe is the outcome of the last check of Graph access: "ok", "not_propagated",
	// "no_permission", "wrong_tenant" or "error: <detail>"; "" before the first check.
	Probe string
	// ProbedAt is when that check ran (zero before the first).
	ProbedAt time.Time
}

// RecordConsent writes the consent record (replacing the previous one).
func (s *Store) RecordConsent(ctx context.Context, r ConsentRecord) error {
	props := map[string]any{"Tenant": r.Tenant, "Probe": truncate(r.Probe, 1000)}
	// Table Storage refuses dates before 1601: a zero time is left out.
	if !r.At.IsZero() {
		props["At"] = aztables.EDMDateTime(r.At.UTC())
	}
	if !r.ProbedAt.IsZero() {
		props["ProbedAt"] = aztables.EDMDateTime(r.ProbedAt.UTC())
	}
	entity, err := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: appPartition, RowKey: consentRow}, Properties: props})
	if err != nil {
		return err
	}
	if _, err := s.app.UpsertEntity(ctx, entity, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		return &Error{Op: "recording the admin consent", Err: err}
	}
	return nil
}

// Consent reads the consent record; found is false before the first consent.
func (s *Store) Consent(ctx context.Context) (r ConsentRecord, found bool, err error) {
	const op = "reading the admin consent"
	resp, err := s.app.GetEntity(ctx, appPartition, consentRow, nil)
	if err != nil {
		if hasCode(err, aztables.ResourceNotFound) {
			return ConsentRecord{}, false, nil
		}
		return ConsentRecord{}, false, &Error{Op: op, Err: err}
	}
	var e aztables.EDMEntity
	if err := json.Unmarshal(resp.Value, &e); err != nil {
		return ConsentRecord{}, false, &Error{Op: op, Err: err}
	}
	r.Tenant, _ = e.Properties["Tenant"].(string)
	r.Probe, _ = e.Properties["Probe"].(string)
	if t, ok := e.Properties["At"].(aztables.EDMDateTime); ok {
		r.At = time.Time(t).UTC()
	}
	if t, ok := e.Properties["ProbedAt"].(aztables.EDMDateTime); ok {
		r.ProbedAt = time.Time(t).UTC()
	}
	return r, true, nil
}

// alreadyExists recognises an insert refused because the entity exists.
func alreadyExists(err error) bool {
	var re *azcore.ResponseError
	return hasCode(err, aztables.EntityAlreadyExists) || errors.As(err, &re) && re.StatusCode == http.StatusConflict
}
