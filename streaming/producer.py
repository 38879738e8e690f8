"""Sends the CDR stream to Kafka at a steady rate, with delivery guarantees and metrics.

Client: confluent-kafka (librdkafka). kafka-python is the client the platform names, but it
builds and compresses every batch in pure Python and stays far below the 100,000 records/s
goal on this machine (measured by ``make bench-stream``, see docs/benchmarks.md); librdkafka
does the batching, compression and retries in C and the Python loop only hands it messages.

Delivery: ``acks=all`` with idempotence (no duplicates or reordering on retries), so with the
topics' ``min.insync.replicas=2`` an acknowledged record is on at least two brokers. Nothing is
reported as sent that was not acknowledged:

- before sending, a broker must answer a metadata request within ``kafka.connect_timeout_s`` and
  the cluster must have the topics (else ServiceUnavailable, exit 3);
- a record the client could not get acknowledged within ``kafka.delivery_timeout_s`` (librdkafka's
  ``message.timeout.ms``; its retries happen within it) fails, and sending stops at the first
  failure (the brokers are gone or refuse the records: what follows would fail too);
- the final flush waits ``kafka.flush_timeout_s`` at most; a record neither acknowledged nor failed
  by then is counted as not delivered (and purged from the client);
- every record not acknowledged is an error in the progress, the summary and the failed-records
  counter; the commands then exit with DataLoss (exit 4, ``require_delivered``).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from cdr.errors import DataLoss
from cdr.settings import Settings
from streaming.source import TYPES, Batch
from streaming.topics import ClientErrors, cdr_topics, check_topic_names, client_config, require_brokers

PRODUCER_CONFIG = {
    "acks": "all",
    "enable.idempotence": True,
    "compression.type": "lz4",
    "linger.ms": 20,
    "batch.size": 512 * 1024,
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 512 * 1024,
}
CHUNK = 500  # messages handed over between two pacing checks


@dataclass(frozen=True)
class Pacing:
    """When a message may leave: at most ``rate`` per second and, with a clock, not before its
    event time (relative to the first one) divided by the clock's speed-up."""

    rate: float | None
    speedup: float | None = None  # 1.0 = realtime, X = accelerated:X, None = rate only

    @staticmethod
    def parse_clock(clock: str | None) -> float | None:
        if clock is None or clock == "none":
            return None
        if clock == "realtime":
            return 1.0
        if clock.startswith("accelerated:"):
            try:
                x = float(clock.split(":", 1)[1])
            except ValueError:
                raise ValueError(f"--clock accelerated:X needs a number X (got {clock!r})") from None
            if not 0 < x < float("inf"):
                raise ValueError(f"--clock accelerated:X needs a positive X (got {clock!r})")
            return x
        raise ValueError(f"--clock must be realtime or accelerated:X (got {clock!r})")

    def due(self, n_sent: int, event_offset_s: float) -> float:
        """Seconds after the start at which message number ``n_sent`` may be sent."""
        t = n_sent / self.rate if self.rate else 0.0
        if self.speedup:
            t = max(t, event_offset_s / self.speedup)
        return t


@dataclass
class Progress:
    sent: int = 0  # records handed over to the client
    delivered: int = 0  # acknowledged by Kafka
    failed: int = 0  # delivery reports with an error (timed out, refused, ...)
    undelivered: int = 0  # neither acknowledged nor failed when the final flush gave up (set at the end)
    started: float = field(default_factory=time.monotonic)
    first_event_us: int | None = None
    last_event_us: int | None = None
    last_error: str | None = None
    sending_s: float | None = None  # set when the last record is handed over (before the final flush)
    finished_s: float | None = None  # set after the final flush: the run's whole duration

    @property
    def errors(self) -> int:
        """Records Kafka did not acknowledge: failed ones and, at the end, those still unacknowledged."""
        return self.failed + self.undelivered

    @property
    def elapsed(self) -> float:
        return self.finished_s if self.finished_s is not None else time.monotonic() - self.started

    @property
    def rate(self) -> float:
        """Records handed over per second while sending (the rate the pacing holds)."""
        span = self.sending_s if self.sending_s is not None else self.elapsed
        return self.sent / span if span > 0 else 0.0

    @property
    def acknowledged_rate(self) -> float:
        """Records acknowledged per second, from the first record to the end of the final flush."""
        span = self.elapsed
        return self.delivered / span if span > 0 else 0.0


