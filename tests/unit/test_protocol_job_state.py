"""The job-state vocabulary, "all tasks running", the check and the one wait exchange, driven without a network.

The answers are shaped like the local Flink 2.1.3 JobManager's; the same wait runs against the real cluster in
tests/integration/test_sensor_job_state.py and test_trigger_job_state.py.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from airflow_flink_provider.protocol.errors import (
    FlinkConnectionError,
    FlinkError,
    FlinkJobFailedError,
    FlinkJobResourceError,
    FlinkNotFoundError,
    FlinkResourceError,
)
from airflow_flink_provider.protocol.http import Response, Sleep
from airflow_flink_provider.protocol.job_state import (
    ALIVE,
    CAUSE_WAIT,
    DEFAULT_FAILURE_STATES,
    OVER,
    TERMINAL,
    JobState,
    JobStateCheck,
    all_tasks_running,
    check_job,
    wait_for_job_state,
    waiting_tasks,
)
from airflow_flink_provider.protocol.outage import Outage
from tests.unit.test_protocol_rest import NO_SLOTS_TRACE, Fake, ok, routes

pytestmark = pytest.mark.unit

JOB = "0123456789abcdef0123456789abcdef"
LOG = logging.getLogger("test.job_state")
LEADER_ELECTION = Response(503, {"errors": ["Service temporarily unavailable due to an ongoing leader election."]}, "")


def details(state: str, *vertices: tuple[int, dict[str, int]]) -> dict[str, Any]:
    """``GET /jobs/{id}``: vertices with their parallelism and task counts."""
    return {
        "jid": JOB,
        "name": "orders",
        "state": state,
        "vertices": [
            {"name": f"v{i}", "status": state, "parallelism": parallelism, "tasks": tasks}
            for i, (parallelism, tasks) in enumerate(vertices)
        ],
    }


def overview(state: str, **tasks: int) -> Response:
    """``GET /jobs/overview`` listing the job with task counts (``total`` included)."""
    return ok({"jobs": [{"jid": JOB, "name": "orders", "state": state, "tasks": tasks}]})


def exceptions(*traces: str) -> Response:
    return ok({"exceptionHistory": {"entries": [{"timestamp": i, "stacktrace": t} for i, t in enumerate(traces)]}})


# --- the vocabulary -------------------------------------------------------------------------------------


def test_every_flink_2_job_status_is_named_and_equal_to_its_text() -> None:
    assert {state.value for state in JobState} == {
        "INITIALIZING", "CREATED", "RUNNING", "FAILING", "FAILED", "CANCELLING", "CANCELED", "FINISHED",
        "RESTARTING", "SUSPENDED", "RECONCILING",
    }  # fmt: skip
    assert JobState.RUNNING == "RUNNING" and f"{JobState.FAILED}" == "FAILED"
    assert "CANCELED" in TERMINAL and JobState.parse(" running ") is JobState.RUNNING


def test_the_properties_agree_with_flinks_job_status() -> None:
    assert {JobState.FINISHED, JobState.FAILED, JobState.CANCELED} == TERMINAL
    assert set(JobState) - TERMINAL - {JobState.SUSPENDED} == ALIVE
    assert {s for s in JobState if s.is_failed} == {JobState.FAILING, JobState.FAILED}
    assert {s for s in JobState if s.is_ending} == {JobState.FAILING, JobState.CANCELLING}
    assert TERMINAL | {JobState.FAILING, JobState.CANCELLING} == OVER
    assert JobState.FAILING.final is JobState.FAILED and JobState.CANCELLING.final is JobState.CANCELED
    assert JobState.RUNNING.final is JobState.RUNNING


def test_suspended_is_neither_terminal_nor_alive_and_fails_a_wait_by_default() -> None:
    suspended = JobState.SUSPENDED
    assert not suspended.is_terminal and not suspended.is_alive and not suspended.is_over
    assert {"FAILED", "FAILING", "CANCELED", "CANCELLING", "SUSPENDED"} == DEFAULT_FAILURE_STATES
    assert JobStateCheck.of(["RUNNING"]).evaluate({"state": "SUSPENDED"}).outcome == "failed"
    waits_for_recovery = JobStateCheck.of(["RUNNING"], failure_states=["FAILED"])
    assert waits_for_recovery.evaluate({"state": "SUSPENDED"}).outcome == "waiting"


def test_parse_names_the_value_and_the_known_states() -> None:
    with pytest.raises(ValueError, match=r"unknown Flink job state 'DONE'; known: INITIALIZING, CREATED, RUNNING"):
        JobState.parse("DONE")
    assert JobState.lookup("DONE") is None and JobState.lookup(None) is None
    with pytest.raises(ValueError, match=r"unknown Flink job state\(s\) in target_states: \['DONE'\]"):
        JobStateCheck.of(["running", "DONE"])
    with pytest.raises(ValueError, match="must not be empty"):
        JobStateCheck.of([])


# --- all tasks running ----------------------------------------------------------------------------------


def test_all_tasks_running_from_an_overview_entry() -> None:
    assert all_tasks_running({"state": "RUNNING", "tasks": {"total": 3, "running": 2, "finished": 1}})
    starting = {"state": "RUNNING", "tasks": {"total": 4, "running": 1, "scheduled": 3, "deploying": 0}}
    assert waiting_tasks(starting) == ("3 of 4 tasks (SCHEDULED 3)",)
    assert waiting_tasks({"state": "RUNNING", "tasks": {"total": 0}}) == ("0 of 0 tasks (none yet)",)


def test_all_tasks_running_from_job_details() -> None:
    assert all_tasks_running(details("RUNNING", (2, {"RUNNING": 2}), (1, {"FINISHED": 1})))
    assert waiting_tasks(details("RUNNING", (2, {"RUNNING": 1, "SCHEDULED": 1}))) == ("v0 (RUNNING)",)
    by_status = {"state": "RUNNING", "vertices": [{"name": "Source", "status": "DEPLOYING"}]}
    assert waiting_tasks(by_status) == ("Source (DEPLOYING)",)


def test_targets_win_over_default_failures() -> None:
    check = JobStateCheck.of(["CANCELED"])
    assert "CANCELED" not in check.failure_states
    assert check.failure_states == DEFAULT_FAILURE_STATES - {JobState.CANCELED}


def test_running_means_every_subtask_runs() -> None:
    check = JobStateCheck.of(["RUNNING"])
    assert check.evaluate(details("RUNNING", (2, {"RUNNING": 2}), (1, {"FINISHED": 1}))).outcome == "reached"
    partial = check.evaluate(details("RUNNING", (2, {"RUNNING": 1, "SCHEDULED": 1})))
    assert partial.outcome == "waiting" and partial.waiting_tasks == ("v0 (RUNNING)",)
    assert check.evaluate(details("FINISHED")).outcome == "failed"  # terminal, not a target: never left
    assert check.evaluate(details("RESTARTING")).outcome == "waiting"
    assert check.evaluate({"state": "SOMETHING_NEW"}).outcome == "waiting"
    assert JobStateCheck.of(["RUNNING", "FINISHED"]).evaluate(details("FINISHED")).outcome == "reached"


# --- check_job: slots and failures ----------------------------------------------------------------------


def test_check_job_running_with_all_tasks_does_not_read_exceptions() -> None:
    fake = Fake(routes({("GET", f"/jobs/{JOB}"): ok(details("RUNNING", (2, {"RUNNING": 2}), (2, {"FINISHED": 2})))}))
    assert fake.run(check_job(JOB)) == "RUNNING"
    assert len(fake.requests) == 1


def test_check_job_failed_for_slots_raises_a_job_resource_error() -> None:
    fake = Fake(
        routes(
            {
                ("GET", f"/jobs/{JOB}"): ok(details("FAILED", (2, {"FAILED": 1, "CANCELED": 1}))),
                ("GET", f"/jobs/{JOB}/exceptions"): exceptions(NO_SLOTS_TRACE),
            }
        )
    )
    with pytest.raises(FlinkJobResourceError) as info:
        fake.run(check_job(JOB))
    assert isinstance(info.value, FlinkJobFailedError) and isinstance(info.value, FlinkResourceError)
    assert info.value.job_id == JOB and info.value.state == "FAILED"


@pytest.mark.parametrize("state", ["RUNNING", "RESTARTING", "CREATED"])
def test_check_job_waiting_for_slots_raises_a_resource_error(state: str) -> None:
    fake = Fake(
        routes(
            {
                ("GET", f"/jobs/{JOB}"): ok(details(state, (2, {"SCHEDULED": 2}))),
                ("GET", f"/jobs/{JOB}/exceptions"): exceptions(NO_SLOTS_TRACE),
            }
        )
    )
    with pytest.raises(FlinkResourceError) as info:
        fake.run(check_job(JOB))
    assert not isinstance(info.value, FlinkJobFailedError)
    assert f"Flink job {JOB} cannot get the task slots it needs (state {state})" in info.value.message
    assert info.value.hint is not None and "parallelism" in info.value.hint


@pytest.mark.parametrize("state", ["RESTARTING", "SUSPENDED"])
def test_check_job_for_another_reason_or_without_slots_held_is_just_its_state(state: str) -> None:
    fake = Fake(
        routes(
            {
                ("GET", f"/jobs/{JOB}"): ok(details(state, (2, {"CANCELED": 2}))),
                ("GET", f"/jobs/{JOB}/exceptions"): exceptions("java.io.IOException: x"),
            }
        )
    )
    assert fake.run(check_job(JOB)) == state


# --- the wait exchange ----------------------------------------------------------------------------------


class Clock:
    """The wait's clock, moved by each Sleep."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _moving(exchange: Any, clock: Clock) -> Any:
    """Pass the exchange through, moving ``clock`` by each Sleep it yields."""
    try:
        step = next(exchange)
        while True:
            if isinstance(step, Sleep):
                clock.now += step.seconds
            try:
                answer = yield step
            except FlinkError as error:
                step = exchange.throw(error)
            else:
                step = exchange.send(answer)
    except StopIteration as stop:
        return stop.value


