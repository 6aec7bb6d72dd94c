"""Fixtures that run the real broker binary for the client tests.

Every test gets its own broker: a fresh temp dir, storage formatted with
`broker storage format`, free loopback ports, started with `broker start -c`.
Per-test properties come from `@pytest.mark.broker_props({...})`.  When a test
fails, the broker's stderr is attached to the report.

`TEST_CLUSTER=combined3` gives every test a cluster of three combined nodes
(`process.roles=broker,controller` on each, all three voters) behind the same
fixture interface: `bootstrap` lists the three nodes, topic defaults are those
of a 3-node cluster, and restart()/kill9() act on the whole cluster.
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
# "single" (default): one combined node per test; "combined3": three combined nodes
CLUSTER_MODE = os.environ.get("TEST_CLUSTER", "single")
CLUSTER_SIZE = 3
# What a user of a 3-node cluster configures: every partition on all three nodes, and an
# acks=all write needs two of them, so one node may be down without losing availability.
CLUSTER_DEFAULTS = {
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
    "offsets.topic.replication.factor": "3",
    "transaction.state.log.replication.factor": "3",
    "transaction.state.log.min.isr": "2",
}


def broker_bin() -> Path:
    path = Path(os.environ.get("BROKER_BIN", REPO_ROOT / "target" / "debug" / "broker"))
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


_GIVEN_PORTS: set[int] = set()


def free_port() -> int:
    """A loopback port free now and never handed out before in this run: the kernel may offer
    a just-closed port again, and two nodes of one cluster must not both be given it."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _GIVEN_PORTS:
            _GIVEN_PORTS.add(port)
            return port


