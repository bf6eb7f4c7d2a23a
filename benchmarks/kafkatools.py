"""Kafka's own performance tools (the baselines) and the benchmarks' producers and output reader.

``ProducerPerformance`` and ``ConsumerPerformance`` run from the stack's Kafka jars with their default
client settings: "what Kafka itself can do on this box". Their output parsers are pure and unit-tested.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import env

_PRODUCER_SUMMARY = re.compile(
    r"(?P<records>\d+) records sent, (?P<rate>[\d.]+) records/sec \((?P<mb>[\d.]+) MB/sec\), "
    r"(?P<avg>[\d.]+) ms avg latency, (?P<max>[\d.]+) ms max latency"
)


def parse_producer_performance(output: str) -> dict[str, float]:
    """The final summary of ``ProducerPerformance``: records, records/s, MB/s, avg and max latency (ms).

    :param output: the tool's stdout.
    :raises ValueError: when there is no summary line.
    """
    matches = list(_PRODUCER_SUMMARY.finditer(output))
    if not matches:
        raise ValueError(f"no ProducerPerformance summary in its output: {output[-500:]!r}")
    last = matches[-1]  # progress lines come first; the summary is the last such line
    return {
        "records": float(last["records"]),
        "records_per_s": float(last["rate"]),
        "mb_per_s": float(last["mb"]),
        "avg_latency_ms": float(last["avg"]),
        "max_latency_ms": float(last["max"]),
    }


def parse_consumer_performance(output: str) -> dict[str, float]:
    """The stats line of ``ConsumerPerformance``, by its header's column names.

    Keys include ``nMsg.sec`` (messages over the whole run, group join included) and ``fetch.nMsg.sec``
    (over the fetch time only).

    :param output: the tool's stdout.
    :raises ValueError: when the header or stats line is missing.
    """
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if line.startswith("start.time") and index + 1 < len(lines):
            names = [name.strip() for name in line.split(",")]
            values = [value.strip() for value in lines[index + 1].split(",")]
            stats = {}
            for name, value in zip(names, values, strict=False):
                try:
                    stats[name] = float(value)
                except ValueError:
                    continue
            if "nMsg.sec" in stats:
                return stats
    raise ValueError(f"no ConsumerPerformance stats in its output: {output[-500:]!r}")


def _run_tool(tool: str, args: list[str], parse: Callable[[str], dict[str, float]], timeout: float) -> dict[str, float]:
    """Run one of Kafka's performance tools in java (no log4j config: the tools log nothing but errors).

    :param tool: the tool's class name in ``org.apache.kafka.tools``.
    :param args: its arguments.
    :param parse: reads its stats from its output.
    :param timeout: seconds.
    :return: the stats, plus ``process_s``: how long the process ran.
    """
    cmd = ["java", "-Xms256m", "-Xmx768m", "-cp", str(env.KAFKA_JARS / "*"), f"org.apache.kafka.tools.{tool}", *args]
    began = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} failed ({proc.returncode}): {proc.stderr[-800:]}")
    stats = parse(proc.stdout)
    stats["process_s"] = time.monotonic() - began
    return stats


def producer_performance(topic: str, records: int, payload_file: Path, timeout: float = 600) -> dict[str, float]:
    """Run ``ProducerPerformance`` at full speed with payloads from a file (one message per line).

    :param topic: the topic.
    :param records: how many records.
    :param payload_file: messages to pick from at random.
    :param timeout: seconds.
    """
    args = [
        "--topic", topic,
        "--num-records", str(records),
        "--throughput", "-1",
        "--payload-file", str(payload_file),
        "--producer-props", f"bootstrap.servers={env.BOOTSTRAP}",
    ]  # fmt: skip
    return _run_tool("ProducerPerformance", args, parse_producer_performance, timeout)


def consumer_performance(topic: str, messages: int, timeout: float = 600) -> dict[str, float]:
    """Run ``ConsumerPerformance`` over the first ``messages`` of a topic, in a fresh group.

    :param topic: the topic.
    :param messages: how many messages to read.
    :param timeout: seconds.
    """
    args = [
        "--bootstrap-server", env.BOOTSTRAP,
        "--topic", topic,
        "--messages", str(messages),
        "--group", f"bench-perf-{uuid.uuid4().hex[:8]}",
        "--timeout", "30000",
    ]  # fmt: skip
    return _run_tool("ConsumerPerformance", args, parse_consumer_performance, timeout)


def producer(**overrides: Any) -> Any:
    """A confluent-kafka producer for the stack's broker.

    :param overrides: producer settings.
    """
    from confluent_kafka import Producer

    return Producer({"bootstrap.servers": env.BOOTSTRAP, "linger.ms": 5, "log_level": 4, **overrides})


def produce_all(topic: str, values: Iterable[bytes]) -> int:
    """Produce messages as fast as possible and wait until all are acknowledged; return the count.

    :param topic: the topic.
    :param values: message values.
    :raises RuntimeError: when a message could not be delivered.
    """
    prod = producer(**{"queue.buffering.max.messages": 500_000})
    failures: list[str] = []

    def report(err: Any, msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    count = 0
    for value in values:
        while True:
            try:
                prod.produce(topic, value, on_delivery=report)
                break
            except BufferError:
                prod.poll(0.05)
        count += 1
        if count % 10_000 == 0:
            prod.poll(0)
    prod.flush(120)
    if failures:
        raise RuntimeError(f"{len(failures)} message(s) not delivered to {topic}: {failures[0]}")
    return count


def _producer_process(conn: Any, topic: str, templates: list[dict[str, Any]]) -> None:
    """The body of :class:`ProducerProcess`: run ``(rate, seconds)`` commands until ``None``."""
    from flink_lessons.load.producer import RateProducer

    from benchmarks.events import EventFactory

    producer = RateProducer(topic, EventFactory(templates).batch, config={"bootstrap.servers": env.BOOTSTRAP})
    while (command := conn.recv()) is not None:
        rate, seconds = command
        stats = producer.run(rate, seconds=seconds, keep_batches=True)
        conn.send((stats.first_id, stats.end_id, stats.started_ms, stats.ended_ms, stats.batches, stats.errors[-3:]))
    producer.flush()


class ProducerProcess:
    """The load command's producer (:class:`flink_lessons.load.producer.RateProducer`) of phase-0 events in a
    process of its own, so the benchmark's reader thread (and the GIL) does not cap the input rate.

    :param topic: the topic.
    :param templates: the event templates (:class:`~benchmarks.events.EventFactory`).
    """

    def __init__(self, topic: str, templates: list[dict[str, Any]]) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # no fork: the parent runs librdkafka threads
        self._conn, child = context.Pipe()
        self._proc = context.Process(target=_producer_process, args=(child, topic, templates), daemon=True)
        self._proc.start()

    def run(self, rate: float, seconds: float) -> tuple[int, int, float, float, list[tuple[int, int]], list[str]]:
        """Produce at ``rate`` for ``seconds``.

        :param rate: events per second.
        :param seconds: how long.
        :return: first id, end id, start and end (epoch ms), ``(first id, ts_ms)`` per batch, delivery errors.
        """
        self._conn.send((rate, seconds))
        if not self._conn.poll(seconds + 120):
            raise TimeoutError("the producer process did not answer")
        return self._conn.recv()

    def close(self) -> None:
        """Stop the process."""
        if self._proc.is_alive():
            self._conn.send(None)
            self._proc.join(60)
        if self._proc.is_alive():
            self._proc.terminate()


@dataclass
class OutputReader:
    """Read a topic from the start in a background thread, keeping what each message says.

    :param topic: the topic.
    :param on_message: ``(value, timestamp_ms) -> None`` for every message.
    :param read_committed: only read committed transactional messages (exactly-once sinks).
    """

    topic: str
    on_message: Callable[[bytes, int], None]
    read_committed: bool = False
    count: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> OutputReader:
        """Start reading; returns self."""
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer(
            {
                "bootstrap.servers": env.BOOTSTRAP,
                "group.id": f"bench-reader-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed" if self.read_committed else "read_uncommitted",
                "fetch.max.bytes": 52_428_800,
                "log_level": 4,
            }
        )
        consumer.assign([TopicPartition(self.topic, 0, 0)])

        def loop() -> None:
            try:
                while not self._stop.is_set():
                    for msg in consumer.consume(num_messages=5000, timeout=0.2):
                        error = msg.error()
                        if error is not None:
                            if error.code() != -191:  # _PARTITION_EOF
                                self.errors.append(str(error))
                            continue
                        self.on_message(msg.value() or b"", msg.timestamp()[1])
                        self.count += 1
            finally:
                consumer.close()

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def wait_for(self, count: int, *, stall: float = 30, timeout: float = 600) -> bool:
        """Wait until ``count`` messages were read; ``False`` when progress stalls or time runs out.

        :param count: the message count to reach.
        :param stall: give up after this many seconds without a new message.
        :param timeout: give up after this many seconds in all.
        """
        deadline = time.monotonic() + timeout
        last, last_change = self.count, time.monotonic()
        while self.count < count:
            now = time.monotonic()
            if self.count != last:
                last, last_change = self.count, now
            if now - last_change > stall or now > deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self) -> None:
        """Stop reading."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
