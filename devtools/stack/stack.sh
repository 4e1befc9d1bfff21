#!/usr/bin/env bash
# devtools/stack/stack.sh — the local test stack of calstatus:
#   Azurite (Blob/Queue/Table emulator), PostgreSQL and a real Mattermost server,
#   seeded with a team of users. Works on a fresh Debian machine, as root or not.
#
# Usage: devtools/stack/stack.sh install|up|up-azurite|down|status|reset-db|env|restart mattermost|azurite
#
# Installed things are cached, keyed by version, in ${CALSTATUS_CACHE:-~/.cache/calstatus}.
# Runtime state (databases, logs, pids, the env file) lives in ${CALSTATUS_STATE:-<repo>/.stack}.
# Ports: CALSTATUS_MM_PORT (18065), CALSTATUS_PG_PORT (15433), CALSTATUS_AZURITE_PORT (10000-10002).
# Mattermost server profile: CALSTATUS_MM_PROFILE=v6 (default) | v10 | v10early (v6.7.2 built with
# newer upstream behaviours patched in, see README.md); `install` also takes `all`. `restart
# mattermost` without CALSTATUS_MM_PROFILE keeps the profile that runs.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

CACHE=${CALSTATUS_CACHE:-$HOME/.cache/calstatus}
STATE=${CALSTATUS_STATE:-$REPO_ROOT/.stack}
SEED_USERS=${SEED_USERS:-1200}
SEED_EMAIL_DOMAIN=contoso.example
SEED_TEAM=contoso

AZURITE_VERSION=3.35.0
MM_VERSION=v6.7.2
MM_MODULE=github.com/mattermost/mattermost-server/v6
AZ_DIR=$CACHE/azurite-$AZURITE_VERSION
# MM_PROFILE, MM_DIR (the build in the cache) and MM_HUNKS: set by mm_select_profile.
MM_PROFILES=(v6 v10 v10early)
MM_HUNKS_DIR=$SCRIPT_DIR/mattermost/hunks
MM_PROFILE=
MM_DIR=
MM_HUNKS=()

HOST=127.0.0.1
PG_PORT=${CALSTATUS_PG_PORT:-15433}
MM_PORT=${CALSTATUS_MM_PORT:-18065}
# Azurite blob/queue/table ports: the defaults (UseDevelopmentStorage=true works),
# movable as a block with CALSTATUS_AZURITE_PORT (blob; queue +1, table +2).
AZ_BLOB_PORT=${CALSTATUS_AZURITE_PORT:-10000}
AZ_QUEUE_PORT=$((AZ_BLOB_PORT + 1))
AZ_TABLE_PORT=$((AZ_BLOB_PORT + 2))
AZ_PORTS=("$AZ_BLOB_PORT" "$AZ_QUEUE_PORT" "$AZ_TABLE_PORT")
MM_URL=http://$HOST:$MM_PORT

PG_DB=mattermost
PG_USER=mmuser
PG_PASSWORD=mmuser-stack-pw
ADMIN_USERNAME=sysadmin
ADMIN_PASSWORD='Sysadmin-stack-pw1'
ADMIN_EMAIL=sysadmin@stack.example
SEED_PASSWORD='Seeded-user-pw1'
TEMPLATE_USERNAME=aaliyah.abbott # k=0 of the name sequence in seed.sql
BOTS=(build-bot standup-bot alerts-bot)
LEAVERS=(gregor.halvorsen marisol.quintero desmond.achterberg ottilie.vance rashid.faraday)

AZURITE_ACCOUNT_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
STORAGE_CS="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$AZURITE_ACCOUNT_KEY;BlobEndpoint=http://$HOST:$AZ_BLOB_PORT/devstoreaccount1;QueueEndpoint=http://$HOST:$AZ_QUEUE_PORT/devstoreaccount1;TableEndpoint=http://$HOST:$AZ_TABLE_PORT/devstoreaccount1;"

LOGS=$STATE/logs
RUN=$STATE/run
ENV_FILE=$STATE/env

