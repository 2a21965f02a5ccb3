#!/usr/bin/env bash
# Starts an N-silo cluster on this machine to try the mesh: a private PostgreSQL server (membership and
# the expert plan), then N moe-silo processes with silo-config/multi-host.json and per-silo overrides.
#
#   infra/scripts/start-cluster.sh [-n SILOS] [-m MODEL_DIR] [-p BASE_PORT] [-d]
#
# Defaults: 3 silos, models/moe-tiny-py, ports 11111... In the foreground it waits and Ctrl-C stops the
# silos gracefully (experts move off first), then PostgreSQL. With -d it detaches and writes
# infra/scripts/.cluster/stop.sh. Logs: infra/scripts/.cluster/silo-N.log ($MOE_CLUSTER_STATE moves
# that folder elsewhere).
set -euo pipefail

silos=3
model=models/moe-tiny-py
base_port=11111
detach=false
while getopts "n:m:p:dh" option; do
  case "$option" in
    n) silos=$OPTARG ;;
    m) model=$OPTARG ;;
    p) base_port=$OPTARG ;;
    d) detach=true ;;
    *) sed -n '2,9p' "$0"; exit 2 ;;
  esac
done

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
state=${MOE_CLUSTER_STATE:-$root/infra/scripts/.cluster}
model=$(cd "$model" && pwd)
name=$(basename "$model")
if [ -e "$state/pids" ]; then
  echo "a cluster started from here is still running (see $state); stop it first: $state/stop.sh" >&2
  exit 1
fi
mkdir -p "$state"
rm -f "$state"/silo-*.log

scripts/postgres.sh
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
as_postgres=()
if [ "$(id -u)" -eq 0 ]; then
  as_postgres=(runuser -u postgres --)
fi

# A private server: its own data directory, socket directory and port.
pg_dir=$(mktemp -d /tmp/moe-cluster-pg.XXXXXX)
chmod 755 "$pg_dir"
[ "$(id -u)" -eq 0 ] && chown postgres "$pg_dir"
pg_port=$((base_port + 1000))
"${as_postgres[@]}" "$bin/initdb" -D "$pg_dir/data" -A trust -U moe >/dev/null
"${as_postgres[@]}" "$bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w start \
  -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1" >/dev/null
"$bin/psql" -h 127.0.0.1 -p "$pg_port" -U moe -d postgres -q -v ON_ERROR_STOP=1 -f infra/postgresql/schema.sql >/dev/null
connection="Host=127.0.0.1;Port=$pg_port;Username=moe;Database=postgres"
echo "PostgreSQL on 127.0.0.1:$pg_port ($pg_dir)"

dotnet build src/Orleans.MoE.Silo -c Release -nologo -v quiet >/dev/null
secret=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
pids=()
for i in $(seq 1 "$silos"); do
  port=$((base_port + i - 1))
  # env, because a model name may hold '-', which a shell variable name cannot.
  env Cluster__ClusterId=local "Cluster__ClusterSecret=$secret" Silo__Host=127.0.0.1 "Silo__Port=$port" \
    "Membership__ConnectionString=$connection" "Storage__ConnectionString=$connection" "Mesh__Models__$name=$model" \
    src/Orleans.MoE.Silo/bin/Release/net10.0/moe-silo --config silo-config/multi-host.json >"$state/silo-$i.log" 2>&1 &
  pids+=($!)
done

cat >"$state/stop.sh" <<STOP
#!/usr/bin/env bash
# Stops the cluster started by start-cluster.sh: silos gracefully (SIGTERM), then PostgreSQL.
kill -TERM ${pids[*]} 2>/dev/null || true
for pid in ${pids[*]}; do while kill -0 \$pid 2>/dev/null; do sleep 0.2; done; done
${as_postgres[*]} $bin/pg_ctl -D $pg_dir/data -m fast -w stop >/dev/null
rm -rf $pg_dir $state/pids $state/stop.sh
echo "cluster stopped"
STOP
chmod +x "$state/stop.sh"
echo "${pids[*]}" >"$state/pids"

# Wait until every silo has joined.
for i in $(seq 1 "$silos"); do
  for _ in $(seq 1 300); do
    grep -q " started" "$state/silo-$i.log" 2>/dev/null && break
    if ! kill -0 "${pids[$((i - 1))]}" 2>/dev/null; then
      echo "silo $i exited:"; cat "$state/silo-$i.log"; "$state/stop.sh"; exit 1
    fi
    sleep 0.2
  done
done

gateways=$(for i in $(seq 1 "$silos"); do printf -- "--gateway 127.0.0.1:%s " $((base_port + i - 1)); done)
cat <<EOM
$silos silos serving $name on ports $base_port..$((base_port + silos - 1)) (logs: $state/silo-N.log)
  export MOE_CLUSTER_SECRET=$secret MOE_CLUSTER_ID=local
  moe cluster status $gateways
  moe generate $gateways--prompt "def fibonacci(n):"
  (moe is: dotnet run --project src/Orleans.MoE.Cli -c Release --)
EOM

if $detach; then
  echo "stop with: $state/stop.sh"
  exit 0
fi

trap '"$state/stop.sh"; exit 0' INT TERM
echo "Ctrl-C stops the cluster"
wait
