#!/usr/bin/env bash
# Starts an N-silo cluster on this machine to try the mesh: a private PostgreSQL server (membership and
# the expert plan), then N moe-silo processes with silo-config/multi-host.json and per-silo overrides,
# then the front end (moe serve: OpenAI-compatible API, dashboard, metrics) reaching them as a client.
#
#   infra/scripts/start-cluster.sh [-n SILOS] [-m MODEL_DIR] [-p BASE_PORT] [-a API_PORT] [-d] [-D]
#
#   -n  silos to start (3)             -m  model directory (models/moe-tiny-py)
#   -p  first port (11111): silo i listens on 2i-2 above it for silos, 2i-1 for clients (its gateway)
#   -a  front end port on 127.0.0.1 (8000; 0: no front end)
#   -d  detach: return once it is up   -D  database only: PostgreSQL with the schema, no silos
#
# In the foreground it runs until Ctrl-C, reporting any silo that exits (the others serve on); Ctrl-C
# stops the front end, the silos gracefully (experts move off first), then PostgreSQL. Detached (-d), infra/scripts/stop-cluster.sh stops it. State and logs
# (silo-N.log, api.log) are in infra/scripts/.cluster/, or in $MOE_CLUSTER_STATE. Works as a normal
# user and as root (PostgreSQL then runs as the postgres user).
set -euo pipefail

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }

silos=3
model=models/moe-tiny-py
base_port=11111
api_port=8000
detach=false
db_only=false
while getopts "n:m:p:a:dDh" option; do
  case "$option" in
    n) silos=$OPTARG ;;
    m) model=$OPTARG ;;
    p) base_port=$OPTARG ;;
    a) api_port=$OPTARG ;;
    d) detach=true ;;
    D) db_only=true ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
