"""Bringing the stack up, down, and reporting its state.

`up` checks Java and every port it will need before starting anything, then starts the
services in dependency order and waits on each one's readiness probe. If any step fails it
stops what this run started and raises a CdrError naming the service, the cause and the end
of its log. Services already running are left alone (only probed).
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import signal
import subprocess
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cdr.errors import CdrError, ServiceUnavailable
from cdr.settings import Settings, get_settings
from stack.java import java
from stack.paths import StackPaths
from stack.probes import NotReady, ProbeTimeout, ProcessDied, wait_ready
from stack.process import (
    PidStore,
    ProcessRecord,
    ProcessSpec,
    is_alive,
    launch,
    port_is_free,
    port_owner,
    signal_group,
    tail,
    wait_dead,
)
from stack.services import all_services
from stack.services.base import Endpoint, Service

LOG_LINES_ON_FAILURE = 20
STOP_GRACE_S = 45.0


class Progress(Protocol):
    """How `up` reports what it is doing (the CLI draws it with rich; tests pass None)."""

    def starting(self, service: str, action: str) -> None: ...

    def ready(self, service: str, seconds: float, started: bool) -> None: ...


@dataclass(frozen=True)
class ServiceTiming:
    service: str
    seconds: float  # from this service's start (or first probe) to its probe passing
    started: bool  # False when it was already running


@dataclass
class ProcessStatus:
    name: str
    state: str  # running | crashed (pid recorded, process gone)
    pid: int
    ports: list[int]
    log: str


@dataclass
class ServiceStatus:
    name: str
    state: str  # running | crashed | down
    ready: bool | None  # None when not running
    detail: str
    processes: list[ProcessStatus] = field(default_factory=list)
    endpoints: list[Endpoint] = field(default_factory=list)


class Stack:
    def __init__(self, settings: Settings, services: list[Service] | None = None) -> None:
        self.settings = settings
        self.paths = StackPaths.from_settings(settings)
        self.services = services if services is not None else all_services(settings, self.paths)
        self.store = PidStore(self.paths.run)

    @classmethod
    def from_settings(cls) -> Stack:
        return cls(get_settings())

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise CdrError(f"no service {name!r}; the stack has {', '.join(s.name for s in self.services)}")

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One `up` or `down` at a time per stack home (test sessions and users share a stack)."""
        self.paths.home.mkdir(parents=True, exist_ok=True)
        with (self.paths.home / "stack.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _alive(self, process_name: str) -> ProcessRecord | None:
        record = self.store.get(process_name)
        return record if record and is_alive(record) else None

    # --- up --------------------------------------------------------------------------------

    def up(self, progress: Progress | None = None, with_optional: Collection[str] = ()) -> list[ServiceTiming]:
        """Start the default services and the optional ones named in ``with_optional``."""
        if self.settings.environment == "production":
            raise CdrError(
                "the local stack is for development (trusted loopback logins, no TLS); "
                "refusing to start it with environment=production"
            )
        optional = {service.name for service in self.services if service.optional}
        if unknown := set(with_optional) - optional:
            raise CdrError(f"no optional service {', '.join(sorted(unknown))}; optional: {', '.join(sorted(optional))}")
        wanted = [service for service in self.services if not service.optional or service.name in with_optional]
        with self._exclusive():
            return self._up(wanted, progress)

    def revive(self, *names: str) -> list[str]:
        """Start again the processes of the named services that this stack started and that have
        died since ("crashed" in `status`), leaving running ones alone; returns their names. A
        service this stack does not run (down, or a client of the container stack) is not started."""
        services = [self.service(name) for name in names]
        with self._exclusive():
            dead = [r for r in self.store.all() if r.service in names and not is_alive(r)]
            if dead:
                self._up([s for s in services if any(r.service == s.name for r in dead)], None)
        return [r.name for r in dead]

    def _up(self, services: list[Service], progress: Progress | None) -> list[ServiceTiming]:
        self.paths.logs.mkdir(parents=True, exist_ok=True)
        plan = [(service, service.processes()) for service in services]
        to_start = {service.name: [spec for spec in specs if not self._alive(spec.name)] for service, specs in plan}
        if any(service.needs_java and to_start[service.name] for service, _ in plan):
            java(self.settings)  # raises a CdrError naming the problem
        self._check_ports([spec for specs in to_start.values() for spec in specs])

        started: list[ProcessRecord] = []
        timings: list[ServiceTiming] = []
        service, specs = plan[0]
        try:
            for service, specs in plan:
                timings.append(self._bring_up(service, specs, to_start[service.name], started, progress))
        except (ProcessDied, ProbeTimeout, CdrError, subprocess.CalledProcessError, OSError) as exc:
            self._stop(started)
            raise ServiceUnavailable(self._failure_message(service, specs, exc)) from None
        except KeyboardInterrupt:
            self._stop(started)
            raise
        return timings

    def _bring_up(
        self,
        service: Service,
        specs: list[ProcessSpec],
        missing: list[ProcessSpec],
        started: list[ProcessRecord],
        progress: Progress | None,
    ) -> ServiceTiming:
        t0 = time.monotonic()
        if missing:
            if progress:
                progress.starting(service.name, "preparing")
            service.prepare()
            if progress:
                progress.starting(service.name, "starting")
            for spec in missing:
                record = launch(service.name, spec, self.paths.log(spec.name))
                self.store.put(record)
                started.append(record)
        elif progress:
            progress.starting(service.name, "already running; probing")
        records = [self.store.get(spec.name) for spec in specs]
        wait_ready(service.probe, [r for r in records if r], self.settings.stack.ready_timeout_s)
        service.after_ready()
        seconds = time.monotonic() - t0
        if progress:
            progress.ready(service.name, seconds, bool(missing))
        return ServiceTiming(service.name, seconds, bool(missing))

    def _check_ports(self, specs: list[ProcessSpec]) -> None:
        conflicts = []
        for spec in specs:
            for port in spec.ports:
                if not port_is_free(port, self.settings.stack.bind_ip):
                    owner = port_owner(port) or "an unknown process"
                    conflicts.append(f"port {port} needed by {spec.name} is in use by {owner}")
        if conflicts:
            raise ServiceUnavailable(
                "cannot start the stack, ports are taken:\n  " + "\n  ".join(conflicts) + "\nStop those processes "
                "or move the stack's ports (cdr/config/platform.toml, CDR_CONFIG or CDR_<SECTION>__<KEY>)."
            )

    def _failure_message(self, service: Service, specs: list[ProcessSpec], exc: BaseException) -> str:
        log: Path | None = None
        if isinstance(exc, ProcessDied):
            log = Path(exc.record.log)
        elif isinstance(exc, ProbeTimeout):  # the service's first process (NameNode, broker 1, ...)
            log = self.paths.log(specs[0].name)
        message = f"{service.name} failed to start: {exc}"
        if log is not None:
            message += f"\n--- last {LOG_LINES_ON_FAILURE} lines of {log} ---\n{tail(log, LOG_LINES_ON_FAILURE)}"
        return message + "\nEverything this run started has been stopped; see docs/local-stack.md#troubleshooting."

    # --- down ------------------------------------------------------------------------------

    def _records_in_stop_order(self) -> list[list[ProcessRecord]]:
        order = [service.name for service in reversed(self.services)]
        by_service: dict[str, list[ProcessRecord]] = {}
        for record in self.store.all():
            by_service.setdefault(record.service, []).append(record)
        known = [by_service.pop(name) for name in order if name in by_service]
        return known + list(by_service.values())

    def _stop(self, records: list[ProcessRecord]) -> None:
        """Stop ``records`` service by service, last started first."""
        groups: dict[str, list[ProcessRecord]] = {}
        for record in records:
            groups.setdefault(record.service, []).append(record)
        for group in reversed(list(groups.values())):
            self._stop_group(group)

    def _stop_group(self, records: list[ProcessRecord]) -> None:
        """SIGTERM (or the process's own stop signal) to all of one service at once, then SIGKILL."""
        alive = [record for record in records if is_alive(record)]
        for record in alive:
            signal_group(record, record.stop_signal)
        for record in wait_dead(alive, STOP_GRACE_S):
            signal_group(record, signal.SIGKILL)
        wait_dead(alive, 10)
        for record in records:
            self.store.remove(record.name)

    def down(self, purge: bool = False) -> list[str]:
        """Stop every recorded process; returns the names of those that were running."""
        with self._exclusive():
            return self._down(purge)

    def _down(self, purge: bool) -> list[str]:
        stopped = []
        for group in self._records_in_stop_order():
            stopped += [record.name for record in group if is_alive(record)]
            self._stop_group(group)
        if purge:
            self._purge()
        return stopped

    def _purge(self) -> None:
        """Delete all state and logs; the jars stay (refetching them is `cdr stack install`)."""
        if not self.paths.home.exists():
            return
        for child in self.paths.home.iterdir():
            if child in (self.paths.jars, self.paths.home / "stack.lock"):
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()

    # --- status ----------------------------------------------------------------------------

    def status(self, probe: bool = True) -> list[ServiceStatus]:
        """Every default service, and the optional ones that have been started."""
        records = self.store.all()
        statuses = []
        for service in self.services:
            processes = [
                ProcessStatus(r.name, "running" if is_alive(r) else "crashed", r.pid, r.ports, r.log)
                for r in records
                if r.service == service.name
            ]
            if service.optional and not processes:
                continue  # never started: not part of this stack's picture
            states = {p.state for p in processes}
            state = "down" if not processes else ("running" if states == {"running"} else "crashed")
            ready, detail = None, ""
            if state == "crashed":
                detail = "not running: " + ", ".join(p.name for p in processes if p.state == "crashed")
            elif state == "running" and probe:
                try:
                    service.probe()
                    ready = True
                except NotReady as exc:
                    ready, detail = False, str(exc)
            statuses.append(ServiceStatus(service.name, state, ready, detail, processes, service.endpoints()))
        return statuses
