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

container_pytest "container cluster tests" 1 test_cluster.py "$@"