class BrokerProcess:
    """One combined node (broker+controller roles) on loopback: a single-node cluster, or one
    voter of a cluster when the caller passes the controller port and the voter list."""

    def __init__(self, workdir: Path, extra_props: dict | None = None, node_id: int = 1,
                 controller_port: int | None = None, voters: str | None = None):
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.node_id = node_id
        self.data_dir = workdir / "data"
        self.config_path = workdir / "server.properties"
        self.stderr_path = workdir / "broker.stderr"
        self.port = free_port()
        self.controller_port = controller_port or free_port()
        self.http_port = free_port()
        self.props = {
            "process.roles": "broker,controller",
            "node.id": str(node_id),
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "controller.quorum.voters": voters or f"{node_id}@127.0.0.1:{self.controller_port}",
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

    def format(self, cluster_id: str | None = None) -> None:
        self.write_config()
        if cluster_id is None:
            cluster_id = new_cluster_id()
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
        self.send_term()
        return self.wait_stopped(timeout)

    def send_term(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait_stopped(self, timeout: float = 20) -> int | None:
        """Waits for the exit after send_term(); SIGKILL if it does not exit in time."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
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

    def leader(self, topic: str, partition: int = 0) -> "BrokerProcess":
        """The node leading `topic`/`partition`: this one, the only node."""
        return self

    def metric(self, name: str) -> int:
        """The value of gauge `name` on this node's /metrics."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics", timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return int(float(line.split()[1]))
        raise AssertionError(f"node {self.node_id} exports no metric {name}")

    def wait_metadata_settled(self, timeout: float = 20) -> None:
        wait_metadata_settled([self], timeout)


def leaderless_partitions(port: int) -> list[str]:
    """`topic-partition` of every partition without a leader in the node's own Metadata."""
    import kwire  # the tests' raw protocol helper, next to this file
    c = kwire.Conn(port)
    try:
        c.send(kwire.metadata_v4(1, None, auto_create=False))
        md = kwire.parse_metadata_v4(c.response(1))
    finally:
        c.close()
    return [f"{name}-{idx}" for name, (_, parts) in md.items() for idx, err, leader in parts if leader < 0]


def wait_metadata_settled(nodes: list[BrokerProcess], timeout: float = 20) -> None:
    """Waits until every node has applied all metadata committed when called.

    Nodes apply the metadata log each at its own pace, so after an admin change
    two requests answered by different nodes may disagree for a moment (as on
    Kafka). Tests that read back a change call this first.
    """
    committed = max(n.metric("kafka_server_raftmetrics_high_watermark") for n in nodes)
    deadline = time.monotonic() + timeout
    while True:
        behind = [n.node_id for n in nodes
                  if n.metric("kafka_server_broker_metadata_metrics_last_applied_record_offset") < committed - 1]
        if not behind:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"nodes {behind} did not apply metadata up to offset {committed - 1} in {timeout}s")
        time.sleep(0.05)


def new_cluster_id() -> str:
    cp = subprocess.run([str(broker_bin()), "storage", "random-uuid"], capture_output=True, text=True, timeout=60)
    cluster_id = cp.stdout.strip()
    assert cp.returncode == 0 and cluster_id, f"`broker storage random-uuid` failed: {cp.stderr}"
    return cluster_id


class ClusterProcess:
    """Three combined nodes, all voters, behind BrokerProcess's interface.

    `bootstrap` lists every node; `port`, `http_port`, `proc` and `data_dir` are the first
    node's (what a test that speaks to "the broker" over a raw socket talks to); start, stop,
    restart and kill9 act on every node at once, as the single-node versions act on the whole
    single-node cluster.
    """

    def __init__(self, workdir: Path, extra_props: dict | None = None):
        self.workdir = workdir
        ports = [free_port() for _ in range(CLUSTER_SIZE)]
        voters = ",".join(f"{i + 1}@127.0.0.1:{port}" for i, port in enumerate(ports))
        props = {**CLUSTER_DEFAULTS, **(extra_props or {})}
        self.nodes = [BrokerProcess(workdir / f"node-{i + 1}", props, node_id=i + 1, controller_port=port,
                                    voters=voters)
                      for i, port in enumerate(ports)]

    # the first node stands for "the broker" where a test needs one address or process
    @property
    def first(self) -> BrokerProcess:
        return self.nodes[0]

    @property
    def props(self) -> dict:
        return self.first.props

    @property
    def port(self) -> int:
        return self.first.port

    @property
    def http_port(self) -> int:
        return self.first.http_port

    @property
    def proc(self) -> subprocess.Popen | None:
        return self.first.proc

    @property
    def data_dir(self) -> Path:
        return self.first.data_dir

    @property
    def starts(self) -> int:
        return self.first.starts

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes)

    def format(self) -> None:
        self.cluster_id = new_cluster_id()
        for n in self.nodes:
            n.format(self.cluster_id)

    def start(self, wait: bool = True) -> None:
        # no node becomes ready before a quorum of voters runs: start them all, then wait
        for n in self.nodes:
            n.start(wait=False)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Every node answers /readyz 200, and every node's Metadata has a leader for every
        partition: after a whole-cluster stop the last node's partitions are leaderless until
        it is back, and a client that sees no leader fails some calls (ListOffsets) at once."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        for n in self.nodes:
            n.wait_ready(max(1.0, deadline - time.monotonic()))
        ready_at = time.monotonic()
        while True:
            leaderless = {n.node_id: leaderless_partitions(n.port) for n in self.nodes}
            if not any(leaderless.values()):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster ready but partitions have no leader after {timeout}s: {leaderless}\n"
                                   f"{self.stderr_tail()}")
            time.sleep(0.1)
        for n in self.nodes:
            n._note(f"cluster ready after {ready_at - t0:.1f}s, every partition led after "
                    f"{time.monotonic() - t0:.1f}s")

    def alive(self) -> bool:
        return all(n.alive() for n in self.nodes)

    def stop(self, timeout: float = 20) -> None:
        # SIGTERM to all at once: stopping them in turn would make the last one wait for a
        # quorum that is already gone
        for n in self.nodes:
            n.send_term()
        for n in self.nodes:
            n.wait_stopped(timeout)

    def kill9(self) -> None:
        for n in self.nodes:
            n.kill9()

    def restart(self, hard: bool = False) -> None:
        """Whole-cluster restart: every node stops (SIGTERM, or SIGKILL when hard), then all start."""
        if hard:
            self.kill9()
        else:
            self.stop()
        self.start()

    def stderr_tail(self, max_bytes: int = 60_000) -> str:
        return "\n".join(f"----- node {n.node_id} ({n.workdir}) -----\n{n.stderr_tail(max_bytes // CLUSTER_SIZE)}"
                         for n in self.nodes)

    def wait_metadata_settled(self, timeout: float = 20) -> None:
        wait_metadata_settled(self.nodes, timeout)

    def readyz(self) -> int:
        """200 when every node is ready, else the first other answer."""
        codes = [n.readyz() for n in self.nodes]
        return next((c for c in codes if c != 200), 200)

    def leader(self, topic: str, partition: int = 0) -> BrokerProcess:
        """The node that leads `topic`/`partition` now, from a Metadata request."""
        from confluent_kafka.admin import AdminClient  # only needed here, after the venv is set up
        md = AdminClient({"bootstrap.servers": self.bootstrap}).list_topics(topic, timeout=10)
        leader_id = md.topics[topic].partitions[partition].leader
        for n in self.nodes:
            if n.node_id == leader_id:
                return n
        raise AssertionError(f"{topic}/{partition} has leader {leader_id}, not a node of this cluster")


