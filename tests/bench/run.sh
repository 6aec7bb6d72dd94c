#!/usr/bin/env bash
# Benchmarks the broker on this machine and prints Markdown tables for BENCHMARKS.md:
#   1. the machine's own limits (loopback TCP with iperf3, sequential disk write with dd),
#   2. a loadgen matrix (size x partitions x acks, produce then consume) and a latency run,
#   3. the same through rdkafka_performance, the tool people publish Kafka numbers with.
#
# Usage: tests/bench/run.sh [OUTPUT.md]        (default: tests/.work/bench-results.md)
#
# Environment knobs (all optional):
#   BENCH_SECONDS=10        length of each produce run (the consume reads what was produced)
#   BENCH_BOOTSTRAP=h:p     bench an already running broker instead of starting one
#   BENCH_PRODUCE_ARGS=".."  extra loadgen produce flags for the matrix, e.g.
#                           "--batch-size 262144" (default: Kafka's producer defaults)
#   BENCH_PORT_BASE=19090   ports used for the started broker: +2 clients, +3 controller, +80 admin
#   BENCH_SKIP_BUILD=1      use the existing target/release binaries
#   BENCH_SKIP_RDKAFKA=1    skip the rdkafka_performance part
#   BENCH_SKIP_LIMITS=1     skip iperf3 and dd
#   BENCH_NO_INSTALL=1      never call apt-get (fail if a tool is missing)
# Everything it builds or writes lives under the git-ignored tests/.work/.
set -euo pipefail

if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
WORK="$ROOT/tests/.work/bench"
OUT=${1:-tests/.work/bench-results.md}
SECONDS_PER_RUN=${BENCH_SECONDS:-10}
read -r -a PRODUCE_EXTRA <<<"${BENCH_PRODUCE_ARGS:-}"
PORT_BASE=${BENCH_PORT_BASE:-19090}
PORT=$((PORT_BASE + 2))
CONTROLLER_PORT=$((PORT_BASE + 3))
ADMIN_PORT=$((PORT_BASE + 80))
BOOTSTRAP=${BENCH_BOOTSTRAP:-127.0.0.1:$PORT}
LOADGEN="$ROOT/target/release/loadgen"
BROKER="$ROOT/target/release/broker"
RDKAFKA_DIR="$ROOT/tests/.work/rdkafka"
RDKAFKA="$RDKAFKA_DIR/rdkafka_performance"
RUN_ID=$(date +%s)

BROKER_PID=""
IPERF_PID=""
FAILURES=0
# A file, not an array: commands also run inside $(...) subshells.
COMMANDS_FILE="$WORK/commands.txt"

