"""The health rules (protocol/health.py) judged on answers captured from the local Flink 2.1.3 stack.

``data/flink_health`` holds real answers: a datagen -> blackhole job (1 s checkpoints) just submitted
(``healthy_*_start``: tasks DEPLOYING, no checkpoint yet, no exception); a job whose TaskManager stopped
answering heartbeats, then found no slots and FAILED (``tm_lost_*``); a job restarting after an
``OutOfMemoryError`` in its TaskManager (``oom_restart_exceptions``). A RUNNING job with 14 completed
checkpoints (a history of 10) is read from ``data/flink_metrics`` (captured for the metrics tests).
The same rules run against the real stack in tests/integration/test_sensor_health.py.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from airflow_flink_provider.protocol.errors import (
    FlinkConnectionError,
    FlinkJobFailedError,
    FlinkJobResourceError,
    FlinkJobUnhealthyError,
    FlinkNotFoundError,
)
from airflow_flink_provider.protocol.health import (
    HealthPolicy,
    HealthVerdict,
    HealthWatch,
    Observation,
    observe,
    unhealthy_error,
    wait_until_healthy,
)
from airflow_flink_provider.protocol.http import Response
from airflow_flink_provider.protocol.outage import Outage
from tests.unit.test_protocol_rest import Fake, ok

pytestmark = pytest.mark.unit

DATA = Path(__file__).parent / "data"
LOG = logging.getLogger("test.health")
ANSWERS = {
    "running_job": "flink_metrics/job",
    "checkpoints": "flink_metrics/checkpoints",
}


@cache
def _load(name: str) -> str:
    return (DATA / f"{ANSWERS.get(name, 'flink_health/' + name)}.json").read_text()


def answer(name: str) -> Any:
    """A captured answer (a fresh copy)."""
    return json.loads(_load(name))


class Clock:
    """Epoch seconds that a test moves."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


SUBMITTED = answer("healthy_overview_start")["start-time"] / 1000
"""When the captured fresh job started (before every captured checkpoint and failure)."""


def look(job: str, checkpoints: str | None, exceptions: str) -> Observation:
    readings = {"exceptions": answer(exceptions)}
    if checkpoints is not None:
        readings["checkpoints"] = answer(checkpoints)
    return Observation(answer(job), readings)


def newest_failure_at(exceptions: str) -> float:
    return max(entry["timestamp"] for entry in answer(exceptions)["exceptionHistory"]["entries"]) / 1000


def test_policy_names_a_bad_limit() -> None:
    for kwargs, named in [
        ({"min_checkpoints": -1}, "min_checkpoints"),
        ({"min_checkpoints": 1.5}, "min_checkpoints"),
        ({"stable_for": float("nan")}, "stable_for"),
        ({"stable_for": "10"}, "stable_for"),
        ({"max_restarts": -2}, "max_restarts"),
        ({"max_restarts": True}, "max_restarts"),
        ({"checkpoints_since": -5}, "checkpoints_since"),
    ]:
        with pytest.raises(ValueError, match=named):
            HealthPolicy(**kwargs)
    with pytest.raises(ValueError, match=r"unknown health limit\(s\) \['max_lag'\]"):
        HealthPolicy.from_dict({"max_lag": 5})
    policy = HealthPolicy(min_checkpoints=2, stable_for=30, max_restarts=1, checkpoints_since=1.0)
    assert HealthPolicy.from_dict(json.loads(json.dumps(policy.as_dict()))) == policy


def test_a_fresh_job_waits_for_its_tasks_then_for_checkpoints_then_is_healthy() -> None:
    clock = Clock(SUBMITTED)
    watch = HealthWatch(HealthPolicy(min_checkpoints=3), clock=clock)

    first = watch.judge(look("healthy_overview_start", "healthy_checkpoints_start", "healthy_exceptions"))
    assert first.outcome == "waiting"
    assert first.reason == "tasks not running: 2 of 2 tasks (DEPLOYING 2); 0 of 3 checkpoints completed"

    checkpoints = answer("checkpoints")
    clock.now = checkpoints["latest"]["completed"]["latest_ack_timestamp"] / 1000
    second = watch.judge(look("running_job", "checkpoints", "healthy_exceptions"))
    # all 14 count, though the history holds only the last 10: the completed count grew by 14 since the first look
    assert len(checkpoints["history"]) == 10 and checkpoints["counts"]["completed"] == 14
    assert second == HealthVerdict("healthy", "RUNNING with all tasks, 14 checkpoints completed (>= 3)", "RUNNING", 14)
    assert second.as_xcom("j") == {
        "job_id": "j",
        "healthy": True,
        "reason": second.reason,
        "state": "RUNNING",
        "checkpoints": 14,
        "restarts": 0,
        "root_cause": None,
    }


