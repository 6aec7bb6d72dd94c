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

container_pytest "no-loss test" "$([ "${NO_LOSS_SKIP_BUILD:-0}" = 1 ] && echo 0 || echo 1)" test_no_loss.py "$@"
