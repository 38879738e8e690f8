#!/usr/bin/env python3
"""Lifecycle of the container stack, wrapped by the Makefile (`make up | down | reset | ps | logs | smoke`).

    python3 compose/compose.py up [--profiles batch,stream]   build, start, wait for health, print the UIs
    python3 compose/compose.py down | reset [--force] | ps | logs SERVICE | smoke | ports | config

The engine is `docker compose` or `podman compose` (first that answers, engine included), or what
COMPOSE names (e.g. COMPOSE="podman-compose"). Health is polled here rather than left to
`depends_on`, because podman-compose does not honour every condition.

Also the project's own renderer of the compose files (used by the tests, which run without an
engine): merge the files, interpolate ${VAR}, ${VAR:-default}, ${VAR:?error} from .env.
Standard library + PyYAML only, so it runs with the system python3 as well as .venvs/core.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ENV_FILE = REPO / ".env"
ENV_EXAMPLE = REPO / ".env.example"
# Order matters only for readability: the base file first (it names the project).
FILES = ("compose.yaml", "batch.yaml", "stream.yaml", "monitoring.yaml", "bi.yaml", "notebooks.yaml")
PROFILES = ("batch", "stream", "monitoring", "bi", "notebooks")
PROJECT = "cdr"
DOCS = "docs/compose.md"

# Memory per profile (docs/compose.md, "Resources"): its long-running services at their limits plus
# its largest one-shot, rounded up. Checked before `up` as a warning: limits are ceilings, and an
# idle stack uses less, but a machine below this can see containers killed (exit 137).
MIN_MEMORY_GIB = {"core": 0.6, "batch": 9.5, "stream": 9.5, "monitoring": 1.0, "bi": 2.0, "notebooks": 2.0}
MIN_CPUS = 2

# The UIs printed after `up`: (service, label, port variable, default port, URL scheme).
UIS = (
    ("namenode", "HDFS NameNode", "HDFS_NAMENODE_UI_PORT", 9870, "http"),
    ("spark-master", "Spark master", "SPARK_MASTER_UI_PORT", 8080, "http"),
    ("spark-thrift", "SQL (HiveServer2 protocol)", "HIVE_THRIFT_PORT", 10000, "hive"),
    ("spark-thrift", "Thrift Server Spark UI", "SPARK_THRIFT_UI_PORT", 4040, "http"),
    ("kafka-1", "Kafka bootstrap", "KAFKA_1_PORT", 9092, "kafka"),
    ("kafka-ui", "Kafka UI", "KAFKA_UI_PORT", 8082, "http"),
    ("flink-jobmanager", "Flink", "FLINK_REST_PORT", 8081, "http"),
    ("postgres", "PostgreSQL", "POSTGRES_PORT", 5432, "postgresql"),
    ("prometheus", "Prometheus", "PROMETHEUS_PORT", 9090, "http"),
    ("alertmanager", "Alertmanager", "ALERTMANAGER_PORT", 9093, "http"),
    ("grafana", "Grafana", "GRAFANA_PORT", 3000, "http"),
    ("superset", "Superset", "SUPERSET_PORT", 8088, "http"),
    ("jupyter", "JupyterLab", "JUPYTER_PORT", 8888, "http"),
)

# Prometheus jobs and the services behind them: `smoke` expects a job up only if they run.
JOB_SERVICES = {
    "prometheus": ("prometheus",),
    "postgres": ("postgres-exporter",),
    "alertmanager": ("alertmanager",),
    "kafka": ("kafka-1", "kafka-2", "kafka-3"),
    "kafka-exporter": ("kafka-exporter",),
    "hdfs-namenode": ("namenode",),
    "hdfs-datanode": ("datanode-1", "datanode-2"),
    "spark-thriftserver": ("spark-thrift",),
    "flink-jobmanager": ("flink-jobmanager",),
    "flink-taskmanager": ("flink-taskmanager",),
}


class StackError(Exception):
    """A message for the user; exit code 2."""


# --- rendering (no engine needed) -----------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines of a .env file (comments, blank lines and surrounding quotes ignored)."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key.strip()] = value
    return env


_VAR = re.compile(r"\$(?:\$|\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")


class InterpolationError(StackError):
    pass


def interpolate(value, env: dict[str, str]):
    """Compose-style interpolation of every string in a loaded YAML tree."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        if match.group("plain"):
            return env.get(match.group("plain"), "")
        expr = match.group("braced")
        for op in (":?", "?", ":-", "-"):
            if op in expr:
                name, arg = expr.split(op, 1)
                break
        else:
            name, op, arg = expr, "", ""
        current = env.get(name)
        empty = current is None or (op.startswith(":") and current == "")
        if op in (":?", "?") and empty:
            raise InterpolationError(f"required variable {name} is missing a value: {arg}")
        if op in (":-", "-") and empty:
            return arg
        return current or ""

    return _VAR.sub(one, value)


