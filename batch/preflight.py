"""Checks of a batch command's inputs and names, run before anything is written: a run that would
fail on its input fails here with one line naming the file or folder, and every zone and table
stays exactly as it was.

The checks read through Hadoop's file systems (the session's), so a local folder, an HDFS folder
and the speed layer's bronze zone are checked the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import re

from pyspark.sql import SparkSession

from cdr.contract import RECORD_TYPES
from cdr.errors import BadInput

from batch import io

DATASET_LAYOUT = "a dataset holds cdr/record_type=<type>/date=<YYYY-MM-DD>/, subscribers/ and cells/ (docs/batch.md)"
# Hive database names (the prefix is pasted into DDL): lower-case letters, digits, underscores.
DB_PREFIX = re.compile(r"[a-z0-9_]{0,32}")
# A zone root is pasted into LOCATION '...': a URI or an absolute path without quotes, spaces or
# anything a SQL string or a Hadoop path would read differently.
ROOT = re.compile(r"(?:[a-z][a-z0-9+.-]*://[A-Za-z0-9._:@\[\]-]*)?/[A-Za-z0-9._/=-]*")
DATA_EXTENSIONS = {"parquet", "csv", "jsonl", "json"}


def check_names(root: str | None, db_prefix: str) -> None:
    """--root and --db-prefix reach SQL: only names of a strict pattern are accepted, never pasted."""
    if not DB_PREFIX.fullmatch(db_prefix):
        raise BadInput(f"--db-prefix {db_prefix!r} is not a database name prefix",
                       "use lower-case letters, digits and underscores (at most 32)")
    if root is not None and not ROOT.fullmatch(root.rstrip("/") or "/"):
        raise BadInput(f"--root {root!r} is not a plain URI or absolute path",
                       "use letters, digits and . _ - / = only (no spaces or quotes), e.g. hdfs://host:9000/cdr")


def _data_file(path: str) -> bool:
    """A file the readers know: by extension, or none at all (the bronze zone's Parquet part files)."""
    name = path.rsplit("/", 1)[-1]
    return "." not in name or name.rsplit(".", 1)[-1] in DATA_EXTENSIONS


def _check_files(files: list[str], folder: str) -> None:
    if not files:
        raise BadInput(f"{folder} holds no data files", DATASET_LAYOUT)
    unknown = [f for f in files if not _data_file(f)]
    if unknown:
        raise BadInput(f"{unknown[0]} is not a data file the batch layer reads ({len(unknown)} such file(s) in {folder})",
                       f"CDR and reference files are .{', .'.join(sorted(DATA_EXTENSIONS))}; move the others away")
    formats = {f.rsplit(".", 1)[-1] if "." in f.rsplit("/", 1)[-1] else "parquet" for f in files}
    if len({"json" if f == "jsonl" else f for f in formats}) > 1:
        raise BadInput(f"{folder} mixes file formats ({', '.join(sorted(formats))})", "one format per folder")


def check_input(spark: SparkSession, source: str, dates: list[dt.date] | None, reference: bool) -> list[dt.date]:
    """The days of ``source`` to land (``dates`` if given, else all it holds), after checking its
    layout: the folder, the reference folders (when ``reference``), the CDR partitions, the file
    formats and the manifest. Raises BadInput naming what is wrong; reads only."""
    if not io.exists(spark, source):
        raise BadInput(f"input {source} does not exist", "give a dataset folder made by `cdr generate` or an operator drop")
    if not io.list_dirs(spark, source):
        raise BadInput(f"input {source} is {'not a dataset folder' if io.list_files(spark, source) else 'empty'}",
                       DATASET_LAYOUT)
    if reference:
        for name in ("subscribers", "cells"):
            folder = f"{source}/{name}"
            if not io.exists(spark, folder):
                raise BadInput(f"input {source} has no {name}/ folder (reference data)", DATASET_LAYOUT)
            _check_files(io.list_files(spark, folder), folder)
    types = io.list_dirs(spark, f"{source}/cdr")
    unknown = [t for t in types if t.removeprefix("record_type=") not in RECORD_TYPES]
    if unknown:
        raise BadInput(f"{source}/cdr/{unknown[0]} is not a record type folder",
                       f"record types: {', '.join(f'record_type={t}' for t in RECORD_TYPES)}")
    present = set()
    for rt in RECORD_TYPES:
        for name in io.list_dirs(spark, f"{source}/cdr/record_type={rt}"):
            try:
                present.add(dt.date.fromisoformat(name.removeprefix("date=")))
            except ValueError:
                raise BadInput(f"{source}/cdr/record_type={rt}/{name} is not a date=YYYY-MM-DD folder",
                               DATASET_LAYOUT) from None
    if not present:
        if reference and dates:  # a drop of reference data only, landed before the day's CDRs
            return sorted(dates)
        raise BadInput(f"input {source} holds no CDR partitions", DATASET_LAYOUT)
    wanted = sorted(present) if dates is None else sorted(dates)
    missing = [d for d in wanted if d not in present]
    if len(missing) == len(wanted):
        raise BadInput(f"input {source} holds no CDRs of {', '.join(map(str, missing[:5]))}",
                       f"it holds {min(present)} to {max(present)}")
    for day in wanted:
        for rt in RECORD_TYPES:
            folder = f"{source}/cdr/record_type={rt}/date={day}"
            if io.exists(spark, folder):
                _check_files(io.list_files(spark, folder), folder)
    manifest = f"{source}/manifest.json"
    if io.exists(spark, manifest):
        text = spark.read.text(manifest, wholetext=True).first()
        try:
            json.loads(text[0] if text else "")
        except ValueError as exc:
            raise BadInput(f"{manifest} is not valid JSON ({exc})", "regenerate the dataset or remove the file") from None
    return [d for d in wanted if d in present]


def check_labels(spark: SparkSession, dataset: str) -> None:
    """A folder to score against: a generated dataset's manifest and labels/."""
    if not io.exists(spark, dataset):
        raise BadInput(f"labels {dataset} do not exist", "give the folder of a dataset made by `cdr generate`")
    for needed in ("manifest.json", "labels"):
        if not io.exists(spark, f"{dataset}/{needed}"):
            raise BadInput(f"{dataset} holds no {needed}: it is not a dataset made by `cdr generate`",
                           "give the folder `cdr generate --out` wrote")
    text = spark.read.text(f"{dataset}/manifest.json", wholetext=True).first()
    try:
        json.loads(text[0] if text else "")
    except ValueError as exc:
        raise BadInput(f"{dataset}/manifest.json is not valid JSON ({exc})") from None
