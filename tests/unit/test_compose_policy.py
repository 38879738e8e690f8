"""Policies of the container stack (compose/), checked without a container engine.

What users of such stacks suffer from most, each made a test: unpinned images, healthchecks
calling tools the image lacks, literal secrets, ports on 0.0.0.0 or claimed twice, replication 1
on three brokers, configuration copied instead of shared with the local stack.
"""

from __future__ import annotations

import importlib.util
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from cdr.settings import get_settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO / "compose"

_spec = importlib.util.spec_from_file_location("cdr_compose_policy", COMPOSE_DIR / "compose.py")
compose = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compose)

PLATFORM_IMAGE = "cdr-platform:"
# The healthcheck tools each image is known to contain.
HEALTH_TOOLS = {
    "grafana/grafana:": {"wget"},                               # Alpine base (optional extra)
    "kafbat/kafka-ui:": {"wget"},                               # Alpine base (optional extra)
    "cdr-platform:": {"probe", "pg_isready"},                   # compose/images/bin/probe; Debian's PostgreSQL
}
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|_KEY|_PASS)$")


def _env() -> dict[str, str]:
    env = compose.read_env_file(REPO / ".env.example")
    return {k: v or f"test-{k.lower()}" for k, v in env.items()}


@pytest.fixture(scope="module")
def model() -> dict:
    return compose.render(_env(), profiles=None)


@pytest.fixture(scope="module")
def services(model) -> dict[str, dict]:
    return model["services"]


@pytest.fixture(scope="module")
def raw_services() -> dict[str, dict]:
    """Services as written (anchors resolved, ${...} not interpolated)."""
    out = {}
    for doc in compose.load_files().values():
        out.update(doc.get("services") or {})
    return out


@pytest.fixture(scope="module")
def settings():
    return get_settings()


def _pom_property(name: str) -> str:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ET.parse(REPO / "stack" / "pom.xml").getroot()
    return root.find(f"m:properties/m:{name}", ns).text


def _host_ports(spec: dict) -> dict[int, int]:
    """container port -> host port of a rendered service."""
    out = {}
    for entry in spec.get("ports", []):
        _ip, host, container = entry.rsplit(":", 2)
        out[int(container)] = int(host)
    return out


def _long_running(services):
    return {n: s for n, s in services.items() if not compose.is_one_shot(s)}


# --- images -----------------------------------------------------------------------------------------


