"""A Jepsen-style no-loss test of partition replication, in containers.

3 controllers + 3 brokers (cluster.py, as `operator render` renders them), one topic with
RF=3 and min.insync.replicas=2. Several idempotent producers (acks=all) write unique values
(`p<producer>-<seq>`) for NO_LOSS_SECONDS while a nemesis injects one fault at a time on one
broker or on the active controller: SIGKILL then start, SIGTERM then start, pause then
unpause, network disconnect then reconnect, isolation from its peers only (clients still
reach it) then rejoin, each held a few seconds, then healed, and the ISRs let recover before
the next. Then, with everything healed, a checker

- consumes every partition from its start to its high watermark and counts lost
  (acknowledged, absent), duplicated, reordered (one producer's acknowledged values of a
  partition out of acknowledgement order), unexpected (never sent) and misplaced values
  (found elsewhere than the partition/offset they were acknowledged at);
- reads every replica of every partition with a raw Fetch v11 (served by followers too,
  KIP-392) and compares the record batches below the high watermark;
- stops the brokers cleanly, copies each one's partition directories out of its pod and
  compares the `.log` segment files' batches below the high watermark of the brokers'
  `replication-offset-checkpoint` files (the minimum over the replicas).

    bash tests/docker/no_loss.sh                      (default 90 s of faults)
    NO_LOSS_SECONDS=600 bash tests/docker/no_loss.sh  (longer, on demand)

NO_LOSS_SEED fixes the nemesis' choices; NO_LOSS_PRODUCERS (4), NO_LOSS_RATE (messages per
second per producer, 250) and NO_LOSS_PARTITIONS (6) shape the workload.
"""

import datetime
import logging
import os
import random
import shutil
import struct
import subprocess
import sys
import threading
import time

import pytest
from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, docker, metadata, wait_for  # noqa: E402
import no_loss_checker as checker  # noqa: E402

SECONDS = float(os.environ.get("NO_LOSS_SECONDS", "90"))
SEED = int(os.environ.get("NO_LOSS_SEED", str(random.randrange(1 << 30))))
PRODUCERS = int(os.environ.get("NO_LOSS_PRODUCERS", "4"))
RATE = float(os.environ.get("NO_LOSS_RATE", "250"))
PARTITIONS = int(os.environ.get("NO_LOSS_PARTITIONS", "6"))
TOPIC = "no-loss"
DATA_DIR = "/var/lib/kafka/data"  # log.dirs of the rendered broker pods
CHECKPOINT = "replication-offset-checkpoint"
# Faults must take effect within seconds: a stopped broker is fenced after 3 s, a silent
# follower leaves the ISR after 3 s.
TIMEOUTS = {"broker.session.timeout.ms": "3000", "broker.heartbeat.interval.ms": "500"}
BROKER_CONFIG = {**TIMEOUTS, "offsets.topic.num.partitions": "1"}
# Broker keys the operator does not let a manifest set (operator/src/config.rs ALLOWED_KEYS):
# appended to the brokers' rendered properties files, as if the manifest could.
BROKER_EXTRA = {"replica.lag.time.max.ms": "3000", "unclean.leader.election.enable": "false"}
# Long enough that a producer's messages outlive any one fault (so most are acknowledged).
MESSAGE_TIMEOUT_MS = 45000
# kill: SIGKILL, then start; term: SIGTERM (graceful stop), then start; pause: every
# process of the pod frozen (docker pause); disconnect: off the network, for peers and
# clients alike; isolate: cut from every peer while clients still reach it (a leader that
# does not know it is deposed keeps receiving produce requests, and must not acknowledge them).
FAULTS = ("kill", "term", "pause", "disconnect", "isolate")
HOLD_S = (2.0, 6.0)
RECOVER_TIMEOUT_S = 90
# A healthy run acknowledges almost everything; a cluster that takes no writes, none.
MIN_ACKED_SHARE = 0.5

LOG_DIR = os.environ.get("NO_LOSS_LOG_DIR", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".work", "no-loss-logs"))

pytestmark = pytest.mark.timeout(int(SECONDS) + 600)


def stamp():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3]


