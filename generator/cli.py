"""`cdr generate`: write a labelled synthetic CDR dataset."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import typer

from cdr.errors import CdrError


def _parse_scenarios(value: str) -> tuple[str, ...]:
    from cdr.contract import SCENARIOS

    if value == "all":
        return SCENARIOS
    if value == "none":
        return ()
    return tuple(s.strip() for s in value.split(",") if s.strip())


def generate(
    out: Path = typer.Option(..., "--out", help="Output directory (must be new, empty, or a dataset with --overwrite)."),
    subscribers: int = typer.Option(10_000, help="Number of subscriptions (mobile and fixed lines)."),
    days: int = typer.Option(7, help="Number of days of traffic."),
    start: str = typer.Option("2025-12-28", help="First day (YYYY-MM-DD, UTC); the default week contains New Year's Eve."),
    seed: int = typer.Option(42, help="Master seed: the same seed and arguments give the same rows."),
    file_format: str = typer.Option("parquet", "--format", help="parquet, csv or jsonl."),
    defect_rate: float = typer.Option(0.002, help="Share of records given a data-quality defect (labelled)."),
    scenarios: str = typer.Option("all", help="Anomaly scenarios to inject: all, none, or a comma-separated list."),
    scenarios_per_day: int = typer.Option(1, help="Instances of each scenario per day."),
    profile: str = typer.Option("algeria", help="Operator profile name (cdr/profiles/NAME.toml) or path."),
    overwrite: bool = typer.Option(False, help="Replace an existing dataset in --out."),
    chunk_rows: int = typer.Option(1_000_000, help="Largest part file, in records (bounds memory)."),
) -> None:
    """Generate subscribers, cells, five CDR types, defect and scenario labels, and a manifest."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from generator.dataset import GenerateOptions, generate_dataset
    from generator.engine import Engine  # noqa: F401  (fail fast on a broken install before the bar)

    try:
        first_day = dt.date.fromisoformat(start)
    except ValueError:
        raise CdrError(f"--start must be a date YYYY-MM-DD (got {start!r})") from None
    opts = GenerateOptions(
        out=out, subscribers=subscribers, days=days, start=first_day, seed=seed, file_format=file_format,
        defect_rate=defect_rate, scenarios=_parse_scenarios(scenarios), scenarios_per_day=scenarios_per_day,
        profile=profile, overwrite=overwrite, chunk_rows=chunk_rows,
    )
    opts.validate()
    console = Console(stderr=True)
    began = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rows]:,} CDRs"),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("generating", total=days * 5, rows=0)
        seen: set[str] = set()

        def progress(label: str, rows: int) -> None:
            first = label not in seen
            seen.add(label)
            bar.update(task, advance=1 if first else 0, rows=bar.tasks[0].fields["rows"] + rows,
                       description=f"generating {label}")

        summary = generate_dataset(opts, progress)
    elapsed = time.perf_counter() - began
    print_summary(summary, elapsed)


def print_summary(summary, elapsed: float) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    days = sorted({d for per_day in summary.rows.values() for d in per_day})
    table = Table(title=f"Dataset {summary.out}", show_footer=True)
    table.add_column("record type", footer="total")
    for d in days:
        table.add_column(d, justify="right", footer=f"{sum(r.get(d, 0) for r in summary.rows.values()):,}")
    table.add_column("all days", justify="right", footer=f"{summary.total_cdrs:,}")
    for rt, per_day in summary.rows.items():
        table.add_row(rt, *[f"{per_day.get(d, 0):,}" for d in days], f"{sum(per_day.values()):,}")
    console.print(table)
    console.print(f"subscribers {summary.subscribers:,} · cells {summary.cells:,} · "
                  f"{summary.total_cdrs:,} CDRs in {elapsed:.1f} s ({summary.total_cdrs / max(elapsed, 1e-9):,.0f} CDRs/s)")
    console.print("defects: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.defects.items())))
    console.print("scenarios: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.scenarios.items())))