class Ledger:
    """Per topic, records handed over, acknowledged and failed: what is none of these at the end
    was not delivered. Delivery reports arrive once per record, so they are counted in plain ints
    here and handed to Prometheus in totals (a labelled counter increment per record costs more
    than the send)."""

    def __init__(self, topics: list[str]):
        self.topics = topics
        self.index = {t: i for i, t in enumerate(topics)}
        self.handed = np.zeros(len(topics), dtype=np.int64)
        self.acked = [0] * len(topics)
        self.failed = [0] * len(topics)
        self.closed = False  # set once the outcome is final: later reports (purged records) are ignored

    def hand_over(self, type_index: np.ndarray) -> None:
        self.handed += np.bincount(type_index, minlength=len(self.topics))

    def outstanding(self) -> list[int]:
        """Per topic, records handed over that were neither acknowledged nor failed."""
        return [int(h) - a - f for h, a, f in zip(self.handed, self.acked, self.failed)]


class Metrics:
    """Prometheus series of the producer (scraped by the stack's Prometheus on producer.metrics_port).

    With ``settings``, the endpoint is registered as the local stack's Prometheus target
    ``cdr-producer`` while it serves (stack.services.monitoring.registered_target) and unregistered by
    ``close``: use it as a context manager, so that an error or Ctrl-C unregisters it too."""

    def __init__(self, port: int | None, settings: Settings | None = None):
        from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

        self.registry = CollectorRegistry()
        self.sent = Counter("cdr_producer_records_sent", "Records acknowledged by Kafka", ["topic"],
                            registry=self.registry)
        self.errors = Counter("cdr_producer_errors",
                              "Records Kafka did not acknowledge: failed, or still unacknowledged at the end",
                              ["topic"], registry=self.registry)
        self.latency = Histogram("cdr_producer_send_latency_seconds",
                                 "Time from hand-over to the client until acknowledgement (sampled 1/100)",
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                                 registry=self.registry)
        self._reported: dict[str, tuple[int, int]] = {}
        self._server = None
        self._registration = ExitStack()
        self.target_file: Path | None = None  # the file_sd file registering the endpoint, while it does
        if port:
            try:
                self._server, _ = start_http_server(port, addr="127.0.0.1", registry=self.registry)
            except OSError as exc:
                from cdr.errors import ServiceUnavailable

                raise ServiceUnavailable(f"the producer's metrics port 127.0.0.1:{port} is taken ({exc.strerror})",
                                         "is another producer running? else pass --no-metrics or set "
                                         "producer.metrics_port (CDR_PRODUCER__METRICS_PORT)") from None
            if settings is not None:
                from stack.services.monitoring import PRODUCER_JOB, producer_target, registered_target

                try:
                    self.target_file = self._registration.enter_context(
                        registered_target(settings, PRODUCER_JOB, [producer_target(settings)]))
                except BaseException:
                    self.close()
                    raise

    def close(self) -> None:
        """Unregister the endpoint's target (if registered), then stop serving. Idempotent."""
        self._registration.close()
        self.target_file = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Metrics:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def report(self, ledger: Ledger, lost: list[int] | None = None) -> None:
        """Bring the counters up to the ledger's totals (``lost``: records not delivered at the end)."""
        for i, topic in enumerate(ledger.topics):
            acked, failed = ledger.acked[i], ledger.failed[i] + (lost[i] if lost else 0)
            before = self._reported.get(topic, (0, 0))
            self.sent.labels(topic).inc(acked - before[0])
            self.errors.labels(topic).inc(failed - before[1])
            self._reported[topic] = (acked, failed)


@lru_cache(maxsize=1)
def _producer_class():
    from confluent_kafka import Producer

    class CdrProducer(Producer):
        """confluent-kafka's producer, with ``client_errors``: the client's last error."""

        client_errors: ClientErrors

    return CdrProducer


