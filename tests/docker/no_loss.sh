#!/usr/bin/env bash
# The Jepsen-style no-loss test of replication (tests/docker/test_no_loss.py): 3 controllers
# + 3 brokers in containers as the operator renders them, idempotent acks=all producers
# while a nemesis kills, stops, pauses and partitions one broker or the active controller at
# a time; then every acknowledged value must be there, once, in order, and all replicas equal.
#
#   bash tests/docker/no_loss.sh [PYTEST_ARGS...]      (skips, exit 0, without docker)
#   NO_LOSS_SECONDS=600 bash tests/docker/no_loss.sh   (longer than the CI default of 90 s)
#
# NO_LOSS_SEED=N repeats a run's nemesis choices (the seed is printed first);
# NO_LOSS_SKIP_BUILD=1 uses the images as they are (no build-images.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=../lib.sh
source "$ROOT/tests/lib.sh"

if ! command -v docker >/dev/null; then
    echo "SKIP: docker is not installed; the no-loss test did not run"
    exit 0
fi
VENV="${VENV:-$ROOT/tests/.work/venv}"
"$VENV/bin/python" -c 'import confluent_kafka, pytest' 2>/dev/null \
    || die "no Kafka clients or pytest in $VENV: run 'bash tests/run.sh' once (it creates the venv)"
# The harness parses the operator's render with the host's python3 and PyYAML.
ensure_apt python3-yaml

if [ "${NO_LOSS_SKIP_BUILD:-0}" != 1 ]; then
    bash tests/docker/build-images.sh
fi
say "no-loss test (pytest tests/docker/test_no_loss.py, ${NO_LOSS_SECONDS:-90} s of faults)"
cd tests/docker
"$VENV/bin/python" -m pytest -v -s -p no:cacheprovider test_no_loss.py "$@"
