"""A KafkaCluster in Docker containers, exactly as the operator renders it.

`operator render` (in the operator image) prints the ConfigMaps, StatefulSets and Services of
a manifest; this harness does what Kubernetes would do with them on one machine:

- every ConfigMap's data is written, unchanged, to a directory that is bind-mounted where the
  pod mounts the ConfigMap (a pod picks its own file through $(POD_NAME));
- every pod gets a Docker volume for its claim, its init container (storage format) runs, then
  its main container, translated by pod_to_docker.py (image, args, env, mounts, user,
  read-only root), on a private network where the pod's DNS name is a network alias;
- the EXTERNAL listener (NodePort, advertised as 127.0.1.<ordinal>:<nodePortBase+ordinal>) is
  published on exactly that address, as a NodePort on that node would forward it; every pod's
  admin HTTP port (/metrics, /readyz) is published on 127.0.0.1:<free port>.

Everything is named with a unique prefix and labelled with it, so cleanup() removes all
containers, volumes and the network, also after a failure.

    with Cluster(controllers=3, brokers=3) as c:
        c.bootstrap()            # host:port list of the brokers' external listeners
        c.kill(c.pod("kc-controller-0"))
"""

import json
import os
import random
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid

import pod_to_docker

HERE = os.path.dirname(os.path.abspath(__file__))
BROKER_IMAGE = os.environ.get("BROKER_IMAGE", "kafka-broker:dev")
OPERATOR_IMAGE = os.environ.get("OPERATOR_IMAGE", "kafka-operator:dev")
ADMIN_PORT = 8080
LABEL = "kafka-container-cluster"
# Host interpreter for pod_to_docker.py's YAML parsing (the test venv has no PyYAML).
HOST_PYTHON = os.environ.get("HOST_PYTHON", "python3")


class DockerError(RuntimeError):
    pass


def docker(*args, input=None, timeout=180, check=True):
    """Runs the docker CLI; returns its stdout. Raises DockerError with stderr on failure."""
    done = subprocess.run(["docker", *args], input=input, capture_output=True, text=True,
                          timeout=timeout)
    if check and done.returncode != 0:
        raise DockerError(f"docker {' '.join(args[:3])}...: {done.stderr.strip()}")
    return done.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_node_port_base(brokers):
    """A random nodePortBase whose ports are free on the addresses the brokers are published
    on (127.0.1.<ordinal>): another cluster, e.g. a parallel run, may hold some."""
    for _ in range(100):
        base = random.randrange(30000, 32000 - brokers)
        try:
            for ordinal in range(brokers):
                with socket.socket() as s:
                    s.bind((f"127.0.1.{ordinal}", base + ordinal))
            return base
        except OSError:
            continue
    raise RuntimeError("no free nodePortBase in 30000-32000")


def http_get(url, timeout=1.0):
    """(status, body) of a GET; (None, error) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (OSError, urllib.error.URLError) as e:
        return None, str(e)


def parse_metrics(text):
    """Unlabelled samples of a Prometheus text exposition: {name: float}."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, _, value = line.partition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


