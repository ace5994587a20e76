#!/usr/bin/env bash
# Extra RabbitMQ nodes beside the default one (rabbit@localhost on 5672), for TLS, cluster and config tests.
# Never touches the default node. Each node has its own name, AMQP port, distribution port, data and log
# directories under $WARREN_NODES_DIR (default /tmp/warren-nodes), and runs as the `rabbitmq` user with its HOME,
# so it shares the default node's Erlang cookie and `rabbitmqctl -n NAME@localhost` reaches it.
#
#   scripts/rabbitmq-node.sh start NAME PORT [CONF] [PLUGINS]   start NAME@localhost on 127.0.0.1:PORT (waits until up)
#                                                              CONF: a rabbitmq.conf to use (copied in; optional)
#                                                              PLUGINS: comma list to enable (default none)
#   scripts/rabbitmq-node.sh stop NAME                          stop it and delete its directories (idempotent)
#   scripts/rabbitmq-node.sh stop-all                           stop every node started under $WARREN_NODES_DIR
#
# The distribution port is PORT + 20000. Bring-up takes a few seconds.
set -euo pipefail
base="${WARREN_NODES_DIR:-/tmp/warren-nodes}"
cmd="${1:-}"

as_rabbitmq() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u rabbitmq -- env HOME=/var/lib/rabbitmq "$@"
  else
    sudo -u rabbitmq env HOME=/var/lib/rabbitmq "$@"
  fi
}

ctl() { as_rabbitmq rabbitmqctl -n "$1@localhost" "${@:2}"; }

start() {
  local name="$1" port="$2" conf="${3:-}" plugins="${4:-}"
  [ "$name" = rabbit ] && { echo "rabbitmq-node: refusing to touch the default node" >&2; exit 2; }
  [ "$port" = 5672 ] && { echo "rabbitmq-node: 5672 is the default node's port" >&2; exit 2; }
  local dir="$base/$name"
  stop "$name" >/dev/null 2>&1 || true
  mkdir -p "$dir/mnesia" "$dir/log"
  if [ -n "$conf" ]; then cp "$conf" "$dir/rabbitmq.conf"; else : >"$dir/rabbitmq.conf"; fi
  if [ -n "$plugins" ]; then echo "[${plugins}]." >"$dir/enabled_plugins"; else echo "[]." >"$dir/enabled_plugins"; fi
  chown -R rabbitmq:rabbitmq "$base" 2>/dev/null || true
  chmod -R a+rX "$base" 2>/dev/null || true
  as_rabbitmq \
    RABBITMQ_NODENAME="$name@localhost" \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT="$port" \
    RABBITMQ_DIST_PORT="$((port + 20000))" \
    RABBITMQ_MNESIA_BASE="$dir/mnesia" \
    RABBITMQ_LOG_BASE="$dir/log" \
    RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
    RABBITMQ_PID_FILE="$dir/pid" \
    rabbitmq-server -detached >/dev/null 2>&1
  echo "$port" >"$dir/port"
  # await_startup fails at once while the node is not yet registered with epmd: wait for that first.
  local deadline=$((SECONDS + 60))
  until ctl "$name" ping >/dev/null 2>&1; do
    [ "$SECONDS" -ge "$deadline" ] && break
    sleep 0.3
  done
  if ! ctl "$name" await_startup --timeout 60 >/dev/null 2>&1; then
    echo "rabbitmq-node: $name@localhost did not start; last log lines:" >&2
    tail -n 30 "$dir/log/"*.log >&2 2>/dev/null || true
    stop "$name" >/dev/null 2>&1 || true
    exit 1
  fi
  echo "rabbitmq-node: $name@localhost up on 127.0.0.1:$port"
}

stop() {
  local name="$1"
  [ "$name" = rabbit ] && { echo "rabbitmq-node: refusing to touch the default node" >&2; exit 2; }
  local dir="$base/$name"
  ctl "$name" stop >/dev/null 2>&1 || true
  # A node that does not answer rabbitmqctl: kill what runs from its directory.
  pkill -u rabbitmq -f -- "$dir/mnesia" >/dev/null 2>&1 || true
  rm -rf "$dir"
}

case "$cmd" in
  start) start "${2:?name}" "${3:?port}" "${4:-}" "${5:-}" ;;
  stop) stop "${2:?name}" ;;
  stop-all)
    for d in "$base"/*/; do [ -d "$d" ] && stop "$(basename "$d")"; done
    ;;
  *)
    echo "usage: $0 start NAME PORT [CONF] [PLUGINS] | stop NAME | stop-all" >&2
    exit 2
    ;;
esac