def load_files(files: tuple[str, ...] = FILES) -> dict[str, dict]:
    """Each compose file as loaded YAML (anchors and merge keys resolved), not interpolated."""
    import yaml

    return {name: yaml.safe_load((HERE / name).read_text()) for name in files}


def render(env: dict[str, str], profiles: tuple[str, ...] | None = PROFILES, files: tuple[str, ...] = FILES) -> dict:
    """The project model: files merged (they define disjoint services), interpolated, services
    filtered to the active profiles (None: keep all). x- extension keys are dropped."""
    model: dict = {"services": {}, "volumes": {}}
    for name, doc in load_files(files).items():
        doc = interpolate({k: v for k, v in doc.items() if not k.startswith("x-")}, env)
        for key, value in doc.items():
            if key in ("services", "volumes", "networks"):
                overlap = set(model.get(key, {})) & set(value or {})
                if overlap:
                    raise StackError(f"{name} redefines {key} {sorted(overlap)}")
                model.setdefault(key, {}).update(value or {})
            else:
                model[key] = value
    if profiles is not None:
        model["services"] = {
            s: spec for s, spec in model["services"].items()
            if not spec.get("profiles") or set(spec["profiles"]) & set(profiles)
        }
    return model


def is_one_shot(spec: dict) -> bool:
    return str(spec.get("restart", "no")) == "no"


def project_env() -> dict[str, str]:
    """What compose interpolates from: the repo's .env under the process environment."""
    if not ENV_FILE.is_file():
        raise StackError(f"no .env: run `cp .env.example .env` and fill in the secrets ({DOCS}, first run)")
    return {**read_env_file(ENV_FILE), **os.environ}


# --- engine ---------------------------------------------------------------------------------------


def _responds(argv: list[str], timeout: float = 20) -> bool:
    try:
        return subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_engine(override: str | None = None) -> tuple[list[str], str]:
    """(compose command, engine binary). A compose client is not enough: the engine must answer
    (`docker info` fails without a daemon, `podman info` without a working podman)."""
    override = override if override is not None else os.environ.get("COMPOSE", "")
    if override:
        compose = shlex.split(override)
        engine = "podman" if "podman" in compose[0] else "docker"
        candidates = [(compose, engine)]
    else:
        candidates = [
            (["docker", "compose"], "docker"),
            (["podman", "compose"], "podman"),
            (["podman-compose"], "podman"),
            (["docker-compose"], "docker"),
        ]
    tried = []
    for compose, engine in candidates:
        if shutil.which(compose[0]) is None:
            tried.append(f"{' '.join(compose)}: not installed")
        elif not _responds([*compose, "version"]):
            tried.append(f"{' '.join(compose)}: no compose support")
        elif not _responds([engine, "info"]):
            tried.append(f"{' '.join(compose)}: the {engine} engine does not respond")
        else:
            return compose, engine
    raise StackError(
        "No working container engine found (" + "; ".join(tried) + ").\n"
        "Start Docker or Podman (or name one with COMPOSE=...), or run the same services as local "
        "processes with `make up-local`."
    )


