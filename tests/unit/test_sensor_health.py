"""FlinkJobHealthSensor: pokes with one cached hook, what the pokes found kept across reschedules, deferral and
resumption. The answers are the fake cluster's plus a checkpoint history captured from the real stack."""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout

from airflow_flink_provider.protocol.errors import FlinkJobFailedError, FlinkJobResourceError, FlinkJobUnhealthyError
from airflow_flink_provider.protocol.health import HealthPolicy, HealthWatch, Observation, wait_until_healthy
from airflow_flink_provider.protocol.http import Request, Response
from airflow_flink_provider.protocol.outage import Outage
from airflow_flink_provider.sensors.health import WATCH_KEY, FlinkJobHealthSensor
from airflow_flink_provider.triggers.health import FlinkJobHealthTrigger
from tests.unit._flink_fakes import FakeRest, FakeStateStore, FakeTI, deferral, make_context
from tests.unit.test_protocol_health import LOG, Clock, answer
from tests.unit.test_protocol_rest import Fake, ok

pytestmark = pytest.mark.unit

JOB = "0123456789abcdef0123456789abcdef"


def cluster(completed: int) -> FakeRest:
    """A RUNNING job whose checkpoint answer (captured) reports ``completed`` checkpoints in all."""
    rest = FakeRest()
    rest.add_job(JOB, "RUNNING")
    checkpoints = answer("checkpoints")
    checkpoints["counts"]["completed"] = completed
    rest.checkpoints[JOB] = checkpoints
    return rest


def make(rest: FakeRest, **kwargs: Any) -> FlinkJobHealthSensor:
    kwargs.setdefault("job_id", JOB)
    sensor = FlinkJobHealthSensor(task_id="health", poke_interval=0, timeout=30, **kwargs)
    sensor.hook = rest  # type: ignore[assignment]
    return sensor


def test_pokes_count_checkpoints_from_the_first_poke_and_return_the_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    rest = cluster(completed=14)
    ti = FakeTI()
    sensor = make(rest, min_checkpoints=2, deferrable=False)

    first = sensor.poke(make_context(ti))
    assert not first.is_done
    assert first.xcom_value["reason"] == "0 of 2 checkpoints completed"  # the 14 before the sensor ran do not count
    rest.checkpoints[JOB]["counts"]["completed"] = 16
    done = sensor.poke(make_context(ti))

    assert done.is_done
    assert done.xcom_value == {
        "job_id": JOB,
        "healthy": True,
        "reason": "RUNNING with all tasks, 2 checkpoints completed (>= 2)",
        "state": "RUNNING",
        "checkpoints": 2,
        "restarts": 0,
        "root_cause": None,
    }
    assert ti.xcoms["flink_job_id"] == JOB
    logged = capsys.readouterr().out
    assert logged.count(f"Flink web UI of job {JOB}: http://127.0.0.1:") == 1  # once, not once per poke
    assert f"/#/job/running/{JOB}/overview" in logged


def test_the_hook_is_made_once_for_all_pokes() -> None:
    sensor = FlinkJobHealthSensor(task_id="health", job_id=JOB)
    assert sensor.hook is sensor.hook


def test_reschedule_mode_keeps_what_the_pokes_found_in_the_task_state_store() -> None:
    rest = cluster(completed=14)
    store = FakeStateStore()
    assert not make(rest, min_checkpoints=2, mode="reschedule").poke(make_context(store=store)).is_done  # type: ignore[arg-type]
    assert store.values[WATCH_KEY]["last_completed_total"] == 14
    json.dumps(store.values[WATCH_KEY])  # plain values
    rest.checkpoints[JOB]["counts"]["completed"] = 15
    assert not make(rest, min_checkpoints=2, mode="reschedule").poke(make_context(store=store)).is_done  # type: ignore[arg-type]
    rest.checkpoints[JOB]["counts"]["completed"] = 16
    result = make(rest, min_checkpoints=2, mode="reschedule").poke(make_context(store=store))  # type: ignore[arg-type]
    assert result.is_done and result.xcom_value["checkpoints"] == 2


def test_a_failed_job_fails_the_poke_with_its_root_cause() -> None:
    rest = cluster(completed=0)
    rest.jobs[JOB]["state"] = "FAILED"
    rest.root_causes[JOB] = "java.lang.ArithmeticException: / by zero"
    with pytest.raises(FlinkJobFailedError, match="/ by zero"):
        make(rest).poke(make_context())


