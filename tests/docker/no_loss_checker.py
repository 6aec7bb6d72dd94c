"""Checker of the no-loss test (test_no_loss.py): what the producers sent and had
acknowledged, against what the partitions hold, and every replica's log against the others.

- `History` collects, per producer, every value sent and its outcome (acknowledged at
  partition/offset, failed, or no answer);
- `classify` compares a history with the consumed logs and counts Jepsen's usual classes:
  lost (acknowledged, absent), duplicated (present more than once), reordered (one producer's
  acknowledged values of one partition not in acknowledgement order), unexpected (present,
  never sent), and misplaced (found at another partition/offset than acknowledged);
- `fetch_replica` and `replica_batches` read one replica of a partition with a raw Fetch v11
  (KIP-392: a consumer's fetch served by a follower up to its own high watermark), and
  `compare_replicas` compares the record batches of every replica below the high watermark:
  base offset, last offset delta, CRC;
- `segment_batches` parses a partition directory's `.log` files (copied from a stopped pod),
  for the same comparison on what is on disk.
"""

import io
import socket
import struct
import tarfile
import threading

# ---- the history ------------------------------------------------------------------------


class History:
    """What every producer sent and what it was told. Values are `p<id>-<seq>`; each
    producer's callbacks run on its own thread, so every producer writes its own dicts."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent = {}      # value -> (producer, partition, seq, monotonic send time)
        self.acked = {}     # value -> (partition, offset, ack index of its producer, time)
        self.failed = {}    # value -> error text
        self.fatal = []     # (producer, error text) of fatal producer errors
        self.acked_twice = []  # values with a second delivery report
        self.acked_without_offset = 0

    def record_sent(self, producer, value, partition, seq, when):
        with self.lock:
            self.sent[value] = (producer, partition, seq, when)

    def record_ack(self, value, partition, offset, index, when):
        # librdkafka reports no offset (None) when the broker answered without one, e.g. a
        # retried batch it found to be a duplicate of one already written.
        offset = -1 if offset is None or offset < 0 else offset
        with self.lock:
            if offset < 0:
                self.acked_without_offset += 1
            if value in self.acked:
                self.acked_twice.append(value)
                return
            self.acked[value] = (partition, offset, index, when)

    def record_failure(self, value, error):
        with self.lock:
            self.failed[value] = error

    def indeterminate(self):
        return [v for v in self.sent if v not in self.acked]


def classify(history, logs):
    """`logs`: {partition: [(offset, value bytes)]} in offset order, every partition read
    from its start to its high watermark. Returns (counts, details), details holding a few
    examples of every class."""
    where = {}       # value -> [(partition, offset)]
    unexpected = []
    for partition, records in logs.items():
        for offset, raw in records:
            value = raw.decode(errors="replace") if raw is not None else None
            if value is None or value not in history.sent:
                unexpected.append((partition, offset, value))
                continue
            where.setdefault(value, []).append((partition, offset))

    lost = [v for v in history.acked if v not in where]
    duplicated = {v: places for v, places in where.items() if len(places) > 1}
    misplaced = []
    for value, (partition, offset, _, _) in history.acked.items():
        places = where.get(value)
        if places and offset >= 0 and places[0] != (partition, offset):
            misplaced.append((value, (partition, offset), places[0]))
    wrong_partition = [(v, history.sent[v][1], p) for v, places in where.items()
                       for p, _ in places if p != history.sent[v][1]]

    # Reordering: in each partition, each producer's acknowledged values must appear in the
    # order they were acknowledged (and, being idempotent, in the order they were sent).
    reordered = []
    for partition, records in logs.items():
        last = {}  # producer -> (ack index, seq, value) of its previous acknowledged value
        for offset, raw in records:
            value = raw.decode(errors="replace") if raw is not None else None
            if value not in history.acked:
                continue
            producer, _, seq, _ = history.sent[value]
            index = history.acked[value][2]
            before = last.get(producer)
            if before and (index < before[0] or seq < before[1]):
                reordered.append((partition, offset, value, before[2]))
            last[producer] = (index, seq, value)

    indeterminate = history.indeterminate()
    counts = {
        "sent": len(history.sent),
        "acknowledged": len(history.acked),
        "indeterminate": len(indeterminate),
        "indeterminate present": sum(v in where for v in indeterminate),
        "read": sum(len(r) for r in logs.values()),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "reordered": len(reordered),
        "unexpected": len(unexpected),
        "misplaced": len(misplaced) + len(wrong_partition),
    }
    details = {
        "lost": sorted(lost, key=lambda v: history.sent[v][3])[:20],
        "duplicated": list(duplicated.items())[:20],
        "reordered": reordered[:20],
        "unexpected": unexpected[:20],
        "misplaced": (misplaced + wrong_partition)[:20],
    }
    return counts, details


# ---- record batches -----------------------------------------------------------------------

# Record batch v2 header: base offset i64, length i32, partition leader epoch i32, magic i8,
# crc u32, attributes i16, last offset delta i32, ... (61 bytes in all).
BATCH_HEADER = struct.Struct(">qiibIhi")
LOG_OVERHEAD = 12  # base offset + length


def parse_batches(data):
    """[(base offset, last offset delta, crc, leader epoch)] of the whole batches in `data`;
    a partial batch at the end (a fetch's size limit) is left out."""
    out = []
    at = 0
    while at + BATCH_HEADER.size <= len(data):
        base, length, epoch, magic, crc, _attrs, last_delta = BATCH_HEADER.unpack_from(data, at)
        if at + LOG_OVERHEAD + length > len(data):
            break
        if magic != 2:
            raise ValueError(f"record batch magic {magic} at offset {base}")
        out.append((base, last_delta, crc, epoch))
        at += LOG_OVERHEAD + length
    return out


def segment_batches(files):
    """Batches of a partition's `.log` segment files ({file name: bytes}), in offset order.
    A segment's file name is its base offset; a torn tail (after a crash) is left out."""
    out = []
    for name in sorted(n for n in files if n.endswith(".log")):
        out.extend(parse_batches(files[name]))
    return out


def untar(stream):
    """{member name: bytes} of the regular files of a tar stream (`docker cp CONTAINER:DIR -`)."""
    out = {}
    with tarfile.open(fileobj=io.BytesIO(stream), mode="r:") as tar:
        for member in tar:
            if member.isfile():
                out[member.name] = tar.extractfile(member).read()
    return out


def read_checkpoint(text):
    """Kafka's offset checkpoint file (version, count, then `topic partition offset` lines):
    {(topic, partition): offset}."""
    lines = text.split("\n")
    count = int(lines[1])
    out = {}
    for line in lines[2:2 + count]:
        topic, partition, offset = line.split()
        out[(topic, int(partition))] = int(offset)
    return out


def compare_replicas(batches, high_watermark, log_start=0):
    """`batches`: {replica: [(base, last delta, crc, epoch)]}. Compares every replica's
    batches that start below `high_watermark` with the first replica's. Returns a list of
    mismatch descriptions (empty when all agree)."""
    mismatches = []
    below = {r: [b[:3] for b in bs if b[0] < high_watermark] for r, bs in batches.items()}
    replicas = sorted(below)
    reference = below[replicas[0]]
    # The batches must tile [log start, high watermark) without gaps in every replica.
    for replica in replicas:
        got = below[replica]
        if got and got[0][0] != log_start:
            mismatches.append(f"replica {replica}: first batch at {got[0][0]}, not {log_start}")
        for a, b in zip(got, got[1:]):
            if b[0] != a[0] + a[1] + 1:
                mismatches.append(f"replica {replica}: gap or overlap after batch at {a[0]} "
                                  f"(next batch at {b[0]})")
                break
        end = got[-1][0] + got[-1][1] + 1 if got else log_start
        if end < high_watermark:
            mismatches.append(f"replica {replica}: batches end at {end}, below the high "
                              f"watermark {high_watermark}")
    for replica in replicas[1:]:
        got = below[replica]
        if got != reference:
            first = next((i for i, (a, b) in enumerate(zip(reference, got)) if a != b),
                         min(len(reference), len(got)))
            mismatches.append(
                f"replicas {replicas[0]} and {replica} differ at batch #{first}: "
                f"{reference[first] if first < len(reference) else None} vs "
                f"{got[first] if first < len(got) else None} "
                f"({len(reference)} vs {len(got)} batches below {high_watermark})")
    return mismatches


# ---- a raw Fetch v11, to read one given replica -------------------------------------------

FETCH = 1
FETCH_VERSION = 11  # the first version a follower serves to a consumer (KIP-392)


def _string(s):
    raw = s.encode()
    return struct.pack(">h", len(raw)) + raw


def fetch_request(correlation, topic, partition, offset, max_bytes):
    header = struct.pack(">hhi", FETCH, FETCH_VERSION, correlation) + _string("no-loss-checker")
    body = struct.pack(">iiiibii", -1, 100, 0, max_bytes, 0, 0, -1)  # replica -1: a consumer
    body += struct.pack(">i", 1) + _string(topic)
    body += struct.pack(">iiiqqi", 1, partition, -1, offset, -1, max_bytes)
    body += struct.pack(">i", 0)  # forgotten topics
    body += _string("")  # rack id: none, so the leader names no preferred replica
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


class _Reader:
    def __init__(self, data):
        self.data, self.at = data, 0

    def take(self, fmt):
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return values if len(values) > 1 else values[0]

    def string(self):
        n = self.take(">h")
        s = self.data[self.at:self.at + n].decode() if n >= 0 else None
        self.at += max(n, 0)
        return s

    def bytes(self):
        n = self.take(">i")
        b = self.data[self.at:self.at + n] if n >= 0 else b""
        self.at += max(n, 0)
        return b


def _recv(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return bytes(buf)


def fetch_replica(address, topic, partition, offset, max_bytes=4 << 20, timeout=10.0):
    """One Fetch v11 of `topic`/`partition` from `offset`, sent to the broker at `address`:
    (error code, high watermark, log start offset, record bytes)."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(fetch_request(7, topic, partition, offset, max_bytes))
        (size,) = struct.unpack(">i", _recv(s, 4))
        r = _Reader(_recv(s, size))
    assert r.take(">i") == 7, "correlation id"
    r.take(">ihi")  # throttle, top-level error, session id
    for _ in range(r.take(">i")):
        name = r.string()
        for _ in range(r.take(">i")):
            index, error, high, _lso, start = r.take(">ihqqq")
            aborted = r.take(">i")
            for _ in range(max(aborted, 0)):
                r.take(">qq")
            r.take(">i")  # preferred read replica
            records = r.bytes()
            if name == topic and index == partition:
                return error, high, start, records
    raise AssertionError(f"fetch answer of {address} has no {topic}-{partition}")


def replica_batches(address, topic, partition, max_bytes=4 << 20):
    """(high watermark, batches) of one replica, read from its log start to its high
    watermark. Raises on a fetch error."""
    error, high, start, _ = fetch_replica(address, topic, partition, 0, 1)
    if error:
        raise AssertionError(f"fetch of {topic}-{partition} from {address}: error {error}")
    out = []
    offset = start
    while offset < high:
        error, _, _, records = fetch_replica(address, topic, partition, offset, max_bytes)
        if error:
            raise AssertionError(f"fetch of {topic}-{partition}@{offset} from {address}: "
                                 f"error {error}")
        batches = parse_batches(records)
        if not batches:
            raise AssertionError(f"{address} returned no whole batch of {topic}-{partition} "
                                 f"at {offset} (high watermark {high})")
        out.extend(b for b in batches if b[0] + b[1] >= offset)
        offset = batches[-1][0] + batches[-1][1] + 1
    return high, out
