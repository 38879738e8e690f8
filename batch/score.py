"""Scoring the batch layer against a generated dataset's labels (``cdr batch score``)."""

from __future__ import annotations

import datetime as dt
import json

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdr.contract import LABEL_TYPES, spark_schema
from cdr.pseudonym import pseudonymise
from cdr.scoring import Detection, Score, score

from batch import io

UTC = dt.timezone.utc


def read_labels(spark: SparkSession, dataset: str, name: str) -> DataFrame:
    manifest = json.loads(spark.read.text(f"{dataset}/manifest.json", wholetext=True).first()[0])
    fmt = manifest["format"]
    path = f"{dataset}/labels/{name}.{fmt}"
    reader = spark.read.schema(spark_schema(LABEL_TYPES[name]))
    if fmt == "parquet":
        return reader.parquet(path)
    if fmt == "csv":
        return reader.option("header", "true").csv(path)
    return reader.json(path)


def _utc(ts: dt.datetime) -> dt.datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


def scenario_scores(spark: SparkSession, zones: io.Zones, dataset: str, key: bytes) -> list[Score]:
    labels = [dict(r.asDict(), start_time=_utc(r["start_time"]), end_time=_utc(r["end_time"]))
              for r in read_labels(spark, dataset, "scenarios").collect()]
    first = min(lab["start_time"] for lab in labels).date() if labels else dt.date.min
    last = max(lab["end_time"] for lab in labels).date() if labels else dt.date.max
    found = spark.table(f"{zones.db('cdr_dw')}.anomalies").filter(F.col("date").between(first, last)).collect()
    detections = [Detection(r["scenario"], r["entity_id"], _utc(r["window_start"]), _utc(r["window_end"]))
                  for r in found]
    return score(detections, labels, lambda value: pseudonymise(value, key))


def _on_dataset_days(spark: SparkSession, zones: io.Zones, table: str, dataset: str) -> DataFrame:
    """The rows of a cdr_ops table for the days the dataset holds: the warehouse may hold other
    days (other datasets, the speed layer's bronze), whose records the labels do not describe."""
    from batch.jobs import input_dates

    return spark.table(f"{zones.db('cdr_ops')}.{table}").filter(F.col("date").isin(*input_dates(spark, dataset)))


def defect_catch(spark: SparkSession, zones: io.Zones, dataset: str) -> DataFrame:
    """Per labelled defect code: labelled, caught with that code, caught with any code."""
    labels = read_labels(spark, dataset, "defects")
    quarantine = _on_dataset_days(spark, zones, "quarantine", dataset).select("record_id", "rule_code").distinct()
    joined = labels.join(quarantine, "record_id", "left")
    return (joined.groupBy("defect").agg(
        F.countDistinct("record_id").alias("labelled"),
        F.countDistinct(F.when(F.col("rule_code") == F.col("defect"), F.col("record_id"))).alias("caught_same_code"),
        F.countDistinct(F.when(F.col("rule_code").isNotNull(), F.col("record_id"))).alias("caught"))
        .orderBy("defect"))


def false_quarantine(spark: SparkSession, zones: io.Zones, dataset: str) -> tuple[int, int]:
    """(quarantined records without a defect label, clean records) of the dataset's days: the goal
    is < 0.1 %."""
    labels = read_labels(spark, dataset, "defects").select("record_id")
    quarantine = _on_dataset_days(spark, zones, "quarantine", dataset).filter(F.col("record_id").isNotNull())
    unlabelled = quarantine.join(labels, "record_id", "left_anti").count()
    clean = _on_dataset_days(spark, zones, "reconciliation", dataset).agg(F.sum("clean")).first()[0] or 0
    return unlabelled, clean


def defect_report(spark: SparkSession, zones: io.Zones, dataset: str) -> str:
    rows = defect_catch(spark, zones, dataset).collect()
    lines = [f"{'defect':<20} {'labelled':>8} {'caught':>7} {'same code':>9} {'rate':>6}"]
    total = caught = 0
    for r in rows:
        total += r["labelled"]
        caught += r["caught"]
        lines.append(f"{r['defect']:<20} {r['labelled']:>8} {r['caught']:>7} {r['caught_same_code']:>9} "
                     f"{r['caught'] / r['labelled']:>6.1%}")
    lines.append(f"{'all':<20} {total:>8} {caught:>7} {'':>9} {(caught / total if total else 1):>6.1%}")
    unlabelled, clean = false_quarantine(spark, zones, dataset)
    lines.append(f"clean records quarantined without a label: {unlabelled} of {clean} "
                 f"({(unlabelled / clean if clean else 0):.4%})")
    recon = _on_dataset_days(spark, zones, "reconciliation", dataset).agg(
        F.sum("records_in"), F.sum("clean"), F.sum("quarantined"), F.sum("duplicates"),
        F.min(F.col("balanced").cast("int"))).first()
    lines.append(f"reconciliation: in {recon[0]} = clean {recon[1]} + quarantined {recon[2]} + duplicates {recon[3]}"
                 f" ({'balanced' if recon[4] == 1 else 'NOT BALANCED'})")
    return "\n".join(lines)
