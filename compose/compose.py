#!/usr/bin/env python3
"""Lifecycle of the container stack, wrapped by the Makefile (`make up | down | reset | ps | logs | smoke`).

    python3 compose/compose.py env                         .env with every secret generated (kept if set)
    python3 compose/compose.py images                      build the platform image (base image first)
    python3 compose/compose.py up [--profiles batch,stream]   build, start, wait for health, print the UIs
    python3 compose/compose.py down | reset [--force] | ps | logs SERVICE | smoke | ports | config
    python3 compose/compose.py cdr ARGS...                 run `cdr ARGS...` in a one-shot container

The engine is `docker compose` (Compose v2+; podman's compose does not run healthchecks without
systemd, which the start order relies on), or what COMPOSE names. Health is also polled here, so
that a failure names the service and shows its last log lines.

Also the project's own renderer of the compose files (used by the tests, which run without an
engine): merge the files, interpolate ${VAR}, ${VAR:-default}, ${VAR:?error} from .env.
Standard library + PyYAML only, so it runs with the system python3 as well as .venvs/core.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
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
FILES = ("compose.yaml", "batch.yaml", "stream.yaml", "monitoring.yaml", "bi.yaml", "notebooks.yaml", "tools.yaml")
# What `make up` starts. Optional upstream extras (pulled, not built) are opt-in profiles.
PROFILES = ("batch", "stream", "monitoring", "bi", "notebooks")
EXTRAS = ("grafana", "kafka-ui")
# A profile that needs another's services: the stream lands bronze on HDFS, Superset and the notebooks
# read the warehouse (batch); Grafana reads Prometheus.
NEEDS = {"stream": ("batch",), "bi": ("batch",), "notebooks": ("batch",), "grafana": ("monitoring",),
         "kafka-ui": ("stream",)}
PROJECT = "cdr"
DOCS = "docs/compose.md"
# The platform image and its base (compose/images/Dockerfile). Where the base cannot be pulled, it
# is built from Debian's packages with debootstrap under the same name (compose/images/base-image.sh).
DEFAULT_BASE_IMAGE = "debian:bookworm-slim"
DEFAULT_PLATFORM_IMAGE = "cdr-platform:0.1.0"
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
BUILD_CA_DIR = HERE / "images" / "ca-certificates"

# Memory per profile (docs/compose.md, "Resources"): its long-running services at their limits plus
# its largest one-shot, rounded up. Checked before `up` as a warning: limits are ceilings, and an
# idle stack uses less, but a machine below this can see containers killed (exit 137).
MIN_MEMORY_GIB = {"core": 0.5, "batch": 7.4, "stream": 8.2, "monitoring": 0.5, "bi": 1.5, "notebooks": 1.3,
                  "grafana": 0.3, "kafka-ui": 0.5}
MIN_CPUS = 2

# The UIs printed after `up`: (service, label, port variable, default port, URL scheme).
UIS = (
    ("namenode", "HDFS NameNode", "HDFS_NAMENODE_UI_PORT", 9870, "http"),
    ("spark-master", "Spark master", "SPARK_MASTER_UI_PORT", 8080, "http"),
    ("spark-thrift", "SQL (HiveServer2 protocol)", "HIVE_THRIFT_PORT", 10000, "hive"),
    ("spark-thrift", "Thrift Server Spark UI", "SPARK_THRIFT_UI_PORT", 4040, "http"),
    ("kafka-1", "Kafka bootstrap", "KAFKA_1_PORT", 9092, "kafka"),
    ("kafka-ui", "Kafka UI", "KAFKA_UI_PORT", 8082, "http"),
    ("producer", "CDR producer metrics", "PRODUCER_METRICS_PORT", 9400, "http"),
    ("flink-jobmanager", "Flink", "FLINK_REST_PORT", 8081, "http"),
    ("postgres", "PostgreSQL", "POSTGRES_PORT", 5432, "postgresql"),
    ("prometheus", "Prometheus", "PROMETHEUS_PORT", 9090, "http"),
    ("alertmanager", "Alertmanager", "ALERTMANAGER_PORT", 9093, "http"),
    ("pushgateway", "Pushgateway", "PUSHGATEWAY_PORT", 9091, "http"),
    ("grafana", "Grafana", "GRAFANA_PORT", 3000, "http"),
    ("superset", "Superset", "SUPERSET_PORT", 8088, "http"),
    ("jupyter", "JupyterLab", "JUPYTER_PORT", 8888, "http"),
)

# Prometheus jobs and the services behind them: `smoke` expects a job up only if they run.
JOB_SERVICES = {
    "prometheus": ("prometheus",),
    "alertmanager": ("alertmanager",),
    "pushgateway": ("pushgateway",),
    "kafka": ("kafka-1", "kafka-2", "kafka-3"),
    "hdfs-namenode": ("namenode",),
    "hdfs-datanode": ("datanode-1", "datanode-2"),
    "spark-thriftserver": ("spark-thrift",),
    "flink-jobmanager": ("flink-jobmanager",),
    "flink-taskmanager": ("flink-taskmanager",),
    "cdr-producer": ("producer",),
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


class UnhealthyError(StackError):
    """Services failed or did not become healthy in time; ``services`` names them."""

    def __init__(self, message: str, services: list[str]):
        super().__init__(message)
        self.services = services


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
    try:
        import yaml
    except ImportError:
        raise StackError("PyYAML is missing for compose/compose.py: `apt-get install python3-yaml`, or `make setup` "
                         "(then make uses .venvs/core)") from None

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
        raise StackError(f"no .env: run `make env` (generates every secret) or `cp .env.example .env` and fill in "
                         f"the secrets ({DOCS}#first-run)")
    return {**read_env_file(ENV_FILE), **os.environ}


# Secrets of .env.example and how `env` generates each (never a default value anywhere).
SECRET_GENERATORS = {
    "POSTGRES_PASSWORD": lambda: secrets.token_urlsafe(24),
    "SUPERSET_SECRET_KEY": lambda: secrets.token_urlsafe(42),
    "SUPERSET_ADMIN_PASSWORD": lambda: secrets.token_urlsafe(18),
    "GRAFANA_ADMIN_PASSWORD": lambda: secrets.token_urlsafe(18),
    "CDR_PSEUDONYM_KEY": lambda: secrets.token_hex(32),
    "JUPYTER_TOKEN": lambda: secrets.token_hex(24),
}


def generate_env_file() -> list[str]:
    """Fill every empty secret of .env (made from .env.example if absent) with a new random value;
    values already set are kept. Returns the names filled. The file is git-ignored, mode 0600."""
    lines = (ENV_FILE if ENV_FILE.is_file() else ENV_EXAMPLE).read_text().splitlines()
    filled = []
    for index, line in enumerate(lines):
        key, sep, value = line.partition("=")
        if sep and key in SECRET_GENERATORS and not value.strip():
            lines[index] = f"{key}={SECRET_GENERATORS[key]()}"
            filled.append(key)
    fd = os.open(ENV_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(lines) + "\n")
    return filled


# --- engine ---------------------------------------------------------------------------------------


def _responds(argv: list[str], timeout: float = 20) -> bool:
    try:
        return subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_engine(override: str | None = None) -> tuple[list[str], str]:
    """(compose command, engine binary). A compose client is not enough: the engine must answer."""
    override = override if override is not None else os.environ.get("COMPOSE", "")
    compose = shlex.split(override) if override else ["docker", "compose"]
    engine = "podman" if "podman" in compose[0] else "docker"
    if shutil.which(compose[0]) is None:
        problem = f"`{compose[0]}` is not installed"
    elif not _responds([*compose, "version"]):
        problem = f"`{' '.join(compose)}` is missing (Docker Compose v2 or later is needed)"
    elif not _responds([engine, "info"]):
        problem = f"the {engine} engine does not answer (is dockerd running?)"
    else:
        return compose, engine
    raise StackError(
        f"No working container engine: {problem}.\n"
        "On Debian, as root, `make engine` installs Docker Engine and Compose and starts the daemon "
        f"({DOCS}#first-run); or run the same services as local processes with `make up-local`."
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


def image_exists(engine: str, name: str) -> bool:
    return _responds([engine, "image", "inspect", name])


def ensure_base_image(engine: str, name: str) -> None:
    """The base image: present, else pulled, else built from Debian's packages (no registry here)."""
    if image_exists(engine, name):
        return
    print(f"base image {name}: pulling", flush=True)
    if _responds([engine, "pull", name], timeout=120):
        return
    print(f"base image {name}: cannot be pulled; building it from Debian's packages (debootstrap, about 70 s)",
          flush=True)
    built = subprocess.run([str(HERE / "images" / "base-image.sh"), name], env={**os.environ, "ENGINE": engine})
    if built.returncode != 0:
        raise StackError(f"the base image {name} could not be pulled nor built; see above and {DOCS}#troubleshooting")


