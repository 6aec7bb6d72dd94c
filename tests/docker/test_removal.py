"""Broker removal in containers: issue #6's acceptance, through the admin HTTP API.

3 controllers + 4 brokers (cluster.py, as `operator render` renders them), a topic with RF=2
and one with RF=3, both with data, idempotent acks=all producers on both and a consumer
group reading them the whole time. Then, in order:

1. a removal that would leave the RF=3 topic short (two of four brokers) is refused with
   422 REPLICATION_FACTOR_UNSATISFIABLE naming the topic, and excludes nobody;
2. a removal of the highest broker is cancelled midway: the broker is un-excluded and the
   cluster is healthy (every partition led, every ISR full);
3. the same broker is removed again and the active controller is SIGKILLed midway: the
   new controller resumes the removal and it completes with zero replicas on the broker;
4. the RF=3 topic is deleted (what an operator does to make room) and a second broker is
   removed, down to two brokers, with replication throttled to THROTTLE bytes/s: no
   broker copies faster than that.

Then the producers stop, and every acknowledged value must be there, once, in order
(no_loss_checker), and the consumer group's longest gap between two messages must stay
below MAX_STALL_S, the time a leader move may take.

    bash tests/docker/removal.sh
"""

import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                  NewTopic, ResourceType)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, metadata, wait_for  # noqa: E402
import no_loss_checker as checker  # noqa: E402
from test_no_loss import TIMEOUTS, Log, Writer, client_logger, consume_everything  # noqa: E402

TOPICS = {"removal-rf2": 2, "removal-rf3": 3}  # name -> replication factor
PARTITIONS = 6
RATE = 100  # messages a second per producer
FILL_BYTES = 12 << 20  # per topic, before the first move, so that moves take seconds
# A leader move is an election plus the client's metadata refresh; nothing else may pause
# the group's reading.
MAX_STALL_S = 10.0
MOVE_TIMEOUT_S = 240
# leader/follower.replication.throttled.rate of the second removal, on every broker.
THROTTLE = 1 << 20
THROTTLED_BYTES = {"leader": "kafka_server_leaderreplication_throttled_bytes_total",
                   "follower": "kafka_server_followerreplication_throttled_bytes_total"}

pytestmark = pytest.mark.timeout(1200)


# ---- the admin HTTP API --------------------------------------------------------------------

