"""Layer reconciliation: what the speed layer counted for a day against what the batch counted.

The stream validates records by the same rules as the batch (docs/operations.md, "validation
agreement") but keeps duplicates, so for each record type it should have counted the batch's
clean records plus the duplicates the batch removed, less the records its windows dropped as late
(the detection job counts them: table late_records). A stream that has not yet closed the day
explains a shortfall as records not yet landed; anything else is unexplained, and above the
tolerance (settings [serving] reconcile_tolerance, a share of the day's records) an error.
The measures both layers have (answered, dropped or failed, bytes) are compared where the batch
removed no duplicates and the stream dropped nothing late (those records' measures are not kept).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from cdr.errors import BadInput

MEASURES = ("answered", "dropped_or_failed", "data_bytes")
BALANCED, WITHIN_TOLERANCE, INCOMPLETE, UNEXPLAINED = ("balanced", "within tolerance", "incomplete",
                                                       "unexplained difference")


@dataclass(frozen=True)
class SpeedCounts:
    records: int
    answered: int = 0
    dropped_or_failed: int = 0
    data_bytes: int = 0
    late: int = 0          # valid records the windows dropped as late: not in ``records``


@dataclass(frozen=True)
class BatchCounts:
    records_in: int
    clean: int
    quarantined: int
    duplicates: int
    answered: int = 0
    dropped_or_failed: int = 0
    data_bytes: int = 0


@dataclass
class LayerRow:
    day: dt.date
    record_type: str
    speed: SpeedCounts
    batch: BatchCounts
    expected_speed: int
    not_yet_landed: int
    unexplained: int
    measures: dict[str, dict] = field(default_factory=dict)
    verdict: str = BALANCED

    @property
    def failed(self) -> bool:
        return self.verdict == UNEXPLAINED


def compare(day: dt.date, speed: dict[str, SpeedCounts], batch: dict[str, BatchCounts],
            stream_closed_day: bool, tolerance: float) -> list[LayerRow]:
    """One row per record type either layer counted (pure: the numbers in, the verdicts out)."""
    rows = []
    for rt in sorted(set(speed) | set(batch)):
        s = speed.get(rt, SpeedCounts(0))
        b = batch.get(rt, BatchCounts(0, 0, 0, 0))
        expected = b.clean + b.duplicates
        difference = s.records + s.late - expected
        not_landed = -difference if difference < 0 and not stream_closed_day else 0
        unexplained = difference + not_landed
        allowed = tolerance * max(expected, 1)
        measures = {}
        for m in MEASURES:
            sv, bv = getattr(s, m), getattr(b, m)
            comparable = b.duplicates == 0 and not_landed == 0 and s.late == 0
            measures[m] = {"speed": sv, "batch": bv, "difference": sv - bv, "compared": comparable}
        off_measures = [m for m, v in measures.items()
                        if v["compared"] and abs(v["difference"]) > tolerance * max(abs(v["batch"]), 1)]
        if abs(unexplained) > allowed or off_measures:
            verdict = UNEXPLAINED
        elif not_landed:
            verdict = INCOMPLETE
        elif unexplained or any(v["compared"] and v["difference"] for v in measures.values()):
            verdict = WITHIN_TOLERANCE
        else:
            verdict = BALANCED
        rows.append(LayerRow(day, rt, s, b, expected, not_landed, unexplained, measures, verdict))
    return rows


def gather(conn, day: dt.date) -> tuple[dict[str, SpeedCounts], dict[str, BatchCounts], bool]:
    """The day's counts of both layers from the serving store, and whether the stream has closed
    the day (its per-minute KPIs reach past the day's last minute)."""
    end = day + dt.timedelta(days=1)
    if not conn.execute("SELECT 1 FROM serving.published_day WHERE day = %s", (day,)).fetchone():
        raise BadInput(f"{day} is not published by the batch layer: nothing to reconcile the stream with",
                       f"run `cdr batch run --date {day}` (or `cdr serving publish --date {day}`) first")
    late = dict(conn.execute("SELECT record_type, sum(records)::BIGINT FROM late_records WHERE day = %s"
                             " GROUP BY record_type", (day,)).fetchall())
    speed = {r[0]: SpeedCounts(*map(int, r[1:]), late=int(late.get(r[0], 0))) for r in conn.execute(
        "SELECT service, sum(records), sum(answered), sum(dropped_or_failed), sum(data_bytes)"
        " FROM kpi_service_minute WHERE minute_start >= %s AND minute_start < %s GROUP BY service", (day, end))}
    speed |= {rt: SpeedCounts(0, late=int(n)) for rt, n in late.items() if rt not in speed}
    if not speed:
        raise BadInput(f"the speed layer holds no records of {day}",
                       "stream the day first; a day the retention removed cannot be reconciled again "
                       "(see serving.layer_reconciliation for its last report)")
    measures = {r[0]: tuple(map(int, r[1:])) for r in conn.execute(
        "SELECT service, sum(answered), sum(dropped_or_failed), sum(data_bytes) FROM serving.batch_service_hour"
        " WHERE day = %s GROUP BY service", (day,))}
    batch = {r[0]: BatchCounts(*map(int, r[1:]), *measures.get(r[0], (0, 0, 0))) for r in conn.execute(
        "SELECT record_type, records_in, clean, quarantined, duplicates FROM serving.batch_records_day"
        " WHERE day = %s", (day,))}
    closed = conn.execute("SELECT max(minute_start) FROM kpi_service_minute").fetchone()[0]
    return speed, batch, closed is not None and closed >= dt.datetime.combine(end, dt.time()) - dt.timedelta(minutes=1)


def save(conn, rows: list[LayerRow]) -> None:
    with conn.transaction():
        for r in rows:
            conn.execute(
                "INSERT INTO serving.layer_reconciliation (day, record_type, checked_at, speed_records,"
                " batch_records_in, batch_clean, batch_quarantined, batch_duplicates, expected_speed, late_dropped,"
                " not_yet_landed, unexplained, measures, verdict)"
                " VALUES (%s, %s, localtimestamp, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (day, record_type) DO UPDATE SET checked_at = EXCLUDED.checked_at,"
                " speed_records = EXCLUDED.speed_records, batch_records_in = EXCLUDED.batch_records_in,"
                " batch_clean = EXCLUDED.batch_clean, batch_quarantined = EXCLUDED.batch_quarantined,"
                " batch_duplicates = EXCLUDED.batch_duplicates, expected_speed = EXCLUDED.expected_speed,"
                " late_dropped = EXCLUDED.late_dropped, not_yet_landed = EXCLUDED.not_yet_landed,"
                " unexplained = EXCLUDED.unexplained, measures = EXCLUDED.measures, verdict = EXCLUDED.verdict",
                (r.day, r.record_type, r.speed.records, r.batch.records_in, r.batch.clean, r.batch.quarantined,
                 r.batch.duplicates, r.expected_speed, r.speed.late, r.not_yet_landed, r.unexplained,
                 json.dumps(r.measures), r.verdict))


def format_report(rows: list[LayerRow]) -> str:
    head = (f"{'type':<6} {'stream':>10} {'batch in':>10} {'clean':>10} {'quarant.':>9} {'dupl.':>7} "
            f"{'expected':>10} {'late':>7} {'not landed':>10} {'unexpl.':>8}  verdict")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.record_type:<6} {r.speed.records:>10,} {r.batch.records_in:>10,} {r.batch.clean:>10,} "
                     f"{r.batch.quarantined:>9,} {r.batch.duplicates:>7,} {r.expected_speed:>10,} "
                     f"{r.speed.late:>7,} {r.not_yet_landed:>10,} {r.unexplained:>8,}  {r.verdict}")
        off = [f"{m} {v['speed']:,} vs {v['batch']:,}" for m, v in r.measures.items() if v["compared"] and v["difference"]]
        if off:
            lines.append(f"       measures differ: {'; '.join(off)}")
    return "\n".join(lines)
