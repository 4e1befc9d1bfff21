// Package teststack gives Go tests the coordinates of the local test stack
// (Mattermost, Azurite) started by devtools/stack/stack.sh up.
//
// Tests that need the stack call Require, which fails the test (it does not
// skip) when the stack is not running: a missing stack must never look green.
// Under go test -short (make unit) Require skips instead, whether the stack
// runs or not, so the short run neither needs nor touches it.
package teststack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// EnvFileVar names the environment variable that, when set, points at the env
// file to load instead of <repo root>/.stack/env.
const EnvFileVar = "CALSTATUS_STACK_ENV"

// Env is what the stack's env file says.
type Env struct {
	MattermostURL           string // e.g. http://127.0.0.1:18065
	MattermostToken         string // a system admin's personal access token
	AdminUsername           string
	AdminPassword           string
	StorageConnectionString string // Azurite, full connection string
	SeedUsers               int    // number of active seeded (syncable) users
	EmailDomain             string // seeded users' email domain, e.g. contoso.example
	SQLDSN                  string // Mattermost's PostgreSQL database, postgres://…?sslmode=disable (optional)
	// Profile is the Mattermost server profile the stack runs (MATTERMOST_PROFILE; "v6" when
	// the file does not say): "v6" (v6.7.2 as released, like servers up to 10.0), "v10early"
	// (status cache entries expire after 30 minutes, like 10.1–10.5) or "v10" (also DND ends cut
	// to the minute, expiry every minute, full status rows after a cache miss, like 10.6+).
	// See devtools/stack/README.md.
	Profile string
}

// DefaultProfile is Env.Profile when the env file names none (written before profiles existed).
const DefaultProfile = "v6"

// Path returns the env file Load reads: $CALSTATUS_STACK_ENV, or else
// <repo root>/.stack/env where the repo root is the nearest directory above
// the working directory holding a go.mod.
func Path() (string, error) {
	if p := os.Getenv(EnvFileVar); p != "" {
		return p, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".stack", "env"), nil
}

// Load reads and checks the env file.
func Load() (Env, error) {
	path, err := Path()
	if err != nil {
		return Env{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return Env{}, fmt.Errorf("test stack env file: %w", err)
	}
	defer f.Close()
	vars, err := parse(bufio.NewScanner(f))
	if err != nil {
		return Env{}, fmt.Errorf("test stack env file %s: %w", path, err)
	}
	e := Env{
		MattermostURL:           strings.TrimRight(vars["MATTERMOST_URL"], "/"),
		MattermostToken:         vars["MATTERMOST_TOKEN"],
		AdminUsername:           vars["MATTERMOST_ADMIN_USERNAME"],
		AdminPassword:           vars["MATTERMOST_ADMIN_PASSWORD"],
		StorageConnectionString: vars["AZURE_STORAGE_CONNECTION_STRING"],
		EmailDomain:             vars["SEED_EMAIL_DOMAIN"],
		SQLDSN:                  vars["STACK_POSTGRES_DSN"],
		Profile:                 vars["MATTERMOST_PROFILE"],
	}
	if e.Profile == "" {
		e.Profile = DefaultProfile
	}
	var missing []string
	for k, v := range map[string]string{
		"MATTERMOST_URL":                  e.MattermostURL,
		"MATTERMOST_TOKEN":                e.MattermostToken,
		"AZURE_STORAGE_CONNECTION_STRING": e.StorageConnectionString,
		"SEED_USERS":                      vars["SEED_USERS"],
		"SEED_EMAIL_DOMAIN":               e.EmailDomain,
	} {
		if v == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return Env{}, fmt.Errorf("test stack env file %s lacks %s", path, strings.Join(missing, ", "))
	}
	if e.SeedUsers, err = strconv.Atoi(vars["SEED_USERS"]); err != nil {
		return Env{}, fmt.Errorf("test stack env file %s: SEED_USERS: %w", path, err)
	}
	return e, nil
}

// Ping checks that Mattermost answers GET /api/v4/system/ping.
func (e Env) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.MattermostURL+"/api/v4/system/ping", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", req.URL, resp.Status)
	}
	return nil
}

// ShortSkipMessage is what tests that need the stack say when -short skips them.
const ShortSkipMessage = "needs the test stack (Mattermost, Azurite): skipped under -short; run without -short (make test) to include it"

// Require loads the env file and pings Mattermost; it fails the test with a
// clear message when either does not work. Under -short it skips the test.
func Require(t testing.TB) Env {
	t.Helper()
	return require(t, testing.Short())
}

func require(t testing.TB, short bool) Env {
	t.Helper()
	if short {
		t.Skip(ShortSkipMessage)
	}
	e, err := Load()
	if err != nil {
		t.Fatalf("test stack not running: run `make stack-up` (or devtools/stack/stack.sh up): %v", err)
	}
	if err := e.Ping(context.Background()); err != nil {
		t.Fatalf("test stack not running: run `make stack-up` (or devtools/stack/stack.sh up): Mattermost at %s does not answer: %v", e.MattermostURL, err)
	}
	return e
}

// parse reads KEY=value lines; blank lines and # comments are skipped, an
// optional "export " prefix is allowed, and a value wrapped in matching single
// or double quotes is unwrapped (the connection string is quoted so the file
// can be sourced by a shell).
func parse(sc *bufio.Scanner) (map[string]string, error) {
	vars := map[string]string{}
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("line %d: want KEY=value", n)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '\'' || v[0] == '"') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		vars[strings.TrimSpace(k)] = v
	}
	return vars, sc.Err()
}

// RepoRoot is the nearest directory above the working directory holding a go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod found above the working directory; set " + EnvFileVar)
		}
		dir = parent
	}
}
