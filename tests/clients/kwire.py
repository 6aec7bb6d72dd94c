"""Just enough of the Kafka wire protocol, by hand, to send well-formed and malformed requests."""

from __future__ import annotations

import socket
import struct
import time

# --- primitives -----------------------------------------------------------------

def i8(v): return struct.pack(">b", v)
def i16(v): return struct.pack(">h", v)
def i32(v): return struct.pack(">i", v)
def i64(v): return struct.pack(">q", v)


def string(s: str | None) -> bytes:
    if s is None:
        return i16(-1)
    b = s.encode()
    return i16(len(b)) + b


def kbytes(b: bytes | None) -> bytes:
    return i32(-1) if b is None else i32(len(b)) + b


def uvarint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varint(v: int) -> bytes:  # zigzag
    return uvarint((v << 1) ^ (v >> 63))


def compact_string(s: str) -> bytes:
    b = s.encode()
    return uvarint(len(b) + 1) + b


_CRC32C_TABLE = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC32C_TABLE.append(_c)


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC32C_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the standard check value


# --- record batch v2 ---------------------------------------------------------------

def record(offset_delta: int, key: bytes | None, value: bytes | None, ts_delta: int = 0) -> bytes:
    body = i8(0) + varint(ts_delta) + varint(offset_delta)
    body += varint(-1) if key is None else varint(len(key)) + key
    body += varint(-1) if value is None else varint(len(value)) + value
    body += varint(0)  # no headers
    return varint(len(body)) + body


def record_batch(records: list[tuple[bytes | None, bytes | None]], base_ts: int | None = None) -> bytes:
    base_ts = int(time.time() * 1000) if base_ts is None else base_ts
    recs = b"".join(record(i, k, v) for i, (k, v) in enumerate(records))
    after_crc = (i16(0) + i32(len(records) - 1) + i64(base_ts) + i64(base_ts) + i64(-1) + i16(-1) + i32(-1)
                 + i32(len(records)) + recs)
    crc = crc32c(after_crc)
    after_len = i32(0) + i8(2) + struct.pack(">I", crc) + after_crc  # leader epoch, magic, crc
    return i64(0) + i32(len(after_len)) + after_len


# --- requests -------------------------------------------------------------------

def header_v1(api_key: int, version: int, corr: int, client_id: str | None = "e2e-raw") -> bytes:
    return i16(api_key) + i16(version) + i32(corr) + string(client_id)


def header_v2(api_key: int, version: int, corr: int, client_id: str | None = "e2e-raw") -> bytes:
    return header_v1(api_key, version, corr, client_id) + uvarint(0)


def frame(payload: bytes) -> bytes:
    return i32(len(payload)) + payload


def produce_v7(corr: int, topic: str, partition: int, batch: bytes, acks: int = -1) -> bytes:
    body = string(None) + i16(acks) + i32(10000) + i32(1) + string(topic) + i32(1) + i32(partition) + kbytes(batch)
    return frame(header_v1(0, 7, corr) + body)


def metadata_v4(corr: int, topics: list[str] | None, auto_create: bool) -> bytes:
    body = i32(-1) if topics is None else i32(len(topics)) + b"".join(string(t) for t in topics)
    body += i8(1 if auto_create else 0)
    return frame(header_v1(3, 4, corr) + body)


def api_versions(corr: int, version: int) -> bytes:
    if version >= 3:
        return frame(header_v2(18, version, corr) + compact_string("e2e") + compact_string("1.0") + uvarint(0))
    return frame(header_v1(18, version, corr))


# --- responses ------------------------------------------------------------------

class Reader:
    def __init__(self, data: bytes):
        self.d = data
        self.o = 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.o)
        self.o += struct.calcsize(fmt)
        return v[0]

    def i8(self): return self.take(">b")
    def i16(self): return self.take(">h")
    def i32(self): return self.take(">i")
    def i64(self): return self.take(">q")

    def string(self):
        n = self.i16()
        if n < 0:
            return None
        s = self.d[self.o:self.o + n].decode()
        self.o += n
        return s

    def array(self, item):
        n = self.i32()
        return [] if n < 0 else [item() for _ in range(n)]


class Conn:
    def __init__(self, port: int, timeout: float = 10):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)

    def send(self, data: bytes):
        self.s.sendall(data)

    def recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError(f"closed after {len(buf)} of {n} bytes")
            buf += chunk
        return buf

    def response(self, corr: int) -> Reader:
        size = struct.unpack(">i", self.recv_exact(4))[0]
        r = Reader(self.recv_exact(size))
        got = r.i32()
        assert got == corr, f"correlation id {got} != {corr}"
        return r

    def closed_by_peer(self, timeout: float = 10) -> bool:
        """True if the broker closes the connection (EOF or reset) within timeout; False if it sends data."""
        self.s.settimeout(timeout)
        try:
            data = self.s.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            raise AssertionError(f"broker neither answered nor closed within {timeout}s")
        return data == b""

    def close(self):
        self.s.close()


def parse_api_versions_v0(r: Reader):
    err = r.i16()
    keys = r.array(lambda: (r.i16(), r.i16(), r.i16()))
    return err, {k: (lo, hi) for k, lo, hi in keys}


def parse_produce_v7(r: Reader):
    def part():
        return {"index": r.i32(), "error": r.i16(), "base_offset": r.i64(), "log_append_time": r.i64(),
                "log_start_offset": r.i64()}

    topics = r.array(lambda: (r.string(), r.array(part)))
    return topics


def parse_metadata_v4(r: Reader):
    r.i32()  # throttle
    r.array(lambda: (r.i32(), r.string(), r.i32(), r.string()))
    r.string()  # cluster id
    r.i32()  # controller

    def part():
        e, idx, leader = r.i16(), r.i32(), r.i32()
        r.array(r.i32)
        r.array(r.i32)
        return idx, e, leader

    def topic():
        e, name, internal = r.i16(), r.string(), r.i8()
        return name, e, r.array(part)

    return {name: (e, parts) for name, e, parts in r.array(topic)}
