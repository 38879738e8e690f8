"""What every service of the local stack provides to the lifecycle (``stack.lifecycle``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from cdr.settings import Settings
from stack.paths import StackPaths
from stack.process import ProcessSpec


@dataclass(frozen=True)
class Endpoint:
    label: str
    address: str


class Service(ABC):
    """One service: its processes, its one-time set-up and its readiness probe."""

    name: ClassVar[str]
    needs_java: ClassVar[bool] = True
    # Optional services start only when asked for (`cdr stack up --with NAME`); status lists them
    # only once started, and `down` stops them with the rest.
    optional: ClassVar[bool] = False

    def __init__(self, settings: Settings, paths: StackPaths) -> None:
        self.settings = settings
        self.paths = paths
        self.dir = paths.service(self.name)

    @abstractmethod
    def processes(self) -> list[ProcessSpec]:
        """The processes to run, in start order."""

    def prepare(self) -> None:
        """Write configuration and do one-time initialisation (formatting); must be idempotent."""

    @abstractmethod
    def probe(self) -> None:
        """One readiness check against the running service; raises probes.NotReady."""

    def after_ready(self) -> None:
        """Idempotent set-up that needs the running service (databases, directories)."""

    @abstractmethod
    def endpoints(self) -> list[Endpoint]:
        """Addresses users connect to, for the table `cdr stack up` prints."""
