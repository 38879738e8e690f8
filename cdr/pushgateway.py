"""What the CLIs push to the Prometheus Pushgateway: the results of commands that exit before
Prometheus could scrape them (a batch run, a layer reconciliation) and which streaming jobs should
be running. Prometheus scrapes the gateway (job ``pushgateway``, ``honor_labels: true``), so the
series carry the pushed ``job`` label; the alert rules are in monitoring/prometheus/rules/.

The registries are built by pure functions (tests/unit/test_pushgateway.py); ``push`` and
``delete`` talk to the gateway at settings ``prometheus.pushgateway_url``. Monitoring never breaks a
pipeline: an unreachable gateway is one warning line on stderr, and the command goes on with its
own exit code. Metrics and when each is pushed: docs/batch.md, "Metrics pushed by the CLI".
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import delete_from_gateway, pushadd_to_gateway
from prometheus_client.parser import text_string_to_metric_families

from cdr.settings import Settings

BATCH_JOB = "cdr-batch"
STREAM_JOB = "cdr-stream"
SERVING_JOB = "cdr-serving"
LATEST_DAY = "cdr_batch_latest_day_timestamp_seconds"
# Outcomes of the batch's reconciliation (cdr_ops.reconciliation columns clean, quarantined, duplicates).
OUTCOMES = {"valid": "clean", "quarantined": "quarantined", "duplicate": "duplicates"}
TIMEOUT_S = 5.0


def day_start(day: dt.date) -> float:
    """00:00 UTC of ``day`` as Unix seconds."""
    return dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()


def prometheus_job_name(name: str) -> str:
    """A Flink job's name as Flink's Prometheus reporter labels its series (``cdr-detection`` ->
    ``cdr_detection``), so that a pushed series joins them on ``job_name``."""
    return re.sub(r"[^a-zA-Z0-9:_]", "_", name)


# --- the batch layer --------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchRun:
    """What one `cdr batch run` pushes: its times and outcome, and on success its days and the
    records it reconciled (outcome -> count, summed over its days; empty when it reconciled none)."""

    started: float                 # Unix seconds
    ended: float
    succeeded: bool
    days: tuple[dt.date, ...] = ()
    records: Mapping[str, int] = field(default_factory=dict)


def reconciled_records(rows: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Reconciliation rows (``clean``, ``quarantined``, ``duplicates``) summed per outcome."""
    rows = list(rows)
    return {outcome: sum(int(r[column]) for r in rows) for outcome, column in OUTCOMES.items()} if rows else {}


def batch_registry(run: BatchRun, held_latest_day: float | None = None) -> CollectorRegistry:
    """The gauges of a batch run. Every run: its end, success and duration. A successful one also:
    its end as the last success, the latest day batched (never earlier than ``held_latest_day``,
    what the gateway holds already: rerunning an older day does not move it back) and its records."""
    registry = CollectorRegistry()

    def gauge(name: str, doc: str, value: float) -> None:
        Gauge(name, doc, registry=registry).set(value)

    gauge("cdr_batch_last_run_timestamp_seconds", "End of the last `cdr batch run`, Unix seconds.", run.ended)
    gauge("cdr_batch_last_run_success", "1 if the last `cdr batch run` succeeded, 0 if it failed.", int(run.succeeded))
    gauge("cdr_batch_last_run_duration_seconds", "Duration of the last `cdr batch run`.", run.ended - run.started)
    if not run.succeeded:
        return registry
    gauge("cdr_batch_last_success_timestamp_seconds", "End of the last successful `cdr batch run`, Unix seconds.",
          run.ended)
    if run.days:
        latest = day_start(max(run.days))
        gauge(LATEST_DAY, "Start (00:00 UTC) of the latest event day batched successfully, Unix seconds.",
              max(latest, held_latest_day) if held_latest_day is not None else latest)
    if run.records:
        records = Gauge("cdr_batch_last_run_records", "Records the last successful `cdr batch run` reconciled, "
                        "summed over its days, per outcome.", ["outcome"], registry=registry)
        for outcome, count in run.records.items():
            records.labels(outcome=outcome).set(count)
    return registry


