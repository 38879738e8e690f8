"""Sub-commands of this layer (mounted into `cdr` by cdr/cli.py).

pyspark is imported inside the commands so that `cdr --help` stays fast.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Optional

import typer

from batch import STEPS

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

def spark_conf() -> dict[str, str]:
    """The batch jobs' Spark settings over the stack's shared ones; sizes from settings [batch]."""
    from cdr.settings import get_settings

    from batch.jobs import SPARK_CONF

    batch = get_settings().batch
    cluster = {} if batch.master.startswith("local") else {
        "spark.executor.memory": f"{batch.executor_memory_mb}m",
        # One executor of one core per worker; the Thrift Server keeps the other core of each.
        "spark.executor.cores": "1",
        "spark.cores.max": "2",
    }
    quiet = Path(__file__).resolve().parents[1] / "stack" / "templates" / "spark-cli-log4j2.properties"
    return {
        **SPARK_CONF,
        **cluster,
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{quiet}",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(batch.shuffle_partitions),
        "spark.driver.memory": f"{batch.driver_memory_mb}m",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.adaptive.enabled": "true",
    }


def batch_session(app_name: str):
    """The stack's shared Spark/Hive configuration, sized for a shared 2-core machine."""
    from stack.spark import session

    from cdr.settings import get_settings

    spark = session(app_name, master=get_settings().batch.master, extra_conf=spark_conf())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _zones(root: Optional[str], db_prefix: str):
    from batch.io import Zones
    from batch.preflight import check_names
    from cdr.settings import get_settings

    check_names(root, db_prefix)
    s = get_settings()
    return Zones(root=(root or f"{s.hdfs.uri}{s.hdfs.root}").rstrip("/"), db_prefix=db_prefix)


def _uri(path: str) -> str:
    return path if "://" in path else f"file://{__import__('os').path.abspath(path)}"


