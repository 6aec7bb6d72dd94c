"""Topic administration with confluent-kafka's AdminClient and kafka-python's KafkaAdminClient."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource, NewPartitions, NewTopic,
                                   ResourceType)
from kafka.admin import ConfigFilterType, ConfigResource as KConfigResource, ConfigResourceType, KafkaAdminClient

from helpers import Msg, admin, consume_all, create_topic, produce_confluent, wait_topic


def topic_configs(bootstrap, topic) -> dict:
    res = ConfigResource(ResourceType.TOPIC, topic)
    a = admin(bootstrap)  # the client must outlive its futures
    fs = a.describe_configs([res], request_timeout=20)
    return {k: v for k, v in fs[res].result(20).items()}


def source_of(entry) -> ConfigSource:
    return ConfigSource(getattr(entry.source, "value", entry.source))


def topic_exists(bootstrap, topic) -> bool:
    md = admin(bootstrap).list_topics(timeout=10)
    return topic in md.topics


def wait_until(pred, timeout=20, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def error_code(fut) -> int:
    with pytest.raises(KafkaException) as ei:
        fut.result(20)
    return ei.value.args[0].code()


def test_confluent_create_with_configs_and_describe(broker, topic_name):
    a = admin(broker.bootstrap)
    fs = a.create_topics([NewTopic(topic_name, num_partitions=3, replication_factor=1,
                                   config={"retention.ms": "123456", "cleanup.policy": "compact",
                                           "max.message.bytes": "200000"})], request_timeout=20)
    fs[topic_name].result(20)
    wait_topic(broker.bootstrap, topic_name, 3)
    broker.wait_metadata_settled()
    cfg = topic_configs(broker.bootstrap, topic_name)
    assert cfg["retention.ms"].value == "123456"
    assert cfg["cleanup.policy"].value == "compact"
    assert cfg["max.message.bytes"].value == "200000"
    assert source_of(cfg["retention.ms"]) == ConfigSource.DYNAMIC_TOPIC_CONFIG
    # a config left at its default is described with a default source and Kafka's default value
    assert "segment.bytes" in cfg, sorted(cfg)
    assert source_of(cfg["segment.bytes"]) != ConfigSource.DYNAMIC_TOPIC_CONFIG
    # describe_topics agrees on the partition count
    md = a.list_topics(topic_name, timeout=10).topics[topic_name]
    assert sorted(md.partitions) == [0, 1, 2]


def test_confluent_create_errors(broker, topic_name):
    a = admin(broker.bootstrap)
    create_topic(broker.bootstrap, topic_name, 1)
    fs = a.create_topics([NewTopic(topic_name, 1, 1)], request_timeout=20)
    assert error_code(fs[topic_name]) == KafkaError.TOPIC_ALREADY_EXISTS
    bad = "bad topic name!"
    fs = a.create_topics([NewTopic(bad, 1, 1)], request_timeout=20)
    assert error_code(fs[bad]) == KafkaError.TOPIC_EXCEPTION
    fs = a.create_topics([NewTopic(topic_name + "-x", 1, 1, config={"cleanup.policy": "bogus"})], request_timeout=20)
    assert error_code(fs[topic_name + "-x"]) == KafkaError.INVALID_CONFIG
    fs = a.create_topics([NewTopic(topic_name + "-y", 1, 1, config={"no.such.config": "1"})], request_timeout=20)
    assert error_code(fs[topic_name + "-y"]) == KafkaError.INVALID_CONFIG
    fs = a.create_topics([NewTopic(topic_name + "-z", 0, 1)], request_timeout=20)
    assert error_code(fs[topic_name + "-z"]) == KafkaError.INVALID_PARTITIONS
    assert not topic_exists(broker.bootstrap, topic_name + "-x")
    assert not topic_exists(broker.bootstrap, topic_name + "-y")


def test_confluent_validate_only_creates_nothing(broker, topic_name):
    a = admin(broker.bootstrap)
    fs = a.create_topics([NewTopic(topic_name, 2, 1, config={"retention.ms": "1000"})], validate_only=True,
                         request_timeout=20)
    fs[topic_name].result(20)
    # validate-only still validates
    fs = a.create_topics([NewTopic(topic_name + "-bad", 2, 1, config={"retention.ms": "notanumber"})],
                         validate_only=True, request_timeout=20)
    assert error_code(fs[topic_name + "-bad"]) == KafkaError.INVALID_CONFIG
    time.sleep(1)
    assert not topic_exists(broker.bootstrap, topic_name)
    # and the name is still free
    create_topic(broker.bootstrap, topic_name, 2)


def test_confluent_incremental_alter_configs(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 1, config={"cleanup.policy": "compact"})
    a = admin(broker.bootstrap)
    res = ConfigResource(ResourceType.TOPIC, topic_name, incremental_configs=[
        ConfigEntry("retention.ms", "999000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("cleanup.policy", None, incremental_operation=AlterConfigOpType.DELETE),
    ])
    for f in a.incremental_alter_configs([res], request_timeout=20).values():
        f.result(20)
    # on a cluster, consecutive describes may be answered by different nodes, each applying
    # the change when it reads it from the metadata log
    broker.wait_metadata_settled()
    cfg = topic_configs(broker.bootstrap, topic_name)
    assert cfg["retention.ms"].value == "999000"
    assert cfg["cleanup.policy"].value == "delete", "DELETE must revert to the default"
    # APPEND on a list config
    res = ConfigResource(ResourceType.TOPIC, topic_name, incremental_configs=[
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND)])
    for f in a.incremental_alter_configs([res], request_timeout=20).values():
        f.result(20)
    broker.wait_metadata_settled()
    assert set(topic_configs(broker.bootstrap, topic_name)["cleanup.policy"].value.split(",")) == {"delete", "compact"}
    # invalid value is rejected and leaves the config alone
    res = ConfigResource(ResourceType.TOPIC, topic_name, incremental_configs=[
        ConfigEntry("retention.ms", "abc", incremental_operation=AlterConfigOpType.SET)])
    fut = list(a.incremental_alter_configs([res], request_timeout=20).values())[0]
    assert error_code(fut) == KafkaError.INVALID_CONFIG
    broker.wait_metadata_settled()
    assert topic_configs(broker.bootstrap, topic_name)["retention.ms"].value == "999000"
    # survives a restart
    broker.restart()
    broker.wait_metadata_settled()
    assert topic_configs(broker.bootstrap, topic_name)["retention.ms"].value == "999000"


def test_confluent_create_partitions_and_delete(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 2)
    a = admin(broker.bootstrap)
    a.create_partitions([NewPartitions(topic_name, 5)], request_timeout=20)[topic_name].result(20)
    wait_topic(broker.bootstrap, topic_name, 5)
    msgs = [Msg(p, b"k", b"to-%d" % p) for p in range(5)]
    produce_confluent(broker.bootstrap, topic_name, msgs)
    got = consume_all(broker.bootstrap, topic_name, 5)
    assert [[m.value for m in got[p]] for p in range(5)] == [[b"to-%d" % p] for p in range(5)]
    # shrinking is refused
    fut = a.create_partitions([NewPartitions(topic_name, 3)], request_timeout=20)[topic_name]
    assert error_code(fut) == KafkaError.INVALID_PARTITIONS
    a.delete_topics([topic_name], request_timeout=20)[topic_name].result(20)
    wait_until(lambda: not topic_exists(broker.bootstrap, topic_name), what="topic deleted")
    fut = a.delete_topics([topic_name], request_timeout=20)[topic_name]
    assert error_code(fut) == KafkaError.UNKNOWN_TOPIC_OR_PART
    # recreate under the same name starts empty
    create_topic(broker.bootstrap, topic_name, 1)
    assert consume_all(broker.bootstrap, topic_name, 1) == {0: []}


def _find_value(tree, key):
    """kafka-python's describe_configs result is nested dicts; find the entry for `key`."""
    if isinstance(tree, dict):
        if key in tree:
            e = tree[key]
            if isinstance(e, dict):
                for f in ("value", "config_value"):
                    if f in e:
                        return e[f]
            return e
        for v in tree.values():
            r = _find_value(v, key)
            if r is not None:
                return r
    elif isinstance(tree, (list, tuple)):
        for v in tree:
            if isinstance(v, (list, tuple)) and len(v) >= 2 and v[0] == key:
                return v[1]
            r = _find_value(v, key)
            if r is not None:
                return r
    return None