def wait(answers: dict[tuple[str, str], Any], clock: Clock | None = None, **kwargs: Any) -> tuple[Any, Fake]:
    clock = clock or Clock()
    fake = Fake(routes(answers))
    kwargs.setdefault("timeout", 30)
    kwargs.setdefault("poll_interval", 5)
    kwargs.setdefault("check", JobStateCheck.of(["RUNNING"]))
    check = kwargs.pop("check")
    exchange = wait_for_job_state(JOB, check, log=LOG, clock=clock, **kwargs)
    return fake.run(_moving(exchange, clock)), fake


def test_the_wait_polls_the_live_overview_until_every_task_runs() -> None:
    answers = {("GET", "/jobs/overview"): [
        overview("CREATED", total=2, created=2),
        overview("RUNNING", total=2, scheduled=2),
        overview("RUNNING", total=2, running=1, deploying=1),
        overview("RUNNING", total=2, running=2),
    ]}  # fmt: skip
    verdict, fake = wait(answers)
    assert verdict.outcome == "reached" and verdict.state == "RUNNING"
    assert [request.path for request in fake.requests] == ["/jobs/overview"] * 4  # tasks moved: no more reads
    assert fake.sleeps == [5, 5, 5]


def test_the_wait_times_out_with_the_last_verdict_and_polls_at_the_deadline() -> None:
    verdict, fake = wait({("GET", "/jobs/overview"): overview("INITIALIZING", total=1)}, timeout=12)
    assert verdict.outcome == "waiting" and verdict.state == "INITIALIZING"
    assert fake.sleeps == [5, 5, 2]  # the last poll is at the deadline
    assert len(fake.requests) == 4


