"""Where the local stack keeps things: one git-ignored folder (``settings.stack.home_dir``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cdr.settings import REPO_ROOT, Settings

TEMPLATES = Path(__file__).resolve().parent / "templates"
POM = Path(__file__).resolve().parent / "pom.xml"
MONITORING = REPO_ROOT / "monitoring"
# Superset's configuration, init script and dashboards, shared with the container stack.
SUPERSET_FILES = REPO_ROOT / "compose" / "superset"


@dataclass(frozen=True)
class StackPaths:
    home: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> StackPaths:
        return cls(settings.stack.home_dir)

    @property
    def run(self) -> Path:
        """Pid records."""
        return self.home / "run"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def jars(self) -> Path:
        """Filled by `cdr stack install` from stack/pom.xml; one folder per classpath."""
        return self.home / "jars"

    def jar_group(self, group: str) -> Path:
        return self.jars / group

    def service(self, name: str) -> Path:
        """State and generated configuration of one service."""
        return self.home / name

    def log(self, process: str) -> Path:
        return self.logs / f"{process}.log"
