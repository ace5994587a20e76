#!/usr/bin/env bash
# Make sure a RabbitMQ broker is reachable, then exit 0.
#
# Target: AMQP_URL (default amqp://guest:guest@127.0.0.1:5672); only host and port are used.
#   1. If host:port accepts TCP (bash /dev/tcp) and answers the AMQP header, we are done.
#   2. Otherwise, only for a local target (localhost / 127.x / ::1):
#        - install Debian's rabbitmq-server when it is missing (apt-get, sudo when not root),
#        - start the node (rabbitmq-server -detached) when it is down,
#        - start the app (rabbitmqctl start_app) when the node is up but the app is stopped,
#      then wait until the broker is ready (rabbitmqctl await_startup, then poll the port).
#   3. A non-local target is only waited on briefly; it is never installed or started.
#
# Safe to run repeatedly and concurrently: the slow path is serialised with flock.
# Tunables: RABBITMQ_WAIT_SECONDS (local start-up budget, default 120),
#           RABBITMQ_REMOTE_WAIT_SECONDS (non-local wait, default 20).
set -uo pipefail

log() { printf '[rabbitmq.sh] %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

url="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672}"

# --- parse scheme://[user[:pass]@]host[:port][/vhost][?query] ---------------------------------
scheme=amqp
rest="$url"
if [[ "$rest" == *://* ]]; then
  scheme="${rest%%://*}"
  rest="${rest#*://}"
fi
hostport="${rest%%[/?#]*}"
hostport="${hostport##*@}"
port=""
if [[ "$hostport" == \[* ]]; then # [ipv6]:port
  host="${hostport#\[}"
  host="${host%%]*}"
  after="${hostport#*]}"
  [[ "$after" == :* ]] && port="${after#:}"
else
  host="${hostport%%:*}"
  [[ "$hostport" == *:* ]] && port="${hostport#*:}"
fi
[[ -n "$host" ]] || host=127.0.0.1
if [[ -z "$port" ]]; then
  if [[ "$scheme" == amqps ]]; then port=5671; else port=5672; fi
fi
[[ "$port" =~ ^[0-9]+$ ]] || die "cannot parse a port from AMQP_URL host part '$hostport'"
target="$host:$port"

# --- helpers ------------------------------------------------------------------------------------
# port_open: true when host:port accepts TCP and (for amqp://) answers the AMQP protocol header
# with a frame (0x01, Connection.Start) or its own header ("AMQP"). The second half matters on
# networks whose proxies accept every TCP connection. amqps:// targets get a TCP check only.
port_open() {
  LC_ALL=C timeout 4 bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    [[ "$2" == amqps ]] && exit 0
    printf "AMQP\x00\x00\x09\x01" >&3 || exit 1
    IFS= read -r -t 3 -N 1 -u 3 b || exit 1
    [[ "$b" == "$3" || "$b" == A ]]
  ' "$host" "$port" "$scheme" $'\x01' 2>/dev/null
}

# wait_port SECONDS: poll until port_open succeeds or the budget runs out.
wait_port() {
  local deadline=$((SECONDS + $1))
  while ((SECONDS < deadline)); do
    port_open && return 0
    sleep 1
  done
  port_open
}

is_local() {
  case "$host" in
    localhost | localhost.localdomain | ::1 | 127.*) return 0 ;;
    *) return 1 ;;
  esac
}

if port_open; then
  exit 0
fi

tried=()
fail() {
  local src="from AMQP_URL"
  [[ -n "${AMQP_URL:-}" ]] || src="the default target; set AMQP_URL to use another"
  log "ERROR: no RabbitMQ broker answers at $target ($src)."
  if ((${#tried[@]})); then
    log "Tried:"
    local t
    for t in "${tried[@]}"; do log "  - $t"; done
  fi
  log "$*"
  exit 1
}

if ! is_local; then
  wait_s="${RABBITMQ_REMOTE_WAIT_SECONDS:-20}"
  log "$target does not answer as an AMQP broker; it is not local, so only waiting up to ${wait_s}s (no install/start)"
  tried+=("waited ${wait_s}s for $target to answer (TCP + AMQP header)")
  wait_port "$wait_s" && {
    log "$target is up"
    exit 0
  }
  fail "Start that broker yourself, or unset AMQP_URL to use a local one (installed and started automatically)."
fi

# --- local target: privileges -------------------------------------------------------------------
as_root() {
  if ((EUID == 0)); then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    if [[ -t 0 ]]; then sudo "$@"; else sudo -n "$@"; fi
  else
    return 126
  fi
}
can_root() { ((EUID == 0)) || command -v sudo >/dev/null 2>&1; }

# --- serialise the slow path (test, sample and bench may run this at the same time) -------------
lock="${TMPDIR:-/tmp}/nestjs-warren-rabbitmq.lock"
if command -v flock >/dev/null 2>&1 && { exec 9>>"$lock"; } 2>/dev/null; then
  flock -w 900 9 || log "could not take $lock; continuing without it"
  # Someone else may have brought the broker up while we waited for the lock.
  if port_open; then
    exit 0
  fi
fi

wait_s="${RABBITMQ_WAIT_SECONDS:-120}"
log "$target does not answer as an AMQP broker; bringing up the local broker"

# Root is needed for apt-get and for the Debian rabbitmqctl/rabbitmq-server wrappers.
if ! can_root; then
  tried+=("nothing: not root and sudo is not available")
  log "not root and no sudo: cannot install or start RabbitMQ; waiting up to ${wait_s}s for the port"
  wait_port "$wait_s" && exit 0
  fail "Start RabbitMQ yourself (e.g. 'rabbitmq-server -detached' as root) or point AMQP_URL at a running broker."
fi

# Debian puts rabbitmqctl and rabbitmq-server in /usr/sbin, which non-root PATHs often lack.
export PATH="$PATH:/usr/sbin:/sbin"

# --- install ------------------------------------------------------------------------------------
if ! command -v rabbitmq-server >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 ||
    fail "rabbitmq-server is not installed and apt-get is not available; install RabbitMQ yourself or set AMQP_URL."
  log "rabbitmq-server is not installed; installing it with apt-get (this takes a minute)"
  tried+=("apt-get update && apt-get install -y rabbitmq-server")
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 ||
    fail "apt-get update failed (see above)."
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q rabbitmq-server >&2 ||
    fail "apt-get install rabbitmq-server failed (see above)."
fi
ctl() { as_root timeout "${CTL_TIMEOUT:-30}" rabbitmqctl "$@"; }

# node_state: prints running | stopped (node up, app stopped) | down
node_state() {
  if ! ctl -q ping >/dev/null 2>&1; then
    echo down
  elif [[ "$(ctl -q eval 'rabbit:is_running().' 2>/dev/null)" == *true* ]]; then
    echo running
  else
    echo stopped
  fi
}

state="$(node_state)"
case "$state" in
  down)
    log "RabbitMQ node is not running; starting it (rabbitmq-server -detached)"
    tried+=("rabbitmq-server -detached")
    # -detached returns at once; the wait below covers the boot.
    as_root rabbitmq-server -detached >&2 || log "rabbitmq-server -detached exited with $?; waiting anyway"
    ;;
  stopped)
    log "RabbitMQ node is running but its app is stopped; running rabbitmqctl start_app"
    tried+=("rabbitmqctl start_app")
    CTL_TIMEOUT="$wait_s" ctl start_app >&2 || log "rabbitmqctl start_app exited with $?; waiting anyway"
    ;;
  running)
    log "RabbitMQ app is running, but $target does not answer yet; waiting"
    ;;
esac

# --- wait until ready ---------------------------------------------------------------------------
start=$SECONDS
if [[ "$state" == running ]]; then
  # The app was already up, so the port is probably not one it listens on: do not wait long.
  ((wait_s > 15)) && wait_s=15
else
  log "waiting up to ${wait_s}s for RabbitMQ to finish starting"
  tried+=("rabbitmqctl await_startup (up to ${wait_s}s)")
  CTL_TIMEOUT=$((wait_s + 5)) ctl await_startup --timeout "$wait_s" >/dev/null 2>&1 ||
    log "rabbitmqctl await_startup did not confirm start-up"
fi
left=$((wait_s - (SECONDS - start)))
((left < 5)) && left=5
tried+=("polled $target for ${left}s (TCP + AMQP header)")
if wait_port "$left"; then
  log "RabbitMQ is up at $target"
  exit 0
fi
listeners="$(as_root timeout 15 rabbitmq-diagnostics -q listeners 2>/dev/null)" || listeners=""
if [[ -n "$listeners" ]]; then
  log "The local node reports these listeners:"
  while IFS= read -r line; do log "  $line"; done <<<"$listeners"
fi
fail "The node state was '$state' before we started. Check /var/log/rabbitmq/ and 'rabbitmqctl status'; if the broker listens on another port, fix AMQP_URL."
