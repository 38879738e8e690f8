"""Prometheus, Alertmanager and the Pushgateway (Debian binaries) with the platform's shared configuration.

monitoring/prometheus/prometheus.yml names no targets; this module writes the local
stack's target files (file_sd) next to a link to it in the stack home, so the same file
serves the container stack with other targets. The stack's services are targets from `cdr stack
up` on; the producer, which runs only while a command does, registers itself in the same folder
while it serves metrics (``registered_target``), so no target is down merely because it is idle.
The Pushgateway holds what the CLIs push (cdr/pushgateway.py), in a file of the stack home across
restarts.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cdr.errors import ServiceUnavailable
from cdr.settings import Settings
from stack.paths import MONITORING, StackPaths
from stack.probes import NotReady, http_get, http_json
from stack.process import ProcessSpec
from stack.services.base import Endpoint, Service

PRODUCER_JOB = "cdr-producer"  # registered by the producer itself while it runs (streaming/producer.py)
# Every registered target is expected up: ServiceDown watches this label (monitoring/prometheus/rules).
AVAILABILITY = {"availability": "always-on"}


def always_on_targets(settings: Settings) -> dict[str, list[str]]:
    """The Prometheus jobs of the local stack's services and their host:port targets."""
    ip = settings.stack.bind_ip

    def at(*ports: int) -> list[str]:
        return [f"{ip}:{port}" for port in ports]

    hdfs, flink = settings.hdfs, settings.flink
    return {
        "prometheus": at(settings.prometheus.port),
        "alertmanager": at(settings.prometheus.alertmanager_port),
        "pushgateway": at(settings.prometheus.pushgateway_port),
        "kafka": at(*settings.kafka.metrics_ports),
        "hdfs-namenode": at(hdfs.namenode_http_port),
        "hdfs-datanode": at(*(ports[1] for ports in hdfs.datanode_ports)),
        "spark-thriftserver": at(settings.hive.thrift_ui_port),
        "flink-jobmanager": at(flink.jobmanager_metrics_port),
        "flink-taskmanager": at(flink.taskmanager_metrics_port),
    }


def producer_target(settings: Settings) -> str:
    return f"{settings.stack.bind_ip}:{settings.producer.metrics_port}"


def scrape_targets(settings: Settings) -> dict[str, list[str]]:
    """Every Prometheus job of the local stack and its host:port targets (the producer's while it runs)."""
    return {**always_on_targets(settings), PRODUCER_JOB: [producer_target(settings)]}


def targets_dir(settings: Settings) -> Path:
    """The folder of the local stack's file_sd files (prometheus.yml reads ``targets/<job>.json``)."""
    return StackPaths.from_settings(settings).service(Monitoring.name) / "prometheus" / "targets"


def write_targets(path: Path, targets: list[str]) -> None:
    """Write a file_sd file atomically (Prometheus rereads it on change and must never see half of
    one): a temporary file in the same folder, renamed over it. No targets: ``[]``."""
    groups = [{"targets": targets, "labels": AVAILABILITY}] if targets else []
    staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # not *.json: prometheus.yml names files
    staged.write_text(json.dumps(groups, indent=2) + "\n")
    staged.replace(path)


@contextmanager
def registered_target(settings: Settings, job: str, targets: list[str]) -> Iterator[Path | None]:
    """``job``'s targets are in the local stack's Prometheus for the duration of the block, however
    it ends (an exception, Ctrl-C); only a killed process leaves them, and they then show down.
    Nothing happens where no local stack's Prometheus reads targets (no such folder: e.g. in a
    container of the container stack); yields the file written, or None."""
    folder = targets_dir(settings)
    if not folder.is_dir():
        yield None
        return
    path = folder / f"{job}.json"
    write_targets(path, targets)
    try:
        yield path
    finally:
        write_targets(path, [])


def _binary(name: str) -> str:
    """A Debian-packaged binary (packages prometheus, prometheus-alertmanager and prometheus-pushgateway
    name them so)."""
    path = shutil.which(name)
    if path is None:
        raise ServiceUnavailable(f"`{name}` not found (Debian package {name}): run `cdr stack install`")
    return path


