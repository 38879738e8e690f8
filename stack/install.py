"""`cdr stack install`: everything the local stack needs that is not in a virtual environment.

Idempotent: Debian packages are checked with dpkg first (apt runs only when one is missing),
and each jar folder is refilled only when stack/pom.xml changed since it was filled.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from cdr.errors import CdrError
from cdr.settings import Settings
from stack.paths import POM, StackPaths
from stack.process import tail
from stack.services.postgres import ensure_os_user

# Debian packages whose binaries the stack runs (with our own data directories).
DEBIAN_PACKAGES = ["postgresql", "prometheus", "prometheus-alertmanager", "prometheus-pushgateway"]
# Tools the installer and the JVM services need, and the Debian package that provides each.
TOOL_PACKAGES = {"java": "openjdk-17-jdk-headless", "mvn": "maven"}
# systemd units those packages bring; the stack runs its own instances on the same ports.
SYSTEM_UNITS = ["postgresql", "prometheus", "prometheus-alertmanager", "prometheus-pushgateway",
                "prometheus-node-exporter"]
# One stack/pom.xml profile per classpath, and the maven-dependency-plugin goal that fills it.
JAR_GROUPS = {
    "kafka": "copy-dependencies",
    "jmx-exporter": "copy-dependencies",
    "hadoop": "copy-dependencies",
    "hadoop-webapps": "unpack",
    "flink-connectors": "copy-dependencies",
    "flink-hadoop": "copy-dependencies",
    "spark-metastore": "copy-dependencies",
}
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")

Report = Callable[[str], None]


def is_installed(package: str) -> bool:
    result = subprocess.run(["dpkg-query", "--show", "--showformat=${Status}", package], capture_output=True, text=True)
    return result.returncode == 0 and result.stdout.strip() == "install ok installed"


@contextlib.contextmanager
def services_not_started() -> Iterator[None]:
    """Keep Debian maintainer scripts from starting the packages' system services (policy-rc.d, exit 101)."""
    if POLICY_RC_D.exists():
        yield
        return
    POLICY_RC_D.write_text("#!/bin/sh\n# Temporary, from `cdr stack install`: do not start services.\nexit 101\n")
    POLICY_RC_D.chmod(0o755)
    try:
        yield
    finally:
        POLICY_RC_D.unlink(missing_ok=True)


def install_debian_packages(packages: list[str], log: Path, report: Report) -> None:
    if os.geteuid() != 0:
        raise CdrError(
            f"missing Debian packages: {' '.join(packages)}. Install them as root "
            f"(sudo apt-get install --no-install-recommends {' '.join(packages)}) or run `cdr stack install` as root."
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    report(f"installing Debian packages: {' '.join(packages)}")
    with log.open("ab") as out, services_not_started():
        for argv in (
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
        ):
            if subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env).returncode != 0:
                raise CdrError(f"`{' '.join(argv)}` failed; see {log}:\n{tail(log, 20)}")
    if Path("/run/systemd/system").is_dir():  # a booted systemd would start them at the next boot
        units = [f"{unit}.service" for unit in SYSTEM_UNITS]
        subprocess.run(["systemctl", "disable", "--now", *units], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def fetch_jars(paths: StackPaths, log: Path, report: Report) -> None:
    """Fill each jar folder from its stack/pom.xml profile, unless already filled from this pom."""
    digest = pom_digest()
    for group, goal in JAR_GROUPS.items():
        target = paths.jar_group(group)
        stamp = target / ".pom-sha256"
        if stamp.exists() and stamp.read_text() == digest:
            continue
        report(f"fetching jars: {group}")
        shutil.rmtree(target, ignore_errors=True)
        argv = ["mvn", "-q", "-B", "-f", str(POM), f"-P{group}", f"-Dstack.jars={paths.jars}", f"dependency:{goal}"]
        with log.open("ab") as out:
            if subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
                raise CdrError(f"fetching the {group} jars failed (`{' '.join(argv)}`); see {log}:\n{tail(log, 20)}")
        stamp.write_text(digest)


def install(settings: Settings, report: Report) -> None:
    paths = StackPaths.from_settings(settings)
    paths.logs.mkdir(parents=True, exist_ok=True)
    log = paths.log("install")
    tools = [package for tool, package in TOOL_PACKAGES.items() if shutil.which(tool) is None]
    missing = tools + [package for package in DEBIAN_PACKAGES if not is_installed(package)]
    if missing:
        install_debian_packages(missing, log, report)
    if os.geteuid() == 0:
        ensure_os_user(settings.postgres.os_user)
    fetch_jars(paths, log, report)