def copy_host_ca_certificates() -> int:
    """The host's extra CA certificates into the build context (git-ignored): builds behind a
    TLS-re-signing proxy reach PyPI and Maven Central only if the image trusts its CA."""
    for old in BUILD_CA_DIR.glob("*.crt"):
        old.unlink()
    count = 0
    for cert in sorted(HOST_CA_DIR.rglob("*.crt")) if HOST_CA_DIR.is_dir() else []:
        shutil.copyfile(cert, BUILD_CA_DIR / f"host-{cert.parent.name}-{cert.name}" if cert.parent != HOST_CA_DIR
                        else BUILD_CA_DIR / cert.name)
        count += 1
    return count


def build_images(engine: str, env: dict[str, str]) -> None:
    base = env.get("BASE_IMAGE") or DEFAULT_BASE_IMAGE
    image = env.get("PLATFORM_IMAGE") or DEFAULT_PLATFORM_IMAGE
    ensure_base_image(engine, base)
    certs = copy_host_ca_certificates()
    print(f"building {image} from {base} ({certs} extra CA certificates of this machine)", flush=True)
    started = time.monotonic()
    argv = [engine, "build", "--file", str(HERE / "images" / "Dockerfile"), "--target", "platform",
            "--build-arg", f"BASE_IMAGE={base}", "--tag", image, str(REPO)]
    if subprocess.run(argv, env={**os.environ, "DOCKER_BUILDKIT": "0"}).returncode != 0:
        raise StackError(f"building {image} failed (see the step above); {DOCS}#troubleshooting")
    print(f"built {image} in {time.monotonic() - started:.0f} s", flush=True)


