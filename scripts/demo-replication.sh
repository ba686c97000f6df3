#!/usr/bin/env bash
# Cascade replication walkthrough: one master and two replicas on this
# machine, started from generated redis.conf files, driven with redis-cli.
#
#   ./scripts/demo-replication.sh
#
# It shows INFO replication on every node, a write on the master read back
# on both replicas, a write refused by a replica (-READONLY), a chain (the
# second replica re-pointed to the first: a replica of a replica) carrying a
# write to its end, and a promotion (REPLICAOF NO ONE) after which the
# promoted node takes writes and still feeds its own replica. Then it shuts
# every node down with SHUTDOWN and removes its temporary directory, also
# when a step fails or on Ctrl-C.
#
# Every step checks its result and the script exits non-zero with a message
# saying what went wrong (and the nodes' last log lines), so it doubles as a
# test. It waits on conditions (links up, offsets reached, pidfiles gone)
# with deadlines, polling, never on a fixed sleep alone.
#
# Environment:
#   DEMO_BASE_PORT  first of three consecutive ports (default 6379: the
#                   master on 6379, replicas on 6380 and 6381)
#   CASCADE_BIN     the cascade binary; else `cascade` on PATH, else the
#                   repository's target/release or target/debug build, else
#                   it is built with `cargo build --release`
#   DEMO_TIMEOUT    seconds to wait for each condition (default 30)
#   DEMO_PAUSE      seconds to pause once the replicas are linked (default
#                   0), so a test can interrupt the demo at a known point
#   TMPDIR          where the temporary directory is made (default /tmp)
#
# Needs bash and redis-cli (Debian/Ubuntu: apt-get install redis-tools).
set -Eeuo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
base_port="${DEMO_BASE_PORT:-6379}"
timeout_s="${DEMO_TIMEOUT:-30}"
pause_s="${DEMO_PAUSE:-0}"
password="demo-secret"

say() { printf '\n== %s\n' "$*"; }
ok() { printf 'ok - %s\n' "$*"; }
failed=""
die() {
  failed=1
  printf '\nFAILED: %s\n' "$*" >&2
  exit 1
}

# --- prerequisites ----------------------------------------------------------

command -v redis-cli >/dev/null 2>&1 ||
  die "redis-cli is required (Debian/Ubuntu: sudo apt-get install redis-tools)"
