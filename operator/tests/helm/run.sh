#!/usr/bin/env bash
# Render and lint the operator's Helm chart with Helm's engine (helm-python-sdk) and check
# the rendered objects. Creates a virtualenv (default .venv) with the pinned requirements.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
venv="${VENV:-$root/.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q -r "$here/requirements.txt"
exec "$venv/bin/python" -m pytest -q "$here" "$@"
