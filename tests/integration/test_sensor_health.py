"""FlinkJobHealthSensor on the real stack: healthy after N checkpoints (poke), unhealthy with the root cause
(deferrable: the trigger's run, then execute_complete).

One test, two small jobs at parallelism 1 with 1 s checkpoints, both stateless over a bounded key space: a
datagen (random numbers 1-20, 5 rows a second) -> blackhole job, and one that divides by ``n - 12`` (a zero
divisor every ~4 s) and restarts each time (up to 1,000 times, 2 s apart): it never ends FAILED within the test,
so the deferred wait can only end by counting a restart. The test cancels both jobs. A datagen *sequence* keeps
every number still to come on the heap and in each checkpoint: the first version of this test (1..10^9) took the
shared TaskManager down.
"""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_flink_provider.protocol.errors import FlinkJobUnhealthyError
from airflow_flink_provider.sensors.health import FlinkJobHealthSensor
from tests.integration import _flink_it as it
from tests.integration._flink_it import context_for

pytestmark = pytest.mark.integration


PROPERTIES = {
    "parallelism.default": "1",
    "execution.checkpointing.interval": "1s",
    "restart-strategy.type": "fixed-delay",
    "restart-strategy.fixed-delay.attempts": "1000",
    "restart-strategy.fixed-delay.delay": "2s",
}


def start_job(select: str) -> str:
    """Submit a datagen (random numbers 1-20, 5 rows a second) -> blackhole job; ``select`` reads ``{src}``."""
    options = "'rows-per-second' = '5', 'fields.n.kind' = 'random', 'fields.n.min' = '1', 'fields.n.max' = '20'"
    return it.start_sql_job("it_health", select, source_options=options, properties=PROPERTIES)


def test_healthy_after_checkpoints_and_unhealthy_with_the_root_cause(started_jobs: list[str]) -> None:
    healthy = start_job("SELECT n FROM {src}")
    started_jobs.append(healthy)
    failing = start_job("SELECT 100 / (n - 12) FROM {src}")
    started_jobs.append(failing)

    # poke mode: RUNNING with all tasks and 2 checkpoints completed since the sensor first ran
    sensor = FlinkJobHealthSensor(
        task_id="health", job_id=healthy, min_checkpoints=2, poke_interval=0.5, timeout=240, mode="poke",
        deferrable=False,
    )  # fmt: skip
    context = context_for("health")
    verdict = sensor.execute(context)
    assert verdict["healthy"] is True and verdict["state"] == "RUNNING"
    assert verdict["checkpoints"] >= 2
    assert (verdict["restarts"] == 0) == (verdict["root_cause"] is None)  # a busy shared stack may restart it
    assert context["ti"].xcoms["flink_job_id"] == healthy
    completed = it.FlinkRestHook().get_checkpoints(healthy)["counts"]["completed"]
    assert completed >= verdict["checkpoints"]

    # deferrable: the first restart is one more than max_restarts=0; the trigger reports it with the cause
    deferred = FlinkJobHealthSensor(
        task_id="health_failing", job_id=failing, max_restarts=0, stable_for=600, poke_interval=0.5, timeout=240,
        deferrable=True,
    )  # fmt: skip
    with pytest.raises(TaskDeferred) as defer:
        deferred.execute(context_for("health_failing"))
    assert defer.value.trigger.serialize()[0] == "airflow_flink_provider.triggers.health.FlinkJobHealthTrigger"
    event = it.first_event(defer.value.trigger, timeout=270)
    assert event["status"] == "error" and event["error_type"] == "FlinkJobUnhealthyError", event
    with pytest.raises(FlinkJobUnhealthyError, match="more than max_restarts=0") as failed:
        deferred.execute_complete(context_for("health_failing"), event)
    assert "ArithmeticException: / by zero" in str(failed.value.root_cause)
