#!/usr/bin/env bash
# Stop the Kafka broker started by scripts/kafka/start.sh and remove its
# data, logs and generated config (the jar cache in libs/ is kept). Idempotent.
#
#   KAFKA_PORT=9092 bash scripts/kafka/stop.sh     # the broker on that port (default 9092)
#   bash scripts/kafka/stop.sh --all               # every broker started from this cache dir
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SCRIPT_DIR/../.." && pwd)"
KAFKA_HOME="${WALLAROO_KAFKA_HOME:-$REPO/.kafka}"

log() { echo "kafka: $*"; }

is_kafka_pid() {
  local pid="$1" config="$2" cmd
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline")"
  else
    cmd="$(ps -p "$pid" -o args= 2>/dev/null || true)"
  fi
  [[ "$cmd" == *kafka.Kafka* && "$cmd" == *"$config"* ]]
}

stop_port() {
  local port="$1"
  local pid_file="$KAFKA_HOME/kafka-$port.pid"
  local config="$KAFKA_HOME/run/$port/server.properties"
  local pid i
  pid="$(cat "$pid_file" 2>/dev/null || true)"
  if is_kafka_pid "$pid" "$config"; then
    log "stopping broker on port $port (pid $pid) ..."
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "broker pid $pid did not exit within 20s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    log "broker on port $port stopped"
  else
    log "no broker running on port $port"
  fi
  rm -rf "$pid_file" "$KAFKA_HOME/data/$port" "$KAFKA_HOME/logs/$port" "$KAFKA_HOME/run/$port"
  # Drop the parent dirs once the last broker is gone.
  rmdir "$KAFKA_HOME/data" "$KAFKA_HOME/logs" "$KAFKA_HOME/run" 2>/dev/null || true
}

[[ -d "$KAFKA_HOME" ]] || { log "nothing to stop ($KAFKA_HOME does not exist)"; exit 0; }

if [[ "${1:-}" == "--all" ]]; then
  ports=()
  for f in "$KAFKA_HOME"/kafka-*.pid "$KAFKA_HOME"/run/* "$KAFKA_HOME"/data/* "$KAFKA_HOME"/logs/*; do
    [[ -e "$f" ]] || continue
    p="$(basename "$f")"; p="${p#kafka-}"; p="${p%.pid}"
    [[ "$p" =~ ^[0-9]+$ ]] && ports+=("$p")
  done
  if ((${#ports[@]} == 0)); then log "no broker running"; exit 0; fi
  for p in $(printf '%s\n' "${ports[@]}" | sort -un); do stop_port "$p"; done
else
  stop_port "${KAFKA_PORT:-9092}"
fi
