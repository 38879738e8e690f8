"""Sub-commands of the speed layer, mounted into `cdr` by cdr/cli.py as three groups.

Heavy imports (Kafka clients, the generator, PyFlink) happen inside the commands so that
`cdr --help` stays fast.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from cdr.errors import BadInput, ServiceUnavailable

topics_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
produce_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
stream_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

DEFAULT_LABELS = Path("data/stream/labels-scenarios.jsonl")


# --- topics -----------------------------------------------------------------------------------


@topics_app.command("apply")
def topics_apply() -> None:
    """Create the declared topics (or align their settings); safe to run again."""
    from cdr.settings import get_settings
    from streaming.topics import apply_topics

    for name, state in apply_topics(get_settings()).items():
        typer.echo(f"{name:<24} {state}")


@topics_app.command("list")
def topics_list() -> None:
    """The declared topics as the cluster sees them (partitions, replicas, min ISR, retention)."""
    from rich.console import Console
    from rich.table import Table

    from cdr.settings import get_settings
    from streaming.topics import declared_topics, describe_topics

    settings = get_settings()
    states = {s.name: s for s in describe_topics(settings)}
    table = Table(title="Kafka topics of the speed layer")
    for col in ("topic", "partitions", "replicas", "min ISR", "retention h", "under-replicated"):
        table.add_column(col, justify="left" if col == "topic" else "right")
    for spec in declared_topics(settings):
        s = states.get(spec.name)
        if s is None:
            table.add_row(spec.name, "missing (run cdr topics apply)", "", "", "", "")
        else:
            table.add_row(s.name, str(s.partitions), str(s.replication_factor), s.min_insync_replicas,
                          f"{s.retention_hours:g}", str(s.under_replicated))
    Console().print(table)


# --- producer ---------------------------------------------------------------------------------


def _scenarios(value: str) -> tuple[str, ...]:
    from generator.cli import _parse_scenarios

    return _parse_scenarios(value)


def _day(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadInput(f"{option} must be a date YYYY-MM-DD (got {value!r})") from None


def _event_time_us(value: str, option: str) -> int:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadInput(f"{option} must be a time YYYY-MM-DDTHH:MM (UTC) (got {value!r})") from None
    return int(moment.replace(tzinfo=moment.tzinfo or dt.UTC).timestamp() * 1_000_000)


def _positive(value: float | None, option: str, what: str) -> None:
    if value is not None and not 0 < value < float("inf"):
        raise BadInput(f"{option} must be a positive number of {what} (got {value:g})")


def _require_port(service: str, host: str, port: int, setting: str) -> None:
    from stack.probes import require_port

    env = "CDR_" + setting.upper().replace(".", "__")
    require_port(service, host, port, f"is the stack up? (cdr stack status); the port is {setting} ({env})")


@produce_app.callback(invoke_without_command=True)
def produce(
    ctx: typer.Context,
    rate: float = typer.Option(None, help="Target records per second (held within ±5 %); none: as fast as possible."),
    duration: float = typer.Option(None, help="Stop after this many seconds."),
    count: int = typer.Option(None, help="Stop after this many records."),
    scenarios: str = typer.Option("all", help="Scenarios to inject: all, none, or a comma-separated list."),
    clock: str = typer.Option("none", help="Pace by event time too: realtime or accelerated:X (X event seconds per second)."),
    from_dataset: Path = typer.Option(None, "--from-dataset", help="Replay a dataset written by cdr generate."),
    subscribers: int = typer.Option(20_000, help="Live mode: population size."),
    days: int = typer.Option(7, help="Live mode: days of traffic to generate at most."),
    until: str = typer.Option(None, help="Stop before this event time (YYYY-MM-DDTHH:MM, UTC): e.g. an hour past "
                                         "the last day, so that the jobs close every window of that day."),
    start: str = typer.Option("2025-12-28", help="Live mode: first day (YYYY-MM-DD)."),
    seed: int = typer.Option(42, help="Live mode: master seed."),
    defect_rate: float = typer.Option(0.0, help="Live mode: share of records given a data-quality defect."),
    labels_out: Path = typer.Option(DEFAULT_LABELS, help="Where to write the labels of the scenarios streamed."),
    metrics: bool = typer.Option(True, help="Serve Prometheus metrics on producer.metrics_port."),
) -> None:
    """Stream CDRs from the generator engine (or a dataset) into the CDR topics.

    Exits 0 only when Kafka acknowledged every record sent; 3 when no broker answers within
    kafka.connect_timeout_s (nothing sent); 4 when any record was not acknowledged."""
    if ctx.invoked_subcommand is not None:
        return
    import signal
    import threading

    from rich.console import Console
    from rich.live import Live

    from cdr.settings import get_settings
    from streaming.producer import Metrics, Pacing, make_producer, prefetch, require_delivered, send
    from streaming.source import TYPES, DatasetSource, LiveOptions, LiveSource, streamed_labels, write_labels
    from streaming.source import until as until_event
    from streaming.topics import cdr_topics

    # Input first (exit 2), then the cluster (exit 3), then the slow part: building the population.
    _positive(rate, "--rate", "records per second")
    _positive(duration, "--duration", "seconds")
    if count is not None and count < 1:
        raise BadInput(f"--count must be at least 1 (got {count})")
    try:
        pacing = Pacing(rate, Pacing.parse_clock(clock))
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    end_us = _event_time_us(until, "--until") if until else None
    settings = get_settings()
    topics = cdr_topics(settings)  # BadInput naming the setting of a name Kafka would refuse
    options = None
    if from_dataset is not None:
        source = DatasetSource(from_dataset)
    else:
        options = LiveOptions(subscribers=subscribers, start=_day(start, "--start"), days=days, seed=seed,
                              scenarios=_scenarios(scenarios), defect_rate=defect_rate)
        options.generate_options()  # checks the generator's arguments
    producer = make_producer(settings, topics=[topics[rt] for rt in TYPES])
    # Registered as the local stack's Prometheus target while it serves, unregistered however this ends.
    with Metrics(settings.producer.metrics_port if metrics else None, settings) as m:
        if options is not None:
            source = LiveSource(options)
        console = Console(stderr=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with Live(console=console, transient=False, refresh_per_second=4) as live:
            def tick(p) -> None:
                event = dt.datetime.fromtimestamp(p.last_event_us / 1e6, dt.UTC).strftime("%Y-%m-%d %H:%M") \
                    if p.last_event_us else "-"
                live.update(f"sent {p.sent:,} · {p.rate:,.0f}/s · acknowledged {p.delivered:,} · "
                            f"errors {p.errors:,} · event time {event}")
            batches = source.batches() if end_us is None else until_event(source.batches(), end_us)
            prog = send(settings, prefetch(batches), pacing, count=count, duration_s=duration,
                        metrics=m, on_tick=tick, stop=stop, producer=producer)
    labels = streamed_labels(source.labels, prog.last_event_us)
    write_labels(labels, labels_out)
    console.print(f"{prog.delivered:,} of {prog.sent:,} records acknowledged in {prog.elapsed:.1f} s "
                  f"({prog.acknowledged_rate:,.0f}/s acknowledged), {prog.errors:,} not delivered; "
                  f"{labels.num_rows} scenario labels -> {labels_out}")
    require_delivered(prog)


@produce_app.command("subscribers")
def produce_subscribers(
    from_dataset: Path = typer.Option(None, "--from-dataset", help="Subscribers of a generated dataset."),
    subscribers: int = typer.Option(20_000, help="Live mode: population size."),
    start: str = typer.Option("2025-12-28", help="Live mode: population date."),
    seed: int = typer.Option(42, help="Live mode: master seed."),
) -> None:
    """Publish the subscriber profiles, keyed by MSISDN.

    Exits 0 only when Kafka acknowledged every profile; 3 when no broker answers; 4 when any
    profile was not acknowledged."""
    from cdr.settings import get_settings
    from streaming.producer import make_producer, require_delivered, send_subscribers
    from streaming.topics import check_topic_names

    settings = get_settings()
    check_topic_names(settings)
    if from_dataset is not None:
        from streaming.source import DatasetSource

        table = DatasetSource(from_dataset).subscribers
        producer = make_producer(settings, topics=[settings.topics.subscribers])
    else:
        from cdr.profile import load_profile
        from generator.population import build_population

        day = _day(start, "--start")
        if subscribers < 100:
            raise BadInput(f"--subscribers must be at least 100 (got {subscribers})")
        producer = make_producer(settings, topics=[settings.topics.subscribers])
        table = build_population(load_profile("algeria"), subscribers, day, seed).table
    prog = send_subscribers(settings, table, producer=producer)
    typer.echo(f"{prog.delivered:,} of {prog.sent:,} subscriber profiles acknowledged in {prog.elapsed:.1f} s, "
               f"{prog.errors:,} not delivered")
    require_delivered(prog, "subscriber profiles")


# --- Flink jobs -------------------------------------------------------------------------------

DEFAULT_CELLS = Path("data/stream/cells.parquet")


JOB_NAMES = ("bronze", "detection")


def _jobs_option(help_text: str):
    return typer.Option(list(JOB_NAMES), "--job", help=f"{help_text} ({', '.join(JOB_NAMES)}); repeat for several.")


def _check_jobs(jobs_: list[str]) -> list[str]:
    unknown = sorted(set(jobs_) - set(JOB_NAMES))
    if unknown:
        raise BadInput(f"--job: unknown job {', '.join(unknown)}", f"known jobs: {', '.join(JOB_NAMES)}")
    return [j for j in JOB_NAMES if j in jobs_]


@stream_app.command("start")
def stream_start(
    job: list[str] = _jobs_option("Jobs to start"),
    dev_key: bool = typer.Option(False, "--dev-key", help="Use the development pseudonymisation key (never in production)."),
    from_dataset: Path = typer.Option(None, "--from-dataset", help="Take the cell reference from this dataset."),
    subscribers: int = typer.Option(20_000, help="Live mode: population size the producer uses (for the cell reference)."),
    seed: int = typer.Option(42, help="Live mode: master seed the producer uses."),
    parallelism: int = typer.Option(1, help="Flink parallelism (1-2 on a shared 2-core machine)."),
    fresh: bool = typer.Option(False, help="Ignore the last savepoint or checkpoint and the committed offsets: read the topics from the start."),
    allow_state_loss: bool = typer.Option(False, "--allow-state-loss", help="Resume even if the job's plan changed and part of its saved state no longer maps onto it (that state is dropped)."),
) -> None:
    """Submit the speed layer's jobs to the Flink session cluster: bronze landing (every topic to
    Parquet on HDFS) and detection (alerts, live KPIs, dead letters). A job resumes from its last
    savepoint or checkpoint; if its plan changed so that some of that state would be lost, it is
    not started unless --allow-state-loss says so."""
    from cdr.settings import get_settings
    from streaming import jobs
    from streaming.topics import check_topic_names

    if parallelism < 1:
        raise BadInput(f"--parallelism must be at least 1 (got {parallelism})")
    settings = get_settings()
    check_topic_names(settings)  # the jobs paste them into SQL
    for name in _check_jobs(job):
        key = cells_path = None
        if jobs.JOBS[name].pseudonymises:
            key, cells_path = _detection_inputs(dev_key, from_dataset, subscribers, seed)
        state = jobs.start(settings, name, key, cells_path, parallelism=parallelism, fresh=fresh,
                           allow_state_loss=allow_state_loss)
        typer.echo(f"{state.name} {state.state} (job {state.job_id}); UI http://127.0.0.1:{settings.flink.rest_port}")


def _detection_inputs(dev_key: bool, from_dataset: Path | None, subscribers: int, seed: int) -> tuple[bytes, Path]:
    """The pseudonymisation key and the cell reference file of the detection job."""
    from cdr.profile import load_profile
    from cdr.pseudonym import load_key
    from streaming import jobs

    key = load_key(allow_development=dev_key)
    if from_dataset is not None:
        import pyarrow.dataset as ds

        cells = ds.dataset(from_dataset / "cells", format="parquet").to_table()
    else:
        from generator.population import build_population
        from streaming.source import LiveOptions

        cells = build_population(load_profile("algeria"), subscribers, LiveOptions.start, seed).cells.table
    return key, jobs.write_cells(cells, DEFAULT_CELLS.resolve(), int(load_profile("algeria").cells["neighbours"]))


@stream_app.command("stop")
def stream_stop(
    job: list[str] = _jobs_option("Jobs to stop"),
    cancel: bool = typer.Option(False, help="Cancel without a savepoint."),
) -> None:
    """Stop the jobs with a savepoint (the next start resumes from it)."""
    from cdr.settings import get_settings
    from streaming import jobs

    for name in _check_jobs(job):
        location = jobs.stop(get_settings(), name, savepoint=not cancel)
        typer.echo(f"{name}: " + (f"stopped; savepoint {location}" if location else "stopped (not running, or cancelled)"))


@stream_app.command("reset")
def stream_reset(
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Start the speed layer from nothing: cancel its jobs, forget their savepoints, empty the
    topics (deleted and re-created), the alerts and KPI tables, and delete the bronze landing."""
    from cdr.settings import get_settings
    from streaming import bronze_tables, jobs
    from streaming.topics import apply_topics, check_topic_names, delete_topics

    settings = get_settings()
    check_topic_names(settings)  # before anything is cancelled or deleted
    if not yes:
        typer.confirm(f"Delete every message in the {settings.topics.prefix}* topics, the alerts and KPIs in "
                      f"PostgreSQL and the bronze files under {settings.bronze_uri}?", abort=True)
    for name in JOB_NAMES:
        jobs.stop(settings, name, savepoint=False)
    jobs.forget_savepoints(settings)
    deleted = delete_topics(settings)
    apply_topics(settings)
    jobs.truncate_serving_tables(settings)
    bronze_tables.remove(settings)
    typer.echo(f"speed layer reset: jobs cancelled, {len(deleted)} topics emptied, "
               f"{', '.join(jobs.SERVING_TABLES)} truncated, bronze landing deleted")