def test_checkpoints_before_the_watch_began_do_not_count() -> None:
    completed = answer("checkpoints")["latest"]["completed"]
    clock = Clock(completed["latest_ack_timestamp"] / 1000 + 0.001)  # the sensor first ran after all of them
    watch = HealthWatch(HealthPolicy(min_checkpoints=1), clock=clock)
    verdict = watch.judge(look("running_job", "checkpoints", "healthy_exceptions"))
    assert (verdict.outcome, verdict.checkpoints) == ("waiting", 0)
    assert watch.judge(look("running_job", "checkpoints", "healthy_exceptions")).checkpoints == 0  # nor twice

    # an explicit start counts those triggered since then, from the history
    since = answer("checkpoints")["history"][2]["trigger_timestamp"] / 1000
    explicit = HealthWatch(HealthPolicy(min_checkpoints=3, checkpoints_since=since), clock=clock)
    verdict = explicit.judge(look("running_job", "checkpoints", "healthy_exceptions"))
    assert (verdict.outcome, verdict.checkpoints) == ("healthy", 3)
    assert explicit.judge(look("running_job", "checkpoints", "healthy_exceptions")).checkpoints == 3


def test_stable_for_counts_from_when_all_tasks_ran_and_restarts_reset_it() -> None:
    clock = Clock(SUBMITTED)
    watch = HealthWatch(HealthPolicy(stable_for=30), clock=clock)
    running = watch.judge(look("running_job", None, "healthy_exceptions"))
    assert running.outcome == "waiting" and running.reason == "stable for 0s of 30s"
    clock.now += 29
    assert watch.judge(look("running_job", None, "healthy_exceptions")).outcome == "waiting"
    clock.now += 1
    assert watch.judge(look("running_job", None, "healthy_exceptions")).outcome == "healthy"

    # the job restarted after that (a new exception entry) and runs again: stable counts from the restart
    restart_at = newest_failure_at("oom_restart_exceptions")
    clock.now = restart_at + 5
    verdict = watch.judge(look("running_job", None, "oom_restart_exceptions"))
    assert (verdict.outcome, verdict.restarts, verdict.reason) == ("waiting", 1, "stable for 5s of 30s")
    assert verdict.root_cause == "OutOfMemoryError: Java heap space"
    clock.now = restart_at + 30
    assert watch.judge(look("running_job", None, "oom_restart_exceptions")).outcome == "healthy"


def test_one_restart_more_than_allowed_is_fatal_with_the_root_cause() -> None:
    clock = Clock(SUBMITTED)
    watch = HealthWatch(HealthPolicy(max_restarts=0), clock=clock)
    assert watch.judge(look("running_job", None, "healthy_exceptions")).restarts == 0
    clock.now = newest_failure_at("oom_restart_exceptions") + 1
    verdict = watch.judge(look("running_job", None, "oom_restart_exceptions"))
    assert verdict.outcome == "unhealthy"
    assert verdict.reason == "the job restarted 1 times, more than max_restarts=0"
    error = unhealthy_error("j", verdict)
    assert type(error) is FlinkJobUnhealthyError
    assert error.root_cause == "OutOfMemoryError: Java heap space"
    assert str(error).startswith("Flink job j is not healthy: the job restarted 1 times")


def test_restarts_before_the_watch_began_are_not_counted_and_none_twice() -> None:
    entries = answer("tm_lost_exceptions")["exceptionHistory"]["entries"]
    second_failure = sorted(entry["timestamp"] for entry in entries)[1] / 1000
    watch = HealthWatch(HealthPolicy(max_restarts=5), clock=Clock(second_failure))
    verdict = watch.judge(look("running_job", None, "tm_lost_exceptions"))
    assert verdict.restarts == len(entries) - 1 == 2
    assert watch.judge(look("running_job", None, "tm_lost_exceptions")).restarts == 2


@pytest.mark.parametrize("began", ["before", "after"])
def test_a_failed_job_is_fatal_with_its_typed_error(began: str) -> None:
    """Also when the job had failed before the watch began: the cause is then read from the whole history."""
    at = SUBMITTED if began == "before" else newest_failure_at("tm_lost_exceptions") + 60
    watch = HealthWatch(HealthPolicy(min_checkpoints=5), clock=Clock(at))
    verdict = watch.judge(look("tm_lost_overview", "tm_lost_checkpoints", "tm_lost_exceptions"))
    assert (verdict.outcome, verdict.state, verdict.reason) == ("unhealthy", "FAILED", "the job is FAILED")
    error = unhealthy_error("j", verdict)
    assert isinstance(error, FlinkJobResourceError) and isinstance(error, FlinkJobFailedError)
    assert "NoResourceAvailableException: Could not acquire the minimum required resources" in str(error)
    assert error.hint


@pytest.mark.parametrize("state", ["FINISHED", "CANCELED", "CANCELLING", "FAILING", "SUSPENDED"])
def test_every_end_is_fatal(state: str) -> None:
    job = {**answer("running_job"), "state": state}
    watch = HealthWatch(HealthPolicy(), clock=Clock(SUBMITTED))
    verdict = watch.judge(Observation(job, {"exceptions": answer("healthy_exceptions")}))
    assert (verdict.outcome, verdict.reason) == ("unhealthy", f"the job is {state}")