class Monitoring(Service):
    name = "monitoring"
    needs_java = False

    @property
    def prometheus_dir(self) -> Path:
        return self.dir / "prometheus"

    @property
    def alertmanager_dir(self) -> Path:
        return self.dir / "alertmanager"

    @property
    def pushgateway_dir(self) -> Path:
        return self.dir / "pushgateway"

    def prepare(self) -> None:
        targets = targets_dir(self.settings)
        targets.mkdir(parents=True, exist_ok=True)
        (self.alertmanager_dir / "data").mkdir(parents=True, exist_ok=True)
        self.pushgateway_dir.mkdir(parents=True, exist_ok=True)
        # Links, not copies: rule edits apply on the next reload (POST /-/reload).
        for name in ("prometheus.yml", "rules"):
            link = self.prometheus_dir / name
            if not link.is_symlink():
                link.symlink_to(MONITORING / "prometheus" / name)
        for job, addresses in always_on_targets(self.settings).items():
            write_targets(targets / f"{job}.json", addresses)
        # The producer's file is its own while it runs; a stack older than that wrote a permanent one.
        producer = targets / f"{PRODUCER_JOB}.json"
        if not producer.exists() or "on-demand" in producer.read_text():
            write_targets(producer, [])
        self._reload_prometheus()

    def _reload_prometheus(self) -> None:
        """A Prometheus that already runs (another process of this service was missing: one added
        since it started, say) reads prometheus.yml again, so that it scrapes every job of it."""
        request = urllib.request.Request(f"{self.prometheus_url}/-/reload", method="POST")
        try:
            urllib.request.urlopen(request, timeout=5).close()
        except OSError:  # not running: it reads the file when it starts
            pass

    def processes(self) -> list[ProcessSpec]:
        ip, prom = self.settings.stack.bind_ip, self.settings.prometheus
        return [
            ProcessSpec(
                "prometheus",
                [
                    _binary("prometheus"),
                    f"--config.file={self.prometheus_dir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.prometheus_dir / 'data'}",
                    "--storage.tsdb.retention.time=7d",
                    f"--web.listen-address={ip}:{prom.port}",
                    "--web.enable-lifecycle",
                    # Firing alerts are sent again every 10 s (default 1 min): a restarted
                    # Alertmanager knows them again within seconds (compose/monitoring.yaml too).
                    "--rules.alert.resend-delay=10s",
                ],
                ports=[prom.port],
                marker=str(self.prometheus_dir),
            ),
            ProcessSpec(
                "alertmanager",
                [
                    _binary("prometheus-alertmanager"),
                    f"--config.file={MONITORING / 'alertmanager' / 'alertmanager.yml'}",
                    f"--storage.path={self.alertmanager_dir / 'data'}",
                    f"--web.listen-address={ip}:{prom.alertmanager_port}",
                    # One Alertmanager: no HA gossip (its default port, 9094, is a Kafka broker's).
                    "--cluster.listen-address=",
                ],
                ports=[prom.alertmanager_port],
                marker=str(self.alertmanager_dir),
            ),
            ProcessSpec(
                "pushgateway",
                [
                    _binary("prometheus-pushgateway"),
                    f"--web.listen-address={ip}:{prom.pushgateway_port}",
                    # What the CLIs pushed survives a restart (written at most this often, and at exit).
                    f"--persistence.file={self.pushgateway_dir / 'metrics.data'}",
                    "--persistence.interval=30s",
                ],
                ports=[prom.pushgateway_port],
                marker=str(self.pushgateway_dir),
            ),
        ]

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.settings.stack.bind_ip}:{self.settings.prometheus.port}"

    def probe(self) -> None:
        http_get(f"http://{self.settings.stack.bind_ip}:{self.settings.prometheus.alertmanager_port}/-/ready")
        http_get(f"http://{self.settings.stack.bind_ip}:{self.settings.prometheus.pushgateway_port}/-/ready")
        http_get(f"{self.prometheus_url}/-/ready")
        active = http_json(f"{self.prometheus_url}/api/v1/targets?state=active")["data"]["activeTargets"]
        health = {(t["labels"]["job"], t["labels"]["instance"]): t["health"] for t in active}
        for job, targets in always_on_targets(self.settings).items():
            for target in targets:
                state = health.get((job, target), "not discovered")
                if state != "up":
                    raise NotReady(f"Prometheus target {job} {target} is {state}")

    def endpoints(self) -> list[Endpoint]:
        ip, prom = "127.0.0.1", self.settings.prometheus
        return [
            Endpoint("Prometheus", f"http://{ip}:{prom.port}"),
            Endpoint("Alertmanager", f"http://{ip}:{prom.alertmanager_port}"),
            Endpoint("Pushgateway", f"http://{ip}:{prom.pushgateway_port}"),
        ]
