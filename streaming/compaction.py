"""Compacting the bronze landing: many small committed Parquet files of a date folder become few.

The bronze job commits one file per topic, date and checkpoint (2,880 a day per topic at the
default 30 s interval). Readers pay per file (listing, opening, footers), so ``cdr stream
compact`` merges the committed files of each date folder into files of about ``[bronze]
compaction_target_mb``, with Spark, while the job keeps writing:

- Only committed files are touched: their names are visible. Files in progress are hidden
  (``.part-*``) and become visible only through the job's own commit, a rename, so a file the
  job is still writing is never read half-written and never deleted.
- A restart of the job from a checkpoint or savepoint re-commits the files that checkpoint had
  pending. Flink's HDFS committer does nothing when neither the in-progress file nor the
  committed one exists (``HadoopFsCommitter.commitAfterRecovery``), so a file compacted away
  does not fail the restart, and its rows are in the merged file once.
- Every merge is counted before anything is removed: the merged file, written by Spark from the
  files it replaces, must be one file holding as many rows as they do, or it is deleted and the
  originals stay.
- A journal makes a merge atomic across crashes. The merged file is written to a hidden staging
  folder, then the journal (merged file, files it replaces) is committed, then the merged file is
  renamed into the date folder and the originals are deleted. A run first finishes any journal a
  crashed run left: forward when the merged file is in place (the originals are deleted), back
  when it is not. Between the rename and the deletes (milliseconds; or until the next run after a
  crash there) a reader can see a replaced file's rows twice, never none: each bronze row keeps
  its Kafka topic, partition and offset, which identify it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

from streaming.flink.bronze import PARTITION_COLUMN, bronze_tables

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from cdr.settings import Settings

STAGING = ".compaction"  # under the bronze root: hidden from Hive and Spark, outside every table
MERGED_PREFIX = "compacted-"


@dataclass(frozen=True)
class BronzeFile:
    path: str  # URI
    size: int  # bytes


@dataclass(frozen=True)
class Merge:
    table: str
    folder: str  # the date folder's URI
    files: tuple[BronzeFile, ...]


@dataclass(frozen=True)
class MergeResult:
    merge: Merge
    merged: str  # the merged file's URI
    rows: int


def is_committed(name: str) -> bool:
    """Flink writes hidden in-progress files and renames them on commit; ``_`` marks metadata."""
    return not name.startswith((".", "_"))


def plan(table: str, folder: str, files: Iterable[BronzeFile], target_bytes: int) -> list[Merge]:
    """The merges of one date folder: its committed files smaller than half the target, in name
    order, packed into groups of at most ``target_bytes``; a group of one file stays as it is."""
    small = sorted((f for f in files if is_committed(f.path.rsplit("/", 1)[-1]) and f.size < target_bytes / 2),
                   key=lambda f: f.path)
    groups: list[list[BronzeFile]] = []
    for f in small:
        if groups and sum(g.size for g in groups[-1]) + f.size <= target_bytes:
            groups[-1].append(f)
        else:
            groups.append([f])
    return [Merge(table, folder, tuple(g)) for g in groups if len(g) > 1]


# --- I/O: the Hadoop file system through Spark's JVM (HDFS, or file:// in tests) ---------------


class HadoopFs:
    def __init__(self, spark: SparkSession):
        self._jvm = spark._jvm
        self._conf = spark._jsc.hadoopConfiguration()

    def _path(self, uri: str):
        path = self._jvm.org.apache.hadoop.fs.Path(uri)
        return path.getFileSystem(self._conf), path

    def exists(self, uri: str) -> bool:
        fs, path = self._path(uri)
        return fs.exists(path)

    def list(self, uri: str) -> list[tuple[str, bool, int]]:
        """(URI, is a folder, size) of each entry of a folder; empty when it does not exist."""
        fs, path = self._path(uri)
        if not fs.exists(path):
            return []
        return [(s.getPath().toString(), s.isDirectory(), s.getLen()) for s in fs.listStatus(path)]

    def delete(self, uri: str) -> None:
        fs, path = self._path(uri)
        fs.delete(path, True)

    def rename(self, src: str, dst: str) -> None:
        fs, src_path = self._path(src)
        if not fs.rename(src_path, self._path(dst)[1]):
            from cdr.errors import ServiceUnavailable

            raise ServiceUnavailable(f"HDFS did not move {src} to {dst}",
                                     "run cdr stream compact again: it first finishes what this run left")

    def write_text(self, uri: str, text: str) -> None:
        fs, path = self._path(uri)
        out = fs.create(path, True)
        try:
            out.write(bytearray(text.encode()))
        finally:
            out.close()

    def read_text(self, uri: str) -> str:
        fs, path = self._path(uri)
        stream = fs.open(path)
        try:
            return self._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        finally:
            stream.close()


def date_folders(fs: HadoopFs, table_folder: str) -> list[str]:
    return sorted(uri for uri, is_dir, _ in fs.list(table_folder)
                  if is_dir and uri.rsplit("/", 1)[-1].startswith(f"{PARTITION_COLUMN}="))


def table_folders(settings: Settings, root: str) -> dict[str, str]:
    """Each bronze table's folder under ``root`` (the landing's, or a copy of its layout)."""
    return {table: root + folder.removeprefix(settings.bronze_uri)
            for table, (_, _, folder) in bronze_tables(settings).items()}


def find_merges(fs: HadoopFs, folders: dict[str, str], target_bytes: int) -> list[Merge]:
    merges = []
    for table, table_folder in folders.items():
        for folder in date_folders(fs, table_folder):
            files = [BronzeFile(uri, size) for uri, is_dir, size in fs.list(folder) if not is_dir]
            merges += plan(table, folder, files, target_bytes)
    return merges


def recover(fs: HadoopFs, staging_root: str) -> int:
    """Finish what a crashed run left: journals forward or back, then staged files. Returns the
    number of journals finished."""
    finished = 0
    for uri, is_dir, _ in fs.list(staging_root):
        if uri.endswith(".json"):
            journal = json.loads(fs.read_text(uri))
            if fs.exists(journal["merged"]):  # renamed into place: the originals go
                for original in journal["replaces"]:
                    fs.delete(original)
            fs.delete(uri)
            finished += 1
    for uri, _, _ in fs.list(staging_root):  # staged merges without a committed journal
        fs.delete(uri)
    return finished


def execute(spark: SparkSession, fs: HadoopFs, merge: Merge, staging_root: str) -> MergeResult:
    """One merge: write, verify, journal, swap (the module's docstring says why in this order)."""
    from cdr.errors import DataLoss

    merge_id = uuid.uuid4().hex
    staged = f"{staging_root}/{merge_id}"
    paths = [f.path for f in merge.files]
    # Files landed before and after a contract change differ in columns: the merged file keeps them all.
    source = spark.read.option("mergeSchema", "true").parquet(*paths)
    rows_in = source.count()  # from the files' footers
    source.coalesce(1).write.parquet(staged)
    written = [uri for uri, is_dir, _ in fs.list(staged) if not is_dir and is_committed(uri.rsplit("/", 1)[-1])]
    rows_out = spark.read.parquet(*written).count() if written else 0
    if len(written) != 1 or rows_out != rows_in:
        fs.delete(staged)
        raise DataLoss(f"merging {len(paths)} files of {merge.folder} gave {len(written)} file(s) with {rows_out:,} "
                       f"rows instead of one with {rows_in:,}; nothing was replaced",
                       "the landed files are untouched; see the Spark output above and run cdr stream compact again")
    merged = f"{merge.folder}/{MERGED_PREFIX}{merge_id}.parquet"
    journal = f"{staging_root}/{merge_id}.json"
    fs.write_text(f"{journal}.tmp", json.dumps({"merged": merged, "replaces": paths}))
    fs.rename(f"{journal}.tmp", journal)  # the commit point: from here the merge goes forward
    fs.rename(written[0], merged)
    for path in paths:
        fs.delete(path)
    fs.delete(journal)
    fs.delete(staged)
    return MergeResult(merge, merged, rows_in)


@dataclass(frozen=True)
class CompactionReport:
    recovered: int  # journals of a crashed run finished first
    merges: list[MergeResult]


def compact(spark: SparkSession, settings: Settings, target_bytes: int, root: str | None = None,
            on_plan: Callable[[int], None] = lambda _: None,
            on_merge: Callable[[MergeResult], None] = lambda _: None) -> CompactionReport:
    """Merge the small committed files of every bronze date folder under ``root`` (default: the
    landing's). One run at a time: a second would take the first one's staged files for a
    crashed run's (``cdr stream compact`` locks)."""
    fs = HadoopFs(spark)
    root = root or settings.bronze_uri
    staging_root = f"{root}/{STAGING}"
    recovered = recover(fs, staging_root)
    merges = find_merges(fs, table_folders(settings, root), target_bytes)
    on_plan(len(merges))
    results = []
    for merge in merges:
        results.append(execute(spark, fs, merge, staging_root))
        on_merge(results[-1])
    return CompactionReport(recovered, results)