if [ $# -gt 0 ]; then usage >&2; exit 2; fi
if ! [[ $silos =~ ^[1-9][0-9]*$ ]]; then echo "-n: a positive number of silos, not '$silos'" >&2; exit 2; fi
last_port=$((base_port + 2 * silos - 1))
if ! [[ $base_port =~ ^[1-9][0-9]*$ ]] || [ "$last_port" -gt 65535 ]; then
  echo "-p: a port such that ports $base_port..$last_port are valid" >&2; exit 2
fi
if ! [[ $api_port =~ ^[0-9]+$ ]] || [ "$api_port" -gt 65535 ]; then echo "-a: a port, or 0 for no front end, not '$api_port'" >&2; exit 2; fi

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
state=${MOE_CLUSTER_STATE:-$root/infra/scripts/.cluster}
stop="$root/infra/scripts/stop-cluster.sh"
if ! $db_only; then
  if [ ! -f "$model/config.json" ]; then echo "-m: $model has no config.json (a Hugging Face checkpoint directory)" >&2; exit 2; fi
  model=$(cd "$model" && pwd)
  name=$(basename "$model")
fi
if [ -e "$state/pids" ] || [ -e "$state/postgres" ]; then
  echo "a cluster started with state in $state is still running; stop it first: MOE_CLUSTER_STATE=$state $stop" >&2
  exit 1
fi

# Nothing may listen on 127.0.0.1:PORT yet.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if ! $db_only; then
  for port in $(seq "$base_port" "$last_port"); do
    if ! port_free "$port"; then echo "port $port is in use; choose another -p" >&2; exit 1; fi
  done
  if [ "$api_port" -ne 0 ] && ! port_free "$api_port"; then echo "port $api_port is in use; choose another -a" >&2; exit 1; fi
fi

mkdir -p "$state"
rm -f "$state"/silo-*.log "$state/api.log" "$state/build.log"
# stop.sh in the state folder: stop-cluster.sh for this state folder.
cat >"$state/stop.sh" <<EOF
#!/usr/bin/env bash
MOE_CLUSTER_STATE='$state' exec '$stop' "\$@"
EOF
chmod +x "$state/stop.sh"

# Until the cluster is up, any failure or Ctrl-C stops what was started.
up=false
cleanup() {
  if ! $up; then
    trap - INT TERM
    "$state/stop.sh" >&2 || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# PostgreSQL: a private server (its own data directory, socket directory and port).
scripts/postgres.sh
bin=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
as_postgres=()
pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/moe-cluster-pg.XXXXXX")
chmod 755 "$pg_dir"
if [ "$(id -u)" -eq 0 ]; then
  as_postgres=(runuser -u postgres --)
  chown postgres "$pg_dir"
fi
printf '%s\n%s\n' "$pg_dir" "$bin" >"$state/postgres"
pg_port=15432
while ! port_free "$pg_port" || { [ "$pg_port" -ge "$base_port" ] && [ "$pg_port" -le "$last_port" ]; }; do
  pg_port=$((pg_port + 1))
done
"${as_postgres[@]}" "$bin/initdb" -D "$pg_dir/data" -A trust -U moe >"$state/postgres.log" 2>&1 \
  || { cat "$state/postgres.log" >&2; exit 1; }
"${as_postgres[@]}" "$bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w start \
  -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c max_connections=200" >>"$state/postgres.log" 2>&1 \
  || { cat "$state/postgres.log" "$pg_dir/log" >&2; exit 1; }
"$bin/createdb" -h 127.0.0.1 -p "$pg_port" -U moe moe
"$bin/psql" -h 127.0.0.1 -p "$pg_port" -U moe -d moe -q -v ON_ERROR_STOP=1 -f infra/postgresql/orleans.sql >/dev/null
connection="Host=127.0.0.1;Port=$pg_port;Database=moe;Username=moe"
echo "PostgreSQL on 127.0.0.1:$pg_port, database moe with Orleans' ADO.NET schema ($pg_dir)"

if $db_only; then
  up=true
  echo "  Membership__ConnectionString='$connection'"
  echo "  Storage__ConnectionString='$connection'"
  if $detach; then echo "stop with: $state/stop.sh"; exit 0; fi
  trap 'trap - INT TERM; "$state/stop.sh"; exit 0' INT TERM
  echo "Ctrl-C stops PostgreSQL"
  while true; do sleep 1; done
fi

# The silos: built once, then N processes that differ by port; the front end is the moe command.
for project in src/Orleans.MoE.Silo src/Orleans.MoE.Cli; do
  echo "building $project (Release)"
  dotnet build "$project" -c Release -nologo -v quiet -tl:off </dev/null >>"$state/build.log" 2>&1 \
    || { tail -n 30 "$state/build.log" >&2; exit 1; }
done
exe=src/Orleans.MoE.Silo/bin/Release/net10.0/moe-silo
config=silo-config/multi-host.json
if ! grep -qF "\"$name\"" "$config"; then
  # multi-host.json names another model, which would be served too: only the providers from a file.
  config=$state/silo.json
  echo '{ "Membership": { "Provider": "PostgreSql" }, "Storage": { "Provider": "PostgreSql" } }' >"$config"
fi
silo_port() { echo $((base_port + 2 * ($1 - 1))); }
gateway_port() { echo $((base_port + 2 * ($1 - 1) + 1)); }
: >"$state/pids"
for i in $(seq 1 "$silos"); do
  port=$(silo_port "$i")
  # env, because a model name may hold '-', which a shell variable name cannot; setsid, so that a
  # Ctrl-C in the terminal reaches this script (which stops the silos in order) rather than the silos.
  # The silos share this machine: each data channel takes a free port (multi-host.json fixes one per VM).
  setsid env Cluster__ClusterId=local Silo__Host=127.0.0.1 "Silo__Port=$port" "Silo__GatewayPort=$(gateway_port "$i")" Mesh__DataChannel__Port=0 \
    "Membership__ConnectionString=$connection" "Storage__ConnectionString=$connection" "Mesh__Models__$name=$model" \
    "$exe" --config "$config" >"$state/silo-$i.log" 2>&1 </dev/null &
  echo "$!" >>"$state/pids"
done

# Wait until every silo has joined (a minute at most each).
mapfile -t pids <"$state/pids"
for i in $(seq 1 "$silos"); do
  for attempt in $(seq 1 300); do
    grep -q "Silo .* started" "$state/silo-$i.log" 2>/dev/null && break
    if ! kill -0 "${pids[$((i - 1))]}" 2>/dev/null; then
      echo "silo $i exited:" >&2; cat "$state/silo-$i.log" >&2; exit 1
    fi
    if [ "$attempt" -eq 300 ]; then echo "silo $i did not start within a minute: $state/silo-$i.log" >&2; exit 1; fi
    sleep 0.2
  done
done

gateways=$(for i in $(seq 1 "$silos"); do printf -- "--gateway 127.0.0.1:%s " "$(gateway_port "$i")"; done)
if [ "$api_port" -ne 0 ]; then
  # The front end: a client of the cluster through every silo as a gateway.
  # shellcheck disable=SC2086
  setsid src/Orleans.MoE.Cli/bin/Release/net10.0/moe serve $gateways--cluster-id local \
    --urls "http://127.0.0.1:$api_port" >"$state/api.log" 2>&1 </dev/null &
  echo "$!" >"$state/api.pid"
  for attempt in $(seq 1 300); do
    grep -q "serving" "$state/api.log" 2>/dev/null && break
    if ! kill -0 "$(cat "$state/api.pid")" 2>/dev/null; then echo "the front end exited:" >&2; cat "$state/api.log" >&2; exit 1; fi
    if [ "$attempt" -eq 300 ]; then echo "the front end did not start within a minute: $state/api.log" >&2; exit 1; fi
    sleep 0.2
  done
fi
up=true

cat <<EOM
$silos silos serving $name on 127.0.0.1, gateways $(for i in $(seq 1 "$silos"); do printf '%s ' "$(gateway_port "$i")"; done)(cluster id local)
  logs: $state/silo-N.log
  export MOE_CLUSTER_ID=local
  moe cluster status --gateway 127.0.0.1:$(gateway_port 1) --cluster-id local
  moe generate $gateways--cluster-id local --prompt "def fibonacci(n):"
  (moe is: dotnet run --project src/Orleans.MoE.Cli -c Release --)
EOM
if [ "$api_port" -ne 0 ]; then
  echo "front end: http://127.0.0.1:$api_port/ (dashboard), http://127.0.0.1:$api_port/v1 (OpenAI API), log $state/api.log"
fi

if $detach; then
  echo "stop with: $state/stop.sh   (the same as MOE_CLUSTER_STATE=$state $stop)"
  exit 0
fi

trap 'trap - INT TERM; "$state/stop.sh"; exit 0' INT TERM
echo "Ctrl-C stops the cluster"
# Runs until Ctrl-C. A silo that exits (killed, crashed) is reported and the others serve on: watching
# the mesh fail over is what this is for. Silos started by hand join as usual.
api_pid=$(cat "$state/api.pid" 2>/dev/null || true)
declare -A reported=()
while true; do
  for i in $(seq 1 "$silos"); do
    pid=${pids[$((i - 1))]}
    if [ -z "${reported[$pid]:-}" ] && ! kill -0 "$pid" 2>/dev/null; then
      reported[$pid]=1
      alive=0
      for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
      echo "$(date +%T) silo $i (pid $pid, gateway $(gateway_port "$i")) exited; $alive of $silos silos serve on (its log: $state/silo-$i.log)" >&2
    fi
  done
  if [ -n "$api_pid" ] && [ -z "${reported[$api_pid]:-}" ] && ! kill -0 "$api_pid" 2>/dev/null; then
    reported[$api_pid]=1
    echo "$(date +%T) the front end (pid $api_pid) exited; the silos serve on (its log: $state/api.log)" >&2
  fi
  sleep 1
done