class Compose:
    def __init__(self, profiles: tuple[str, ...], override: str | None = None):
        self.compose, self.engine = find_engine(override)
        self.profiles = profiles

    def argv(self, *args: str, profiles: tuple[str, ...] | None = None) -> list[str]:
        argv = [*self.compose, "--project-name", PROJECT, "--env-file", str(ENV_FILE)]
        for name in FILES:
            argv += ["-f", str(HERE / name)]
        for profile in self.profiles if profiles is None else profiles:
            argv += ["--profile", profile]
        return [*argv, *args]

    def run(self, *args: str, profiles: tuple[str, ...] | None = None, check: bool = True) -> int:
        argv = self.argv(*args, profiles=profiles)
        print("+", " ".join(argv[len(self.compose):]) if os.environ.get("VERBOSE") else " ".join(args), flush=True)
        code = subprocess.run(argv, cwd=HERE).returncode
        if check and code != 0:
            raise StackError(f"`{' '.join(args)}` failed (exit {code}); see `make logs S=<service>` and {DOCS}#troubleshooting")
        return code

    def containers(self) -> dict[str, dict]:
        """service -> state of its container: {status, health, exit_code, restarts}."""
        ids = subprocess.run(
            [self.engine, "ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"],
            capture_output=True, text=True, check=True,
        ).stdout.split()
        if not ids:
            return {}
        out = subprocess.run([self.engine, "inspect", *ids], capture_output=True, text=True, check=True).stdout
        states = {}
        for c in json.loads(out):
            service = (c.get("Config", {}).get("Labels") or {}).get("com.docker.compose.service")
            state = c.get("State", {})
            health = (state.get("Health") or state.get("Healthcheck") or {}).get("Status", "")
            states[service] = {
                "status": state.get("Status", ""), "health": health,
                "exit_code": state.get("ExitCode", 0), "restarts": c.get("RestartCount", 0),
            }
        return states


# --- commands -------------------------------------------------------------------------------------


def preflight(profiles: tuple[str, ...]) -> None:
    """Warn (do not fail) when the machine looks too small for the chosen profiles."""
    need = MIN_MEMORY_GIB["core"] + sum(MIN_MEMORY_GIB[p] for p in profiles)
    try:
        meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        have = int(meminfo["MemAvailable"].split()[0]) / 2**20
    except (OSError, KeyError, ValueError):
        have = None
    if have is not None and have < need:
        print(f"warning: {have:.1f} GiB memory available, profiles {','.join(profiles)} need about {need:.1f} GiB; "
              f"containers may be killed (exit 137). Use fewer profiles, e.g. PROFILES=batch ({DOCS}#resources).")
    if (os.cpu_count() or 1) < MIN_CPUS:
        print(f"warning: {os.cpu_count()} CPU; the stack needs at least {MIN_CPUS}.")


