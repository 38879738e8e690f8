"""Compacting the bronze landing's small files: the plan on inline data, merges and crash recovery on
a file:// bronze root (the same Hadoop file system calls as on HDFS)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from batch.testing import assert_frames_equal, spark  # noqa: F401  (spark: session-scoped fixture)
from cdr.settings import get_settings
from streaming import compaction
from streaming.compaction import BronzeFile, Merge, plan

MB = 1024 * 1024
FOLDER = "hdfs://nn/bronze/cdr/record_type=voice/date=2026-01-05"


def test_the_plan_packs_small_committed_files_in_name_order_and_leaves_the_rest():
    files = [BronzeFile(f"{FOLDER}/part-a-0-{i}", size) for i, size in enumerate([10 * MB, 30 * MB, 70 * MB, 50 * MB, 40 * MB])]
    files += [BronzeFile(f"{FOLDER}/.part-a-0-5.inprogress.1234", MB),  # still being written by the job
              BronzeFile(f"{FOLDER}/_SUCCESS", 0)]
    assert plan("bronze_voice", FOLDER, files, 128 * MB) == [
        # 70 MB is more than half the target: left alone. 10 + 30 + 50 fit in 128; 40 more would not,
        # and a group of that one file alone is not rewritten.
        Merge("bronze_voice", FOLDER, (files[0], files[1], files[3])),
    ]
    # A group of one is not rewritten; nothing small at all gives nothing.
    assert plan("bronze_voice", FOLDER, files[:2], 32 * MB) == []
    assert plan("bronze_voice", FOLDER, [files[2]], 128 * MB) == []


BRONZE_SCHEMA = "kafka_topic string, kafka_partition int, kafka_offset bigint, kafka_timestamp timestamp, " \
                "payload string, duration_s int"




def _write_part(spark, folder: str, name: str, rows: list[tuple]) -> str:
    """One file as the bronze job commits it (a Parquet file without an extension)."""
    staged = f"{folder}/.staged-{name}"
    spark.createDataFrame(rows, BRONZE_SCHEMA).coalesce(1).write.parquet(staged)
    fs = compaction.HadoopFs(spark)
    (written,) = [uri for uri, is_dir, _ in fs.list(staged) if uri.rsplit("/", 1)[-1].startswith("part-")]
    fs.rename(written, f"{folder}/{name}")
    fs.delete(staged)
    return f"{folder}/{name}"


def _rows(offsets: range) -> list[tuple]:
    at = dt.datetime(2026, 1, 5, 10, 0, 0, 123456)
    return [("cdr.voice", 0, o, at + dt.timedelta(seconds=o), f'{{"n": {o}}}', o % 7) for o in offsets]


@pytest.mark.spark
def test_a_date_folder_is_merged_into_one_file_with_exactly_its_rows(spark, tmp_path):
    settings, root = get_settings(), f"file:{tmp_path}/bronze"  # as Hadoop lists it
    folder = f"{root}/cdr/record_type=voice/date=2026-01-05"
    other_day = f"{root}/cdr/record_type=voice/date=2026-01-06"
    for i in range(3):
        _write_part(spark, folder, f"part-run1-0-{i}", _rows(range(i * 100, i * 100 + 100)))
    lone = _write_part(spark, other_day, "part-run1-0-3", _rows(range(300, 310)))
    fs = compaction.HadoopFs(spark)
    fs.write_text(f"{folder}/.part-run1-0-4.inprogress.abcd", "half a file")  # the job's, in progress
    before = spark.read.parquet(folder)

    report = compaction.compact(spark, settings, 128 * MB, root)

    assert report.recovered == 0
    assert [(r.merge.folder, len(r.merge.files), r.rows) for r in report.merges] == [(folder, 3, 300)]
    names = sorted(uri.rsplit("/", 1)[-1] for uri, _, _ in fs.list(folder))
    assert names == [".part-run1-0-4.inprogress.abcd", report.merges[0].merged.rsplit("/", 1)[-1]]
    assert names[1].startswith("compacted-") and names[1].endswith(".parquet")
    assert_frames_equal(spark.read.parquet(folder), spark.createDataFrame(_rows(range(300)), BRONZE_SCHEMA))
    assert before.schema == spark.read.parquet(folder).schema
    assert [uri for uri, _, _ in fs.list(other_day)] == [lone]  # one file: nothing to merge
    assert fs.list(f"{root}/{compaction.STAGING}") == []
    # A second run finds nothing more to do.
    assert compaction.compact(spark, settings, 128 * MB, root).merges == []



@pytest.mark.spark
def test_files_landed_before_and_after_a_new_field_are_merged_with_every_column(spark, tmp_path):
    settings, root = get_settings(), f"file:{tmp_path}/bronze"  # as Hadoop lists it
    folder = f"{root}/cdr/record_type=voice/date=2026-01-05"
    _write_part(spark, folder, "part-run1-0-0", _rows(range(3)))
    staged = f"{folder}/.staged-new"
    (spark.createDataFrame([row + ("5G",) for row in _rows(range(3, 5))], BRONZE_SCHEMA + ", slice string")
     .coalesce(1).write.parquet(staged))
    fs = compaction.HadoopFs(spark)
    (written,) = [uri for uri, _, _ in fs.list(staged) if uri.rsplit("/", 1)[-1].startswith("part-")]
    fs.rename(written, f"{folder}/part-run2-0-0")
    fs.delete(staged)

    assert [r.rows for r in compaction.compact(spark, settings, 128 * MB, root).merges] == [5]
    assert_frames_equal(spark.read.parquet(folder), spark.createDataFrame(
        [row + (None,) for row in _rows(range(3))] + [row + ("5G",) for row in _rows(range(3, 5))],
        BRONZE_SCHEMA + ", slice string"))

@pytest.mark.spark
def test_a_crashed_merge_goes_forward_once_its_merged_file_is_in_place_and_back_before(spark, tmp_path):
    root = f"file:{tmp_path}/bronze"  # as Hadoop lists it
    fs = compaction.HadoopFs(spark)
    staging = f"{root}/{compaction.STAGING}"
    voice = f"{root}/cdr/record_type=voice/date=2026-01-05"
    sms = f"{root}/cdr/record_type=sms/date=2026-01-05"
    # Crashed after the rename: the merged file holds the rows, two originals are still there.
    originals = [_write_part(spark, voice, f"part-run1-0-{i}", _rows(range(i * 10, i * 10 + 10))) for i in range(2)]
    merged = _write_part(spark, voice, "compacted-m1.parquet", _rows(range(20)))
    fs.write_text(f"{staging}/m1.json", json.dumps({"merged": merged, "replaces": originals}))
    # Crashed before the rename: committed journal, merged file still staged.
    kept = [_write_part(spark, sms, f"part-run1-0-{i}", _rows(range(i * 10, i * 10 + 10))) for i in range(2)]
    _write_part(spark, f"{staging}/m2", "part-00000.parquet", _rows(range(20)))
    fs.write_text(f"{staging}/m2.json", json.dumps({"merged": f"{sms}/compacted-m2.parquet", "replaces": kept}))
    # Crashed while writing the journal: only its temporary file.
    _write_part(spark, f"{staging}/m3", "part-00000.parquet", _rows(range(5)))
    fs.write_text(f"{staging}/m3.json.tmp", "{")

    assert compaction.recover(fs, staging) == 2
    assert [uri for uri, _, _ in fs.list(voice)] == [merged]
    assert sorted(uri for uri, _, _ in fs.list(sms)) == kept
    assert_frames_equal(spark.read.parquet(voice), spark.createDataFrame(_rows(range(20)), BRONZE_SCHEMA))
    assert_frames_equal(spark.read.parquet(sms), spark.createDataFrame(_rows(range(20)), BRONZE_SCHEMA))
    assert fs.list(staging) == []


@pytest.mark.parametrize("name, committed", [("part-1b2c-0-7", True), ("compacted-9f.parquet", True),
                                             (".part-1b2c-0-8.inprogress.5e", False), ("_SUCCESS", False)])
def test_only_visible_files_are_committed(name, committed):
    assert compaction.is_committed(name) is committed
