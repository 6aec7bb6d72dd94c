"""Malformed and hostile input over a raw socket: the broker answers with the right error code
or closes that one connection, and keeps serving everyone else."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

import kwire
from helpers import Msg, consume_all, create_topic, produce_confluent

MAX_REQUEST = 1024 * 1024

UNSUPPORTED_VERSION = 35
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_TOPIC_EXCEPTION = 17


def still_serving(broker, topic):
    """The process is up, and a normal client can produce and consume."""
    assert broker.alive(), f"broker died (exit {broker.proc.returncode})"
    c = kwire.Conn(broker.port)
    c.send(kwire.api_versions(99, 0))
    err, _ = kwire.parse_api_versions_v0(c.response(99))
    assert err == 0
    c.close()
    create_topic(broker.bootstrap, topic + "-after", 1)
    produce_confluent(broker.bootstrap, topic + "-after", [Msg(0, b"k", b"still-alive")])
    got = consume_all(broker.bootstrap, topic + "-after", 1)
    assert [m.value for m in got[0]] == [b"still-alive"]


def high_watermark(bootstrap, topic, p=0) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "hw"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
    finally:
        c.close()


def test_api_versions(broker, topic_name):
    c = kwire.Conn(broker.port)
    c.send(kwire.api_versions(1, 0))
    err, keys = kwire.parse_api_versions_v0(c.response(1))
    assert err == 0
    for k in (0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18, 19, 20):
        assert k in keys, f"api key {k} missing from ApiVersions: {sorted(keys)}"
    for k, (lo, hi) in keys.items():
        assert 0 <= lo <= hi, (k, lo, hi)
    assert keys[18][1] >= 3
    assert keys[0][0] <= 7 <= keys[0][1], f"Produce v7 not supported: {keys[0]}"
    assert keys[3][0] <= 4 <= keys[3][1], f"Metadata v4 not supported: {keys[3]}"
    # the same connection answers again (v3, flexible header)
    c.send(kwire.api_versions(2, 3))
    r = c.response(2)
    assert r.i16() == 0  # error code of the v3 body
    c.close()


def test_api_versions_unsupported_version(broker, topic_name):
    c = kwire.Conn(broker.port)
    c.send(kwire.api_versions(7, 127))
    err, keys = kwire.parse_api_versions_v0(c.response(7))
    assert err == UNSUPPORTED_VERSION
    assert 18 in keys and 0 in keys and 1 in keys, sorted(keys)
    # a client then retries with a version it finds in the list, on the same connection
    c.send(kwire.api_versions(8, 0))
    err, _ = kwire.parse_api_versions_v0(c.response(8))
    assert err == 0
    c.close()
    still_serving(broker, topic_name)


def test_negative_frame_size(broker, topic_name):
    c = kwire.Conn(broker.port)
    c.send(struct.pack(">i", -5) + b"\x00" * 16)
    assert c.closed_by_peer(), "broker answered a frame of negative size"
    c.close()
    still_serving(broker, topic_name)


# message.max.bytes is lowered too: this broker refuses a message.max.bytes above socket.request.max.bytes
@pytest.mark.broker_props({"socket.request.max.bytes": MAX_REQUEST, "message.max.bytes": MAX_REQUEST // 2})
def test_frame_over_max_request_size(broker, topic_name):
    c = kwire.Conn(broker.port)
    c.send(struct.pack(">i", MAX_REQUEST + 1) + b"\x00" * 1024)
    assert c.closed_by_peer(), "broker answered an oversized frame"
    c.close()
    # a huge size is refused at once, without the broker waiting for (or allocating) 2 GB
    c = kwire.Conn(broker.port)
    c.send(struct.pack(">i", 0x7FFFFFF0))
    assert c.closed_by_peer(timeout=5)
    c.close()
    still_serving(broker, topic_name)


def test_truncated_frames(broker, topic_name):
    # size says 1000, 10 bytes arrive, then the client goes away
    c = kwire.Conn(broker.port)
    c.send(struct.pack(">i", 1000) + b"\x00\x12\x00\x00" + b"\x00" * 6)
    c.close()
    # a stalled half frame on one connection does not block others
    stalled = kwire.Conn(broker.port)
    stalled.send(struct.pack(">i", 1000) + b"\x00\x03")
    c = kwire.Conn(broker.port)
    c.send(kwire.api_versions(5, 0))
    assert kwire.parse_api_versions_v0(c.response(5))[0] == 0
    c.close()
    # a frame whose body is shorter than its own header says
    c = kwire.Conn(broker.port)
    c.send(kwire.frame(struct.pack(">hhi", 3, 4, 77) + struct.pack(">h", 50) + b"abc"))
    assert c.closed_by_peer()
    c.close()
    # a Metadata request cut in the middle of its topic array
    c = kwire.Conn(broker.port)
    c.send(kwire.frame(kwire.header_v1(3, 4, 78) + kwire.i32(3) + kwire.string("a")))
    assert c.closed_by_peer()
    c.close()
    stalled.close()
    still_serving(broker, topic_name)


def test_unknown_api_key(broker, topic_name):
    c = kwire.Conn(broker.port)
    c.send(kwire.frame(kwire.header_v1(32000, 0, 11) + b"\x00" * 8))
    # Kafka closes the connection; an error response would also be acceptable, silence is not
    c.s.settimeout(10)
    try:
        data = c.s.recv(4)
    except ConnectionResetError:
        data = b""
    if data:
        size = struct.unpack(">i", data)[0]
        body = c.recv_exact(size)
        assert struct.unpack(">i", body[:4])[0] == 11
    c.close()
    still_serving(broker, topic_name)


def test_raw_produce_valid_then_corrupt_crc(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 2)
    # a raw produce must go to the partition's leader (on a cluster, not every node is)
    c = kwire.Conn(broker.leader(topic_name, 1).port)
    # a well-formed batch first, so that the encoder is known good
    batch = kwire.record_batch([(b"k1", b"raw-one"), (None, b"raw-two"), (b"k3", None)])
    c.send(kwire.produce_v7(21, topic_name, 1, batch))
    topics = kwire.parse_produce_v7(c.response(21))
    assert topics[0][0] == topic_name
    p = topics[0][1][0]
    assert (p["index"], p["error"], p["base_offset"]) == (1, 0, 0), p
    got = consume_all(broker.bootstrap, topic_name, 2)
    assert [(m.key, m.value) for m in got[1]] == [(b"k1", b"raw-one"), (None, b"raw-two"), (b"k3", None)]

    # flip one byte of a record value: CRC no longer matches
    bad = bytearray(kwire.record_batch([(b"k", b"will-be-corrupted")]))
    bad[-3] ^= 0xFF
    port0 = broker.leader(topic_name, 0).port
    c0 = kwire.Conn(port0)
    c0.send(kwire.produce_v7(22, topic_name, 0, bytes(bad)))
    p = kwire.parse_produce_v7(c0.response(22))[0][1][0]
    c0.close()
    assert p["error"] == CORRUPT_MESSAGE, p
    assert high_watermark(broker.bootstrap, topic_name, 0) == 0, "a corrupt batch was written"

    # a batch whose length field disagrees with the bytes sent
    bad = bytearray(kwire.record_batch([(b"k", b"v")]))
    bad[8:12] = struct.pack(">i", len(bad) + 100)
    c2 = kwire.Conn(port0)
    c2.send(kwire.produce_v7(23, topic_name, 0, bytes(bad)))
    try:
        p = kwire.parse_produce_v7(c2.response(23))[0][1][0]
        assert p["error"] != 0, p
    except ConnectionError:
        pass  # closing the connection is fine too
    c2.close()
    assert high_watermark(broker.bootstrap, topic_name, 0) == 0
    c.close()
    still_serving(broker, topic_name)


def test_raw_produce_bad_partition_and_topic(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 2)
    c = kwire.Conn(broker.port)
    batch = kwire.record_batch([(b"k", b"v")])
    c.send(kwire.produce_v7(31, topic_name, 7, batch))
    p = kwire.parse_produce_v7(c.response(31))[0][1][0]
    assert p["error"] == UNKNOWN_TOPIC_OR_PARTITION, p
    c.send(kwire.produce_v7(32, topic_name, -1, batch))
    p = kwire.parse_produce_v7(c.response(32))[0][1][0]
    assert p["error"] == UNKNOWN_TOPIC_OR_PARTITION, p
    # an invalid topic name on produce: Kafka answers UNKNOWN_TOPIC_OR_PARTITION (no auto-create on produce)
    c.send(kwire.produce_v7(33, "bad topic!", 0, batch))
    p = kwire.parse_produce_v7(c.response(33))[0][1][0]
    assert p["error"] in (UNKNOWN_TOPIC_OR_PARTITION, INVALID_TOPIC_EXCEPTION), p
    # Metadata with auto-create for an invalid name: INVALID_TOPIC_EXCEPTION, and nothing is created
    for corr, name in ((34, "bad topic!"), (35, "a" * 250), (36, ".."), (37, "with/slash")):
        c.send(kwire.metadata_v4(corr, [name], auto_create=True))
        md = kwire.parse_metadata_v4(c.response(corr))
        assert md[name][0] == INVALID_TOPIC_EXCEPTION, (name, md[name])
    c.send(kwire.metadata_v4(40, None, auto_create=False))
    md = kwire.parse_metadata_v4(c.response(40))
    assert not any(n in md for n in ("bad topic!", "..", "with/slash")), sorted(md)
    assert md[topic_name][0] == 0 and sorted(i for i, _, _ in md[topic_name][1]) == [0, 1]
    c.close()
    still_serving(broker, topic_name)


def test_many_bad_connections_in_a_row(broker, topic_name):
    """A burst of garbage connections leaves the broker healthy and its fd count bounded."""
    import random
    rnd = random.Random(5)
    fd_dir = Path(f"/proc/{broker.proc.pid}/fd")
    fds_before = len(list(fd_dir.iterdir()))
    for i in range(200):
        c = kwire.Conn(broker.port)
        c.send(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 64))))
        c.close()
    time.sleep(1)
    fds = len(list(fd_dir.iterdir()))
    assert fds <= fds_before + 10, f"broker holds {fds} fds after 200 closed garbage connections ({fds_before} before)"
    still_serving(broker, topic_name)