def wait_healthy(stack: Compose, services: dict[str, dict], timeout_s: float) -> None:
    """Poll until every long-running service is healthy (running, if it has no healthcheck) and
    every one-shot exited 0. Fails early on a failed one-shot or a crash-looping service."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while True:
        states = stack.containers()
        waiting, failed = [], []
        for name, spec in services.items():
            st = states.get(name)
            if st is None:
                waiting.append(f"{name} (not created)")
            elif is_one_shot(spec):
                if st["status"] == "exited" and st["exit_code"] != 0:
                    failed.append(f"{name} exited {st['exit_code']}")
                elif st["status"] != "exited":
                    waiting.append(f"{name} (running once)")
            elif st["status"] == "exited" or st["restarts"] >= 3:
                failed.append(f"{name} {st['status']} (exit {st['exit_code']}, {st['restarts']} restarts)")
            elif "healthcheck" in spec and st["health"] != "healthy":
                waiting.append(f"{name} ({st['health'] or st['status']})")
            elif "healthcheck" not in spec and st["status"] != "running":
                waiting.append(f"{name} ({st['status']})")
        if failed:
            raise StackError("failed: " + ", ".join(failed) + f"\nSee `make logs S=<service>` and {DOCS}#troubleshooting "
                             "(exit 137 = out of memory).")
        if not waiting:
            return
        line = "waiting for: " + ", ".join(waiting)
        if line != last:
            print(line, flush=True)
            last = line
        if time.monotonic() > deadline:
            raise StackError(f"not healthy after {timeout_s:.0f} s: {', '.join(waiting)} ({DOCS}#troubleshooting)")
        time.sleep(5)


def ui_table(env: dict[str, str], services: dict[str, dict]) -> str:
    ip = env.get("BIND_IP") or "127.0.0.1"
    host = "127.0.0.1" if ip == "0.0.0.0" else ip
    rows = [(label, f"{scheme}://{host}:{env.get(var) or default}")
            for service, label, var, default, scheme in UIS if service in services]
    width = max((len(r[0]) for r in rows), default=10)
    return "\n".join(f"  {label:<{width}}  {url}" for label, url in rows)


def cmd_up(profiles: tuple[str, ...], timeout_s: float) -> None:
    stack = Compose(profiles)   # first: without an engine, nothing else matters
    env = project_env()
    services = render(env, profiles)["services"]   # also fails fast on a missing secret
    preflight(profiles)
    stack.run("up", "--detach", "--build", "--remove-orphans")
    wait_healthy(stack, services, timeout_s)
    print(f"\nCDR platform is up (profiles: {', '.join(profiles) or 'none'}):\n{ui_table(env, services)}")
    print("\n`make smoke` checks it end to end; `make down` stops it (data kept), `make reset` deletes the data.")


def cmd_smoke() -> None:
    stack = Compose(PROFILES)
    running = {s for s, st in stack.containers().items() if st["status"] == "running"}
    checks = [name for name, service in (("kafka", "kafka-1"), ("hive", "spark-thrift"),
                                         ("flink", "flink-jobmanager"), ("prometheus", "prometheus"))
              if service in running]
    if not checks:
        raise StackError("nothing to check: the stack is not running (`make up`)")
    jobs = [job for job, needs in JOB_SERVICES.items() if set(needs) <= running]
    stack.run("run", "--rm", "--no-deps", "-e", f"SMOKE_CHECKS={','.join(checks)}",
              "-e", f"SMOKE_PROMETHEUS_JOBS={','.join(jobs)}", "smoke", profiles=("tools",))


def confirm_reset(force: bool) -> bool:
    if force:
        return True
    if not sys.stdin.isatty():
        raise StackError("`make reset` deletes every volume of the stack; run it in a terminal to confirm, or set FORCE=1")
    return input("Delete all data of the container stack (HDFS, Kafka, PostgreSQL, dashboards)? Type 'reset': ").strip() == "reset"


def parse_profiles(value: str | None) -> tuple[str, ...]:
    names = tuple(p for p in re.split(r"[,\s]+", value or "") if p)
    unknown = set(names) - set(PROFILES)
    if unknown:
        raise StackError(f"unknown profile(s) {sorted(unknown)}; choose from {', '.join(PROFILES)}")
    return names or PROFILES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="compose.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("up", "down", "reset", "ps", "logs", "smoke", "ports", "config"))
    parser.add_argument("service", nargs="?", help="logs: the service to follow (all when empty)")
    parser.add_argument("--profiles", default=os.environ.get("PROFILES", ""), help="comma-separated; default: all")
    parser.add_argument("--force", action="store_true", default=os.environ.get("FORCE") == "1")
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("UP_TIMEOUT", "1200")))
    args = parser.parse_args(argv)
    try:
        profiles = parse_profiles(args.profiles)
        if args.command == "up":
            cmd_up(profiles, args.timeout)
        elif args.command == "config":   # the project as this module renders it (no engine needed)
            import yaml

            print(yaml.safe_dump(render(project_env(), profiles), sort_keys=False))
        elif args.command == "ports":
            env = project_env()
            print(ui_table(env, render(env, profiles)["services"]))
        elif args.command == "smoke":
            cmd_smoke()
        else:
            # Every profile, so that services of any profile are listed / stopped / removed.
            stack = Compose(PROFILES)
            if args.command == "down":
                stack.run("down", "--remove-orphans")
            elif args.command == "reset":
                if not confirm_reset(args.force):
                    print("nothing deleted")
                    return 1
                stack.run("down", "--volumes", "--remove-orphans")
            elif args.command == "ps":
                stack.run("ps", "--all")
            elif args.command == "logs":
                stack.run("logs", "--follow", "--tail", "200", *([args.service] if args.service else []), check=False)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
