"""The detection job's Python UDFs: parsing, validating and pseudonymising each message, and
counting the alerts it raises."""

from __future__ import annotations

from functools import lru_cache

from pyflink.table import Row
from pyflink.table.udf import FunctionContext, ScalarFunction

from streaming.flink.schema import EVENT_NAMES

PSEUDONYM_CACHE = 2_000_000  # identifiers seen again and again: HMAC once per identifier per worker


class ParseMessage(ScalarFunction):
    """payload -> Row(ok, code, field, reason, *event fields) via streaming.messages.MessageParser.

    The key travels inside the pickled function (never in SQL text or job parameters, which the
    Flink UI shows); the cell reference is read from a file on the worker at open()."""

    def __init__(self, key: bytes, cells_path: str, profile: str = "algeria"):
        self._key = key
        self._cells_path = cells_path
        self._profile = profile
        self._parser = None

    def open(self, function_context: FunctionContext) -> None:
        from cdr.pseudonym import pseudonymise
        from streaming.messages import MessageParser, load_cells

        key = self._key
        cached = lru_cache(maxsize=PSEUDONYM_CACHE)(lambda v: pseudonymise(v, key))
        self._parser = MessageParser.for_profile(cached, load_cells(self._cells_path), self._profile)
        group = function_context.get_metric_group().add_group("cdr")
        self._valid = group.counter("records_valid")
        self._rejected = group.counter("records_dead_lettered")

    def eval(self, payload: str | None) -> Row:
        from streaming.messages import Rejection

        r = self._parser.parse(payload)
        if isinstance(r, Rejection):
            self._rejected.inc()
            return Row(False, r.code, r.field, r.reason, *([None] * len(EVENT_NAMES)))
        self._valid.inc()
        return Row(True, None, None, None, *(getattr(r, n) for n in EVENT_NAMES))


class CountAlert(ScalarFunction):
    """alert_id, scenario -> alert_id, counting each alert in ``cdr_alerts_raised{scenario}``
    (Flink's Prometheus reporter publishes it; alerts are few, so the Python hop costs nothing)."""

    def open(self, function_context: FunctionContext) -> None:
        self._group = function_context.get_metric_group().add_group("cdr")
        self._counters = {}

    def eval(self, alert_id: str, scenario: str) -> str:
        counter = self._counters.get(scenario)
        if counter is None:
            counter = self._counters[scenario] = self._group.add_group("scenario", scenario).counter("alerts_raised")
        counter.inc()
        return alert_id
