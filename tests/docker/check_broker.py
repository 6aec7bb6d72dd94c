"""Checks a broker container from the host: /healthz and /readyz answer, the rack came from
the container's environment, and records produced through the published port come back.

    check_broker.py BOOTSTRAP ADMIN_URL EXPECTED_RACK
"""

import sys
import urllib.request
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.admin import KafkaAdminClient

MESSAGES = 100


def check_http(admin_url):
    for path, body in (("/healthz", "ok\n"), ("/readyz", "ready\n")):
        with urllib.request.urlopen(admin_url + path, timeout=5) as response:
            text = response.read().decode()
            assert response.status == 200 and text == body, f"{path}: {response.status} {text!r}"
    print("  /healthz and /readyz answer 200")


def check_rack(bootstrap, rack):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        racks = [b["rack"] for b in admin.describe_cluster()["brokers"]]
    finally:
        admin.close()
    assert racks == [rack], f"racks {racks}, expected [{rack!r}] from ${{env:KAFKA_RACK}}"
    print(f"  broker.rack=${{env:KAFKA_RACK}} resolved to {rack!r}")


def check_round_trip(bootstrap):
    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(20)
    sent = [f"message-{i}".encode() for i in range(MESSAGES)]
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i, value in enumerate(sent):
        producer.produce(topic, value, key=str(i % 2).encode())
    assert producer.flush(20) == 0, "records left unacknowledged"
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": topic,
        "auto.offset.reset": "earliest",
    })
    consumer.subscribe([topic])
    received = []
    try:
        for _ in range(60):
            for message in consumer.consume(num_messages=MESSAGES, timeout=1.0):
                assert message.error() is None, message.error()
                received.append(message.value())
            if len(received) >= MESSAGES:
                break
    finally:
        consumer.close()
    assert sorted(received) == sorted(sent), f"sent {len(sent)} records, got {len(received)} back"
    print(f"  {MESSAGES} records produced and consumed back through {bootstrap}")


def main(bootstrap, admin_url, rack):
    check_http(admin_url)
    check_rack(bootstrap, rack)
    check_round_trip(bootstrap)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
