#!/usr/bin/env bash
# Stops the cluster that infra/scripts/start-cluster.sh started: its front end, the silos gracefully (SIGTERM: each
# hands its experts over and leaves; SIGKILL after $MOE_STOP_TIMEOUT seconds, 90 by default), then the
# private PostgreSQL server, whose data directory is deleted. The state folder is the one
# start-cluster.sh used: infra/scripts/.cluster/, or $MOE_CLUSTER_STATE.
#
#   infra/scripts/stop-cluster.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
state=${MOE_CLUSTER_STATE:-$root/infra/scripts/.cluster}
timeout=${MOE_STOP_TIMEOUT:-90}
if [ ! -e "$state/pids" ] && [ ! -e "$state/postgres" ] && [ ! -e "$state/api.pid" ]; then
  echo "no cluster is running with state in $state"
  rm -f "$state/stop.sh"
  exit 0
fi

# The front end first (only if that pid is still the moe command), so no request starts on a leaving silo.
if [ -e "$state/api.pid" ]; then
  api=$(cat "$state/api.pid")
  if tr '\0' ' ' 2>/dev/null <"/proc/$api/cmdline" | grep -q "moe serve"; then
    echo "stopping the front end: $api"
    kill -TERM "$api" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$api" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$api" 2>/dev/null || true
  fi
  rm -f "$state/api.pid"
fi

# The silos: only processes that are still moe-silo (a pid may have been reused since).
silo_pids=()
if [ -e "$state/pids" ]; then
  while read -r pid; do
    if [ -n "$pid" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q moe-silo; then
      silo_pids+=("$pid")
    fi
  done <"$state/pids"
fi
if [ ${#silo_pids[@]} -gt 0 ]; then
  echo "stopping ${#silo_pids[@]} silo(s): ${silo_pids[*]}"
  kill -TERM "${silo_pids[@]}" 2>/dev/null || true
  deadline=$((SECONDS + timeout))
  for pid in "${silo_pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        echo "silo $pid did not stop within ${timeout}s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.2
    done
  done
fi
rm -f "$state/pids"

# PostgreSQL: its data directory and binaries, as start-cluster.sh wrote them.
if [ -e "$state/postgres" ]; then
  { read -r pg_dir; read -r bin; } <"$state/postgres"
  if [ -f "$pg_dir/data/postmaster.pid" ]; then
    as_postgres=()
    if [ "$(id -u)" -eq 0 ]; then as_postgres=(runuser -u postgres --); fi
    "${as_postgres[@]}" "$bin/pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null
  fi
  case "$pg_dir" in
    */moe-cluster-pg.*) rm -rf "$pg_dir" ;;
  esac
  rm -f "$state/postgres"
fi
rm -f "$state/stop.sh" "$state/silo.json"
echo "cluster stopped"
