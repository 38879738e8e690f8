"""The detection job: Kafka -> validate (shared rules, in SQL) -> alerts, live KPIs, dead letters.

Every message is parsed by Flink's JSON format and validated, enriched and aggregated in Java;
Python sees only alerts (to pseudonymise and count them) and per-second counts. Messages that
are not JSON objects come from a raw twin of the source and go to the dead-letter topic.

Run by ``cdr stream start`` through ``flink run -py`` on the stack's session cluster, after the
client has loaded the cell reference into PostgreSQL. The pseudonymisation key comes in a 0600
file the client writes and this script deletes once read into the UDF (``--key-file``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyflink.table import DataTypes, TableEnvironment
from pyflink.table.udf import udf

REPO_ROOT = Path(__file__).resolve().parents[2]
JOB_NAME = "cdr-detection"
COUNT_WINDOW = "INTERVAL '1' SECOND"  # how often the records counters move (processing time)
LATE_COUNT_WINDOW = "INTERVAL '10' SECOND"  # how often late records are counted into late_records


def build(t_env: TableEnvironment, key: bytes, group_id: str, profile_name: str = "algeria") -> None:
    from cdr.profile import load_profile
    from cdr.settings import get_settings
    from streaming.flink import ddl
    from streaming.flink.events import event_columns
    from streaming.flink.rules import alerts, detect, kpis_per_cell, kpis_per_service
    from streaming.flink.udfs import CountRecords, PublishEntity
    from streaming.flink.validation import (cdr_fields, code_of, field_of, reason, typed_column, typed_columns,
                                            unreadable_code, unreadable_sql, violation)
    from streaming.topics import cdr_topic_names

    settings, profile = get_settings(), load_profile(profile_name)
    topics = cdr_topic_names(settings)
    for statement in (
        ddl.json_kafka_table(settings, "cdr_messages", topics, group_id),
        # Its own consumer group: two sources committing one group's offsets would overwrite each other.
        ddl.raw_kafka_table(settings, "cdr_raw_messages", topics, f"{group_id}-unreadable",
                            extra=",\n  proc_time AS PROCTIME()"),
        ddl.cell_reference_table(settings), ddl.dead_letter_sink(settings), ddl.alerts_sink(settings),
        ddl.kpi_cell_sink(settings), ddl.kpi_service_sink(settings), ddl.late_records_sink(settings),
        "CREATE TABLE record_counts (outcome STRING, code STRING, n BIGINT) WITH ('connector' = 'blackhole')",
    ):
        t_env.execute_sql(statement)
    t_env.create_temporary_function("publish_entity", udf(PublishEntity(key), result_type=DataTypes.STRING()))
    t_env.create_temporary_function("count_records", udf(CountRecords(), result_type=DataTypes.BIGINT()))

    # Typed once, before the lookup join, so the rules read columns instead of re-typing text.
    t_env.create_temporary_view("typed_messages", t_env.sql_query(f"SELECT *, {typed_columns(profile)} FROM cdr_messages"))
    t_env.create_temporary_view("checked", t_env.sql_query(f"""
SELECT m.*, {violation(profile)} AS violation FROM (
  SELECT m.*, c.cell_id IS NOT NULL AS known_cell, c.latitude, c.longitude, c.reach_km
  FROM typed_messages AS m
  LEFT JOIN cell_reference FOR SYSTEM_TIME AS OF m.proc_time AS c ON m.cell_id = c.cell_id) AS m"""))
    t_env.create_temporary_view("unreadable_messages", t_env.sql_query(
        f"SELECT * FROM cdr_raw_messages WHERE {unreadable_sql('payload')}"))
    events = t_env.sql_query(f"SELECT event_time,\n  {event_columns(profile)}\nFROM checked WHERE violation IS NULL")
    # A readable message's payload is re-serialised from its contract fields (values as text); the
    # original bytes stay at source_topic/partition/offset for the topic's retention.
    rebuilt = "JSON_OBJECT(" + ", ".join(f"KEY '{f}' VALUE `{f}`" for f in cdr_fields()) + " ABSENT ON NULL)"
    t_env.create_temporary_view("dead_letters", t_env.sql_query(f"""
