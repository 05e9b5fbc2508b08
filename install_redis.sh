#!/usr/bin/env bash
# Task 0 of the course: build Redis from source, start it in the background from the
# project's redis.conf (an append-only file: durable) with dump.rdb as its first data,
# and check that it answers PING with PONG.
#
#   ./install_redis.sh               build (once, cached in .redis/) and start on 127.0.0.1
#   ./install_redis.sh --build-only  build only (what CI runs)
#   ./install_redis.sh --stop        stop what this script started: the server, the set
#
# REDIS_PORT (default 6379) picks the port. A build is reused once made; REDIS_SOURCE
# makes a fresh one from: redis.io, debian (Debian's source package, through apt) or
# package (Debian's packaged binary, not a build). Unset, it tries them in that order.
#
# The Sentinel set (a primary, two replicas and three sentinels: a failover that keeps
# serving with no one acting) is redis-setup/sentinel.sh; `./install_redis.sh --sentinel`
# is its alias (run again, it starts whatever of the set is down, in its role now), and
# --stop stops the set too. Its ports: REDIS_PORT, REDIS_REPLICA_PORTS, SENTINEL_PORTS.
set -euo pipefail
shopt -s extglob nullglob

# The build, and starting and stopping servers: shared with the Sentinel set.
# shellcheck source=redis-setup/shared.sh
source "$(dirname "${BASH_SOURCE[0]}")/redis-setup/shared.sh"
# shellcheck source=redis-setup/sentinel.sh
source "$PROJECT/redis-setup/sentinel.sh"
SET_STOP_COMMAND="./install_redis.sh --stop"
SET_STARTER="this script's --sentinel"

RUN_DIR=$CACHE/run/$PORT
PID_FILE=$RUN_DIR/redis.pid

running_pid() {  # the pid of the server this script started on $PORT, if it runs
  pid_of "$PID_FILE"
}

start_server() {
  local pid
  if pid=$(running_pid); then
    say "Redis is already running on 127.0.0.1:$PORT (pid $pid); not starting a second one."
    print_how_to_use "$pid"
    return
  fi
  answers_ping "$PORT" && die "a Redis server not started by this script already answers on 127.0.0.1:$PORT; stop it or set REDIS_PORT"
  mkdir -p "$RUN_DIR"
  # The server writes to its dump on shutdown: it gets a copy, the committed file stays as it is.
  [[ -f $RUN_DIR/dump.rdb ]] || cp "$PROJECT/dump.rdb" "$RUN_DIR/dump.rdb"
  start_redis_server "$PROJECT/redis.conf" "$RUN_DIR" "$PORT"
  say "PING -> PONG"
  turn_on_append_only_file "$PORT" "$RUN_DIR"  # on a first start (see start_redis_server)
  say "Redis $REDIS_VERSION is running on 127.0.0.1:$PORT (pid $(running_pid)), its data in $(relative "$RUN_DIR")."
  print_how_to_use "$(running_pid)"
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
  stop_pid "$pid" Redis
  rm -f "$PID_FILE"
  say "Stopped Redis on 127.0.0.1:$PORT (pid $pid); it saved its data in $(relative "$RUN_DIR")."
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
  --sentinel) check_set_settings && ensure_built && start_sentinel_set ;;
  --stop) stop_all ;;
  -h | --help) print_usage "$0" ;;
  *) die "unknown option '$1' (try --help)" ;;
esac
