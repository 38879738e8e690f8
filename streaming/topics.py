"""Kafka topics of the speed layer, declared from settings and created idempotently.

One topic per CDR type, one for subscriber profiles and the dead-letter topic. Every topic is
replicated on the three brokers with ``min.insync.replicas=2``: with ``acks=all`` a write then
survives the loss of any one broker, and producing continues while one broker is down.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdr.contract import RECORD_TYPES
from cdr.settings import Settings


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str]


def declared_topics(settings: Settings) -> list[TopicSpec]:
    t, k = settings.topics, settings.kafka
    config = {
        "min.insync.replicas": str(k.min_insync_replicas),
        "retention.ms": str(t.retention_hours * 3_600_000),
        # Producers compress; the broker keeps their batches as they are.
        "compression.type": "producer",
    }
    names = [t.for_record_type(rt) for rt in RECORD_TYPES] + [t.subscribers, t.dead_letter]
    return [TopicSpec(n, t.partitions, k.default_replication_factor, dict(config)) for n in names]


def cdr_topics(settings: Settings) -> dict[str, str]:
    """Record type -> topic name."""
    return {rt: settings.topics.for_record_type(rt) for rt in RECORD_TYPES}


def cdr_topic_names(settings: Settings) -> list[str]:
    """Every CDR topic, in record-type order: what the detection job reads."""
    return list(cdr_topics(settings).values())


def admin_client(settings: Settings):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": settings.kafka.bootstrap})


def apply_topics(settings: Settings, timeout_s: float = 30.0) -> dict[str, str]:
    """Create missing topics and align the configuration of existing ones.

    Returns topic -> "created" | "updated" | "unchanged". Partitions are only ever increased
    (Kafka cannot shrink them; a smaller setting is reported, not applied)."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import ConfigResource, NewPartitions, NewTopic

    admin = admin_client(settings)
    existing = admin.list_topics(timeout=timeout_s).topics
    specs = declared_topics(settings)
    result: dict[str, str] = {}
    missing = [s for s in specs if s.name not in existing]
    if missing:
        futures = admin.create_topics(
            [NewTopic(s.name, s.partitions, s.replication_factor, config=s.config) for s in missing],
            operation_timeout=timeout_s)
        for name, fut in futures.items():
            try:
                fut.result()
            except KafkaException as exc:  # created meanwhile (a concurrent apply, a retried request)
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
            result[name] = "created"
        await_partitions(admin, {s.name: s.partitions for s in missing}, timeout_s)
    for s in specs:
        if s.name in result:
            continue
        changed = False
        current = len(existing[s.name].partitions)
        if current < s.partitions:
            admin.create_partitions([NewPartitions(s.name, s.partitions)])[s.name].result()
            changed = True
        resource = ConfigResource(ConfigResource.Type.TOPIC, s.name)
        described = admin.describe_configs([resource])[resource].result()
        if any(described[k].value != v for k, v in s.config.items()):
            admin.alter_configs([ConfigResource(ConfigResource.Type.TOPIC, s.name, set_config=s.config)])[
                resource].result()
            changed = True
        result[s.name] = "updated" if changed else "unchanged"
    return result


def await_partitions(admin, expected: dict[str, int], timeout_s: float = 30.0) -> None:
    """Wait until the cluster's metadata lists every topic with its partitions.

    A created topic reaches the brokers' metadata asynchronously: right after creation, the
    broker answering may list it without partitions, and a producer or a describe on it fails."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        listed = admin.list_topics(timeout=timeout_s).topics
        pending = {name: count for name, count in expected.items()
                   if name not in listed or len(listed[name].partitions) < count}
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics without all their partitions {timeout_s:.0f} s after creation: {pending}")
        time.sleep(0.2)


def partition_offsets(settings: Settings, topics: list[str], group: str | None = None,
                      timeout_s: float = 10.0) -> dict[tuple[str, int], int]:
    """Per partition of ``topics``: its end offset (the offset the next message will get), or
    with ``group``, the offset that consumer group has committed (0 where it has committed none)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap, "group.id": group or "cdr-offsets",
                         "enable.auto.commit": False})
    try:
        listed = consumer.list_topics(timeout=timeout_s).topics
        parts = [TopicPartition(t, p) for t in topics if t in listed for p in sorted(listed[t].partitions)]
        if group:
            return {(tp.topic, tp.partition): max(tp.offset, 0) for tp in consumer.committed(parts, timeout=timeout_s)}
        return {(tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=timeout_s)[1] for tp in parts}
    finally:
        consumer.close()


def delete_topics(settings: Settings, timeout_s: float = 60.0) -> list[str]:
    """Delete the declared topics that exist and wait until the cluster no longer lists them
    (deletion is asynchronous: creating a topic of the same name before it is gone fails)."""
    import time

    admin = admin_client(settings)
    names = [t.name for t in declared_topics(settings) if t.name in admin.list_topics(timeout=timeout_s).topics]
    if names:
        for done in admin.delete_topics(names, operation_timeout=timeout_s).values():
            done.result()
    deadline = time.monotonic() + timeout_s
    while set(names) & set(admin.list_topics(timeout=timeout_s).topics):
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics still listed {timeout_s:.0f} s after their deletion: {names}")
        time.sleep(0.5)
    return names


@dataclass(frozen=True)
class TopicState:
    name: str
    partitions: int
    replication_factor: int
    min_insync_replicas: str
    retention_hours: float
    under_replicated: int


def describe_topics(settings: Settings, timeout_s: float = 30.0) -> list[TopicState]:
    from confluent_kafka.admin import ConfigResource

    admin = admin_client(settings)
    meta = admin.list_topics(timeout=timeout_s).topics
    out = []
    for s in declared_topics(settings):
        if s.name not in meta:
            continue
        parts = meta[s.name].partitions.values()
        resource = ConfigResource(ConfigResource.Type.TOPIC, s.name)
        cfg = admin.describe_configs([resource])[resource].result()
        out.append(TopicState(
            name=s.name,
            partitions=len(parts),
            replication_factor=min(len(p.replicas) for p in parts),
            min_insync_replicas=cfg["min.insync.replicas"].value,
            retention_hours=int(cfg["retention.ms"].value) / 3_600_000,
            under_replicated=sum(len(p.isrs) < len(p.replicas) for p in parts),
        ))
    return out
