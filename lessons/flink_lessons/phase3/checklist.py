"""The operational checklist: one definition that docs/operations-checklist.md and the ``flink_ops_report``
DAG are both generated from (a unit test keeps the document equal to :func:`markdown`).

Each :class:`Item` says where a signal shows in the Flink UI or in Kafka, the REST call or CLI command that
shows it, its healthy range and what a bad value means, which lesson demonstrates it, and how the report
judges a running job's value (``ok`` / ``warn`` / ``bad``). The values come from the provider's one health
exchange (``FlinkRestHook.get_job_signals``) and from the Kafka admin API (a consumer group's lag).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_flink_provider.protocol.metrics import JobSignals

OK, WARN, BAD = "ok", "warn", "bad"

Judge = Callable[[Any], str]
"""A value -> ``ok``, ``warn`` or ``bad``."""


@dataclass(frozen=True)
class Item:
    """One checklist item.

    :param key: its id in the report.
    :param title: what it is.
    :param ui: where it shows in the Flink UI (or Kafka's tools).
    :param command: the REST call or CLI command that shows it.
    :param healthy: the healthy range.
    :param bad: what a bad value means, and what to do.
    :param lesson: the lesson that demonstrates it.
    :param value: reads the value from the job's signals and the Kafka figures.
    :param judge: the verdict on that value.
    """

    key: str
    title: str
    ui: str
    command: str
    healthy: str
    bad: str
    lesson: str
    value: Callable[[JobSignals, Mapping[str, Any]], Any]
    judge: Judge


def _at_most(warn: float, bad: float) -> Judge:
    def judge(value: Any) -> str:
        return OK if value is None or value <= warn else WARN if value <= bad else BAD

    return judge


def _state(value: Any) -> str:
    return OK if value == "RUNNING" else WARN if value in ("INITIALIZING", "CREATED", "RESTARTING") else BAD


def _backpressure(value: Any) -> str:
    return {None: OK, "ok": OK, "low": WARN}.get(value, BAD)


def _checkpoint_age(signals: JobSignals, kafka: Mapping[str, Any]) -> float | None:
    """Seconds since the last completed checkpoint, in configured intervals (None: checkpointing off)."""
    health = signals.checkpoints
    if not health.enabled or not health.interval_ms or health.age_ms is None:
        return None
    return round(health.age_ms / health.interval_ms, 2)


def _duration_share(signals: JobSignals, kafka: Mapping[str, Any]) -> float | None:
    health = signals.checkpoints
    if not health.interval_ms or health.last_duration_ms is None:
        return None
    return round(health.last_duration_ms / health.interval_ms, 2)


DRILL = "phase 3 lesson 4, flink_phase3_checkpoints (failure drill: a TaskManager killed three times)"
TUNING = "phase 3 lesson 4, flink_phase3_checkpoints (checkpoint settings side by side)"
"""The lesson 4 parts that demonstrate the job's state and its checkpoints."""

ITEMS: tuple[Item, ...] = (
    Item("state", "Job state", "Jobs > Running Jobs: the job's status badge",
         "GET /jobs/{id}/status", "RUNNING with every task RUNNING",
         "Anything else: the job is not processing. RESTARTING/FAILING: read Exceptions (GET /jobs/{id}/exceptions).",
         DRILL, lambda s, k: s.state, _state),
    Item("restarts", "Restarts in the last 10 minutes", "Job > Exceptions: the exception history",
         "GET /jobs/{id}/exceptions (entries with a timestamp in the window)", "0; 1-2 is a warning",
         "The job keeps failing and restoring from its last checkpoint: a poison record, a lost TaskManager, "
         "a bad dependency. Each restart replays input since that checkpoint.",
         DRILL,
         lambda s, k: s.restarts, _at_most(0, 2)),
    Item("backpressure", "Worst back-pressure level", "Job graph > a vertex > BackPressure tab (and its colour)",
         "GET /jobs/{id}/vertices/{vid}/backpressure (backpressureLevel, per subtask ratio, busyRatio)",
         "ok (back-pressured < 10 % of the time); low is a warning",
         "high: a downstream operator or the sink cannot keep up; the first vertex that is busy (not "
         "back-pressured) is the bottleneck. Checkpoints slow down (barriers queue behind the data).",
         "phase 3 lesson 3, flink_phase3_backpressure", lambda s, k: s.backpressure, _backpressure),
    Item("pending_records", "Source backlog (pendingRecords)",
         "Job > a source vertex > Metrics: <source>.pendingRecords",
         "GET /jobs/{id}/vertices/{vid}/subtasks/metrics?get=<source>.pendingRecords&agg=sum",
         "steady or falling; under 100,000 for this report",
         "Growing: the job reads slower than producers write (look for back-pressure and busy vertices); it "
         "is the Kafka source's own lag.", "phase 3 lesson 3, flink_phase3_backpressure",
         lambda s, k: s.pending_records, _at_most(10_000, 100_000)),
    Item("checkpoint_age", "Time since the last completed checkpoint, in intervals",
         "Job > Checkpoints > Overview: Latest Completed Checkpoint",
         "GET /jobs/{id}/checkpoints (latest.completed.latest_ack_timestamp) and /checkpoints/config (interval)",
         "under 2 intervals; up to 5 is a warning",
         "Checkpoints fail or take too long: on a failure the job replays more, and Kafka offsets (committed "
         "on checkpoints) and exactly-once sinks (committed on checkpoints) fall behind.",
         TUNING, _checkpoint_age, _at_most(2, 5)),
    Item("checkpoint_duration", "Last checkpoint's duration, as a share of the interval",
         "Job > Checkpoints > History: End to End Duration",
         "GET /jobs/{id}/checkpoints (latest.completed.end_to_end_duration)", "under 0.5 of the interval",
         "Close to 1: the job spends its time checkpointing; raise the interval or the minimum pause, use "
         "unaligned checkpoints under back-pressure, or RocksDB incremental for large state.",
         TUNING, _duration_share, _at_most(0.5, 1.0)),
    Item("failed_checkpoints", "Failed checkpoints in the last 10 minutes", "Job > Checkpoints > History (FAILED)",
         "GET /jobs/{id}/checkpoints (history: status FAILED)", "0; 1 is a warning",
         "Timeouts (raise execution.checkpointing.timeout or fix back-pressure) or storage errors; after "
         "execution.checkpointing.tolerable-failed-checkpoints the job fails.",
         TUNING, lambda s, k: s.checkpoints.recent_failed, _at_most(0, 1)),
    Item("watermark_delay", "Watermark delay (wall clock minus the lowest watermark), seconds",
         "Job > a vertex > Watermarks tab", "GET /jobs/{id}/vertices/{vid}/watermarks",
         "a few seconds over the configured out-of-orderness; under 60 s for this report",
         "Large or growing: an idle partition or source holds the watermark back (set "
         "table.exec.source.idle-timeout), or the job is behind; event-time windows fire late.",
         "phase 1 event_time_watermarks, late_events",
         lambda s, k: None if s.watermark_delay_ms is None else round(s.watermark_delay_ms / 1000, 1),
         _at_most(60, 600)),
    Item("group_lag", "Consumer group lag (end offsets minus committed offsets)",
         "Kafka: kafka-consumer-groups.sh --describe --group <group> (LAG column)",
         "kafka-consumer-groups.sh --bootstrap-server <brokers> --describe --group <group>; admin API "
         "list_consumer_group_offsets + list_offsets",
         "small and falling between checkpoints; under 100,000 for this report",
         "Flink commits offsets only on checkpoints (they do not drive its position: its state does): a lag "
         "that only grows means checkpoints do not complete, or the job reads slower than producers write.",
         "phase 3 lesson 2, flink_phase3_offsets",
         lambda s, k: k.get("group_lag"), _at_most(10_000, 100_000)),
)  # fmt: skip
"""Every checklist item, in the order of the document and the report."""


def evaluate(signals: JobSignals, kafka: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each item's value and verdict for one job.

    :param signals: the provider's :class:`JobSignals` of the job.
    :param kafka: Kafka figures (``group_lag``, or nothing when no group was given).
    """
    rows = []
    for item in ITEMS:
        value = item.value(signals, kafka)
        rows.append({"item": item.key, "title": item.title, "value": value, "verdict": item.judge(value),
                     "healthy": item.healthy, "lesson": item.lesson})  # fmt: skip
    return rows


def markdown() -> str:
    """docs/operations-checklist.md."""
    lines = [
        "# Operations checklist: what to inspect in the Flink UI and in Kafka",
        "",
        "<!-- Generated from lessons/flink_lessons/phase3/checklist.py (ITEMS); tests/unit/test_phase3_lessons.py",
        "     keeps this file equal to it. Edit ITEMS, then regenerate:",
        "     .venv/bin/python -m flink_lessons.phase3.checklist > docs/operations-checklist.md -->",
        "",
        'Run `airflow dags test flink_ops_report -c \'{"job": "<job id or name>"}\'` to collect every item for a',
        "running job; the report gives each value a verdict (ok / warn / bad) by the ranges below and fails when",
        "an item is bad and `fail_on_bad` is set. `kafka_group` adds the consumer group's lag.",
        "",
    ]
    for number, item in enumerate(ITEMS, 1):
        lines += [
            f"## {number}. {item.title}",
            "",
            f"- **In the UI:** {item.ui}",
            f"- **REST / CLI:** {_code(item.command)}",
            f"- **Healthy:** {item.healthy}",
            f"- **When bad:** {item.bad}",
            f"- **Lesson:** {item.lesson}",
            f"- **Report key:** `{item.key}`",
            "",
        ]  # fmt: skip
    return "\n".join(lines)


def _code(command: str) -> str:
    """A REST call as code; a CLI command with prose around it as it is."""
    return f"`{command}`" if command.startswith("GET") and "(" not in command else command


def job_id_of(flink: Any, job: str) -> str:
    """The id of ``job``: a 32-hex job id as it is, else the newest RUNNING job of that name.

    :param flink: a ``FlinkRestHook``.
    :param job: a job id or a job name.
    :raises ValueError: no running job has that name.
    """
    if len(job) == 32 and all(c in "0123456789abcdef" for c in job.lower()):
        return job.lower()
    running = flink.list_jobs(name=job, states=["RUNNING"])
    if not running:
        raise ValueError(f"no RUNNING Flink job is named {job!r}; give its id or exact name")
    return str(running[0]["jid"])


def group_lag(kafka: Any, group: str) -> int | None:
    """A consumer group's lag: end offsets minus its committed offsets, summed over its partitions.

    :param kafka: a :class:`~flink_lessons.load.kafka.Kafka`.
    :param group: the group id (Flink's ``properties.group.id``).
    :return: the lag, ``None`` when the group committed nothing (yet).
    """
    committed = kafka.group_offsets(group)
    if not committed:
        return None
    ends: dict[str, dict[int, int]] = {}
    for topic in {t for t, _ in committed}:
        ends[topic] = kafka.end_offsets(topic)
    return sum(max(0, ends[t][p] - offset) for (t, p), offset in committed.items())


if __name__ == "__main__":
    print(markdown(), end="")
