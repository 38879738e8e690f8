"""Readiness: poll a service's real probe until it passes, its process dies, or time runs out."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from stack.process import ProcessRecord, exit_code, is_alive


class NotReady(Exception):
    """One probe attempt failed; the message says what is missing."""


class ProcessDied(Exception):
    def __init__(self, record: ProcessRecord) -> None:
        code = exit_code(record)
        how = f"exited with code {code}" if code is not None else "is no longer running"
        super().__init__(f"process {record.name} (pid {record.pid}) {how}")
        self.record = record


class ProbeTimeout(Exception):
    pass


def wait_ready(
    probe: Callable[[], None],
    records: list[ProcessRecord],
    timeout_s: float,
    interval_s: float = 0.5,
) -> None:
    """Call ``probe`` until it stops raising NotReady; fail fast if one of ``records`` dies."""
    deadline = time.monotonic() + timeout_s
    last = "no probe attempt finished"
    while True:
        for record in records:
            if not is_alive(record):
                raise ProcessDied(record)
        try:
            probe()
            return
        except NotReady as exc:
            last = str(exc)
        if time.monotonic() >= deadline:
            raise ProbeTimeout(f"not ready after {timeout_s:.0f}s: {last}")
        time.sleep(interval_s)


def http_get(url: str, timeout_s: float = 2.0) -> Any:
    """GET ``url``; connection errors and non-2xx answers become NotReady."""
    import requests

    try:
        response = requests.get(url, timeout=timeout_s)
    except requests.RequestException as exc:
        raise NotReady(f"{url}: {type(exc).__name__}") from None
    if not response.ok:
        raise NotReady(f"{url}: HTTP {response.status_code}")
    return response


def http_json(url: str, timeout_s: float = 2.0) -> Any:
    return http_get(url, timeout_s).json()


def require_port(service: str, host: str, port: int, hint: str, timeout_s: float = 3.0) -> None:
    """ServiceUnavailable naming ``service`` unless something accepts connections on ``host:port``:
    the check that fails in milliseconds where the service's own client retries for minutes."""
    import socket

    from cdr.errors import ServiceUnavailable

    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        raise ServiceUnavailable(f"{service} is unreachable at {host}:{port} ({exc.strerror or exc})", hint) from None