def test_kafka_python_admin(broker, topic_name):
    ka = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20000)
    try:
        ka.create_topics({topic_name: {"num_partitions": 2, "replication_factor": 1,
                                       "configs": {"retention.ms": "7200000"}}})
        wait_topic(broker.bootstrap, topic_name, 2)
        broker.wait_metadata_settled()
        # validate only
        ka.create_topics({topic_name + "-v": {"num_partitions": 1, "replication_factor": 1}}, validate_only=True)
        assert not topic_exists(broker.bootstrap, topic_name + "-v")

        desc = ka.describe_configs([KConfigResource(ConfigResourceType.TOPIC, topic_name)], config_filter=ConfigFilterType.ALL)
        assert _find_value(desc, "retention.ms") == "7200000", desc
        assert topic_configs(broker.bootstrap, topic_name)["retention.ms"].value == "7200000"

        ka.alter_configs([KConfigResource(ConfigResourceType.TOPIC, topic_name,
                                          configs={"retention.ms": "3600000"})])
        broker.wait_metadata_settled()
        assert topic_configs(broker.bootstrap, topic_name)["retention.ms"].value == "3600000"

        ka.create_partitions({topic_name: 4})
        wait_topic(broker.bootstrap, topic_name, 4)

        ka.delete_topics([topic_name])
        wait_until(lambda: not topic_exists(broker.bootstrap, topic_name), what="topic deleted")
    finally:
        ka.close()


def test_kafka_python_describe_log_dirs(broker, topic_name):
    """Each broker tells the size of every partition replica it holds (DescribeLogDirs)."""
    create_topic(broker.bootstrap, topic_name, 2)
    produce_confluent(broker.bootstrap, topic_name, [Msg(1, b"k", b"x" * 1000) for _ in range(20)])
    ka = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20000)
    try:
        answers = ka.describe_log_dirs(topic_partitions={topic_name: [0, 1]})
    finally:
        ka.close()
    sizes: dict[int, list[int]] = {0: [], 1: []}
    for answer in answers:
        assert answer["log_dirs"], answer
        for log_dir in answer["log_dirs"]:
            assert log_dir["error_code"] == 0, log_dir
            assert log_dir["log_dir"], log_dir
            for topic in log_dir["topics"]:
                assert topic["name"] == topic_name, topic
                for p in topic["partitions"]:
                    sizes[p["partition_index"]].append(p["partition_size"])
    assert sizes[0] and all(s == 0 for s in sizes[0]), sizes
    # every replica of partition 1 holds the 20 records (a follower may still be copying)
    assert sizes[1] and max(sizes[1]) > 20 * 1000, sizes
