"""`make bench-generator`: CDRs/s of the generator against pyarrow's own write limit.

Both sides run in this process, one after the other, on the same number of rows with the
same schemas, part sizes and writer settings: (1) the generator writes a complete labelled
dataset; (2) pyarrow writes tables of random values with the same schemas (values prepared
beforehand, only the writes are timed). The ratio says how close generation is to the cost
of merely writing the rows. Arrow's thread pools are limited to one thread and the Makefile
pins the process to one core, so the figures are per core.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

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
            width = max(1, int(np.median(np.asarray(like.column(f.name).slice(0, 1000).drop_null().to_pandas().str.len())) if like.column(f.name).slice(0, 1000).drop_null().__len__() else 8))
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
        began = time.perf_counter()
        summary = generate_dataset(GenerateOptions(out=scratch / "dataset", subscribers=subscribers, days=args.days,
                                                   file_format=args.format))
        generate_s = time.perf_counter() - began
        cdrs = summary.total_cdrs

        rng = np.random.default_rng(0)
        write_s = 0.0
        random_rows = 0
        (scratch / "random").mkdir()
        for rt in RECORD_TYPES:
            for i, part in enumerate(sorted((summary.out / "cdr" / f"record_type={rt}").rglob(f"part-*"))):
                like = _read(part, args.format, arrow_schema(RECORD_TYPES[rt]))
                table = random_table(arrow_schema(RECORD_TYPES[rt]), like, rng)
                t0 = time.perf_counter()
                write_table(table, scratch / "random" / f"{rt}-{i}.{args.format}", args.format)
                write_s += time.perf_counter() - t0
                random_rows += table.num_rows
        figures = {
            "format": args.format,
            "subscribers": subscribers,
            "cdrs": cdrs,
            "generate_s": round(generate_s, 2),
            "generator_cdrs_per_s": round(cdrs / generate_s),
            "random_write_rows": random_rows,
            "random_write_s": round(write_s, 2),
            "write_limit_rows_per_s": round(random_rows / write_s),
        }
        figures["ratio_to_write_limit"] = round(figures["generator_cdrs_per_s"] / figures["write_limit_rows_per_s"], 3)
        figures["goal_half_of_limit"] = figures["ratio_to_write_limit"] >= 0.5
        figures["goal_1m_per_s"] = figures["generator_cdrs_per_s"] >= 1_000_000
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
