"""operators.common.wait_for_job: the operators' wait rides out an API outage up to its budget."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from airflow_flink_provider.hooks.transport import TransportConfig
from airflow_flink_provider.operators.common import wait_for_job
from airflow_flink_provider.protocol.errors import (
    FlinkConnectionError,
    FlinkError,
    FlinkJobFailedError,
    FlinkTimeoutError,
)
from airflow_flink_provider.triggers.job_state import JobStateCheck
from tests.unit._flink_fakes import FakeRest

pytestmark = pytest.mark.unit

JOB = "0123456789abcdef0123456789abcdef"
LOG = logging.getLogger("test.wait_for_job")
BAD_GATEWAY = FlinkError("502 Bad Gateway nginx", status=502)


def cluster(failures: int, error: FlinkError = BAD_GATEWAY, budget: float = 60, state: str = "RUNNING") -> FakeRest:
    """A job in ``state`` whose first ``failures`` reads fail with ``error``."""
    rest = FakeRest()
    rest.add_job(JOB, state)
    rest.transport_config = TransportConfig(base_url="http://jm:8081", outage_budget=budget)  # type: ignore[attr-defined]
    failed: list[int] = []

    def on_call(call: tuple[Any, ...]) -> None:
        if len(failed) < failures:
            failed.append(1)
            raise error

    rest.on_call = on_call
    return rest


def wait(rest: FakeRest, **kwargs: Any) -> str:
    kwargs.setdefault("timeout", 30)
    kwargs.setdefault("poll_interval", 0.01)
    return wait_for_job(rest, JOB, JobStateCheck.of(["RUNNING"]), log=LOG, **kwargs)  # type: ignore[arg-type]


def test_an_outage_within_the_budget_is_ridden_out(caplog: pytest.LogCaptureFixture) -> None:
    rest = cluster(5)
    with caplog.at_level(logging.INFO, logger="test.wait_for_job"):
        assert wait(rest) == "RUNNING"
    assert caplog.text.count("HTTP 502: 502 Bad Gateway nginx") == 5
    assert "answers again after an outage of" in caplog.text


def test_an_outage_beyond_the_budget_fails_naming_status_and_length() -> None:
    started = time.monotonic()
    with pytest.raises(FlinkConnectionError) as info:
        wait(cluster(10**6, budget=0.3))
    assert time.monotonic() - started >= 0.3
    assert "Flink REST API at http://jm:8081 has been unavailable for" in info.value.message
    assert "longer than the outage budget of 0.3s; last error: 502 Bad Gateway nginx" in info.value.message
    assert info.value.status == 502


def test_an_explicit_budget_overrides_the_connection() -> None:
    with pytest.raises(FlinkConnectionError, match="outage budget of 0s"):
        wait(cluster(1, budget=600), outage_budget=0)


def test_the_deadline_during_an_outage_says_so() -> None:
    with pytest.raises(FlinkTimeoutError) as info:
        wait(cluster(10**6, FlinkConnectionError("Could not reach Flink at http://jm:8081")), timeout=0.3)
    assert "did not reach ['RUNNING'] within 0.3s" in info.value.message
    assert "unavailable for the last" in info.value.message and "Could not reach Flink" in info.value.message


def test_errors_that_are_not_an_outage_fail_at_once() -> None:
    rest = cluster(0, state="FAILED")
    rest.root_causes[JOB] = "IOException: disk full"
    with pytest.raises(FlinkJobFailedError, match="disk full"):
        wait(rest)
    assert rest.names() == ["GET /jobs/overview", "GET /jobs/{id}/exceptions"]
