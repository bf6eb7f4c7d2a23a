"""The one rate-controlled Kafka producer of the project: the load command, the lessons and the benchmarks use it.

Events are built in batches (keys and values by a :data:`EventBatch` function) and handed to librdkafka one
by one; the rate is held by producing what is due since the start (``rate * elapsed - sent``), so a slow
moment is caught up and the long-run rate is exact. ``rate=None`` produces as fast as the client can.
Every record carries its event time as its Kafka timestamp (``ts_ms``), so a topic's time index (the
``timestamp`` startup mode) and the values agree.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

EventBatch = Callable[[int, int, int], tuple[list[bytes | None], list[bytes]]]
"""``(first id, count, ts_ms) -> (message keys, message values)`` for events ``first id .. first id + count - 1``."""

DEFAULT_CONFIG: dict[str, Any] = {
    # Kafka's Java partitioner for keys (librdkafka's default is CRC32: another partition for the same key).
    "partitioner": "murmur2_random",
    "linger.ms": 5,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1_048_576,
    "log_level": 4,
}
"""librdkafka settings of every producer made here; callers override any of them."""

_ORDER_ID = re.compile(rb'"order_id"\s*:\s*(\d+)')


def order_id_of(value: bytes) -> int | None:
    """The ``order_id`` of a serialized event or output row, without parsing the whole JSON.

    :param value: a Kafka message value.
    """
    match = _ORDER_ID.search(value)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class Progress:
    """Where a run stands, for a progress line.

    :param elapsed: seconds since the run started.
    :param sent: records handed to the client.
    :param acked: records the broker acknowledged.
    :param failed: records that could not be delivered.
    :param rate: records/s handed over since the previous report.
    :param target: the rate asked for (``None``: as fast as possible).
    """

    elapsed: float
    sent: int
    acked: int
    failed: int
    rate: float
    target: float | None


@dataclass
class RunStats:
    """What one :meth:`RateProducer.run` did.

    :param first_id: the first event id produced.
    :param end_id: one past the last.
    :param started_ms: epoch ms when it started.
    :param ended_ms: epoch ms when the last record was handed over (before the final flush).
    :param acked_ms: epoch ms when every record was acknowledged (after the flush).
    :param failed: records not delivered (in this run).
    :param errors: the first few delivery errors.
    :param batches: ``(first id, ts_ms)`` of each produced batch, ascending (with ``keep_batches``).
    """

    first_id: int
    end_id: int
    started_ms: float
    ended_ms: float
    acked_ms: float
    failed: int
    errors: list[str]
    batches: list[tuple[int, int]] = field(default_factory=list)

    @property
    def count(self) -> int:
        """Records produced."""
        return self.end_id - self.first_id

    @property
    def seconds(self) -> float:
        """Seconds from the start to the last record handed over."""
        return max(1e-9, (self.ended_ms - self.started_ms) / 1000)

    @property
    def rate(self) -> float:
        """Records/s handed over (the achieved rate)."""
        return self.count / self.seconds

    @property
    def acked_rate(self) -> float:
        """Records/s from the start until every record was acknowledged."""
        return self.count / max(1e-9, (self.acked_ms - self.started_ms) / 1000)


class RateProducer:
    """Produce events at a fixed rate (or as fast as possible); event ids continue across runs.

    :param topic: the topic.
    :param events: builds the keys and values of a batch of events.
    :param config: librdkafka settings (``bootstrap.servers`` at least), over :data:`DEFAULT_CONFIG`.
    :param first_id: the id of the first event.
    :param track: keep every acknowledged event id in :attr:`delivered` (read from the value's ``order_id``
        by ``id_of``) and count records per partition in :attr:`partitions`; costs a callback per record.
    :param id_of: reads an event's id back from its value (with ``track``).
    :param chunk: events built per batch.
    """

    def __init__(
        self,
        topic: str,
        events: EventBatch,
        *,
        config: Mapping[str, Any],
        first_id: int = 0,
        track: bool = False,
        id_of: Callable[[bytes], int | None] = order_id_of,
        chunk: int = 2000,
    ) -> None:
        from confluent_kafka import Producer

        self.topic = topic
        self.events = events
        self.next_id = first_id
        self.track = track
        self.chunk = chunk
        self.delivered: list[int] = []
        self.partitions: dict[int, int] = {}
        self.failed = 0
        self.errors: list[str] = []
        self._id_of = id_of
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: RunStats | None = None
        settings = {**DEFAULT_CONFIG, **config, "on_delivery": self._report}
        if not track:
            settings["delivery.report.only.error"] = True
        self._producer = Producer(settings)

    def _report(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.failed += 1
            if len(self.errors) < 5:
                self.errors.append(str(err))
        elif self.track:
            event_id = self._id_of(msg.value() or b"")
            if event_id is not None:
                self.delivered.append(event_id)
            part = msg.partition()
            self.partitions[part] = self.partitions.get(part, 0) + 1

    @property
    def in_flight(self) -> int:
        """Records handed over but not yet acknowledged (or failed)."""
        return len(self._producer)

    def run(
        self,
        rate: float | None,
        *,
        seconds: float | None = None,
        count: int | None = None,
        progress: Callable[[Progress], None] | None = None,
        progress_every: float = 1.0,
        keep_batches: bool = False,
        flush_timeout: float = 120,
    ) -> RunStats:
        """Produce until ``seconds`` passed, ``count`` events were produced or :meth:`stop`; then flush.

        :param rate: events per second; ``None`` for as fast as possible.
        :param seconds: how long (``None``: no time limit).
        :param count: how many events (``None``: no count limit).
        :param progress: called about every ``progress_every`` seconds, and once at the end.
        :param progress_every: seconds between progress calls.
        :param keep_batches: record ``(first id, ts_ms)`` per batch (event times for latency figures).
        :param flush_timeout: seconds to wait for the last acknowledgements.
        :raises ValueError: with neither a time nor a count limit and no way to stop (not in a thread).
        """
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be > 0 events/s (or None for as fast as possible), got {rate}")
        produce, poll, topic = self._producer.produce, self._producer.poll, self.topic
        first = self.next_id
        failed_before = self.failed
        batches: list[tuple[int, int]] = []
        started_ms = time.time() * 1000
        began = time.monotonic()
        end = began + seconds if seconds is not None else float("inf")
        limit = count if count is not None else -1
        next_report = began + progress_every
        reported_at, reported_sent = began, 0
        while not self._stop.is_set():
            now = time.monotonic()
            sent = self.next_id - first
            if now >= end or sent == limit:
                break
            due = self.chunk if rate is None else min(int(rate * (now - began)) - sent, self.chunk)
            if limit >= 0:
                due = min(due, limit - sent)
            if due <= 0:
                poll(0)
                time.sleep(min(0.002, max(0.0, (sent + 1) / rate - (now - began))) if rate else 0)
                continue
            ts_ms = int(time.time() * 1000)
            keys, values = self.events(self.next_id, due, ts_ms)
            if keep_batches:
                batches.append((self.next_id, ts_ms))
            for key, value in zip(keys, values, strict=True):
                while True:
                    try:
                        produce(topic, value, key, timestamp=ts_ms)
                        break
                    except BufferError:
                        poll(0.005)
            self.next_id += due
            poll(0)
            if progress is not None and now >= next_report:
                sent = self.next_id - first
                progress(self._progress(now - began, sent, (sent - reported_sent) / (now - reported_at), rate))
                reported_at, reported_sent, next_report = now, sent, now + progress_every
        ended_ms = time.time() * 1000
        self._producer.flush(flush_timeout)
        stats = RunStats(
            first_id=first,
            end_id=self.next_id,
            started_ms=started_ms,
            ended_ms=ended_ms,
            acked_ms=time.time() * 1000,
            failed=self.failed - failed_before,
            errors=list(self.errors),
            batches=batches,
        )
        if progress is not None:
            progress(self._progress((stats.ended_ms - started_ms) / 1000, stats.count, stats.rate, rate))
        self._last = stats
        return stats

    def _progress(self, elapsed: float, sent: int, rate: float, target: float | None) -> Progress:
        acked = sent - self.in_flight - self.failed
        return Progress(elapsed=elapsed, sent=sent, acked=max(0, acked), failed=self.failed, rate=rate, target=target)

    def start(self, rate: float | None, seconds: float | None = None, **kwargs: Any) -> None:
        """Produce in a background thread until :meth:`stop` (or ``seconds``).

        :param rate: events per second (``None``: as fast as possible).
        :param seconds: at most this long.
        :param kwargs: more :meth:`run` arguments.
        """
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, args=(rate,), kwargs={"seconds": seconds, **kwargs})
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> RunStats | None:
        """Stop the background run and wait for every acknowledgement; return its figures."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(180)
            self._thread = None
        self._producer.flush(60)
        return self._last

    def flush(self, timeout: float = 60) -> int:
        """Wait for outstanding acknowledgements; return how many are still outstanding.

        :param timeout: seconds.
        """
        return int(self._producer.flush(timeout))
