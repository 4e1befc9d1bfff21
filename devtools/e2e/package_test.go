package e2e

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/devtools/pack"
	"github.com/calstatus/calstatus/devtools/teststack"
	"github.com/calstatus/calstatus/internal/shard"
)

// TestPackageRunsOnHost: the deployment zip (`make package`), unpacked with its file modes, is an
// app the Functions host runs as it is: host.json and the function folders at its root, the
// linux/amd64 handler executable. A whole cycle runs through it: SyncTimer plans the shards, every
// SyncShard succeeds, and the cycle's shard records all say ok.
func TestPackageRunsOnHost(t *testing.T) {
	teststack.Require(t) // before building: under -short this skips
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "calstatus.zip")
	if err := pack.Build(repoRoot(), zipPath); err != nil {
		t.Fatal(err)
	}
	app := filepath.Join(dir, "app")
	if err := pack.Extract(zipPath, app); err != nil {
		t.Fatal(err)
	}
	hostJSON, err := os.ReadFile(filepath.Join(app, "host.json"))
	if err != nil {
		t.Fatal(err)
	}
	exe, err := pack.ExecutableName(hostJSON)
	if err != nil {
		t.Fatal(err)
	}
	exePath := filepath.Join(app, filepath.FromSlash(exe))
	if st, err := os.Stat(exePath); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("unpacked handler %s: %v %v, want mode -rwxr-xr-x", exe, st, err)
	}

	sc := graphsim.DefaultScenario()
	h := newHarness(t, harnessOptions{scenario: sc, appDir: app, handlerPath: exePath})

	// The host found every function in the package's root folders (Azure's layout), not in the
	// repository.
	wantFns, err := pack.Functions(repoRoot())
	if err != nil {
		t.Fatal(err)
	}
	var gotFns []string
	for _, fi := range h.host.Functions() {
		gotFns = append(gotFns, fi.Name)
		if filepath.Dir(fi.Dir) != app {
			t.Errorf("function %s indexed from %s, want a folder at the package root %s", fi.Name, fi.Dir, app)
		}
	}
	sort.Strings(gotFns)
	if strings.Join(gotFns, ",") != strings.Join(wantFns, ",") {
		t.Fatalf("host indexed functions %q from the package, want %q", gotFns, wantFns)
	}

	users := h.syncUsers()
	wantShards := (len(users) + shard.MaxUsers - 1) / shard.MaxUsers
	msgs, reps, _ := h.cycle(3 * time.Minute)
	if len(msgs) != wantShards || wantShards == 0 {
		t.Fatalf("SyncTimer emitted %d shards for %d users, want %d", len(msgs), len(users), wantShards)
	}
	synced := 0
	for _, r := range reps {
		synced += r.Users
	}
	if synced != len(users) {
		t.Errorf("shard records cover %d users, want %d", synced, len(users))
	}
	t.Logf("packaged handler: %d users, %d shards, all ok", len(users), wantShards)
}