command -v timeout >/dev/null 2>&1 || die "timeout (coreutils) is required"
if ! [[ "$base_port" =~ ^[0-9]{1,5}$ ]] || ((10#$base_port < 1 || 10#$base_port > 65533)); then
  die "DEMO_BASE_PORT must be a port number below 65534, not '$base_port'"
fi
if ! [[ "$timeout_s" =~ ^[0-9]{1,6}$ ]] || ((10#$timeout_s == 0)); then
  die "DEMO_TIMEOUT must be a whole number of seconds, not '$timeout_s'"
fi
if ! [[ "$pause_s" =~ ^[0-9]{1,6}$ ]]; then
  die "DEMO_PAUSE must be a whole number of seconds, not '$pause_s'"
fi
pause_s=$((10#$pause_s))
base_port=$((10#$base_port))
timeout_s=$((10#$timeout_s))

find_cascade() {
  if [[ -n "${CASCADE_BIN:-}" ]]; then
    [[ -x "$CASCADE_BIN" ]] || die "CASCADE_BIN=$CASCADE_BIN is not an executable file"
    echo "$CASCADE_BIN"
    return
  fi
  if command -v cascade >/dev/null 2>&1; then
    command -v cascade
    return
  fi
  local b
  for b in "$repo/target/release/cascade" "$repo/target/debug/cascade"; do
    if [[ -x "$b" ]]; then
      echo "$b"
      return
    fi
  done
  command -v cargo >/dev/null 2>&1 ||
    die "no cascade binary found (CASCADE_BIN, PATH, target/) and cargo is not installed to build one"
  echo "Building cascade with cargo build --release..." >&2
  (cd "$repo" && cargo build --release >&2) || die "cargo build --release failed"
  echo "$repo/target/release/cascade"
}
cascade="$(find_cascade)"

# --- the nodes --------------------------------------------------------------

master=$base_port
replica1=$((base_port + 1))
replica2=$((base_port + 2))
ports=("$master" "$replica1" "$replica2")

# redis-cli reads the password from here, so it never shows in `ps`.
export REDISCLI_AUTH="$password"

# Bounded so that a node which accepts but never answers cannot hang the
# demo; --foreground keeps redis-cli in our process group, so Ctrl-C
# reaches it.
cli() {
  local port=$1
  shift
  timeout --foreground 10 redis-cli -h 127.0.0.1 -p "$port" "$@"
}

# One field of INFO <section>, without the trailing CR.
info_field() {
  cli "$1" INFO "$2" 2>/dev/null | tr -d '\r' | sed -n "s/^$3://p"
}

# wait_for DESCRIPTION COMMAND...: polls COMMAND until it succeeds or the
# deadline passes, then fails the demo.
wait_for() {
  local what=$1
  shift
  local end=$((SECONDS + timeout_s))
  until "$@"; do
    ((SECONDS < end)) || die "timed out after ${timeout_s}s waiting for $what"
    sleep 0.1
  done
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

for port in "${ports[@]}"; do
  ! port_in_use "$port" ||
    die "port $port is already in use (a redis-server service?); pick other ports with DEMO_BASE_PORT=7000"
done

# --- cleanup: runs on every exit, also after a failure or Ctrl-C -------------

# The last command that failed outside a condition: reported if `set -e`
# ends the script without a message of its own.
err_at=""
trap 'err_at="line $LINENO: $BASH_COMMAND"' ERR

tmp=""
cleanup() {
  local status=$?
  set +e
  trap - EXIT INT TERM HUP ERR
  # Output may be gone (a closed pipe, a closed terminal): writing must not
  # end the cleanup.
  trap '' PIPE
  if ((status != 0 && status < 129)) && [[ -z "$failed" ]]; then
    failed=1
    printf '\nFAILED: unexpected error (exit status %s) at %s\n' "$status" "${err_at:-an unknown line}" >&2
  fi
  [[ -n "$tmp" && -d "$tmp" ]] || exit "$status"
  if [[ -n "$failed" ]]; then
    local port
    for port in "${ports[@]}"; do
      if [[ -f "$tmp/$port/cascade.log" ]]; then
        printf '\n-- last lines of the log of the node on port %s:\n' "$port" >&2
        tail -n 15 "$tmp/$port/cascade.log" >&2
      fi
    done
  fi
  stop_all || status=1
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'echo "Interrupted." >&2; exit 130' INT
trap 'echo "Terminated." >&2; exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE

tmp="$(mktemp -d "${TMPDIR:-/tmp}/cascade-demo.XXXXXX")"

# The pid in a node's pidfile, if that process is still this node's cascade.
node_pid() {
  local pidfile="$tmp/$1/cascade.pid" pid
  [[ -f "$pidfile" ]] || return 1
  pid="$(<"$pidfile")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$tmp/$1/cascade.conf" || return 1
  echo "$pid"
}

pidfile_gone() { [[ ! -e "$tmp/$1/cascade.pid" ]]; }
port_closed() { ! port_in_use "$1"; }

# Stops one node with SHUTDOWN and waits for its pidfile to go. When that
# fails (only on the way out of a failed run), SHUTDOWN NOSAVE FORCE, then
# SIGTERM, then SIGKILL.
stop_node() {
  local port=$1 pid end
  [[ -f "$tmp/$port/cascade.pid" ]] || return 0
  cli "$port" SHUTDOWN >/dev/null 2>&1
  end=$((SECONDS + timeout_s))
  while ! pidfile_gone "$port" && ((SECONDS < end)); do sleep 0.1; done
  pidfile_gone "$port" && return 0
  echo "The node on port $port did not stop on SHUTDOWN; forcing it." >&2
  cli "$port" SHUTDOWN NOSAVE FORCE >/dev/null 2>&1
  end=$((SECONDS + 5))
  while ! pidfile_gone "$port" && ((SECONDS < end)); do sleep 0.1; done
  if pid="$(node_pid "$port")"; then
    kill -TERM "$pid" 2>/dev/null
    end=$((SECONDS + 5))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < end)); do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  fi
  return 1
}

# Replicas first, so that the master has no lagging replica to wait for.
stop_all() {
  local i rc=0
  for ((i = ${#ports[@]} - 1; i >= 0; i--)); do
    stop_node "${ports[$i]}" || rc=1
  done
  return $rc
}

# --- start ------------------------------------------------------------------

write_config() {
  local port=$1 master_port=${2:-}
  local d="$tmp/$port"
  mkdir -p "$d"
  {
    echo "# Generated by scripts/demo-replication.sh"
    echo "port $port"
    echo "bind 127.0.0.1"
    echo "daemonize yes"
    echo "pidfile $d/cascade.pid"
    echo "logfile $d/cascade.log"
    echo "dir $d"
    echo "dbfilename dump-$port.rdb"
    echo "appendonly yes"
    echo "appendfilename appendonly-$port.aof"
    echo "requirepass $password"
    # Every node can become a replica (the chain, a promotion undone), so
    # every node knows the password of the others.
    echo "masterauth $password"
    # Start a full sync at once rather than wait 5 s for more replicas to
    # share it.
    echo "repl-diskless-sync-delay 0"
    if [[ -n "$master_port" ]]; then
      echo "replicaof 127.0.0.1 $master_port"
    fi
  } >"$d/cascade.conf"
}

answers_ping() { [[ "$(cli "$1" PING 2>/dev/null)" == PONG ]]; }

start_node() {
  local port=$1
  "$cascade" "$tmp/$port/cascade.conf" || die "cascade refused to start on port $port"
  wait_for "the pidfile of the node on port $port" test -s "$tmp/$port/cascade.pid"
  wait_for "the node on port $port to answer PING" answers_ping "$port"
}

say "Starting a master on $master and replicas on $replica1 and $replica2 ($cascade)"
write_config "$master"
write_config "$replica1" "$master"
write_config "$replica2" "$master"
echo "Configuration of the replica on $replica1 ($tmp/$replica1/cascade.conf):"
sed 's/^/    /' "$tmp/$replica1/cascade.conf"
for port in "${ports[@]}"; do
  start_node "$port"
  ok "node on port $port is up (pid $(<"$tmp/$port/cascade.pid"))"
done

link_up() { [[ "$(info_field "$1" replication master_link_status)" == up ]]; }
linked_to() {
  link_up "$1" && [[ "$(info_field "$1" replication master_port)" == "$2" ]]
}
has_replicas() { [[ "$(info_field "$1" replication connected_slaves)" == "$2" ]]; }

# caught_up MASTER REPLICA...: every replica has applied the master's
# stream up to its current offset.
caught_up() {
  local m=$1 target r off
  shift
  target="$(info_field "$m" replication master_repl_offset)"
  [[ -n "$target" ]] || return 1
  for r in "$@"; do
    off="$(info_field "$r" replication slave_repl_offset)"
    [[ -n "$off" ]] && ((off >= target)) || return 1
  done
}

# A command as one would type it: arguments with spaces in double quotes.
shown() {
  local a out=()
  for a in "$@"; do
    if [[ "$a" == *" "* || -z "$a" ]]; then out+=("\"$a\""); else out+=("$a"); fi
  done
  echo "${out[*]}"
}

# expect PORT EXPECTED COMMAND...: runs COMMAND on PORT and fails the demo
# unless the reply is EXPECTED; prints the exchange.
expect() {
  local port=$1 want=$2 got
  shift 2
  got="$(cli "$port" "$@" 2>&1)" || die "redis-cli $(shown "$@") on port $port failed: $got"
  printf '%s> %s\n%s\n' "$port" "$(shown "$@")" "$got"
  [[ "$got" == "$want" ]] || die "on port $port, $(shown "$@") replied '$got', expected '$want'"
}

wait_for "the replica on $replica1 to link to the master" linked_to "$replica1" "$master"
wait_for "the replica on $replica2 to link to the master" linked_to "$replica2" "$master"
wait_for "the master to list two replicas" has_replicas "$master" 2
ok "both replicas report master_link_status:up"
if ((pause_s > 0)); then
  echo "Pausing ${pause_s} s (DEMO_PAUSE)."
  # Short sleeps in the foreground: a signal is acted on within 0.1 s.
  for ((i = 0; i < pause_s * 10; i++)); do
    sleep 0.1
  done
fi

say "INFO replication on each node"
for port in "${ports[@]}"; do
  echo "-- port $port"
  cli "$port" INFO replication | tr -d '\r' | grep -v '^#' | grep -v '^$' | sed 's/^/    /'
done

say "Writing on the master, reading on both replicas"
expect "$master" OK SET demo:greeting "hello from the master"
expect "$master" 3 RPUSH demo:list a b c
expect "$master" 42 INCRBY demo:counter 42
wait_for "both replicas to reach the master's offset" caught_up "$master" "$replica1" "$replica2"
for port in "$replica1" "$replica2"; do
  expect "$port" "hello from the master" GET demo:greeting
  expect "$port" $'a\nb\nc' LRANGE demo:list 0 -1
  expect "$port" 42 GET demo:counter
done
ok "both replicas have the master's writes"

say "A replica refuses writes"
write=(SET demo:greeting "written on a replica")
refusal="$(cli "$replica1" "${write[@]}" 2>&1)" || true
printf '%s> %s\n%s\n' "$replica1" "$(shown "${write[@]}")" "$refusal"
[[ "$refusal" == READONLY* ]] ||
  die "the replica on $replica1 did not refuse a write with READONLY (it replied '$refusal')"
expect "$replica1" "hello from the master" GET demo:greeting
ok "the replica on $replica1 refused the write with -READONLY"

say "A chain: the replica on $replica2 becomes a replica of the replica on $replica1"
expect "$replica2" OK REPLICAOF 127.0.0.1 "$replica1"
wait_for "the replica on $replica2 to link to $replica1" linked_to "$replica2" "$replica1"
wait_for "the replica on $replica1 to list one replica" has_replicas "$replica1" 1
wait_for "the master to list one replica" has_replicas "$master" 1
for port in "${ports[@]}"; do
  echo "-- ROLE on port $port"
  cli "$port" ROLE | sed 's/^/    /'
done
expect "$master" OK SET demo:chain "from $master through $replica1 to $replica2"
wait_for "the end of the chain to reach the master's offset" caught_up "$master" "$replica1" "$replica2"
expect "$replica2" "from $master through $replica1 to $replica2" GET demo:chain
ok "a write on the master reached the end of the chain ($master -> $replica1 -> $replica2)"

say "Promoting the replica on $replica1 with REPLICAOF NO ONE"
expect "$replica1" OK REPLICAOF NO ONE
role="$(info_field "$replica1" replication role)"
echo "$replica1> INFO replication: role:$role"
[[ "$role" == master ]] || die "the node on $replica1 reports role:$role after REPLICAOF NO ONE"
expect "$replica1" OK SET demo:promoted "written on the promoted node"
expect "$replica1" 43 INCR demo:counter
ok "the promoted node on $replica1 accepts writes"
wait_for "the replica on $replica2 to stay linked to $replica1" linked_to "$replica2" "$replica1"
wait_for "the replica on $replica2 to reach the promoted node's offset" caught_up "$replica1" "$replica2"
expect "$replica2" "written on the promoted node" GET demo:promoted
expect "$replica2" 43 GET demo:counter
full="$(info_field "$replica1" stats sync_full)"
partial="$(info_field "$replica1" stats sync_partial_ok)"
echo "$replica1> INFO stats: sync_full:$full sync_partial_ok:$partial"
# PSYNC2: the replica continues from the promoted node's second id, both
# when it was re-pointed and after the promotion, with no full sync.
[[ "$full" == 0 ]] || die "the node on $replica1 served $full full syncs; expected partial resyncs only"
ok "its replica on $replica2 follows it, by partial resync"
wait_for "the old master to list no replica" has_replicas "$master" 0
expect "$master" "" GET demo:promoted
ok "the old master on $master kept its data and has no replica left"

say "Stopping every node with SHUTDOWN"
stop_all || die "a node did not stop on SHUTDOWN"
for port in "${ports[@]}"; do
  wait_for "port $port to close" port_closed "$port"
  ok "node on port $port stopped (pidfile removed, port closed)"
done

say "Demo complete"
