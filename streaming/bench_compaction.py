"""`make bench-compaction`: what compacting a bronze day buys its readers, side by side in one run.

A generated day's voice CDRs, shaped as bronze rows (Kafka metadata, the JSON payload, the typed
fields), are written to a scratch bronze folder on the stack's HDFS in as many files as the
bronze job commits in a day (2,880 at the default 30 s checkpoints). Then, in one Spark
application: a full scan of the day (count and a hash of every column of every row, a new
DataFrame each time, so the files are listed and opened again), twice; ``cdr stream compact``'s
merge (``streaming.compaction.compact``), timed; the same scan twice on the merged files. The
scans must agree. Prints the figures as a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import uuid
from pathlib import Path

DAY = "2025-12-28"  # the scratch folder's date (one folder: the day as the job lands it)


def bronze_voice_rows(spark, dataset: Path):
    """The dataset's voice CDRs as the bronze job lands them."""
    from pyspark.sql import functions as F

    from cdr.contract import RECORD_TYPES
    from streaming.bronze_tables import HIVE_TYPES
    from streaming.flink.bronze import columns

    voice = spark.read.parquet(f"file://{dataset}/cdr/record_type=voice").drop("date")
    fields = [f.name for f in RECORD_TYPES["voice"].fields]
    metadata = {
        "kafka_key": F.col("served_msisdn"), "kafka_topic": F.lit("cdr.voice"),
        "kafka_partition": F.abs(F.hash("served_msisdn")) % 6, "kafka_offset": F.monotonically_increasing_id(),
        "kafka_timestamp": F.col("start_time"), "ingested_at": F.col("start_time"),
        "payload": F.to_json(F.struct(*fields)),
    }
    return voice.select(*[(metadata[name] if name in metadata else F.col(name)).cast(HIVE_TYPES[ftype]).alias(name)
                          for name, ftype in columns(RECORD_TYPES["voice"])])


def scan(spark, folder: str) -> tuple[float, tuple]:
    from pyspark.sql import functions as F

    began = time.perf_counter()
    day = spark.read.parquet(folder)
    result = day.select(F.count("*"), F.sum(F.xxhash64(*day.columns).cast("decimal(38,0)"))).collect()[0]
    return time.perf_counter() - began, tuple(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=110_000, help="generated network (one day)")
    parser.add_argument("--files", type=int, default=2880, help="files the day is landed in")
    args = parser.parse_args()

    from cdr.settings import get_settings
    from generator.dataset import GenerateOptions, generate_dataset
    from batch.cli import batch_session
    from streaming import compaction

    settings = get_settings()
    settings = settings.model_copy(update={"bronze": settings.bronze.model_copy(
        update={"dir": f"bench/compaction-{uuid.uuid4().hex[:6]}"})})
    folder = f"{settings.bronze_uri}/cdr/record_type=voice/date={DAY}"
    work = Path(tempfile.mkdtemp(prefix="cdr-bench-compaction-"))
    dataset = generate_dataset(GenerateOptions(out=work / "data", subscribers=args.subscribers, days=1,
                                               defect_rate=0, scenarios=())).out
    spark = batch_session("cdr-bench-compaction")
    fs = compaction.HadoopFs(spark)
    try:
        began = time.perf_counter()
        bronze_voice_rows(spark, dataset).repartition(args.files).write.parquet(folder)
        landed_s = time.perf_counter() - began
        files = sum(1 for uri, _, _ in fs.list(folder) if compaction.is_committed(uri.rsplit("/", 1)[-1]))
        before = [scan(spark, folder) for _ in range(2)]
        began = time.perf_counter()
        report = compaction.compact(spark, settings, settings.bronze.compaction_target_mb * 1024 * 1024)
        compact_s = time.perf_counter() - began
        after = [scan(spark, folder) for _ in range(2)]
        merged = sum(1 for uri, _, _ in fs.list(folder) if compaction.is_committed(uri.rsplit("/", 1)[-1]))
    finally:
        fs.delete(settings.bronze_uri)
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)
    assert len({result for _, result in before + after}) == 1, "the scans disagree"
    rows = before[0][1][0]
    print(f"\n{rows:,} voice rows, landed as {files:,} files in {landed_s:.1f} s; "
          f"{sum(len(r.merge.files) for r in report.merges):,} files merged into {len(report.merges)}\n")
    print("| | files | full scan, 1st (s) | full scan, 2nd (s) |")
    print("|---|---:|---:|---:|")
    print(f"| as landed | {files:,} | {before[0][0]:.1f} | {before[1][0]:.1f} |")
    print(f"| compacted | {merged:,} | {after[0][0]:.1f} | {after[1][0]:.1f} |")
    print(f"\nscan before / after (2nd runs): {before[1][0] / after[1][0]:.1f}x; "
          f"compaction {compact_s:.1f} s ({rows / compact_s:,.0f} rows/s)")


if __name__ == "__main__":
    main()
