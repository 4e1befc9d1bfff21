package teststack

import (
	"os"
	"path/filepath"
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
	}
	if e != want {
		t.Fatalf("Load() = %+v, want %+v", e, want)
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
