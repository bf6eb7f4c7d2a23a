"""Health-signal exchanges (protocol/metrics.py) on answers captured from the real local stack (Flink 2.1.3,
Kafka connector 5.0.0-2.1): a Kafka -> blackhole SQL job 200,000 records behind, checkpointing every 2 s.

The captures are in tests/unit/data/flink_metrics/; they were taken ~15 s after the job was RUNNING.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_flink_provider.protocol import metrics
from airflow_flink_provider.protocol.http import Exchange, Request, Response
from airflow_flink_provider.protocol.metrics import (
    Backpressure,
    CheckpointHealth,
    HealthLimits,
    JobSignals,
    check_limits,
)

pytestmark = pytest.mark.unit

DATA = Path(__file__).parent / "data" / "flink_metrics"
JOB = "5ac26c8c7dbd2133cd8d32da2852e663"
VERTEX = "cbc357ccb763df2852fee8c4fc7d55f2"
BASE = f"/jobs/{JOB}/vertices/{VERTEX}"
NOW = 1796155560000  # a little after the captures (the latest checkpoint was triggered at ...557972)


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def drive(exchange: Exchange[Any], answer: Callable[[Request], Any]) -> tuple[Any, list[Request]]:
    """Run an exchange, answering each request with ``answer(request)`` as a 200 JSON body."""
    requests: list[Request] = []
    try:
        step = next(exchange)
        while True:
            assert isinstance(step, Request)
            requests.append(step)
            body = answer(step)
            step = exchange.send(Response(200, body, json.dumps(body)))
    except StopIteration as stop:
        return stop.value, requests


def captured(request: Request) -> Any:
    """The real stack's answers, by path; ``?get=`` answers only the names asked for, as Flink does."""
    routes = {
        f"/jobs/{JOB}": "job.json",
        f"/jobs/{JOB}/checkpoints": "checkpoints.json",
        f"/jobs/{JOB}/checkpoints/config": "checkpoints_config.json",
        f"/jobs/{JOB}/exceptions": "exceptions.json",
        f"{BASE}/backpressure": "v0_backpressure.json",
        f"{BASE}/watermarks": "v0_watermarks.json",
    }
    if request.path == f"{BASE}/subtasks/metrics":
        if not request.params:
            return load("v0_subtask_metric_names.json")
        wanted = str(request.params["get"]).split(",")
        return [entry for entry in load("v0_subtask_metrics_get.json") if entry["id"] in wanted]
    return load(routes[request.path])


def test_pending_records_resolves_the_source_prefix_and_ignores_records_lag_max() -> None:
    names = [entry["id"] for entry in load("v0_subtask_metric_names.json")]
    assert metrics.resolve_metric_names(names, "pendingRecords") == ["Source__src[1].pendingRecords"]
    # records-lag-max stays at its catch-up peak afterwards: never resolved by its short name.
    assert metrics.resolve_metric_names(names, "records-lag-max") == []
    assert metrics.resolve_metric_names(names, "Source__src[1].KafkaSourceReader.KafkaConsumer.records-lag-max")
    value, requests = drive(metrics.get_vertex_metric(JOB, VERTEX, "pendingRecords"), captured)
    assert value == metrics.MetricAggregate("Source__src[1].pendingRecords", 198000.0, 198000.0, 198000.0, 198000.0)
    assert [r.params for r in requests] == [None, {"get": "Source__src[1].pendingRecords"}]


def test_unprefixed_vertex_metrics_are_empty_and_a_metric_not_yet_reported_is_none() -> None:
    assert load("v0_vertex_metrics_get_unprefixed.json") == []  # why the subtask level and the prefix
    value, requests = drive(metrics.get_vertex_metric(JOB, VERTEX, "pendingRecords"), lambda r: [])
    assert value is None
    assert len(requests) == 1  # nothing reported yet (the first ~10 s after RUNNING): no ?get= request


def test_several_operators_of_a_chain_are_summed() -> None:
    names = ["A.numRecordsOut", "B.numRecordsOut", "B.x.numRecordsOutPerSecond"]
    assert metrics.resolve_metric_names(names, "numRecordsOut") == ["A.numRecordsOut", "B.numRecordsOut"]
    agg = metrics.parse_metric_aggregates(
        [{"id": "A.numRecordsOut", "min": 1, "max": 2, "avg": 1.5, "sum": 3}, {"id": "B.numRecordsOut"}]
    )
    assert list(agg) == ["A.numRecordsOut"]  # an entry without values is skipped


def test_backpressure_sample_and_the_unsampled_answers() -> None:
    value, requests = drive(metrics.get_backpressure(JOB, VERTEX), captured)
    assert requests[0].path == f"{BASE}/backpressure"
    assert value == Backpressure(level="ok", ratio=0.0, busy_ratio=0.659)
    assert load("finished_backpressure.json") == {"status": "deprecated"}  # a FINISHED job's vertex
    assert metrics.parse_backpressure(load("finished_backpressure.json")) == Backpressure(level=None)
    assert metrics.worst_backpressure([Backpressure("ok"), Backpressure(None), Backpressure("high")]) == "high"
    assert metrics.worst_backpressure([Backpressure(None)]) is None


