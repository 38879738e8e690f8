"""Writes a whole labelled dataset: reference tables, CDR partitions, labels and a manifest.

The dataset is written into a temporary sibling directory and moved into place only when
complete, so a crash or Ctrl-C never leaves something that looks like a finished dataset.
Memory stays bounded: each (record type, day) is produced in parts of at most
``chunk_rows`` records, written, and dropped.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa

from cdr import __version__
from cdr.contract import RECORD_TYPES, SCENARIOS
from cdr.errors import CdrError
from cdr.profile import load_profile
from generator import defects as defect_injection
from generator import scenarios as sc_mod
from generator.engine import Engine
from generator.population import build_population
from generator.writers import EXTENSION, FORMATS, write_table

MANIFEST = "manifest.json"
DEFAULT_START = dt.date(2025, 12, 28)  # a week that contains New Year's Eve


@dataclass(frozen=True)
class GenerateOptions:
    out: Path
    subscribers: int = 10_000
    days: int = 7
    start: dt.date = DEFAULT_START
    seed: int = 42
    file_format: str = "parquet"
    defect_rate: float = 0.002
    scenarios: tuple[str, ...] = SCENARIOS
    scenarios_per_day: int = 1
    profile: str = "algeria"
    overwrite: bool = False
    chunk_rows: int = 1_000_000
    record_types: tuple[str, ...] = tuple(RECORD_TYPES)

    def validate(self) -> None:
        if self.subscribers < 100:
            raise CdrError(f"--subscribers must be at least 100 (got {self.subscribers})")
        if self.days < 1:
            raise CdrError(f"--days must be at least 1 (got {self.days})")
        if self.file_format not in FORMATS:
            raise CdrError(f"--format must be one of {', '.join(FORMATS)} (got {self.file_format!r})")
        if not 0 <= self.defect_rate <= 0.5:
            raise CdrError(f"--defect-rate must be between 0 and 0.5 (got {self.defect_rate})")
        unknown = set(self.scenarios) - set(SCENARIOS)
        if unknown:
            raise CdrError(f"unknown scenario(s) {', '.join(sorted(unknown))}; known: {', '.join(SCENARIOS)}")
        if self.scenarios_per_day < 0:
            raise CdrError("--scenarios-per-day must not be negative")
        if self.chunk_rows < 1000:
            raise CdrError("--chunk-rows must be at least 1000")


@dataclass
class Summary:
    out: Path
    rows: dict[str, dict[str, int]] = field(default_factory=dict)  # type -> day -> rows
    defects: Counter = field(default_factory=Counter)
    scenarios: Counter = field(default_factory=Counter)
    subscribers: int = 0
    cells: int = 0

    @property
    def total_cdrs(self) -> int:
        return sum(sum(d.values()) for d in self.rows.values())


def check_output(out: Path, overwrite: bool) -> None:
    """Refuse an output that would lose data or cannot be written, before any work is done."""
    if out.exists() and not out.is_dir():
        raise CdrError(f"output {out} exists and is not a directory")
    if out.exists() and any(out.iterdir()):
        if not (out / MANIFEST).is_file():
            raise CdrError(f"output {out} is not empty and holds no dataset; choose an empty or new directory")
        if not overwrite:
            raise CdrError(f"output {out} already holds a dataset; pass --overwrite to replace it")
    parent = out.parent if not out.exists() else out
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK):
        raise CdrError(f"output {out} is not writable (no write permission on {parent})")


def generate_dataset(opts: GenerateOptions, progress: Callable[[str, int], None] | None = None) -> Summary:
    """Generate the dataset described by ``opts``; ``progress(label, rows)`` is told of each part."""
    opts.validate()
    out = opts.out.resolve()
    check_output(out, opts.overwrite)
    profile = load_profile(opts.profile)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.mkdir()
        summary = _write_all(opts, profile, tmp, progress)
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    summary.out = out
    return summary


def _write_all(opts: GenerateOptions, profile, root: Path, progress) -> Summary:
    ext = EXTENSION[opts.file_format]
    population = build_population(profile, opts.subscribers, opts.start, opts.seed)
    engine = Engine(population, opts.seed)
    summary = Summary(root, subscribers=population.size, cells=population.cells.table.num_rows)
    for name, table in (("subscribers", population.table), ("cells", population.cells.table)):
        (root / name).mkdir()
        write_table(table, root / name / f"part-00000.{ext}", opts.file_format)

    days = [opts.start + dt.timedelta(days=i) for i in range(opts.days)]
    scenarios = sc_mod.plan_scenarios(engine, days, list(opts.scenarios), opts.scenarios_per_day) \
        if opts.scenarios and opts.scenarios_per_day else []
    summary.scenarios.update(s.kind for s in scenarios)
    defect_labels: list[pa.Table] = []

    for record_type in opts.record_types:
        summary.rows[record_type] = {}
        for day in days:
            part_dir = root / "cdr" / f"record_type={record_type}" / f"date={day:%Y-%m-%d}"
            part_dir.mkdir(parents=True)
            todays = [s for s in scenarios if s.day == day]
            rows = 0
            for part, table, text_defects, labels in _day_parts(engine, opts, record_type, day, todays):
                write_table(table, part_dir / f"part-{part:05d}.{ext}", opts.file_format, text_defects)
                defect_labels.append(labels)
                rows += table.num_rows
                if progress:
                    progress(f"{record_type} {day}", table.num_rows)
            summary.rows[record_type][day.isoformat()] = rows

    (root / "labels").mkdir()
    all_defects = pa.concat_tables(defect_labels) if defect_labels else defect_injection.labels_table([], [], "voice")
    summary.defects.update(all_defects.column("defect").to_pylist())
    label_format = "jsonl" if opts.file_format == "jsonl" else opts.file_format
    write_table(all_defects, root / "labels" / f"defects.{ext}", label_format)
    write_table(sc_mod.labels_table(scenarios), root / "labels" / f"scenarios.{ext}", label_format)
    _write_manifest(root, opts, profile.name, summary)
    return summary


def _day_parts(engine: Engine, opts: GenerateOptions, record_type: str, day: dt.date, todays):
    """Yield (part number, table, text defects, defect labels) for one record type and day."""
    counts = engine.day_counts(record_type, day)
    # Cut the day into parts of at most chunk_rows records, on minute boundaries.
    cum = np.cumsum(counts)
    bounds = [0]
    while bounds[-1] < 1440:
        done = int(cum[bounds[-1] - 1]) if bounds[-1] else 0
        nxt = int(np.searchsorted(cum, done + opts.chunk_rows, side="right"))
        bounds.append(min(max(nxt, bounds[-1] + 1), 1440))
    seq = 0
    key = (list(RECORD_TYPES).index(record_type) + 1, day.toordinal())
    n_parts = len(bounds) - 1
    for part in range(n_parts):
        lo, hi = bounds[part], bounds[part + 1]
        ev = engine.sample_events(record_type, day, counts[lo:hi], lo, part)
        rng = engine.rng(3, *key, part)
        table = engine.build_records(record_type, ev, rng, seq, day)
        seq += len(ev)
        extra_tables = []
        for s in todays:
            table, retries = sc_mod.alter(engine, s, record_type, ev, table, rng)
            if retries is not None and len(retries):
                extra_tables.append(engine.build_records(record_type, retries, rng, seq, day))
                seq += len(retries)
        injected = defect_injection.inject(table, record_type, opts.defect_rate, opts.file_format,
                                           engine.rng(4, *key, part))
        table = injected.table
        if part == n_parts - 1:  # scenario-only records go with the day's last part
            srng = engine.rng(5, *key)
            for s in todays:
                ev_extra = sc_mod.extra_events(engine, s, record_type, srng)
                if ev_extra is not None and len(ev_extra):
                    extra_tables.append(engine.build_records(record_type, ev_extra, srng, seq, day))
                    seq += len(ev_extra)
        if extra_tables:
            table = pa.concat_tables([table, *extra_tables])
        yield part, table, injected.text_defects, injected.labels


def _swap_into_place(tmp: Path, out: Path) -> None:
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


def _write_manifest(root: Path, opts: GenerateOptions, profile_name: str, summary: Summary) -> None:
    args = {k: (str(v) if isinstance(v, (Path, dt.date)) else list(v) if isinstance(v, tuple) else v)
            for k, v in asdict(opts).items() if k not in ("out", "overwrite")}
    manifest = {
        "generator_version": __version__,
        "seed": opts.seed,
        "profile": profile_name,
        "format": opts.file_format,
        "arguments": args,
        "subscribers": summary.subscribers,
        "cells": summary.cells,
        "rows": summary.rows,
        "total_cdrs": summary.total_cdrs,
        "defects": dict(sorted(summary.defects.items())),
        "scenarios": dict(sorted(summary.scenarios.items())),
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def read_manifest(path: Path) -> dict:
    return json.loads((path / MANIFEST).read_text(encoding="utf-8"))
