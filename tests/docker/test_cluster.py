"""KRaft and the operator's rendering in containers: 3 controllers + 3 brokers, rendered by
`operator render` and run by cluster.py as their pods would run, reached from the host through
the EXTERNAL (NodePort) listeners.

    bash tests/docker/cluster.sh        (builds the images, then runs this file)

FAILOVER_RESULTS=FILE makes the failover test write its samples there as JSON. After a failure
(or always, with CLUSTER_KEEP_LOGS=1) every pod's log is saved in CLUSTER_LOG_DIR (default
tests/.work/container-cluster-logs).
"""

import json
import os
import shutil
import statistics
import sys
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, metadata, wait_for  # noqa: E402

# Fencing timeouts: short, to keep the module fast, but a session must outlast a controller
# failover: a broker learns the new leader from its Raft fetches (up to one quorum request
# timeout, 2 s, if it asked the dead node) and only then heartbeats to it.
SESSION_TIMEOUT_MS = 4000
HEARTBEAT_MS = 500
TIMEOUTS = {"broker.session.timeout.ms": str(SESSION_TIMEOUT_MS),
            "broker.heartbeat.interval.ms": str(HEARTBEAT_MS)}
SAMPLES = int(os.environ.get("FAILOVER_SAMPLES", "3"))
# Bounds that a healthy quorum meets with a wide margin (fetch timeout 1 s, election timeout
# 0.5 s) but a regression (e.g. no pre-vote, no EndQuorumEpoch) does not.
KILL_BOUND_S = 5.0
GRACEFUL_BOUND_S = 2.0

LOG_DIR = os.environ.get("CLUSTER_LOG_DIR", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".work", "container-cluster-logs"))

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def cluster(request):
    c = Cluster(controllers=3, brokers=3,
                controller_config=dict(TIMEOUTS),
                broker_config={**TIMEOUTS, "group.initial.rebalance.delay.ms": "0",
                               "offsets.topic.num.partitions": "3"})
    shutil.rmtree(LOG_DIR, ignore_errors=True)
    with c:
        yield c
        if request.session.testsfailed or os.environ.get("CLUSTER_KEEP_LOGS"):
            # Whole logs of every pod, kept after the containers are gone.
            os.makedirs(LOG_DIR, exist_ok=True)
            for pod in c.pods:
                with open(os.path.join(LOG_DIR, f"{pod.name}.log"), "w") as f:
                    f.write(c.logs(pod, "all"))
            print(f"\ncontainer logs: {LOG_DIR}")


def admin(cluster, **extra):
    return AdminClient({"bootstrap.servers": cluster.bootstrap(), **extra})


def create_topic(cluster, name, partitions, rf=3, config=None):
    client = admin(cluster)  # kept referenced: a collected client fails its futures
    futures = client.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=rf, config=config or {})],
        operation_timeout=30)
    futures[name].result(60)
    # Every broker serves it once it has applied the record.
    for pod in cluster.brokers:
        wait_for(f"{name} on {pod.name}", lambda: topic_ready(pod, name, partitions), 30)


def topic_ready(pod, name, partitions):
    parts = metadata(pod.bootstrap)["topics"].get(name, {})
    return len(parts) == partitions and all(leader >= 0 for leader, _ in parts.values())


def leaders(pod, topic):
    return {p: leader for p, (leader, _) in metadata(pod.bootstrap)["topics"][topic].items()}


def produce(cluster, topic, messages, pods=None):
    """Produces (key, value) pairs with acks=all and idempotence; returns the delivery
    reports as (partition, offset, key, value) in produce order."""
    producer = Producer({"bootstrap.servers": cluster.bootstrap(pods), "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5,
                         "message.timeout.ms": 60000})
    reports, errors = [], []

    def delivered(err, msg):
        if err:
            errors.append(err)
        else:
            reports.append((msg.partition(), msg.offset(), msg.key(), msg.value()))

    for key, value in messages:
        while True:
            try:
                producer.produce(topic, value, key=key, on_delivery=delivered)
                break
            except BufferError:  # local queue full: let deliveries drain it
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(90) == 0, "records left unacknowledged"
    assert not errors, f"delivery failures: {errors[:5]}"
    return reports