def test_checkpoint_health_from_the_captured_statistics() -> None:
    stats, config = load("checkpoints.json"), load("checkpoints_config.json")
    health = metrics.checkpoint_health(stats, config, NOW, started_ms=1796155494424)
    assert health.enabled and health.interval_ms == 2000
    # The 14 failed triggers happened while the tasks were not all running yet: they have no history entries,
    # so they are not "recent failures" (only the total says 14).
    assert (health.completed, health.failed, health.recent_failed) == (14, 14, 0)
    assert health.last_completed_ms == 1796155557972
    assert health.age_ms == NOW - 1796155557972
    assert health.last_duration_ms == 172
    assert health.durations_ms == (680, 517, 229, 107, 284, 593, 348, 235, 117, 172)  # oldest first
    off = metrics.checkpoint_health(stats, {"interval": metrics.CHECKPOINTING_DISABLED}, NOW)
    assert not off.enabled and off.interval_ms is None


def test_recent_failed_counts_failed_history_entries_within_the_window() -> None:
    stats = load("checkpoints.json")
    stats["history"][0] = {**stats["history"][0], "status": "FAILED", "failure_message": "Checkpoint expired"}
    health = metrics.checkpoint_health(stats, load("checkpoints_config.json"), NOW, window_ms=60_000)
    assert health.recent_failed == 1
    later = metrics.checkpoint_health(stats, load("checkpoints_config.json"), NOW + 600_000, window_ms=60_000)
    assert later.recent_failed == 0


def test_job_signals_of_the_captured_job() -> None:
    signals, requests = drive(metrics.get_job_signals(JOB, NOW, window_ms=600_000), captured)
    assert signals.name == "obs-capture-579f17" and signals.state == "RUNNING"
    assert signals.pending_records == 198000.0
    assert signals.backpressure == "ok"
    assert signals.watermark_delay_ms is None  # one chained vertex: no input watermark, no output one asked yet
    assert signals.restarts == 0
    assert signals.checkpoints.last_duration_ms == 172
    assert all(r.method == "GET" for r in requests)


def test_watermarks_of_a_windowed_job_and_min_value_as_none() -> None:
    # The window aggregate's vertex of a datagen -> TUMBLE -> blackhole job (its source vertex answers []).
    marks, requests = drive(metrics.get_watermarks(JOB, VERTEX), lambda r: load("window_v1_watermarks.json"))
    assert marks == {0: 1796155710572} and requests[0].path == f"{BASE}/watermarks"
    assert metrics.parse_watermarks(
        [{"id": "0.currentInputWatermark", "value": str(-(2**63))}, {"id": "1.currentInputWatermark", "value": "5"}]
    ) == {0: None, 1: 5}


def test_job_metrics() -> None:
    value, requests = drive(
        metrics.get_job_metrics(JOB, ["numRestarts"]), lambda r: load("job_metrics_numRestarts.json")
    )
    assert value == {"numRestarts": 0.0}
    assert requests[0].path == f"/jobs/{JOB}/metrics" and requests[0].params == {"get": "numRestarts"}


def signals(**changes: Any) -> JobSignals:
    health = CheckpointHealth(True, 2000, 10, 0, 0, NOW - 1000, 1000, 150, (100, 150))
    base = JobSignals(JOB, "orders", "RUNNING", NOW, 0.0, "ok", 0.0, 2000, health, 0, 600_000)
    return JobSignals(**{**base.__dict__, **changes})


def test_limits_fire_on_each_signal_and_not_on_a_healthy_job() -> None:
    limits = HealthLimits(
        max_pending_records=1000, checkpoint_age_intervals=3, max_failed_checkpoints=0, max_restarts=0,
        max_backpressure="low", max_watermark_delay_s=60,
    )  # fmt: skip
    assert check_limits(signals(), limits) == []
    assert check_limits(signals(pending_records=None), limits) == []  # not reported yet: no breach
    stale = CheckpointHealth(True, 2000, 10, 3, 0, NOW - 9000, 9000, 150, (), recent_failed=2)
    found = check_limits(
        signals(pending_records=191700.0, backpressure="high", backpressure_ratio=0.93, watermark_delay_ms=120_000,
                checkpoints=stale, restarts=2),
        limits,
    )  # fmt: skip
    assert [(b.metric, b.threshold, b.value) for b in found] == [
        ("source_lag", "1000 records", "191700 records"),
        ("checkpoint_age", "6 s", "9.0 s"),
        ("failed_checkpoints", "0 in 600 s", "2 in 600 s"),
        ("restarts", "0 in 600 s", "2 in 600 s"),
        ("backpressure", "low", "high (ratio 0.93)"),
        ("watermark_delay", "60 s", "120.0 s"),
    ]
    assert check_limits(signals(backpressure="low"), limits) == []


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="max_backpressure must be 'ok' or 'low'"):
        HealthLimits(max_backpressure="high")
    with pytest.raises(ValueError, match="max_restarts must be a number >= 0"):
        HealthLimits(max_restarts=-1)
