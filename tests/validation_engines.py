"""The shared validation rules run by each engine over the same JSON lines (tests only).

* Python: ``cdr.validation.check_line``, the reference.
* Spark: the batch layer's reader and tagger (``batch.read.read_cdr``, ``batch.validate.tag_records``)
  over JSON Lines files, one per record type, as the generator writes them.
* Flink: the detection job's column declarations, typing and verdict SQL
  (``streaming.flink.validation``) over the lines as messages, in Flink batch mode, in the Flink
  venv (a subprocess): the JSON table gives the readable messages' verdicts, the raw twin classifies
  the others, as in the job.

A verdict is ``(code, field)``, ``(None, None)`` for a valid record.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

from cdr.contract import RECORD_TYPES
from cdr.profile import load_profile
from cdr.settings import REPO_ROOT, get_settings
from cdr.validation import Context, check_line

FLINK_PYTHON = get_settings().flink.venv_dir / "bin" / "python"
LINE_KEY = "_line"  # an unknown key (ignored by every engine) the corpora put first in each object

Verdict = tuple[str | None, str | None]

FLINK_SCRIPT = r'''
import json, sys
from pyflink.table import EnvironmentSettings, TableEnvironment, DataTypes
from cdr.profile import load_profile
from streaming.flink.events import event_columns
from streaming.flink.schema import EVENT_NAMES
from streaming.flink.validation import (cdr_fields, code_of, field_of, reason, typed_columns, unreadable_code,
                                        unreadable_sql, violation)

folder, cells, out_dir, now, line_key = sys.argv[1], json.loads(open(sys.argv[2]).read()), sys.argv[3], sys.argv[4], sys.argv[5]
profile = load_profile()
env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
env.get_config().set("table.local-time-zone", "UTC")
env.get_config().set("parallelism.default", "1")
columns = ", ".join(f"`{f}` STRING" for f in cdr_fields())
env.execute_sql(f"""CREATE TABLE messages ({columns}, `{line_key}` STRING) WITH ('connector' = 'filesystem',
  'path' = '{folder}', 'format' = 'json', 'json.ignore-parse-errors' = 'true', 'json.fail-on-missing-field' = 'false')""")
env.execute_sql(f"""CREATE TABLE raw_messages (payload STRING) WITH ('connector' = 'filesystem', 'path' = '{folder}',
  'format' = 'raw')""")
env.create_temporary_view("cells", env.from_elements(
    [tuple(c) for c in cells], DataTypes.ROW([DataTypes.FIELD(n, t) for n, t in [
        ("ref_cell", DataTypes.STRING()), ("latitude", DataTypes.DOUBLE()), ("longitude", DataTypes.DOUBLE()),
        ("reach_km", DataTypes.DOUBLE())]])))
# As in the job: the verdict is computed once in a view that several sinks read (a block boundary
# for the planner, so the outputs read it as a column instead of re-expanding it).
env.create_temporary_view("checked", env.sql_query(f"""
SELECT m.*, {violation(profile, now=f"TIMESTAMP '{now}'")} AS violation FROM (
  SELECT m.*, {typed_columns(profile)}, c.ref_cell IS NOT NULL AS known_cell, c.latitude, c.longitude, c.reach_km
  FROM messages AS m LEFT JOIN cells AS c ON m.cell_id = c.ref_cell) AS m"""))
sinks = {
    "verdicts": (f"record_id STRING, `{line_key}` STRING, code STRING, field STRING, reason STRING",
                 f"SELECT record_id, `{line_key}`, code, field, {reason('code', 'field')} FROM ("
                 f"SELECT record_id, `{line_key}`, {code_of('violation')} AS code, {field_of('violation')} AS field "
                 "FROM checked)"),
    "events": ("record_id STRING, " + ", ".join(f"{n} STRING" for n in EVENT_NAMES),
               "SELECT record_id, " + ", ".join(f"CAST({n} AS STRING)" for n in EVENT_NAMES)
               + f" FROM (SELECT record_id, {event_columns(profile)} FROM checked WHERE violation IS NULL)"),
    "unreadable": ("code STRING, payload STRING",
                   f"SELECT {unreadable_code('payload')}, payload FROM raw_messages WHERE {unreadable_sql('payload')}"),
}
statements = env.create_statement_set()
for name, (schema, query) in sinks.items():
    env.execute_sql(f"CREATE TABLE {name}_out ({schema}) WITH ('connector' = 'filesystem', "
                    f"'path' = '{out_dir}/{name}', 'format' = 'json')")
    statements.add_insert_sql(f"INSERT INTO {name}_out {query}")
statements.execute().wait()
'''


def run_flink(lines: Iterable[str], cells: list[tuple[str, float, float, float]], now: dt.datetime,
              work: Path) -> dict[str, list[dict]]:
    """The Flink job's outputs over ``lines`` as messages: ``verdicts`` (one row per message the
    JSON table reads: record_id, the ``LINE_KEY`` value, code, field, reason), ``events`` (valid
    messages) and ``unreadable`` (code, payload). ``cells``: (cell_id, latitude, longitude, reach_km)."""
    if not FLINK_PYTHON.exists():
        raise RuntimeError(f"the Flink venv is missing ({FLINK_PYTHON}): run `make setup`")
    folder, out_dir = work / "messages", work / "out"
    folder.mkdir(parents=True)
    with open(folder / "part-0", "w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(line + "\n")
    (work / "cells.json").write_text(json.dumps(cells))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    now_sql = now.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    proc = subprocess.run([str(FLINK_PYTHON), "-c", FLINK_SCRIPT, str(folder), str(work / "cells.json"), str(out_dir),
                           now_sql, LINE_KEY], env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"the Flink run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")

    def rows(name: str) -> list[dict]:
        # split("\n"): the sink writes U+2028, U+0085 and the like unescaped, which splitlines() would split on.
        return [json.loads(line) for f in sorted((out_dir / name).rglob("*")) if f.is_file()
                and not f.name.startswith(".") for line in f.read_text(encoding="utf-8").split("\n") if line]

    return {name: rows(name) for name in ("verdicts", "events", "unreadable")}


def flink_verdicts(lines: list[str], cells: list[str], now: dt.datetime, work: Path) -> list[list[Verdict]]:
    """Every Flink verdict each line got (one, if all is well): a readable message's by its
    ``LINE_KEY``, an unreadable one's by its text. Verdicts that match no line are under index -1."""
    out = run_flink(lines, [(c, 36.7, 3.1, 12.0) for c in cells], now, work)
    got: list[list[Verdict]] = [[] for _ in range(len(lines) + 1)]
    for row in out["verdicts"]:
        index = row.get(LINE_KEY)
        at = int(index) if index is not None and index.isdigit() and int(index) < len(lines) else -1
        got[at].append((row["code"], row["field"]))
    by_text: dict[str, list[int]] = {}
    for i, line in enumerate(lines):
        by_text.setdefault(line, []).append(i)
    for row in out["unreadable"]:
        candidates = by_text.get(row["payload"], [])
        at = next((i for i in candidates if not got[i]), candidates[0] if candidates else -1)
        got[at].append((row["code"], None))
    return got