def test_one_poll_for_a_sensor_poke() -> None:
    verdict, fake = wait({("GET", "/jobs/overview"): overview("INITIALIZING", total=1)}, timeout=None, polls=1)
    assert verdict.outcome == "waiting" and len(fake.requests) == 1 and fake.sleeps == []


def test_a_failure_state_raises_with_the_root_cause() -> None:
    answers = {
        ("GET", "/jobs/overview"): overview("FAILED", total=1, failed=1),
        ("GET", f"/jobs/{JOB}/exceptions"): exceptions("RuntimeException: a\nCaused by: java.io.IOException: disk"),
    }
    with pytest.raises(FlinkJobFailedError) as info:
        wait(answers)
    assert info.value.state == "FAILED" and info.value.root_cause == "IOException: disk"


def test_requests_carry_what_is_left_of_the_budget_or_the_deadline() -> None:
    _, fake = wait({("GET", "/jobs/overview"): overview("RUNNING", total=1, running=1)}, outage_budget=40)
    assert fake.requests[0].retry_for == 30  # the deadline is nearer than the end of the budget
    _, fake = wait({("GET", "/jobs/overview"): overview("RUNNING", total=1, running=1)}, outage_budget=7)
    assert fake.requests[0].retry_for == 7


def test_an_outage_within_the_budget_is_ridden_out_and_one_past_it_fails() -> None:
    answers = {("GET", "/jobs/overview"): [LEADER_ELECTION, LEADER_ELECTION, overview("RUNNING", total=1, running=1)]}
    verdict, fake = wait(answers, outage_budget=11)
    assert verdict.outcome == "reached" and len(fake.requests) == 3
    assert fake.requests[1].retry_for == 6  # 5 s of the budget went by since the first failed poll
    with pytest.raises(FlinkConnectionError, match=r"unavailable for 10\.0s, longer than the outage budget of 10s"):
        wait({("GET", "/jobs/overview"): LEADER_ELECTION}, outage_budget=10, timeout=None)


