"""Reading operator files of any generator format with the contract schema.

Every row that reaches the reader is kept: rows a text parser cannot type are carried with
their raw line and a parse code (``wrong_type``, ``truncated_line``, ``unparseable``) so that
validation quarantines them instead of losing them. Files that cannot be opened at all
(a truncated Parquet footer, an unreadable encoding) are returned separately, named, so one bad
file never stops the others from loading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from batch.frames import local_frame
from cdr.contract import RecordType, spark_schema

CORRUPT = "_corrupt_record"
# Columns every reader adds to the contract's fields.
RAW_JSON = "_raw"            # the raw text line of a row that did not parse (else null: see raw_record)
PARSE_CODE = "_parse_code"   # null when the row was typed without loss
SOURCE_FILE = "_source_file"


@dataclass(frozen=True)
class RejectedFile:
    path: str
    reason: str


def _with_lineage(df: DataFrame, fields: list[str], parse_code: Column, raw: Column) -> DataFrame:
    return df.select(
        *[F.col(f) for f in fields],
        raw.alias(RAW_JSON),
        parse_code.alias(PARSE_CODE),
        F.col("_metadata.file_path").alias(SOURCE_FILE),
    )


def raw_record(fields: list[str]) -> Column:
    """The record as it arrived: the raw line of a row that did not parse, else the JSON rendering
    of its typed fields. An expression, not a stored column: only the rows that need it (the
    quarantined and the repeated) pay for the rendering, and cached rows stay narrow."""
    rendered = F.to_json(F.struct(*[F.col(f) for f in fields]), {"ignoreNullFields": "false"})
    return F.coalesce(F.col(RAW_JSON), rendered)


def read_parquet(spark: SparkSession, paths: list[str], rt: RecordType) -> DataFrame:
    """Parquet is typed by its writer: every row parses (the raw record is rendered on demand)."""
    fields = rt.field_names
    df = spark.read.schema(spark_schema(rt)).parquet(*paths)
    return _with_lineage(df, fields, F.lit(None).cast("string"), F.lit(None).cast("string"))


def read_text(spark: SparkSession, paths: list[str], rt: RecordType, file_format: str) -> DataFrame:
    """CSV (with the contract's header) or JSON Lines, read line by line and typed with the contract
    schema in PERMISSIVE mode: a line that does not fit keeps its text and gets a parse code."""
    fields = rt.field_names
    schema = spark_schema(rt).add(T.StructField(CORRUPT, T.StringType(), True))
    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}
    lines = spark.read.text(paths).select(F.col("value"), F.col("_metadata.file_path").alias(SOURCE_FILE))
    line = F.col("value")
    if file_format == "csv":
        lines = lines.filter(~is_csv_header(line))
        parsed = F.from_csv(line, schema.simpleString(), options)
        # A line that splits into the right number of cells but does not type is a wrong type;
        # any other line is not CSV of this record type.
        n_cells = F.size(F.split(line, ","))
        bad = F.when(n_cells == len(fields), "wrong_type").otherwise("unparseable")
    elif file_format == "jsonl":
        parsed = F.from_json(line, schema, options)
        # A complete JSON object with a badly typed value is a wrong type; an object cut short
        # is a truncated line; anything else is not JSON at all.
        is_object = F.get_json_object(line, "$.record_type").isNotNull()
        looks_cut = F.ltrim(line).startswith("{") & ~F.rtrim(line).endswith("}")
        bad = F.when(is_object, "wrong_type").when(looks_cut, "truncated_line").otherwise("unparseable")
    else:
        raise ValueError(f"unknown text format {file_format!r}")
    rows = lines.select(line, F.col(SOURCE_FILE), parsed.alias("r"))
    corrupt = F.col(f"r.{CORRUPT}").isNotNull() | F.col("r").isNull()
    return rows.select(
        *[F.when(~corrupt, F.col(f"r.{f}")).alias(f) for f in fields],
        F.when(corrupt, line).alias(RAW_JSON),
        F.when(corrupt, bad).alias(PARSE_CODE),
        F.col(SOURCE_FILE),
    )


def is_csv_header(line: Column) -> Column:
    return line.startswith('"record_id"') | line.startswith("record_id,")


def csv_header_problems(spark: SparkSession, paths: list[str], rt: RecordType) -> list[RejectedFile]:
    """Non-empty CSV files without the contract's header line (their cells would be misread)."""
    if not paths:
        return []
    expected = ",".join(f'"{f.name}"' for f in rt.fields)
    per_file = (spark.read.text(paths)
                .groupBy(F.col("_metadata.file_path").alias("path"))
                .agg(F.max(F.replace(F.col("value"), F.lit('"'), F.lit("")) == expected.replace('"', ""))
                     .alias("has_header"),
                     F.first(F.when(is_csv_header(F.col("value")) | ~F.col("value").rlike("^[A-Z][0-9]"),
                                    F.col("value")), ignorenulls=True).alias("first_text"))
                .collect())
    by_location = {_location(p): p for p in paths}
    return [RejectedFile(by_location.get(_location(r["path"]), r["path"]),
                         f"CSV header does not match the {rt.name} contract (got {r['first_text']!r})")
            for r in per_file if not r["has_header"]]


def _location(uri: str) -> str:
    """The path part of a URI: Spark reports file:/x for file:///x."""
    return re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*:(//[^/]*)?", "", uri)


def readable_parquet_files(spark: SparkSession, paths: list[str]) -> tuple[list[str], list[RejectedFile]]:
    """Split Parquet files into readable ones and rejected ones (footer unreadable), by name."""
    good, bad = [], []
    for path in paths:
        try:
            spark.read.parquet(path).schema  # reads the footer only
            good.append(path)
        except Exception as exc:  # noqa: BLE001 - any reader failure rejects this one file
            first_line = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            bad.append(RejectedFile(path, f"unreadable Parquet file: {first_line}"))
    return good, bad


def read_cdr(spark: SparkSession, paths: list[str], rt: RecordType,
             file_format: str) -> tuple[DataFrame, list[RejectedFile]]:
    """All readable rows of ``paths`` (files of one record type) and the files that could not be read."""
    if file_format == "parquet":
        good, rejected = readable_parquet_files(spark, paths)
        if not good:
            return empty_raw(spark, rt), rejected
        return read_parquet(spark, good, rt), rejected
    rejected = csv_header_problems(spark, paths, rt) if file_format == "csv" else []
    good = [p for p in paths if p not in {r.path for r in rejected}]
    if not good:
        return empty_raw(spark, rt), rejected
    return read_text(spark, good, rt, file_format), rejected


def empty_raw(spark: SparkSession, rt: RecordType) -> DataFrame:
    schema = spark_schema(rt)
    for name in (RAW_JSON, PARSE_CODE, SOURCE_FILE):
        schema = schema.add(T.StructField(name, T.StringType(), True))
    return local_frame(spark, [], schema)


def read_reference(spark: SparkSession, path: str, rt: RecordType, file_format: str) -> DataFrame:
    """Subscribers or cells (reference data, trusted: read strictly, a bad file fails the batch)."""
    reader = spark.read.schema(spark_schema(rt))
    if file_format == "parquet":
        return reader.parquet(path)
    if file_format == "csv":
        return reader.option("header", "true").option("mode", "FAILFAST").csv(path)
    return reader.option("mode", "FAILFAST").json(path)
