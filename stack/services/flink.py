"""Flink session cluster (JobManager + TaskManager) from the distribution inside the PyFlink wheel.

The wheel is never modified: the cluster runs with FLINK_CONF_DIR and FLINK_LIB_DIR pointing
into the stack home, whose lib dir links the wheel's jars plus the connectors from
stack/pom.xml (Kafka SQL connector, JDBC connector, PostgreSQL driver, Parquet format and the
shaded HDFS client for bronze landing). Clients (`flink run`,
PyFlink scripts) must use the same directories, so SQL planning finds the connectors:
see ``client_env``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cdr.errors import ServiceUnavailable
from cdr.settings import Settings
from stack.java import java_home, require_jars
from stack.paths import StackPaths
from stack.probes import NotReady, http_json
from stack.process import ProcessSpec
from stack.services.base import Endpoint, Service


def pyflink_home(settings: Settings) -> Path:
    """The Flink distribution bundled in the Flink venv's apache-flink wheel."""
    found = sorted(settings.flink.venv_dir.glob("lib/python3*/site-packages/pyflink/bin/jobmanager.sh"))
    if not found:
        raise ServiceUnavailable(f"PyFlink not found in {settings.flink.venv_dir}: run `make setup`")
    return found[-1].parent.parent


def checkpoints_dir(settings: Settings) -> Path:
    """Where the cluster keeps the jobs' checkpoints: ``<job id>/chk-<n>`` per retained checkpoint."""
    return StackPaths.from_settings(settings).service(Flink.name) / "checkpoints"


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def flink_cli(settings: Settings) -> Path:
    """The `flink` command of the bundled distribution (run it with ``client_env``)."""
    return pyflink_home(settings) / "bin" / "flink"


def client_env(settings: Settings) -> dict[str, str]:
    """Environment for `flink run` / PyFlink scripts so they use the stack's cluster and connectors."""
    flink_dir = StackPaths.from_settings(settings).service("flink")
    return {
        "FLINK_CONF_DIR": str(flink_dir / "conf"),
        "FLINK_LIB_DIR": str(flink_dir / "lib"),
        "FLINK_LOG_DIR": str(flink_dir / "log"),
        "JAVA_HOME": str(java_home(settings)),
    }