def _day(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        from cdr.errors import BadInput

        raise BadInput(f"{option} must be a date YYYY-MM-DD (got {value!r})") from None


def _dates(date: Optional[str], from_: Optional[str], to: Optional[str]) -> Optional[list[dt.date]]:
    """The days asked for, or None for every day of the input."""
    from cdr.errors import BadInput

    if date and (from_ or to):
        raise BadInput("give --date or --from/--to, not both")
    if date:
        return [_day(date, "--date")]
    if bool(from_) != bool(to):
        raise BadInput("--from and --to go together")
    if from_ and to:
        first, last = _day(from_, "--from"), _day(to, "--to")
        if last < first:
            raise BadInput(f"--to {last} is before --from {first}")
        return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    return None


@app.command()
def run(
    date: Optional[str] = typer.Option(None, help="One day to process (YYYY-MM-DD)."),
    from_: Optional[str] = typer.Option(None, "--from", help="First day of a range (with --to)."),
    to: Optional[str] = typer.Option(None, help="Last day of a range (inclusive)."),
    input: Optional[str] = typer.Option(
        None, "--input", help="Generated dataset or operator folder (path or URI) to land first."),
    from_bronze: bool = typer.Option(
        False, "--from-bronze", help="Land the speed layer's bronze CDRs instead (reference data as landed before)."),
    step: Optional[list[str]] = typer.Option(
        None, metavar="STEP", help="Run only this step (repeatable; they run in the chain's order): "
        + ", ".join(STEPS) + "."),
    dev_key: bool = typer.Option(
        False, "--dev-key", help="Use the public development pseudonymisation key (never in production)."),
    root: Optional[str] = typer.Option(None, help="Root URI of the zones (default: {hdfs.uri}{hdfs.root})."),
    db_prefix: str = typer.Option("", help="Prefix of the Hive databases (tests use one to stay apart)."),
) -> None:
    """Run the batch chain (or the --step ones) for the given days; every step is idempotent per day.

    Once its options are accepted, the run's outcome, duration and (on success) latest day and
    reconciled records are pushed to the Pushgateway (docs/batch.md, "Metrics pushed by the CLI")."""
    from batch import jobs
    from batch.preflight import check_input
    from cdr.errors import BadInput
    from cdr.profile import load_profile
    from cdr.pseudonym import load_key
    from cdr.pushgateway import BatchRun, push_batch_run
    from cdr.settings import get_settings

    started = time.time()
    unknown = [s for s in step or () if s not in STEPS]
    if unknown:
        raise typer.BadParameter(f"unknown step {unknown[0]!r}; steps: {', '.join(STEPS)}")
    if input and from_bronze:
        raise typer.BadParameter("give --input or --from-bronze, not both")
    asked = _dates(date, from_, to)
    zones = _zones(root, db_prefix)
    done: BatchRun | None = None
    try:
        key = load_key(allow_development=dev_key)
        spark = batch_session("cdr-batch")
        try:
            source = _uri(input) if input else get_settings().bronze_uri if from_bronze else None
            # Every input check runs before the first write: bad input leaves every zone as it was.
            if source:
                dates = check_input(spark, source, asked, reference=not from_bronze)
            else:
                dates = asked or jobs.input_dates(spark, zones.raw)
            if not dates:
                raise BadInput(f"no days to process: the raw zone {zones.raw} is empty",
                               "give --input DATASET (or --from-bronze) to land some first")
            ctx = jobs.BatchContext(spark, zones, load_profile(), key, dates, input_uri=source,
                                    reference_from_input=not from_bronze)
            jobs.run(ctx, step or ())
            done = BatchRun(started, time.time(), True, tuple(dates), _reconciled(ctx))
        finally:
            spark.stop()
    finally:  # success or failure (the exception goes on after the push)
        push_batch_run(get_settings(), done or BatchRun(started, time.time(), False))


def _reconciled(ctx) -> dict[str, int]:
    """The run's reconciled records per outcome, summed over its days: the validate step's rows, or,
    when the run did not validate (--step), the rows cdr_ops.reconciliation holds for its days."""
    from cdr.pushgateway import reconciled_records

    if ctx.reconciliation:
        return reconciled_records(ctx.reconciliation)
    table = f"{ctx.zones.db('cdr_ops')}.reconciliation"
    try:
        if not ctx.spark.catalog.tableExists(table):
            return {}
        from pyspark.sql import functions as F

        rows = ctx.spark.table(table).filter(F.col("date").isin(*ctx.dates)).select(
            "clean", "quarantined", "duplicates").collect()
    except Exception:  # monitoring never fails a run that succeeded: the counts are left out
        return {}
    return reconciled_records(r.asDict() for r in rows)


@app.command()
def score(
    labels: str = typer.Option(..., help="Dataset folder whose labels/ to score against (path or URI)."),
    dev_key: bool = typer.Option(False, "--dev-key", help="Use the public development pseudonymisation key."),
    root: Optional[str] = typer.Option(None, help="Root URI of the zones."),
    db_prefix: str = typer.Option("", help="Prefix of the Hive databases."),
    min_score: Optional[float] = typer.Option(None, help="Exit 5 if any labelled scenario's precision or recall is below this."),
) -> None:
    """Precision/recall of cdr_dw.anomalies per scenario, and labelled defects caught per code."""
    from batch.preflight import check_labels
    from batch.score import defect_report, scenario_scores
    from cdr.pseudonym import load_key
    from cdr.scoring import format_scores, require_min_score

    zones = _zones(root, db_prefix)
    key = load_key(allow_development=dev_key)
    spark = batch_session("cdr-batch-score")
    try:
        check_labels(spark, _uri(labels))
        scores = scenario_scores(spark, zones, _uri(labels), key)
        typer.echo(format_scores(scores))
        typer.echo("")
        typer.echo(defect_report(spark, zones, _uri(labels)))
    finally:
        spark.stop()
    require_min_score(scores, min_score)


@app.command()
def tables(
    root: Optional[str] = typer.Option(None, help="Root URI of the zones."),
    db_prefix: str = typer.Option("", help="Prefix of the Hive databases."),
) -> None:
    """Row count of every table of the batch layer's databases."""
    zones = _zones(root, db_prefix)
    spark = batch_session("cdr-batch-tables")
    try:
        for db in ("cdr_ops", "cdr_clean", "cdr_dw"):
            name = zones.db(db)
            if not spark.catalog.databaseExists(name):
                continue
            for table in sorted(t.name for t in spark.catalog.listTables(name)):
                typer.echo(f"{name}.{table:<28} {spark.table(f'{name}.{table}').count():>12,}")
    finally:
        spark.stop()
