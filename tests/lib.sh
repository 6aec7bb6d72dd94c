# Shared shell helpers for tests/run.sh and tests/librdkafka/run.sh (sourced, not run).

if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

say() { printf '\n\033[1;36m==> %s\033[0m\n' "$*"; }
warn() { printf '\033[1;33mWARN: %s\033[0m\n' "$*" >&2; }
die() { printf '\033[1;31mERROR: %s\033[0m\n' "$*" >&2; exit 1; }

_APT_UPDATED=""
apt_update_once() {
    if [ -z "$_APT_UPDATED" ]; then
        $SUDO apt-get update -q >/dev/null || die "apt-get update failed"
        _APT_UPDATED=1
    fi
}

# ensure_apt PKG...: installs the Debian packages that are not installed yet.
ensure_apt() {
    local missing=() p
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$p")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "apt-get install ${missing[*]}"
    apt_update_once
    $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
}

# ensure_deb_src: enables source packages (for `apt-get source`) on the configured mirrors.
ensure_deb_src() {
    local f=/etc/apt/sources.list.d/debian.sources changed=""
    if [ -f "$f" ] && ! grep -q '^Types:.*deb-src' "$f"; then
        $SUDO sed -i 's/^Types: deb$/Types: deb deb-src/' "$f"
        changed=1
    fi
    if [ -f /etc/apt/sources.list ] && grep -q '^deb ' /etc/apt/sources.list \
        && ! grep -q '^deb-src ' /etc/apt/sources.list; then
        grep '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' | $SUDO tee -a /etc/apt/sources.list >/dev/null
        changed=1
    fi
    if [ -n "$changed" ]; then
        _APT_UPDATED=""
    fi
    apt_update_once
}

# free_port: prints a free TCP port on 127.0.0.1, never one this script printed before: ports
# are picked before the broker binds them, so the kernel could hand one out twice. The ports
# given are kept in a file named after the script's pid ($$ is the same in every subshell).
free_port() {
    python3 - "${TMPDIR:-/tmp}/.free-ports.$$" <<'EOF'
import socket, sys
path = sys.argv[1]
try:
    given = set(open(path).read().split())
except FileNotFoundError:
    given = set()
while True:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = str(s.getsockname()[1])
    s.close()
    if port not in given:
        break
with open(path, "a") as f:
    f.write(port + "\n")
print(port)
EOF
}

# wait_ready PORT HTTP_PORT PID TIMEOUT: waits for the client port and /readyz; fails if PID exits.
wait_ready() {
    python3 - "$@" <<'EOF'
import os, socket, sys, time, urllib.request
port, http, pid, timeout = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
end = time.time() + timeout
while time.time() < end:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("broker exited before it was ready")
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
        if urllib.request.urlopen(f"http://127.0.0.1:{http}/readyz", timeout=2).status == 200:
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.2)
sys.exit(f"broker not ready after {timeout}s")
EOF
}

# container_pytest WHAT BUILD FILE [PYTEST_ARGS...]: runs tests/docker/FILE with the test venv
# (VENV), after building the images unless BUILD is 0; skips, passing, without docker.
container_pytest() {
    local what="$1" build="$2" file="$3"
    shift 3
    if ! command -v docker >/dev/null; then
        echo "SKIP: docker is not installed; the $what did not run"
        return 0
    fi
    local venv
    venv="$(cd "${VENV:-$ROOT/tests/.work/venv}" 2>/dev/null && pwd)" \
        || die "no test venv at ${VENV:-$ROOT/tests/.work/venv}: run 'bash tests/run.sh' once (it creates it)"
    "$venv/bin/python" -c 'import confluent_kafka, pytest' 2>/dev/null \
        || die "no Kafka clients or pytest in $venv: run 'bash tests/run.sh' once (it creates the venv)"
    # pod_to_docker.py parses the operator's render with the host's python3 and PyYAML.
    ensure_apt python3-yaml
    if [ "$build" != 0 ]; then
        bash "$ROOT/tests/docker/build-images.sh"
    fi
    say "$what (pytest tests/docker/$file)"
    (cd "$ROOT/tests/docker" && "$venv/bin/python" -m pytest -v -s -p no:cacheprovider "$file" "$@")
}
