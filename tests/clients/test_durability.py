"""Idempotent producer across broker restarts, and kill -9 during heavy produce.

Ground truth is the producer's delivery reports: every acknowledged message must be in the
log at the offset it was acknowledged with, exactly once, in order; consuming to the end of
every partition after a crash must succeed (the log ends on a valid batch).
"""

from __future__ import annotations

import os
import threading
import time

import pytest
from confluent_kafka import Producer

from helpers import admin, consume_all, create_topic

PARTS = 3


class TrackingProducer:
    def __init__(self, bootstrap, **conf):
        self.topic = None
        self.acked: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(PARTS)}
        self.failed: list = []
        self.sent = 0
        self.p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                           "message.timeout.ms": 120000, "request.timeout.ms": 5000,
                           "reconnect.backoff.max.ms": 500, "retry.backoff.ms": 100, **conf,
                           **({"debug": os.environ["RDKAFKA_DEBUG"]} if os.environ.get("RDKAFKA_DEBUG") else {})})

    def _cb(self, err, m):
        if err:
            self.failed.append((err, m.value()[:20]))
        else:
            self.acked[m.partition()].append((m.offset(), m.value()))

    def send(self, i: int, size: int = 100):
        value = b"%010d|" % i + b"x" * size
        deadline = time.monotonic() + 120
        while True:
            assert time.monotonic() < deadline, "producer queue stayed full for 120s"
            try:
                self.p.produce(self.topic, value=value, key=b"%d" % i, partition=i % PARTS,
                               on_delivery=self._cb)
                break
            except BufferError:
                self.p.poll(0.05)
        self.sent += 1
        self.p.poll(0)

    def run(self, topic, until, size=100):
        """Produces the next sequence numbers until `until()` is true; returns the total count sent."""
        self.topic = topic
        while not until():
            self.send(self.sent, size)
            if self.sent % 200 == 0:
                time.sleep(0.002)
        return self.sent

    def flush(self, timeout=150):
        left = self.p.flush(timeout)
        assert left == 0, f"{left} messages still in flight after {timeout}s"


def check_acked_present(bootstrap, topic, tp: TrackingProducer, idempotent: bool):
    got = consume_all(bootstrap, topic, PARTS, timeout=120)
    total_acked = sum(len(v) for v in tp.acked.values())
    assert total_acked > 0
    for p in range(PARTS):
        by_offset = {m.offset: m.value for m in got[p]}
        for off, value in tp.acked[p]:
            assert by_offset.get(off) == value, f"p{p}: acked offset {off} holds {by_offset.get(off)!r:.30}, not {value!r:.30}"
        seqs = [int(m.value[:10]) for m in got[p]]
        acked_seqs = [int(v[:10]) for _, v in sorted(tp.acked[p])]
        assert acked_seqs == sorted(acked_seqs), f"p{p}: acknowledged out of order"
        if idempotent:
            assert len(seqs) == len(set(seqs)), f"p{p}: duplicates with the idempotent producer"
            assert seqs == sorted(seqs), f"p{p}: log order differs from send order"
            # no gap: everything sent to this partition up to the last acked one is in the log
            if acked_seqs:
                want = list(range(p, acked_seqs[-1] + 1, PARTS))
                assert [s for s in seqs if s <= acked_seqs[-1]] == want, f"p{p}: gap among acknowledged messages"
    return got


def test_idempotent_producer_no_duplicates(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, PARTS)
    tp = TrackingProducer(broker.bootstrap, **{"enable.idempotence": True, "compression.type": "lz4"})
    n = tp.run(topic_name, lambda: tp.sent >= 5000)
    tp.flush()
    assert not tp.failed, tp.failed[:5]
    got = check_acked_present(broker.bootstrap, topic_name, tp, idempotent=True)
    assert sum(len(v) for v in got.values()) == n


@pytest.mark.parametrize("hard", [False, True], ids=["sigterm", "sigkill"])
def test_idempotent_producer_across_broker_restart(broker, topic_name, hard):
    create_topic(broker.bootstrap, topic_name, PARTS)
    tp = TrackingProducer(broker.bootstrap, **{"enable.idempotence": True})
    restarted = threading.Event()
    errors = []

    def restarter():
        try:
            time.sleep(1.5)
            broker.restart(hard=hard)
            time.sleep(1.5)
            broker.restart(hard=hard)
        except Exception as e:  # reported by the main thread
            errors.append(e)
        finally:
            restarted.set()

    th = threading.Thread(target=restarter, daemon=True)
    th.start()
    deadline = time.monotonic() + 60
    tp.run(topic_name, lambda: (restarted.is_set() and tp.sent >= 8000) or time.monotonic() > deadline)
    th.join(60)
    assert not errors, errors
    tp.flush()
    assert not tp.failed, f"{len(tp.failed)} deliveries failed, e.g. {tp.failed[:3]}; {diagnose(broker, topic_name, tp)}"
    got = check_acked_present(broker.bootstrap, topic_name, tp, idempotent=True)
    assert sum(len(v) for v in got.values()) == tp.sent


def diagnose(broker, topic, tp: TrackingProducer) -> str:
    """What the broker says of each partition, and whether a fresh idempotent producer can
    write to it: tells a stuck partition from a stuck client."""
    lines = []
    meta = admin(broker.bootstrap).list_topics(topic, timeout=10).topics[topic]
    for p in range(PARTS):
        part = meta.partitions.get(p)
        fresh = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True,
                          "message.timeout.ms": 10000})
        outcome = []
        fresh.produce(topic, value=b"probe", partition=p, on_delivery=lambda err, m: outcome.append(err))
        fresh.flush(15)
        failed = sum(1 for _, v in tp.failed if int(v[:10]) % PARTS == p)
        lines.append(f"p{p}: acked {len(tp.acked[p])} failed {failed} leader {part.leader if part else '?'} "
                     f"isr {part.isrs if part else '?'} error {part.error if part else '?'}; fresh producer: {outcome}")
    return " | ".join(lines)


def kill9_during_produce(broker, topic_name, rounds: int, size: int):
    create_topic(broker.bootstrap, topic_name, PARTS, config={"segment.bytes": str(1024 * 1024)})
    # one request in flight keeps retries in order without idempotence
    tp = TrackingProducer(broker.bootstrap, **{"compression.type": "none", "batch.size": 65536,
                                               "max.in.flight.requests.per.connection": 1})
    errors = []
    for r in range(rounds):
        done = threading.Event()

        def killer():
            try:
                time.sleep(1.0 + (r % 3) * 0.5)
                broker.kill9()
                time.sleep(0.3)
                broker.start()
            except Exception as e:
                errors.append(e)
            finally:
                done.set()

        th = threading.Thread(target=killer, daemon=True)
        th.start()
        tp.run(topic_name, done.is_set, size=size)
        th.join(60)
        assert not errors, errors
    tp.flush()
    assert not tp.failed, f"{len(tp.failed)} deliveries failed, e.g. {tp.failed[:3]}; {diagnose(broker, topic_name, tp)}"
    check_acked_present(broker.bootstrap, topic_name, tp, idempotent=False)
    # and once more after a clean restart the same holds (recovery did not lose anything)
    broker.restart()
    check_acked_present(broker.bootstrap, topic_name, tp, idempotent=False)


def test_kill9_during_heavy_produce(broker, topic_name):
    kill9_during_produce(broker, topic_name, rounds=2, size=1000)


@pytest.mark.soak
def test_kill9_soak(broker, topic_name):
    kill9_during_produce(broker, topic_name, rounds=int(os.environ.get("TEST_SOAK_ROUNDS", "20")), size=2000)