def spark_verdicts(spark, lines: list[str], types: list[str], cells: list[str], now: dt.datetime,
                   work: Path) -> list[Verdict | None]:
    """The batch layer's verdict of each line: the lines of each record type written as one JSON
    Lines file (``types[i]``: the type whose file line i is in), read and tagged as `cdr batch run`
    does; a line's row is found by its position in its file."""
    from pyspark.sql import functions as F

    from batch.frames import local_frame
    from batch.read import read_cdr
    from batch.validate import CODE, FIELD, tag_records
    from cdr.validation import rules_for

    profile = load_profile()
    cells_df = local_frame(spark, [(c,) for c in cells], "cell_id string")
    files = {name: [i for i, t in enumerate(types) if t == name] for name in RECORD_TYPES}
    tagged = []
    for name, indexes in files.items():
        if not indexes:
            continue
        path = work / f"record_type={name}" / "part-0.jsonl"
        path.parent.mkdir(parents=True)
        with open(path, "w", encoding="utf-8") as fh:
            for i in indexes:
                fh.write(lines[i] + "\n")
        rt = RECORD_TYPES[name]
        raw, rejected = read_cdr(spark, [f"file://{path}"], rt, "jsonl")
        assert rejected == []
        # One file, one split: rows come in file order, numbered from 0.
        raw = raw.withColumn("_row", F.monotonically_increasing_id())
        tagged.append(tag_records(raw, rules_for(rt, profile), cells_df, now)
                      .select(F.lit(name).alias("_type"), "_row", CODE, FIELD))
    got: list[Verdict | None] = [None] * len(lines)
    if not tagged:
        return got
    rows = functools.reduce(lambda a, b: a.unionByName(b), tagged).collect()  # one Spark job for every type
    for name, indexes in files.items():
        numbers = sorted(r["_row"] for r in rows if r["_type"] == name)
        assert numbers == list(range(len(indexes))), f"{name}: rows not numbered in file order"
    for r in rows:
        got[files[r["_type"]][r["_row"]]] = (r[CODE], r[FIELD])
    return got


def python_verdicts(lines: list[str], cells: list[str], now: dt.datetime) -> list[Verdict]:
    """The shared Python reference's verdict of each line."""
    profile, ctx = load_profile(), Context(now, frozenset(cells))
    out = []
    for line in lines:
        v = check_line(line, profile, ctx)
        out.append((v.code, v.field) if v else (None, None))
    return out
