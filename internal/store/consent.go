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

// ConsentRecord is the latest admin consent calstatus received, and what the check of Graph access
// right after it (or since) found.
type ConsentRecord struct {
	// Tenant is the tenant that consented.
	Tenant string
	// At is when the consent callback arrived.
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

// Paused reports whether an admin paused the sync (the status page's switch): no run writes to
// Mattermost or the state table while it is on.
func (s *Store) Paused(ctx context.Context) (bool, error) {
	resp, err := s.app.GetEntity(ctx, "app", "paused", nil)
	if err != nil {
		if hasCode(err, aztables.ResourceNotFound) {
			return false, nil
		}
		return false, &Error{Op: "reading the pause switch", Err: err}
	}
	var e aztables.EDMEntity
	if err := json.Unmarshal(resp.Value, &e); err != nil {
		return false, &Error{Op: "reading the pause switch", Err: err}
	}
	on, _ := e.Properties["On"].(bool)
	return on, nil
}

// SetPaused turns the pause switch on or off.
func (s *Store) SetPaused(ctx context.Context, on bool, by string, at time.Time) error {
	entity, err := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: "app", RowKey: "paused"},
		Properties: map[string]any{"On": on, "By": by, "At": aztables.EDMDateTime(at.UTC())}})
	if err != nil {
		return &Error{Op: "writing the pause switch", Err: err}
	}
	if _, err := s.app.UpsertEntity(ctx, entity, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		return &Error{Op: "writing the pause switch", Err: err}
	}
	return nil
}