def consume_all(cluster, topic, partitions, expected):
    """Reads every partition from the start until `expected` records; (partition, offset,
    key, value) tuples."""
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap(), "group.id": f"g-{topic}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got = []
    deadline = time.monotonic() + 90
    try:
        while len(got) < expected and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=1000, timeout=1.0):
                if m.error():
                    raise KafkaException(m.error())
                got.append((m.partition(), m.offset(), m.key(), m.value()))
    finally:
        consumer.close()
    return got


# ---- a. the rendered cluster serves clients -------------------------------------------------

def test_operator_rendered_cluster_serves_clients(cluster):
    assert all(cluster.is_ready(p) for p in cluster.pods)
    # Clients on the listener they came in on are told that listener's addresses: here the
    # EXTERNAL ones, 127.0.1.<ordinal>:<nodePortBase + ordinal>.
    for pod in cluster.brokers:
        told = metadata(pod.bootstrap)["brokers"]
        assert told == {b.node_id: (b.external[0], b.external[1]) for b in cluster.brokers}, told

    topic = "orders"
    create_topic(cluster, topic, 6, config={"min.insync.replicas": "2"})
    # 10k keyed records, values of varying length so that byte mix-ups show.
    sent = [(f"key-{i % 97}".encode(), f"{i:06d}:".encode() + bytes([i % 251]) * (i % 300))
            for i in range(10_000)]
    reports = produce(cluster, topic, sent)
    assert len(reports) == len(sent)
    got = consume_all(cluster, topic, 6, len(sent))
    assert len(got) == len(sent), f"produced {len(sent)}, consumed {len(got)}"
    assert sorted(got) == sorted(reports), "consumed records differ from the acknowledged ones"
    for p in range(6):
        sent_order = [(k, v) for part, _, k, v in reports if part == p]
        read_order = [(k, v) for part, _, k, v in sorted(got) if part == p]
        assert read_order == sent_order, f"partition {p}: order differs from produce order"
    # One key always lands in one partition.
    partition_of = {}
    for part, _, key, _ in got:
        assert partition_of.setdefault(key, part) == part, f"key {key} in two partitions"
    assert len({part for part, _, _, _ in got}) == 6


# ---- b. KRaft failover ----------------------------------------------------------------------

class TopicCreator(threading.Thread):
    """Creates topics one by one, each acknowledged before the next is asked for."""

    def __init__(self, cluster):
        super().__init__(daemon=True)
        self.admin = admin(cluster)
        self.stop = threading.Event()
        self.acked, self.failed = [], []  # (name, monotonic time)

    def run(self):
        i = 0
        while not self.stop.is_set():
            name = f"ft-{i:03d}"
            i += 1
            try:
                self.admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=3)],
                                         operation_timeout=20)[name].result(40)
                self.acked.append((name, time.monotonic()))
            except Exception as e:  # a creation caught by the failover: retried by name later
                self.failed.append((name, repr(e)))


class SteadyProducer(threading.Thread):
    """Produces to an existing topic without pause and timestamps every acknowledgement."""

    def __init__(self, cluster, topic):
        super().__init__(daemon=True)
        self.producer = Producer({"bootstrap.servers": cluster.bootstrap(), "acks": "all",
                                  "enable.idempotence": True, "linger.ms": 2,
                                  "message.timeout.ms": 60000})
        self.topic = topic
        self.stop = threading.Event()
        self.acks, self.errors = [], []

    def delivered(self, err, _msg):
        if err:
            self.errors.append(err)
        else:
            self.acks.append(time.monotonic())

    def run(self):
        i = 0
        while not self.stop.is_set():
            try:
                self.producer.produce(self.topic, b"v%d" % i, key=b"k%d" % (i % 8),
                                      on_delivery=self.delivered)
                i += 1
            except BufferError:
                pass
            self.producer.poll(0.002)
        self.producer.flush(60)