def make_producer(settings: Settings, extra: dict | None = None, topics: Iterable[str] = (), check: bool = True):
    """A producer of the platform's cluster with the delivery settings above; a record fails after
    ``kafka.delivery_timeout_s``. With ``check`` (the default), raises ServiceUnavailable unless a
    broker answers within ``kafka.connect_timeout_s`` and the cluster has ``topics``."""
    errors = ClientErrors()
    config = {**client_config(settings, errors), **PRODUCER_CONFIG,
              "message.timeout.ms": max(1, round(settings.kafka.delivery_timeout_s * 1000)), **(extra or {})}
    producer = _producer_class()(config)
    producer.client_errors = errors
    if check:
        require_brokers(producer, settings, errors, topics)
    return producer


def require_delivered(prog: Progress, what: str = "records") -> None:
    """Raise DataLoss unless Kafka acknowledged every record handed over."""
    lost = max(prog.errors, prog.sent - prog.delivered)
    if lost:
        kept = f"; the {prog.delivered:,} acknowledged are in Kafka (a rerun sends them again)" if prog.delivered else ""
        raise DataLoss(f"{lost:,} of {prog.sent:,} {what} were not acknowledged by Kafka "
                       f"(last error: {prog.last_error or 'none reported'})",
                       f"are the brokers up? (cdr stack status){kept}")


class _Stalled(Exception):
    """The client's queue is full and sending must stop (a failure, or asked to stop)."""


def _hand_over(produce, poll, topic: str, value: bytes, key: bytes, on_delivery, give_up: Callable[[], bool]) -> None:
    """Produce one record, polling while the client's queue is full; raises _Stalled when
    ``give_up()`` says so meanwhile."""
    while True:
        try:
            produce(topic, value, key, on_delivery=on_delivery)
            return
        except BufferError:  # the client's queue is full: let it drain
            poll(0.05)
            if give_up():
                raise _Stalled from None


def _finish(producer, prog: Progress, ledger: Ledger, settings: Settings) -> list[int]:
    """The final flush, bounded by ``kafka.flush_timeout_s``. Every record handed over is then
    acknowledged, failed, or counted as not delivered; the last are purged from the client (it
    would otherwise keep them, and complain at exit). Returns the not-delivered count per topic."""
    timeout = settings.kafka.flush_timeout_s
    producer.flush(timeout)
    if sum(ledger.outstanding()):
        ledger.closed = True  # reports of purged records are not failures to count twice
        producer.purge()
        producer.flush(1)  # serves the purge's reports (and any acknowledgement that raced it)
    lost = ledger.outstanding()
    prog.undelivered = sum(lost)
    if prog.undelivered and prog.failed == 0:
        prog.last_error = (f"{prog.undelivered:,} records still unacknowledged {timeout:g} s after the last was "
                           f"handed over (kafka.flush_timeout_s)")
    cause = getattr(producer, "client_errors", None) and producer.client_errors.last
    if prog.errors and cause:
        prog.last_error = f"{prog.last_error}; the client's last error: {cause}"
    prog.finished_s = time.monotonic() - prog.started
    return lost