def admin_call(pod, method, path, body=None, timeout=15):
    """(status, parsed JSON or None) of one call to `pod`'s admin API."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(pod.admin_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            text = r.read().decode()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        text = e.read().decode(errors="replace")
        return e.code, json.loads(text) if text.startswith("{") else {"error": text}


def cluster_view(cluster):
    status, view = admin_call(cluster.brokers[0], "GET", "/admin/v1/cluster")
    assert status == 200, view
    return view


def broker_info(cluster, broker_id):
    return next(b for b in cluster_view(cluster)["brokers"] if b["id"] == broker_id)


def removal(cluster, removal_id):
    status, body = admin_call(cluster.brokers[0], "GET", f"/admin/v1/removals/{removal_id}")
    assert status == 200, body
    return body


def wait_removal(cluster, removal_id, state, timeout=MOVE_TIMEOUT_S):
    return wait_for(f"removal {removal_id} {state}",
                    lambda: (lambda r: r if r["state"] == state else None)(
                        removal(cluster, removal_id)), timeout, 0.5)


def healthy(cluster, brokers):
    """Every partition of every topic led, with a full ISR, on `brokers` only."""
    view = cluster_view(cluster)
    return all(b["replicas"] == 0 for b in view["brokers"] if b["id"] not in brokers) and \
        all(t["partitions"] > 0 for t in view["topics"]) and \
        metadata_full(cluster, brokers)


def metadata_full(cluster, brokers):
    md = metadata(cluster.pod(brokers[0]).bootstrap, timeout=3)["topics"]
    return all(leader in brokers and len(isr) == min(TOPICS.get(t, 1), len(brokers))
               for t, parts in md.items() if t in TOPICS for leader, isr in parts.values())


# ---- the workload --------------------------------------------------------------------------

class GroupReader(threading.Thread):
    """A consumer group member reading both topics; keeps the longest gap between two
    messages while it runs."""

    def __init__(self, bootstrap):
        super().__init__(daemon=True, name="group-reader")
        self.stop = threading.Event()
        self.count = 0
        self.longest_gap = 0.0
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "removal-readers",
                                  "auto.offset.reset": "latest", "logger": client_logger(),
                                  "session.timeout.ms": 10000})

    def run(self):
        self.consumer.subscribe(list(TOPICS))
        last = None
        while not self.stop.is_set():
            for m in self.consumer.consume(num_messages=1000, timeout=0.5):
                if m.error():
                    continue
                now = time.monotonic()
                if last is not None:
                    self.longest_gap = max(self.longest_gap, now - last)
                last = now
                self.count += 1
        self.consumer.close()


def fill(cluster, topic):
    """FILL_BYTES of 10 KiB records, so that the moves have data to copy."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": cluster.bootstrap(), "acks": "all",
                  "linger.ms": 20, "logger": client_logger()})
    value = b"x" * 10240
    for i in range(FILL_BYTES // len(value)):
        while True:
            try:
                p.produce(topic, value, key=b"fill-%d" % i, partition=i % PARTITIONS)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    assert p.flush(60) == 0, "the fill was not acknowledged"


@pytest.fixture(scope="module")
def cluster():
    # Internal topics with 2 replicas, so that the cluster may shrink to two brokers.
    c = Cluster(controllers=3, brokers=4, controller_config=dict(TIMEOUTS),
                broker_config={**TIMEOUTS, "offsets.topic.num.partitions": "1"},
                topic_defaults={"replicationFactor": 2, "minInsyncReplicas": 1})
    with c:
        yield c


def test_removal_under_load(cluster):
    log = Log()
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap()})
    for f in admin.create_topics([NewTopic(t, PARTITIONS, rf, config={"min.insync.replicas": "2"
                                                                       if rf == 3 else "1"})
                                  for t, rf in TOPICS.items()], operation_timeout=30).values():
        f.result(60)
    all_brokers = [p.node_id for p in cluster.brokers]
    wait_for("topics led with full ISRs", lambda: metadata_full(cluster, all_brokers), 60, 0.5)
    for t in TOPICS:
        fill(cluster, t)
    log(f"filled {len(TOPICS)} topics with {FILL_BYTES >> 20} MiB each")

    histories = {t: checker.History() for t in TOPICS}
    writers = [Writer(i, cluster.bootstrap(), histories[t], log, topic=t,
                      partitions=PARTITIONS, rate=RATE)
               for i, t in enumerate(list(TOPICS) * 2)]
    reader = GroupReader(cluster.bootstrap())
    for w in writers:
        w.start()
    reader.start()
    wait_for("first acknowledgements", lambda: all(len(h.acked) >= 50 for h in histories.values()),
             60)
    first, second = all_brokers[-1], all_brokers[-2]
    remaining = [b for b in all_brokers if b != first]

    # 1. refused up front, nothing changes
    status, body = admin_call(cluster.brokers[0], "PUT", "/admin/v1/removals/too-many",
                              {"brokerIds": [first, second]})
    log(f"removal of {first} and {second}: {status} {body}")
    assert status == 422 and body["code"] == "REPLICATION_FACTOR_UNSATISFIABLE", body
    assert "removal-rf3" in body["error"], body
    assert not any(b["excluded"] for b in cluster_view(cluster)["brokers"])
    assert admin_call(cluster.brokers[0], "GET", "/admin/v1/removals/too-many")[0] == 404

    # 2. cancelled midway
    status, body = admin_call(cluster.brokers[0], "PUT", "/admin/v1/removals/cancel-me",
                              {"brokerIds": [first]})
    assert status == 201, body
    # Moves go at most two at a time per broker, one round per controller tick: cancelled
    # at once, it is mid-way.
    status, body = admin_call(cluster.brokers[0], "DELETE", "/admin/v1/removals/cancel-me")
    log(f"cancelled: {status} {body}")
    assert status == 200 and body["state"] == "cancelled", body
    assert not broker_info(cluster, first)["excluded"]
    wait_for("healthy after the cancel", lambda: metadata_full(cluster, all_brokers), 90, 0.5)

    # 3. removed, with the active controller killed midway
    started = time.monotonic()
    status, body = admin_call(cluster.brokers[0], "PUT", "/admin/v1/removals/remove-first",
                              {"brokerIds": [first]})
    assert status == 201, body
    assert body["partitionsRemaining"] > 0, body
    leader, _ = cluster.settled_leader()
    log(f"killing the active controller {leader} mid-removal: {body}")
    cluster.kill(cluster.pod(leader))
    done = wait_removal(cluster, "remove-first", "completed")
    took = time.monotonic() - started
    log(f"removal of {first} completed in {took:.1f}s: {done}")
    cluster.start_pod(cluster.pod(leader))
    assert broker_info(cluster, first)["replicas"] == 0
    assert done["partitionsRemaining"] == 0, done
    wait_for("healthy without the first", lambda: healthy(cluster, remaining), 90, 0.5)

    # 4. room made, then a second broker goes: the RF=3 topic is checked, then deleted
    counts = {"removal-rf3": stop_and_check(cluster, writers, histories, "removal-rf3")}
    admin.delete_topics(["removal-rf3"], operation_timeout=30)["removal-rf3"].result(60)
    throttle(admin, cluster, remaining)
    before = throttled_bytes(cluster, remaining)
    started = time.monotonic()
    status, body = admin_call(cluster.brokers[0], "PUT", "/admin/v1/removals/remove-second",
                              {"brokerIds": [second]})
    assert status == 201, body
    done = wait_removal(cluster, "remove-second", "completed")
    throttled_took = time.monotonic() - started
    copied = {k: v - before[k] for k, v in throttled_bytes(cluster, remaining).items()}
    log(f"removal of {second} completed in {throttled_took:.1f}s at a {THROTTLE >> 20} MiB/s "
        f"throttle, bytes copied under it: {copied}: {done}")
    assert any(v > 0 for (side, _), v in copied.items() if side == "follower"), copied
    # Each broker's buckets start with one second of tokens; past that, the rate holds.
    for (side, broker), n in copied.items():
        assert n <= THROTTLE * (throttled_took + 1) * 1.1, \
            f"broker {broker} {side} side copied {n} bytes in {throttled_took:.1f}s"
    last_two = [b for b in remaining if b != second]
    assert broker_info(cluster, second)["replicas"] == 0
    wait_for("healthy on two brokers", lambda: healthy(cluster, last_two), 90, 0.5)

    time.sleep(3)
    counts["removal-rf2"] = stop_and_check(cluster, writers, histories, "removal-rf2")
    reader.stop.set()
    reader.join(30)
    print(f"\n---- removal test: group reader read {reader.count} messages, longest gap "
          f"{reader.longest_gap:.2f}s; first removal took {took:.1f}s")
    for topic, c in counts.items():
        print(f"---- {topic}: " + ", ".join(f"{k} {v}" for k, v in c.items()))
    assert reader.count > 0, "the consumer group read nothing"
    assert reader.longest_gap < MAX_STALL_S, \
        f"the consumer group stalled for {reader.longest_gap:.1f}s"


