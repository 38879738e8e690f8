"""Kafka: three combined broker+controller nodes in KRaft mode with a static quorum.

One cluster id for the stack's lifetime (kept in ``kafka/cluster.id``); each node's storage
is formatted once with ``kafka.tools.StorageTool``. Each broker carries the Prometheus
JMX exporter as a Java agent.
"""

from __future__ import annotations

import base64
import logging
import subprocess
import uuid
from pathlib import Path

from cdr.errors import CdrError
from stack.java import classpath, java, require_jars
from stack.paths import TEMPLATES
from stack.probes import NotReady
from stack.process import ProcessSpec, tail
from stack.services.base import Endpoint, Service


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (as `kafka-storage random-uuid`)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


class Kafka(Service):
    name = "kafka"

    @property
    def node_ids(self) -> list[int]:
        return list(range(1, len(self.settings.kafka.broker_ports) + 1))

    def node_dir(self, node_id: int) -> Path:
        return self.dir / f"broker-{node_id}"

    def _properties_file(self, node_id: int) -> Path:
        return self.dir / "conf" / f"server-{node_id}.properties"

    def _server_properties(self, node_id: int) -> str:
        kafka, ip = self.settings.kafka, self.settings.stack.bind_ip
        voters = ",".join(f"{n}@{ip}:{port}" for n, port in zip(self.node_ids, kafka.controller_ports, strict=True))
        broker_port = kafka.broker_ports[node_id - 1]
        controller_port = kafka.controller_ports[node_id - 1]
        rf, min_isr = kafka.default_replication_factor, kafka.min_insync_replicas
        lines = {
            "process.roles": "broker,controller",
            "node.id": node_id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://{ip}:{broker_port},CONTROLLER://{ip}:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://{ip}:{broker_port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": self.node_dir(node_id) / "data",
            "default.replication.factor": rf,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": rf,
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": min_isr,
            # Topics are declared (cdr topics apply); a client naming an unknown topic must fail,
            # not create it with one partition (as the container stack's brokers are configured).
            "auto.create.topics.enable": "false",
            # Consumers of a fresh group start at once instead of waiting 3 s for more members.
            "group.initial.rebalance.delay.ms": 0,
            # `cdr stack down` stops all brokers together; a controlled shutdown needs a controller
            # quorum, which the last broker standing no longer has, and would wait 5 minutes.
            "controlled.shutdown.enable": "false",
            # Without a controlled shutdown the controller fences a restarted broker's previous
            # incarnation only when its session expires (default 9 s, which then delays `up`).
            # Loopback heartbeats can be tighter.
            "broker.heartbeat.interval.ms": 1000,
            "broker.session.timeout.ms": 4000,
        }
        header = "# Written by the local stack from cdr settings; edits are overwritten.\n"
        return header + "".join(f"{key}={value}\n" for key, value in lines.items())

    def _java_argv(self, main_class: str, *args: str, jvm_opts: tuple[str, ...] = ()) -> list[str]:
        return [
            java(self.settings), f"-Xmx{self.settings.kafka.heap_mb}m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={TEMPLATES / 'kafka-log4j2.properties'}",
            *jvm_opts, "-cp", classpath(require_jars(self.paths.jar_group("kafka"))), main_class, *args,
        ]  # fmt: skip

    def cluster_id(self) -> str:
        """The stack's Kafka cluster id, created with the brokers' storage."""
        id_file = self.dir / "cluster.id"
        if not id_file.exists():
            id_file.parent.mkdir(parents=True, exist_ok=True)
            id_file.write_text(new_cluster_id() + "\n")
        return id_file.read_text().strip()

    def _is_formatted(self, node_id: int) -> bool:
        return (self.node_dir(node_id) / "data" / "meta.properties").exists()

    def prepare(self) -> None:
        for node_id in self.node_ids:
            props = self._properties_file(node_id)
            props.parent.mkdir(parents=True, exist_ok=True)
            props.write_text(self._server_properties(node_id))
        unformatted = [node_id for node_id in self.node_ids if not self._is_formatted(node_id)]
        if not unformatted:
            return
        if len(unformatted) < len(self.node_ids):
            # Re-formatting one voter of a running quorum behind its back can break the quorum.
            missing = ", ".join(f"broker-{n}" for n in unformatted)
            raise CdrError(
                f"Kafka storage of {missing} is missing while the other brokers hold data; "
                "see docs/local-stack.md#kafka-storage-format-and-cluster-id (cdr stack down --purge starts over)"
            )
        self._format_all()

    def _format_all(self) -> None:
        cluster_id = self.cluster_id()
        log_path = self.paths.log("kafka-format")
        with log_path.open("ab") as log:
            formats = [  # in parallel: each is a JVM start
                subprocess.Popen(
                    self._java_argv("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props)),
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                )  # fmt: skip
                for props in map(self._properties_file, self.node_ids)
            ]
            if any([proc.wait() for proc in formats]):
                raise CdrError(f"formatting Kafka storage failed; last lines of {log_path}:\n{tail(log_path, 20)}")

    def processes(self) -> list[ProcessSpec]:
        kafka = self.settings.kafka
        agent = next(require_jars(self.paths.jar_group("jmx-exporter")).glob("jmx_prometheus_javaagent-*.jar"))
        specs = []
        for node_id in self.node_ids:
            metrics = f"-javaagent:{agent}={self.settings.stack.bind_ip}:{kafka.metrics_ports[node_id - 1]}:" + str(
                TEMPLATES / "kafka-jmx-exporter.yaml"
            )
            props = self._properties_file(node_id)
            specs.append(
                ProcessSpec(
                    f"kafka-{node_id}",
                    self._java_argv("kafka.Kafka", str(props), jvm_opts=(metrics,)),
                    ports=[
                        kafka.broker_ports[node_id - 1],
                        kafka.controller_ports[node_id - 1],
                        kafka.metrics_ports[node_id - 1],
                    ],
                    marker=str(props),
                )
            )
        return specs

    def probe(self) -> None:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        quiet = logging.getLogger("stack.kafka.probe")
        quiet.setLevel(logging.CRITICAL)  # librdkafka reports every refused connection while brokers start
        admin = AdminClient({"bootstrap.servers": self.settings.kafka.bootstrap, "logger": quiet})  # type: ignore[dict-item]
        try:
            metadata = admin.list_topics(timeout=3)
        except KafkaException as exc:
            raise NotReady(f"metadata request failed: {exc}") from None
        expected = len(self.node_ids)
        if len(metadata.brokers) < expected:
            raise NotReady(f"metadata names {len(metadata.brokers)} of {expected} brokers")
        if metadata.controller_id < 0:
            raise NotReady("no active controller yet")

    def endpoints(self) -> list[Endpoint]:
        return [Endpoint("Kafka bootstrap", self.settings.kafka.bootstrap)]
