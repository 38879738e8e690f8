"""Reading generated datasets back, independently of the generator's writers."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from cdr.contract import arrow_schema, record_type


def read_table(path: Path, name: str) -> pa.Table:
    """A reference or label table (`subscribers`, `cells`, `defects`, `scenarios`) or all CDRs of a type."""
    fmt = json.loads((path / "manifest.json").read_text())["format"]
    schema = arrow_schema(record_type(name))
    if name in ("defects", "scenarios"):
        files = [path / "labels" / f"{name}.{fmt}"]
    elif name in ("subscribers", "cells"):
        files = sorted((path / name).glob(f"*.{fmt}"))
    else:
        files = sorted((path / "cdr" / f"record_type={name}").rglob(f"*.{fmt}"))
    if fmt == "parquet":
        return pa.concat_tables([pq.read_table(f, schema=schema) for f in files])
    if fmt == "csv":
        opts = pcsv.ConvertOptions(column_types=schema, strings_can_be_null=True)
        return pa.concat_tables([pcsv.read_csv(f, convert_options=opts) for f in files])
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    return pa.Table.from_pylist(rows)