class Log:
    """Timestamped events of the run (faults, heals, producer errors), printed as they
    happen and kept for the report."""

    def __init__(self):
        self.start = time.monotonic()
        self.lines = []
        self.lock = threading.Lock()

    def __call__(self, text):
        line = f"{stamp()} +{time.monotonic() - self.start:7.2f}s  {text}"
        with self.lock:
            self.lines.append(line)
        print(line, flush=True)


def client_logger():
    """librdkafka's log lines (connections refused and closed by every fault) go to
    LOG_DIR/clients.log instead of the test's output."""
    logger = logging.getLogger("no-loss-clients")
    if not logger.handlers:
        os.makedirs(LOG_DIR, exist_ok=True)
        handler = logging.FileHandler(os.path.join(LOG_DIR, "clients.log"))
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
    return logger


# ---- workload ----------------------------------------------------------------------------

class Writer(threading.Thread):
    """One idempotent acks=all producer writing `p<id>-<seq>` round-robin over the
    partitions of `topic` at about `rate` messages a second, recording every outcome in
    the history."""

    def __init__(self, ident, bootstrap, history, log, topic=TOPIC, partitions=PARTITIONS,
                 rate=RATE):
        super().__init__(daemon=True, name=f"producer-{ident}")
        self.pid, self.history, self.log = ident, history, log
        self.topic, self.partitions, self.rate = topic, partitions, rate
        self.stop = threading.Event()
        self.acks = 0
        self.producer = Producer({
            "bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
            "linger.ms": 5, "message.timeout.ms": MESSAGE_TIMEOUT_MS,
            "request.timeout.ms": 5000, "error_cb": self.on_error,
            "client.id": f"no-loss-{ident}", "logger": client_logger()})
        self.errors = {}
        self.crashed = None

    def on_error(self, err):
        if err.fatal():
            self.history.fatal.append((self.pid, str(err)))
            self.log(f"producer {self.pid}: FATAL {err}")

    def delivered(self, err, msg):
        value = msg.value().decode()
        if err is not None:
            self.history.record_failure(value, str(err))
            self.errors[err.name()] = self.errors.get(err.name(), 0) + 1
        else:
            self.history.record_ack(value, msg.partition(), msg.offset(), self.acks,
                                    time.monotonic())
            self.acks += 1

    def run(self):
        try:
            self.write()
        except Exception as e:  # kept for the test to fail on
            self.crashed = repr(e)
            self.log(f"producer {self.pid}: crashed: {e!r}")

    def write(self):
        seq = 0
        started = time.monotonic()
        while not self.stop.is_set():
            value = f"p{self.pid}-{seq}"
            partition = seq % self.partitions
            try:
                self.producer.produce(self.topic, value.encode(), partition=partition,
                                      on_delivery=self.delivered)
            except BufferError:
                self.producer.poll(0.05)
                continue
            self.history.record_sent(self.pid, value, partition, seq, time.monotonic())
            seq += 1
            self.producer.poll(0)
            ahead = started + seq / self.rate - time.monotonic()
            if ahead > 0:
                self.producer.poll(ahead)
        left = self.producer.flush(MESSAGE_TIMEOUT_MS / 1000 + 15)
        if left:
            self.log(f"producer {self.pid}: {left} messages without a delivery report")
        self.producer = None  # destroyed here, before the brokers stop


# ---- nemesis -----------------------------------------------------------------------------

