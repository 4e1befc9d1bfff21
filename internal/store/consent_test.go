package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/calstatus/calstatus/devtools/teststack"
	"github.com/calstatus/calstatus/internal/azstorage"
)

// These tests run against Azurite. Each gets a table of its own (not calstatussettings), so the
// key is really created here and other runs' records cannot interfere.

// runSuffix is n random bytes in hex: names and keys of this test run's own.
func runSuffix(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func appStore(t *testing.T) *Store { return &Store{app: freshTable(t, "consenttest")} }

// freshTable is a table of this test's own in Azurite (named prefix + a random suffix), deleted
// when the test ends.
func freshTable(t *testing.T, prefix string) *aztables.Client {
	t.Helper()
	env := teststack.Require(t)
	svc, err := azstorage.Account{ConnectionString: env.StorageConnectionString}.Tables()
	if err != nil {
		t.Fatal(err)
	}
	name := prefix + runSuffix(6)
	if _, err := svc.CreateTable(context.Background(), name, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = svc.DeleteTable(context.Background(), name, nil) })
	return svc.NewClient(name)
}

func TestStateKeyIsCreatedOnceAndStable(t *testing.T) {
	s := appStore(t)
	ctx := context.Background()
	k1, err := s.StateKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != StateKeySize || bytes.Equal(k1, make([]byte, StateKeySize)) {
		t.Fatalf("key of %d bytes: %x", len(k1), k1)
	}
	k2, err := s.StateKey(ctx)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second read differs (err %v)", err)
	}
	// Another instance (another Store on the same table) reads the same key.
	other := &Store{app: s.app}
	if k3, err := other.StateKey(ctx); err != nil || !bytes.Equal(k1, k3) {
		t.Fatalf("other instance's key differs (err %v)", err)
	}
}

func TestConcurrentStateKeyCreationGivesOneKey(t *testing.T) {
	s := appStore(t)
	const n = 12
	keys := make([][]byte, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			inst := &Store{app: s.app} // each its own instance, all racing on an empty table
			<-start
			keys[i], errs[i] = inst.StateKey(context.Background())
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("instance %d: %v", i, errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("instance %d got another key than instance 0", i)
		}
	}
	if k, err := s.StateKey(context.Background()); err != nil || !bytes.Equal(k, keys[0]) {
		t.Fatalf("stored key differs from the one handed out (err %v)", err)
	}
}

func TestUseStateOnce(t *testing.T) {
	s := appStore(t)
	ctx := context.Background()
	exp := time.Now().Add(10 * time.Minute)
	if err := s.UseState(ctx, "AbC-_012345", exp); err != nil {
		t.Fatal(err)
	}
	if err := s.UseState(ctx, "AbC-_012345", exp); !errors.Is(err, ErrStateUsed) {
		t.Fatalf("second use: %v, want ErrStateUsed", err)
	}
	// Another instance sees it used too; another nonce is free.
	other := &Store{app: s.app}
	if err := other.UseState(ctx, "AbC-_012345", exp); !errors.Is(err, ErrStateUsed) {
		t.Fatalf("second use elsewhere: %v, want ErrStateUsed", err)
	}
	if err := other.UseState(ctx, "abc-_012345", exp); err != nil {
		t.Fatalf("another nonce (RowKeys are case-sensitive): %v", err)
	}
	// Concurrent uses of one nonce: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 8 {
		wg.Go(func() {
			err := (&Store{app: s.app}).UseState(ctx, "race", exp)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				won++
			} else if !errors.Is(err, ErrStateUsed) {
				t.Errorf("racing use: %v", err)
			}
		})
	}
	wg.Wait()
	if won != 1 {
		t.Fatalf("%d racing uses succeeded, want 1", won)
	}
	for _, bad := range []string{"", "a/b", "a#b", "x?y", string(make([]byte, 65))} {
		if err := s.UseState(ctx, bad, exp); err == nil || errors.Is(err, ErrStateUsed) {
			t.Fatalf("nonce %q: %v, want a malformed-nonce error", bad, err)
		}
	}
}

