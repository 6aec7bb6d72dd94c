"""Fixtures that run the real broker binary for the client tests.

Every test gets its own broker: a fresh temp dir, storage formatted with
`broker storage format`, free loopback ports, started with `broker start -c`.
Per-test properties come from `@pytest.mark.broker_props({...})`.  When a test
fails, the broker's stderr is attached to the report.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = float(os.environ.get("BROKER_START_TIMEOUT", "60"))


def broker_bin() -> Path:
    path = Path(os.environ.get("BROKER_BIN", REPO_ROOT / "target" / "debug" / "broker"))
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BrokerProcess:
    """One single-node broker (broker+controller roles) on loopback."""

    def __init__(self, workdir: Path, extra_props: dict | None = None):
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.config_path = workdir / "server.properties"
        self.stderr_path = workdir / "broker.stderr"
        self.port = free_port()
        self.controller_port = free_port()
        self.http_port = free_port()
        self.props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "auto.create.topics.enable": "true",
            "group.initial.rebalance.delay.ms": "0",
            "offsets.topic.num.partitions": "4",
            "offsets.topic.replication.factor": "1",
            "admin.http.listener": f"127.0.0.1:{self.http_port}",
        }
        for k, v in (extra_props or {}).items():
            if v is None:
                self.props.pop(k, None)
            else:
                self.props[k] = str(v)
        self.proc: subprocess.Popen | None = None
        self._stderr_file = None
        self.starts = 0

    # -- lifecycle -------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def write_config(self) -> None:
        self.config_path.write_text("".join(f"{k}={v}\n" for k, v in self.props.items()))

    def run_cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cp = subprocess.run([str(broker_bin()), *args], capture_output=True, text=True, timeout=60)
        if check and cp.returncode != 0:
            raise RuntimeError(
                f"`broker {' '.join(args)}` exited {cp.returncode}\nstdout:\n{cp.stdout}\nstderr:\n{cp.stderr}"
            )
        return cp

    def format(self) -> None:
        self.write_config()
        cluster_id = self.run_cli("storage", "random-uuid").stdout.strip()
        assert cluster_id, "`broker storage random-uuid` printed nothing"
        self.cluster_id = cluster_id
        self.run_cli("storage", "format", "-t", cluster_id, "-c", str(self.config_path))

    def start(self, wait: bool = True) -> None:
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        self.write_config()
        self._stderr_file = open(self.stderr_path, "ab")
        self._stderr_file.write(f"\n===== start #{self.starts + 1} at {time.strftime('%H:%M:%S')} =====\n".encode())
        self._stderr_file.flush()
        self.proc = subprocess.Popen(
            [str(broker_bin()), "start", "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._stderr_file,
            stderr=self._stderr_file,
            env={**os.environ, "RUST_BACKTRACE": "1", "NO_COLOR": "1"},
        )
        self.starts += 1
        if wait:
            self.wait_ready()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last = "nothing tried"
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"broker exited with {self.proc.returncode} before ready\n{self.stderr_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
                    last = f"/readyz answered {r.status}"
            except (OSError, urllib.error.URLError) as e:
                last = repr(e)
            time.sleep(0.1)
        raise RuntimeError(f"broker not ready after {timeout}s ({last})\n{self.stderr_tail()}")

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not exit in time. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                self._note(f"broker ignored SIGTERM for {timeout}s; killed")
        self._close_log()
        return self.proc.returncode

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._close_log()

    def restart(self, hard: bool = False) -> None:
        """Stop (SIGTERM, or SIGKILL when hard) and start again on the same data dir and ports."""
        if hard:
            self.kill9()
        else:
            self.stop()
        self.start()

    def _note(self, msg: str) -> None:
        if self._stderr_file and not self._stderr_file.closed:
            self._stderr_file.write(f"[harness] {msg}\n".encode())

    def _close_log(self) -> None:
        if self._stderr_file is not None and not self._stderr_file.closed:
            self._stderr_file.close()

    def stderr_tail(self, max_bytes: int = 60_000) -> str:
        try:
            data = self.stderr_path.read_bytes()
        except OSError:
            return "(no broker stderr)"
        if len(data) > max_bytes:
            data = b"...(cut)...\n" + data[-max_bytes:]
        return data.decode(errors="replace")

    def readyz(self) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/readyz", timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code


# -- pytest plumbing ----------------------------------------------------------

def pytest_configure(config):
    config.addinivalue_line("markers", "broker_props(dict): extra server.properties for this test's broker")
    config.addinivalue_line("markers", "soak: long test, runs only with TEST_SOAK=1")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("TEST_SOAK") == "1":
        return
    skip = pytest.mark.skip(reason="soak test: set TEST_SOAK=1")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


def _cut_lines(text: str, head: int = 100, tail: int = 200) -> str:
    lines = text.splitlines()
    if len(lines) <= head + tail + 10:
        return text
    return "\n".join(lines[:head] + [f"... ({len(lines) - head - tail} lines cut) ..."] + lines[-tail:])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    # client libraries can log thousands of identical lines when a broker misbehaves: keep
    # the head and tail of every captured section so that a failure report stays readable
    rep.sections = [(name, _cut_lines(text)) if name.startswith("Captured") else (name, text)
                    for name, text in rep.sections]
    if rep.failed:
        item.rep_failed = True
        for i, b in enumerate(getattr(item, "_brokers", [])):
            rep.sections.append((f"broker {i} stderr ({b.workdir})", b.stderr_tail()))


@pytest.fixture(scope="session", autouse=True)
def _check_binary():
    if not broker_bin().exists():
        pytest.fail(f"broker binary not found at {broker_bin()} (build it or set BROKER_BIN)", pytrace=False)


@pytest.fixture
def broker_factory(request):
    """Returns make(extra_props=None, start=True) -> BrokerProcess; all are stopped at teardown."""
    made: list[BrokerProcess] = []
    request.node._brokers = made
    keep = os.environ.get("TEST_KEEP_DIRS") == "1"

    def make(extra_props: dict | None = None, start: bool = True) -> BrokerProcess:
        workdir = Path(tempfile.mkdtemp(prefix="e2e-broker-"))
        b = BrokerProcess(workdir, extra_props)
        made.append(b)
        b.format()
        if start:
            b.start()
        return b

    yield make
    for b in made:
        b.stop()
    failed = getattr(request.node, "rep_failed", False)
    for b in made:
        if not keep and not failed:
            shutil.rmtree(b.workdir, ignore_errors=True)


@pytest.fixture
def broker(broker_factory, request) -> BrokerProcess:
    marker = request.node.get_closest_marker("broker_props")
    props = marker.args[0] if marker else None
    return broker_factory(props)


@pytest.fixture
def topic_name(request) -> str:
    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:80]
    return f"{base}-{uuid.uuid4().hex[:8]}"
