"""The detection job's Python UDFs. They see only what is rare: alerts (their entity
pseudonymised and the alert counted here) and per-second record counts; every message is parsed, validated and aggregated
in Java (Flink SQL), so no message crosses into Python."""

from __future__ import annotations

from pyflink.table.udf import FunctionContext, ScalarFunction

PSEUDONYMISED_ENTITIES = ("msisdn", "imei")  # entity types that are subscriber identifiers


class PublishEntity(ScalarFunction):
    """scenario, entity_type, entity_id -> the id that leaves the job with the alert: the shared
    keyed pseudonym for subscriber identifiers, the cell id as it is for cells. Counts the alert
    in ``cdr_alerts_raised{scenario}``, so it is registered as non-deterministic: the planner then
    calls it exactly once per alert instead of once per use of its result.

    The key travels inside the pickled function (never in SQL text or job parameters, which the
    Flink UI shows)."""

    def __init__(self, key: bytes):
        self._key = key

    def is_deterministic(self) -> bool:
        return False

    def open(self, function_context: FunctionContext) -> None:
        self._group = function_context.get_metric_group().add_group("cdr")
        self._counters = {}

    def eval(self, scenario: str, entity_type: str, entity_id: str) -> str:
        from cdr.pseudonym import pseudonymise

        counter = self._counters.get(scenario)
        if counter is None:
            counter = self._counters[scenario] = self._group.add_group("scenario", scenario).counter("alerts_raised")
        counter.inc()
        return pseudonymise(entity_id, self._key) if entity_type in PSEUDONYMISED_ENTITIES else entity_id


class CountRecords(ScalarFunction):
    """outcome ('valid' | 'dead_lettered'), n -> n, adding n to ``cdr_records_<outcome>``: the job
    counts messages per second in SQL and only those counts reach Python."""

    def open(self, function_context: FunctionContext) -> None:
        group = function_context.get_metric_group().add_group("cdr")
        self._counters = {o: group.counter(f"records_{o}") for o in ("valid", "dead_lettered")}

    def eval(self, outcome: str, n: int) -> int:
        self._counters[outcome].inc(n)
        return n
