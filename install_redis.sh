#!/usr/bin/env bash
# Task 0 of the course: build Redis from source, start it in the background from the
# project's redis.conf (an append-only file: durable) with dump.rdb as its first data,
# and check that it answers PING with PONG.
#
#   ./install_redis.sh               build (once, cached in .redis/) and start on 127.0.0.1
#   ./install_redis.sh --build-only  build only (what CI runs)
#   ./install_redis.sh --sentinel    build, then start a primary, a replica and three
#                                    sentinels on 127.0.0.1 and print the REDIS_URL naming them
#   ./install_redis.sh --stop        stop what this script started: the server, the set
#
# REDIS_PORT (default 6379) picks the port. A build is reused once made; REDIS_SOURCE
# makes a fresh one from: redis.io, debian (Debian's source package, through apt) or
# package (Debian's packaged binary, not a build). Unset, it tries them in that order.
# With --sentinel (and its --stop), REDIS_PORT is the first primary's port,
# REDIS_REPLICA_PORT (default 6380) the replica's and SENTINEL_PORTS (default
# "26379 26380 26381") the sentinels'; docs/redis.md has the sentinels' settings.
set -euo pipefail
shopt -s extglob nullglob

REDIS_VERSION=7.0.15
# From redis.io's own list of release hashes (github.com/redis/redis-hashes).
REDIS_SHA256=98066f5363504b26c34dd20fbcc3c957990d764cdf42576c836fc021073f4341
# Debian recompressed the same release for its source package ("orig" tarball).
DEBIAN_ORIG_SHA256=4b1dc4ee6d622a09fff9c6777191209750fb5e5a725ef78ea012d6eef4c22982
REDIS_TARBALL_URL=https://download.redis.io/releases/redis-$REDIS_VERSION.tar.gz

PROJECT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=$PROJECT/.redis            # git-ignored: downloads, build tree, binaries, run state
BIN=$CACHE/bin
PORT=${REDIS_PORT:-6379}
RUN_DIR=$CACHE/run/$PORT
PID_FILE=$RUN_DIR/redis.pid
# Written by Redis once its append-only file is complete (appenddirname, appendfilename).
AOF_MANIFEST=$RUN_DIR/appendonlydir/appendonly.aof.manifest

say() { printf '%s\n' "$*"; }
die() { printf 'install_redis.sh: %s\n' "$*" >&2; exit 1; }
relative() { printf '%s\n' "${1#"$PROJECT"/}"; }

# ---------------------------------------------------------------- getting the source

download_from_redis_io() {  # sets TARBALL to a verified tarball; status 1 if unreachable
  local tarball=$CACHE/downloads/redis-$REDIS_VERSION.tar.gz
  mkdir -p "$CACHE/downloads"
  if [[ ! -f $tarball ]]; then
    say "Downloading Redis $REDIS_VERSION from redis.io..."
    if command -v curl >/dev/null; then
      curl -fsSL --connect-timeout 10 --max-time 300 -o "$tarball.part" "$REDIS_TARBALL_URL" || return 1
    else
      wget -q --timeout=10 -O "$tarball.part" "$REDIS_TARBALL_URL" || return 1
    fi
    mv "$tarball.part" "$tarball"
  fi
  verify_sha256 "$tarball" "$REDIS_SHA256"
  TARBALL=$tarball
}

verify_sha256() {  # file expected-hash
  local actual
  actual=$(sha256sum "$1" | cut -d' ' -f1)
  if [[ $actual != "$2" ]]; then
    rm -f "$1"
    die "checksum mismatch for $(relative "$1") (got $actual, expected $2): refusing to build it"
  fi
}

# apt with a private copy of this machine's sources and state: see private_apt.sh.
APT_DIR=$CACHE/apt
# shellcheck source=private_apt.sh
source "$PROJECT/private_apt.sh"