func TestConsentRoundTrip(t *testing.T) {
	s := appStore(t)
	ctx := context.Background()
	if _, found, err := s.Consent(ctx); err != nil || found {
		t.Fatalf("before any consent: found %v, err %v", found, err)
	}
	at := time.Date(2026, 11, 30, 9, 15, 42, 0, time.FixedZone("CET", 3600))
	rec := ConsentRecord{Tenant: "72f988bf-86f1-41af-91ab-2d7cd011db47", At: at}
	if err := s.RecordConsent(ctx, rec); err != nil {
		t.Fatal(err)
	}
	got, found, err := s.Consent(ctx)
	if err != nil || !found || got.Tenant != rec.Tenant || !got.At.Equal(at) || got.Probe != "" || !got.ProbedAt.IsZero() {
		t.Fatalf("after consent: %+v found %v err %v", got, found, err)
	}
	// The probe's outcome replaces the record.
	rec.Probe, rec.ProbedAt = "error: status 503", at.Add(2*time.Second)
	if err := s.RecordConsent(ctx, rec); err != nil {
		t.Fatal(err)
	}
	got, _, err = s.Consent(ctx)
	if err != nil || got.Probe != rec.Probe || !got.ProbedAt.Equal(rec.ProbedAt) || !got.At.Equal(at) || got.At.Location() != time.UTC {
		t.Fatalf("after probe: %+v err %v", got, err)
	}
}

// Concurrent checks, on any instance: exactly one takes the slot; the next one only after every.
func TestClaimCheckOnceEvery(t *testing.T) {
	s := appStore(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 8 {
		wg.Go(func() {
			ok, err := (&Store{app: s.app}).ClaimCheck(ctx, now, 30*time.Second)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("claim: %v", err)
			}
			if ok {
				won++
			}
		})
	}
	wg.Wait()
	if won != 1 {
		t.Fatalf("%d concurrent claims won, want 1", won)
	}
	if ok, err := s.ClaimCheck(ctx, now.Add(29*time.Second), 30*time.Second); ok || err != nil {
		t.Fatalf("claim within the interval: %v %v, want refused", ok, err)
	}
	if ok, err := s.ClaimCheck(ctx, now.Add(30*time.Second), 30*time.Second); !ok || err != nil {
		t.Fatalf("claim after the interval: %v %v, want taken", ok, err)
	}
}

// The daily purge deletes used states past their expiry, and nothing else of the app's records.
func TestPurgeUsedStates(t *testing.T) {
	s := appStore(t)
	ctx := context.Background()
	now := time.Now().UTC()
	key, err := s.StateKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.UseState(ctx, "old", now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.UseState(ctx, "live", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordConsent(ctx, ConsentRecord{Tenant: "t", At: now.Add(-48 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	n, err := s.PurgeUsedStates(ctx, now)
	if err != nil || n != 1 {
		t.Fatalf("purged %d (%v), want 1", n, err)
	}
	if err := s.UseState(ctx, "live", now.Add(time.Hour)); !errors.Is(err, ErrStateUsed) {
		t.Fatalf("an unexpired used state was purged: %v", err)
	}
	if err := s.UseState(ctx, "old", now.Add(-time.Hour)); err != nil {
		t.Fatalf("the expired used state is still there: %v", err)
	}
	if k, err := s.StateKey(ctx); err != nil || !bytes.Equal(k, key) {
		t.Fatalf("the state key did not survive the purge (%v)", err)
	}
	if _, found, err := s.Consent(ctx); !found || err != nil {
		t.Fatalf("the consent record did not survive the purge (%v)", err)
	}
}

// The Status page's count of users who turned calstatus off or have it paused now.
func TestCountSettings(t *testing.T) {
	ctx := context.Background()
	s := &Store{users: freshTable(t, "settingstest")}
	now := time.Now().UTC()
	for id, u := range map[string]UserSettings{
		"a0000000000000000000000000": {Disabled: true},
		"b0000000000000000000000000": {Disabled: true, PausedUntil: now.Add(time.Hour)},
		"c0000000000000000000000000": {PausedUntil: now.Add(time.Hour)},
		"d0000000000000000000000000": {PausedUntil: now.Add(-time.Minute)}, // a pause over
	} {
		if err := s.SaveSettings(ctx, id, u); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.CountSettings(ctx, now); err != nil || got != (SettingsCounts{Off: 2, Paused: 1}) {
		t.Fatalf("counts %+v (%v), want 2 off, 1 paused", got, err)
	}
}
