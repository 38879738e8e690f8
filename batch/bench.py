"""`make bench-batch`: the whole batch chain against Spark merely copying the same input to Parquet.

For each size a labelled Parquet dataset of about that many CDRs is generated (not timed), then,
in one Spark application (local[2], 6 GiB driver by default), the copy baseline reads every raw
CDR file and writes it as Parquet, the chain (land -> ... -> marts) runs over the same days, each
step timed, and the copy runs again: the ratio is to the mean of the two copies. An untimed copy
first warms the JVM up (it doubled the first timed copy at 1 M). Both write under the same
file-system root, so the ratio compares work, not storage.
Prints Markdown tables (totals, then seconds per step).

    python -m batch.bench --cdrs 1000000 --cdrs 10000000 [--work DIR --keep-data]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import tempfile
import time
from pathlib import Path

RECORDS_PER_SUBSCRIBER_DAY = 31  # measured on the default profile (all record types, defects included)
DAYS = 2


def generate(out: Path, cdrs: int) -> int:
    from generator.dataset import GenerateOptions, generate_dataset

    subscribers = max(1000, cdrs // (RECORDS_PER_SUBSCRIBER_DAY * DAYS))
    generate_dataset(GenerateOptions(out=out, subscribers=subscribers, days=DAYS, start=dt.date(2026, 1, 5), seed=1))
    manifest = json.loads((out / "manifest.json").read_text())
    return int(manifest["total_cdrs"])


def copy_baseline(spark, dataset: Path, target: str) -> None:
    from cdr.contract import RECORD_TYPES

    for rt in RECORD_TYPES:
        spark.read.parquet(f"file://{dataset}/cdr/record_type={rt}").write.mode("overwrite").parquet(f"{target}/{rt}")


def timed_copy(spark, dataset: Path, target: str) -> float:
    began = time.perf_counter()
    copy_baseline(spark, dataset, target)
    return time.perf_counter() - began


def run_chain(spark, dataset: Path, root: str) -> dict[str, float]:
    """The whole chain, step by step as `cdr batch run` runs it; seconds per step."""
    from batch import jobs
    from batch.io import Zones
    from cdr.profile import load_profile
    from cdr.pseudonym import DEVELOPMENT_KEY

    source = f"file://{dataset}"
    ctx = jobs.BatchContext(spark, Zones(root), load_profile(), DEVELOPMENT_KEY, jobs.input_dates(spark, source),
                            input_uri=source, log=lambda _: None)
    jobs.run(ctx)
    return ctx.step_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cdrs", type=int, action="append", help="dataset size (repeatable)")
    parser.add_argument("--work", default=None, help="local folder for datasets and outputs")
    parser.add_argument("--driver-memory", default=None,
                        help="Spark driver heap (local mode: the whole Spark); default: settings [batch]")
    parser.add_argument("--keep-data", action="store_true",
                        help="keep each generated dataset in --work and reuse it when there (generation is not timed)")
    args = parser.parse_args()
    sizes = args.cdrs or [1_000_000, 10_000_000]
    work = Path(args.work or tempfile.mkdtemp(prefix="cdr-bench-batch-"))
    work.mkdir(parents=True, exist_ok=True)

    from batch.testing import local_session

    from cdr.settings import get_settings

    batch = get_settings().batch
    spark = local_session(master="local[2]", shuffle_partitions=batch.shuffle_partitions,
                          driver_memory=args.driver_memory or f"{batch.driver_memory_mb}m")
    spark.sparkContext.setLogLevel("ERROR")
    rows = []
    try:
        for size in sizes:
            dataset = work / f"data-{size}"
            if args.keep_data and (dataset / "manifest.json").exists():
                records = int(json.loads((dataset / "manifest.json").read_text())["total_cdrs"])
            else:
                shutil.rmtree(dataset, ignore_errors=True)
                records = generate(dataset, size)
            if not rows:  # the application's first Parquet read and write compile Spark's code paths
                copy_baseline(spark, dataset, f"file://{work}/warm-up")
                shutil.rmtree(work / "warm-up", ignore_errors=True)
            # The copy runs before and after the chain, and the ratio takes their mean: at 10 M it
            # varied by a third between runs.
            copies = [timed_copy(spark, dataset, f"file://{work}/copy-{size}")]
            t0 = time.perf_counter()
            steps = run_chain(spark, dataset, f"file://{work}/zones-{size}")
            chain_s = time.perf_counter() - t0
            copies.append(timed_copy(spark, dataset, f"file://{work}/copy-{size}"))
            rows.append((size, records, copies, chain_s, steps))
            print(f"{records} CDRs: copy {copies[0]:.1f} s and {copies[1]:.1f} s, chain {chain_s:.1f} s "
                  f"({', '.join(f'{k} {v:.1f}' for k, v in steps.items())})", flush=True)
            for name in (f"copy-{size}", f"zones-{size}", *([] if args.keep_data else [f"data-{size}"])):
                shutil.rmtree(work / name, ignore_errors=True)
            for db in ("cdr_raw", "cdr_clean", "cdr_ops", "cdr_dw"):
                spark.sql(f"DROP DATABASE IF EXISTS {db} CASCADE")
    finally:
        spark.stop()
    print()
    print("| CDRs | copy baseline, before / after the chain (s) | chain (s) | chain records/s | chain / mean copy |")
    print("|---:|---:|---:|---:|---:|")
    for size, records, copies, chain_s, _ in rows:
        print(f"| {records:,} | {copies[0]:.1f} / {copies[1]:.1f} | {chain_s:.1f} | {records / chain_s:,.0f} | "
              f"{chain_s / (sum(copies) / len(copies)):.2f} |")
    if not rows:
        return
    print()
    print("| CDRs | " + " | ".join(rows[0][4]) + " |")
    print("|---:|" + "---:|" * len(rows[0][4]))
    for _, records, _, _, steps in rows:
        print(f"| {records:,} | " + " | ".join(f"{s:.1f}" for s in steps.values()) + " |")
    if len(rows) >= 2:
        (_, r1, _, c1, _), (_, r2, _, c2, _) = rows[0], rows[-1]
        print(f"\n{r2 / r1:.1f}x the data took {c2 / c1:.2f}x the time.")


if __name__ == "__main__":
    main()
