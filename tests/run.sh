#!/usr/bin/env bash
# The one test command: installs what is missing, builds, runs every suite, exits non-zero on
# any failure.
#
#   bash tests/run.sh                 everything that is on by default
#   PYTEST_ARGS="-k admin" bash tests/run.sh
#
# Flags (environment):
#   TEST_LIBRDKAFKA=0   skip librdkafka's regression suite (tests/librdkafka/run.sh; on by default)
#   TEST_SKIP_HELM=1    skip rendering and checking the operator's Helm chart
#   TEST_SOAK=1         include long soak tests (kept out of CI)
#   TEST_RELEASE=1      build and test the release binary
#   TEST_SKIP_CARGO=1   skip `cargo test` (build still happens)
#   TEST_SKIP_PYTHON=1  skip the Python client tests
#   TEST_SKIP_COMBINED=1  skip the second client-test run against 3 combined nodes
#   TEST_SKIP_DOCKER=1  skip building the container images and their smoke test
#   TEST_SKIP_NO_LOSS=1 skip the no-loss test under faults (tests/docker/no_loss.sh, ~2-3 min;
#                       TEST_SKIP_DOCKER=1 skips it too)
#   TEST_SKIP_REMOVAL=1 skip the broker removal test under load (tests/docker/removal.sh)
#   BROKER_BIN=PATH     broker binary to test (default: the one this script builds)
#   PYTEST_ARGS=...     extra pytest arguments
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=lib.sh
source "$ROOT/tests/lib.sh"

WORK="$ROOT/tests/.work"
VENV="$WORK/venv"
mkdir -p "$WORK"
declare -A RESULT=()
ORDER=()
record() { RESULT[$1]="$2"; ORDER+=("$1"); }

# ---- 1. system packages -----------------------------------------------------------
say "system packages"
ensure_apt kcat build-essential pkg-config python3 python3-venv ca-certificates
echo "kcat: $(kcat -V 2>&1 | head -n1)"

# ---- 2. Python environment ----------------------------------------------------------
say "python venv ($VENV)"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" || die "python3 -m venv failed"
fi
REQ_HASH="$(sha256sum tests/requirements.txt | cut -d' ' -f1)"
if [ "$(cat "$VENV/.requirements" 2>/dev/null)" != "$REQ_HASH" ]; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r tests/requirements.txt \
        || die "pip install -r tests/requirements.txt failed"
    echo "$REQ_HASH" >"$VENV/.requirements"
fi
"$VENV/bin/python" -c 'import confluent_kafka, kafka; print("confluent-kafka", confluent_kafka.version()[0], "librdkafka", confluent_kafka.libversion()[0], "| kafka-python", kafka.__version__)'

# ---- 3. build ----------------------------------------------------------------------
PROFILE_FLAG=""; PROFILE_DIR=debug
if [ "${TEST_RELEASE:-0}" = 1 ]; then PROFILE_FLAG="--release"; PROFILE_DIR=release; fi
say "cargo build --workspace $PROFILE_FLAG"
t0=$SECONDS
cargo build --workspace --all-targets $PROFILE_FLAG
echo "build took $((SECONDS - t0))s"
export BROKER_BIN="${BROKER_BIN:-$ROOT/target/$PROFILE_DIR/broker}"
[ -x "$BROKER_BIN" ] || die "no broker binary at $BROKER_BIN after the build"

# ---- 4. cargo test (unit + Rust integration tests, which start the binary) ------------
if [ "${TEST_SKIP_CARGO:-0}" != 1 ]; then
    say "cargo test --workspace $PROFILE_FLAG"
    t0=$SECONDS
    if cargo test --workspace $PROFILE_FLAG; then record "cargo test" "ok ($((SECONDS - t0))s)"
    else record "cargo test" "FAILED ($((SECONDS - t0))s)"; fi
fi

# ---- 5. Python client tests -----------------------------------------------------------
if [ "${TEST_SKIP_PYTHON:-0}" != 1 ]; then
    say "python client tests (pytest tests/clients) against $BROKER_BIN"
    t0=$SECONDS
    set +e
    # shellcheck disable=SC2086
    (cd tests/clients && "$VENV/bin/python" -m pytest ${PYTEST_ARGS:-})
    rc=$?
    set -e
    case $rc in
        0) record "python clients" "ok ($((SECONDS - t0))s)" ;;
        5) record "python clients" "FAILED: pytest collected no tests (check PYTEST_ARGS)" ;;
        *) record "python clients" "FAILED (pytest exit $rc, $((SECONDS - t0))s)" ;;
    esac
