"""Prometheus and Alertmanager (Debian binaries) with the platform's shared configuration.

monitoring/prometheus/prometheus.yml names no targets; this module writes the local
stack's target files (file_sd) next to a link to it in the stack home, so the same file
serves the container stack with other targets.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from cdr.errors import ServiceUnavailable
from cdr.settings import Settings
from stack.paths import MONITORING
from stack.probes import NotReady, http_get, http_json
from stack.process import ProcessSpec
from stack.services.base import Endpoint, Service

# Scraped only while something runs on demand; excluded from ServiceDown and readiness.
ON_DEMAND_JOBS = frozenset({"cdr-producer"})


def scrape_targets(settings: Settings) -> dict[str, list[str]]:
    """Every Prometheus job of the local stack and its host:port targets."""
    ip = settings.stack.bind_ip

    def at(*ports: int) -> list[str]:
        return [f"{ip}:{port}" for port in ports]

    hdfs, flink = settings.hdfs, settings.flink
    return {
        "prometheus": at(settings.prometheus.port),
        "alertmanager": at(settings.prometheus.alertmanager_port),
        "kafka": at(*settings.kafka.metrics_ports),
        "hdfs-namenode": at(hdfs.namenode_http_port),
        "hdfs-datanode": at(*(ports[1] for ports in hdfs.datanode_ports)),
        "spark-thriftserver": at(settings.hive.thrift_ui_port),
        "flink-jobmanager": at(flink.jobmanager_metrics_port),
        "flink-taskmanager": at(flink.taskmanager_metrics_port),
        "cdr-producer": at(settings.producer.metrics_port),
    }


def always_on_targets(settings: Settings) -> dict[str, list[str]]:
    return {job: targets for job, targets in scrape_targets(settings).items() if job not in ON_DEMAND_JOBS}


def _binary(name: str) -> str:
    """A Debian-packaged binary (packages prometheus and prometheus-alertmanager name them so)."""
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

    def prepare(self) -> None:
        targets_dir = self.prometheus_dir / "targets"
        targets_dir.mkdir(parents=True, exist_ok=True)
        (self.alertmanager_dir / "data").mkdir(parents=True, exist_ok=True)
        # Links, not copies: rule edits apply on the next reload (POST /-/reload).
        for name in ("prometheus.yml", "rules"):
            link = self.prometheus_dir / name
            if not link.is_symlink():
                link.symlink_to(MONITORING / "prometheus" / name)
        for job, targets in scrape_targets(self.settings).items():
            availability = "on-demand" if job in ON_DEMAND_JOBS else "always-on"
            groups = [{"targets": targets, "labels": {"availability": availability}}]
            (targets_dir / f"{job}.json").write_text(json.dumps(groups, indent=2) + "\n")

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
        ]

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.settings.stack.bind_ip}:{self.settings.prometheus.port}"

    def probe(self) -> None:
        http_get(f"http://{self.settings.stack.bind_ip}:{self.settings.prometheus.alertmanager_port}/-/ready")
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
        ]
