#!/usr/bin/env bash
# The Sentinel set, for trying a failover on one machine: a primary, two replicas and
# three sentinels, each a redis-server on 127.0.0.1 in a folder of its own under
# .redis/run/sentinel-set/<port>/. Redis is built first if need be (as by install_redis.sh).
# After any one failure the new primary still has a replica: the set keeps confirming
# writes with no one acting.
#
#   redis-setup/sentinel.sh         start the set (or what of it is not running) and
#                                   print the REDIS_URL naming it
#   redis-setup/sentinel.sh --stop  stop the sentinels, then the primary, then the replicas
#
# `./install_redis.sh --sentinel` does the same, and `./install_redis.sh --stop` stops the
# set and the single server. Each server starts again in the role the sentinels last
# recorded: after a failover, the old primary comes back as a replica of the new one.
# REDIS_PORT (default 6379) is the first primary's port, REDIS_REPLICA_PORTS (default
# "6380 6381", one port or more) the replicas' and SENTINEL_PORTS (default
# "26379 26380 26381") the sentinels'; docs/redis.md has the sentinels' settings.

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then  # run, not sourced by install_redis.sh
  set -euo pipefail
  shopt -s extglob nullglob
  # shellcheck source=redis-setup/shared.sh
  source "$(dirname "${BASH_SOURCE[0]}")/shared.sh"
fi

# How this script's messages name its commands; install_redis.sh, which sources it for
# its --sentinel and --stop, names its own.
SET_STOP_COMMAND="./redis-setup/sentinel.sh --stop"
SET_STARTER="this script"

SET_DIR=$CACHE/run/sentinel-set
read -r -a REPLICA_PORT_LIST <<<"${REDIS_REPLICA_PORTS:-6380 6381}"
read -r -a SENTINEL_PORT_LIST <<<"${SENTINEL_PORTS:-26379 26380 26381}"
DATA_PORT_LIST=("$PORT" "${REPLICA_PORT_LIST[@]}")  # the first primary, then the replicas
MASTER_NAME=mymaster
QUORUM=2  # two of the three sentinels must see the primary down: one alone cannot fail it over
# Quick but safe on one machine. down-after-milliseconds: 3 s without a valid answer to
# PING and a sentinel holds the primary down (Redis's default is 30 s, made for networks
# that drop packets for seconds); with the vote and the promotion after it, a kill -9 of
# the primary to the first confirmed write is within 10 s (4.3 s measured here). Nothing
# lies between a sentinel and a server but the loopback, and the only pauses of a live
# server are its own: a fork for an append-only file rewrite, or loading its data
# (Sentinel counts a LOADING answer as valid), milliseconds for this project's data and
# still well under a second on a loaded machine. So 3 s fails over a dead primary
# quickly and never a busy one.
DOWN_AFTER_MS=3000
# failover-timeout: a failover here takes a second or two: promote a replica, then
# reconfigure the other one (parallel-syncs 1: one at a time, and here there is one),
# which follows the new primary with a partial resync (the new primary keeps the old
# replication id) or at worst a full one of this project's small data. 15 s is ample
# margin; a failover that did fail is tried again after twice this, 30 s, instead of the
# default's 6 minutes.
FAILOVER_TIMEOUT_MS=15000

