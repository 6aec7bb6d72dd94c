"""Consumer groups with confluent-kafka: eager and cooperative rebalancing, static membership,
synchronous commits, committed offsets across a broker restart."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import ConsumerGroupDescription

from helpers import Msg, admin, create_topic, produce_confluent

PARTS = 6
# Rebalance callbacks run on each member's polling thread; `pump` reads their state under this.
STATE_LOCK = threading.Lock()


class Member:
    """One group member whose messages and rebalance events are recorded."""

    def __init__(self, bootstrap, group, topic, name, log, **conf):
        self.name = name
        self.log = log  # shared list of (member, partition, offset, value)
        self.assigned: set[int] = set()
        self.events: list[tuple[str, tuple[int, ...]]] = []
        self.commit_errors: list = []
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                           "auto.offset.reset": "earliest", "session.timeout.ms": 10000,
                           "heartbeat.interval.ms": 500, "client.id": name, **conf})
        self.c.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost)

    def _on_assign(self, c, parts):
        self._record("assign", parts)

    def _on_revoke(self, c, parts):
        self._record("revoke", parts)

    def _on_lost(self, c, parts):
        self._record("lost", parts)

    def _record(self, kind, parts):
        ps = tuple(sorted(p.partition for p in parts))
        with STATE_LOCK:
            if kind == "assign":
                self.assigned |= set(ps)
            else:
                self.assigned -= set(ps)
            self.events.append((kind, ps))

    def poll_once(self, timeout=0.1):
        m = self.c.poll(timeout)
        if m is None:
            return None
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                return None
            raise KafkaException(m.error())
        try:
            self.c.commit(message=m, asynchronous=False)
        except KafkaException as e:
            self.commit_errors.append((m.partition(), m.offset(), e.args[0]))
        self.log.append((self.name, m.partition(), m.offset(), m.value()))
        return m

    def close(self):
        self.c.close()


def pump(members, until, timeout=90, what="condition"):
    """Polls every member on its own thread until `until()` holds. One thread per consumer, as
    applications run them: a synchronous commit sent while the member's JoinGroup is parked
    waits behind it on the coordinator connection (requests on a connection are answered in
    order, as in Kafka), and the join only completes once the other members have served their
    rebalance callbacks and rejoined, which they could not do from a shared polling thread."""
    stop = threading.Event()
    failures = []

    def poll(m):
        try:
            while not stop.is_set():
                m.poll_once(0.05)
        except Exception as e:  # re-raised on the test's thread
            failures.append(e)

    threads = [threading.Thread(target=poll, args=(m,), daemon=True) for m in members]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            if failures:
                raise failures[0]
            with STATE_LOCK:
                if until():
                    return
                assert time.monotonic() < deadline, f"timed out waiting for {what}; " + "; ".join(
                    f"{m.name}: assigned={sorted(m.assigned)} events={m.events[-4:]}" for m in members)
            time.sleep(0.02)
    finally:
        stop.set()
        for t in threads:
            t.join()


def produce_batch(bootstrap, topic, start, count):
    msgs = [Msg(i % PARTS, b"key-%d" % i, b"value-%d" % i) for i in range(start, start + count)]
    produce_confluent(bootstrap, topic, msgs)
    return msgs


def check_exactly_once(log, produced, may_repeat=frozenset()):
    """Every produced message consumed once; `may_repeat` are (partition, offset) whose commit failed."""
    seen = {}
    dups = []
    for name, p, off, value in log:
        if (p, off) in seen and (p, off) not in may_repeat:
            dups.append((p, off, seen[(p, off)], name))
        seen[(p, off)] = name
    log = [r for i, r in enumerate(log) if (r[1], r[2]) not in may_repeat
           or (r[1], r[2]) not in {(x[1], x[2]) for x in log[:i]}]
    assert not dups, f"{len(dups)} duplicates, e.g. {dups[:5]}"
    got_values = sorted(v for _, _, _, v in log)
    want = sorted(m.value for m in produced)
    assert got_values == want, f"consumed {len(got_values)} values, produced {len(want)}"
    # per partition, offsets consumed are 0..n-1 and values follow production order
    for p in range(PARTS):
        offs = sorted(off for _, pp, off, _ in log if pp == p)
        assert offs == list(range(len(offs))), f"partition {p} offsets have gaps: {offs[:20]}"
        vals = [v for _, pp, off, v in sorted(log, key=lambda r: (r[1], r[2])) if pp == p]
        assert vals == [m.value for m in produced if m.partition == p]


def covered(members):
    parts = [p for m in members for p in m.assigned]
    return len(parts) == PARTS and set(parts) == set(range(PARTS))


def test_group_of_three_join_leave_exactly_once(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, PARTS)
    group = "g-" + topic_name
    log, produced = [], []
    produced += produce_batch(broker.bootstrap, topic_name, 0, 300)

    a = Member(broker.bootstrap, group, topic_name, "A", log)
    members = [a]
    pump(members, lambda: len(a.assigned) == PARTS, what="A owns all partitions")
    pump(members, lambda: len(log) >= 100, what="A consumed 100")

    b = Member(broker.bootstrap, group, topic_name, "B", log)
    c = Member(broker.bootstrap, group, topic_name, "C", log)
    members = [a, b, c]
    pump(members, lambda: covered(members) and all(len(m.assigned) == 2 for m in members),
         what="three members with two partitions each")
    produced += produce_batch(broker.bootstrap, topic_name, 300, 300)
    pump(members, lambda: len(log) >= 450, what="450 consumed by the group")

    # B leaves (LeaveGroup): A and C take over its partitions and resume at B's commits
    b.close()
    members = [a, c]
    pump(members, lambda: covered(members), what="A and C cover all partitions after B left")
    produced += produce_batch(broker.bootstrap, topic_name, 600, 120)
    pump(members, lambda: len(log) >= len(produced), what="everything consumed")
    for _ in range(20):  # nothing more arrives
        for m in members:
            assert m.poll_once(0.05) is None
    for m in (a, b, c):
        assert not m.commit_errors, f"{m.name} synchronous commits failed: {m.commit_errors[:3]}"
    check_exactly_once(log, produced)
    assert {name for name, *_ in log} == {"A", "B", "C"}, "every member consumed something"

    # the group as the broker describes it
    adm = admin(broker.bootstrap)
    g = adm.describe_consumer_groups([group], request_timeout=20)[group].result(20)
    assert isinstance(g, ConsumerGroupDescription)
    assert len(g.members) == 2
    assert sorted(tp.partition for mem in g.members for tp in mem.assignment.topic_partitions) == list(range(PARTS))
    for m in (a, c):
        m.close()


def test_committed_offsets_survive_restart(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, PARTS)
    group = "g-" + topic_name
    produced = produce_batch(broker.bootstrap, topic_name, 0, 600)
    log = []
    a = Member(broker.bootstrap, group, topic_name, "A", log)
    pump([a], lambda: len(log) >= 250, what="250 consumed")
    assert not a.commit_errors
    committed_before = {tp.partition: tp.offset for tp in
                        a.c.committed([TopicPartition(topic_name, p) for p in range(PARTS)], timeout=10)}
    a.close()
    expected_next = {p: 0 for p in range(PARTS)}
    for _, p, off, _ in log:
        expected_next[p] = max(expected_next[p], off + 1)
    for p in range(PARTS):
        if expected_next[p]:
            assert committed_before[p] == expected_next[p], (p, committed_before[p], expected_next[p])
        else:
            assert committed_before[p] < 0, (p, committed_before[p])  # nothing committed

    broker.restart()

    b = Member(broker.bootstrap, group, topic_name, "B", log)
    committed_after = {tp.partition: tp.offset for tp in
                       b.c.committed([TopicPartition(topic_name, p) for p in range(PARTS)], timeout=30)}
    assert committed_after == committed_before
    first_seen = {}
    pump([b], lambda: len(log) >= len(produced), what="B consumed the rest")
    for name, p, off, _ in log:
        if name == "B" and p not in first_seen:
            first_seen[p] = off
    for p in range(PARTS):
        if expected_next[p] < len([m for m in produced if m.partition == p]):
            assert first_seen[p] == expected_next[p], f"partition {p}: resumed at {first_seen[p]}, committed {expected_next[p]}"
    check_exactly_once(log, produced)
    b.close()


def test_cooperative_sticky(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, PARTS)
    group = "coop-" + topic_name
    log = []
    produced = produce_batch(broker.bootstrap, topic_name, 0, 300)
    conf = {"partition.assignment.strategy": "cooperative-sticky"}
    a = Member(broker.bootstrap, group, topic_name, "A", log, **conf)
    pump([a], lambda: len(a.assigned) == PARTS, what="A owns all")
    a_events = len(a.events)
    b = Member(broker.bootstrap, group, topic_name, "B", log, **conf)
    members = [a, b]
    pump(members, lambda: covered(members) and len(a.assigned) == 3 and len(b.assigned) == 3,
         what="3+3 split")
    # incremental: A only ever gave up the partitions that moved, never all of them
    revoked = [ps for kind, ps in a.events[a_events:] if kind == "revoke"]
    assert revoked, a.events
    assert all(len(ps) < PARTS for ps in revoked), f"A had everything revoked: {a.events}"
    assert not any(kind == "lost" for kind, _ in a.events)
    kept = set(range(PARTS)) - {p for ps in revoked for p in ps}
    assert kept == a.assigned, (kept, a.assigned)
    c = Member(broker.bootstrap, group, topic_name, "C", log, **conf)
    members = [a, b, c]
    pump(members, lambda: covered(members) and all(len(m.assigned) == 2 for m in members), what="2+2+2")
    produced += produce_batch(broker.bootstrap, topic_name, 300, 300)
    pump(members, lambda: len({(p, o) for _, p, o, _ in log}) >= len(produced), what="all consumed")
    may_repeat = set()
    for m in members:
        # with cooperative rebalancing a member keeps fetching and committing while the group
        # rebalances; a commit sent while its JoinGroup is parked is answered after the join, as
        # in Kafka: REBALANCE_IN_PROGRESS while the group completes the rebalance, or
        # ILLEGAL_GENERATION once its generation is gone. Only those may happen, and those
        # messages may repeat
        for p, off, err in m.commit_errors:
            assert err.code() in (KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION), \
                f"{m.name}: commit of p{p}@{off} failed: {err}"
            may_repeat.add((p, off))
    check_exactly_once(log, produced, frozenset(may_repeat))
    for m in members:
        m.close()


def test_static_membership(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, PARTS)
    group = "static-" + topic_name
    log = []
    produced = produce_batch(broker.bootstrap, topic_name, 0, 120)
    members = [Member(broker.bootstrap, group, topic_name, f"S{i}", log, **{"group.instance.id": f"inst-{i}",
                                                                             "session.timeout.ms": 30000})
               for i in range(3)]
    pump(members, lambda: covered(members) and all(len(m.assigned) == 2 for m in members), what="2+2+2")
    pump(members, lambda: len(log) >= len(produced), what="first batch consumed")
    before = {m.name: set(m.assigned) for m in members}

    adm = admin(broker.bootstrap)
    g = adm.describe_consumer_groups([group], request_timeout=20)[group].result(20)
    assert sorted(mem.group_instance_id for mem in g.members) == ["inst-0", "inst-1", "inst-2"]

    # a static member that closes sends no LeaveGroup: the others keep their partitions
    gone = members.pop(1)
    gone.close()
    others_events = {m.name: len(m.events) for m in members}
    t_end = time.monotonic() + 3
    while time.monotonic() < t_end:
        for m in members:
            m.poll_once(0.05)
    # it comes back with the same instance id within the session timeout: same partitions, no rebalance
    back = Member(broker.bootstrap, group, topic_name, "S1-again", log, **{"group.instance.id": "inst-1",
                                                                           "session.timeout.ms": 30000})
    members.append(back)
    pump(members, lambda: len(back.assigned) == 2, what="S1 rejoined")
    assert back.assigned == before["S1"]
    for m in members[:2]:
        assert m.assigned == before[m.name]
        assert len(m.events) == others_events[m.name], f"{m.name} saw a rebalance: {m.events}"
    produced += produce_batch(broker.bootstrap, topic_name, 120, 120)
    pump(members, lambda: len(log) >= len(produced), what="second batch consumed")
    check_exactly_once(log, produced)
    for m in members:
        m.close()