def failover_sample(cluster, graceful):
    """Stops the active controller (SIGTERM or SIGKILL), measures until a survivor reports a
    new leader in a higher epoch, then starts it again; returns the seconds it took."""
    leader, epoch = cluster.settled_leader()
    pod = cluster.pod(leader)
    started = time.monotonic()
    if graceful:
        cluster.signal(pod, "TERM")
    else:
        cluster.kill(pod)
    new_leader, new_epoch, _ = cluster.await_new_leader(leader, epoch)
    took = time.monotonic() - started
    code = cluster.wait_exit(pod)
    if graceful:
        assert code == 0, f"graceful stop exited {code}:\n{cluster.logs(pod, 40)}"
    cluster.start_pod(pod)
    return {"old": leader, "new": new_leader, "epochs": (epoch, new_epoch), "seconds": took}


def test_kraft_failover_while_topics_are_created(cluster):
    create_topic(cluster, "steady", 3)
    producer = SteadyProducer(cluster, "steady")
    creator = TopicCreator(cluster)
    producer.start()
    creator.start()
    try:
        # Both under way: the producer's first ack needs a producer id, which the
        # broker gets from the active controller.
        wait_for("a few topics created", lambda: len(creator.acked) >= 3, 60)
        wait_for("produce acknowledgements", lambda: len(producer.acks) >= 100, 60)
        leader, epoch = cluster.settled_leader()
        killed_at = time.monotonic()
        cluster.kill(cluster.pod(leader))
        new_leader, _, took = cluster.await_new_leader(leader, epoch)
        print(f"\nSIGKILL of active controller {leader} during topic creation: "
              f"node {new_leader} leads after {took * 1000:.0f} ms")
        # Creation and production go on with two controllers.
        wait_for("topics created after the failover",
                 lambda: sum(t > killed_at + took for _, t in creator.acked) >= 3, 60)
        time.sleep(1)
    finally:
        creator.stop.set()
        creator.join(60)
        producer.stop.set()
        producer.join(90)
    cluster.start_pod(cluster.pod(leader))

    acked = [name for name, _ in creator.acked]
    print(f"topics acknowledged: {len(acked)}, failed: {creator.failed}")
    # A creation caught by the failover may time out or be retried into "already exists";
    # one refused for want of brokers means the failover fenced a healthy broker.
    fenced = [f for f in creator.failed if "INVALID_REPLICATION_FACTOR" in f[1]]
    assert not fenced, f"creations refused, brokers fenced by the failover: {fenced}"
    for pod in cluster.brokers:
        wait_for(f"every acknowledged topic on {pod.name}",
                 lambda: set(acked) <= set(metadata(pod.bootstrap)["topics"]), 30)
    assert not producer.errors, f"producer failures: {producer.errors[:5]}"
    window = [t for t in producer.acks if killed_at <= t <= killed_at + took + 1.0]
    gap = max(b - a for a, b in zip(producer.acks, producer.acks[1:]) if b >= killed_at)
    print(f"producer acks: {len(producer.acks)} in all, {len(window)} from the kill to 1 s "
          f"after the new leader; longest pause between acks after the kill {gap * 1000:.0f} ms")
    assert window, "no produce acknowledgement while the controller failed over"
    assert any(t > killed_at + took + 1.0 for t in producer.acks)


def test_failover_times(cluster):
    results = {}
    for kind, graceful in (("SIGKILL", False), ("SIGTERM (graceful)", True)):
        results[kind] = [failover_sample(cluster, graceful) for _ in range(SAMPLES)]
    print()
    for kind, samples in results.items():
        ms = [s["seconds"] * 1000 for s in samples]
        print(f"{kind:20s} samples={len(ms)} min={min(ms):.0f} ms "
              f"median={statistics.median(ms):.0f} ms max={max(ms):.0f} ms "
              f"({', '.join(f'{m:.0f}' for m in ms)})")
    if os.environ.get("FAILOVER_RESULTS"):
        with open(os.environ["FAILOVER_RESULTS"], "w") as f:
            json.dump(results, f, indent=1)
    kill = max(s["seconds"] for s in results["SIGKILL"])
    graceful = max(s["seconds"] for s in results["SIGTERM (graceful)"])
    assert kill < KILL_BOUND_S, f"SIGKILL failover took {kill:.2f}s"
    assert graceful < GRACEFUL_BOUND_S, f"graceful failover took {graceful:.2f}s"