@pytest.mark.parametrize("state", ["CREATED", "INITIALIZING", "RESTARTING", "RECONCILING", "SOMETHING_NEW"])
def test_states_on_the_way_wait(state: str) -> None:
    job = {**answer("running_job"), "state": state}
    verdict = HealthWatch(HealthPolicy(), clock=Clock(0)).judge(Observation(job, {}))
    assert (verdict.outcome, verdict.reason) == ("waiting", f"the job is {state}, not RUNNING")


def test_memory_survives_plain_serialization() -> None:
    clock = Clock(SUBMITTED)
    watch = HealthWatch(HealthPolicy(min_checkpoints=3, max_restarts=1), clock=clock)
    watch.judge(look("healthy_overview_start", "healthy_checkpoints_start", "healthy_exceptions"))
    clock.now = newest_failure_at("oom_restart_exceptions") + 1
    watch.judge(look("running_job", "checkpoints", "oom_restart_exceptions"))
    memory = json.loads(json.dumps(watch.as_dict()))
    resumed = HealthWatch(watch.policy, clock=clock, memory=memory)
    assert resumed.as_dict() == watch.as_dict()
    verdict = resumed.judge(look("running_job", "checkpoints", "oom_restart_exceptions"))
    assert (verdict.restarts, verdict.checkpoints) == (1, 14)  # nothing counted twice


JOB = answer("healthy_overview_start")["jid"]


def routes_for(job: str, checkpoints: str, exceptions: str) -> dict[str, Response]:
    """The answers of one look at the job ``JOB``: ``job`` is served as its overview entry."""
    return {
        "/jobs/overview": ok({"jobs": [{**answer(job), "jid": JOB}]}),
        f"/jobs/{JOB}/checkpoints": ok(answer(checkpoints)),
        f"/jobs/{JOB}/exceptions": ok(answer(exceptions)),
    }


def test_observe_reads_the_live_overview_and_the_readings() -> None:
    table = routes_for("running_job", "checkpoints", "healthy_exceptions")
    fake = Fake(lambda request: table[request.path])
    found = fake.run(observe(JOB, HealthPolicy()))
    assert found.job["state"] == "RUNNING" and set(found.readings) == {"checkpoints", "exceptions"}
    assert [request.path for request in fake.requests] == list(table)


def test_wait_polls_until_healthy_logging_each_new_reason(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock(SUBMITTED)
    answers = [
        routes_for("healthy_overview_start", "healthy_checkpoints_start", "healthy_exceptions"),
        routes_for("running_job", "checkpoints", "healthy_exceptions"),
    ]
    looks: list[str] = []

    def handler(request: Any) -> Response:
        if request.path == "/jobs/overview":
            looks.append(request.path)
        return answers[min(len(looks), len(answers)) - 1][request.path]

    fake = Fake(handler)
    watch = HealthWatch(HealthPolicy(min_checkpoints=1), clock=clock)
    outage = Outage(60, what="Flink REST API", log=LOG, clock=clock)
    with caplog.at_level(logging.INFO, logger=LOG.name):
        verdict = fake.run(wait_until_healthy(JOB, watch, timeout=600, poll_interval=5, outage=outage, log=LOG))
    assert (verdict.outcome, verdict.checkpoints) == ("healthy", 14)
    assert fake.sleeps == [5]
    assert [record.getMessage() for record in caplog.records] == [
        f"Flink job {JOB}: waiting (tasks not running: 2 of 2 tasks (DEPLOYING 2); 0 of 1 checkpoints completed)",
        f"Flink job {JOB}: healthy (RUNNING with all tasks, 14 checkpoints completed (>= 1))",
    ]


def test_wait_fails_at_once_on_an_unknown_job_and_past_the_outage_budget() -> None:
    missing = Fake(lambda request: ok({"jobs": []}) if request.path == "/jobs/overview" else Response(404, {}, ""))
    with pytest.raises(FlinkNotFoundError):
        missing.run(
            wait_until_healthy(
                "f" * 32, HealthWatch(HealthPolicy()), timeout=60, poll_interval=1,
                outage=Outage(60, what="Flink REST API", log=LOG),
            )
        )  # fmt: skip
    clock = Clock(1000.0)

    def down(request: Any) -> Response:
        clock.now += 6  # each failed look takes 6 s
        return Response(503, {"errors": ["leader election"]}, "")

    with pytest.raises(FlinkConnectionError, match="outage budget of 10s"):
        Fake(down).run(
            wait_until_healthy(
                "f" * 32, HealthWatch(HealthPolicy(), clock=clock), timeout=None, poll_interval=20,
                outage=Outage(10, what="Flink REST API", log=LOG, clock=clock),
            )
        )  # fmt: skip
