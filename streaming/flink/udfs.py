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
    """outcome ('valid' | 'dead_lettered' | 'ahead_of_clock'), code, n -> n, adding n to
    ``cdr_records_valid``, to ``cdr_records_ahead_of_clock`` (valid records the event clock ignores:
    docs/streaming.md, "The event clock"), or for a dead letter to
    ``cdr_reason_records_dead_lettered{reason=code}`` (its rule code: a small,
    closed set, ``cdr.validation.ALL_CODES``). The job counts messages per second and code in SQL
    and only those counts reach Python; the dead letters' total is the sum over reasons."""

    def open(self, function_context: FunctionContext) -> None:
        self._group = function_context.get_metric_group().add_group("cdr")
        self._valid = self._group.counter("records_valid")
        self._ahead = self._group.counter("records_ahead_of_clock")
        self._dead_lettered = {}

    def eval(self, outcome: str, code: str, n: int) -> int:
        if outcome == "valid":
            self._valid.inc(n)
            return n
        if outcome == "ahead_of_clock":
            self._ahead.inc(n)
            return n
        counter = self._dead_lettered.get(code)
        if counter is None:
            counter = self._dead_lettered[code] = self._group.add_group("reason", code).counter("records_dead_lettered")
        counter.inc(n)
        return n