class Nemesis(threading.Thread):
    """One fault at a time, on one broker or on the active controller; each is healed and
    the cluster let recover (all pods ready, every ISR full) before the next."""

    def __init__(self, cluster, log, rng):
        super().__init__(daemon=True, name="nemesis")
        self.cluster, self.log, self.rng = cluster, log, rng
        self.stop = threading.Event()
        self.faults = []   # (kind, pod name, held seconds)
        self.kinds, self.targets = [], []
        self.errors = []

    def run(self):
        try:
            while not self.stop.is_set():
                self.one_fault()
                if not self.stop.is_set():
                    self.stop.wait(self.rng.uniform(1.0, 3.0))
        except Exception as e:  # kept for the test to fail on, after the checks
            self.errors.append(repr(e))
            self.log(f"nemesis error: {e!r}")

    def next_choice(self):
        """(fault, target): every fault kind once per round of kinds and every target (each
        broker, the active controller) once per round of targets, each round shuffled, so
        that a short run has them all."""
        if not self.kinds:
            self.kinds = list(FAULTS if can_isolate() else
                              [k for k in FAULTS if k != "isolate"])
            self.rng.shuffle(self.kinds)
        if not self.targets:
            self.targets = [*self.cluster.brokers, "active controller"]
            self.rng.shuffle(self.targets)
        return self.kinds.pop(), self.targets.pop()

    def one_fault(self):
        c = self.cluster
        kind, target = self.next_choice()
        if target == "active controller":
            leader = c.leader()
            target = c.pod(leader[0]) if leader else self.rng.choice(c.controllers)
            what = f"{target.name} (active controller)"
        else:
            what = target.name
        hold = self.rng.uniform(*HOLD_S)
        self.log(f"FAULT {kind} {what}, held {hold:.1f}s")
        if kind == "kill":
            c.kill(target)
            c.wait_exit(target)
        elif kind == "term":
            c.stop(target, timeout=30)
        elif kind == "pause":
            c.pause(target)
        elif kind == "isolate":
            isolate(c, target)
        else:
            c.disconnect(target)
        time.sleep(hold)
        if kind in ("kill", "term"):
            c.start_pod(target, ready_timeout=0)
        elif kind == "pause":
            c.unpause(target)
        elif kind == "isolate":
            rejoin(c, target)
        else:
            c.reconnect(target)
        self.log(f"HEAL  {kind} {what}")
        self.faults.append((kind, what, hold))
        healed = time.monotonic()
        recover(c)
        self.log(f"recovered ({time.monotonic() - healed:.1f}s: all pods ready, ISRs full)")


def can_isolate():
    """`isolate` enters the pod's network namespace: root, nsenter and iptables needed."""
    return os.geteuid() == 0 and bool(shutil.which("nsenter")) and bool(shutil.which("iptables"))


def _in_netns(pod, *args):
    pid = docker("inspect", "-f", "{{.State.Pid}}", pod.container).strip()
    subprocess.run(["nsenter", "-t", pid, "-n", *args], check=True, capture_output=True,
                   timeout=30)


def isolate(cluster, pod):
    """Drops everything between the pod and the other pods, in the pod's own network
    namespace; the network's gateway, through which the host's published ports reach it,
    stays open, so clients keep their connections."""
    subnet, gateway = docker("network", "inspect", "-f",
                             "{{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}}",
                             cluster.network).split()
    for chain, side in (("INPUT", "-s"), ("OUTPUT", "-d")):
        _in_netns(pod, "iptables", "-A", chain, side, gateway, "-j", "ACCEPT")
        _in_netns(pod, "iptables", "-A", chain, side, subnet, "-j", "DROP")


def rejoin(cluster, pod):
    _in_netns(pod, "iptables", "-F", "INPUT")
    _in_netns(pod, "iptables", "-F", "OUTPUT")


def isr_full(cluster):
    """True when a ready broker reports every partition of the topic led and with all
    three replicas in its ISR."""
    for pod in cluster.brokers:
        if cluster.is_ready(pod):
            parts = metadata(pod.bootstrap, timeout=2)["topics"].get(TOPIC, {})
            return len(parts) == PARTITIONS and all(
                leader >= 0 and len(isr) == len(cluster.brokers)
                for leader, isr in parts.values())
    return False


def recover(cluster, timeout=RECOVER_TIMEOUT_S):
    cluster.wait_ready(cluster.pods, timeout)
    cluster.settled_leader(timeout)
    wait_for("every ISR full", lambda: isr_full(cluster), timeout, 0.2)


# ---- the checks --------------------------------------------------------------------------

