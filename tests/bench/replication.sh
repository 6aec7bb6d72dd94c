#!/usr/bin/env bash
# Replication benchmark: 3 controllers + 3 brokers (release build, processes on this machine),
# RF=3, min.insync.replicas=2, acks=all, 1 KiB records; next to a single combined node with
# acks=1 measured in the same run. Prints one Markdown block for BENCHMARKS.md.
#
#   bash tests/bench/replication.sh                 # 15 s per run
#   BENCH_SECONDS=5 bash tests/bench/replication.sh # quick
#
# Runs, each on a fresh topic of 8 partitions:
#   1. single node, RF=1, acks=1: the baseline the issue compares with
#   2. 3 brokers, RF=3, acks=all: as fast as one producer goes
#   3. 3 brokers, RF=3, acks=all at 20 MB/s: latency (p50/p99/p99.9)
#   4. single node, RF=1, acks=all at 20 MB/s: latency without replication
# Broker, followers and the load generator share the machine's cores.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=../lib.sh
source "$ROOT/tests/lib.sh"

SECONDS_PER_RUN="${BENCH_SECONDS:-15}"
BROKER="$ROOT/target/release/broker"
LOADGEN="$ROOT/target/release/loadgen"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/replication-bench.XXXXXX")"
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

say "cargo build --release -p broker -p loadgen"
cargo build --release -p broker -p loadgen

# start_node NAME ROLES ID CLIENT_PORT VOTERS [EXTRA_PROPS...]: formats and starts one node;
# prints nothing, appends its pid to PIDS. CLIENT_PORT is empty for a controller.
start_node() {
    local name=$1 roles=$2 id=$3 client=$4 voters=$5 cport http dir listeners
    shift 5
    dir="$WORK/$name"
    mkdir -p "$dir"
    http="$(free_port)"
    listeners=""
    [ -n "$client" ] && listeners="PLAINTEXT://127.0.0.1:$client"
    if [[ $roles == *controller* ]]; then
        cport="${voters#*"$id"@127.0.0.1:}"
        cport="${cport%%,*}"
        listeners="${listeners:+$listeners,}CONTROLLER://127.0.0.1:$cport"
    fi
    {
        echo "process.roles=$roles"
        echo "node.id=$id"
        echo "listeners=$listeners"
        echo "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
        echo "controller.listener.names=CONTROLLER"
        echo "controller.quorum.voters=$voters"
        echo "log.dirs=$dir/data"
        echo "admin.http.listener=127.0.0.1:$http"
        printf '%s\n' "$@"
    } >"$dir/server.properties"
    "$BROKER" storage format -t "$CLUSTER_ID" -c "$dir/server.properties" >/dev/null
    "$BROKER" start -c "$dir/server.properties" >"$dir/node.log" 2>&1 &
    PIDS+=($!)
    echo "$http" >"$dir/http"
}

# await_ready NAME...: waits until every named node answers /readyz.
await_ready() {
    local name http deadline=$((SECONDS + 90))
    for name in "$@"; do
        http="$(cat "$WORK/$name/http")"
        until curl -fsS -o /dev/null "http://127.0.0.1:$http/readyz" 2>/dev/null; do
            ((SECONDS < deadline)) || die "$name not ready; log tail:"$'\n'"$(tail -n 20 "$WORK/$name/node.log")"
            sleep 0.2
        done
    done
}

stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
}

# loadgen_json ARGS...: one loadgen produce run, its JSON result line. Failed records are
# counted in the table's errors column rather than ending the run.
loadgen_json() {
    "$LOADGEN" produce --json --create -p 8 -s 1024 "$@" | tail -n 1 || true
}

# row LABEL JSON: a table row from loadgen's JSON.
row() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
label, r = sys.argv[1], json.loads(sys.argv[2])
errors = sum(r["errors"].values())
cpu = r.get("client_cpu_pct")
cpu = "-" if cpu is None else f"{cpu:.0f}%"
print(f"| {label} | {r['msgs_per_sec']:.0f} | {r['mb_per_sec']:.1f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['p999_ms']:.2f} | {errors} | {cpu} |")
EOF
}

CLUSTER_ID="$("$BROKER" storage random-uuid)"
PRODUCE=(-d "${SECONDS_PER_RUN}s")
LATENCY=(-d "${SECONDS_PER_RUN}s" --rate 20480)

say "single node (RF=1)"
SINGLE_PORT="$(free_port)"
SINGLE_VOTERS="1@127.0.0.1:$(free_port)"
start_node single broker,controller 1 "$SINGLE_PORT" "$SINGLE_VOTERS" "num.partitions=8"
await_ready single
single_acks1="$(loadgen_json --bootstrap "127.0.0.1:$SINGLE_PORT" -t base-acks1 --acks 1 "${PRODUCE[@]}")"
single_lat="$(loadgen_json --bootstrap "127.0.0.1:$SINGLE_PORT" -t base-lat --acks all "${LATENCY[@]}")"
stop_all

say "3 controllers + 3 brokers (RF=3, min.insync.replicas=2)"
VOTERS="1000@127.0.0.1:$(free_port),1001@127.0.0.1:$(free_port),1002@127.0.0.1:$(free_port)"
for i in 0 1 2; do
    start_node "controller-$i" controller "100$i" "" "$VOTERS"
done
BROKER_PORTS=()
for i in 0 1 2; do
    BROKER_PORTS+=("$(free_port)")
    start_node "broker-$i" broker "$i" "${BROKER_PORTS[$i]}" "$VOTERS" \
        "default.replication.factor=3" "min.insync.replicas=2" "offsets.topic.replication.factor=3"
done
await_ready controller-0 controller-1 controller-2 broker-0 broker-1 broker-2
BOOT="127.0.0.1:${BROKER_PORTS[0]}"
rf3_all="$(loadgen_json --bootstrap "$BOOT" -t rf3-all --replication-factor 3 --acks all "${PRODUCE[@]}")"
rf3_lat="$(loadgen_json --bootstrap "$BOOT" -t rf3-lat --replication-factor 3 --acks all "${LATENCY[@]}")"
stop_all

ratio="$(python3 - "$rf3_all" "$single_acks1" <<'EOF'
import json, sys
replicated, single = (json.loads(a) for a in sys.argv[1:3])
print(f"{replicated['mb_per_sec'] / single['mb_per_sec'] * 100:.0f}%")
EOF
)"
say "results"
cat <<EOF
### Replication (1 KiB records, 8 partitions, ${SECONDS_PER_RUN} s per run, $(date -u '+%Y-%m-%d %H:%M UTC'))

| run | records/s | MB/s | p50 ms | p99 ms | p99.9 ms | errors | loadgen CPU |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
$(row "1 node, RF=1, acks=1, max rate" "$single_acks1")
$(row "3 brokers, RF=3, acks=all, max rate" "$rf3_all")
$(row "1 node, RF=1, acks=all, 20 MB/s" "$single_lat")
$(row "3 brokers, RF=3, acks=all, 20 MB/s" "$rf3_lat")

RF=3 acks=all throughput is $ratio of the single-node acks=1 figure.
Command: \`bash tests/bench/replication.sh\` (BENCH_SECONDS=${SECONDS_PER_RUN}).
EOF