def test_deferrable_hands_the_policy_and_what_it_found_to_the_trigger_as_plain_values() -> None:
    rest = cluster(completed=14)
    sensor = make(rest, min_checkpoints=3, stable_for=5, max_restarts=1, deferrable=True)
    deferred, kwargs = deferral(sensor, FlinkJobHealthTrigger)
    assert kwargs["policy"] == {"min_checkpoints": 3, "checkpoints_since": None, "stable_for": 5, "max_restarts": 1}
    assert kwargs["memory"]["last_completed_total"] == 14 and kwargs["memory"]["started"] > 0
    assert FlinkJobHealthTrigger(**kwargs).serialize() == deferred.trigger.serialize()


def test_a_healthy_first_poke_does_not_defer() -> None:
    result = make(cluster(completed=0), deferrable=True).execute(make_context())
    assert result["healthy"] is True


def test_execute_complete_returns_the_verdict_or_raises_the_error() -> None:
    sensor = make(cluster(completed=0), deferrable=True)
    verdict = {"job_id": JOB, "healthy": True, "reason": "ok", "state": "RUNNING", "checkpoints": 3}
    assert sensor.execute_complete(make_context(), {"status": "success", "job_id": JOB, "verdict": verdict}) == verdict
    unhealthy = {
        "status": "error",
        "job_id": JOB,
        "message": f"Flink job {JOB} is not healthy: the job restarted 2 times, more than max_restarts=1",
        "error_type": "FlinkJobUnhealthyError",
        "root_cause": "java.lang.ArithmeticException: / by zero",
        "hint": None,
        "http_status": None,
    }
    with pytest.raises(FlinkJobUnhealthyError, match="more than max_restarts=1") as raised:
        sensor.execute_complete(make_context(), unhealthy)
    assert raised.value.root_cause == "java.lang.ArithmeticException: / by zero"
    with pytest.raises(AirflowSensorTimeout, match="not healthy before the deadline"):
        sensor.execute_complete(
            make_context(), {"status": "timeout", "job_id": JOB, "message": "not healthy before the deadline"}
        )


def test_bad_limits_fail_when_the_dag_is_parsed() -> None:
    with pytest.raises(ValueError, match="min_checkpoints"):
        FlinkJobHealthSensor(task_id="health", job_id=JOB, min_checkpoints=-1)


def test_a_failed_job_whose_history_is_still_empty_is_read_again_for_its_cause() -> None:
    """Flink serves the exception history from a cache (3 s): a job just seen FAILED may have no entry yet. The
    watch waits for it (a second between reads) up to CAUSE_WAIT seconds, then fails with the cause; a history
    that stays empty fails without one once the CAUSE_WAIT seconds are up, never sooner."""
    clock = Clock(answer("tm_lost_overview")["start-time"] / 1000)
    empty, filled = answer("healthy_exceptions"), answer("tm_lost_exceptions")
    looks: list[float] = []

    def cluster_with_history(entries_after: int | None) -> Fake:
        looks.clear()

        def handler(request: Request) -> Response:
            if request.path == "/jobs/overview":
                looks.append(clock.now)
                clock.now += 1.0  # each Sleep(1.0) of the wait
                return ok({"jobs": [{**answer("tm_lost_overview"), "jid": JOB}]})
            if request.path.endswith("/exceptions"):
                return ok(filled if entries_after is not None and len(looks) > entries_after else empty)
            return ok(answer("tm_lost_checkpoints"))

        return Fake(handler)

    def wait(fake: Fake) -> None:
        watch = HealthWatch(HealthPolicy(min_checkpoints=1), clock=clock)
        outage = Outage(60, what="Flink REST API", log=LOG, clock=clock)
        fake.run(wait_until_healthy(JOB, watch, timeout=600, poll_interval=30, outage=outage, log=LOG))

    late = cluster_with_history(entries_after=2)
    with pytest.raises(FlinkJobResourceError, match="NoResourceAvailableException") as failed:
        wait(late)
    assert failed.value.state == "FAILED" and len(looks) == 3 and late.sleeps == [1.0, 1.0]

    never = cluster_with_history(entries_after=None)
    with pytest.raises(FlinkJobFailedError) as bare:
        wait(never)
    assert bare.value.root_cause is None and looks[-1] - looks[0] >= 5 and 30 not in never.sleeps

    watch = HealthWatch(HealthPolicy(), clock=clock)
    verdict = watch.judge(Observation({**answer("tm_lost_overview")}, {"exceptions": empty}))
    assert (verdict.outcome, verdict.reason) == ("waiting", "the job FAILED; its exception history has no entry yet")
    resumed = HealthWatch(watch.policy, clock=clock, memory=json.loads(json.dumps(watch.as_dict())))
    clock.now += 5
    assert resumed.judge(Observation(answer("tm_lost_overview"), {"exceptions": empty})).outcome == "unhealthy"