@stream_app.command("tables")
def stream_tables(
    counts: bool = typer.Option(True, help="Print each bronze table's row count."),
    wait: float = typer.Option(0, help="First wait up to this many seconds for the bronze job to land everything produced so far."),
) -> None:
    """Register the bronze Hive tables (one per topic, view bronze_cdr) and pick up new date partitions."""
    from cdr.settings import get_settings
    from streaming import jobs
    from streaming.bronze_tables import register, row_counts

    settings = get_settings()
    if wait < 0:
        raise BadInput(f"--wait must not be negative (got {wait:g})")
    _require_port("the Spark Thrift Server", settings.stack.bind_ip, settings.hive.thrift_port, "hive.thrift_port")
    if wait and not jobs.wait_caught_up(settings, "bronze", wait):
        typer.echo(f"the bronze job has not caught up after {wait:.0f} s (or is not running): counts are partial")
    register(settings)
    typer.echo(f"bronze tables registered in {settings.bronze.database} over {settings.bronze_uri}")
    if counts:
        for table, n in row_counts(settings).items():
            typer.echo(f"  {settings.bronze.database}.{table:<20} {n:>12,} rows")


@stream_app.command("compact")
def stream_compact(
    target_mb: int = typer.Option(0, help="Size of the merged files, MiB (default: the setting bronze.compaction_target_mb)."),
) -> None:
    """Merge the bronze landing's small committed files, date folder by date folder, beside the
    running job; a merged file must hold as many rows as the files it replaces before they are deleted."""
    import fcntl

    from cdr.settings import get_settings

    settings = get_settings()
    if target_mb < 0:
        raise BadInput(f"--target-mb must not be negative (got {target_mb})")
    target = (target_mb or settings.bronze.compaction_target_mb) * 1024 * 1024
    # Before Spark starts (seconds) and its HDFS client retries (a minute): the NameNode must answer.
    _require_port("the HDFS NameNode", "127.0.0.1", settings.hdfs.namenode_rpc_port, "hdfs.namenode_rpc_port")

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from batch.cli import batch_session
    from streaming import bronze_tables, compaction

    lock_path = settings.stack.home_dir / "bronze-compaction.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        try:  # a second run would take the first one's staged files for a crashed run's
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ServiceUnavailable("another `cdr stream compact` is running",
                                     f"wait for it to finish (it holds {lock_path})") from None
        spark = batch_session("cdr-bronze-compaction")  # the stack's Spark, as the batch layer's
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        try:
            with Progress(*columns, transient=True) as progress:
                task = progress.add_task("merging", total=None)
                report = compaction.compact(spark, settings, target,
                                            on_plan=lambda n: progress.update(task, total=n),
                                            on_merge=lambda _: progress.advance(task))
        finally:
            spark.stop()
    if report.recovered:
        typer.echo(f"finished {report.recovered} merge(s) a crashed run had left")
    results = report.merges
    if not results:
        typer.echo(f"nothing to compact under {settings.bronze_uri}")
        return
    tables = sorted({r.merge.table for r in results})
    for table in tables:
        mine = [r for r in results if r.merge.table == table]
        files = sum(len(r.merge.files) for r in mine)
        typer.echo(f"  {table:<20} {len({r.merge.folder for r in mine})} date folder(s): {files:,} files -> "
                   f"{len(mine)}, {sum(r.rows for r in mine):,} rows")
    try:
        bronze_tables.refresh(settings, tables)
    except Exception as exc:  # the files are compacted; only the Thrift server's listing is stale
        typer.echo(f"compacted, but the Hive tables were not refreshed ({exc}); run `cdr stream tables`")


