"""Thin I/O of the batch layer: zones on any Hadoop file system, write-then-swap, Hive tables.

A run's partitions of a table (or a whole small table) are written to a staging folder first and
renamed into place only when complete, so readers never see half a partition and a rerun replaces
exactly the partitions it processed. Tables are external Parquet tables registered in the shared
metastore, once per run.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession


# Partitioned writes without sorting every row by the partition column first: each task keeps one
# writer open per date it meets (a run has a few) and sorts only past this many. Planned writes
# would put that sort into the query plan, where it always runs.
WRITE_CONF = {"spark.sql.optimizer.plannedWrite.enabled": "false",
              "spark.sql.maxConcurrentOutputFileWriters": "8"}


@dataclass(frozen=True)
class Zones:
    """Folders of the zones under one root URI (``{hdfs.uri}{hdfs.root}`` by default)."""

    root: str
    db_prefix: str = ""

    @property
    def raw(self) -> str:
        return f"{self.root}/raw"

    @property
    def clean(self) -> str:
        return f"{self.root}/clean"

    @property
    def quarantine(self) -> str:
        return f"{self.root}/quarantine"

    @property
    def analytics(self) -> str:
        return f"{self.root}/analytics"

    def db(self, name: str) -> str:
        return f"{self.db_prefix}{name}"

    def table_path(self, db: str, table: str) -> str:
        zone = {"cdr_raw": self.raw, "cdr_clean": self.clean, "cdr_ops": self.quarantine}.get(db, self.analytics)
        return f"{zone}/{db}/{table}" if zone == self.analytics else f"{zone}/{table}"


def _fs(spark: SparkSession, uri: str):
    jvm = spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark._jsc.hadoopConfiguration()), path


def exists(spark: SparkSession, uri: str) -> bool:
    fs, path = _fs(spark, uri)
    return fs.exists(path)


def list_files(spark: SparkSession, uri: str) -> list[str]:
    """Data files directly in a folder (hidden and marker files skipped), sorted."""
    fs, path = _fs(spark, uri)
    if not fs.exists(path):
        return []
    out = [s.getPath().toString() for s in fs.listStatus(path)
           if s.isFile() and not s.getPath().getName().startswith(("_", "."))]
    return sorted(out)


def list_dirs(spark: SparkSession, uri: str) -> list[str]:
    fs, path = _fs(spark, uri)
    if not fs.exists(path):
        return []
    return sorted(s.getPath().getName() for s in fs.listStatus(path) if s.isDirectory())


def remove(spark: SparkSession, uri: str) -> None:
    """Delete a folder and everything under it (tests and benchmarks clean up after themselves)."""
    fs, path = _fs(spark, uri)
    fs.delete(path, True)


def file_sizes(spark: SparkSession, uris: list[str]) -> list[int]:
    out = []
    for uri in uris:
        fs, path = _fs(spark, uri)
        out.append(fs.getFileStatus(path).getLen())
    return out


def copy_tree(spark: SparkSession, src: str, dst: str) -> None:
    """Copy a folder between file systems (landing files in the raw zone), replacing ``dst``."""
    jvm = spark._jvm
    conf = spark._jsc.hadoopConfiguration()
    src_fs, src_path = _fs(spark, src)
    staging = _staging(dst)
    dst_fs, staging_path = _fs(spark, staging)
    jvm.org.apache.hadoop.fs.FileUtil.copy(src_fs, src_path, dst_fs, staging_path, False, True, conf)
    _swap(spark, staging, dst)


def _staging(target: str) -> str:
    parent, _, name = target.rstrip("/").rpartition("/")
    return f"{parent}/.staging-{name}-{uuid.uuid4().hex[:8]}"


def _swap(spark: SparkSession, staging: str, target: str) -> None:
    fs, target_path = _fs(spark, target)
    _, staging_path = _fs(spark, staging)
    if fs.exists(target_path):
        fs.delete(target_path, True)
    fs.mkdirs(target_path.getParent())
    if not fs.rename(staging_path, target_path):
        raise OSError(f"could not move {staging} to {target}")


def write_swap(df: DataFrame, target: str, file_format: str = "parquet", partitions: int | None = None) -> None:
    """Write ``df`` to ``target`` (a partition or a whole table folder) atomically from readers' view."""
    spark = df.sparkSession
    staging = _staging(target)
    out = df.coalesce(partitions) if partitions else df
    writer = out.write.mode("overwrite")
    if file_format == "csv":
        writer.option("header", "true").csv(staging)
    else:
        writer.parquet(staging)
    _swap(spark, staging, target)


def _ddl_columns(df: DataFrame, skip: str | None = None) -> str:
    return ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in df.schema.fields if f.name != skip)


