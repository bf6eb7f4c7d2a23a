"""FlinkJobHealthSensor's optional limits (protocol/health.py through metrics.check_limits), judged on answers
captured from the local stack: a job 198,000 records behind (tests/unit/data/flink_metrics) and a job that lost
its TaskManager three times (tests/unit/data/flink_health)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_flink_provider.protocol import metrics
from airflow_flink_provider.protocol.health import HealthPolicy, HealthWatch, Observation
from airflow_flink_provider.protocol.metrics import VertexLoad
from tests.unit.test_metrics_exchanges import JOB, captured, drive

pytestmark = pytest.mark.unit

DATA = Path(__file__).parent / "data"
LATEST_CHECKPOINT = 1796155557972 / 1000


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def look(vertices: VertexLoad | None = None, exceptions: str = "flink_metrics/exceptions.json") -> Observation:
    readings: dict[str, Any] = {"checkpoints": load("flink_metrics/checkpoints.json"), "exceptions": load(exceptions)}
    if vertices is not None:
        readings["vertices"] = vertices
    return Observation(load("flink_metrics/job.json"), readings)


def test_source_lag_keeps_the_job_waiting_until_it_drains() -> None:
    behind, requests = drive(metrics.get_vertex_load(JOB), captured)
    assert behind == VertexLoad(198000.0, "ok", 0.0, None)
    assert {r.path.rsplit("/", 1)[-1] for r in requests} >= {"watermarks", "metrics", "backpressure"}
    policy = HealthPolicy(max_pending_records=1000)
    assert policy.readings() == ("checkpoints", "exceptions", "vertices")
    watch = HealthWatch(policy, clock=Clock(LATEST_CHECKPOINT + 2))
    verdict = watch.judge(look(behind))
    assert verdict.outcome == "waiting"
    assert verdict.reason == "source_lag 198000 records over the limit 1000 records"
    assert "not reported yet" in watch.judge(look(VertexLoad(None, None, None, None))).reason
    drained = watch.judge(look(VertexLoad(0.0, "ok", 0.0, None)))
    assert drained.outcome == "healthy" and "within the lag" in drained.reason


def test_checkpoint_age_and_backpressure() -> None:
    policy = HealthPolicy(max_checkpoint_age=5, max_backpressure="ok")
    fresh = HealthWatch(policy, clock=Clock(LATEST_CHECKPOINT + 2)).judge(look(VertexLoad(None, "ok", 0.0, None)))
    assert fresh.outcome == "healthy", fresh.reason
    stale = HealthWatch(policy, clock=Clock(LATEST_CHECKPOINT + 60)).judge(look(VertexLoad(None, "low", 0.3, None)))
    assert stale.outcome == "waiting"
    assert stale.reason == "checkpoint_age 60.0 s over the limit 5 s; backpressure low (ratio 0.30) over the limit ok"


def test_restarts_in_a_window_wait_instead_of_failing() -> None:
    entries = load("flink_health/tm_lost_exceptions.json")["exceptionHistory"]["entries"]
    newest = max(entry["timestamp"] for entry in entries) / 1000
    policy = HealthPolicy(max_restarts_in_window=1, window=60)
    watch = HealthWatch(policy, clock=Clock(newest + 10))
    verdict = watch.judge(look(exceptions="flink_health/tm_lost_exceptions.json"))
    assert verdict.outcome == "waiting" and verdict.reason == "restarts 3 in 60 s over the limit 1 in 60 s"
    later = HealthWatch(policy, clock=Clock(newest + 61)).judge(look(exceptions="flink_health/tm_lost_exceptions.json"))
    assert later.outcome == "healthy", later.reason


def test_the_new_limits_are_checked_and_travel_to_the_trigger() -> None:
    with pytest.raises(ValueError, match="max_backpressure must be 'ok' or 'low'"):
        HealthPolicy(max_backpressure="high")
    with pytest.raises(ValueError, match="window"):
        HealthPolicy(window=-1)
    with pytest.raises(ValueError, match="max_failed_checkpoints must be a number >= 0"):
        HealthPolicy(max_failed_checkpoints=-1)
    policy = HealthPolicy(max_pending_records=10, max_checkpoint_age=30, max_failed_checkpoints=0,
                          max_restarts_in_window=0, max_backpressure="low", window=120)  # fmt: skip
    assert HealthPolicy.from_dict(json.loads(json.dumps(policy.as_dict()))) == policy
    assert HealthPolicy().readings() == ("checkpoints", "exceptions")