def consume_everything(cluster, topic=TOPIC, partitions=PARTITIONS):
    """{partition: [(offset, value)]}: every partition of `topic` read with confluent-kafka
    from its start to its high watermark."""
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap(), "group.id": "no-loss-check",
                         "logger": client_logger(),
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "fetch.max.bytes": 8 << 20})
    try:
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
                for p in range(partitions)}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        logs = {p: [] for p in range(partitions)}
        done = {p for p, end in ends.items() if end == 0}
        deadline = time.monotonic() + 120
        while len(done) < partitions:
            assert time.monotonic() < deadline, \
                f"could not read to the high watermarks {ends}: read {[len(v) for v in logs.values()]}"
            for m in consumer.consume(num_messages=5000, timeout=1.0):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        if m.offset() >= ends[m.partition()]:
                            done.add(m.partition())
                        continue
                    raise KafkaException(m.error())
                if m.offset() < ends[m.partition()]:
                    logs[m.partition()].append((m.offset(), m.value()))
                if m.offset() + 1 >= ends[m.partition()]:
                    done.add(m.partition())
        return logs, ends
    finally:
        consumer.close()


COMPARED = {"served": 0, "on disk": 0}  # record batches compared, over all replicas


def settled_high_watermarks(cluster, timeout=30):
    """{partition: {broker id: (high watermark, batches)}} once every replica reports the
    same high watermark (followers learn it with their next fetch)."""
    deadline = time.monotonic() + timeout
    while True:
        views = {p: {b.node_id: checker.replica_batches(b.bootstrap, TOPIC, p)
                     for b in cluster.brokers} for p in range(PARTITIONS)}
        agreed = all(len({hw for hw, _ in v.values()}) == 1 for v in views.values())
        if agreed or time.monotonic() > deadline:
            return views
        time.sleep(1)


def check_replicas_live(cluster):
    """Mismatches between the replicas as they serve reads (raw Fetch v11 to each), and
    the leader epochs each partition's batches were written in."""
    mismatches, epochs = [], {}
    for p, views in settled_high_watermarks(cluster).items():
        hw = min(hw for hw, _ in views.values())
        found = checker.compare_replicas({r: bs for r, (_, bs) in views.items()}, hw)
        mismatches += [f"{TOPIC}-{p} (served, high watermark {hw}): {m}" for m in found]
        epochs[p] = len({b[3] for _, bs in views.values() for b in bs})
        COMPARED["served"] += sum(sum(b[0] < hw for b in bs) for _, bs in views.values())
    return mismatches, epochs


def check_replicas_on_disk(cluster):
    """Stops every broker cleanly and compares the segment files of each partition's
    replicas below the checkpointed high watermark (the minimum over the replicas)."""
    for pod in cluster.brokers:
        cluster.stop(pod, timeout=60)
    disk = {}   # broker -> {partition: batches}
    marks = {}  # broker -> {(topic, partition): high watermark}
    for pod in cluster.brokers:
        files = checker.untar(subprocess.run(
            ["docker", "cp", f"{pod.container}:{DATA_DIR}/.", "-"],
            check=True, capture_output=True, timeout=120).stdout)
        marks[pod.node_id] = checker.read_checkpoint(
            files[f"./{CHECKPOINT}"].decode())
        disk[pod.node_id] = {}
        for p in range(PARTITIONS):
            prefix = f"./{TOPIC}-{p}/"
            disk[pod.node_id][p] = checker.segment_batches(
                {n[len(prefix):]: d for n, d in files.items() if n.startswith(prefix)})
    mismatches = []
    for p in range(PARTITIONS):
        hw = min(marks[b].get((TOPIC, p), 0) for b in marks)
        found = checker.compare_replicas({b: disk[b][p] for b in disk}, hw)
        mismatches += [f"{TOPIC}-{p} (on disk, checkpointed high watermark {hw}): {m}"
                       for m in found]
        COMPARED["on disk"] += sum(sum(b[0] < hw for b in disk[r][p]) for r in disk)
    return mismatches, {p: min(marks[b].get((TOPIC, p), 0) for b in marks)
                        for p in range(PARTITIONS)}


class NoLossCluster(Cluster):
    """The harness' cluster with BROKER_EXTRA added to every broker pod's properties."""

    def write_config_map(self, doc):
        for key in list(doc.get("data", {})):
            if key.endswith(".properties") and "process.roles=broker\n" in doc["data"][key]:
                extra = "".join(f"{k}={v}\n" for k, v in BROKER_EXTRA.items())
                doc["data"][key] = doc["data"][key].rstrip("\n") + "\n" + extra
        return super().write_config_map(doc)


