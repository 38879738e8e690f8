"""Finding Java and building classpaths for the JVM services."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from cdr.errors import CdrError, ServiceUnavailable
from cdr.settings import Settings


def java_home(settings: Settings) -> Path:
    """JAVA_HOME for the JVM services: the setting, then $JAVA_HOME, then the `java` on PATH."""
    candidates = [settings.stack.java_home, os.environ.get("JAVA_HOME", "")]
    for home in filter(None, candidates):
        if (Path(home) / "bin" / "java").is_file():
            return Path(home)
        raise CdrError(
            f"Java not found: {home}/bin/java does not exist (from "
            f"{'CDR_STACK__JAVA_HOME / stack.java_home' if home == settings.stack.java_home else 'JAVA_HOME'}). "
            "Install a JDK 17 (apt-get install openjdk-17-jdk-headless) or fix the setting."
        )
    on_path = shutil.which("java")
    if not on_path:
        raise CdrError(
            "Java not found: no `java` on PATH and JAVA_HOME is unset. The stack's JVM services need Java 17: "
            "run `cdr stack install` as root, or apt-get install openjdk-17-jdk-headless."
        )
    return Path(on_path).resolve().parent.parent


def java(settings: Settings) -> str:
    return str(java_home(settings) / "bin" / "java")


def classpath(*entries: Path) -> str:
    """A JVM classpath; a directory of jars is given as ``dir/*`` (the JVM expands it)."""
    parts = []
    for entry in entries:
        if entry.is_dir() and any(entry.glob("*.jar")):
            parts.append(f"{entry}/*")
        else:
            parts.append(str(entry))
    return ":".join(parts)


def require_jars(jar_dir: Path) -> Path:
    if not any(jar_dir.glob("*.jar")):
        raise ServiceUnavailable(f"no jars in {jar_dir}: run `cdr stack install` (or `make setup`) first")
    return jar_dir