@stream_app.command("status")
def stream_status() -> None:
    """The speed layer's jobs on the cluster, with records valid and dead-lettered (and the dead
    letters per reason), and the records the detection job's windows dropped as late."""
    from cdr.settings import get_settings
    from streaming import jobs

    settings = get_settings()
    latest: dict = {}
    for j in jobs.list_jobs(settings):  # the cluster remembers finished runs too: show each job's newest
        if j.name not in latest or j.start_time_ms > latest[j.name].start_time_ms:
            latest[j.name] = j
    found = sorted(latest.values(), key=lambda j: j.name)
    if not found:
        typer.echo("no speed-layer job on the cluster (cdr stream start)")
    for j in found:
        line = f"{j.name:<16} {j.state:<10} {j.job_id}"
        if j.state == "RUNNING":
            counters = jobs.job_counters(settings, j.job_id)
            line += "  " + " · ".join(f"{k} {int(sum(v.values())):,}" for k, v in sorted(counters.items()))
            reasons = counters.get("records_dead_lettered", {})
            if reasons:
                line += "\n  dead letters per reason: " + ", ".join(
                    f"{code} {int(n):,}" for code, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
        typer.echo(line)
    for name, spec in jobs.JOBS.items():
        if not any(j.name == spec.name and j.state == "RUNNING" for j in found):
            point = jobs.resume_point(settings, name)
            typer.echo(f"{spec.name:<16} next start resumes from {point or 'its committed Kafka offsets (none: the start of the topics)'}")
    late = jobs.late_records(settings)
    if late:
        per_day: dict = {}
        for day, record_type, n in late:
            per_day.setdefault(day, []).append(f"{record_type} {n:,}")
        typer.echo(f"records dropped as late by the detection job's windows: {sum(n for *_, n in late):,} "
                   "(in no KPI or alert; docs/streaming.md, Late records)")
        for day, counts in per_day.items():
            typer.echo(f"  {day}: {', '.join(counts)}")
    else:
        typer.echo("records dropped as late by the detection job's windows: none")


@stream_app.command("score")
def stream_score(
    labels: Path = typer.Option(DEFAULT_LABELS, help="Scenario labels: the producer's file, or a dataset's labels/scenarios."),
    dev_key: bool = typer.Option(False, "--dev-key", help="Use the development pseudonymisation key."),
    min_score: float = typer.Option(None, help="Exit 5 if any scenario's precision or recall is below this."),
    wait: float = typer.Option(0, help="Seconds to wait for the job to find every labelled scenario (it may lag the producer)."),
) -> None:
    """Precision and recall per scenario of the alerts in PostgreSQL against injected scenarios."""
    import time

    from cdr.pseudonym import load_key, pseudonymise
    from cdr.scoring import format_scores, require_min_score, score
    from cdr.settings import get_settings
    from streaming.alerts import read_alerts, read_labels

    if wait < 0:
        raise BadInput(f"--wait must not be negative (got {wait:g})")
    truth = read_labels(labels)  # the input first: BadInput naming the file and line
    key = load_key(allow_development=dev_key)
    deadline = time.monotonic() + wait
    while True:
        scores = score(read_alerts(get_settings()), truth, lambda v: pseudonymise(v, key))
        if all(s.recall >= 1.0 for s in scores) or time.monotonic() >= deadline:
            break
        time.sleep(5)
    typer.echo(f"{len(truth)} scenarios injected; alerts found against them:")
    typer.echo(format_scores(scores))
    require_min_score(scores, min_score)