# -- pytest plumbing ----------------------------------------------------------

def pytest_configure(config):
    config.addinivalue_line("markers", "broker_props(dict): extra server.properties for this test's broker")
    config.addinivalue_line("markers", "soak: long test, runs only with TEST_SOAK=1")
    config.addinivalue_line("markers", "single_node(reason): only meaningful on one node; skipped with TEST_CLUSTER")
    if CLUSTER_MODE not in ("single", "combined3"):
        raise pytest.UsageError(f"TEST_CLUSTER={CLUSTER_MODE!r}: expected 'combined3' (or unset)")


def pytest_report_header(config):
    return f"broker fixture: {'3 combined nodes' if CLUSTER_MODE == 'combined3' else 'single combined node'}"


def pytest_collection_modifyitems(config, items):
    soak = os.environ.get("TEST_SOAK") == "1"
    for item in items:
        if "soak" in item.keywords and not soak:
            item.add_marker(pytest.mark.skip(reason="soak test: set TEST_SOAK=1"))
        marker = item.get_closest_marker("single_node")
        if marker is not None and CLUSTER_MODE != "single":
            why = marker.args[0] if marker.args else "single-node test"
            item.add_marker(pytest.mark.skip(reason=f"single node only: {why}"))


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
            for n in getattr(b, "nodes", [b]):
                name = f"broker {i} node {n.node_id}" if hasattr(b, "nodes") else f"broker {i}"
                rep.sections.append((f"{name} stderr ({n.workdir})", n.stderr_tail()))


@pytest.fixture(scope="session", autouse=True)
def _check_binary():
    if not broker_bin().exists():
        pytest.fail(f"broker binary not found at {broker_bin()} (build it or set BROKER_BIN)", pytrace=False)


@pytest.fixture
def broker_factory(request):
    """Returns make(extra_props=None, start=True) -> BrokerProcess (a ClusterProcess with
    TEST_CLUSTER=combined3); all are stopped at teardown."""
    made: list[BrokerProcess | ClusterProcess] = []
    request.node._brokers = made
    keep = os.environ.get("TEST_KEEP_DIRS") == "1"

    def make(extra_props: dict | None = None, start: bool = True) -> BrokerProcess | ClusterProcess:
        workdir = Path(tempfile.mkdtemp(prefix="e2e-broker-"))
        kind = ClusterProcess if CLUSTER_MODE == "combined3" else BrokerProcess
        b = kind(workdir, extra_props)
        made.append(b)
        b.format()
        if start:
            b.start()
        return b

    yield make
    for b in made:
        if isinstance(b, ClusterProcess):
            # no clean stop needed at teardown, and a whole-cluster SIGTERM costs seconds: the
            # last node waits for a controller that is already gone
            b.kill9()
        else:
            b.stop()
    failed = getattr(request.node, "rep_failed", False)
    for b in made:
        if not keep and not failed:
            shutil.rmtree(b.workdir, ignore_errors=True)


@pytest.fixture
def broker(broker_factory, request) -> BrokerProcess | ClusterProcess:
    marker = request.node.get_closest_marker("broker_props")
    props = marker.args[0] if marker else None
    return broker_factory(props)


@pytest.fixture
def topic_name(request) -> str:
    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:80]
    return f"{base}-{uuid.uuid4().hex[:8]}"