def test_an_outage_under_way_is_continued_and_reported() -> None:
    clock = Clock()
    outage = Outage(60, what="Flink REST API at http://jm:8081", log=LOG, clock=clock, started=clock.now - 50)
    verdict, _ = wait({("GET", "/jobs/overview"): LEADER_ELECTION}, clock, outage=outage, polls=1, timeout=None)
    assert verdict.outcome == "waiting" and verdict.state == ""  # the API never answered
    assert outage.started == 950.0 and "unavailable for the last 50.0s" in outage.summary()
    with pytest.raises(FlinkConnectionError, match="outage budget of 60s"):
        clock.now += 10
        wait({("GET", "/jobs/overview"): LEADER_ELECTION}, clock, outage=outage, polls=1, timeout=None)


def test_an_error_that_is_not_an_outage_ends_the_wait_at_once() -> None:
    answers = {
        ("GET", "/jobs/overview"): ok({"jobs": []}),
        ("GET", f"/jobs/{JOB}"): Response(404, {"errors": ["Job not found"]}, ""),
    }
    with pytest.raises(FlinkNotFoundError):
        wait(answers)


def test_tasks_that_do_not_move_are_checked_for_slots() -> None:
    answers = {
        ("GET", "/jobs/overview"): overview("RUNNING", total=16, scheduled=16),
        ("GET", f"/jobs/{JOB}"): ok(details("RUNNING", (16, {"SCHEDULED": 16}))),
        ("GET", f"/jobs/{JOB}/exceptions"): exceptions(NO_SLOTS_TRACE),
    }
    with pytest.raises(FlinkResourceError, match="cannot get the task slots"):
        wait(answers)


def test_a_failed_jobs_cause_is_read_again_until_the_cached_history_has_it() -> None:
    """The overview is live, /exceptions is cached for web.refresh-interval: seen on the real stack, a job shown
    FAILED whose history was still empty was reported with "no exception recorded"."""
    captured = json.loads((Path(__file__).parent / "data" / "flink_health" / "tm_lost_exceptions.json").read_text())
    empty = ok({"exceptionHistory": {"entries": [], "truncated": False}})
    fake = Fake(
        routes({
            ("GET", "/jobs/overview"): overview("FAILED", failed=1, canceled=1, total=2),
            ("GET", f"/jobs/{JOB}/exceptions"): [empty, empty, ok(captured)],
        })
    )  # fmt: skip
    with pytest.raises(FlinkJobResourceError, match="NoResourceAvailableException"):
        fake.run(wait_for_job_state(JOB, JobStateCheck.of("RUNNING"), timeout=60, poll_interval=1, log=LOG))
    assert fake.sleeps == [1.0, 1.0]


def test_a_failed_job_whose_history_stays_empty_is_reported_after_the_cause_wait() -> None:
    empty = ok({"exceptionHistory": {"entries": [], "truncated": False}})
    fake = Fake(
        routes({
            ("GET", "/jobs/overview"): overview("FAILED", failed=1, total=1),
            ("GET", f"/jobs/{JOB}/exceptions"): empty,
        })
    )  # fmt: skip
    with pytest.raises(FlinkJobFailedError, match="no exception recorded"):
        fake.run(wait_for_job_state(JOB, JobStateCheck.of("RUNNING"), timeout=60, poll_interval=1, log=LOG))
    assert fake.sleeps == [1.0] * CAUSE_WAIT
