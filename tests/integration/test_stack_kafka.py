"""Kafka of the local stack: three brokers, replication 3, acks=all round trip."""

from __future__ import annotations

import time
import uuid

import pytest

pytestmark = pytest.mark.stack


def _admin(bootstrap: str):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap})


def _create_topic(bootstrap: str, partitions: int, replication: int) -> str:
    from confluent_kafka.admin import NewTopic

    name = f"stack-test-{uuid.uuid4().hex[:8]}"
    admin = _admin(bootstrap)  # must outlive the future
    admin.create_topics([NewTopic(name, partitions, replication)])[name].result(timeout=30)
    return name


def test_metadata_names_three_brokers(local_stack):
    metadata = _admin(local_stack.settings.kafka.bootstrap).list_topics(timeout=10)
    ports = sorted(broker.port for broker in metadata.brokers.values())
    assert ports == sorted(local_stack.settings.kafka.broker_ports)
    assert metadata.controller_id in metadata.brokers


def test_topic_with_replication_three_has_three_in_sync_replicas(local_stack):
    bootstrap = local_stack.settings.kafka.bootstrap
    topic = _create_topic(bootstrap, partitions=3, replication=3)
    deadline = time.monotonic() + 30
    while True:
        partitions = _admin(bootstrap).list_topics(topic, timeout=10).topics[topic].partitions
        isr_sizes = sorted(len(p.isrs) for p in partitions.values())
        if isr_sizes == [3, 3, 3] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(partitions) == 3
    assert all(sorted(p.replicas) == [1, 2, 3] for p in partitions.values())
    assert isr_sizes == [3, 3, 3]


def _topic_config(admin, name: str, timeout_s: float = 30) -> dict:
    """The topic's configuration entries. The broker answering may not have learnt of a topic
    created a moment ago (metadata reaches the brokers asynchronously): ask again until it has."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import ConfigResource

    deadline = time.monotonic() + timeout_s
    while True:
        future = next(iter(admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, name)]).values()))
        try:
            return future.result(timeout=10)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_topic_config_uses_the_stack_defaults(local_stack):
    """A topic created without explicit settings gets RF 3 and min.insync.replicas 2."""
    from confluent_kafka.admin import NewTopic

    from streaming.topics import await_partitions

    bootstrap = local_stack.settings.kafka.bootstrap
    admin = _admin(bootstrap)
    name = f"stack-test-defaults-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, num_partitions=1)])[name].result(timeout=30)
    await_partitions(admin, {name: 1})
    partition = admin.list_topics(name, timeout=10).topics[name].partitions[0]
    entries = _topic_config(admin, name)
    assert len(partition.replicas) == 3
    assert entries["min.insync.replicas"].value == "2"


def test_messages_produced_with_acks_all_are_consumed_back_complete(local_stack):
    from confluent_kafka import Consumer, Producer

    bootstrap = local_stack.settings.kafka.bootstrap
    topic = _create_topic(bootstrap, partitions=3, replication=3)
    sent = {f"key-{i}": f"value-{i}-{uuid.uuid4().hex}" for i in range(2000)}
    failures: list[str] = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    for key, value in sent.items():
        producer.produce(topic, value=value, key=key, on_delivery=lambda err, _msg: err and failures.append(str(err)))
    assert producer.flush(30) == 0
    assert failures == []

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    received: dict[str, str] = {}
    deadline = time.monotonic() + 60
    while len(received) < len(sent) and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            received[message.key().decode()] = message.value().decode()
    consumer.close()
    assert received == sent