fi

# ---- 5b. the same client tests against a cluster of 3 combined nodes (all voters) ----------
if [ "${TEST_SKIP_PYTHON:-0}" != 1 ] && [ "${TEST_SKIP_COMBINED:-0}" != 1 ]; then
    say "python client tests against 3 combined nodes (TEST_CLUSTER=combined3)"
    t0=$SECONDS
    set +e
    # shellcheck disable=SC2086
    (cd tests/clients && TEST_CLUSTER=combined3 "$VENV/bin/python" -m pytest ${PYTEST_ARGS:-})
    rc=$?
    set -e
    case $rc in
        0) record "python clients (3 combined nodes)" "ok ($((SECONDS - t0))s)" ;;
        5) record "python clients (3 combined nodes)" "FAILED: pytest collected no tests (check PYTEST_ARGS)" ;;
        *) record "python clients (3 combined nodes)" "FAILED (pytest exit $rc, $((SECONDS - t0))s)" ;;
    esac
fi

# ---- 6. the operator's Helm chart, rendered with Helm's own engine -----------------------
if [ "${TEST_SKIP_HELM:-0}" != 1 ]; then
    say "helm chart (operator/tests/helm)"
    t0=$SECONDS
    if VENV="$WORK/helm-venv" bash operator/tests/helm/run.sh; then record "helm chart" "ok ($((SECONDS - t0))s)"
    else record "helm chart" "FAILED ($((SECONDS - t0))s)"; fi
fi

# ---- 7. container images (skips itself, passing, when docker is not installed) ---------
if [ "${TEST_SKIP_DOCKER:-0}" != 1 ]; then
    say "container images (tests/docker/smoke.sh)"
    t0=$SECONDS
    if VENV="$VENV" bash tests/docker/smoke.sh; then record "container images" "ok ($((SECONDS - t0))s)"
    else record "container images" "FAILED ($((SECONDS - t0))s)"; fi
    say "container cluster (tests/docker/cluster.sh)"
    t0=$SECONDS
    if VENV="$VENV" bash tests/docker/cluster.sh; then record "container cluster" "ok ($((SECONDS - t0))s)"
    else record "container cluster" "FAILED ($((SECONDS - t0))s)"; fi
fi

# ---- 7b. Jepsen-style no-loss test of replication (skips itself without docker) -----------
if [ "${TEST_SKIP_DOCKER:-0}" != 1 ] && [ "${TEST_SKIP_NO_LOSS:-0}" != 1 ]; then
    say "no-loss test (tests/docker/no_loss.sh)"
    t0=$SECONDS
    if VENV="$VENV" bash tests/docker/no_loss.sh; then record "no-loss test" "ok ($((SECONDS - t0))s)"
    else record "no-loss test" "FAILED ($((SECONDS - t0))s)"; fi
fi

# ---- 7c. broker removal through the admin API, under load (skips itself without docker) ----
if [ "${TEST_SKIP_DOCKER:-0}" != 1 ] && [ "${TEST_SKIP_REMOVAL:-0}" != 1 ]; then
    say "removal test (tests/docker/removal.sh)"
    t0=$SECONDS
    if VENV="$VENV" bash tests/docker/removal.sh; then record "removal test" "ok ($((SECONDS - t0))s)"
    else record "removal test" "FAILED ($((SECONDS - t0))s)"; fi
fi

# ---- 8. librdkafka regression suite ------------------------------------------------------
if [ "${TEST_LIBRDKAFKA:-1}" = 1 ]; then
    say "librdkafka regression suite"
    t0=$SECONDS
    if bash tests/librdkafka/run.sh; then record "librdkafka suite" "ok ($((SECONDS - t0))s)"
    else record "librdkafka suite" "FAILED ($((SECONDS - t0))s)"; fi
fi

# ---- summary -----------------------------------------------------------------------------
say "summary"
failed=0
for k in "${ORDER[@]}"; do
    printf '  %-18s %s\n' "$k" "${RESULT[$k]}"
    case "${RESULT[$k]}" in FAILED*) failed=1 ;; esac
done
[ ${#ORDER[@]} -gt 0 ] || die "no test stage ran"
if [ $failed = 1 ]; then
    echo "tests/run.sh: FAILED"
    exit 1
fi
echo "tests/run.sh: all stages passed"
