"""Small helpers shared by the client tests (confluent-kafka based unless named otherwise)."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import kwire

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


@dataclass(frozen=True)
class Msg:
    partition: int
    key: bytes | None
    value: bytes | None
    headers: tuple = ()
    timestamp: int | None = None  # ms, CreateTime
    offset: int | None = field(default=None, compare=False)

    def ident(self):
        return (self.partition, self.key, self.value, self.headers, self.timestamp)


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def create_topic(bootstrap: str, name: str, partitions: int = 1, config: dict | None = None, timeout=30) -> None:
    a = admin(bootstrap)
    # replication factor -1: the cluster's default.replication.factor (1 on one node, 3 on three)
    fs = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=-1, config=config or {})],
                         operation_timeout=timeout, request_timeout=timeout)
    fs[name].result(timeout)
    wait_topic(bootstrap, name, partitions, timeout)


def wait_topic(bootstrap: str, name: str, partitions: int, timeout=30) -> None:
    """Waits until metadata shows the topic with `partitions` partitions, each with a leader,
    and every node of the bootstrap list says so itself: on a cluster each broker learns of
    a topic from the metadata log at its own pace, and a test may talk to any of them."""
    a = admin(bootstrap)
    ports = [int(addr.rsplit(":", 1)[1]) for addr in bootstrap.split(",")]
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        md = a.list_topics(name, timeout=5)
        t = md.topics.get(name)
        if t is not None and t.error is None and len(t.partitions) == partitions and all(
            p.leader >= 0 and p.error is None for p in t.partitions.values()
        ) and all(node_knows_topic(port, name, partitions) for port in ports):
            return
        last = t
        time.sleep(0.2)
    raise AssertionError(f"topic {name} not ready with {partitions} partitions: {last}")


def node_knows_topic(port: int, name: str, partitions: int) -> bool:
    """The node on `port` answers Metadata with the topic and a leader for every partition."""
    c = kwire.Conn(port)
    try:
        c.send(kwire.metadata_v4(1, [name], auto_create=False))
        err, parts = kwire.parse_metadata_v4(c.response(1)).get(name, (-1, []))
    finally:
        c.close()
    return err == 0 and len(parts) == partitions and all(e == 0 and leader >= 0 for _, e, leader in parts)


def gen_messages(n: int, partitions: int, seed: int = 1, binary: bool = True, ts_base: int | None = None) -> list[Msg]:
    """Deterministic messages spread over partitions; binary keys/values incl. NUL and 0xff bytes."""
    rnd = random.Random(seed)
    ts_base = ts_base if ts_base is not None else int(time.time() * 1000) - 60_000
    out = []
    for i in range(n):
        p = i % partitions
        if binary:
            key = b"k%d-" % i + bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 12)))
            value = b"\x00\xffv%d|" % i + bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 300)))
        else:
            key = b"k%d" % i
            value = (f"v{i}-" + "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(rnd.randrange(1, 200)))).encode()
        if i % 7 == 3:
            key = None  # some null keys
        headers = (("h1", b"x%d" % i), ("h2", bytes([i % 256, 0, 255]))) if i % 3 else ()
        out.append(Msg(p, key, value, headers, ts_base + i))
    return out


def produce_confluent(bootstrap: str, topic: str, msgs: list[Msg], **conf) -> list:
    """Produces msgs in order with explicit partitions; returns delivery reports, raises on any error."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, **conf})
    errors, acked = [], []

    def cb(err, m):
        (errors if err else acked).append((err, m))

    for m in msgs:
        kwargs = dict(partition=m.partition, key=m.key, value=m.value, on_delivery=cb)
        if m.headers:
            kwargs["headers"] = list(m.headers)
        if m.timestamp is not None:
            kwargs["timestamp"] = m.timestamp
        while True:
            try:
                p.produce(topic, **kwargs)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    remaining = p.flush(60)
    assert remaining == 0, f"{remaining} messages not delivered within 60s"
    assert not errors, f"delivery errors: {errors[:5]}"
    assert len(acked) == len(msgs)
    return acked


def _hdrs(h) -> tuple:
    return tuple((k, v) for k, v in (h or []))


def consume_all(bootstrap: str, topic: str, partitions: int, timeout: float = 60, start=OFFSET_BEGINNING,
                **conf) -> dict[int, list[Msg]]:
    """Reads every partition from `start` to its high watermark (as seen at the start) with confluent-kafka."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{time.time_ns()}",
                  "enable.auto.commit": False, "enable.partition.eof": True, **conf})
    try:
        ends = {}
        for p in range(partitions):
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            ends[p] = hi
        c.assign([TopicPartition(topic, p, start) for p in range(partitions)])
        out = {p: [] for p in range(partitions)}
        done = {p for p in range(partitions) if ends[p] == 0}
        deadline = time.monotonic() + timeout
        while len(done) < partitions:
            assert time.monotonic() < deadline, f"timed out reading {topic}: got {[len(v) for v in out.values()]} of {ends}"
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == -191:  # _PARTITION_EOF
                    if m.offset() >= ends[m.partition()]:
                        done.add(m.partition())
                    continue
                raise KafkaException(m.error())
            ts_type, ts = m.timestamp()
            out[m.partition()].append(Msg(m.partition(), m.key(), m.value(), _hdrs(m.headers()), ts, m.offset()))
            if m.offset() + 1 >= ends[m.partition()]:
                done.add(m.partition())
        return out
    finally:
        c.close()


def by_partition(msgs: list[Msg], partitions: int) -> dict[int, list[Msg]]:
    out = {p: [] for p in range(partitions)}
    for m in msgs:
        out[m.partition].append(m)
    return out


def assert_same_per_partition(expected: dict[int, list[Msg]], got: dict[int, list[Msg]], check_ts=True):
    for p, exp in expected.items():
        g = got.get(p, [])
        assert len(g) == len(exp), f"partition {p}: expected {len(exp)} messages, got {len(g)}"
        for i, (e, m) in enumerate(zip(exp, g)):
            assert m.key == e.key, f"p{p}[{i}] key {m.key!r} != {e.key!r}"
            assert m.value == e.value, f"p{p}[{i}] value differs (len {len(m.value or b'')} vs {len(e.value or b'')})"
            assert tuple(m.headers) == tuple(e.headers), f"p{p}[{i}] headers {m.headers!r} != {e.headers!r}"
            if check_ts:
                assert m.timestamp == e.timestamp, f"p{p}[{i}] timestamp {m.timestamp} != {e.timestamp}"
        offsets = [m.offset for m in g]
        assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets), f"p{p}: offsets not increasing"
