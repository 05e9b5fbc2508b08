# shellcheck shell=bash
# Sourced, not run: what install_redis.sh and redis-setup/sentinel.sh share. Getting the
# source and building Redis once (cached in .redis/), then starting, checking and
# stopping redis-server processes on 127.0.0.1. The script that sources it sets
# -euo pipefail and extglob (show_progress's patterns need it).

REDIS_VERSION=7.0.15
# From redis.io's own list of release hashes (github.com/redis/redis-hashes).
REDIS_SHA256=98066f5363504b26c34dd20fbcc3c957990d764cdf42576c836fc021073f4341
# Debian recompressed the same release for its source package ("orig" tarball).
DEBIAN_ORIG_SHA256=4b1dc4ee6d622a09fff9c6777191209750fb5e5a725ef78ea012d6eef4c22982
REDIS_TARBALL_URL=https://download.redis.io/releases/redis-$REDIS_VERSION.tar.gz

PROJECT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=$PROJECT/.redis            # git-ignored: downloads, build tree, binaries, run state
BIN=$CACHE/bin
# shellcheck disable=SC2034  # used by the scripts that source this file
PORT=${REDIS_PORT:-6379}         # the single server's; the Sentinel set's first primary's

say() { printf '%s\n' "$*"; }
die() { printf '%s: %s\n' "${0##*/}" "$*" >&2; exit 1; }  # named for the script run
relative() { printf '%s\n' "${1#"$PROJECT"/}"; }
print_usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$1"; }  # script: its header

poll() {  # tenths command...: runs the command every 0.1 s until it succeeds; status 1 if it never did
  local tries=$1
  shift
  until "$@"; do
    ((--tries > 0)) || return 1
    sleep 0.1
  done
}

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
# shellcheck source=redis-setup/private_apt.sh
source "$PROJECT/redis-setup/private_apt.sh"

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
  # shellcheck disable=SC2016  # $LD_LIBRARY_PATH and $@ are the wrapper's, expanded when it runs
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

pid_of() {  # pid-file: the pid in it, if that process runs and is a redis-server
  local pid
  [[ -f $1 ]] || return 1
  pid=$(cat "$1")
  [[ -n $pid ]] || return 1
  # A stale pid file may name a process that is not ours any more.
  [[ $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") == *redis-server* ]] || return 1
  printf '%s\n' "$pid"
}

cli_at() { local port=$1 && shift && "$BIN/redis-cli" -h 127.0.0.1 -p "$port" "$@" 2>/dev/null; }
answers_ping() { [[ $(cli_at "$1" ping) == PONG ]]; }  # port

wait_for_ping() {  # port log: up to 5 s
  poll 50 answers_ping "$1" || die "no answer to PING on 127.0.0.1:$1; see $(relative "$2")"
}

has_append_only_file() { [[ -f $1/appendonlydir/appendonly.aof.manifest ]]; }  # dir

start_redis_server() {  # config dir port [option...]: in the background, answering PING
  local config=$1 dir=$2 port=$3 first_start=()
  shift 3
  # Redis 7.0 started with appendonly yes and no append-only file yet makes an empty one
  # and never reads dump.rdb. So until a complete append-only file exists (its manifest
  # is written last), start without it, to load the dump; turn_on_append_only_file then
  # turns it on.
  has_append_only_file "$dir" || first_start=(--appendonly no)
  "$BIN/redis-server" "$config" --port "$port" --dir "$dir" \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --daemonize yes "$@" "${first_start[@]}" ||
    die "redis-server did not start; see $(relative "$dir/redis.log")"
  wait_for_ping "$port" "$dir/redis.log"
}

turn_on_append_only_file() {  # port dir: after a first start, from the data in memory
  has_append_only_file "$2" && return
  [[ $(cli_at "$1" config set appendonly yes) == OK ]] ||
    die "Redis refused to turn on its append-only file; see $(relative "$2/redis.log")"
  # The rewrite is a child process; 60 s is plenty for a dump.
  poll 600 append_only_file_written "$1" "$2" ||
    die "Redis did not write its append-only file within 60 s; see $(relative "$2/redis.log")"
}

append_only_file_written() {  # port dir
  local info
  info=$(cli_at "$1" info persistence | tr -d '\r')
  [[ $info == *aof_enabled:1* && $info == *aof_rewrite_in_progress:0* &&
    $info == *aof_rewrite_scheduled:0* ]] && has_append_only_file "$2"
}

stopped() { ! kill -0 "$1" 2>/dev/null; }  # pid

stop_pid() {  # pid what: SIGTERM, then wait up to 10 s
  kill -TERM "$1"
  poll 100 stopped "$1" || die "$2 (pid $1) did not stop within 10 seconds"
}