def properties(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def listener_map(value):
    """`NAME://host:port,...` -> {NAME: (host, port)}."""
    out = {}
    for item in filter(None, value.split(",")):
        name, rest = item.split("://", 1)
        host, _, port = rest.rpartition(":")
        out[name] = (host, int(port))
    return out


class Pod:
    """One pod of a StatefulSet, as a container (same name) with its own volume."""

    def __init__(self, cluster, sts, ordinal, props):
        self.cluster = cluster
        self.sts = sts
        self.ordinal = ordinal
        self.name = pod_to_docker.pod_name(sts, ordinal)
        self.host = pod_to_docker.pod_host(sts, ordinal)
        self.props = props
        self.node_id = int(props["node.id"])
        self.is_controller = "controller" in props["process.roles"].split(",")
        self.container = f"{cluster.prefix}-{self.name}"
        self.volume = f"{cluster.prefix}-{self.name}-data"
        self.admin_port = free_port()
        # (host address, host port, container port) the NodePort would forward.
        self.external = None
        advertised = listener_map(props.get("advertised.listeners", ""))
        if "EXTERNAL" in advertised:
            host, port = advertised["EXTERNAL"]
            self.external = (host, port, listener_map(props["listeners"])["EXTERNAL"][1])

    def __repr__(self):
        return f"<{self.name} node {self.node_id}>"

    @property
    def admin_url(self):
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def bootstrap(self):
        return f"{self.external[0]}:{self.external[1]}"

    def run_args(self, which):
        return pod_to_docker.run_args(self.sts, self.ordinal, which, self.cluster.config_dirs,
                                      self.volume, {})


class Cluster:
    def __init__(self, controllers=3, brokers=3, controller_config=None, broker_config=None,
                 topic_defaults=None, name="kc", namespace="kafka"):
        self.prefix = f"kcc-{uuid.uuid4().hex[:8]}"
        self.name = name
        self.namespace = namespace
        self.network = self.prefix
        self.node_port_base = free_node_port_base(brokers)
        self.manifest = {
            "apiVersion": "streaming.example.dev/v1alpha1",
            "kind": "KafkaCluster",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "image": BROKER_IMAGE,
                "controllers": {"replicas": controllers, "config": controller_config or {}},
                "brokers": {"replicas": brokers, "config": broker_config or {}},
                "listeners": {"external": {
                    "type": "NodePort",
                    "advertisedHostTemplate": "127.0.1.{ordinal}",
                    "nodePortBase": self.node_port_base,
                }},
                "topicDefaults": topic_defaults or {"replicationFactor": 3,
                                                    "minInsyncReplicas": 2},
            },
        }
        self.work = tempfile.mkdtemp(prefix=f"{self.prefix}-")
        self.pods = []
        self.config_dirs = {}
        self.cluster_id = None
        self.render = None

    # ---- lifecycle --------------------------------------------------------------------------

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, *exc):
        self.cleanup()

    def start(self, ready_timeout=120):
        self.cluster_id = docker("run", "--rm", "--read-only", BROKER_IMAGE,
                                 "storage", "random-uuid").strip()
        self.render_manifest()
        docker("network", "create", "--label", f"{LABEL}={self.prefix}", self.network)
        for pod in self.pods:
            docker("volume", "create", "--label", f"{LABEL}={self.prefix}", pod.volume)
            self.run_init(pod)
        for pod in self.pods:
            self.run_main(pod)
        self.wait_ready(self.pods, ready_timeout)
        self.wait_brokers_listed()

    def wait_brokers_listed(self, timeout=30):
        """Waits until every broker's metadata names every broker: a broker is ready once
        its own image shows it unfenced; the others apply that record a moment later."""
        ids = {b.node_id for b in self.brokers}
        for pod in self.brokers:
            wait_for(f"all brokers in {pod.name}'s metadata",
                     lambda: set(metadata(pod.bootstrap)["brokers"]) == ids, timeout)

    def render_manifest(self):
        """`operator render` of the manifest; writes the ConfigMaps and creates the Pods."""
        manifest = os.path.join(self.work, "cluster.json")
        with open(manifest, "w") as f:
            json.dump(self.manifest, f)  # JSON is YAML
        text = docker("run", "--rm", "-i", "--read-only", OPERATOR_IMAGE,
                      "render", "/dev/stdin", self.cluster_id, input=open(manifest).read())
        self.render = os.path.join(self.work, "render.yaml")
        with open(self.render, "w") as f:
            f.write(text)
        docs = json.loads(subprocess.run(
            [HOST_PYTHON, os.path.join(HERE, "pod_to_docker.py"), "json", self.render],
            check=True, capture_output=True, text=True).stdout)
        data = {}
        for doc in docs:
            if doc["kind"] == "ConfigMap":
                self.config_dirs[doc["metadata"]["name"]] = self.write_config_map(doc)
                data.update(doc.get("data", {}))
        self.services = [d for d in docs if d["kind"] == "Service"]
        for sts in (d for d in docs if d["kind"] == "StatefulSet"):
            for ordinal in range(sts["spec"]["replicas"]):
                name = pod_to_docker.pod_name(sts, ordinal)
                self.pods.append(Pod(self, sts, ordinal, properties(data[f"{name}.properties"])))
        self.check_node_ports()

    def write_config_map(self, doc):
        # What the kubelet projects: one file per key, readable by the pod's user.
        path = os.path.join(self.work, "configmaps", doc["metadata"]["name"])
        os.makedirs(path, mode=0o755)
        os.chmod(path, 0o755)
        for key, value in doc.get("data", {}).items():
            with open(os.path.join(path, key), "w") as f:
                f.write(value)
            os.chmod(os.path.join(path, key), 0o644)
        return path

    def check_node_ports(self):
        # The NodePort Services must forward what the brokers advertise, or publishing the
        # advertised port would hide an operator bug.
        node_ports = {p.get("nodePort") for s in self.services for p in s["spec"].get("ports", [])
                      if s["spec"].get("type") == "NodePort"}
        for pod in self.brokers:
            assert pod.external, f"{pod.name} has no EXTERNAL listener"
            assert pod.external[1] in node_ports, \
                f"{pod.name} advertises port {pod.external[1]}, no NodePort Service has it"

    def run_init(self, pod):
        docker("run", "--rm", "--network", self.network, "--label", f"{LABEL}={self.prefix}",
               *pod.run_args("init"))

    def run_main(self, pod):
        publish = ["-p", f"127.0.0.1:{pod.admin_port}:{ADMIN_PORT}"]
        if pod.external:
            host, port, target = pod.external
            publish += ["-p", f"{host}:{port}:{target}"]
        docker("run", "-d", "--name", pod.container, "--network", self.network,
               "--label", f"{LABEL}={self.prefix}", *publish, *pod.run_args("main"))

    def cleanup(self):
        label = f"label={LABEL}={self.prefix}"
        ids = docker("ps", "-aq", "--filter", label, check=False).split()
        if ids:
            docker("rm", "-f", "-v", *ids, check=False)
        vols = docker("volume", "ls", "-q", "--filter", label, check=False).split()
        if vols:
            docker("volume", "rm", "-f", *vols, check=False)
        docker("network", "rm", self.network, check=False)
        shutil.rmtree(self.work, ignore_errors=True)

    # ---- pods -------------------------------------------------------------------------------

    @property
    def controllers(self):
        return [p for p in self.pods if p.is_controller]

    @property
    def brokers(self):
        return [p for p in self.pods if not p.is_controller]

    def pod(self, name_or_id):
        for p in self.pods:
            if name_or_id in (p.name, p.node_id):
                return p
        raise KeyError(name_or_id)

    def bootstrap(self, pods=None):
        return ",".join(p.bootstrap for p in (pods or self.brokers))

    def kill(self, pod):
        """SIGKILL: no shutdown work at all."""
        docker("kill", "--signal", "KILL", pod.container)

    def signal(self, pod, sig="TERM"):
        """Sends a signal and returns at once (a graceful stop then runs in the node)."""
        docker("kill", "--signal", sig, pod.container)

    def stop(self, pod, timeout=60):
        """SIGTERM, waits for the exit (SIGKILL after `timeout` s, as a grace period)."""
        docker("stop", "--time", str(timeout), pod.container, timeout=timeout + 30)

    def wait_exit(self, pod, timeout=60):
        return int(docker("wait", pod.container, timeout=timeout).strip())

    def start_pod(self, pod, ready_timeout=90):
        docker("start", pod.container)
        if ready_timeout:
            self.wait_ready([pod], ready_timeout)

    def pause(self, pod):
        docker("pause", pod.container)

    def unpause(self, pod):
        docker("unpause", pod.container)

    def disconnect(self, pod):
        """Cuts the pod off the network: no peer and no client reaches it, nor it them."""
        docker("network", "disconnect", "--force", self.network, pod.container)

    def reconnect(self, pod):
        docker("network", "connect", "--alias", pod.host, self.network, pod.container)

    def logs(self, pod, tail=200):
        done = subprocess.run(["docker", "logs", "--tail", str(tail), pod.container],
                              capture_output=True, text=True)
        return done.stdout + done.stderr

    def running(self, pod):
        return docker("inspect", "-f", "{{.State.Running}}", pod.container,
                      check=False).strip() == "true"

    def wipe(self, pod, ready_timeout=90):
        """The pod loses its disk: container and volume are deleted, then recreated from
        scratch with the init container, as a new PersistentVolumeClaim would be."""
        docker("rm", "-f", pod.container)
        docker("volume", "rm", "-f", pod.volume)
        docker("volume", "create", "--label", f"{LABEL}={self.prefix}", pod.volume)
        self.run_init(pod)
        self.run_main(pod)
        if ready_timeout:
            self.wait_ready([pod], ready_timeout)

    # ---- health and the quorum --------------------------------------------------------------

    def is_ready(self, pod):
        return http_get(pod.admin_url + "/readyz")[0] == 200

    def wait_ready(self, pods, timeout=90):
        deadline = time.monotonic() + timeout
        waiting = list(pods)
        while waiting:
            for pod in list(waiting):
                if not self.running(pod):
                    raise AssertionError(f"{pod.name} exited:\n{self.logs(pod, 40)}")
                if self.is_ready(pod):
                    waiting.remove(pod)
            if waiting and time.monotonic() > deadline:
                tails = "\n".join(f"--- {p.name}\n{self.logs(p, 30)}" for p in waiting)
                raise AssertionError(f"not ready after {timeout}s: {waiting}\n{tails}")
            time.sleep(0.2)

    def metrics(self, pod, timeout=1.0):
        status, body = http_get(pod.admin_url + "/metrics", timeout)
        return parse_metrics(body) if status == 200 else None

    def quorum(self, pod, timeout=1.0):
        """(leader, epoch, high watermark) as `pod` reports them, or None."""
        m = self.metrics(pod, timeout)
        if not m or "kafka_server_raftmetrics_current_leader" not in m:
            return None
        return (int(m["kafka_server_raftmetrics_current_leader"]),
                int(m["kafka_server_raftmetrics_current_epoch"]),
                int(m["kafka_server_raftmetrics_high_watermark"]))

    def leader(self, exclude=()):
        """(leader id, epoch) of the newest epoch any controller not in `exclude` reports."""
        views = [self.quorum(p, 0.5) for p in self.controllers if p not in exclude]
        known = [v for v in views if v and v[0] >= 0]
        return max(known, key=lambda v: v[1])[:2] if known else None

    def settled_leader(self, timeout=30):
        """The (leader, epoch) every running controller agrees on."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            views = {(self.quorum(p, 0.5) or (-1, -1, 0))[:2] for p in self.controllers}
            if len(views) == 1 and next(iter(views))[0] >= 0:
                return next(iter(views))
            time.sleep(0.05)
        raise AssertionError(f"controllers do not agree on a leader: {views}")

    def await_new_leader(self, old, old_epoch, timeout=30, poll=0.015):
        """Polls the controllers other than `old` until one reports a leader with a higher
        epoch; returns (leader, epoch, seconds waited)."""
        survivors = [p for p in self.controllers if p.node_id != old]
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            for pod in survivors:
                view = self.quorum(pod, 0.2)
                if view and view[0] >= 0 and view[0] != old and view[1] > old_epoch:
                    return view[0], view[1], time.monotonic() - started
            time.sleep(poll)
        raise AssertionError(f"no new quorum leader {timeout}s after node {old} went away")


# ---- a minimal Metadata request, to ask one given broker ---------------------------------
# Clients pick the broker their metadata requests go to; these tests need a named one.

def _string(data, at):
    (n,) = struct.unpack_from(">h", data, at)
    at += 2
    if n < 0:
        return None, at
    return data[at:at + n].decode(), at + n


def metadata(address, timeout=5.0):
    """Metadata v1 of every topic, asked of the broker at `address` ("host:port"):
    {"brokers": {id: (host, port)}, "topics": {name: {partition: (leader, isr)}}}."""
    host, port = address.rsplit(":", 1)
    client = b"cluster-test"
    body = struct.pack(">hhih", 3, 1, 1, len(client)) + client + struct.pack(">i", -1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", _read(s, 4))
        data = _read(s, size)
    at = 4  # correlation id
    brokers, topics = {}, {}
    (n,) = struct.unpack_from(">i", data, at)
    at += 4
    for _ in range(n):
        (node,) = struct.unpack_from(">i", data, at)
        bhost, at = _string(data, at + 4)
        (bport,) = struct.unpack_from(">i", data, at)
        _, at = _string(data, at + 4)  # rack
        brokers[node] = (bhost, bport)
    at += 4  # controller id
    (n,) = struct.unpack_from(">i", data, at)
    at += 4
    for _ in range(n):
        (error,) = struct.unpack_from(">h", data, at)
        name, at = _string(data, at + 2)
        at += 1  # is_internal
        (parts,) = struct.unpack_from(">i", data, at)
        at += 4
        partitions = {}
        for _ in range(parts):
            _, index, leader = struct.unpack_from(">hii", data, at)
            at += 10
            lists = []
            for _ in range(2):  # replicas, isr
                (k,) = struct.unpack_from(">i", data, at)
                lists.append(list(struct.unpack_from(f">{k}i", data, at + 4)))
                at += 4 + 4 * k
            partitions[index] = (leader, lists[1])
        if error == 0:
            topics[name] = partitions
    return {"brokers": brokers, "topics": topics}


def _read(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return buf


def wait_for(what, check, timeout=30, interval=0.1):
    """Polls `check` until it returns a true value (returned); fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as e:  # a broker that is still coming up refuses connections
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last})")


if __name__ == "__main__":
    # Manual use: start a cluster, print how to reach it, keep it until Ctrl-C.
    with Cluster() as c:
        print("bootstrap:", c.bootstrap())
        for p in c.pods:
            print(f"{p.name}: node {p.node_id}, admin {p.admin_url}")
        print("leader:", c.settled_leader())
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
