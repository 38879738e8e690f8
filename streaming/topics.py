"""Kafka topics of the speed layer, declared from settings and created idempotently.

One topic per CDR type, one for subscriber profiles and the dead-letter topic. Every topic is
replicated on the three brokers with ``min.insync.replicas=2``: with ``acks=all`` a write then
survives the loss of any one broker, and producing continues while one broker is down.

Topic names come from settings and reach commands, Flink SQL and file paths: they are checked
against Kafka's own rule (letters, digits, ``.``, ``_``, ``-``; at most 249 characters) before use.
Every client made here reports to Python logging instead of librdkafka's stderr lines, and first
asks the cluster for its metadata, so that no broker answering is one error after
``kafka.connect_timeout_s``, not minutes of retries.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from cdr.contract import RECORD_TYPES
from cdr.errors import BadInput, ServiceUnavailable
from cdr.settings import Settings

TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
TOPIC_RULE = "a Kafka topic name has 1 to 249 letters, digits, '.', '_' or '-' (and is not '.' or '..')"


def check_topic_names(settings: Settings) -> None:
    """Raise BadInput naming the setting whose topic name Kafka would refuse, or two settings that
    name the same topic."""
    t = settings.topics
    named = [(t.for_record_type(rt), "topics.prefix", t.prefix) for rt in RECORD_TYPES]
    named += [(t.subscribers, "topics.subscribers", t.subscribers), (t.dead_letter, "topics.dead_letter", t.dead_letter)]
    seen: dict[str, str] = {}
    for name, setting, value in named:
        env = "CDR_" + setting.upper().replace(".", "__")
        if not TOPIC_NAME.fullmatch(name) or name in (".", ".."):
            raise BadInput(f"setting {setting} ({env}) = {value!r} gives the topic name {name!r}, which Kafka refuses",
                           TOPIC_RULE)
        if name in seen and seen[name] != setting:
            raise BadInput(f"settings {seen[name]} and {setting} both name the topic {name!r}",
                           "give the subscriber, dead-letter and CDR topics distinct names")
        seen[name] = setting


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str]


def declared_topics(settings: Settings) -> list[TopicSpec]:
    check_topic_names(settings)
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
    check_topic_names(settings)
    return {rt: settings.topics.for_record_type(rt) for rt in RECORD_TYPES}


def cdr_topic_names(settings: Settings) -> list[str]:
    """Every CDR topic, in record-type order: what the detection job reads."""
    return list(cdr_topics(settings).values())


class ClientErrors:
    """A Kafka client's ``error_cb``: keeps the client's last error (a refused connection, all
    brokers down), which says more than the timeout that follows it."""

    def __init__(self) -> None:
        self.last: str | None = None

    def __call__(self, err) -> None:
        # "127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: Connection refused (after 0ms in state CONNECT)"
        self.last = re.sub(r" \(after \d+ms in state \w+.*\)$", "", err.str())


def client_logger() -> logging.Logger:
    """Where librdkafka's log lines go: stderr with ``cdr --debug`` (CDR_DEBUG=1), otherwise nowhere:
    a failure is reported once, as the command's error, not as a stream of retries."""
    log = logging.getLogger("cdr.kafka")
    if not log.handlers:
        debugging = os.environ.get("CDR_DEBUG", "") not in ("", "0")
        log.addHandler(logging.StreamHandler() if debugging else logging.NullHandler())
        log.propagate = False
    return log


def client_config(settings: Settings, errors: ClientErrors) -> dict:
    """What every client of the platform's cluster is configured with."""
    return {"bootstrap.servers": settings.kafka.bootstrap, "error_cb": errors, "logger": client_logger()}


