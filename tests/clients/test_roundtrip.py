"""Produce -> consume round trips with three unmodified clients and every codec.

Each test produces to a 3-partition topic with explicit partitions, keys, headers and
(where the client can set them) timestamps, then reads everything back and checks the
bytes and the order per partition.  Every topic is also read back by a second client,
so a batch one client wrote is decoded by another.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition as KTP

from helpers import CODECS, Msg, assert_same_per_partition, by_partition, consume_all, create_topic, gen_messages, \
    produce_confluent

PARTS = 3
N = 600


def kafka_python_consume_all(bootstrap: str, topic: str, partitions: int, timeout=60) -> dict[int, list[Msg]]:
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
                      group_id=None)
    try:
        tps = [KTP(topic, p) for p in range(partitions)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        ends = c.end_offsets(tps)
        out = {p: [] for p in range(partitions)}
        deadline = time.monotonic() + timeout
        while any(c.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, f"kafka-python timed out: {[len(v) for v in out.values()]} of {ends}"
            for tp, recs in c.poll(timeout_ms=500).items():
                for r in recs:
                    out[tp.partition].append(Msg(tp.partition, r.key, r.value, tuple((k, v) for k, v in r.headers),
                                                 r.timestamp, r.offset))
        return out
    finally:
        c.close()


@pytest.mark.parametrize("codec", CODECS)
def test_confluent_roundtrip(broker, topic_name, codec):
    create_topic(broker.bootstrap, topic_name, PARTS)
    msgs = gen_messages(N, PARTS, seed=CODECS.index(codec) + 1)
    produce_confluent(broker.bootstrap, topic_name, msgs, **{"compression.type": codec, "batch.num.messages": 50})
    expected = by_partition(msgs, PARTS)
    assert_same_per_partition(expected, consume_all(broker.bootstrap, topic_name, PARTS))
    # a different client decodes the same batches
    assert_same_per_partition(expected, kafka_python_consume_all(broker.bootstrap, topic_name, PARTS))
    # offsets are dense from 0 in every partition
    got = consume_all(broker.bootstrap, topic_name, PARTS)
    for p, ms in got.items():
        assert [m.offset for m in ms] == list(range(len(expected[p])))


@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python_roundtrip(broker, topic_name, codec):
    create_topic(broker.bootstrap, topic_name, PARTS)
    msgs = gen_messages(N, PARTS, seed=7 + len(codec))
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5,
                      compression_type=None if codec == "none" else codec, batch_size=8192)
    futures = [
        p.send(topic_name, value=m.value, key=m.key, headers=list(m.headers), partition=m.partition,
               timestamp_ms=m.timestamp)
        for m in msgs
    ]
    p.flush(60)
    metas = [f.get(timeout=30) for f in futures]
    p.close()
    for m, md in zip(msgs, metas):
        assert md.partition == m.partition
    # offsets reported to the producer are increasing per partition
    for part in range(PARTS):
        offs = [md.offset for md in metas if md.partition == part]
        assert offs == list(range(len(offs))), f"partition {part} acked offsets {offs[:10]}..."
    expected = by_partition(msgs, PARTS)
    assert_same_per_partition(expected, kafka_python_consume_all(broker.bootstrap, topic_name, PARTS))
    assert_same_per_partition(expected, consume_all(broker.bootstrap, topic_name, PARTS))


def kcat() -> str:
    path = shutil.which("kcat") or shutil.which("kafkacat")
    assert path, "kcat not installed (tests/run.sh installs it)"
    return path


def kcat_consume(bootstrap: str, topic: str, extra: list[str] | None = None) -> list[dict]:
    cp = subprocess.run([kcat(), "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-J", "-q",
                         *(extra or [])], capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, f"kcat consume failed: {cp.stderr}"
    return [json.loads(line) for line in cp.stdout.splitlines() if line.strip()]


def kcat_headers(rec: dict) -> tuple:
    h = rec.get("headers") or []
    if isinstance(h, list):
        return tuple((h[i], h[i + 1].encode()) for i in range(0, len(h), 2))
    return tuple((k, v.encode()) for k, v in h.items())


@pytest.mark.parametrize("codec", CODECS)
def test_kcat_roundtrip(broker, topic_name, codec):
    create_topic(broker.bootstrap, topic_name, PARTS)
    msgs = [Msg(m.partition, m.key, m.value, (("src", b"kcat"), ("codec", codec.encode())), None)
            for m in gen_messages(300, PARTS, seed=3, binary=False)]
    msgs = [Msg(m.partition, m.key if m.key is not None else b"nokey", m.value, m.headers) for m in msgs]
    t0 = int(time.time() * 1000) - 1000
    for part, ms in by_partition(msgs, PARTS).items():
        data = "".join(f"{m.key.decode()}\t{m.value.decode()}\n" for m in ms)
        cp = subprocess.run([kcat(), "-b", broker.bootstrap, "-P", "-t", topic_name, "-p", str(part), "-z", codec,
                             "-K", "\t", "-H", "src=kcat", "-H", f"codec={codec}", "-X", "acks=all"],
                            input=data, capture_output=True, text=True, timeout=60)
        assert cp.returncode == 0, f"kcat produce failed: {cp.stderr}"
    t1 = int(time.time() * 1000) + 1000
    expected = by_partition(msgs, PARTS)
    recs = kcat_consume(broker.bootstrap, topic_name)
    got = {p: [] for p in range(PARTS)}
    for r in recs:
        assert r["topic"] == topic_name
        assert t0 <= r["ts"] <= t1, f"CreateTime {r['ts']} outside [{t0}, {t1}]"
        got[r["partition"]].append(Msg(r["partition"], r["key"].encode(), r["payload"].encode(), kcat_headers(r),
                                       None, r["offset"]))
    for p in got:
        got[p].sort(key=lambda m: m.offset)
    assert_same_per_partition(expected, got, check_ts=False)
    # and confluent-kafka sees exactly the same bytes
    assert_same_per_partition(expected, consume_all(broker.bootstrap, topic_name, PARTS), check_ts=False)


def test_kcat_reads_confluent_timestamps_and_keys(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, PARTS)
    msgs = [Msg(m.partition, m.key or b"k", m.value, (("src", b"confluent"), ("n", b"%d" % i)), m.timestamp)
            for i, m in enumerate(gen_messages(90, PARTS, seed=11, binary=False))]
    produce_confluent(broker.bootstrap, topic_name, msgs, **{"compression.type": "zstd"})
    recs = kcat_consume(broker.bootstrap, topic_name)
    assert len(recs) == len(msgs)
    want = {(m.partition, m.key, m.value, m.timestamp) for m in msgs}
    got = {(r["partition"], r["key"].encode(), r["payload"].encode(), r["ts"]) for r in recs}
    assert {kcat_headers(r) for r in recs} == {m.headers for m in msgs}
    assert got == want
    for r in recs:
        assert r["tstype"] == "create"