download_debian_source() {  # sets DEBIAN_DIR to the downloaded source package; status 1 if unreachable
  local dir=$CACHE/downloads/debian
  prepare_private_apt || return 1
  rm -rf "$dir" && mkdir -p "$dir"
  say "Downloading Debian's source package of Redis..."
  (cd "$dir" && private_apt source --download-only redis >"$dir/download.log" 2>&1) || return 1
  local orig=$dir/redis_$REDIS_VERSION.orig.tar.gz
  [[ -f $orig ]] || die "Debian's source package of Redis is not version $REDIS_VERSION (see $(relative "$dir"))"
  verify_sha256 "$orig" "$DEBIAN_ORIG_SHA256"
  DEBIAN_DIR=$dir
}

# ---------------------------------------------------------------- building

check_build_tools() {
  command -v make >/dev/null || die "no 'make' found: install make (Debian: apt-get install build-essential)"
  command -v "${CC:-cc}" >/dev/null ||
    die "no C compiler found (${CC:-cc}): install gcc (Debian: apt-get install build-essential)"
}

build_from_tarball() {  # tarball [debian-dir] -> binaries in $BIN
  local tarball=$1 debian_dir=${2:-} tree=$CACHE/build/redis-$REDIS_VERSION
  rm -rf "$tree" && mkdir -p "$tree"
  tar xzf "$tarball" -C "$tree" --strip-components=1
  if [[ -n $debian_dir ]]; then apply_debian_patches "$debian_dir" "$tree"; fi
  say "Building Redis $REDIS_VERSION with make -j$(nproc) (about a minute on 2 cores)..."
  make -C "$tree" -j"$(nproc)" 2>&1 | show_progress "$CACHE/build/build.log" ||
    die "the build failed; the last lines of $(relative "$CACHE/build/build.log"): $(tail -3 "$CACHE/build/build.log" | tr '\n' ' ')"
  mkdir -p "$BIN"
  cp "$tree"/src/{redis-server,redis-cli,redis-benchmark} "$BIN/"
  rm -rf "$tree" "$APT_DIR"  # the binaries and the downloads are the cache; the rest is 200 MB
}

apply_debian_patches() {  # debian-dir tree
  local packaging patch count=0
  packaging=$(mktemp -d)
  tar xJf "$1"/redis_*.debian.tar.xz -C "$packaging"
  while read -r patch; do
    case $patch in
      '' | '#'*) continue ;;
      # Only for linking Debian's system jemalloc; it breaks the bundled one we build.
      *USE_SYSTEM_JEMALLOC*) continue ;;
    esac
    patch -d "$2" -p1 -s --forward <"$packaging/debian/patches/$patch" || die "Debian's patch $patch does not apply"
    count=$((count + 1))
  done <"$packaging/debian/patches/series"
  rm -rf "$packaging"
  say "Applied $count of Debian's patches (its security fixes among them)."
}