def test_every_image_is_pinned_and_overridable(raw_services, services):
    for name, raw in raw_services.items():
        assert re.fullmatch(r"\$\{[A-Z_]+_IMAGE:-[^}]+\}", raw.get("image", "")), f"{name}: image {raw.get('image')!r}"
        image = services[name]["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and "/" not in tag and tag not in ("", "latest"), f"{name}: {image} is not pinned"


def test_the_default_path_runs_only_the_image_the_project_builds(services):
    """Every service `make up` starts runs the platform image (never pulled); upstream images are
    only in the opt-in extras."""
    for name, spec in services.items():
        if set(spec.get("profiles", [])) & set(compose.EXTRAS):
            assert not spec["image"].startswith(PLATFORM_IMAGE), name
            continue
        assert spec["image"].startswith(PLATFORM_IMAGE) and spec["pull_policy"] == "never", name
        assert "build" not in spec, f"{name}: images are built by compose.py images, once"


def test_the_image_is_built_from_one_debian_base_with_the_local_stacks_pins():
    from stack.install import DEBIAN_PACKAGES, JAR_GROUPS

    dockerfile = (COMPOSE_DIR / "images" / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=\S+$", dockerfile, re.M)
    stages = re.findall(r"^FROM (\S+) AS (\w+)$", dockerfile, re.M)
    assert stages[0] == ("${BASE_IMAGE}", "runtime") and all(base == "runtime" for base, _ in stages[1:]), stages
    assert compose.DEFAULT_BASE_IMAGE == "debian:bookworm-slim"
    for used in ("requirements/core.txt", "requirements/flink.txt", "requirements/superset.txt", "stack/pom.xml"):
        assert f"COPY {used}" in dockerfile
    for package in DEBIAN_PACKAGES:
        assert re.search(rf"\s{package}\s", dockerfile), package
    copied = re.search(r"for profile in ([\w -]+); do", dockerfile).group(1).split()
    unpacked = re.findall(r"-P(\S+) -Dstack.jars=/jars dependency:unpack", dockerfile)
    assert {g: "copy-dependencies" for g in copied} | {g: "unpack" for g in unpacked} == JAR_GROUPS
    # Warm layer order: system packages, the environments (the core one, most often changed, last),
    # the jars (their own stage: a pom change only copies them again), then the project's code last.
    order = [dockerfile.index(marker) for marker in ("apt-get install", "COPY requirements/superset.txt",
                                                      "COPY requirements/core.txt", "COPY --from=jars",
                                                      "COPY --chown=cdr:cdr . /opt/cdr")]
    assert order == sorted(order)
    # No certificate in the repository: the build copies the host's at build time.
    assert not list((COMPOSE_DIR / "images" / "ca-certificates").glob("*.crt")) or \
        "/compose/images/ca-certificates/*.crt" in (REPO / ".gitignore").read_text()


def test_bitnami_is_not_used():
    for path in COMPOSE_DIR.rglob("*"):
        if path.is_file() and path.suffix in (".yaml", ".yml", ".py", ".sh", "") or path.name == "Dockerfile":
            assert "bitnami" not in path.read_text(errors="ignore").lower(), path


# --- health and order ---------------------------------------------------------------------------


def test_long_running_services_have_a_healthcheck_with_a_tool_of_their_image(services):
    for name, spec in _long_running(services).items():
        test = spec.get("healthcheck", {}).get("test")
        assert test, f"{name} has no healthcheck"
        tools = next(t for prefix, t in HEALTH_TOOLS.items() if spec["image"].startswith(prefix))
        assert test[0] == "CMD" and test[1] in tools, f"{name}: healthcheck uses {test[1]}, its image has {tools}"


def test_platform_commands_exist_in_the_image(services):
    scripts = {p.name for p in (COMPOSE_DIR / "images" / "bin").iterdir()}
    # The venvs' console scripts and Debian's binaries the Dockerfile installs.
    installed = {"cdr", "jupyter", "python", "sh", "gunicorn", "prometheus", "prometheus-alertmanager",
                 "prometheus-pushgateway"}
    for name, spec in services.items():
        if spec["image"].startswith(PLATFORM_IMAGE):
            first = (spec.get("entrypoint") or spec.get("command") or ["cdr-entrypoint"])[0]
            assert first in scripts | installed, f"{name}: {first}"


def test_one_shot_init_services(services):
    one_shots = {n for n, s in services.items() if compose.is_one_shot(s)}
    assert {"hdfs-format", "hdfs-init", "metastore-init", "topics-init", "superset-init", "flink-job", "cdr"} <= one_shots
    for name in one_shots:
        assert "healthcheck" not in services[name], name
    assert services["topics-init"]["command"] == ["cdr", "topics", "apply"]
    assert services["flink-job"]["command"] == ["flink-submit"]
    assert "exec cdr stream start" in (COMPOSE_DIR / "images" / "bin" / "flink-submit").read_text()
    assert services["hdfs-init"]["command"] == ["hdfs-init"]
    assert "hdfs.after_ready()" in (COMPOSE_DIR / "images" / "bin" / "hdfs-init").read_text()


def test_depends_on_targets_exist_with_the_right_condition(services):
    for name, spec in services.items():
        for target, dep in (spec.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = dep["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target}, which has no healthcheck"
            else:
                assert condition == "service_completed_successfully" and compose.is_one_shot(services[target]), \
                    f"{name} -> {target}: {condition}"
            # A dependency must be started whenever the dependent is (compose.NEEDS adds profiles).
            mine, theirs = set(spec.get("profiles", [])), set(services[target].get("profiles", []))
            enabled = set(compose.parse_profiles(",".join(mine))) if mine else set()
            assert not theirs or theirs & enabled, f"{name} -> {target}"


def test_every_service_has_a_memory_limit(services):
    for name, spec in services.items():
        assert re.fullmatch(r"\d+[mg]", str(spec.get("mem_limit", ""))), name


def test_profiles(services):
    used = {p for s in services.values() for p in s.get("profiles", [])}
    assert used == set(compose.PROFILES) | set(compose.EXTRAS) | {"tools"}
    core = {n for n, s in services.items() if not s.get("profiles")}
    assert core == {"postgres"}


def test_minimum_resources_cover_the_memory_limits(services):
    """The documented minimum per profile (compose.py warns below it): every long-running
    service at its limit plus the largest one-shot running beside them."""
    def gib(limit: str) -> float:
        return int(limit[:-1]) / (1024 if limit.endswith("m") else 1)

    for profile in (*compose.PROFILES, *compose.EXTRAS, "core"):
        members = [s for s in services.values()
                   if (profile in s.get("profiles", []) if profile != "core" else not s.get("profiles"))]
        steady = sum(gib(s["mem_limit"]) for s in members if not compose.is_one_shot(s))
        peak = max([gib(s["mem_limit"]) for s in members if compose.is_one_shot(s)], default=0)
        assert steady + peak <= compose.MIN_MEMORY_GIB[profile] <= steady + peak + 0.5, (profile, steady + peak)


def test_the_default_stack_fits_16_gib_of_memory_limits(services):
    """What `make up` starts, every long-running service at its limit: a 16 GiB machine runs it."""
    def gib(limit: str) -> float:
        return int(limit[:-1]) / (1024 if limit.endswith("m") else 1)

    default = [s for s in services.values()
               if not compose.is_one_shot(s) and not set(s.get("profiles", [])) - set(compose.PROFILES)]
    assert sum(gib(s["mem_limit"]) for s in default) <= 16


def test_shared_settings_are_x_anchors():
    for name in compose.FILES:
        if name not in ("notebooks.yaml", "tools.yaml"):   # a single service: nothing to share
            assert re.search(r"^x-[\w-]+: &", (COMPOSE_DIR / name).read_text(), re.M), name


# --- ports --------------------------------------------------------------------------------------


def test_ports_bind_to_the_bind_address_with_an_overridable_default(raw_services):
    for name, raw in raw_services.items():
        for entry in raw.get("ports", []):
            assert re.fullmatch(r"\$\{BIND_IP:-127\.0\.0\.1\}:\$\{[A-Z0-9_]+_PORT:-\d+\}:\d+", entry), f"{name}: {entry}"


def test_no_two_services_claim_one_host_port(raw_services, services):
    seen: dict[int, str] = {}
    variables: dict[str, str] = {}
    for name, spec in services.items():
        for host in _host_ports(spec).values():
            assert host not in seen, f"{name} and {seen[host]} both publish {host}"
            seen[host] = name
    for name, raw in raw_services.items():
        for entry in raw.get("ports", []):
            var = re.search(r"\$\{([A-Z0-9_]+_PORT)", entry).group(1)
            assert var not in variables, f"{var} used by {name} and {variables[var]}"
            variables[var] = name


def test_default_ports_are_the_local_stacks(services, settings):
    s = settings
    expected = {
        ("kafka-1", 9092): s.kafka.broker_ports[0], ("kafka-2", 9092): s.kafka.broker_ports[1],
        ("kafka-3", 9092): s.kafka.broker_ports[2], ("postgres", 5432): s.postgres.port,
        ("namenode", 8020): s.hdfs.namenode_rpc_port, ("namenode", 9870): s.hdfs.namenode_http_port,
        ("datanode-1", 9864): s.hdfs.datanode_ports[0][1], ("datanode-2", 9864): s.hdfs.datanode_ports[1][1],
        ("spark-thrift", 10000): s.hive.thrift_port, ("spark-thrift", 4040): s.hive.thrift_ui_port,
        ("flink-jobmanager", 8081): s.flink.rest_port, ("prometheus", 9090): s.prometheus.port,
        ("alertmanager", 9093): s.prometheus.alertmanager_port, ("producer", 9401): s.producer.metrics_port,
        ("pushgateway", 9091): s.prometheus.pushgateway_port,
        ("superset", 8088): s.superset.port,
    }
    for (service, container_port), port in expected.items():
        assert _host_ports(services[service]).get(container_port) == port, (service, container_port)


def test_loopback_forwards_match_the_settings(settings):
    """The project's code dials 127.0.0.1:<settings port>; cdr.env forwards exactly those."""
    env = compose.read_env_file(COMPOSE_DIR / "cdr.env")
    forwards = dict(pair.split("=", 1) for pair in env["CDR_LOOPBACK"].split())
    s = settings
    assert forwards == {
        str(s.kafka.broker_ports[0]): "kafka-1:29092", str(s.kafka.broker_ports[1]): "kafka-2:29092",
        str(s.kafka.broker_ports[2]): "kafka-3:29092", str(s.postgres.port): "postgres:5432",
        str(s.hdfs.namenode_rpc_port): "namenode:8020", str(s.hdfs.namenode_http_port): "namenode:9870",
        str(s.hive.thrift_port): "spark-thrift:10000",
        str(s.flink.rest_port): "flink-jobmanager:8081", str(s.prometheus.pushgateway_port): "pushgateway:9091",
    }


# --- secrets ------------------------------------------------------------------------------------


def test_no_literal_secrets(raw_services):
    for name, raw in raw_services.items():
        env = raw.get("environment") or {}
        assert isinstance(env, dict), f"{name}: use the mapping form of environment"
        for key, value in env.items():
            if SECRET_NAME.search(key):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", str(value)), f"{name}: {key}={value!r}"
        # Inside values and commands (JVM -D options, CLI flags): only variable references.
        for text in [str(v) for v in env.values()] + [" ".join(map(str, raw.get("command") or []))]:
            literal = re.sub(r"\$\{[^}]*\}|\$\$\w+", "", text)
            assert not re.search(r"(?i)(password|passwd|secret)\W{0,2}[=\s][\"']?[\w/+]", literal), f"{name}: {text}"


def test_env_example_ships_no_secret_values_and_env_is_ignored():
    env = compose.read_env_file(REPO / ".env.example")
    secrets = {k for k in env if SECRET_NAME.search(k)}
    assert {"POSTGRES_PASSWORD", "SUPERSET_SECRET_KEY", "GRAFANA_ADMIN_PASSWORD", "CDR_PSEUDONYM_KEY"} <= secrets
    assert all(env[k] == "" for k in secrets)
    assert ".env" in (REPO / ".gitignore").read_text().split()
    assert not any(SECRET_NAME.search(k) for k in compose.read_env_file(COMPOSE_DIR / "cdr.env"))


# --- Kafka and topics -------------------------------------------------------------------------


def test_kafka_is_three_kraft_nodes_with_the_settings_replication(services, settings):
    brokers = [services[f"kafka-{i}"] for i in (1, 2, 3)]
    envs = [b["environment"] for b in brokers]
    assert [e["KAFKA_NODE_ID"] for e in envs] == [1, 2, 3]
    assert len({e["KAFKA_CLUSTER_ID"] for e in envs}) == 1
    assert all(b["command"] == ["kafka-daemon"] for b in brokers)
    # Healthy once the metadata names every broker of the settings' cluster.
    assert all(b["healthcheck"]["test"][-1] == str(len(settings.kafka.broker_ports)) for b in brokers)
    for broker, e in zip(brokers, envs):
        # The host's port is advertised as the EXTERNAL listener: host clients use the local stack's bootstrap.
        assert int(e["KAFKA_EXTERNAL_PORT"]) == _host_ports(broker)[9092]
    daemon = (COMPOSE_DIR / "images" / "bin" / "kafka-daemon").read_text()
    # Durability and quorum come from the settings, as in the local stack (stack/services/kafka.py).
    for needle in ('f"{n}@kafka-{n}:9093"', "kafka.default_replication_factor", "kafka.min_insync_replicas",
                   '"offsets.topic.replication.factor": rf', '"auto.create.topics.enable": "false"'):
        assert needle in daemon, needle
    assert settings.kafka.default_replication_factor == 3 and settings.kafka.min_insync_replicas == 2


def test_topics_come_from_the_platform_settings_not_copies(settings):
    from streaming.topics import declared_topics

    topics = declared_topics(settings)
    assert topics and all(t.replication_factor == 3 and t.config["min.insync.replicas"] == "2" for t in topics)
    texts = [p.read_text() for p in COMPOSE_DIR.glob("*.yaml")]
    for topic in topics:
        assert not any(topic.name in text for text in texts), f"{topic.name} is copied into compose/"


# --- one source of truth with the local stack --------------------------------------------------


def _bind_mounts(services):
    for name, spec in services.items():
        for volume in spec.get("volumes", []):
            source, target, *mode = volume.split(":")
            if source.startswith((".", "/")):
                yield name, source, target, mode


def test_mounted_repo_paths_exist_and_are_read_only(services):
    for name, source, target, mode in _bind_mounts(services):
        assert (COMPOSE_DIR / source).resolve().exists(), f"{name}: {source} does not exist"
        assert mode == ["ro"], f"{name}: {source} must be mounted read-only (state goes in named volumes)"


def test_state_lives_in_declared_named_volumes(model):
    declared = set(model["volumes"])
    used = set()
    for spec in model["services"].values():
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, source
                used.add(source)
    assert used == declared


def test_monitoring_uses_the_shared_files(services):
    mounts = {(n, s) for n, s, _t, _m in _bind_mounts(services)}
    assert ("prometheus", "../monitoring/prometheus/prometheus.yml") in mounts
    assert ("prometheus", "../monitoring/prometheus/rules") in mounts
    assert ("alertmanager", "../monitoring/alertmanager/alertmanager.yml") in mounts
    assert ("grafana", "../monitoring") in mounts
    assert "/opt/cdr/stack/templates/kafka-jmx-exporter.yaml" in (COMPOSE_DIR / "images" / "bin" / "kafka-daemon").read_text()
    for copy in ("prometheus.yml", "alertmanager.yml", "stack.yml"):
        assert not list(COMPOSE_DIR.rglob(copy)), f"a copy of {copy} under compose/"


def test_compose_targets_cover_every_prometheus_job(services):
    config = yaml.safe_load((REPO / "monitoring" / "prometheus" / "prometheus.yml").read_text())
    files = {f for job in config["scrape_configs"] for sd in job.get("file_sd_configs", []) for f in sd["files"]}
    files |= {f for am in config["alerting"]["alertmanagers"] for sd in am["file_sd_configs"] for f in sd["files"]}
    for name in files:
        path = COMPOSE_DIR / "prometheus" / name
        assert path.is_file(), f"{name} is read by prometheus.yml but compose/prometheus/{name} is missing"
        for group in yaml.safe_load(path.read_text()):
            assert group["labels"]["availability"] in ("always-on", "on-demand")
            for target in group["targets"]:
                host, port = target.split(":")
                assert host in services, f"{name}: {target}"
    on_disk = {f"targets/{p.name}" for p in (COMPOSE_DIR / "prometheus" / "targets").glob("*.json")}
    assert on_disk == files


def test_compose_targets_are_the_local_stacks_jobs(settings):
    from stack.services.monitoring import PRODUCER_JOB, scrape_targets

    local = scrape_targets(settings)
    for job, targets in local.items():
        groups = json.loads((COMPOSE_DIR / "prometheus" / "targets" / f"{job}.json").read_text())
        assert [len(g["targets"]) for g in groups] == [len(targets)], job
        # The container stack's producer target is static (compose/prometheus/README.md): down while
        # its service is stopped, so outside ServiceDown; the local stack's registers itself.
        assert groups[0]["labels"]["availability"] == ("on-demand" if job == PRODUCER_JOB else "always-on"), job
    assert set(compose.JOB_SERVICES) == set(local)


def test_the_metastore_is_spark_s_own_client_with_the_local_stack_s_schema(services):
    """Spark's Hive 2.3 client in every driver, on PostgreSQL, schema made by the local stack's code."""
    assert services["metastore-init"]["command"] == ["metastore-init"]
    assert "Hive(settings, paths).prepare()" in (COMPOSE_DIR / "images" / "bin" / "metastore-init").read_text()
    assert not any("hive" in spec["image"] for spec in services.values())
    assert services["spark-thrift"]["depends_on"]["metastore-init"] == {"condition": "service_completed_successfully"}


def test_database_names_are_the_settings(services, settings):
    env = services["superset"]["environment"]
    assert env["POSTGRES_USER"] == settings.postgres.user
    assert env["SERVING_DB"] == settings.postgres.serving_db
    assert env["SUPERSET_DB"] == settings.superset.metadata_db
    daemon = (COMPOSE_DIR / "images" / "bin" / "postgres-daemon").read_text()
    assert "pg.metastore_db} {pg.serving_db} {s.metadata_db}" in daemon and "PG_USER={pg.user}" in daemon


# --- interface --------------------------------------------------------------------------------


def test_makefile_wraps_compose_py_and_keeps_the_local_targets():
    text = (REPO / "Makefile").read_text()
    for target in ("up", "down", "reset", "ps", "logs", "smoke"):
        recipe = re.search(rf"^{target}:.*\n\t(.+)$", text, re.M).group(1)
        assert recipe.startswith(f"$(COMPOSE_CMD) {target}"), target
    assert "COMPOSE_CMD := $(COMPOSE_PY) compose/compose.py" in text
    assert re.search(r"^up-local: setup .*\n\t\$\(CDR\) stack up$", text, re.M)
    assert re.search(r"^down-local:", text, re.M)


# --- the images' scripts ------------------------------------------------------------------------


def test_image_scripts_are_executable_and_parse():
    import ast
    import subprocess

    for script in (COMPOSE_DIR / "images" / "bin").iterdir():
        assert script.stat().st_mode & 0o111, f"{script.name} is not executable"
        first = script.read_text().splitlines()[0]
        if "python" in first:
            ast.parse(script.read_text())
        else:
            assert subprocess.run(["sh", "-n", str(script)]).returncode == 0, script.name
    for script in (COMPOSE_DIR / "superset" / "init.sh", COMPOSE_DIR / "images" / "base-image.sh",
                   COMPOSE_DIR / "images" / "engine.sh"):
        assert subprocess.run(["sh", "-n", str(script)]).returncode == 0, script.name


def test_shell_commands_of_services_parse(services):
    import subprocess

    for name, spec in services.items():
        command = spec.get("command") or []
        entry = spec.get("entrypoint") or []
        if entry[:2] == ["/bin/bash", "-c"] or command[:2] == ["sh", "-c"]:
            script = command[0] if entry else command[2]
            shell = "bash" if entry else "sh"
            assert subprocess.run([shell, "-n", "-c", script]).returncode == 0, name


def test_entrypoint_execs_its_command_without_forwards():
    import subprocess

    out = subprocess.run(["sh", str(COMPOSE_DIR / "images" / "bin" / "cdr-entrypoint"), "echo", "ran"],
                         capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=10)
    assert out.returncode == 0 and out.stdout == "ran\n"


def test_entrypoint_writes_a_pgpass_for_the_jdbc_driver(tmp_path):
    import subprocess

    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PGPASSWORD": r"s3:cr\et"}
    subprocess.run(["sh", str(COMPOSE_DIR / "images" / "bin" / "cdr-entrypoint"), "true"], env=env, check=True, timeout=10)
    pgpass = tmp_path / ".pgpass"
    assert pgpass.read_text() == "*:*:*:cdr:s3\\:cr\\\\et\n"
    assert pgpass.stat().st_mode & 0o777 == 0o600


def test_spark_conf_is_the_local_stacks_with_container_addresses(tmp_path, settings):
    """compose/images/bin/spark-conf renders stack.spark.spark_conf() with only the driver's address
    and the metastore's password added (the rest reaches the services through the loopback forwards)."""
    import os
    import subprocess
    import sys

    from stack.spark import spark_conf

    env = {**os.environ, "SPARK_CONF_DIR": str(tmp_path), "SPARK_DRIVER_HOST": "spark-thrift",
           "POSTGRES_PASSWORD": "pw-of-the-test"}
    subprocess.run([sys.executable, str(COMPOSE_DIR / "images" / "bin" / "spark-conf")], env=env, check=True, cwd=REPO)
    conf_file = tmp_path / "spark-defaults.conf"
    assert conf_file.stat().st_mode & 0o777 == 0o600   # it holds a password
    written = dict(line.split(" ", 1) for line in conf_file.read_text().splitlines()[1:])
    local = spark_conf(settings)
    changed = {k for k in written.keys() | local.keys() if written.get(k) != local.get(k)}
    assert changed == {"spark.driver.bindAddress", "spark.driver.host", "spark.hadoop.javax.jdo.option.ConnectionPassword"}
    assert written["spark.driver.host"] == "spark-thrift"
    assert written["spark.hadoop.javax.jdo.option.ConnectionPassword"] == "pw-of-the-test"
