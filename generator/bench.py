"""`make bench-generator`: CDRs/s of the generator against pyarrow's own write limit.

Both sides run in this process, one after the other, on the same number of rows with the
same schemas, part sizes and writer settings: (1) the generator writes a complete labelled
dataset; (2) pyarrow writes tables of random values with the same schemas (values prepared
beforehand, only the writes are timed). Both go through ``writers.write_table``; its dictionary
page limit fits the Arrow dictionaries a table brings, and the random tables bring none, so they
keep pyarrow's default limit, their fastest setting. The ratio says how close generation is to the cost
of merely writing the rows. Arrow's thread pools are limited to one thread and the Makefile
pins the process to one core, so the figures are per core. Rates are given per second of
wall-clock time and per second of CPU time of this process: on a machine busy with other work
the CPU-time rate is the stable one (it is what one dedicated core would do).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cdr.contract import RECORD_TYPES, arrow_schema
from generator.dataset import GenerateOptions, generate_dataset
from generator.writers import write_table

CDRS_PER_SUBSCRIBER_DAY = 28.5  # measured average of the Algeria profile


def random_table(schema: pa.Schema, like: pa.Table, rng: np.random.Generator) -> pa.Table:
    """Random values of the same types (strings: random digits of the generator's widths)."""
    n = like.num_rows
    cols = []
    for f in schema:
        if pa.types.is_string(f.type):
            sample = like.column(f.name).slice(0, 1000).drop_null()
            width = int(np.median(pc.utf8_length(sample).to_numpy())) if len(sample) else 8
            digits = rng.integers(48, 58, size=(n, width), dtype=np.uint8)
            offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
            cols.append(pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(digits)))
        elif pa.types.is_timestamp(f.type):
            cols.append(pa.array(rng.integers(1_700_000_000_000_000, 1_800_000_000_000_000, n), f.type))
        elif pa.types.is_boolean(f.type):
            cols.append(pa.array(rng.random(n) < 0.5))
        elif pa.types.is_floating(f.type):
            cols.append(pa.array(rng.random(n) * 5))
        else:
            cols.append(pa.array(rng.integers(0, 2**31 - 1, n), f.type))
    return pa.table(cols, schema=schema)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="approximate number of CDRs")
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--format", default="parquet", choices=["parquet", "csv", "jsonl"])
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    subscribers = max(1000, int(args.rows / (CDRS_PER_SUBSCRIBER_DAY * args.days)))
    scratch = Path(tempfile.mkdtemp(prefix="cdr-bench-"))
    try:
        began, began_cpu = time.perf_counter(), time.process_time()
        summary = generate_dataset(GenerateOptions(out=scratch / "dataset", subscribers=subscribers, days=args.days,
                                                   file_format=args.format))
        generate_s = time.perf_counter() - began
        generate_cpu = time.process_time() - began_cpu
        peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        cdrs = summary.total_cdrs

        rng = np.random.default_rng(0)
        write_s = write_cpu = 0.0
        random_rows = 0
        (scratch / "random").mkdir()
        for rt in RECORD_TYPES:
            for i, part in enumerate(sorted((summary.out / "cdr" / f"record_type={rt}").rglob(f"part-*"))):
                like = _read(part, args.format, arrow_schema(RECORD_TYPES[rt]))
                table = random_table(arrow_schema(RECORD_TYPES[rt]), like, rng)
                t0, c0 = time.perf_counter(), time.process_time()
                write_table(table, scratch / "random" / f"{rt}-{i}.{args.format}", args.format)
                write_s += time.perf_counter() - t0
                write_cpu += time.process_time() - c0
                random_rows += table.num_rows
        figures = {
            "format": args.format,
            "subscribers": subscribers,
            "cdrs": cdrs,
            "generate_wall_s": round(generate_s, 2),
            "generate_cpu_s": round(generate_cpu, 2),
            "generator_cdrs_per_wall_s": round(cdrs / generate_s),
            "generator_cdrs_per_cpu_s": round(cdrs / generate_cpu),
            "generator_peak_rss_mib": round(peak_rss_mib),
            "random_write_rows": random_rows,
            "random_write_wall_s": round(write_s, 2),
            "random_write_cpu_s": round(write_cpu, 2),
            "write_limit_rows_per_wall_s": round(random_rows / write_s),
            "write_limit_rows_per_cpu_s": round(random_rows / write_cpu),
        }
        figures["ratio_to_write_limit_wall"] = round(cdrs / generate_s / (random_rows / write_s), 3)
        figures["ratio_to_write_limit_cpu"] = round(cdrs / generate_cpu / (random_rows / write_cpu), 3)
        figures["goal_half_of_limit"] = figures["ratio_to_write_limit_cpu"] >= 0.5
        figures["goal_1m_per_core_s"] = figures["generator_cdrs_per_cpu_s"] >= 1_000_000
        for k, v in figures.items():
            print(f"{k:>24}: {v:,}" if isinstance(v, int) and not isinstance(v, bool) else f"{k:>24}: {v}")
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _read(path: Path, fmt: str, schema: pa.Schema) -> pa.Table:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path)
    if fmt == "csv":
        import pyarrow.csv as pcsv

        return pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(column_types=schema, strings_can_be_null=True))
    import pyarrow.json as pjson

    return pjson.read_json(path, parse_options=pjson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"))


if __name__ == "__main__":
    main()