# ---- c. fencing -----------------------------------------------------------------------------

@pytest.mark.parametrize("cut", ["disconnect", "pause"])
def test_cut_off_broker_is_fenced_and_returns(cluster, cut):
    topic = f"fence-{cut}"
    create_topic(cluster, topic, 6, config={"min.insync.replicas": "2"})
    victim = cluster.brokers[-1]
    survivor = cluster.brokers[0]
    assert victim.node_id in leaders(survivor, topic).values()

    started = time.monotonic()
    cluster.disconnect(victim) if cut == "disconnect" else cluster.pause(victim)
    try:
        def moved():
            view = metadata(survivor.bootstrap)
            now = {p: leader for p, (leader, _) in view["topics"][topic].items()}
            fenced = victim.node_id not in view["brokers"]
            return fenced and all(leader >= 0 and leader != victim.node_id
                                  for leader in now.values())

        wait_for(f"{victim.name} fenced and its leaderships moved", moved, 30, 0.05)
        fenced_after = time.monotonic() - started
        print(f"\n{victim.name} ({cut}) fenced, leaderships moved after {fenced_after:.2f} s")
        # Not before its session can have expired (its last heartbeat may precede the cut).
        assert fenced_after >= (SESSION_TIMEOUT_MS - HEARTBEAT_MS) / 1000 - 0.25
        # The two others take writes with acks=all (min.insync.replicas=2).
        survivors = [b for b in cluster.brokers if b is not victim]
        produce(cluster, topic, [(b"k%d" % i, b"during") for i in range(200)], survivors)
    finally:
        cluster.reconnect(victim) if cut == "disconnect" else cluster.unpause(victim)

    # Back: unfenced (ready), listed again, and in sync again on every partition.
    cluster.wait_ready([victim], 60)
    wait_for(f"{victim.name} listed again",
             lambda: victim.node_id in metadata(survivor.bootstrap)["brokers"], 30)
    wait_for(f"{victim.name} back in every ISR", lambda: all(
        victim.node_id in isr for _, isr in metadata(survivor.bootstrap)["topics"][topic].values()),
        60)
    # It serves clients again: a new topic's partitions led by it take writes and reads.
    fresh = f"{topic}-after-{uuid.uuid4().hex[:4]}"
    create_topic(cluster, fresh, 3)
    assert victim.node_id in leaders(victim, fresh).values(), "the returned broker leads nothing"
    reports = produce(cluster, fresh, [(b"k%d" % i, b"after") for i in range(300)])
    assert len(consume_all(cluster, fresh, 3, len(reports))) == len(reports)


# ---- d. a controller that lost its disk ---------------------------------------------------

def test_wiped_controller_rejoins_and_catches_up(cluster):
    leader, _ = cluster.settled_leader()
    follower = next(p for p in cluster.controllers if p.node_id != leader)
    for i in range(3):
        create_topic(cluster, f"before-wipe-{i}", 1)
    cluster.wipe(follower)
    assert cluster.quorum(follower) is not None

    def caught_up():
        lead = cluster.quorum(cluster.pod(leader))
        own = cluster.quorum(follower)
        return lead and own and lead[2] > 0 and own[2] >= lead[2] and own[0] == leader

    wait_for(f"{follower.name}'s high watermark reaches the leader's", caught_up, 60, 0.1)
    # And it keeps following: later records reach it too.
    before = cluster.quorum(follower)[2]
    create_topic(cluster, "after-wipe", 1)
    wait_for(f"{follower.name} follows new records", caught_up, 30, 0.1)
    assert cluster.quorum(follower)[2] > before