def register_table(spark: SparkSession, zones: Zones, db: str, table: str, df: DataFrame,
                   partition_column: str | None = None, using: str = "parquet", location: str | None = None,
                   options: str = "") -> str:
    """CREATE the external table once (schema from ``df``); returns its qualified name."""
    name = f"{zones.db(db)}.{table}"
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {zones.db(db)}")
    location = location or zones.table_path(db, table)
    fs, path = _fs(spark, location)
    fs.mkdirs(path)  # an external table's folder exists before its first partition
    partitioned, ptype = "", None
    columns = _ddl_columns(df, skip=partition_column)
    if partition_column:
        ptype = df.schema[partition_column].dataType.simpleString() if partition_column in df.columns else "string"
        columns += f", `{partition_column}` {ptype}"
        partitioned = f"PARTITIONED BY (`{partition_column}`)"
    recreated = False
    if spark.catalog.tableExists(name):
        known = [(f.name, f.dataType.simpleString()) for f in spark.table(name).schema.fields]
        wanted = [(f.name, f.dataType.simpleString()) for f in df.schema.fields if f.name != partition_column]
        if partition_column:
            wanted.append((partition_column, ptype))
        # Re-declare when the code's schema or the zones' root changed (external table: files stay).
        if known != wanted or _table_location(spark, name) != _location_key(location):
            spark.sql(f"DROP TABLE {name}")
            recreated = True
    spark.sql(f"CREATE TABLE IF NOT EXISTS {name} ({columns}) USING {using} {options} {partitioned} "
              f"LOCATION '{location}'")
    if recreated and partition_column:
        spark.sql(f"ALTER TABLE {name} RECOVER PARTITIONS")
    return name


def _location_key(uri: str) -> str:
    """A location compared without the scheme's slashes (the metastore stores file:/x for file:///x)."""
    return uri.replace(":///", ":/").rstrip("/")


def _table_location(spark: SparkSession, name: str) -> str:
    rows = spark.sql(f"DESCRIBE TABLE EXTENDED {name}").collect()
    return next((_location_key(r["data_type"]) for r in rows if r["col_name"] == "Location"), "")


def write_partitions(spark: SparkSession, df: DataFrame, target: str, column: str, values: list,
                     partitions: int | None = None) -> None:
    """Replace the partitions ``column=value`` of the table folder ``target``, one per value, with
    the rows of ``df`` in one Spark job (``partitionBy``), then swap each into place.

    Every value given is replaced, also one without rows (it becomes an empty partition), and
    nothing else: a row of another value is an error, so a rerun of some days leaves exactly the
    rows a run of those days alone writes."""
    staging = f"{target.rstrip('/')}/.staging-{uuid.uuid4().hex[:8]}"  # hidden: readers skip it
    # repartition, not coalesce: coalesce(1) would also run the query feeding it in one task (the
    # quarantine filtered all of a run's cached rows on one core); a shuffle keeps that parallel.
    out = df.repartition(partitions) if partitions else df
    out.write.mode("overwrite").partitionBy(column).parquet(staging)
    fs, staging_path = _fs(spark, staging)
    names = {f"{column}={v}" for v in values}
    written = set(list_dirs(spark, staging))
    if written - names:
        fs.delete(staging_path, True)
        raise ValueError(f"rows outside the partitions being replaced: {sorted(written - names)}")
    for name in sorted(names):
        if name not in written:
            fs.mkdirs(_fs(spark, f"{staging}/{name}")[1])
        _swap(spark, f"{staging}/{name}", f"{target.rstrip('/')}/{name}")
    fs.delete(staging_path, True)


class Warehouse:
    """Writes into the zones' tables for one run. Each table is declared in the metastore once per
    run (the checks and DDL of ``register_table`` are metastore round trips), and its partitions of
    a run are written by one job and added by one statement."""

    def __init__(self, spark: SparkSession, zones: Zones):
        self.spark, self.zones = spark, zones
        self._declared: dict[tuple, str] = {}

    def _register(self, db: str, table: str, df: DataFrame, partition_column: str | None) -> str:
        key = (db, table, df.schema.simpleString(), partition_column)
        if key not in self._declared:
            self._declared[key] = register_table(self.spark, self.zones, db, table, df,
                                                 partition_column=partition_column)
        return self._declared[key]

    def write_partitions(self, db: str, table: str, df: DataFrame, column: str, values: list,
                         partitions: int | None = None) -> None:
        """Replace the partitions ``column=value`` of a partitioned table (``df`` holds ``column``)."""
        if not values:
            return
        name = self._register(db, table, df, column)
        write_partitions(self.spark, df, self.zones.table_path(db, table), column, values, partitions)
        specs = " ".join(f"PARTITION (`{column}`='{v}')" for v in values)
        self.spark.sql(f"ALTER TABLE {name} ADD IF NOT EXISTS {specs}")
        self.spark.sql(f"REFRESH TABLE {name}")

    def write_table(self, db: str, table: str, df: DataFrame, partitions: int | None = 1) -> None:
        """Replace a whole (small) table: dimensions, trends, marts."""
        name = self._register(db, table, df, None)
        write_swap(df, self.zones.table_path(db, table), partitions=partitions)
        self.spark.sql(f"REFRESH TABLE {name}")


def read_table(spark: SparkSession, zones: Zones, db: str, table: str) -> DataFrame | None:
    name = f"{zones.db(db)}.{table}"
    return spark.table(name) if spark.catalog.tableExists(name) else None
