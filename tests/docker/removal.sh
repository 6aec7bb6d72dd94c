#!/usr/bin/env bash
# Broker removal through the admin API, in containers (tests/docker/test_removal.py): 3
# controllers + 4 brokers as the operator renders them, RF=2 and RF=3 topics with data,
# acks=all producers and a consumer group running while brokers are removed: a removal
# refused up front, one cancelled, one with the active controller killed midway, a second
# broker removed; nothing acknowledged may be lost and the group must not stall.
#
#   bash tests/docker/removal.sh [PYTEST_ARGS...]     (skips, exit 0, without docker)
#
# REMOVAL_SKIP_BUILD=1 uses the images as they are (no build-images.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=../lib.sh
source "$ROOT/tests/lib.sh"

container_pytest "removal test" "$([ "${REMOVAL_SKIP_BUILD:-0}" = 1 ] && echo 0 || echo 1)" \
    test_removal.py "$@"