def throttle(admin, cluster, brokers):
    """Both replication throttle rates at THROTTLE on each of `brokers`, once in force."""
    rate = str(THROTTLE)
    for b in brokers:  # librdkafka takes one BROKER resource per call
        resource = ConfigResource(ResourceType.BROKER, str(b), incremental_configs=[
            ConfigEntry(f"{side}.replication.throttled.rate", rate,
                        incremental_operation=AlterConfigOpType.SET)
            for side in THROTTLED_BYTES])
        for f in admin.incremental_alter_configs([resource]).values():
            f.result(30)

    def in_force(b):
        m = cluster.metrics(cluster.pod(b), timeout=5) or {}
        return all(float(m.get(f"kafka_server_{side}replication_throttle_rate_bytes", 0)) == THROTTLE
                   for side in THROTTLED_BYTES)
    wait_for("the throttles in force", lambda: all(in_force(b) for b in brokers), 30, 0.2)


def throttled_bytes(cluster, brokers):
    """{(side, broker): bytes copied under that side's throttle so far}."""
    out = {}
    for b in brokers:
        m = cluster.metrics(cluster.pod(b), timeout=5)
        assert m is not None, f"no metrics from broker {b}"
        for side, name in THROTTLED_BYTES.items():
            out[(side, b)] = float(m.get(name, 0))
    return out


def stop_and_check(cluster, writers, histories, topic):
    """Stops `topic`'s producers and checks every acknowledged value is there, once, in
    order; returns the checker's counts."""
    mine = [w for w in writers if w.topic == topic]
    for w in mine:
        w.stop.set()
    for w in mine:
        w.join(120)
    assert not [w.crashed for w in mine if w.crashed]
    logs, _ = consume_everything(cluster, topic, PARTITIONS)
    # The fill's records are not `p<id>-<seq>` values of the history.
    logs = {p: [(o, v) for o, v in entries if v.startswith(b"p")] for p, entries in logs.items()}
    counts, details = checker.classify(histories[topic], logs)
    assert counts["lost"] == 0, f"{topic}: acknowledged values lost: {details['lost']}"
    assert counts["duplicated"] == 0, f"{topic}: duplicated: {details['duplicated']}"
    assert counts["reordered"] == 0, f"{topic}: reordered: {details['reordered']}"
    assert counts["unexpected"] == 0, f"{topic}: never sent: {details['unexpected']}"
    assert counts["misplaced"] == 0, f"{topic}: not where acknowledged: {details['misplaced']}"
    assert counts["acknowledged"] > 0, f"{topic}: nothing acknowledged"
    return counts
