"""The CDR stream: the generator's records of all types, merged in event-time order.

Live mode runs the generator engine day by day (population, scenarios, defects exactly as
``cdr generate`` does, through ``generator.dataset._day_parts``); replay mode reads a generated
dataset. Either way a day becomes one ``Batch`` of Kafka-ready messages (topic index, key =
served MSISDN, JSON value, event time) sorted by event time, so downstream event-time windows
see the traffic as the network would have produced it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cdr.contract import RECORD_TYPES, SCENARIOS
from cdr.errors import BadInput

TYPES = list(RECORD_TYPES)


@dataclass
class Batch:
    """One day of messages in event-time order."""

    type_index: np.ndarray  # index into TYPES
    keys: list[bytes]
    values: list[bytes]
    event_us: np.ndarray  # when in event time it is sent (µs since the epoch): its start_time (see send_times)

    def __len__(self) -> int:
        return len(self.values)


US_PER_DAY = 86_400_000_000


def send_times(start_time: pa.ChunkedArray | pa.Array, day: dt.date) -> np.ndarray:
    """When in event time each record of ``day`` is sent: its start time; but a defect's start time
    that is missing or off the day (years ahead or back) would hold the stream or send the record
    decades apart from its day, so such a record goes with the record before it in its part (or
    after it; the day's start if none has a usable time). The message itself is sent as it is."""
    first = int(dt.datetime.combine(day, dt.time(), dt.timezone.utc).timestamp()) * 1_000_000
    us = pc.cast(start_time, pa.int64())
    on_day = pc.and_(pc.greater_equal(us, first - US_PER_DAY), pc.less(us, first + 2 * US_PER_DAY))
    usable = pc.if_else(on_day, us, pa.scalar(None, pa.int64()))
    filled = pc.fill_null(pc.fill_null_backward(pc.fill_null_forward(usable)), first)
    return (filled.combine_chunks() if isinstance(filled, pa.ChunkedArray) else filled).to_numpy()


def merge_day(tables: dict[str, list[pa.Table]], day: dt.date) -> Batch:
    """Render each type's tables of ``day`` to JSON and merge all types by send time (stable)."""
    from generator.writers import json_lines

    type_index, keys, values, times = [], [], [], []
    for rt, parts in tables.items():
        for t in parts:
            if t.num_rows == 0:
                continue
            values.append(json_lines(t))
            keys.append(pc.cast(t.column("served_msisdn"), pa.string()).combine_chunks())
            times.append(send_times(t.column("start_time"), day))
            type_index.append(np.full(t.num_rows, TYPES.index(rt), np.int8))
    if not values:
        return Batch(np.empty(0, np.int8), [], [], np.empty(0, np.int64))
    event_us = np.concatenate(times)
    order = np.argsort(event_us, kind="stable")
    take = pa.array(order)
    return Batch(
        type_index=np.concatenate(type_index)[order],
        keys=[k.encode() if k is not None else None for k in pa.concat_arrays(keys).take(take).to_pylist()],
        values=[v.encode() for v in pa.concat_arrays(values).take(take).to_pylist()],
        event_us=event_us[order],
    )


@dataclass(frozen=True)
class LiveOptions:
    subscribers: int = 20_000
    start: dt.date = dt.date(2025, 12, 28)
    days: int = 7
    seed: int = 42
    scenarios: tuple[str, ...] = SCENARIOS
    scenarios_per_day: int = 1
    defect_rate: float = 0.0
    profile: str = "algeria"

    def generate_options(self):
        """The generator's options for these (checked: a CdrError, exit 2, names a bad one)."""
        from generator.dataset import GenerateOptions

        opts = GenerateOptions(out=Path("unused"), subscribers=self.subscribers, days=self.days,
                               start=self.start, seed=self.seed, file_format="parquet",
                               defect_rate=self.defect_rate, scenarios=self.scenarios,
                               scenarios_per_day=self.scenarios_per_day, profile=self.profile)
        opts.validate()
        return opts


class LiveSource:
    """Days generated on the fly by the engine; ``labels`` lists every planned scenario."""

    def __init__(self, opts: LiveOptions):
        from cdr.profile import load_profile
        from generator import scenarios as sc_mod
        from generator.engine import Engine
        from generator.population import build_population

        self.opts = opts
        self._gen_opts = opts.generate_options()
        population = build_population(load_profile(opts.profile), opts.subscribers, opts.start, opts.seed)
        self.engine = Engine(population, opts.seed)
        self.days = [opts.start + dt.timedelta(days=i) for i in range(opts.days)]
        self.scenarios = sc_mod.plan_scenarios(self.engine, self.days, list(opts.scenarios),
                                               opts.scenarios_per_day) if opts.scenarios and opts.scenarios_per_day else []
        self.labels = sc_mod.labels_table(self.scenarios)
        self.subscribers = population.table

    def batches(self) -> Iterator[Batch]:
        from generator.dataset import _day_parts

        for day in self.days:
            todays = [s for s in self.scenarios if s.day == day]
            tables = {rt: [t for _, t, _, _ in _day_parts(self.engine, self._gen_opts, rt, day, todays)]
                      for rt in TYPES}
            yield merge_day(tables, day)


class DatasetSource:
    """Replay of a dataset written by ``cdr generate`` (Parquet or JSON Lines), one day at a time."""

    def __init__(self, root: Path):
        import pyarrow.dataset as ds

        from generator.dataset import read_manifest

        if not (root / "manifest.json").is_file():
            raise BadInput(f"--from-dataset {root} holds no generated dataset (no manifest.json)",
                           "give a folder written by cdr generate")
        self.root = root
        try:
            self.manifest = read_manifest(root)
            fmt = self.manifest["format"]
        except (ValueError, KeyError, TypeError) as exc:
            raise BadInput(f"--from-dataset {root}: manifest.json is not a dataset manifest ({exc})",
                           "give a folder written by cdr generate") from None
        if fmt not in ("parquet", "jsonl"):
            raise BadInput(f"--from-dataset {root} is a {fmt} dataset; replay reads Parquet or JSON Lines",
                           "generate it with --format parquet (or jsonl)")
        self._format = "json" if fmt == "jsonl" else "parquet"
        ext = "jsonl" if fmt == "jsonl" else "parquet"
        self.labels = ds.dataset(root / "labels" / f"scenarios.{ext}", format=self._format).to_table()
        self.subscribers = ds.dataset(root / "subscribers", format=self._format).to_table()
        self.days = sorted({d for per_type in self.manifest["rows"].values() for d in per_type})

    def batches(self) -> Iterator[Batch]:
        import pyarrow.dataset as ds

        from cdr.contract import arrow_schema

        for day in self.days:
            tables = {}
            for rt in TYPES:
                part = self.root / "cdr" / f"record_type={rt}" / f"date={day}"
                if part.is_dir():
                    t = ds.dataset(part, format=self._format).to_table()
                    # Files may carry defects (wrong types are read as strings): cast what casts.
                    tables[rt] = [_conform(t, arrow_schema(RECORD_TYPES[rt]))]
            yield merge_day(tables, dt.date.fromisoformat(day))


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    cols = {}
    for f in schema:
        if f.name in table.column_names:
            col = table.column(f.name)
            cols[f.name] = col if col.type == f.type or pa.types.is_dictionary(col.type) else col.cast(f.type, safe=False)
        else:
            cols[f.name] = pa.nulls(table.num_rows, f.type)
    return pa.table(cols)


def until(batches: Iterator[Batch], end_us: int) -> Iterator[Batch]:
    """The batches' messages sent before ``end_us`` (event time, µs since the epoch); stops there."""
    for batch in batches:
        keep = int(np.searchsorted(batch.event_us, end_us))
        if keep < len(batch):
            if keep:
                yield Batch(batch.type_index[:keep], batch.keys[:keep], batch.values[:keep], batch.event_us[:keep])
            return
        yield batch


def streamed_labels(labels: pa.Table, last_event_us: int | None) -> pa.Table:
    """Scenario labels whose window was fully streamed (the ground truth of this run)."""
    if last_event_us is None or labels.num_rows == 0:
        return labels.slice(0, 0)
    end = pc.cast(labels.column("end_time"), pa.int64())
    return labels.filter(pc.less_equal(end, pa.scalar(last_event_us, pa.int64())))


def write_labels(labels: pa.Table, path: Path) -> None:
    """JSON Lines, same columns as a dataset's labels/scenarios (read back by ``cdr stream score``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for row in labels.to_pylist():
            row = {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.items()}
            fh.write(json.dumps(row) + "\n")