show_progress() {  # log-file; reads make's output, shows each compile step
  local log=$1 line steps=0
  : >"$log"
  while IFS= read -r line; do
    printf '%s\n' "$line" >>"$log"
    line=${line//$'\e['+([0-9;])m/}
    if [[ $line =~ ^[[:space:]]*(CC|LINK|MAKE|INSTALL)[[:space:]] ]]; then
      steps=$((steps + 1))
      if [[ -t 1 ]]; then
        printf '\r\033[K  [%3d] %s' "$steps" "${line##+([[:space:]])}"
      else
        printf '  [%3d] %s\n' "$steps" "${line##+([[:space:]])}"
      fi
    fi
  done
  [[ -t 1 ]] && printf '\n'
  return 0
}

# A last resort: Debian's packaged binary, unpacked into .redis/ (nothing is installed).
use_packaged_binary() {
  prepare_private_apt || return 1
  local dir=$CACHE/package
  rm -rf "$dir" && mkdir -p "$dir/debs"
  (cd "$dir/debs" && private_apt download redis-tools libjemalloc2 liblzf1 >"$dir/download.log" 2>&1) || return 1
  local deb
  for deb in "$dir"/debs/*.deb; do dpkg-deb -x "$deb" "$dir/root"; done
  local libs=("$dir"/root/usr/lib/*-linux-gnu)
  mkdir -p "$BIN"
  # Debian ships one binary that acts as redis-server when started under that name.
  write_wrapper redis-server "$dir/root/usr/bin/redis-check-rdb" "${libs[0]:-}"
  write_wrapper redis-cli "$dir/root/usr/bin/redis-cli" "${libs[0]:-}"
  write_wrapper redis-benchmark "$dir/root/usr/bin/redis-benchmark" "${libs[0]:-}"
}

write_wrapper() {  # name binary library-dir
  printf '#!/usr/bin/env bash\nLD_LIBRARY_PATH=%q${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} exec -a %s %q "$@"\n' \
    "$3" "$1" "$2" >"$BIN/$1"
  chmod +x "$BIN/$1"
}

build_redis() {
  local source=${REDIS_SOURCE:-auto}
  case $source in auto | redis.io | debian | package) ;; *) die "REDIS_SOURCE must be auto, redis.io, debian or package" ;; esac
  [[ $source == package ]] || check_build_tools
  if [[ $source == auto || $source == redis.io ]]; then
    if download_from_redis_io; then
      build_from_tarball "$TARBALL"
      echo "Redis $REDIS_VERSION built from the redis.io release tarball (sha256 verified)" >"$BIN/ORIGIN"
      return
    fi
    [[ $source == auto ]] || die "cannot download Redis from redis.io"
    say "redis.io cannot be reached from here; trying Debian's source package instead."
  fi
  if [[ $source == auto || $source == debian ]]; then
    if download_debian_source; then
      build_from_tarball "$DEBIAN_DIR/redis_$REDIS_VERSION.orig.tar.gz" "$DEBIAN_DIR"
      echo "Redis $REDIS_VERSION built from Debian's source package $(basename "$DEBIAN_DIR"/redis_*.dsc .dsc) (with its patches)" >"$BIN/ORIGIN"
      return
    fi
    [[ $source == auto ]] || die "cannot download Debian's source package of Redis through apt"
  fi
  [[ $source == package ]] ||
    say "WARNING: no Redis source is reachable (neither redis.io nor Debian's source package)."
  say "WARNING: using Debian's packaged binary: this Redis is NOT built from source."
  use_packaged_binary || die "no Redis source and no packaged binary reachable (no network to redis.io or apt)"
  echo "Redis from Debian's packaged binary (NOT built from source)" >"$BIN/ORIGIN"
}

ensure_built() {  # an explicit REDIS_SOURCE always builds afresh from that source
  if [[ -z ${REDIS_SOURCE:-} && -x $BIN/redis-server ]] && "$BIN/redis-server" --version 2>/dev/null | grep -q "v=$REDIS_VERSION "; then
    say "Reusing $(cat "$BIN/ORIGIN" 2>/dev/null || echo "Redis $REDIS_VERSION"), in $(relative "$BIN")."
    return
  fi
  build_redis
  "$BIN/redis-server" --version >/dev/null || die "the Redis binary in $(relative "$BIN") does not run"
  say "$(cat "$BIN/ORIGIN"), in $(relative "$BIN")."
}

# ---------------------------------------------------------------- running

running_pid() {  # the pid of the server this script started on $PORT, if it runs
  pid_of "$PID_FILE"
}

pid_of() {  # pid-file: the pid in it, if that process runs and is a redis-server
  local pid
  [[ -f $1 ]] || return 1
  pid=$(cat "$1")
  [[ -n $pid ]] || return 1
  # A stale pid file may name a process that is not ours any more.
  [[ $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") == *redis-server* ]] || return 1
  printf '%s\n' "$pid"
}

cli() { cli_at "$PORT" "$@"; }
cli_at() { local port=$1 && shift && "$BIN/redis-cli" -h 127.0.0.1 -p "$port" "$@" 2>/dev/null; }
answers_ping() { [[ $(cli ping) == PONG ]]; }

start_server() {
  local pid
  if pid=$(running_pid); then
    say "Redis is already running on 127.0.0.1:$PORT (pid $pid); not starting a second one."
    print_how_to_use "$pid"
    return
  fi
  answers_ping && die "a Redis server not started by this script already answers on 127.0.0.1:$PORT; stop it or set REDIS_PORT"
  mkdir -p "$RUN_DIR"
  # The server writes to its dump on shutdown: it gets a copy, the committed file stays as it is.
  [[ -f $RUN_DIR/dump.rdb ]] || cp "$PROJECT/dump.rdb" "$RUN_DIR/dump.rdb"
  # Redis 7.0 started with appendonly yes and no append-only file yet makes an empty one
  # and never reads dump.rdb. So until a complete append-only file exists (its manifest
  # is written last), start without it, to load the dump, and turn it on once running.
  local first_start=()
  [[ -f $AOF_MANIFEST ]] || first_start=(--appendonly no)
  "$BIN/redis-server" "$PROJECT/redis.conf" --port "$PORT" --dir "$RUN_DIR" \
    --pidfile "$PID_FILE" --logfile "$RUN_DIR/redis.log" --daemonize yes "${first_start[@]}" ||
    die "redis-server did not start; see $(relative "$RUN_DIR/redis.log")"
  local tries
  for tries in $(seq 50); do
    answers_ping && break
    sleep 0.1
  done
  answers_ping || die "redis-server does not answer PING on 127.0.0.1:$PORT; see $(relative "$RUN_DIR/redis.log")"
  say "PING -> PONG"
  if ((${#first_start[@]})); then turn_on_append_only_file; fi
  say "Redis $REDIS_VERSION is running on 127.0.0.1:$PORT (pid $(running_pid)), its data in $(relative "$RUN_DIR")."
  print_how_to_use "$(running_pid)"
}

turn_on_append_only_file() {  # [port dir]: from the data in memory, which came from dump.rdb
  local port=${1:-$PORT} dir=${2:-$RUN_DIR}
  [[ $(cli_at "$port" config set appendonly yes) == OK ]] ||
    die "Redis refused to turn on its append-only file; see $(relative "$dir/redis.log")"
  local tries
  for tries in $(seq 600); do  # the rewrite is a child process; 60 s is plenty for a dump
    append_only_file_written "$port" "$dir" && return
    sleep 0.1
  done
  die "Redis did not write its append-only file within 60 s; see $(relative "$dir/redis.log")"
}

append_only_file_written() {  # port dir
  local info
  info=$(cli_at "$1" info persistence | tr -d '\r')
  [[ $info == *aof_enabled:1* && $info == *aof_rewrite_in_progress:0* &&
    $info == *aof_rewrite_scheduled:0* && -f $2/appendonlydir/appendonly.aof.manifest ]]
}

print_how_to_use() {
  say "  connect: $(relative "$BIN")/redis-cli -p $PORT      (then: get Holberton)"
  say "  stop:    $([[ $PORT == 6379 ]] || echo "REDIS_PORT=$PORT ")./install_redis.sh --stop"
}

stop_server() {
  local pid
  if ! pid=$(running_pid); then
    say "No Redis started by this script is running on port $PORT."
    return
  fi
  kill -TERM "$pid"
  local tries
  for tries in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && die "Redis (pid $pid) did not stop within 10 seconds"
  rm -f "$PID_FILE"
  say "Stopped Redis on 127.0.0.1:$PORT (pid $pid); it saved its data in $(relative "$RUN_DIR")."
}

# ---------------------------------------------------------------- the sentinel set
# A primary, one replica and three sentinels, each a redis-server in a folder of its own
# under .redis/run/sentinel-set/<port>/, for trying a failover on one machine.

SET_DIR=$CACHE/run/sentinel-set
REPLICA_PORT=${REDIS_REPLICA_PORT:-6380}
read -r -a SENTINEL_PORT_LIST <<<"${SENTINEL_PORTS:-26379 26380 26381}"
MASTER_NAME=mymaster
QUORUM=2  # two of the three sentinels must see the primary down: one alone cannot fail it over
# Quick but safe on one machine. down-after-milliseconds: 5 s without a valid answer to
# PING and a sentinel holds the primary down (Redis's default is 30 s, made for networks
# that drop packets for seconds). Here the only pauses of a live server are its own (a
# fork for an append-only file rewrite, a first load of the data), milliseconds for this
# project's data, so 5 s fails over a dead primary quickly and never a busy one.
DOWN_AFTER_MS=5000
# failover-timeout: a failover here takes well under a second (promote the replica;
# there is no other replica to reconfigure). 15 s is ample margin; a failover that did
# fail is tried again after twice this, 30 s, instead of the default's 6 minutes.
FAILOVER_TIMEOUT_MS=15000

data_pid() { pid_of "$SET_DIR/$1/redis.pid"; }        # port
sentinel_pid() { pid_of "$SET_DIR/$1/sentinel.pid"; } # port
data_ports() { printf '%s\n' "$PORT" "$REPLICA_PORT"; }
other_data_port() { if [[ $1 == "$PORT" ]]; then echo "$REPLICA_PORT"; else echo "$PORT"; fi; }

check_set_ports() {
  local port seen=" "
  ((${#SENTINEL_PORT_LIST[@]} >= 3)) || die "SENTINEL_PORTS must name three ports (or more): a quorum of $QUORUM needs them"
  for port in "$PORT" "$REPLICA_PORT" "${SENTINEL_PORT_LIST[@]}"; do
    [[ $port =~ ^[0-9]+$ ]] || die "'$port' is not a port (REDIS_PORT, REDIS_REPLICA_PORT, SENTINEL_PORTS)"
    [[ $seen == *" $port "* ]] && die "port $port is named twice (REDIS_PORT, REDIS_REPLICA_PORT, SENTINEL_PORTS)"
    seen+="$port "
  done
  for port in "${SENTINEL_PORT_LIST[@]}"; do
    local monitored
    monitored=$(monitored_in "$SET_DIR/$port/sentinel.conf")
    [[ -z $monitored || $monitored == "$PORT" || $monitored == "$REPLICA_PORT" ]] ||
      die "the sentinel in $(relative "$SET_DIR/$port") watches a primary on port $monitored, not one of this set's: remove that folder or set REDIS_PORT and REDIS_REPLICA_PORT as before"
  done
  for port in "$PORT" "$REPLICA_PORT"; do
    data_pid "$port" >/dev/null || ! [[ $(cli_at "$port" ping) == PONG ]] ||
      die "a Redis server not started by this script's --sentinel already answers on 127.0.0.1:$port; stop it (./install_redis.sh --stop, if it is the single server) or set REDIS_PORT and REDIS_REPLICA_PORT"
  done
  for port in "${SENTINEL_PORT_LIST[@]}"; do
    sentinel_pid "$port" >/dev/null || ! [[ $(cli_at "$port" ping) == PONG ]] ||
      die "a server not started by this script already answers on 127.0.0.1:$port; stop it or set SENTINEL_PORTS"
  done
}

monitored_in() {  # sentinel.conf: the port of the primary it watches, as Sentinel last wrote it
  [[ -f $1 ]] || return 0
  awk -v name="$MASTER_NAME" '$1 == "sentinel" && $2 == "monitor" && $3 == name { print $5 }' "$1"
}

current_primary() {  # the port of the primary now
  local port answer="" epoch best_epoch=-1
  # The sentinels decide: the one they name, if any of them runs...
  for port in "${SENTINEL_PORT_LIST[@]}"; do
    sentinel_pid "$port" >/dev/null || continue
    answer=$(cli_at "$port" sentinel get-master-addr-by-name "$MASTER_NAME" | sed -n 2p) || answer=""
    [[ -n $answer ]] && break
  done
  # ...unless it is down and the other server already answers as a primary (a failover
  # the sentinels have made but not all announced yet).
  if [[ -n $answer ]]; then
    local other
    other=$(other_data_port "$answer")
    if ! data_pid "$answer" >/dev/null && data_pid "$other" >/dev/null &&
      [[ $(cli_at "$other" role | sed -n 1p) == master ]]; then
      answer=$other
    fi
    printf '%s\n' "$answer"
    return
  fi
  # With no sentinel running, the last failover they recorded in their files (Sentinel
  # rewrites sentinel.conf at each change; the highest config-epoch is the latest).
  answer=$PORT
  for port in "${SENTINEL_PORT_LIST[@]}"; do
    local conf=$SET_DIR/$port/sentinel.conf monitored
    monitored=$(monitored_in "$conf")
    [[ -n $monitored ]] || continue
    epoch=$(awk -v name="$MASTER_NAME" '$1 == "sentinel" && $2 == "config-epoch" && $3 == name { print $4 }' "$conf")
    if ((${epoch:-0} > best_epoch)); then
      best_epoch=${epoch:-0}
      answer=$monitored
    fi
  done
  printf '%s\n' "$answer"
}

wait_for_ping() {  # port log: up to 5 s
  local tries
  for tries in $(seq 50); do
    [[ $(cli_at "$1" ping) == PONG ]] && return
    sleep 0.1
  done
  die "no answer to PING on 127.0.0.1:$1; see $(relative "$2")"
}

start_data_server() {  # port primary-port
  local port=$1 primary=$2 dir=$SET_DIR/$1 pid role=() what
  if [[ $port == "$primary" ]]; then what="the primary"; else what="a replica of 127.0.0.1:$primary"; fi
  if pid=$(data_pid "$port"); then
    say "The Redis server on 127.0.0.1:$port is already running (pid $pid); not starting a second one."
    return
  fi
  mkdir -p "$dir"
  if [[ $port == "$primary" ]]; then
    # As start_server: a copy of the dump, for a set's first start.
    [[ -f $dir/dump.rdb || -f $dir/appendonlydir/appendonly.aof.manifest ]] || cp "$PROJECT/dump.rdb" "$dir/dump.rdb"
  else
    # A replica takes its data from the primary; on a restart after a failover this is
    # how the old primary comes back: as a replica, never as a second primary.
    role=(--replicaof 127.0.0.1 "$primary")
  fi
  # Sentinel sends CONFIG REWRITE to a server whose role it changes: each server gets a
  # file of its own to rewrite, never the project's redis.conf, which it includes.
  # Written afresh at each start: the role comes from the command line.
  printf '# Written by install_redis.sh --sentinel at each start; Sentinel may rewrite it.\ninclude %s\ninclude %s\n' \
    "$PROJECT/redis.conf" "$PROJECT/redis-replicated.conf" >"$dir/redis.conf"
  local first_start=()
  [[ -f $dir/appendonlydir/appendonly.aof.manifest ]] || first_start=(--appendonly no)
  "$BIN/redis-server" "$dir/redis.conf" --port "$port" --dir "$dir" \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --daemonize yes "${role[@]}" "${first_start[@]}" ||
    die "redis-server did not start; see $(relative "$dir/redis.log")"
  wait_for_ping "$port" "$dir/redis.log"
  if ((${#role[@]})); then wait_until_in_sync "$port" "$primary"; fi
  # The same two steps as start_server's first start (see there); a replica's data are
  # its primary's by now.
  if ((${#first_start[@]})); then turn_on_append_only_file "$port" "$dir"; fi
  say "Started $what on 127.0.0.1:$port (pid $(data_pid "$port")), its data in $(relative "$dir")."
}

in_sync() {  # replica-port primary-port
  local info
  info=$(cli_at "$1" info replication | tr -d '\r')$'\n' || return 1
  [[ $info == *$'\n'role:slave$'\n'* && $info == *$'\n'master_port:$2$'\n'* &&
    $info == *$'\n'master_link_status:up$'\n'* && $info == *$'\n'master_sync_in_progress:0$'\n'* ]]
}

wait_until_in_sync() {  # replica-port primary-port
  local tries
  for tries in $(seq 300); do
    in_sync "$1" "$2" && return
    sleep 0.1
  done
  die "the replica on 127.0.0.1:$1 is not in sync with 127.0.0.1:$2 within 30 s; see $(relative "$SET_DIR/$1/redis.log")"
}

start_sentinel() {  # port primary-port
  local port=$1 dir=$SET_DIR/$1 pid
  if pid=$(sentinel_pid "$port"); then
    say "The sentinel on 127.0.0.1:$port is already running (pid $pid); not starting a second one."
    return
  fi
  mkdir -p "$dir"
  # Sentinel keeps its state in this file (its id, the primary now, the others it met)
  # and rewrites it: written here only once, on the set's first start.
  [[ -f $dir/sentinel.conf ]] || cat >"$dir/sentinel.conf" <<CONF
# Written by install_redis.sh --sentinel on the first start; Sentinel rewrites it since.
bind 127.0.0.1
port $port
dir "$dir"
daemonize yes
pidfile "$dir/sentinel.pid"
logfile "$dir/sentinel.log"
sentinel monitor $MASTER_NAME 127.0.0.1 $2 $QUORUM
sentinel down-after-milliseconds $MASTER_NAME $DOWN_AFTER_MS
sentinel failover-timeout $MASTER_NAME $FAILOVER_TIMEOUT_MS
sentinel parallel-syncs $MASTER_NAME 1
CONF
  "$BIN/redis-server" "$dir/sentinel.conf" --sentinel ||
    die "the sentinel did not start; see $(relative "$dir/sentinel.log")"
  wait_for_ping "$port" "$dir/sentinel.log"
  say "Started a sentinel on 127.0.0.1:$port (pid $(sentinel_pid "$port")), its state in $(relative "$dir")."
}

sentinel_knows_all() {  # sentinel-port primary-port replica-port
  local info flags
  info=$'\n'$(cli_at "$1" info sentinel | tr -d '\r')$'\n' || return 1
  # Not down, at the primary's address, and the other sentinels met (the count is all of them).
  [[ $info == *$'\n'"master0:name=$MASTER_NAME,status=ok,address=127.0.0.1:$2,slaves="+([0-9])",sentinels=${#SENTINEL_PORT_LIST[@]}"$'\n'* ]] ||
    return 1
  flags=$(cli_at "$1" sentinel replicas "$MASTER_NAME" |
    awk -v want="127.0.0.1:$3" 'NR % 2 == 1 { key = $0; next } key == "name" { name = $0 } key == "flags" && name == want { print }')
  [[ $flags == slave ]]
}

set_settled() {  # primary-port replica-port
  in_sync "$2" "$1" || return 1
  local port
  for port in "${SENTINEL_PORT_LIST[@]}"; do sentinel_knows_all "$port" "$1" "$2" || return 1; done
}

sentinel_url() {
  local port hosts=()
  for port in "${SENTINEL_PORT_LIST[@]}"; do hosts+=("127.0.0.1:$port"); done
  local IFS=,
  printf 'redis+sentinel://%s/%s/0\n' "${hosts[*]}" "$MASTER_NAME"
}

set_env_prefix() {  # the settings a command for this set needs, if not the defaults
  local prefix=""
  [[ $PORT == 6379 ]] || prefix+="REDIS_PORT=$PORT "
  [[ $REPLICA_PORT == 6380 ]] || prefix+="REDIS_REPLICA_PORT=$REPLICA_PORT "
  [[ ${SENTINEL_PORT_LIST[*]} == "26379 26380 26381" ]] || prefix+="SENTINEL_PORTS='${SENTINEL_PORT_LIST[*]}' "
  printf '%s' "$prefix"
}

start_sentinel_set() {
  check_set_ports
  local primary replica port
  primary=$(current_primary)
  replica=$(other_data_port "$primary")
  start_data_server "$primary" "$primary"
  start_data_server "$replica" "$primary"
  for port in "${SENTINEL_PORT_LIST[@]}"; do start_sentinel "$port" "$primary"; done
  local tries
  for tries in $(seq 300); do  # the sentinels meet every 2 s (hello messages): 30 s is ample
    set_settled "$primary" "$replica" && break
    sleep 0.1
  done
  set_settled "$primary" "$replica" ||
    die "the sentinels do not all know the primary 127.0.0.1:$primary, its replica 127.0.0.1:$replica and each other within 30 s; see the logs in $(relative "$SET_DIR")"
  say "The primary is on 127.0.0.1:$primary, its replica on 127.0.0.1:$replica is in sync, and the ${#SENTINEL_PORT_LIST[@]} sentinels know both and each other."
  say "REDIS_URL=$(sentinel_url)"
  say "  connect: $(relative "$BIN")/redis-cli -p ${SENTINEL_PORT_LIST[0]} sentinel get-master-addr-by-name $MASTER_NAME"
  say "  stop:    $(set_env_prefix)./install_redis.sh --stop"
}

stop_pid() {  # pid what: SIGTERM, then wait up to 10 s
  kill -TERM "$1"
  local tries
  for tries in $(seq 100); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  die "$2 (pid $1) did not stop within 10 seconds"
}

stop_sentinel_set() {
  local port pid role stopped=0
  # The sentinels first: none of them may fail the primary over while the set stops.
  for port in "${SENTINEL_PORT_LIST[@]}"; do
    pid=$(sentinel_pid "$port") || continue
    stop_pid "$pid" "the sentinel on 127.0.0.1:$port"
    rm -f "$SET_DIR/$port/sentinel.pid"
    say "Stopped the sentinel on 127.0.0.1:$port (pid $pid)."
    stopped=$((stopped + 1))
  done
  # Then the primary (on SIGTERM it waits for its replica to have every write), then the replica.
  local primary
  primary=$(current_primary)
  for port in "$primary" "$(other_data_port "$primary")"; do
    pid=$(data_pid "$port") || continue
    role=$(cli_at "$port" role | sed -n 1p) || role=unknown
    stop_pid "$pid" "Redis on 127.0.0.1:$port"
    rm -f "$SET_DIR/$port/redis.pid"
    say "Stopped the $([[ $role == master ]] && echo primary || echo replica) on 127.0.0.1:$port (pid $pid); it saved its data in $(relative "$SET_DIR/$port")."
    stopped=$((stopped + 1))
  done
  ((stopped)) || say "No server of the sentinel set started by this script is running (ports $PORT, $REPLICA_PORT, ${SENTINEL_PORT_LIST[*]})."
}

stop_all() {  # the single server, and the sentinel set if one was made with this REDIS_PORT
  if [[ -d $SET_DIR/$PORT ]]; then
    stop_sentinel_set
    if running_pid >/dev/null; then stop_server; fi
  else
    stop_server
  fi
}

case ${1:-} in
  '') ensure_built && start_server ;;
  --build-only) ensure_built ;;
  --sentinel) ensure_built && start_sentinel_set ;;
  --stop) stop_all ;;
  -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" ;;
  *) die "unknown option '$1' (try --help)" ;;
esac
