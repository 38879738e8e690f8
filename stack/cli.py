"""`cdr stack ...`: run the platform's services as local processes (no containers)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import TYPE_CHECKING

import typer

from cdr.errors import BadInput, ServiceUnavailable

if TYPE_CHECKING:
    from rich.console import Console

    from stack.lifecycle import ServiceStatus, Stack

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


def _stack() -> Stack:
    from stack.lifecycle import Stack

    return Stack.from_settings()


def _console() -> Console:
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:  # piped or captured: do not squeeze tables into 80 columns
        console = Console(highlight=False, width=120)
    return console


class _RichProgress:
    """Draws `up`: a spinner while a service starts, one line when it is ready."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.status = console.status("")

    def starting(self, service: str, action: str) -> None:
        self.status.update(f"[bold]{service}[/]: {action}…")
        self.status.start()

    def ready(self, service: str, seconds: float, started: bool) -> None:
        self.status.stop()
        how = "started" if started else "was running"
        self.console.print(f"[green]✓[/] {service:<11} ready after {seconds:5.1f} s  [dim]({how})[/]")


def _print_endpoints(console: Console, statuses: list[ServiceStatus]) -> None:
    from rich.table import Table

    table = Table(title="Local stack", title_justify="left")
    for column in ("Service", "What", "Address"):
        table.add_column(column, overflow="fold")
    for status in statuses:
        for endpoint in status.endpoints:
            table.add_row(status.name, endpoint.label, endpoint.address)
    console.print(table)


@app.command()
def install() -> None:
    """Install what the stack needs outside the venvs: Debian packages and the pinned jars."""
    from cdr.settings import get_settings
    from stack.install import install as run_install

    console = _console()
    run_install(get_settings(), lambda message: console.print(f"[dim]install:[/] {message}"))
    console.print("[green]✓[/] stack installed (Debian packages and jars present)")


@app.command()
def up(
    with_optional: list[str] = typer.Option(
        [], "--with", help="Also start this optional service (superset); repeat for several."
    ),
) -> None:
    """Start every service in dependency order and wait until each is ready (running ones are left alone)."""
    stack, console = _stack(), _console()
    progress = _RichProgress(console)
    try:
        stack.up(progress, with_optional)
    finally:
        progress.status.stop()
    _print_endpoints(console, stack.status(probe=False))
    console.print(f"State and logs: {stack.paths.home}   (`cdr stack logs SERVICE`, `cdr stack down`)")


@app.command()
def down(purge: bool = typer.Option(False, "--purge", help="Also delete all state and logs (keeps the jars).")) -> None:
    """Stop exactly the processes the stack started, in reverse dependency order."""
    stack = _stack()
    stopped = stack.down(purge=purge)
    typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    if purge:
        typer.echo(f"purged {stack.paths.home} (jars kept)")


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """State (running/crashed/down), pids, ports and readiness of each service; exit 3 when a
    default service is not running and ready (so scripts can wait on it)."""
    stack = _stack()
    statuses = stack.status()
    optional = {service.name for service in stack.services if service.optional}
    default = [s for s in statuses if s.name not in optional]
    not_ready = [s.name for s in default if not (s.state == "running" and s.ready)]
    if as_json:
        typer.echo(json.dumps({"services": [asdict(s) for s in statuses]}, indent=2))
    else:
        _print_status(statuses)
    if not_ready:
        raise ServiceUnavailable(f"{len(not_ready)} of {len(default)} "
                                 f"services are not running and ready: {', '.join(not_ready)}",
                                 "start them with `cdr stack up` (make up-local); logs: `cdr stack logs SERVICE`")


def _print_status(statuses) -> None:
    from rich.table import Table

    table = Table()
    for column in ("Service", "State", "Ready", "Process", "PID", "Ports", "Detail"):
        table.add_column(column, overflow="fold")
    colours = {"running": "green", "crashed": "red", "down": "dim"}
    for s in statuses:
        ready = {True: "yes", False: "no", None: "-"}[s.ready]
        head = [s.name, f"[{colours[s.state]}]{s.state}[/]", ready]
        if not s.processes:
            table.add_row(*head, "-", "-", "-", s.detail)
        for index, p in enumerate(s.processes):
            state = "" if p.state == "running" else f" [red]({p.state})[/]"
            row = head if index == 0 else ["", "", ""]
            ports = " ".join(map(str, p.ports))
            table.add_row(*row, p.name + state, str(p.pid), ports, s.detail if index == 0 else "")
    _console().print(table)


@app.command()
def logs(
    service: str = typer.Argument(
        ..., help="A service (kafka, hdfs, ...) or one process (kafka-2, hdfs-namenode, ...)."
    ),
    lines: int = typer.Option(50, "-n", "--lines", help="Lines to show from the end of each log."),
    follow: bool = typer.Option(False, "-f", "--follow", help="Keep printing new lines."),
) -> None:
    """Show the end of a service's logs (stdout and stderr of each of its processes)."""
    stack = _stack()
    if stack.paths.log(service).exists():
        names = [service]
    else:
        specs = stack.service(service).processes()
        names = [spec.name for spec in specs if stack.paths.log(spec.name).exists()]
        if not names:
            raise BadInput(f"no logs for {service} in {stack.paths.logs}: has it ever been started?")
    argv = ["tail", "-n", str(lines), *(["-F"] if follow else []), *(str(stack.paths.log(name)) for name in names)]
    os.execvp("tail", argv)


@app.command("superset-init")
def superset_init() -> None:
    """Run Superset's one-shot init again (migrate, admin, import the dashboards of the repository)."""
    from stack.services.superset import Superset

    stack = _stack()
    Superset(stack.settings, stack.paths).prepare()
    typer.echo(f"Superset initialised; dashboards imported (log: {stack.paths.log('superset-init')})")


@app.command()
def bench() -> None:
    """Time a cold `up` (services stopped, data present) and measure each service's idle memory."""
    from stack import bench as stack_bench

    stack, console = _stack(), _console()
    progress = _RichProgress(console)
    try:
        result = stack_bench.run(stack, progress)
    finally:
        progress.status.stop()
    section = stack_bench.markdown(result)
    stack_bench.write_section(section)
    console.print(section)
    console.print(f"written to {stack_bench.BENCHMARKS_DOC}")
