#!/usr/bin/env bash
# Container cluster tests: builds the images, then runs tests/docker/test_cluster.py, which
# starts a KafkaCluster of 3 controllers and 3 brokers exactly as `operator render` renders
# it (tests/docker/cluster.py) and tests it from the host: clients through the EXTERNAL
# listeners, KRaft failover (SIGKILL and graceful), fencing, a wiped controller rejoining.
#
#   bash tests/docker/cluster.sh [PYTEST_ARGS...]     (skips, exit 0, without docker)
#
# FAILOVER_RESULTS=FILE keeps the measured failover times as JSON.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=../lib.sh
source "$ROOT/tests/lib.sh"

if ! command -v docker >/dev/null; then
    echo "SKIP: docker is not installed; the container cluster tests did not run"
    exit 0
fi
VENV="${VENV:-$ROOT/tests/.work/venv}"
"$VENV/bin/python" -c 'import confluent_kafka, pytest' 2>/dev/null \
    || die "no Kafka clients or pytest in $VENV: run 'bash tests/run.sh' once (it creates the venv)"
# pod_to_docker.py parses the render with the host's python3 and PyYAML.
ensure_apt python3-yaml

bash tests/docker/build-images.sh
say "container cluster tests (pytest tests/docker/test_cluster.py)"
cd tests/docker
"$VENV/bin/python" -m pytest -v -s -p no:cacheprovider test_cluster.py "$@"
