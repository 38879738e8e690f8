"""Sends the CDR stream to Kafka at a steady rate, with delivery guarantees and metrics.

Client: confluent-kafka (librdkafka). kafka-python is the client the platform names, but it
builds and compresses every batch in pure Python and stays far below the 100,000 records/s
goal on this machine (measured by ``make bench-stream``, see docs/benchmarks.md); librdkafka
does the batching, compression and retries in C and the Python loop only hands it messages.

Delivery: ``acks=all`` with idempotence (no duplicates or reordering on retries), so with the
topics' ``min.insync.replicas=2`` an acknowledged record is on at least two brokers.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from cdr.settings import Settings
from streaming.source import TYPES, Batch

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
            x = float(clock.split(":", 1)[1])
            if x <= 0:
                raise ValueError("the acceleration must be positive")
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
    sent: int = 0
    delivered: int = 0
    errors: int = 0
    started: float = field(default_factory=time.monotonic)
    first_event_us: int | None = None
    last_event_us: int | None = None
    last_error: str | None = None
    sending_s: float | None = None  # set when the last record is handed over (before the final flush)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        """Records handed over per second while sending (the rate the pacing holds)."""
        span = self.sending_s if self.sending_s is not None else self.elapsed
        return self.sent / span if span > 0 else 0.0


class Metrics:
    """Prometheus series of the producer (scraped by the stack's Prometheus on producer.metrics_port)."""

    def __init__(self, port: int | None):
        from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

        self.registry = CollectorRegistry()
        self.sent = Counter("cdr_producer_records_sent", "Records acknowledged by Kafka", ["topic"],
                            registry=self.registry)
        self.errors = Counter("cdr_producer_errors", "Records Kafka failed to acknowledge", ["topic"],
                              registry=self.registry)
        self.latency = Histogram("cdr_producer_send_latency_seconds",
                                 "Time from hand-over to the client until acknowledgement (sampled 1/100)",
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                                 registry=self.registry)
        if port:
            start_http_server(port, addr="127.0.0.1", registry=self.registry)


def make_producer(settings: Settings, extra: dict | None = None):
    from confluent_kafka import Producer

    return Producer({"bootstrap.servers": settings.kafka.bootstrap, **PRODUCER_CONFIG, **(extra or {})})


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
         on_tick: Callable[[Progress], None] | None = None, stop: threading.Event | None = None) -> Progress:
    """Send until the batches, ``count`` or ``duration_s`` run out; returns the final progress."""
    topics = [settings.topics.for_record_type(rt) for rt in TYPES]
    producer = make_producer(settings)
    prog = Progress()

    # Delivery reports arrive once per record: count in plain ints here and hand the totals to
    # Prometheus on each tick (a labelled counter increment per record costs more than the send).
    acked = [0] * len(topics)
    failed = [0] * len(topics)
    index = {t: i for i, t in enumerate(topics)}

    def delivered(err, msg) -> None:
        if err is not None:
            prog.errors += 1
            prog.last_error = str(err)
            failed[index[msg.topic()]] += 1
            return
        prog.delivered += 1
        acked[index[msg.topic()]] += 1
        if metrics and prog.delivered % 100 == 0:
            metrics.latency.observe(msg.latency())

    reported = [[0] * len(topics), [0] * len(topics)]

    def report() -> None:
        if metrics:
            for i, t in enumerate(topics):
                metrics.sent.labels(t).inc(acked[i] - reported[0][i])
                metrics.errors.labels(t).inc(failed[i] - reported[1][i])
            reported[0], reported[1] = list(acked), list(failed)

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
                continue
            ti, keys, values = batch.type_index, batch.keys, batch.values
            for k in range(i, j):
                while True:
                    try:
                        produce(topics[ti[k]], values[k], keys[k], on_delivery=delivered)
                        break
                    except BufferError:  # the client's queue is full: let it drain
                        poll(0.05)
            prog.sent += j - i
            prog.last_event_us = int(batch.event_us[j - 1])
            i = j
            poll(0)
            if prog.elapsed >= next_tick:
                report()
                if on_tick:
                    on_tick(prog)
                next_tick += 0.5
            finished = (count is not None and prog.sent >= count) \
                or (duration_s is not None and prog.elapsed >= duration_s) or bool(stop and stop.is_set())
        if finished:
            break
    prog.sending_s = prog.elapsed
    producer.flush(60)
    report()
    if on_tick:
        on_tick(prog)
    return prog


def send_subscribers(settings: Settings, subscribers) -> Progress:
    """Subscriber profiles keyed by MSISDN, one JSON value each (a compacted-style snapshot)."""
    from generator.writers import json_lines

    producer = make_producer(settings)
    prog = Progress()
    topic = settings.topics.subscribers

    def delivered(err, msg) -> None:
        if err is not None:
            prog.errors += 1
            prog.last_error = str(err)
        else:
            prog.delivered += 1

    values = json_lines(subscribers).to_pylist()
    keys = subscribers.column("msisdn").cast("string").to_pylist()
    for k, v in zip(keys, values):
        while True:
            try:
                producer.produce(topic, v.encode(), k.encode(), on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        prog.sent += 1
    producer.flush(60)
    return prog