def published_ports(services: dict[str, dict]) -> dict[int, str]:
    """host port -> service, for every port the services publish."""
    ports = {}
    for name, spec in services.items():
        for entry in spec.get("ports", []):
            ports[int(str(entry).rsplit(":", 2)[-2])] = name
    return ports


def listeners() -> dict[int, str]:
    """host TCP port -> the process listening on it (`ss`), for ports in use on this machine."""
    try:
        out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    found = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        port = fields[3].rsplit(":", 1)[-1]
        process = re.search(r'users:\(\("([^"]+)",pid=(\d+)', line)
        if port.isdigit():
            found[int(port)] = f"{process.group(1)} (pid {process.group(2)})" if process else "another process"
    return found


def check_ports_free(stack: "Compose", services: dict[str, dict]) -> None:
    """Fail before starting when a host port the stack publishes is taken by something else."""
    ours = {s for s, st in stack.containers().items() if st["status"] == "running"}
    taken = listeners()
    # A port held by docker-proxy for this stack's own running service is the service itself (a re-up).
    clashes = [f"port {port} ({service}) is in use by {taken[port]}"
               for port, service in sorted(published_ports(services).items())
               if port in taken and not (taken[port].startswith("docker-proxy") and service in ours)]
    if clashes:
        raise StackError("; ".join(clashes) + ". Stop it (the local stack: `make down-local`), or move the "
                         f"service with its port variable in .env ({DOCS}#services-and-ports).")


def print_logs(stack: "Compose", services: list[str], lines: int = 40) -> None:
    for name in services:
        print(f"--- last {lines} log lines of {name} ---", file=sys.stderr, flush=True)
        subprocess.run(stack.argv("logs", "--no-color", "--tail", str(lines), name, profiles=PROFILES + EXTRAS),
                       cwd=HERE, stdout=sys.stderr, stderr=sys.stderr)


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
            raise UnhealthyError("failed: " + ", ".join(failed) + f"\nSee `make logs S=<service>` and {DOCS}#troubleshooting "
                             "(exit 137 = out of memory).", [f.split()[0] for f in failed])
        if not waiting:
            return
        line = "waiting for: " + ", ".join(waiting)
        if line != last:
            print(line, flush=True)
            last = line
        if time.monotonic() > deadline:
            raise UnhealthyError(f"not healthy after {timeout_s:.0f} s: {', '.join(waiting)} ({DOCS}#troubleshooting)",
                                 [w.split()[0] for w in waiting])
        time.sleep(5)


def ui_table(env: dict[str, str], services: dict[str, dict]) -> str:
    ip = env.get("BIND_IP") or "127.0.0.1"
    host = "127.0.0.1" if ip == "0.0.0.0" else ip
    rows = [(label, f"{scheme}://{host}:{env.get(var) or default}")
            for service, label, var, default, scheme in UIS if service in services]
    width = max((len(r[0]) for r in rows), default=10)
    return "\n".join(f"  {label:<{width}}  {url}" for label, url in rows)