def prefetch(batches: Iterator[Batch], depth: int = 1) -> Iterator[Batch]:
    """Generate the next day while the current one is sent (Arrow kernels release the GIL)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()

    def fill() -> None:
        try:
            for b in batches:
                q.put(b)
        except BaseException as exc:  # handed to the consumer thread
            q.put(exc)
        q.put(done)

    threading.Thread(target=fill, daemon=True, name="cdr-prefetch").start()
    while (item := q.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item


def send(settings: Settings, batches: Iterator[Batch], pacing: Pacing, count: int | None = None,
         duration_s: float | None = None, metrics: Metrics | None = None,
         on_tick: Callable[[Progress], None] | None = None, stop: threading.Event | None = None,
         producer=None) -> Progress:
    """Send until the batches, ``count`` or ``duration_s`` run out, a record fails or ``stop`` is
    set; returns the final progress, where every record not acknowledged is an error
    (``require_delivered`` turns that into DataLoss). ``producer``: one made by ``make_producer``
    (checked), else one is made here, which raises ServiceUnavailable when no broker answers."""
    names = cdr_topics(settings)
    topics = [names[rt] for rt in TYPES]
    if producer is None:
        producer = make_producer(settings, topics=topics)
    prog = Progress()
    ledger = Ledger(topics)
    acked, failed, index = ledger.acked, ledger.failed, ledger.index

    def delivered(err, msg) -> None:
        if err is not None:
            if ledger.closed:
                return
            prog.failed += 1
            prog.last_error = err.str()
            failed[index[msg.topic()]] += 1
            return
        prog.delivered += 1
        acked[index[msg.topic()]] += 1
        if metrics and prog.delivered % 100 == 0:
            metrics.latency.observe(msg.latency())

    def give_up() -> bool:
        return prog.failed > 0 or bool(stop and stop.is_set())

    def report(lost: list[int] | None = None) -> None:
        if metrics:
            metrics.report(ledger, lost)

    produce, poll = producer.produce, producer.poll
    next_tick = 0.5
    finished = False
    for batch in batches:
        if prog.first_event_us is None and len(batch):
            prog.first_event_us = int(batch.event_us[0])
            prog.started = time.monotonic()  # pace from the first message, not from start-up
        i, n = 0, len(batch)
        while i < n and not finished:
            j = min(n, i + CHUNK)
            if count is not None:
                j = min(j, i + count - prog.sent)
            wait = pacing.due(prog.sent, (batch.event_us[i] - prog.first_event_us) / 1e6) - prog.elapsed
            if wait > 0:
                poll(min(wait, 0.05))
                finished = give_up()
                continue
            ti, keys, values = batch.type_index, batch.keys, batch.values
            k = i
            try:
                for k in range(i, j):
                    try:
                        produce(topics[ti[k]], values[k], keys[k], on_delivery=delivered)
                    except BufferError:
                        _hand_over(produce, poll, topics[ti[k]], values[k], keys[k], delivered, give_up)
                k = j
            except _Stalled:
                finished = True  # records i..k-1 were handed over, k was not
            ledger.hand_over(ti[i:k])
            prog.sent += k - i
            if k > i:
                prog.last_event_us = int(batch.event_us[k - 1])
            i = k
            poll(0)
            if prog.elapsed >= next_tick:
                report()
                if on_tick:
                    on_tick(prog)
                next_tick += 0.5
            finished = finished or give_up() or (count is not None and prog.sent >= count) \
                or (duration_s is not None and prog.elapsed >= duration_s)
        if finished:
            break
    prog.sending_s = prog.elapsed
    report(_finish(producer, prog, ledger, settings))
    if on_tick:
        on_tick(prog)
    return prog


def send_subscribers(settings: Settings, subscribers, producer=None) -> Progress:
    """Subscriber profiles keyed by MSISDN, one JSON value each (a compacted-style snapshot); the
    same guarantees as ``send``."""
    from generator.writers import json_lines

    check_topic_names(settings)
    topic = settings.topics.subscribers
    if producer is None:
        producer = make_producer(settings, topics=[topic])
    prog = Progress()
    ledger = Ledger([topic])

    def delivered(err, msg) -> None:
        if err is not None:
            if not ledger.closed:
                prog.failed += 1
                prog.last_error = err.str()
                ledger.failed[0] += 1
        else:
            prog.delivered += 1
            ledger.acked[0] += 1

    values = json_lines(subscribers).to_pylist()
    keys = subscribers.column("msisdn").cast("string").to_pylist()
    produce, poll = producer.produce, producer.poll
    for k, v in zip(keys, values):
        try:
            _hand_over(produce, poll, topic, v.encode(), k.encode(), delivered, lambda: prog.failed > 0)
        except _Stalled:
            break
        prog.sent += 1
    ledger.handed[0] = prog.sent
    prog.sending_s = prog.elapsed
    _finish(producer, prog, ledger, settings)
    return prog