# ---- the test ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster(request):
    c = NoLossCluster(controllers=3, brokers=3, controller_config=dict(TIMEOUTS),
                broker_config=dict(BROKER_CONFIG))
    shutil.rmtree(LOG_DIR, ignore_errors=True)
    with c:
        yield c
        if request.session.testsfailed:
            os.makedirs(LOG_DIR, exist_ok=True)
            for pod in c.pods:
                with open(os.path.join(LOG_DIR, f"{pod.name}.log"), "w") as f:
                    f.write(c.logs(pod, "all"))
            print(f"\ncontainer logs of the failed run: {LOG_DIR}")


def create_topic(cluster):
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap()})
    admin.create_topics([NewTopic(TOPIC, num_partitions=PARTITIONS, replication_factor=3,
                                  config={"min.insync.replicas": "2"})],
                        operation_timeout=30)[TOPIC].result(60)
    wait_for("the topic's ISRs full", lambda: isr_full(cluster), 60, 0.2)


# The checker itself, on made-up histories and logs: each class is seen when it happens.

def test_checker_counts_every_class():
    h = checker.History()
    for seq in range(6):
        h.record_sent(0, f"p0-{seq}", 0, seq, float(seq))
    for seq in range(5):  # p0-5 is never acknowledged
        h.record_ack(f"p0-{seq}", 0, seq, seq, float(seq))
    clean = {0: [(i, f"p0-{i}".encode()) for i in range(6)]}
    counts, _ = checker.classify(h, clean)
    assert (counts["lost"], counts["duplicated"], counts["reordered"], counts["unexpected"],
            counts["misplaced"], counts["indeterminate"], counts["indeterminate present"]) \
        == (0, 0, 0, 0, 0, 1, 1)
    # p0-1 lost, p0-2 and p0-3 swapped, p0-4 twice, a value never sent.
    bad = {0: [(0, b"p0-0"), (1, b"p0-3"), (2, b"p0-2"), (3, b"p0-4"), (4, b"p0-4"),
               (5, b"p9-0")]}
    counts, details = checker.classify(h, bad)
    assert details["lost"] == ["p0-1"]
    assert counts["duplicated"] == 1 and counts["unexpected"] == 1
    assert counts["reordered"] == 1 and details["reordered"][0][2] == "p0-2"
    assert counts["misplaced"] == 2  # p0-3 and p0-4 not at their acknowledged offsets


def fake_batch(base, count, crc, epoch=0):
    body = struct.pack(">ibIhi", epoch, 2, crc, 0, count - 1) + bytes(49 - 11 + 10)
    return struct.pack(">qi", base, len(body)) + body


def test_checker_compares_replicas():
    data = fake_batch(0, 3, 11) + fake_batch(3, 2, 12) + fake_batch(5, 4, 13)[:30]
    batches = checker.parse_batches(data)
    assert [b[:3] for b in batches] == [(0, 2, 11), (3, 1, 12)]  # the torn tail left out
    assert checker.compare_replicas({1: batches, 2: list(batches)}, 5) == []
    assert checker.compare_replicas({1: batches, 2: batches[:1]}, 5)  # short
    assert checker.compare_replicas({1: batches, 2: []}, 5)  # empty
    other = [batches[0], (3, 1, 99, 0)]
    assert checker.compare_replicas({1: batches, 2: other}, 5)  # another CRC
    assert checker.compare_replicas({1: batches, 2: other}, 3) == []  # above the watermark
    assert checker.read_checkpoint("0\n2\nt 0 5\nt 1 7\n") == {("t", 0): 5, ("t", 1): 7}


