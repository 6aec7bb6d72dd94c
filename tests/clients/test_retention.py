"""Time-based retention deletes old segments; compaction keeps the last value per key."""

from __future__ import annotations

import time
from pathlib import Path

from confluent_kafka import TopicPartition
from confluent_kafka.admin import OffsetSpec

from helpers import Msg, admin, consume_all, create_topic, produce_confluent

import pytest

SEGMENT = 1024 * 1024  # Kafka's minimum segment.bytes in recent versions


def partition_dir(broker, topic, p=0) -> Path:
    # the leader's copy: on a cluster each replica applies retention to its own files, and the
    # log start offset clients see is the leader's
    data_dir = broker.leader(topic, p).data_dir
    d = data_dir / f"{topic}-{p}"
    assert d.is_dir(), f"no partition dir {d}; data dir has {sorted(x.name for x in data_dir.iterdir())}"
    return d


def segments(broker, topic, p=0) -> list[str]:
    return sorted(f.name for f in partition_dir(broker, topic, p).glob("*.log"))


def earliest(bootstrap, topic, p=0) -> int:
    tp = TopicPartition(topic, p)
    a = admin(bootstrap)  # the client must outlive its futures
    return a.list_offsets({tp: OffsetSpec.earliest()}, request_timeout=20)[tp].result(20).offset


@pytest.mark.broker_props({"log.retention.check.interval.ms": 300})
def test_time_retention_deletes_old_segments(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 1,
                 config={"segment.bytes": str(SEGMENT), "retention.ms": str(10 * 60 * 1000)})
    now = int(time.time() * 1000)
    old = [Msg(0, b"old%d" % i, b"o%06d" % i + b"." * 1000, (), now - 3600_000 + i) for i in range(4000)]
    acks = produce_confluent(broker.bootstrap, topic_name, old, **{"batch.num.messages": 100})
    new = [Msg(0, b"new%d" % i, b"n%06d" % i, (), now + i) for i in range(200)]
    produce_confluent(broker.bootstrap, topic_name, new)
    n_old = len(old)

    deadline = time.monotonic() + 60
    while earliest(broker.bootstrap, topic_name) == 0:
        assert time.monotonic() < deadline, f"no segment deleted; segments: {segments(broker, topic_name)}"
        time.sleep(0.5)
    start = earliest(broker.bootstrap, topic_name)
    assert 0 < start <= n_old, start
    # the log start is a segment base offset, and older segment files are gone from disk
    segs = segments(broker, topic_name)
    bases = [int(s.split(".")[0]) for s in segs]
    assert min(bases) == start, (start, segs)
    # a consumer from the beginning sees only what is left: the tail of the old data and all new data
    got = consume_all(broker.bootstrap, topic_name, 1)[0]
    assert got[0].offset == start
    assert [m.value for m in got] == [m.value for m in old[start:]] + [m.value for m in new]
    assert [m.offset for m in got] == list(range(start, n_old + len(new)))
    assert len(acks) == n_old


@pytest.mark.broker_props({"log.retention.check.interval.ms": 300})
def test_size_retention(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 1,
                 config={"segment.bytes": str(SEGMENT), "retention.bytes": str(2 * SEGMENT)})
    msgs = [Msg(0, None, b"%06d" % i + b"s" * 2000) for i in range(3000)]  # ~6 MB
    produce_confluent(broker.bootstrap, topic_name, msgs, **{"batch.num.messages": 100})
    deadline = time.monotonic() + 60
    while True:
        size = sum(f.stat().st_size for f in partition_dir(broker, topic_name).glob("*.log"))
        if earliest(broker.bootstrap, topic_name) > 0 and size <= 3 * SEGMENT + 64 * 1024:
            break
        assert time.monotonic() < deadline, f"log still {size} bytes, segments {segments(broker, topic_name)}"
        time.sleep(0.5)
    got = consume_all(broker.bootstrap, topic_name, 1)[0]
    start = got[0].offset
    assert [m.value for m in got] == [m.value for m in msgs[start:]]


@pytest.mark.broker_props({"log.cleaner.backoff.ms": 200, "log.retention.check.interval.ms": 300})
def test_compaction_keeps_last_value_per_key(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 1, config={
        "cleanup.policy": "compact", "segment.ms": "200", "min.cleanable.dirty.ratio": "0.01",
        "delete.retention.ms": "100", "min.compaction.lag.ms": "0"})
    keys = [b"key-%02d" % k for k in range(40)]
    last: dict[bytes, tuple[int, bytes | None]] = {}
    for rnd in range(8):
        msgs = [Msg(0, k, b"%s=round%d" % (k, rnd)) for k in keys]
        if rnd == 7:  # tombstones for a few keys in the last round
            msgs = [Msg(0, k, None if i % 10 == 0 else m.value) for i, (k, m) in enumerate(zip(keys, msgs))]
        for (err, m) in produce_confluent(broker.bootstrap, topic_name, msgs):
            last[m.key()] = (m.offset(), m.value())
        time.sleep(0.3)  # > segment.ms: the next append rolls a new segment
    # writes after the final round roll its segment so it becomes cleanable
    for i in range(3):
        produce_confluent(broker.bootstrap, topic_name, [Msg(0, b"sentinel", b"s%d" % i)])
        time.sleep(0.3)

    total = len(keys) * 8 + 3
    deadline = time.monotonic() + 90
    while True:
        got = consume_all(broker.bootstrap, topic_name, 1)[0]
        per_key: dict[bytes, list] = {}
        for m in got:
            per_key.setdefault(m.key, []).append(m)
        live = {k: v for k, v in per_key.items() if k != b"sentinel"}
        compacted = all(len(v) == 1 for v in live.values())
        if compacted:
            break
        assert time.monotonic() < deadline, (
            f"not compacted after 90s: {len(got)} of {total} records left, "
            f"max per key {max(len(v) for v in live.values())}, segments {segments(broker, topic_name)}")
        time.sleep(1)
    # exactly the last value of every key survives, at its original offset; a tombstone
    # (null value) is either still there as the only record of its key or gone already
    want = {k: v for k, v in last.items() if k != b"sentinel" and v[1] is not None}
    have = {k: (v[0].offset, v[0].value) for k, v in live.items()}
    tombstoned = {k for k, v in last.items() if v[1] is None}
    assert {k: v for k, v in have.items() if k not in tombstoned} == want
    for k in tombstoned & set(have):
        assert have[k] == last[k], f"{k!r}: an older value outlived its tombstone"
    offsets = [m.offset for m in got]
    assert offsets == sorted(offsets)
    # the end of the log is unchanged
    assert got[-1].key == b"sentinel" and got[-1].value == b"s2"