SELECT topic, `partition`, `offset`, code, field, {reason('code', 'field')} AS reason, payload, proc_time FROM (
  SELECT topic, `partition`, `offset`, {code_of('violation')} AS code, {field_of('violation')} AS field,
         {rebuilt} AS payload, proc_time
  FROM checked WHERE violation IS NOT NULL
  UNION ALL
  SELECT topic, `partition`, `offset`, {unreadable_code('payload')} AS code, CAST(NULL AS STRING) AS field,
         payload, proc_time
  FROM unreadable_messages)"""))

    statements = t_env.create_statement_set()
    findings = detect(t_env, events)
    statements.add_insert("alerts_sink", alerts(t_env, findings, "publish_entity(scenario, entity_type, entity_id)"))
    statements.add_insert("kpi_cell_sink", kpis_per_cell(t_env, events))
    statements.add_insert("kpi_service_sink", kpis_per_service(t_env, events))
    statements.add_insert("dead_letter", t_env.sql_query(
        "SELECT topic, `partition`, `offset`, code, field, reason, payload, CURRENT_TIMESTAMP FROM dead_letters"))
    # Valid records whose minute had closed when they arrived (a window fires once the watermark
    # reaches its last millisecond): every window of the job drops them, silently. Counted here,
    # before the exchange to the windows, against the watermark this operator has seen: exact at
    # parallelism 1, an upper bound above it (a window's watermark is the least of its inputs').
    t_env.create_temporary_view("late_events", t_env.sql_query(f"""
SELECT CAST(event_time AS DATE) AS event_day, {typed_column('record_type')} AS record_type, proc_time FROM checked
WHERE violation IS NULL AND CURRENT_WATERMARK(event_time) IS NOT NULL
  AND FLOOR(event_time TO MINUTE) + INTERVAL '1' MINUTE - INTERVAL '0.001' SECOND <= CURRENT_WATERMARK(event_time)"""))
    statements.add_insert("late_records_sink", t_env.sql_query(f"""
SELECT window_end, event_day, record_type, COUNT(*)
FROM TABLE(TUMBLE(TABLE late_events, DESCRIPTOR(proc_time), {LATE_COUNT_WINDOW}))
GROUP BY window_start, window_end, event_day, record_type"""))
    # A dead letter is counted under its rule code (NULL for a valid message): a handful of codes,
    # so still a few rows a second reach Python. Valid records dated too far ahead of their Kafka
    # timestamp to move the event clock are counted too (they are valid, and counted as such as well).
    t_env.create_temporary_view("outcomes", t_env.sql_query(f"""
SELECT CASE WHEN violation IS NULL THEN 'valid' ELSE 'dead_lettered' END AS outcome, {code_of('violation')} AS code,
       proc_time FROM checked
UNION ALL
SELECT 'dead_lettered' AS outcome, {unreadable_code('payload')} AS code, proc_time FROM unreadable_messages
UNION ALL
SELECT 'ahead_of_clock' AS outcome, CAST(NULL AS STRING) AS code, proc_time FROM checked
WHERE violation IS NULL AND {ddl.ahead_of_clock_sql()}"""))
    statements.add_insert("record_counts", t_env.sql_query(f"""
SELECT outcome, code, count_records(outcome, code, COUNT(*))
FROM TABLE(TUMBLE(TABLE outcomes, DESCRIPTOR(proc_time), {COUNT_WINDOW}))
GROUP BY outcome, code, window_start, window_end"""))
    statements.execute()


def stage_packages(target: Path) -> Path:
    """A directory holding only our packages, shipped to the Python workers. (Shipping a package
    directory itself would put its modules at top level, where cdr/profile.py shadows the
    standard library's profile module.)"""
    import shutil

    shutil.rmtree(target, ignore_errors=True)
    for package in ("cdr", "streaming"):
        shutil.copytree(REPO_ROOT / package, target / package, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog=JOB_NAME)
    parser.add_argument("--key-file", required=True)
    parser.add_argument("--group-id", default=JOB_NAME)
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument("--checkpoint-interval", required=True, help="e.g. '10 s' (settings: checkpoint_interval_s)")
    parser.add_argument("--idle-timeout", default="60 s", help="e.g. '60 s' (settings: source_idle_timeout_s)")
    args = parser.parse_args(argv)
    key_file = Path(args.key_file)
    key = key_file.read_bytes()
    key_file.unlink(missing_ok=True)

    from streaming.flink import streaming_environment

    t_env = streaming_environment(JOB_NAME, args.parallelism, args.checkpoint_interval, **{
        # How long an empty partition holds the watermark back: settings [detection] source_idle_timeout_s.
        "table.exec.source.idle-timeout": args.idle_timeout,
        # Python sees a few rows a second (alerts, counts): flush them at once.
        "python.fn-execution.bundle.time": "100",
        # An alert crosses several exchanges (source -> window aggregations -> alerts -> Python ->
        # sink), each holding a part-filled network buffer up to this long; at the default 100 ms
        # the alert latency p95 at 10,000 records/s was 3.9-12 s, at 10 ms 0.6-1.0 s, with no loss
        # of drain rate (docs/benchmarks.md, "Alert latency in the steady state").
        "execution.buffer-timeout.interval": "10 ms",
        # SQL operators do not hold on to the rows they emit: chained operators can share them
        # instead of copying every wide message row once per consumer (a quarter of the CPU).
        "pipeline.object-reuse": "true",
    })
    t_env.add_python_file(str(stage_packages(Path(args.key_file).parent / "cdr-python")))
    build(t_env, key, args.group_id)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT))
    main(sys.argv[1:])