def cmd_up(profiles: tuple[str, ...], timeout_s: float, build: bool = True) -> None:
    stack = Compose(profiles)   # first: without an engine, nothing else matters
    env = project_env()
    services = render(env, profiles)["services"]   # also fails fast on a missing secret
    preflight(profiles)
    check_ports_free(stack, services)
    if build:
        build_images(stack.engine, env)
    started = time.monotonic()
    stack.run("up", "--detach", "--no-build", "--remove-orphans")
    try:
        wait_healthy(stack, services, timeout_s)
    except UnhealthyError as exc:
        print_logs(stack, exc.services)
        raise
    print(f"\nCDR platform is up in {time.monotonic() - started:.0f} s (profiles: {', '.join(profiles) or 'none'}):\n"
          f"{ui_table(env, services)}")
    print("\n`make smoke` checks it end to end; `make down` stops it (data kept), `make reset` deletes the data.")


def cmd_cdr(args: list[str]) -> int:
    """`cdr ARGS` in a one-shot container of the platform image (service cdr, compose/tools.yaml)."""
    stack = Compose(PROFILES)
    return stack.run("run", "--rm", "--no-deps", "cdr", "cdr", *args, profiles=("tools",), check=False)


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
              "-e", f"SMOKE_PROMETHEUS_JOBS={','.join(jobs)}", "cdr", "python", "/opt/cdr/compose/smoke.py",
              profiles=("tools",))


def confirm_reset(force: bool) -> bool:
    if force:
        return True
    if not sys.stdin.isatty():
        raise StackError("`make reset` deletes every volume of the stack; run it in a terminal to confirm, or set FORCE=1")
    return input("Delete all data of the container stack (HDFS, Kafka, PostgreSQL, dashboards)? Type 'reset': ").strip() == "reset"


def parse_profiles(value: str | None) -> tuple[str, ...]:
    """The profiles asked for (default: all of PROFILES) and those they need (NEEDS)."""
    names = [p for p in re.split(r"[,\s]+", value or "") if p] or list(PROFILES)
    unknown = set(names) - set(PROFILES) - set(EXTRAS)
    if unknown:
        raise StackError(f"unknown profile(s) {sorted(unknown)}; choose from {', '.join(PROFILES + EXTRAS)}")
    for name in list(names):
        names += [needed for needed in NEEDS.get(name, ()) if needed not in names]
    return tuple(p for p in PROFILES + EXTRAS if p in names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="compose.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("env", "images", "up", "stop", "start", "down", "reset", "ps", "logs", "smoke", "ports", "config",
                                            "cdr"))
    parser.add_argument("args", nargs="*", help="logs, stop, start: services; cdr: its arguments (after --)")
    parser.add_argument("--profiles", default=os.environ.get("PROFILES", ""), help="comma-separated; default: all")
    parser.add_argument("--force", action="store_true", default=os.environ.get("FORCE") == "1")
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("UP_TIMEOUT", "900")))
    parser.add_argument("--no-build", action="store_true", help="up: use the images as they are")
    argv = sys.argv[1:] if argv is None else argv
    # `cdr ARGS...` passes everything after the command through untouched (options included).
    passthrough = argv[argv.index("cdr") + 1:] if argv[:1] == ["cdr"] else None
    args = parser.parse_args(argv[:1] if passthrough is not None else argv)
    try:
        profiles = parse_profiles(args.profiles)
        if args.command == "up":
            cmd_up(profiles, args.timeout, build=not args.no_build)
        elif args.command == "env":
            filled = generate_env_file()
            print(f"{ENV_FILE.relative_to(REPO)}: " + (f"generated {', '.join(filled)}" if filled else "every secret set"))
        elif args.command == "images":
            build_images(find_engine()[1], {**read_env_file(ENV_FILE), **os.environ} if ENV_FILE.is_file() else dict(os.environ))
        elif args.command == "cdr":
            return cmd_cdr(passthrough or [])
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
            stack = Compose(PROFILES + EXTRAS)
            if args.command in ("stop", "start"):
                stack.run(args.command, *args.args)
            elif args.command == "down":
                stack.run("down", "--remove-orphans")
            elif args.command == "reset":
                if not confirm_reset(args.force):
                    print("nothing deleted")
                    return 1
                stack.run("down", "--volumes", "--remove-orphans")
            elif args.command == "ps":
                stack.run("ps", "--all")
            elif args.command == "logs":
                stack.run("logs", "--follow", "--tail", "200", *args.args, check=False)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