# ---------------------------------------------------------------- helpers
say() { printf 'stack: %s\n' "$*"; }
die() { printf 'stack: ERROR: %s\n' "$*" >&2; exit 1; }
rel() { local p=$1; [[ $p == "$REPO_ROOT"/* ]] && p=${p#"$REPO_ROOT"/}; printf '%s' "$p"; }
have() { command -v "$1" >/dev/null 2>&1; }
is_root() { [ "$(id -u)" = 0 ]; }

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# pid_alive PIDFILE WORD: the pid in PIDFILE runs and its command line mentions WORD.
pid_alive() {
  local pid
  [ -f "$1" ] || return 1
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"
}

# pid_running PIDFILE: the pid in PIDFILE runs. While a server starts, use this rather than
# pid_alive: during its exec /proc/PID/cmdline can read empty for a moment.
pid_running() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# stop_pid PIDFILE WORD NAME: TERM, wait up to 15 s, then KILL.
stop_pid() {
  local pidfile=$1 word=$2 name=$3 pid
  if ! pid_alive "$pidfile" "$word"; then rm -f "$pidfile"; return 0; fi
  pid=$(cat "$pidfile")
  say "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    say "$name did not stop in 15 s, killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

# start_detached PIDFILE LOGFILE CMD...: run CMD in its own session (so it
# outlives this script and its process group); the pid is written by the
# process itself just before it execs CMD, so it is the server's pid.
start_detached() {
  local pidfile=$1 log=$2; shift 2
  rm -f "$pidfile"
  setsid sh -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >"$log" 2>&1 </dev/null 9>&- &
  for _ in $(seq 1 50); do [ -s "$pidfile" ] && return 0; sleep 0.05; done
  die "could not start $1: see $(rel "$log")"
}

apt_install() {
  local sudo=()
  is_root || { have sudo || die "need root (or sudo) to apt-get install $*"; sudo=(sudo); }
  say "installing Debian packages: $*"
  mkdir -p "$LOGS"
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y --no-install-recommends "$@" >"$LOGS/apt.log" 2>&1; then
    "${sudo[@]}" apt-get update >>"$LOGS/apt.log" 2>&1 || die "apt-get update failed: see $(rel "$LOGS/apt.log")"
    "${sudo[@]}" apt-get install -y --no-install-recommends "$@" >>"$LOGS/apt.log" 2>&1 ||
      die "apt-get install $* failed: see $(rel "$LOGS/apt.log")"
  fi
}

pg_bindir() {
  local d
  if [ -x /usr/lib/postgresql/15/bin/postgres ]; then echo /usr/lib/postgresql/15/bin; return; fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/postgres" ] && { echo "$d"; return; }
  done
  return 1
}

# ---------------------------------------------------------------- install
install_system_packages() {
  local pkgs=()
  pg_bindir >/dev/null || pkgs+=(postgresql)
  have psql || pkgs+=(postgresql-client)
  have jq || pkgs+=(jq)
  have curl || pkgs+=(curl)
  have flock || pkgs+=(util-linux)
  have runuser || pkgs+=(util-linux)
  # A real browser for the pages' tests (driven with chromedp).
  have chromium || pkgs+=(chromium fonts-dejavu-core)
  [ ${#pkgs[@]} -eq 0 ] || { say "installing ${pkgs[*]} (apt)"; apt_install "${pkgs[@]}"; }
  pg_bindir >/dev/null || die "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin after install"
  have node || die "node (20.x) is required for Azurite and is not installed"
}

install_azurite() {
  if [ -f "$AZ_DIR/.complete" ] && [ -x "$AZ_DIR/node_modules/.bin/azurite" ]; then return 0; fi
  have npm || die "npm is required to install Azurite and is not installed"
  say "installing Azurite $AZURITE_VERSION into $AZ_DIR"
  mkdir -p "$CACHE" "$LOGS"
  local tmp="$AZ_DIR.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  if ! npm install --prefix "$tmp" --no-audit --no-fund --no-update-notifier --loglevel=error \
      "azurite@$AZURITE_VERSION" >"$LOGS/install-azurite.log" 2>&1; then
    rm -rf "$tmp"; die "npm install azurite@$AZURITE_VERSION failed: see $(rel "$LOGS/install-azurite.log")"
  fi
  touch "$tmp/.complete"
  rm -rf "$AZ_DIR"; mv "$tmp" "$AZ_DIR"
}

# ---------------------------------------------------------------- Mattermost profiles
# mm_profile_hunks PROFILE: the hunk files (under mattermost/hunks/, applied in this order) that make
# the profile's server out of the v6.7.2 source; none for v6. See README.md for what each emulates.
mm_profile_hunks() {
  case $1 in
    v6) ;;
    v10) echo dnd-end-truncated dnd-expiry-every-minute status-full-row status-cache-expiry version-10.11.0 ;;
    v10early) echo status-cache-expiry version-10.3.0 ;;
    *) return 1 ;;
  esac
}

# mm_select_profile PROFILE: sets MM_PROFILE, MM_HUNKS and MM_DIR. v6 keeps the cache dir it always
# had; a patched profile's dir is keyed by the version, the profile and the hunks' content
# (mattermost-v6.7.2-v10-<8 hex of sha256>), so a changed hunk builds anew.
mm_select_profile() {
  local names h hash
  names=$(mm_profile_hunks "$1") || die "unknown Mattermost profile '$1' (CALSTATUS_MM_PROFILE): want one of ${MM_PROFILES[*]}"
  MM_PROFILE=$1
  MM_HUNKS=()
  for h in $names; do
    [ -f "$MM_HUNKS_DIR/$h.hunks" ] || die "profile $1: hunk file $(rel "$MM_HUNKS_DIR/$h.hunks") missing"
    MM_HUNKS+=("$MM_HUNKS_DIR/$h.hunks")
  done
  if [ ${#MM_HUNKS[@]} -eq 0 ]; then
    MM_DIR=$CACHE/mattermost-$MM_VERSION
    return 0
  fi
  hash=$(for h in "${MM_HUNKS[@]}"; do printf '== %s\n' "$(basename "$h")"; cat "$h"; done | sha256sum | cut -c1-8)
  MM_DIR=$CACHE/mattermost-$MM_VERSION-$MM_PROFILE-$hash
}

# mm_hunk_names: the selected profile's hunk files, by name, space-separated.
mm_hunk_names() { local h n=(); for h in "${MM_HUNKS[@]}"; do n+=("${h##*/}"); done; echo "${n[*]}"; }

# The profile of the Mattermost this stack started (a server started before profiles existed is v6)
# and the build it runs.
mm_running_profile() { cat "$RUN/mattermost.profile" 2>/dev/null || echo v6; }
mm_running_build() { cat "$RUN/mattermost.build" 2>/dev/null || true; }
# mm_runs_selected: the running Mattermost is the selected profile's build.
mm_runs_selected() {
  local b
  [ "$(mm_running_profile)" = "$MM_PROFILE" ] || return 1
  b=$(mm_running_build)
  [ -z "$b" ] || [ "$b" = "$MM_DIR" ]
}

install_mattermost() {
  if [ -f "$MM_DIR/.complete" ] && [ -x "$MM_DIR/bin/mattermost" ]; then return 0; fi
  have go || die "go is required to build the Mattermost server and is not installed"
  mkdir -p "$CACHE" "$LOGS"
  local log=$LOGS/install-mattermost.log
  [ "$MM_PROFILE" = v6 ] || log=$LOGS/install-mattermost-$MM_PROFILE.log
  # One build of a profile at a time, even across stacks (state dirs) sharing the cache.
  exec 8>"$CACHE/.build-mattermost-$MM_VERSION-$MM_PROFILE.lock"
  if ! flock -n 8; then
    say "waiting for another build of Mattermost profile $MM_PROFILE to finish…"
    flock 8
  fi
  if [ -f "$MM_DIR/.complete" ] && [ -x "$MM_DIR/bin/mattermost" ]; then exec 8>&-; return 0; fi
  say "building Mattermost server $MM_VERSION, profile $MM_PROFILE (first time only, 3-6 min; log: $(rel "$log"))…"
  local tmp="$MM_DIR.tmp.$$" moddir start=$SECONDS build src
  rm -rf "$tmp"; mkdir -p "$tmp/src" "$tmp/bin"
  : >"$log"
  # Build hermetically from the module proxy; never touch a workspace or vendor dir.
  export GOFLAGS="-mod=mod -buildvcs=false" GOWORK=off GOTOOLCHAIN=local
  # 1. The server module itself (for its go.sum, go.mod directives and assets).
  moddir=$(cd "$tmp" && go mod download -json "$MM_MODULE@$MM_VERSION" 2>>"$log" | jq -r '.Dir // empty') || true
  [ -n "$moddir" ] && [ -f "$moddir/go.mod" ] || { rm -rf "$tmp"; die "could not download $MM_MODULE@$MM_VERSION: see $(rel "$log")"; }
  # 2. The throwaway module: server's go.sum first (the checksum DB does not know
  #    the squirrel fork), then go.mod with the server's replace + exclude lines.
  #    A patched profile builds in a fixed folder per profile (so the Go build cache
  #    serves every package a hunk change leaves alone) from a writable copy of the
  #    server's source with the profile's hunks applied, put in by a replace line.
  src=$tmp/src
  if [ ${#MM_HUNKS[@]} -gt 0 ]; then
    build=$CACHE/.build-mattermost-$MM_VERSION-$MM_PROFILE
    src=$build/src
    rm -rf "$build"; mkdir -p "$src"
    cp -r "$moddir" "$build/server"; chmod -R u+w "$build/server"
    local out
    # (stdlib only: built from its file, it needs neither the repo's module nor the network)
    if ! out=$(cd "$SCRIPT_DIR/mmpatch" && GOFLAGS=-buildvcs=false go build -o "$build/mmpatch" main.go 2>&1); then
      printf '%s\n' "$out" >>"$log"; rm -rf "$tmp" "$build"; die "building devtools/stack/mmpatch failed: $out"
    fi
    if ! out=$("$build/mmpatch" -dir "$build/server" "${MM_HUNKS[@]}" 2>&1); then
      printf '%s\n' "$out" >>"$log"; rm -rf "$tmp" "$build"
      die "patching Mattermost $MM_VERSION for profile $MM_PROFILE failed (nothing built):
$out"
    fi
    printf '%s\n' "$out" >>"$log"
  fi
  cp "$moddir/go.sum" "$src/go.sum"; chmod u+w "$src/go.sum"
  local directives
  directives=$(awk '/^(replace|exclude)[ \t]*\(/{b=1} b{print; if ($0 ~ /^\)/) b=0; next} /^(replace|exclude)[ \t]/{print}' "$moddir/go.mod")
  awk -v ver="$MM_VERSION" -v dir="$directives" '{gsub(/@MM_VERSION@/, ver); if ($0 == "@MM_DIRECTIVES@") print dir; else print}' \
    "$SCRIPT_DIR/mattermost/go.mod.in" >"$src/go.mod"
  if [ ${#MM_HUNKS[@]} -gt 0 ]; then
    printf '\n// Profile %s: the server source patched with %s\nreplace %s => ../server\n' \
      "$MM_PROFILE" "$(mm_hunk_names)" "$MM_MODULE" >>"$src/go.mod"
  fi
  cp "$SCRIPT_DIR/mattermost/tools.go.in" "$src/tools.go"
  # 3. Build (old golang.org/x/net trips Go >= 1.23's linkname check).
  if ! (cd "$src" && go build -ldflags=-checklinkname=0 -o "$tmp/bin/mattermost" "$MM_MODULE/cmd/mattermost") >>"$log" 2>&1; then
    rm -rf "$tmp" ${build:+"$build"}; die "building Mattermost (profile $MM_PROFILE) failed: see $(rel "$log")"
  fi
  # 4. Assets the server loads at start, found relative to the binary.
  cp -r "$moddir/i18n" "$moddir/templates" "$moddir/fonts" "$tmp/"
  mkdir -p "$tmp/client"
  printf '<!doctype html><title>Mattermost (calstatus test stack)</title><p>API only: no webapp in this build.</p>\n' >"$tmp/client/root.html"
  chmod -R u+w "$tmp"
  echo "$MM_MODULE@$MM_VERSION built $(date -u +%FT%TZ) with $(go version)" >"$tmp/VERSION"
  if [ ${#MM_HUNKS[@]} -gt 0 ]; then
    echo "profile $MM_PROFILE: patched with $(mm_hunk_names)" >>"$tmp/VERSION"
    mkdir -p "$tmp/hunks"; cp "${MM_HUNKS[@]}" "$tmp/hunks/"
    cp "$src/go.mod" "$src/go.sum" "$src/tools.go" "$tmp/src/"   # what was built, for the record
    rm -rf "$build"
  fi
  touch "$tmp/.complete"
  rm -rf "$MM_DIR"; mv "$tmp" "$MM_DIR"
  exec 8>&-
  say "built Mattermost server (profile $MM_PROFILE) in $((SECONDS - start)) s: $(rel "$MM_DIR")"
}

# install: everything `up` needs, for the profile in CALSTATUS_MM_PROFILE; `all` builds every
# profile (to warm a CI machine's cache).
cmd_install() {
  local p profiles=("${CALSTATUS_MM_PROFILE:-v6}") dirs=()
  [ "${CALSTATUS_MM_PROFILE:-}" = all ] && profiles=("${MM_PROFILES[@]}")
  install_system_packages
  install_azurite
  for p in "${profiles[@]}"; do
    mm_select_profile "$p"
    install_mattermost
    dirs+=("$(rel "$MM_DIR")")
  done
  say "installed: $(rel "$AZ_DIR"), ${dirs[*]}, PostgreSQL $(basename "$(dirname "$(pg_bindir)")")"
}

# ---------------------------------------------------------------- PostgreSQL
# initdb/pg_ctl refuse root: run them as the postgres user when we are root.
PG_ROOT=
pg_setup_paths() {
  PG_ROOT=$STATE/postgres
  if is_root; then
    id postgres >/dev/null 2>&1 || die "user postgres missing (is the postgresql package installed?)"
    # The postgres user must be able to reach the state dir; if it cannot
    # (e.g. state under /root), keep the cluster in a folder of its own.
    if ! runuser -u postgres -- test -x "$STATE"; then
      PG_ROOT=/var/tmp/calstatus-pg-$(printf '%s' "$STATE" | cksum | cut -d' ' -f1)
    fi
  fi
}
as_pg() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }
psql_su() { psql -X -q -v ON_ERROR_STOP=1 -h "$PG_ROOT/run" -p "$PG_PORT" -U postgres "$@"; }
pg_running() { [ -f "$PG_ROOT/data/postmaster.pid" ] && as_pg "$(pg_bindir)/pg_ctl" -D "$PG_ROOT/data" status >/dev/null 2>&1; }

pg_start() {
  local bin; bin=$(pg_bindir)
  mkdir -p "$PG_ROOT/run" "$LOGS"
  local pglog=$LOGS/postgres.log
  if is_root; then
    chown postgres: "$PG_ROOT" "$PG_ROOT/run"
    if [ "$PG_ROOT" != "$STATE/postgres" ]; then pglog=$PG_ROOT/postgres.log; ln -sfn "$pglog" "$LOGS/postgres.log"; fi
    touch "$pglog"; chown postgres: "$pglog"
  fi
  if pg_running; then say "PostgreSQL already running on $HOST:$PG_PORT"; return 0; fi
  if [ ! -f "$PG_ROOT/data/PG_VERSION" ]; then
    say "initializing PostgreSQL cluster in $(rel "$PG_ROOT/data")"
    rm -rf "$PG_ROOT/data"
    as_pg "$bin/initdb" -D "$PG_ROOT/data" -U postgres -E UTF8 --locale=C.UTF-8 \
      --auth-local=trust --auth-host=scram-sha-256 >"$LOGS/initdb.log" 2>&1 ||
      die "initdb failed: see $(rel "$LOGS/initdb.log")"
    # A throwaway test cluster: trade durability for speed.
    as_pg sh -c "cat >>'$PG_ROOT/data/postgresql.conf'" <<EOF
# calstatus test stack
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = '$PG_ROOT/run'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 128MB
EOF
  fi
  port_open "$PG_PORT" && die "port $PG_PORT is already in use by another process (PostgreSQL cannot listen)"
  say "starting PostgreSQL on $HOST:$PG_PORT"
  as_pg "$bin/pg_ctl" -D "$PG_ROOT/data" -l "$pglog" -o "-p $PG_PORT" -w -t 30 start >/dev/null 2>&1 9>&- ||
    die "PostgreSQL did not start: see $(rel "$LOGS/postgres.log")"
  # Role + database for Mattermost (idempotent).
  psql_su -d postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname='$PG_USER'" | grep -q 1 ||
    psql_su -d postgres -c "CREATE ROLE $PG_USER LOGIN PASSWORD '$PG_PASSWORD'"
  psql_su -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$PG_DB'" | grep -q 1 ||
    psql_su -d postgres -c "CREATE DATABASE $PG_DB OWNER $PG_USER"
}

pg_stop() {
  if pg_running; then
    say "stopping PostgreSQL"
    as_pg "$(pg_bindir)/pg_ctl" -D "$PG_ROOT/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      die "PostgreSQL did not stop: see $(rel "$LOGS/postgres.log")"
  fi
}

# ---------------------------------------------------------------- Azurite
# azurite_answers: an Azurite (ours or not) serves all three ports.
azurite_answers() {
  local p
  for p in "${AZ_PORTS[@]}"; do
    curl -s -m 2 -D - -o /dev/null "http://$HOST:$p/devstoreaccount1" 2>/dev/null | grep -qi '^server: *azurite' || return 1
  done
}

az_start() {
  rm -f "$RUN/azurite.foreign"
  if pid_alive "$RUN/azurite.pid" azurite; then say "Azurite already running"; return 0; fi
  local p
  for p in "${AZ_PORTS[@]}"; do
    if port_open "$p"; then
      if azurite_answers; then
        # Someone else's Azurite (an editor extension, another checkout): same
        # well-known account, so use it; `down` leaves it alone.
        say "using the Azurite already listening on $HOST:$AZ_BLOB_PORT-$AZ_TABLE_PORT (not started by this stack)"
        touch "$RUN/azurite.foreign"
        return 0
      fi
      die "port $p is already in use by another process (Azurite cannot listen)"
    fi
  done
  mkdir -p "$STATE/azurite" "$RUN" "$LOGS"
  say "starting Azurite on $HOST:$AZ_BLOB_PORT-$AZ_TABLE_PORT"
  start_detached "$RUN/azurite.pid" "$LOGS/azurite.log" "$AZ_DIR/node_modules/.bin/azurite" \
    --disableTelemetry --silent --skipApiVersionCheck --loose --location "$STATE/azurite" \
    --blobHost "$HOST" --queueHost "$HOST" --tableHost "$HOST" \
    --blobPort "$AZ_BLOB_PORT" --queuePort "$AZ_QUEUE_PORT" --tablePort "$AZ_TABLE_PORT"
  for _ in $(seq 1 150); do
    pid_running "$RUN/azurite.pid" || die "Azurite did not start: see $(rel "$LOGS/azurite.log")"
    port_open "$AZ_BLOB_PORT" && port_open "$AZ_QUEUE_PORT" && port_open "$AZ_TABLE_PORT" && return 0
    sleep 0.1
  done
  die "Azurite did not open its ports in 15 s: see $(rel "$LOGS/azurite.log")"
}
az_ok() { pid_alive "$RUN/azurite.pid" azurite || { [ -f "$RUN/azurite.foreign" ] && azurite_answers; }; }

# ---------------------------------------------------------------- Mattermost
mm_write_config() {
  local d=$STATE/mattermost
  mkdir -p "$d/data" "$d/plugins" "$d/client-plugins" "$LOGS"
  [ -f "$d/config.json" ] && return 0   # the server keeps its generated keys in it
  cat >"$d/config.json" <<EOF
{
  "ServiceSettings": {
    "SiteURL": "$MM_URL",
    "ListenAddress": "$HOST:$MM_PORT",
    "EnableBotAccountCreation": true,
    "EnableUserAccessTokens": true,
    "EnableAPIUserDeletion": true,
    "EnableSecurityFixAlert": false,
    "EnableDeveloper": false,
    "EnableTutorial": false,
    "EnableOnboardingFlow": false,
    "EnableLocalMode": false,
    "EnableLinkPreviews": false,
    "SessionLengthWebInDays": 30
  },
  "TeamSettings": {
    "SiteName": "calstatus test stack",
    "MaxUsersPerTeam": 100000,
    "EnableUserCreation": true,
    "EnableOpenServer": true,
    "EnableCustomUserStatuses": true
  },
  "SqlSettings": {
    "DriverName": "postgres",
    "DataSource": "postgres://$PG_USER:$PG_PASSWORD@$HOST:$PG_PORT/$PG_DB?sslmode=disable&connect_timeout=10",
    "MaxIdleConns": 10,
    "MaxOpenConns": 50
  },
  "LogSettings": {
    "EnableConsole": true,
    "ConsoleLevel": "WARN",
    "ConsoleJson": false,
    "EnableFile": true,
    "FileLevel": "INFO",
    "FileLocation": "$LOGS",
    "EnableDiagnostics": false,
    "EnableSentry": false
  },
  "FileSettings": { "DriverName": "local", "Directory": "$d/data/" },
  "EmailSettings": {
    "EnableSignUpWithEmail": true,
    "EnableSignInWithEmail": true,
    "EnableSignInWithUsername": true,
    "RequireEmailVerification": false,
    "SendEmailNotifications": false,
    "EnablePreviewModeBanner": false
  },
  "RateLimitSettings": { "Enable": false },
  "PasswordSettings": { "MinimumLength": 8, "Lowercase": false, "Number": false, "Uppercase": false, "Symbol": false },
  "PluginSettings": {
    "Enable": false,
    "EnableUploads": false,
    "AutomaticPrepackagedPlugins": false,
    "EnableMarketplace": false,
    "EnableRemoteMarketplace": false,
    "RequirePluginSignature": false,
    "Directory": "$d/plugins",
    "ClientDirectory": "$d/client-plugins"
  },
  "AnnouncementSettings": { "AdminNoticesEnabled": false, "UserNoticesEnabled": false },
  "MetricsSettings": { "Enable": false },
  "ClusterSettings": { "Enable": false },
  "ImageProxySettings": { "Enable": false }
}
EOF
}

mm_ping() { curl -fsS -m 3 "$MM_URL/api/v4/system/ping" >/dev/null 2>&1; }

mm_start() {
  if pid_alive "$RUN/mattermost.pid" mattermost; then
    if ! mm_runs_selected; then
      say "Mattermost runs profile $(mm_running_profile), want $MM_PROFILE ($(rel "$MM_DIR")): restarting it"
      mm_stop
    elif mm_ping; then
      say "Mattermost (profile $MM_PROFILE) already running on $MM_URL"; return 0
    fi
  fi
  port_open "$MM_PORT" && die "port $MM_PORT is already in use by another process (Mattermost cannot listen)"
  mm_write_config
  mkdir -p "$RUN"
  say "starting Mattermost (profile $MM_PROFILE) on $MM_URL"
  # Settings that must hold whatever config.json says (env overrides win).
  (
    cd "$STATE/mattermost"
    export MM_CONFIG="$STATE/mattermost/config.json" \
      MM_SQLSETTINGS_DRIVERNAME=postgres \
      MM_SQLSETTINGS_DATASOURCE="postgres://$PG_USER:$PG_PASSWORD@$HOST:$PG_PORT/$PG_DB?sslmode=disable&connect_timeout=10" \
      MM_SERVICESETTINGS_LISTENADDRESS="$HOST:$MM_PORT" \
      MM_SERVICESETTINGS_SITEURL="$MM_URL" \
      MM_SERVICESETTINGS_ENABLEBOTACCOUNTCREATION=true \
      MM_SERVICESETTINGS_ENABLEUSERACCESSTOKENS=true \
      MM_RATELIMITSETTINGS_ENABLE=false \
      MM_PLUGINSETTINGS_ENABLE=false \
      MM_LOGSETTINGS_ENABLEDIAGNOSTICS=false \
      MM_LOGSETTINGS_FILELOCATION="$LOGS" \
      MM_EMAILSETTINGS_REQUIREEMAILVERIFICATION=false \
      MM_EMAILSETTINGS_SENDEMAILNOTIFICATIONS=false \
      MM_TEAMSETTINGS_ENABLEOPENSERVER=true \
      MM_TEAMSETTINGS_ENABLEUSERCREATION=true \
      MM_TEAMSETTINGS_MAXUSERSPERTEAM=100000
    start_detached "$RUN/mattermost.pid" "$LOGS/mattermost.out" "$MM_DIR/bin/mattermost" server
  )
  echo "$MM_PROFILE" >"$RUN/mattermost.profile"
  echo "$MM_DIR" >"$RUN/mattermost.build"
  for _ in $(seq 1 600); do
    pid_running "$RUN/mattermost.pid" ||
      die "Mattermost did not start: see $(rel "$LOGS/mattermost.out") and $(rel "$LOGS/mattermost.log")"
    mm_ping && return 0
    sleep 0.1
  done
  die "Mattermost did not answer /api/v4/system/ping within 60 s: see $(rel "$LOGS/mattermost.log")"
}

mm_stop() {
  stop_pid "$RUN/mattermost.pid" mattermost Mattermost
  rm -f "$RUN/mattermost.profile" "$RUN/mattermost.build"
}

# ---------------------------------------------------------------- seeding
# api METHOD PATH [JSON]: sets API_STATUS and API_BODY (no subshell, so the
# globals survive). Authenticates with $API_TOKEN when set.
API_TOKEN=
API_STATUS=
API_BODY=
api() {
  local method=$1 path=$2 body=${3-} out
  local args=(-sS -m 30 -X "$method" -H 'Content-Type: application/json' -w '\n%{http_code}')
  [ -n "$API_TOKEN" ] && args+=(-H "Authorization: Bearer $API_TOKEN")
  [ -n "$body" ] && args+=(--data "$body")
  out=$(curl "${args[@]}" "$MM_URL/api/v4$path") || die "Mattermost API $method $path: curl failed"
  API_STATUS=${out##*$'\n'}
  API_BODY=${out%$'\n'*}
}
api_ok() { # like api, but dies unless 2xx
  api "$@"
  [[ $API_STATUS == 2* ]] || die "Mattermost API $1 $2 answered $API_STATUS: $(printf '%s' "$API_BODY" | head -c 300)"
}

env_get() { [ -f "$ENV_FILE" ] && sed -n "s/^$1=//p" "$ENV_FILE" | head -1 | sed "s/^'\(.*\)'\$/\1/" || true; }

token_works() { [ -n "$1" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' -m 10 -H "Authorization: Bearer $1" "$MM_URL/api/v4/users/me")" = 200 ]; }

mm_login_admin() { # on success sets API_TOKEN (session token) and API_BODY (the user)
  local hdr out status
  hdr=$(mktemp)
  out=$(curl -sS -m 30 -D "$hdr" -H 'Content-Type: application/json' -w '\n%{http_code}' \
    --data "{\"login_id\":\"$ADMIN_USERNAME\",\"password\":\"$ADMIN_PASSWORD\"}" "$MM_URL/api/v4/users/login") ||
    { rm -f "$hdr"; die "Mattermost login: curl failed"; }
  status=${out##*$'\n'}; API_BODY=${out%$'\n'*}
  API_TOKEN=$(sed -n 's/^[Tt]oken: *\([a-z0-9]*\).*/\1/p' "$hdr" | head -1)
  rm -f "$hdr"
  [ "$status" = 200 ] && [ -n "$API_TOKEN" ] && return 0
  API_TOKEN=
  return 1
}

seed() {
  local start=$SECONDS admin_id pat team_id tmpl_id n u id
  API_TOKEN=
  # 1. System admin: the first user created on a fresh server becomes system admin.
  if ! mm_login_admin; then
    say "creating system admin '$ADMIN_USERNAME'"
    api_ok POST /users "{\"username\":\"$ADMIN_USERNAME\",\"email\":\"$ADMIN_EMAIL\",\"password\":\"$ADMIN_PASSWORD\",\"first_name\":\"System\",\"last_name\":\"Admin\"}"
    mm_login_admin || die "cannot log in as $ADMIN_USERNAME after creating it"
  fi
  admin_id=$(jq -r .id <<<"$API_BODY")
  jq -e '.roles | test("system_admin")' <<<"$API_BODY" >/dev/null ||
    die "'$ADMIN_USERNAME' is not a system admin (another user was created first?): run '$0 reset-db'"

  # 2. Personal access token: reuse the one in the env file when it still works.
  pat=$(env_get MATTERMOST_TOKEN)
  if ! token_works "$pat"; then
    say "creating personal access token for '$ADMIN_USERNAME'"
    api_ok POST "/users/$admin_id/tokens" '{"description":"calstatus test stack"}'
    pat=$(jq -r .token <<<"$API_BODY")
    [ -n "$pat" ] && [ "$pat" != null ] || die "could not create a personal access token"
  fi

  # 3. Team, with the admin in it.
  api GET "/teams/name/$SEED_TEAM"
  if [ "$API_STATUS" != 200 ]; then
    say "creating team '$SEED_TEAM'"
    api_ok POST /teams "{\"name\":\"$SEED_TEAM\",\"display_name\":\"Contoso\",\"type\":\"O\"}"
  fi
  team_id=$(jq -r .id <<<"$API_BODY")
  api_ok POST "/teams/$team_id/members" "{\"team_id\":\"$team_id\",\"user_id\":\"$admin_id\"}"

  # 4. One template user through the API (the server hashes its password and
  #    writes all its rows), everyone else copied from it in SQL.
  api GET "/users/username/$TEMPLATE_USERNAME"
  if [ "$API_STATUS" != 200 ]; then
    api_ok POST /users "{\"username\":\"$TEMPLATE_USERNAME\",\"email\":\"$TEMPLATE_USERNAME@$SEED_EMAIL_DOMAIN\",\"password\":\"$SEED_PASSWORD\",\"first_name\":\"Aaliyah\",\"last_name\":\"Abbott\"}"
  fi
  tmpl_id=$(jq -r .id <<<"$API_BODY")
  api_ok POST "/teams/$team_id/members" "{\"team_id\":\"$team_id\",\"user_id\":\"$tmpl_id\"}"

  n=$(psql_su -d "$PG_DB" -tAc "SELECT count(*) FROM users u WHERE u.email LIKE '%@$SEED_EMAIL_DOMAIN' AND u.deleteat = 0 AND NOT EXISTS (SELECT 1 FROM bots b WHERE b.userid = u.id)")
  [ "$n" -ge "$SEED_USERS" ] || say "seeding $SEED_USERS users in team '$SEED_TEAM' (SQL copies of one API-created user)"
  psql_su -d "$PG_DB" -v template_id="$tmpl_id" -v seed_users="$SEED_USERS" \
    -v email_domain="$SEED_EMAIL_DOMAIN" -v team_id="$team_id" -f "$SCRIPT_DIR/seed.sql" >"$LOGS/seed.log" 2>&1 ||
    die "seeding users in PostgreSQL failed: see $(rel "$LOGS/seed.log")"

  # 5. Users that must not be synced: leavers (deactivated) and bots.
  for u in "${LEAVERS[@]}"; do
    id=$(psql_su -d "$PG_DB" -tAc "SELECT id FROM users WHERE username='$u' AND deleteat=0")
    [ -z "$id" ] || api_ok DELETE "/users/$id"
  done
  for u in "${BOTS[@]}"; do
    api GET "/users/username/$u"
    [ "$API_STATUS" = 200 ] ||
      api_ok POST /bots "{\"username\":\"$u\",\"display_name\":\"$u\",\"description\":\"calstatus test stack bot\"}"
  done

  # 6. The server caches users: make it see the SQL inserts.
  api_ok POST /caches/invalidate

  # 7. Check through the API with the token, as the tests will.
  local page=0 got=0 c all
  API_TOKEN=$pat
  while :; do
    api_ok GET "/users?per_page=200&page=$page"
    all=$(jq length <<<"$API_BODY")
    c=$(jq --arg d "@$SEED_EMAIL_DOMAIN" '[.[] | select(.delete_at == 0 and ((.is_bot // false) | not) and (.email | endswith($d)))] | length' <<<"$API_BODY")
    got=$((got + c))
    [ "$all" -eq 200 ] || break
    page=$((page + 1))
  done
  [ "$got" -ge "$SEED_USERS" ] || die "API lists only $got active seeded users, wanted $SEED_USERS: see $(rel "$LOGS/seed.log")"
  [ "$got" -eq "$SEED_USERS" ] || say "note: $got active seeded users (more than SEED_USERS=$SEED_USERS; '$0 reset-db' starts over)"
  say "seeded: $got active users @$SEED_EMAIL_DOMAIN, ${#LEAVERS[@]} deactivated, ${#BOTS[@]} bots ($((SECONDS - start)) s)"
  write_env "$pat"
}

write_env() {
  local tmp=$ENV_FILE.tmp
  cat >"$tmp" <<EOF
# calstatus local test stack — written by devtools/stack/stack.sh; load with: set -a; . $(rel "$ENV_FILE"); set +a
MATTERMOST_URL=$MM_URL
MATTERMOST_TOKEN=$1
MATTERMOST_ADMIN_USERNAME=$ADMIN_USERNAME
MATTERMOST_ADMIN_PASSWORD=$ADMIN_PASSWORD
MATTERMOST_TEAM=$SEED_TEAM
MATTERMOST_SEED_PASSWORD=$SEED_PASSWORD
AZURE_STORAGE_CONNECTION_STRING='$STORAGE_CS'
SEED_USERS=$SEED_USERS
SEED_EMAIL_DOMAIN=$SEED_EMAIL_DOMAIN
STACK_POSTGRES_DSN=postgres://$PG_USER:$PG_PASSWORD@$HOST:$PG_PORT/$PG_DB?sslmode=disable
MATTERMOST_PROFILE=$MM_PROFILE
EOF
  mv "$tmp" "$ENV_FILE"
}

# env_set_profile: the env file names the profile that now runs (after `restart mattermost`).
env_set_profile() {
  [ -f "$ENV_FILE" ] || return 0
  local tmp=$ENV_FILE.tmp
  { grep -v '^MATTERMOST_PROFILE=' "$ENV_FILE"; echo "MATTERMOST_PROFILE=$MM_PROFILE"; } >"$tmp"
  mv "$tmp" "$ENV_FILE"
}

# ---------------------------------------------------------------- commands
all_up() {
  local envp
  envp=$(env_get MATTERMOST_PROFILE)
  pg_running && az_ok && pid_alive "$RUN/mattermost.pid" mattermost && mm_runs_selected && mm_ping &&
    [ "${envp:-v6}" = "$MM_PROFILE" ]
}

cmd_up() {
  local start=$SECONDS
  mkdir -p "$STATE" "$LOGS" "$RUN"
  pg_setup_paths
  if all_up && [ -f "$ENV_FILE" ] && token_works "$(env_get MATTERMOST_TOKEN)"; then
    say "already up ($MM_URL profile $MM_PROFILE, Azurite, PostgreSQL); env: $(rel "$ENV_FILE")"
    return 0
  fi
  install_system_packages
  install_azurite
  install_mattermost
  az_start
  pg_start
  mm_start
  seed
  say "up in $((SECONDS - start)) s (Mattermost profile $MM_PROFILE); env: $(rel "$ENV_FILE")"
}

# Azurite alone: what `make run` needs to sync a real tenant with AzureWebJobsStorage=UseDevelopmentStorage=true.
cmd_up_azurite() {
  mkdir -p "$STATE" "$LOGS" "$RUN"
  install_system_packages
  install_azurite
  az_start
  say "Azurite up (blob/queue/table on $HOST:$AZ_BLOB_PORT-$AZ_TABLE_PORT)"
}

cmd_down() {
  mkdir -p "$STATE" "$LOGS" "$RUN"
  pg_setup_paths
  mm_stop
  stop_pid "$RUN/azurite.pid" azurite Azurite
  rm -f "$RUN/azurite.foreign"
  if pg_bindir >/dev/null; then pg_stop; fi
  say "down"
}

cmd_status() {
  pg_setup_paths
  local rc=0
  if pid_alive "$RUN/azurite.pid" azurite; then say "Azurite     running  pid $(cat "$RUN/azurite.pid")  $HOST:$AZ_BLOB_PORT-$AZ_TABLE_PORT"
  elif [ -f "$RUN/azurite.foreign" ] && azurite_answers; then say "Azurite     running  (not ours)  $HOST:$AZ_BLOB_PORT-$AZ_TABLE_PORT"
  else say "Azurite     stopped"; rc=1; fi
  if pg_running; then say "PostgreSQL  running  $HOST:$PG_PORT  data $(rel "$PG_ROOT/data")"; else say "PostgreSQL  stopped"; rc=1; fi
  if pid_alive "$RUN/mattermost.pid" mattermost; then
    local prof build
    prof=$(mm_running_profile); build=$(mm_running_build)
    prof="profile $prof${build:+ ($(rel "$build"))}"
    if mm_ping; then say "Mattermost  running  pid $(cat "$RUN/mattermost.pid")  $MM_URL  $prof"; else say "Mattermost  running but not answering ping  $MM_URL  $prof"; rc=1; fi
  else say "Mattermost  stopped"; rc=1; fi
  if [ -f "$ENV_FILE" ]; then say "env file    $(rel "$ENV_FILE")"; else say "env file    missing"; rc=1; fi
  return $rc
}

cmd_reset_db() {
  mkdir -p "$STATE" "$LOGS" "$RUN"
  pg_setup_paths
  install_system_packages
  mm_stop
  pg_start
  say "dropping and recreating database '$PG_DB'"
  psql_su -d postgres -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" -c "CREATE DATABASE $PG_DB OWNER $PG_USER"
  rm -f "$ENV_FILE"
  rm -rf "$STATE/mattermost/data"
  cmd_up
}

# restart SERVER: stop (TERM, as a host shutting down) and start Mattermost or Azurite again, data
# kept: the fault soak restarts them under load.
cmd_restart() {
  mkdir -p "$STATE" "$LOGS" "$RUN"
  pg_setup_paths
  case ${1:-} in
    mattermost)
      # Without CALSTATUS_MM_PROFILE keep the profile that runs (or last ran): the fault soak
      # restarts whatever it is testing.
      local p=${CALSTATUS_MM_PROFILE:-} b=
      if [ -z "$p" ]; then
        if pid_alive "$RUN/mattermost.pid" mattermost; then p=$(mm_running_profile); b=$(mm_running_build); else p=$(env_get MATTERMOST_PROFILE); fi
      fi
      mm_select_profile "${p:-v6}"
      # ... and its very build, even if the profile's hunks changed since (`up` moves to the new one).
      if [ -n "$b" ] && [ -f "$b/.complete" ] && [ -x "$b/bin/mattermost" ]; then MM_DIR=$b; fi
      install_mattermost
      mm_stop; mm_start; env_set_profile ;;
    azurite)
      [ -f "$RUN/azurite.foreign" ] && die "the Azurite in use was not started by this stack: not restarting it"
      stop_pid "$RUN/azurite.pid" azurite Azurite; az_start ;;
    *) die "restart what? mattermost or azurite" ;;
  esac
}

cmd_env() {
  [ -f "$ENV_FILE" ] || die "no env file at $(rel "$ENV_FILE"): run '$0 up'"
  cat "$ENV_FILE"
}

main() {
  local cmd=${1:-}
  case ${CALSTATUS_MM_PROFILE:-v6} in
    all) [ "$cmd" = install ] || die "CALSTATUS_MM_PROFILE=all is for 'install' only" ;;
    *) mm_select_profile "${CALSTATUS_MM_PROFILE:-v6}" ;;
  esac
  case $cmd in
    install|up|up-azurite|down|reset-db|restart)
      mkdir -p "$STATE"
      # One stack operation at a time (parallel test packages may all call `up`).
      # Servers are started with fd 9 closed so they do not hold the lock.
      exec 9>"$STATE/.lock"
      flock 9
      ;;
  esac
  case $cmd in
    install) cmd_install ;;
    up) cmd_up ;;
    up-azurite) cmd_up_azurite ;;
    down) cmd_down ;;
    status) cmd_status ;;
    reset-db) cmd_reset_db ;;
    env) cmd_env ;;
    restart) cmd_restart "${2:-}" ;;
    *) echo "usage: $0 install|up|up-azurite|down|status|reset-db|env|restart mattermost|azurite" >&2; exit 2 ;;
  esac
}

main "$@"