class Flink(Service):
    name = "flink"

    @property
    def conf_dir(self) -> Path:
        return self.dir / "conf"

    @property
    def lib_dir(self) -> Path:
        return self.dir / "lib"

    def _config(self, home: Path) -> dict[str, Any]:
        import yaml

        flink, ip = self.settings.flink, self.settings.stack.bind_ip
        python = str(flink.venv_dir / "bin" / "python")
        # Start from the wheel's defaults: they carry the JVM --add-opens flags Java 17 needs.
        config = _flatten(yaml.safe_load((home / "conf" / "config.yaml").read_text()))
        config.update(
            {
                "jobmanager.rpc.address": ip,
                "jobmanager.rpc.port": flink.jobmanager_rpc_port,
                "jobmanager.bind-host": ip,
                "jobmanager.memory.process.size": f"{flink.jobmanager_memory_mb}m",
                "taskmanager.host": ip,
                "taskmanager.bind-host": ip,
                "taskmanager.memory.process.size": f"{flink.taskmanager_memory_mb}m",
                # State lives on the heap (hashmap backend) and managed memory only feeds the few
                # Python UDF workers: a smaller managed share leaves the window state room
                # (at 2 GiB and the default 0.4, the detection job spent ~40 % of its time in GC).
                "taskmanager.memory.managed.fraction": 0.2,
                # Every submitted SQL job loads its own generated classes; the detection job's are
                # large, and at the default 256 MiB a test run's dozen submissions exhausted it.
                "taskmanager.memory.jvm-metaspace.size": "768m",
                "taskmanager.numberOfTaskSlots": flink.taskmanager_slots,
                "rest.address": ip,
                "rest.bind-address": ip,
                "rest.port": flink.rest_port,
                "metrics.reporter.prom.factory.class": "org.apache.flink.metrics.prometheus.PrometheusReporterFactory",
                # A string: the reporter reads its options with Properties.getProperty, which
                # ignores YAML integers (it would fall back to 9249). The TaskManager overrides
                # this with its own port on its command line.
                "metrics.reporter.prom.port": str(flink.jobmanager_metrics_port),
                "python.executable": python,
                "python.client.executable": python,
                # HDFS clients in the jobs (bronze landing) write as many replicas as there are DataNodes.
                "flink.hadoop.dfs.replication": self.settings.hdfs.replication,
                "execution.checkpointing.dir": f"file://{checkpoints_dir(self.settings)}",
                "execution.checkpointing.savepoint-dir": f"file://{self.dir / 'savepoints'}",
            }
        )
        return config

    def prepare(self) -> None:
        import yaml

        home = pyflink_home(self.settings)
        for sub in ("conf", "lib", "log", "tmp", "checkpoints", "savepoints"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        for name in ("log4j-console.properties", "log4j-cli.properties", "log4j.properties"):
            (self.conf_dir / name).write_text((home / "conf" / name).read_text())
        (self.conf_dir / "config.yaml").write_text(
            "# Written by the local stack from cdr settings over the PyFlink wheel's defaults; edits are overwritten.\n"
            + yaml.safe_dump(self._config(home), sort_keys=True, width=10_000)
        )
        self._link_lib(home)

    def _link_lib(self, home: Path) -> None:
        """lib = the wheel's lib + connectors + Parquet/HDFS client, as symlinks; stale links go."""
        wanted = {jar.name: jar for jar in (home / "lib").glob("*.jar")}
        for group in ("flink-connectors", "flink-hadoop"):
            wanted |= {jar.name: jar for jar in require_jars(self.paths.jar_group(group)).glob("*.jar")}
        for link in self.lib_dir.iterdir():
            if link.name not in wanted or link.resolve() != wanted[link.name].resolve():
                link.unlink()
        for name, target in wanted.items():
            if not (self.lib_dir / name).exists():
                (self.lib_dir / name).symlink_to(target)

    def processes(self) -> list[ProcessSpec]:
        flink = self.settings.flink
        bin_dir = pyflink_home(self.settings) / "bin"
        tmp_dir = self.dir / "tmp"
        env = {**client_env(self.settings), "FLINK_PID_DIR": str(tmp_dir)}
        # Given on the command line rather than in config.yaml so that it is in the process's
        # command line from the start script to the JVM it execs: the stack's identity marker.
        tmp_arg = ["-D", f"io.tmp.dirs={tmp_dir}"]
        return [
            ProcessSpec(
                "flink-jobmanager", [str(bin_dir / "jobmanager.sh"), "start-foreground", *tmp_arg],
                ports=[flink.rest_port, flink.jobmanager_rpc_port, flink.jobmanager_metrics_port], env=env,
                marker=str(tmp_dir),
            ),
            ProcessSpec(
                "flink-taskmanager",
                [str(bin_dir / "taskmanager.sh"), "start-foreground", *tmp_arg,
                 "-D", f"metrics.reporter.prom.port={flink.taskmanager_metrics_port}"],
                ports=[flink.taskmanager_metrics_port], env=env, marker=str(tmp_dir),
            ),
        ]  # fmt: skip

    @property
    def rest_url(self) -> str:
        return f"http://{self.settings.stack.bind_ip}:{self.settings.flink.rest_port}"

    def probe(self) -> None:
        overview = http_json(f"{self.rest_url}/overview")
        if overview.get("taskmanagers", 0) < 1 or overview.get("slots-total", 0) < 1:
            raise NotReady(
                f"{overview.get('taskmanagers', 0)} TaskManagers, {overview.get('slots-total', 0)} slots registered"
            )

    def endpoints(self) -> list[Endpoint]:
        return [Endpoint("Flink UI / REST", f"http://127.0.0.1:{self.settings.flink.rest_port}")]