def held_value(exposition: str, name: str, job: str, grouping_key: Mapping[str, str] | None = None) -> float | None:
    """The value of the gauge ``name`` of the group ``job`` (+ ``grouping_key``) in the gateway's
    /metrics text, or None. The gateway adds an empty ``instance`` label; empty labels are absent."""
    wanted = {"job": job, **(grouping_key or {})}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and {k: v for k, v in sample.labels.items() if v} == wanted:
                return sample.value
    return None


def push_batch_run(settings: Settings, run: BatchRun) -> bool:
    """Push a batch run's gauges (POST: a failed run leaves the last success's gauges as they were)."""
    def registry() -> CollectorRegistry:
        held = None
        if run.succeeded and run.days:
            import urllib.request

            with urllib.request.urlopen(f"{settings.prometheus.pushgateway_url}/metrics", timeout=TIMEOUT_S) as r:
                held = held_value(r.read().decode(), LATEST_DAY, BATCH_JOB)
        return batch_registry(run, held)

    return _guarded(settings, BATCH_JOB, lambda url: pushadd_to_gateway(url, BATCH_JOB, registry(),
                                                                        timeout=TIMEOUT_S))


# --- the speed layer --------------------------------------------------------------------------


def stream_grouping_key(job_name: str) -> dict[str, str]:
    return {"job_name": prometheus_job_name(job_name)}


def stream_job_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Gauge("cdr_stream_job_expected", "1 while `cdr stream start` started the streaming job and no `cdr stream stop` "
          "stopped it.", registry=registry).set(1)
    return registry


def push_stream_job_expected(settings: Settings, job_name: str) -> bool:
    """The Flink job ``job_name`` was started: it is expected to run until stopped."""
    key = stream_grouping_key(job_name)
    return _guarded(settings, STREAM_JOB, lambda url: pushadd_to_gateway(
        url, STREAM_JOB, stream_job_registry(), grouping_key=key, timeout=TIMEOUT_S))


def forget_stream_job(settings: Settings, job_name: str) -> bool:
    """The Flink job ``job_name`` was stopped on purpose: its group goes."""
    key = stream_grouping_key(job_name)
    return _guarded(settings, STREAM_JOB, lambda url: delete_from_gateway(url, STREAM_JOB, grouping_key=key,
                                                                          timeout=TIMEOUT_S))


# --- the serving layer ------------------------------------------------------------------------


def reconcile_registry(day: dt.date, balanced: bool, at: float) -> CollectorRegistry:
    registry = CollectorRegistry()
    Gauge("cdr_serving_reconcile_balanced", "1 if the last `cdr serving reconcile` found the layers within "
          "tolerance, 0 if not.", registry=registry).set(int(balanced))
    Gauge("cdr_serving_reconcile_day_timestamp_seconds", "Start (00:00 UTC) of the day last reconciled, Unix seconds.",
          registry=registry).set(day_start(day))
    Gauge("cdr_serving_reconcile_timestamp_seconds", "When the last `cdr serving reconcile` ran, Unix seconds.",
          registry=registry).set(at)
    return registry


def push_reconcile(settings: Settings, day: dt.date, balanced: bool, at: float) -> bool:
    return _guarded(settings, SERVING_JOB, lambda url: pushadd_to_gateway(
        url, SERVING_JOB, reconcile_registry(day, balanced, at), timeout=TIMEOUT_S))


# --- the gateway ------------------------------------------------------------------------------


def _guarded(settings: Settings, job: str, action) -> bool:
    """Run ``action(gateway_url)``; any failure is one warning line on stderr, never an exception."""
    url = settings.prometheus.pushgateway_url
    try:
        action(url)
    except Exception as exc:  # monitoring must never fail the command it reports on
        reason = " ".join(str(exc).split()) or type(exc).__name__
        print(f"warning: {job} metrics not sent to the Pushgateway at {url} ({reason}); Prometheus does not "
              "see them", file=sys.stderr)
        return False
    return True
