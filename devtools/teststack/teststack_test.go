package teststack

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const sample = `# written by stack.sh
MATTERMOST_URL=http://127.0.0.1:18065/
MATTERMOST_TOKEN=abc123
MATTERMOST_ADMIN_USERNAME=sysadmin
MATTERMOST_ADMIN_PASSWORD=pw
AZURE_STORAGE_CONNECTION_STRING='DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;'

export SEED_USERS=1200
SEED_EMAIL_DOMAIN=contoso.example
`

func writeEnv(t *testing.T, text string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvFileVar, p)
}

func TestLoad(t *testing.T) {
	writeEnv(t, sample)
	e, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	want := Env{
		MattermostURL:           "http://127.0.0.1:18065",
		MattermostToken:         "abc123",
		AdminUsername:           "sysadmin",
		AdminPassword:           "pw",
		StorageConnectionString: "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;",
		SeedUsers:               1200,
		EmailDomain:             "contoso.example",
		Profile:                 "v6", // the sample names none: an env file written before profiles existed
	}
	if e != want {
		t.Fatalf("Load() = %+v, want %+v", e, want)
	}
}

func TestLoadProfile(t *testing.T) {
	writeEnv(t, sample+"STACK_POSTGRES_DSN=postgres://mmuser:pw@127.0.0.1:15433/mattermost?sslmode=disable\nMATTERMOST_PROFILE=v10\n")
	e, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if e.Profile != "v10" {
		t.Errorf("Profile = %q, want v10", e.Profile)
	}
	if e.SQLDSN != "postgres://mmuser:pw@127.0.0.1:15433/mattermost?sslmode=disable" {
		t.Errorf("SQLDSN = %q", e.SQLDSN)
	}
}

func TestLoadMissingKeys(t *testing.T) {
	writeEnv(t, "MATTERMOST_URL=http://x\n")
	_, err := Load()
	if err == nil || !strings.Contains(err.Error(), "MATTERMOST_TOKEN") {
		t.Fatalf("Load() error = %v, want one naming MATTERMOST_TOKEN", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Setenv(EnvFileVar, filepath.Join(t.TempDir(), "nope"))
	if _, err := Load(); err == nil {
		t.Fatal("Load() of a missing file succeeded")
	}
}

// fakeTB records how require ends a test; Fatalf and Skip stop the goroutine like the real ones.
type fakeTB struct {
	testing.TB
	failed, skipped bool
	msg             string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *fakeTB) Skip(args ...any) {
	f.skipped, f.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}

func runRequire(short bool) *fakeTB {
	f := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		require(f, short)
	}()
	<-done
	return f
}

// TestRequireWithoutStack: a missing stack fails the test, except under -short, where it is skipped.
func TestRequireWithoutStack(t *testing.T) {
	t.Setenv(EnvFileVar, filepath.Join(t.TempDir(), "nope"))
	if f := runRequire(false); !f.failed || f.skipped || !strings.Contains(f.msg, "test stack not running") {
		t.Errorf("without -short: failed=%v skipped=%v %q, want a failure", f.failed, f.skipped, f.msg)
	}
	if f := runRequire(true); !f.skipped || f.failed || !strings.Contains(f.msg, "-short") {
		t.Errorf("with -short: failed=%v skipped=%v %q, want a skip naming -short", f.failed, f.skipped, f.msg)
	}
}

// TestRequireShortSkipsEvenWithStack: under -short nothing touches the stack, even a running one.
func TestRequireShortSkipsEvenWithStack(t *testing.T) {
	writeEnv(t, sample) // names a Mattermost that require must not even ping
	if f := runRequire(true); !f.skipped {
		t.Errorf("with -short and an env file: failed=%v skipped=%v %q, want a skip", f.failed, f.skipped, f.msg)
	}
}