log() { printf '>> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

cleanup() {
    local pid
    for pid in "$IPERF_PID" "$BROKER_PID"; do
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs a command, remembering it for the "Commands" section of the report.
run_logged() {
    printf '%q ' "$@" | sed 's/ $//' >>"$COMMANDS_FILE"
    echo >>"$COMMANDS_FILE"
    "$@"
}

# --- tools --------------------------------------------------------------------------

APT_UPDATED=0
apt_install() {
    [[ "${BENCH_NO_INSTALL:-0}" == 1 ]] && die "missing tool(s) for: $*; install them or unset BENCH_NO_INSTALL"
    [[ $(id -u) == 0 ]] || die "need root to apt-get install $*"
    if [[ $APT_UPDATED == 0 ]]; then
        log "apt-get update"
        apt-get update -qq >/dev/null
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

need_tools() {
    local missing=()
    command -v jq >/dev/null || missing+=(jq)
    command -v curl >/dev/null || missing+=(curl)
    if [[ "${BENCH_SKIP_LIMITS:-0}" != 1 ]]; then
        command -v iperf3 >/dev/null || missing+=(iperf3)
    fi
    if [[ "${BENCH_SKIP_RDKAFKA:-0}" != 1 && ! -x "$RDKAFKA" ]]; then
        command -v gcc >/dev/null || missing+=(gcc)
        command -v dpkg-source >/dev/null || missing+=(dpkg-dev)
        [[ -f /usr/include/librdkafka/rdkafka.h ]] || missing+=(librdkafka-dev)
    fi
    if ((${#missing[@]})); then apt_install "${missing[@]}"; fi
}

# Debian 12 keeps its sources in deb822 form; apt-get source needs deb-src there.
enable_deb_src() {
    local f=/etc/apt/sources.list.d/debian.sources
    if [[ -f $f ]] && grep -q '^Types: deb$' "$f"; then
        log "adding deb-src to $f"
        sed -i 's/^Types: deb$/Types: deb deb-src/' "$f"
        APT_UPDATED=0
    fi
}

# Builds examples/rdkafka_performance.c from Debian's librdkafka source package against
# Debian's librdkafka-dev, so the tool matches the installed library. Cached.
build_rdkafka_performance() {
    [[ -x "$RDKAFKA" ]] && return 0
    log "building rdkafka_performance (once; cached in tests/.work/rdkafka)"
    mkdir -p "$RDKAFKA_DIR/src"
    (
        cd "$RDKAFKA_DIR/src"
        local src
        src=$(find . -maxdepth 1 -type d -name 'librdkafka-*' | head -n1)
        if [[ -z "$src" ]]; then
            enable_deb_src
            if [[ $APT_UPDATED == 0 ]]; then apt-get update -qq >/dev/null; fi
            # A source index older than the sources list needs one more update.
            apt-get source -qq librdkafka >/dev/null 2>&1 ||
                { apt-get update -qq >/dev/null && apt-get source -qq librdkafka >/dev/null 2>&1; } ||
                die "apt-get source librdkafka failed (is deb-src enabled in /etc/apt/sources.list.d?)"
        fi
        src=$(find . -maxdepth 1 -type d -name 'librdkafka-*' | head -n1)
        [[ -n "$src" ]] || die "apt-get source left no librdkafka-* directory"
        cd "$src"
        # The example includes internal headers that need the generated config.h.
        if [[ ! -f config.h ]]; then
            ./configure --disable-ssl --disable-gssapi >"$RDKAFKA_DIR/configure.log" 2>&1 ||
                die "librdkafka ./configure failed, see $RDKAFKA_DIR/configure.log"
        fi
        gcc -O2 -I src -o "$RDKAFKA" examples/rdkafka_performance.c -lrdkafka -lm -lpthread ||
            die "compiling rdkafka_performance failed"
    )
}

# --- machine limits -----------------------------------------------------------------

LOOPBACK_MBS=""
DISK_MBS=""

measure_loopback() {
    local port=$((PORT_BASE + 1)) json
    iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null 2>&1 &
    IPERF_PID=$!
    sleep 0.5
    json=$(run_logged iperf3 -c 127.0.0.1 -p "$port" -t 5 -J) || die "iperf3 client failed"
    wait "$IPERF_PID" 2>/dev/null || true
    IPERF_PID=""
    LOOPBACK_MBS=$(jq -er '.end.sum_received.bits_per_second / 8 / 1048576' <<<"$json") ||
        die "iperf3 gave no result: $(jq -r '.error // "unknown error"' <<<"$json")"
}

measure_disk() {
    local dir=$1 out bytes secs
    mkdir -p "$dir"
    out=$(LC_ALL=C run_logged dd if=/dev/zero of="$dir/dd-test" bs=1M count=1024 conv=fdatasync 2>&1) ||
        die "dd failed: $out"
    rm -f "$dir/dd-test"
    # "1073741824 bytes (1.1 GB, 1.0 GiB) copied, 2.1 s, 511 MB/s"
    bytes=$(sed -nE 's/^([0-9]+) bytes.*/\1/p' <<<"$out")
    secs=$(sed -nE 's/.* copied, ([0-9.]+) s,.*/\1/p' <<<"$out")
    [[ -n "$bytes" && -n "$secs" ]] || die "could not parse dd output: $out"
    DISK_MBS=$(awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "%.1f", b / s / 1048576 }')
}

# --- broker -------------------------------------------------------------------------

start_broker() {
    local data="$WORK/data" props="$WORK/server.properties" id
    [[ -x "$BROKER" ]] || die "$BROKER not found; run cargo build --release -p broker"
    rm -rf "$data"
    mkdir -p "$data"
    cat >"$props" <<EOF
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
controller.listener.names=CONTROLLER
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
log.dirs=$data
admin.http.listener=127.0.0.1:$ADMIN_PORT
EOF
    id=$(run_logged "$BROKER" storage random-uuid) || die "broker storage random-uuid failed"
    run_logged "$BROKER" storage format -t "$id" -c "$props" >"$WORK/format.log" 2>&1 ||
        die "broker storage format failed: $(tail -n 20 "$WORK/format.log")"
    printf '%q ' "$BROKER" start -c "$props" >>"$COMMANDS_FILE"
    echo '&' >>"$COMMANDS_FILE"
    "$BROKER" start -c "$props" >"$WORK/broker.log" 2>&1 &
    BROKER_PID=$!
    local deadline=$((SECONDS + 60))
    until curl -fsS -o /dev/null "http://127.0.0.1:$ADMIN_PORT/readyz" 2>/dev/null; do
        kill -0 "$BROKER_PID" 2>/dev/null ||
            die "broker exited during startup; last log lines:"$'\n'"$(tail -n 30 "$WORK/broker.log")"
        ((SECONDS < deadline)) ||
            die "broker not ready after 60 s; last log lines:"$'\n'"$(tail -n 30 "$WORK/broker.log")"
        sleep 0.2
    done
    log "broker ready (pid $BROKER_PID, data in $data)"
}

# --- runs ---------------------------------------------------------------------------

LOADGEN_ROWS=()
LATENCY_ROWS=()
RDKAFKA_ROWS=()
BEST_1K_8P_MSGS=""

num_or() { # value fallback -> value rounded to a whole number, or the fallback when empty
    if [[ -n "$1" ]]; then printf '%.0f' "$1"; else printf '%s' "$2"; fi
}

pct() { # value limit -> "NN%" or "n/a"
    awk -v v="$1" -v l="$2" 'BEGIN { if (l + 0 > 0 && v != "") printf "%.0f%%", 100 * v / l; else printf "n/a" }'
}

produce_limit() {
    if [[ -n "$LOOPBACK_MBS" && -n "$DISK_MBS" ]]; then
        awk -v a="$LOOPBACK_MBS" -v b="$DISK_MBS" 'BEGIN { print (a < b ? a : b) }'
    fi
}

# Runs loadgen and leaves its JSON line in $JSON (a stand-in when it printed none).
# Not called in $(...) so that FAILURES counts.
JSON=""
loadgen_json() {
    local rc=0
    run_logged "$LOADGEN" "$@" --json >"$WORK/loadgen.out" 2>"$WORK/loadgen.err" || rc=$?
    if ((rc != 0)); then
        FAILURES=$((FAILURES + 1))
        log "loadgen $1 failed (exit $rc): $(tail -n 3 "$WORK/loadgen.err")"
    fi
    JSON=$(tail -n1 "$WORK/loadgen.out")
    if [[ -z "$JSON" ]] || ! jq -e . >/dev/null 2>&1 <<<"$JSON"; then
        JSON='{"messages":0,"msgs_per_sec":0,"mb_per_sec":0,"errors":{"failed":1}}'
    fi
}

# jq helpers for table cells: milliseconds with 2 decimals, "-" when absent.
JQ_DEFS='def ms(x): if x == null then "-" else (x * 100 | round / 100) end;
  def cpu(x): if x == null then "-" else "\(x | round)%" end; '

errors_of() { jq -r '(.errors | to_entries | map("\(.key): \(.value)") | join(", ")) as $e | if $e == "" then "0" else $e end' <<<"$1"; }

run_loadgen_matrix() {
    local size parts acks topic p c limit
    limit=$(produce_limit)
    for size in 100 1024; do
        for parts in 1 8; do
            for acks in 1 all; do
                topic="bench-$RUN_ID-s$size-p$parts-a$acks"
                log "loadgen produce size=$size partitions=$parts acks=$acks (${SECONDS_PER_RUN}s)"
                loadgen_json produce --bootstrap "$BOOTSTRAP" --topic "$topic" --create \
                    --replication-factor 1 --partitions "$parts" --size "$size" --acks "$acks" \
                    --duration "${SECONDS_PER_RUN}s" ${PRODUCE_EXTRA[@]+"${PRODUCE_EXTRA[@]}"}
                p=$JSON
                LOADGEN_ROWS+=("$(jq -r --arg pct "$(pct "$(jq -r .mb_per_sec <<<"$p")" "$limit")" \
                    --arg err "$(errors_of "$p")" --arg s "$size" --arg pa "$parts" --arg a "$acks" \
                    "$JQ_DEFS"'"| produce | \($s) B | \($pa) | \($a) | \(.messages) | \(.msgs_per_sec | floor) | \(.mb_per_sec * 10 | round / 10) | \(ms(.p50_ms)) | \(ms(.p99_ms)) | \(ms(.p999_ms)) | \($pct) | \(cpu(.client_cpu_pct)) | \($err) |"' <<<"$p")")
                if [[ $size == 1024 && $parts == 8 && $acks == 1 ]]; then
                    BEST_1K_8P_MSGS=$(jq -r '.msgs_per_sec | floor' <<<"$p")
                fi
                local n
                n=$(jq -r .messages <<<"$p")
                if ((n > 0)); then
                    log "loadgen consume $n records"
                    loadgen_json consume --bootstrap "$BOOTSTRAP" --topic "$topic" --messages "$n"
                    c=$JSON
                    LOADGEN_ROWS+=("$(jq -r --arg pct "$(pct "$(jq -r .mb_per_sec <<<"$c")" "$LOOPBACK_MBS")" \
                        --arg err "$(errors_of "$c")" --arg s "$size" --arg pa "$parts" --arg a "$acks" \
                        "$JQ_DEFS"'"| consume | \($s) B | \($pa) | \($a) | \(.messages) | \(.msgs_per_sec | floor) | \(.mb_per_sec * 10 | round / 10) | - | - | - | \($pct) | \(cpu(.client_cpu_pct)) | \($err) |"' <<<"$c")")
                fi
            done
        done
    done
}

run_latency() {
    local rate=$((20 * 1048576 / 1024)) topic="bench-$RUN_ID-latency" p
    log "loadgen latency run: 1 KiB at 20 MB/s, acks=all"
    loadgen_json produce --bootstrap "$BOOTSTRAP" --topic "$topic" --create --partitions 8 \
        --replication-factor 1 --size 1024 --acks all --rate "$rate" --duration "${SECONDS_PER_RUN}s"
    p=$JSON
    LATENCY_ROWS+=("$(jq -r --arg err "$(errors_of "$p")" \
        "$JQ_DEFS"'"| 1 KiB, 8 partitions, acks=all | 20 | \(.mb_per_sec * 10 | round / 10) | \(ms(.p50_ms)) | \(ms(.p99_ms)) | \(ms(.p999_ms)) | \(ms(.max_ms)) | \($err) |"' <<<"$p")")
}

# Parses the last summary line of rdkafka_performance into "messages bytes ms".
rdkafka_summary() {
    local mode=$1 file=$2
    if [[ $mode == P ]]; then
        # "% N messages produced (B bytes), D delivered (offset O, F failed) in T ms: ..."
        grep -E '^% [0-9]+ messages produced' "$file" | tail -n1 |
            sed -nE 's/^% [0-9]+ messages produced \(([0-9]+) bytes\), ([0-9]+) delivered \(offset -?[0-9]+, ([0-9]+) failed\) in ([0-9]+)ms.*/\2 \1 \4 \3/p'
    else
        # "% N messages (B bytes) consumed in T ms: ..."
        grep -E '^% [0-9]+ messages \([0-9]+ bytes\) consumed' "$file" | tail -n1 |
            sed -nE 's/^% ([0-9]+) messages \(([0-9]+) bytes\) consumed in ([0-9]+)ms.*/\1 \2 \3 0/p'
    fi
}

rdkafka_row() { # mode acks n file limit expected
    local mode=$1 acks=$2 file=$3 limit=$4 expected=$5 msgs bytes ms failed mbs rate name
    read -r msgs bytes ms failed < <(rdkafka_summary "$mode" "$file") || true
    name=$([[ $mode == P ]] && echo produce || echo consume)
    if [[ -z "${msgs:-}" || "${ms:-0}" == 0 ]]; then
        FAILURES=$((FAILURES + 1))
        RDKAFKA_ROWS+=("| $name | 1024 B | 8 | $acks | failed: no summary line (see $file) | | | | |")
        return
    fi
    if [[ $mode == P ]]; then bytes=$((msgs * 1024)); fi # delivered bytes
    rate=$(awk -v m="$msgs" -v t="$ms" 'BEGIN { printf "%d", m * 1000 / t }')
    mbs=$(awk -v b="$bytes" -v t="$ms" 'BEGIN { printf "%.1f", b * 1000 / t / 1048576 }')
    local errs=0
    if ((failed > 0 || msgs < expected)); then
        errs="$failed failed, $msgs of $expected"
        FAILURES=$((FAILURES + 1))
    fi
    RDKAFKA_ROWS+=("| $name | 1024 B | 8 | $acks | $msgs | $rate | $mbs | $(pct "$mbs" "$limit") | $errs |")
}

run_rdkafka() {
    local n=$1 acks topic parts=() i
    for i in $(seq 0 7); do parts+=(-p "$i"); done
    for acks in 1 all; do
        topic="bench-$RUN_ID-rdkafka-a$acks"
        run_logged "$LOADGEN" create-topic --bootstrap "$BOOTSTRAP" --topic "$topic" --partitions 8 \
            --replication-factor 1 ||
            die "could not create $topic"
        log "rdkafka_performance produce $n x 1 KiB, 8 partitions, acks=$acks"
        local ack_val=1
        [[ $acks == all ]] && ack_val=-1
        run_logged timeout 300 "$RDKAFKA" -P -t "$topic" -b "$BOOTSTRAP" -s 1024 -c "$n" \
            -X "acks=$ack_val" >"$WORK/rdkafka-produce-$acks.log" 2>&1 || true
        rdkafka_row P "$acks" "$WORK/rdkafka-produce-$acks.log" "$(produce_limit)" "$n"
        log "rdkafka_performance consume $n"
        run_logged timeout 300 "$RDKAFKA" -C -t "$topic" -b "$BOOTSTRAP" -o beginning -c "$n" -e \
            "${parts[@]}" >"$WORK/rdkafka-consume-$acks.log" 2>&1 || true
        rdkafka_row C "$acks" "$WORK/rdkafka-consume-$acks.log" "$LOOPBACK_MBS" "$n"
    done
}

# --- report -------------------------------------------------------------------------

report() {
    local limit
    limit=$(produce_limit)
    cat <<EOF
## Benchmark results ($(date -u '+%Y-%m-%d %H:%M UTC'))

Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, $(uname -sr)); broker and load generator share it; all traffic on loopback.
One broker, topics with replication factor 1 (so acks=all waits for the same single replica as acks=1).
Commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown). MB = 2^20 bytes. Each produce run lasts ${SECONDS_PER_RUN} s; each consume reads what that run produced.

### Machine limits

| what | MB/s |
| --- | ---: |
| loopback TCP (iperf3, 1 stream, 5 s) | $(num_or "$LOOPBACK_MBS" "not measured") |
| sequential write to the data disk (dd 1 GiB, fdatasync) | $(num_or "$DISK_MBS" "not measured") |
| produce ceiling = min(loopback, disk) | $(num_or "$limit" "n/a") |

### loadgen (1 producer / 1 consumer; producer settings: ${BENCH_PRODUCE_ARGS:-Kafka defaults: batch 16 KiB, linger 5 ms, max in flight 5})

% of limit: produce rows against min(loopback, disk), consume rows against loopback.
loadgen CPU: the load generator's own CPU time over the run, in % of one core (the broker has the rest of the 2 cores).

| mode | size | partitions | acks | messages | msgs/s | MB/s | p50 ms | p99 ms | p99.9 ms | % of limit | loadgen CPU | errors |
| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |
EOF
    printf '%s\n' "${LOADGEN_ROWS[@]}"
    cat <<EOF

### Latency at a fixed rate (loadgen, ${SECONDS_PER_RUN} s)

| run | target MB/s | achieved MB/s | p50 ms | p99 ms | p99.9 ms | max ms | errors |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |
EOF
    printf '%s\n' "${LATENCY_ROWS[@]}"
    if ((${#RDKAFKA_ROWS[@]})); then
        cat <<EOF

### rdkafka_performance (librdkafka $(dpkg-query -W -f='${Version}' librdkafka-dev 2>/dev/null || echo '?'), default producer settings)

Built from \`examples/rdkafka_performance.c\` of Debian's librdkafka source package
(\`apt-get source librdkafka\`, \`./configure\` for its internal headers, then
\`gcc -O2 -I src examples/rdkafka_performance.c -lrdkafka -lm -lpthread\`). MB/s is
recomputed from its summary line in 2^20 bytes (it prints 10^6); produce counts
delivered records only.

| mode | size | partitions | acks | messages | msgs/s | MB/s | % of limit | errors |
| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |
EOF
        printf '%s\n' "${RDKAFKA_ROWS[@]}"
    fi
    echo
    echo "### Commands"
    echo
    echo '```'
    sed "s|$ROOT/||g" "$COMMANDS_FILE"
    echo '```'
}

# --- main ---------------------------------------------------------------------------

main() {
    mkdir -p "$WORK" "$(dirname "$OUT")"
    : >"$COMMANDS_FILE"
    need_tools
    if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
        log "cargo build --release"
        if [[ -n "${BENCH_BOOTSTRAP:-}" ]]; then
            cargo build --release -q -p loadgen || die "building loadgen failed"
        else
            cargo build --release -q -p broker -p loadgen || die "building broker/loadgen failed"
        fi
    fi
    [[ -x "$LOADGEN" ]] || die "$LOADGEN not found; run cargo build --release -p loadgen"

    if [[ "${BENCH_SKIP_LIMITS:-0}" != 1 ]]; then
        log "measuring loopback TCP (iperf3, 5 s)"
        measure_loopback
        log "measuring sequential disk write (dd 1 GiB)"
        measure_disk "$WORK/data"
    fi
    if [[ "${BENCH_SKIP_RDKAFKA:-0}" != 1 ]]; then build_rdkafka_performance; fi

    if [[ -z "${BENCH_BOOTSTRAP:-}" ]]; then start_broker; fi

    run_loadgen_matrix
    run_latency
    if [[ "${BENCH_SKIP_RDKAFKA:-0}" != 1 ]]; then
        # About as many records as loadgen moved in one run, so the runs are comparable.
        local n=${BEST_1K_8P_MSGS:-0}
        n=$((n * SECONDS_PER_RUN))
        ((n >= 10000)) || n=10000
        run_rdkafka "$n"
    fi

    report | tee "$OUT"
    log "wrote $OUT"
    if ((FAILURES > 0)); then
        die "$FAILURES run(s) failed; see the errors column and $WORK/*.log"
    fi
}

main "$@"
