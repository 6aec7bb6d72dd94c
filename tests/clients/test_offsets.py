"""ListOffsets (earliest / latest / by timestamp / max timestamp) and DeleteRecords."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import OffsetSpec
from kafka import TopicPartition as KTP
from kafka.admin import KafkaAdminClient

from helpers import Msg, admin, consume_all, create_topic, produce_confluent
from test_roundtrip import kcat

N = 100
# recent timestamps: far older ones would make the broker roll segments and retention delete them
TS0 = (int(time.time()) - 600) * 1000


def fill(broker, topic, partitions=2):
    create_topic(broker.bootstrap, topic, partitions)
    msgs = [Msg(p, b"k%d" % i, b"v%d-%d" % (p, i), (), TS0 + i * 10) for p in range(partitions) for i in range(N)]
    produce_confluent(broker.bootstrap, topic, msgs, **{"compression.type": "lz4", "batch.num.messages": 16})
    return msgs


def list_offsets(bootstrap, topic, partition, spec) -> int:
    tp = TopicPartition(topic, partition)
    a = admin(bootstrap)  # the client must outlive its futures
    res = a.list_offsets({tp: spec}, request_timeout=20)
    return res[tp].result(20).offset


def consumer(bootstrap):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": "offsets-probe", "enable.auto.commit": False})


def test_list_offsets_earliest_latest_timestamp(broker, topic_name):
    fill(broker, topic_name)
    c = consumer(broker.bootstrap)
    try:
        for p in range(2):
            assert c.get_watermark_offsets(TopicPartition(topic_name, p), timeout=10) == (0, N)
        assert list_offsets(broker.bootstrap, topic_name, 0, OffsetSpec.earliest()) == 0
        assert list_offsets(broker.bootstrap, topic_name, 1, OffsetSpec.latest()) == N
        assert list_offsets(broker.bootstrap, topic_name, 1, OffsetSpec.max_timestamp()) == N - 1
        # by timestamp: first offset whose timestamp >= the one asked for
        # one timestamp per partition per request (the client keys answers by partition)
        for q, want in (((TS0 + 505, TS0), (51, 0)), ((TS0 + 990, TS0 + 10_000), (99, -1))):
            res = c.offsets_for_times([TopicPartition(topic_name, p, ts) for p, ts in enumerate(q)], timeout=10)
            assert [r.error for r in res] == [None, None]
            assert [r.offset for r in res] == list(want)  # -1: no such message (end of log)
        assert list_offsets(broker.bootstrap, topic_name, 0, OffsetSpec.for_timestamp(TS0 + 200)) == 20
    finally:
        c.close()


def test_kcat_offset_by_timestamp(broker, topic_name):
    fill(broker, topic_name, partitions=1)
    cp = subprocess.run([kcat(), "-b", broker.bootstrap, "-C", "-t", topic_name, "-p", "0", "-o", f"s@{TS0 + 731}",
                         "-e", "-J", "-q"], capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    recs = [json.loads(line) for line in cp.stdout.splitlines() if line.strip()]
    assert [r["offset"] for r in recs] == list(range(74, N))
    assert recs[0]["payload"] == "v0-74" and recs[0]["ts"] == TS0 + 740


def test_delete_records_confluent(broker, topic_name):
    fill(broker, topic_name)
    a = admin(broker.bootstrap)
    res = a.delete_records([TopicPartition(topic_name, 0, 40)], request_timeout=20)
    r = list(res.values())[0].result(20)
    assert r.low_watermark == 40
    assert list_offsets(broker.bootstrap, topic_name, 0, OffsetSpec.earliest()) == 40
    assert list_offsets(broker.bootstrap, topic_name, 1, OffsetSpec.earliest()) == 0
    got = consume_all(broker.bootstrap, topic_name, 2)
    assert [m.offset for m in got[0]] == list(range(40, N))
    assert [m.value for m in got[0]] == [b"v0-%d" % i for i in range(40, N)]
    assert len(got[1]) == N
    # beyond the high watermark is refused
    res = a.delete_records([TopicPartition(topic_name, 1, N + 5)], request_timeout=20)
    try:
        list(res.values())[0].result(20)
        raise AssertionError("delete_records beyond the high watermark succeeded")
    except KafkaException as e:
        assert e.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE
    # the log start offset is durable
    broker.restart()
    assert list_offsets(broker.bootstrap, topic_name, 0, OffsetSpec.earliest()) == 40
    # reading below the log start offset is out of range -> reset to earliest
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "oor", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic_name, 0, 5)])
        m = None
        for _ in range(40):
            m = c.poll(0.5)
            if m is not None and not m.error():
                break
        assert m is not None and not m.error() and m.offset() == 40, m
    finally:
        c.close()


def test_delete_records_kafka_python(broker, topic_name):
    fill(broker, topic_name, partitions=1)
    ka = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20000)
    try:
        ka.delete_records({KTP(topic_name, 0): 60})
    finally:
        ka.close()
    assert list_offsets(broker.bootstrap, topic_name, 0, OffsetSpec.earliest()) == 60
    got = consume_all(broker.bootstrap, topic_name, 1)
    assert [m.offset for m in got[0]] == list(range(60, N))