data_pid() { pid_of "$SET_DIR/$1/redis.pid"; }        # port
sentinel_pid() { pid_of "$SET_DIR/$1/sentinel.pid"; } # port
replicas_of() {  # primary-port array-name: the set's other data ports, in the order given
  local port
  local -n into=$2
  into=()
  for port in "${DATA_PORT_LIST[@]}"; do [[ $port == "$1" ]] || into+=("$port"); done
}
is_data_port() {  # port
  local port
  for port in "${DATA_PORT_LIST[@]}"; do [[ $port == "$1" ]] && return 0; done
  return 1
}
addresses() {  # port...: "127.0.0.1:a", "127.0.0.1:a and 127.0.0.1:b", "127.0.0.1:a, 127.0.0.1:b and 127.0.0.1:c"
  local text="127.0.0.1:$1"
  shift
  while (($# > 1)); do text+=", 127.0.0.1:$1" && shift; done
  (($# == 0)) || text+=" and 127.0.0.1:$1"
  printf '%s' "$text"
}

check_set_settings() {  # the environment alone, before anything is built or started
  [[ -n ${REDIS_REPLICA_PORT:-} && -z ${REDIS_REPLICA_PORTS:-} ]] &&
    die "REDIS_REPLICA_PORT was renamed REDIS_REPLICA_PORTS, the replicas' ports separated by spaces (default \"6380 6381\"): set that instead"
  ((${#REPLICA_PORT_LIST[@]} >= 1)) || die "REDIS_REPLICA_PORTS must name one port at least (default \"6380 6381\")"
  ((${#SENTINEL_PORT_LIST[@]} >= 3)) || die "SENTINEL_PORTS must name three ports (or more): a quorum of $QUORUM needs them"
  local port seen=" "
  for port in "${DATA_PORT_LIST[@]}" "${SENTINEL_PORT_LIST[@]}"; do
    [[ $port =~ ^[0-9]+$ ]] || die "'$port' is not a port (REDIS_PORT, REDIS_REPLICA_PORTS, SENTINEL_PORTS)"
    [[ $seen == *" $port "* ]] && die "port $port is named twice (REDIS_PORT, REDIS_REPLICA_PORTS, SENTINEL_PORTS)"
    seen+="$port "
  done
  return 0
}

check_set_ports() {  # what runs on them, and what the sentinels' files say
  local port monitored
  for port in "${SENTINEL_PORT_LIST[@]}"; do
    monitored=$(monitored_in "$SET_DIR/$port/sentinel.conf")
    [[ -z $monitored ]] || is_data_port "$monitored" ||
      die "the sentinel in $(relative "$SET_DIR/$port") watches a primary on port $monitored, not one of this set's: remove that folder or set REDIS_PORT and REDIS_REPLICA_PORTS as before"
  done
  for port in "${DATA_PORT_LIST[@]}"; do
    data_pid "$port" >/dev/null || ! answers_ping "$port" ||
      die "a Redis server not started by $SET_STARTER already answers on 127.0.0.1:$port; stop it (./install_redis.sh --stop, if it is the single server) or set REDIS_PORT and REDIS_REPLICA_PORTS"
  done
  for port in "${SENTINEL_PORT_LIST[@]}"; do
    sentinel_pid "$port" >/dev/null || ! answers_ping "$port" ||
      die "a server not started by this script already answers on 127.0.0.1:$port; stop it or set SENTINEL_PORTS"
  done
}

monitored_in() {  # sentinel.conf: the port of the primary it watches, as Sentinel last wrote it
  [[ -f $1 ]] || return 0
  awk -v name="$MASTER_NAME" '$1 == "sentinel" && $2 == "monitor" && $3 == name { print $5 }' "$1"
}

current_primary() {  # the port of the primary now
  local port answer="" epoch best_epoch=-1 others
  # The sentinels decide: the one they name, if any of them runs...
  for port in "${SENTINEL_PORT_LIST[@]}"; do
    sentinel_pid "$port" >/dev/null || continue
    answer=$(cli_at "$port" sentinel get-master-addr-by-name "$MASTER_NAME" | sed -n 2p) || answer=""
    [[ -n $answer ]] && break
  done
  # ...unless it is down and another server of the set already answers as a primary (a
  # failover the sentinels have made but not all announced yet).
  if [[ -n $answer ]]; then
    if ! data_pid "$answer" >/dev/null; then
      replicas_of "$answer" others
      for port in "${others[@]}"; do
        if data_pid "$port" >/dev/null && [[ $(cli_at "$port" role | sed -n 1p) == master ]]; then
          answer=$port
          break
        fi
      done
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

start_data_server() {  # port primary-port
  local port=$1 primary=$2 dir=$SET_DIR/$1 pid role=() what
  if [[ $port == "$primary" ]]; then what="the primary"; else what="a replica of 127.0.0.1:$primary"; fi
  if pid=$(data_pid "$port"); then
    say "The Redis server on 127.0.0.1:$port is already running (pid $pid); not starting a second one."
    return
  fi
  mkdir -p "$dir"
  if [[ $port == "$primary" ]]; then
    # As install_redis.sh's single server: a copy of the dump, for a set's first start.
    [[ -f $dir/dump.rdb ]] || has_append_only_file "$dir" || cp "$PROJECT/dump.rdb" "$dir/dump.rdb"
  else
    # A replica takes its data from the primary; on a restart after a failover this is
    # how the old primary comes back: as a replica, never as a second primary.
    role=(--replicaof 127.0.0.1 "$primary")
  fi
  # Sentinel sends CONFIG REWRITE to a server whose role it changes: each server gets a
  # file of its own to rewrite, never the project's redis.conf, which it includes.
  # Written afresh at each start: the role comes from the command line.
  printf '# Written by redis-setup/sentinel.sh at each start; Sentinel may rewrite it.\ninclude %s\ninclude %s\n' \
    "$PROJECT/redis.conf" "$PROJECT/redis-replicated.conf" >"$dir/redis.conf"
  start_redis_server "$dir/redis.conf" "$dir" "$port" "${role[@]}"
  if ((${#role[@]})); then wait_until_in_sync "$port" "$primary"; fi
  # On a first start (see start_redis_server); a replica's data are its primary's by now.
  turn_on_append_only_file "$port" "$dir"
  say "Started $what on 127.0.0.1:$port (pid $(data_pid "$port")), its data in $(relative "$dir")."
}

in_sync() {  # replica-port primary-port
  local info
  info=$(cli_at "$1" info replication | tr -d '\r')$'\n' || return 1
  [[ $info == *$'\n'role:slave$'\n'* && $info == *$'\n'master_port:$2$'\n'* &&
    $info == *$'\n'master_link_status:up$'\n'* && $info == *$'\n'master_sync_in_progress:0$'\n'* ]]
}

wait_until_in_sync() {  # replica-port primary-port
  poll 300 in_sync "$1" "$2" ||
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
# Written by redis-setup/sentinel.sh on the first start; Sentinel rewrites it since.
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

sentinel_knows_all() {  # sentinel-port primary-port replica-port...
  local sentinel=$1 primary=$2 info flags replica
  shift 2
  info=$'\n'$(cli_at "$sentinel" info sentinel | tr -d '\r')$'\n' || return 1
  # Not down, at the primary's address, and the other sentinels met (the count is all of them).
  [[ $info == *$'\n'"master0:name=$MASTER_NAME,status=ok,address=127.0.0.1:$primary,slaves="+([0-9])",sentinels=${#SENTINEL_PORT_LIST[@]}"$'\n'* ]] ||
    return 1
  # Each replica's flags, "name flags" a line: exactly "slave", none down or disconnected.
  flags=$(cli_at "$sentinel" sentinel replicas "$MASTER_NAME" |
    awk 'NR % 2 == 1 { key = $0; next } key == "name" { name = $0 } key == "flags" { print name, $0 }')
  for replica in "$@"; do
    [[ $'\n'$flags$'\n' == *$'\n'"127.0.0.1:$replica slave"$'\n'* ]] || return 1
  done
}

set_settled() {  # primary-port replica-port...
  local port
  for port in "${@:2}"; do in_sync "$port" "$1" || return 1; done
  for port in "${SENTINEL_PORT_LIST[@]}"; do sentinel_knows_all "$port" "$@" || return 1; done
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
  [[ ${REPLICA_PORT_LIST[*]} == "6380 6381" ]] || prefix+="REDIS_REPLICA_PORTS='${REPLICA_PORT_LIST[*]}' "
  [[ ${SENTINEL_PORT_LIST[*]} == "26379 26380 26381" ]] || prefix+="SENTINEL_PORTS='${SENTINEL_PORT_LIST[*]}' "
  printf '%s' "$prefix"
}

start_sentinel_set() {
  check_set_settings
  check_set_ports
  local primary replicas port
  primary=$(current_primary)
  replicas_of "$primary" replicas
  # Whatever is down, in its role now: the primary (the sentinels have not failed it
  # over), then each replica of it, an old primary among them after a failover.
  start_data_server "$primary" "$primary"
  for port in "${replicas[@]}"; do start_data_server "$port" "$primary"; done
  for port in "${SENTINEL_PORT_LIST[@]}"; do start_sentinel "$port" "$primary"; done
  local named=(replica is both)  # how the messages name the replicas: one, or more
  ((${#replicas[@]} == 1)) || named=(replicas are "them all")
  # The sentinels meet every 2 s (hello messages): 30 s is ample.
  poll 300 set_settled "$primary" "${replicas[@]}" ||
    die "the sentinels do not all know the primary 127.0.0.1:$primary, its ${named[0]} $(addresses "${replicas[@]}") and each other within 30 s; see the logs in $(relative "$SET_DIR")"
  say "The primary is on 127.0.0.1:$primary, its ${named[0]} on $(addresses "${replicas[@]}") ${named[1]} in sync, and the ${#SENTINEL_PORT_LIST[@]} sentinels know ${named[2]} and each other."
  say "REDIS_URL=$(sentinel_url)"
  say "  connect: $(relative "$BIN")/redis-cli -p ${SENTINEL_PORT_LIST[0]} sentinel get-master-addr-by-name $MASTER_NAME"
  say "  stop:    $(set_env_prefix)$SET_STOP_COMMAND"
}

stop_sentinel_set() {
  check_set_settings
  local port pid role stopped=0 primary replicas
  # The sentinels first: none of them may fail the primary over while the set stops.
  for port in "${SENTINEL_PORT_LIST[@]}"; do
    pid=$(sentinel_pid "$port") || continue
    stop_pid "$pid" "the sentinel on 127.0.0.1:$port"
    rm -f "$SET_DIR/$port/sentinel.pid"
    say "Stopped the sentinel on 127.0.0.1:$port (pid $pid)."
    stopped=$((stopped + 1))
  done
  # Then the primary (on SIGTERM it waits for its replicas to have every write), then
  # each replica.
  primary=$(current_primary)
  replicas_of "$primary" replicas
  for port in "$primary" "${replicas[@]}"; do
    pid=$(data_pid "$port") || continue
    role=$(cli_at "$port" role | sed -n 1p) || role=unknown
    stop_pid "$pid" "Redis on 127.0.0.1:$port"
    rm -f "$SET_DIR/$port/redis.pid"
    say "Stopped the $([[ $role == master ]] && echo primary || echo replica) on 127.0.0.1:$port (pid $pid); it saved its data in $(relative "$SET_DIR/$port")."
    stopped=$((stopped + 1))
  done
  ((stopped)) || say "No server of the sentinel set started by this script is running (ports $PORT, ${REPLICA_PORT_LIST[*]}, ${SENTINEL_PORT_LIST[*]})."
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  case ${1:-} in
    '') check_set_settings && ensure_built && start_sentinel_set ;;
    --stop) stop_sentinel_set ;;
    -h | --help) print_usage "$0" ;;
    *) die "unknown option '$1' (try --help)" ;;
  esac
fi
