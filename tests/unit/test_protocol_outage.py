"""Outage: which failures count as an outage, the budget counted from the first failed poll, the messages."""

from __future__ import annotations

import logging
import pickle

import pytest

from airflow_flink_provider.protocol.errors import (
    FlinkConnectionError,
    FlinkError,
    FlinkNotFoundError,
    FlinkSqlError,
    FlinkTimeoutError,
)
from airflow_flink_provider.protocol.outage import Outage, describe

pytestmark = pytest.mark.unit

LOG = logging.getLogger("test.outage")
LEADER_ELECTION = FlinkError("Service temporarily unavailable due to an ongoing leader election.", status=503)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def outage(budget: float = 60, **kwargs: object) -> tuple[Outage, Clock]:
    clock = Clock()
    return Outage(budget, what="Flink REST API at http://jm:8081", log=LOG, clock=clock, **kwargs), clock  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "error",
    [
        LEADER_ELECTION,
        FlinkError("Bad Gateway", status=502),
        FlinkError("Gateway Timeout", status=504),
        FlinkError("Too Many Requests", status=429),
        FlinkConnectionError("Could not reach Flink at http://jm:8081/jobs/overview: ConnectionError"),
        FlinkTimeoutError("Flink did not answer GET http://jm:8081/jobs/overview within 30s", transient=True),
    ],
)
def test_outage_errors_are_ridden_out_until_the_budget(error: FlinkError) -> None:
    budget, clock = outage(60)
    budget.failed(error)
    clock.now += 59.9
    budget.failed(error)
    clock.now += 0.1
    with pytest.raises(FlinkConnectionError) as info:
        budget.failed(error)
    assert "unavailable for 60.0s, longer than the outage budget of 60s" in info.value.message
    assert info.value.status == error.status
    assert info.value.__cause__ is error
    assert "outage_budget" in str(info.value.hint)


@pytest.mark.parametrize(
    "error",
    [
        FlinkNotFoundError("Job x not found", status=404),
        FlinkSqlError("bad SQL", status=500),
        FlinkError("Bad Request", status=400),
        FlinkTimeoutError("the savepoint did not complete within 60s"),
    ],
)
def test_other_errors_are_raised_at_once(error: FlinkError) -> None:
    budget, _ = outage(60)
    with pytest.raises(type(error)) as info:
        budget.failed(error)
    assert info.value is error and budget.started is None


def test_the_message_names_the_status_and_the_duration() -> None:
    budget, clock = outage(5)
    budget.failed(LEADER_ELECTION)
    clock.now += 7.25
    with pytest.raises(FlinkConnectionError) as info:
        budget.failed(LEADER_ELECTION)
    text = str(info.value)
    assert text.startswith(
        "Flink REST API at http://jm:8081 has been unavailable for 7.2s, longer than the outage budget of 5s; "
        "last error: Service temporarily unavailable due to an ongoing leader election. (HTTP 503)"
    )
    again = pickle.loads(pickle.dumps(info.value))
    assert str(again) == text and again.status == 503


def test_the_outage_starts_when_the_failed_poll_started() -> None:
    budget, clock = outage(10)
    clock.now += 9  # the poll's own retries took 9 s
    budget.failed(LEADER_ELECTION, since=clock.now - 9)
    assert budget.lasted() == 9
    clock.now += 1
    with pytest.raises(FlinkConnectionError, match=r"unavailable for 10\.0s"):
        budget.failed(LEADER_ELECTION)


def test_recovery_resets_the_budget(caplog: pytest.LogCaptureFixture) -> None:
    budget, clock = outage(10)
    assert not budget.recovered()
    budget.failed(LEADER_ELECTION)
    clock.now += 9
    with caplog.at_level(logging.INFO, logger="test.outage"):
        assert budget.recovered()
    assert "answers again after an outage of 9.0s" in caplog.text
    clock.now += 9
    budget.failed(LEADER_ELECTION)  # a new outage: its own 10 s
    clock.now += 9
    budget.failed(LEADER_ELECTION)
    assert budget.lasted() == 9


def test_zero_budget_fails_at_the_first_outage() -> None:
    budget, _ = outage(0)
    with pytest.raises(FlinkConnectionError, match=r"unavailable for 0\.0s"):
        budget.failed(LEADER_ELECTION)


def test_an_outage_under_way_is_carried_over() -> None:
    clock = Clock()
    budget = Outage(30, what="API", log=LOG, clock=clock, started=clock.now - 31)
    with pytest.raises(FlinkConnectionError, match=r"unavailable for 31\.0s"):
        budget.failed(LEADER_ELECTION)


def test_summary_and_warning_name_the_last_error(caplog: pytest.LogCaptureFixture) -> None:
    budget, clock = outage(60)
    assert budget.summary() == ""
    with caplog.at_level(logging.WARNING, logger="test.outage"):
        budget.failed(LEADER_ELECTION)
    assert "HTTP 503: Service temporarily unavailable" in caplog.text and "up to 60s" in caplog.text
    clock.now += 4
    assert budget.summary() == (
        "; Flink REST API at http://jm:8081 unavailable for the last 4.0s "
        "(HTTP 503: Service temporarily unavailable due to an ongoing leader election.)"
    )


def test_budget_must_be_finite() -> None:
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="outage_budget"):
            Outage(bad, what="API", log=LOG)


def test_describe_without_status_or_message() -> None:
    assert describe(FlinkConnectionError("refused")) == "refused"
    assert describe(FlinkError("", status=502)) == "HTTP 502: FlinkError"


def test_what_is_left_of_the_budget_bounds_the_next_poll() -> None:
    budget, clock = outage(30)
    assert budget.left() == 30.0  # no outage yet: one this poll starts would have all of it
    budget.failed(LEADER_ELECTION)
    clock.now += 10
    assert budget.left() == 20.0
    clock.now += 25
    assert budget.left() == 0.0