def test_no_acknowledged_write_is_lost(cluster):
    log = Log()
    rng = random.Random(SEED)
    log(f"seed {SEED}, {SECONDS:.0f}s of faults, {PRODUCERS} producers at {RATE:.0f}/s, "
        f"{PARTITIONS} partitions")
    create_topic(cluster)
    history = checker.History()
    writers = [Writer(i, cluster.bootstrap(), history, log) for i in range(PRODUCERS)]
    for w in writers:
        w.start()
    wait_for("first acknowledgements", lambda: len(history.acked) >= 100, 60)
    nemesis = Nemesis(cluster, log, rng)
    nemesis.start()
    ends_at = time.monotonic() + SECONDS
    while time.monotonic() < ends_at and nemesis.is_alive():  # it stops on an error
        time.sleep(0.5)
    nemesis.stop.set()
    nemesis.join(RECOVER_TIMEOUT_S * 3 + 60)
    # A quiet stretch with everything healed: the producers' last messages go through.
    time.sleep(3)
    for w in writers:
        w.stop.set()
    for w in writers:
        w.join(MESSAGE_TIMEOUT_MS / 1000 + 30)
    log("workload stopped; final heal")
    try:
        recover(cluster)
    except AssertionError as e:  # checked anyway: what is readable, and whether replicas agree
        nemesis.errors.append(f"final heal: {e}")
        log(f"final heal failed: {e}")

    logs, ends = consume_everything(cluster)
    counts, details = checker.classify(history, logs)
    live, epochs = check_replicas_live(cluster)
    disk, checkpointed = check_replicas_on_disk(cluster)
    mismatches = live + disk

    errors = {}
    for w in writers:
        for name, n in w.errors.items():
            errors[name] = errors.get(name, 0) + n
    counts["faults injected"] = len(nemesis.faults)
    counts["replica mismatches"] = len(mismatches)
    counts["fatal producer errors"] = len(history.fatal)
    counts["acknowledged twice"] = len(history.acked_twice)
    counts["acknowledged, no offset"] = history.acked_without_offset
    with open(os.path.join(LOG_DIR, "events.log"), "w") as f:
        f.write("\n".join(log.lines) + "\n")
    print("\n---- no-loss test: faults ----")
    for kind in FAULTS:
        print(f"  {kind:11s} {sum(f[0] == kind for f in nemesis.faults)}"
              f" (on the active controller: "
              f"{sum(f[0] == kind and 'controller' in f[1] for f in nemesis.faults)})")
    print(f"---- delivery errors: {errors or 'none'}")
    print(f"---- high watermarks: {ends} (checkpointed on disk: {checkpointed})")
    print(f"---- leader epochs that wrote batches, per partition: {epochs}")
    print(f"---- record batches compared between replicas (all replicas): {COMPARED}")
    print("---- no-loss test: counts ----")
    for name, value in counts.items():
        print(f"  {name:24s} {value}")
    for name, examples in details.items():
        if examples:
            print(f"  {name}, first examples: {examples}")
    for m in mismatches[:20]:
        print(f"  MISMATCH {m}")
    if details["lost"]:
        # When each lost value was sent, against the fault log, to tell which fault lost it.
        for value in details["lost"][:5]:
            sent = history.sent[value][3] - log.start
            acked = history.acked[value]
            print(f"  lost {value}: sent +{sent:.2f}s, acknowledged at "
                  f"{acked[0]}/{acked[1]} +{acked[3] - log.start:.2f}s")

    assert not nemesis.errors, f"the cluster did not recover from a fault: {nemesis.errors}"
    assert len(nemesis.faults) >= 3, f"only {len(nemesis.faults)} faults injected"
    assert counts["lost"] == 0, f"acknowledged values lost: {details['lost']}"
    assert counts["duplicated"] == 0, f"duplicated values: {details['duplicated']}"
    assert counts["reordered"] == 0, f"reordered values: {details['reordered']}"
    assert counts["unexpected"] == 0, f"values never sent: {details['unexpected']}"
    assert counts["misplaced"] == 0, f"values not where acknowledged: {details['misplaced']}"
    assert not mismatches, f"replicas differ: {mismatches[:5]}"
    assert not history.fatal, f"fatal producer errors: {history.fatal}"
    assert not history.acked_twice, f"values acknowledged twice: {history.acked_twice[:10]}"
    assert not [w.crashed for w in writers if w.crashed], [w.crashed for w in writers]
    assert counts["acknowledged"] >= MIN_ACKED_SHARE * counts["sent"], \
        f"only {counts['acknowledged']} of {counts['sent']} acknowledged"
    assert sum(ends.values()) >= counts["acknowledged"]