def require_brokers(client, settings: Settings, errors: ClientErrors | None = None,
                    topics: Iterable[str] = (), timeout_s: float | None = None) -> dict:
    """The cluster's topics (name -> metadata), asked within ``timeout_s`` (default
    ``kafka.connect_timeout_s``); raises ServiceUnavailable naming the bootstrap servers when no
    broker answers, or naming the ``topics`` the cluster does not have."""
    from confluent_kafka import KafkaException

    k = settings.kafka
    timeout_s = k.connect_timeout_s if timeout_s is None else timeout_s
    try:
        listed = client.list_topics(timeout=timeout_s).topics
    except KafkaException as exc:
        client.poll(0)  # serves error_cb: the reason the brokers did not answer
        cause = (errors.last if errors and errors.last else None) or exc.args[0].str()
        raise ServiceUnavailable(
            f"Kafka: no broker answered at {k.bootstrap} within {timeout_s:g} s ({cause})",
            "are the brokers up? (cdr stack status); their ports are kafka.broker_ports (CDR_KAFKA__BROKER_PORTS)",
        ) from None
    missing = [t for t in topics if t not in listed]
    if missing:
        raise ServiceUnavailable(f"Kafka at {k.bootstrap} has no topic {', '.join(missing)}",
                                 "create the declared topics: cdr topics apply")
    return listed


def admin_client(settings: Settings, check: bool = True):
    """An admin client of the platform's cluster; with ``check``, raises ServiceUnavailable unless a
    broker answers within ``kafka.connect_timeout_s``."""
    from confluent_kafka.admin import AdminClient

    errors = ClientErrors()
    admin = AdminClient(client_config(settings, errors))
    if check:
        require_brokers(admin, settings, errors)
    return admin


def apply_topics(settings: Settings, timeout_s: float = 30.0) -> dict[str, str]:
    """Create missing topics and align the configuration of existing ones.

    Returns topic -> "created" | "updated" | "unchanged". Partitions are only ever increased
    (Kafka cannot shrink them; a smaller setting is reported, not applied)."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import ConfigResource, NewPartitions, NewTopic

    specs = declared_topics(settings)  # the names checked before the cluster is asked
    admin = admin_client(settings)
    existing = admin.list_topics(timeout=timeout_s).topics
    result: dict[str, str] = {}
    missing = [s for s in specs if s.name not in existing]
    if missing:
        futures = admin.create_topics(
            [NewTopic(s.name, s.partitions, s.replication_factor, config=s.config) for s in missing],
            operation_timeout=timeout_s)
        existed = False
        for name, fut in futures.items():
            try:
                fut.result()
                result[name] = "created"
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
                # It existed: created meanwhile (a concurrent apply), or the broker that answered
                # the listing had not yet learnt of a topic just created (seen in CI under load).
                existed = True
        await_partitions(admin, {s.name: s.partitions for s in missing}, timeout_s)
        if existed:  # checked like any existing topic below, from metadata that now lists it
            existing = admin.list_topics(timeout=timeout_s).topics
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
            raise ServiceUnavailable(f"Kafka: topics without all their partitions {timeout_s:.0f} s after creation: "
                                     f"{', '.join(sorted(pending))}", "are all brokers up? (cdr stack status)")
        time.sleep(0.2)


def partition_offsets(settings: Settings, topics: list[str], group: str | None = None,
                      timeout_s: float = 10.0) -> dict[tuple[str, int], int]:
    """Per partition of ``topics``: its end offset (the offset the next message will get), or
    with ``group``, the offset that consumer group has committed (0 where it has committed none)."""
    from confluent_kafka import Consumer, TopicPartition

    errors = ClientErrors()
    consumer = Consumer({**client_config(settings, errors), "group.id": group or "cdr-offsets",
                         "enable.auto.commit": False})
    try:
        listed = require_brokers(consumer, settings, errors, timeout_s=timeout_s)
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

    declared = declared_topics(settings)
    admin = admin_client(settings)
    names = [t.name for t in declared if t.name in admin.list_topics(timeout=timeout_s).topics]
    if names:
        for done in admin.delete_topics(names, operation_timeout=timeout_s).values():
            done.result()
    deadline = time.monotonic() + timeout_s
    while set(names) & set(admin.list_topics(timeout=timeout_s).topics):
        if time.monotonic() > deadline:
            raise ServiceUnavailable(f"Kafka: topics still listed {timeout_s:.0f} s after their deletion: {', '.join(names)}",
                                     "are all brokers up? (cdr stack status)")
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

    declared = declared_topics(settings)
    admin = admin_client(settings)
    meta = admin.list_topics(timeout=timeout_s).topics
    out = []
    for s in declared:
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
