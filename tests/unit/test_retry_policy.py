"""FlinkRetryPolicy: transient Flink failures are retried, permanent ones fail at once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from airflow.sdk.definitions.retry_policy import RetryAction

from airflow_flink_provider.protocol.errors import (
    FlinkConnectionError,
    FlinkError,
    FlinkSavepointError,
    FlinkTimeoutError,
    error_from_response,
    job_failed_error,
)
from airflow_flink_provider.retry import FlinkRetryPolicy

pytestmark = pytest.mark.unit

SQL_TRACE = 'org.apache.flink.table.api.SqlParserException: SQL parse failed. Encountered "FORM" at line 1, column 10.'
STATE_MIGRATION = (
    "java.lang.RuntimeException: Error while getting state\n"
    "Caused by: org.apache.flink.util.StateMigrationException: The new state serializer "
    "(org.apache.flink.api.common.typeutils.base.LongSerializer) must not be incompatible with the old state serializer"
)


def action(error: BaseException, policy: FlinkRetryPolicy | None = None) -> RetryAction:
    return (policy or FlinkRetryPolicy()).evaluate(error, try_number=1, max_tries=3).action


@pytest.mark.parametrize(
    "error",
    [
        FlinkConnectionError("Could not reach Flink at http://127.0.0.1:8081/jobs/overview: ConnectError"),
        FlinkTimeoutError("Flink did not answer GET /jobs/overview within 30s", transient=True),
        FlinkTimeoutError("Savepoint 1 of Flink job x not done after 300s"),
        error_from_response(503, {"errors": ["Service temporarily unavailable due to an ongoing leader election."]}),
        FlinkSavepointError("Savepoint of Flink job x failed: CheckpointException: Checkpoint was declined"),
        job_failed_error("a" * 32, "NoResourceAvailableException: Could not acquire the minimum required resources."),
    ],
    ids=["unreachable", "request-timeout", "wait-timeout", "503", "savepoint-declined", "job-lacked-slots"],
)
def test_transient_failures_are_retried(error: BaseException) -> None:
    assert action(error) is RetryAction.RETRY


@pytest.mark.parametrize(
    "error",
    [
        error_from_response(400, {"errors": ["Internal server error.", SQL_TRACE]}),
        error_from_response(400, {"errors": ["Could not find any factory for identifier 'kafak'"]}),
        job_failed_error("a" * 32, STATE_MIGRATION),
        error_from_response(404, {"errors": ["Job could not be found."]}),
        ValueError("parallelism must be a positive integer, got 'x'"),
    ],
    ids=["sql", "missing-connector", "state-migration", "unknown-job", "bad-argument"],
)
def test_permanent_failures_fail_at_once(error: BaseException) -> None:
    decision = FlinkRetryPolicy().evaluate(error, try_number=1, max_tries=3)
    assert decision.action is RetryAction.FAIL
    assert decision.reason and decision.reason.startswith("not retrying: ")


def test_unknown_failures_follow_the_tasks_retries() -> None:
    assert action(job_failed_error("a" * 32, "java.io.IOException: disk full")) is RetryAction.DEFAULT
    assert action(FlinkError("odd answer", status=418)) is RetryAction.DEFAULT
    assert action(RuntimeError("boom")) is RetryAction.DEFAULT


def test_fail_on_and_delay_and_serialization_round_trip() -> None:
    class SettingsError(ValueError):
        pass

    policy = FlinkRetryPolicy(transient_delay=timedelta(seconds=7), fail_on=(KeyError,))
    assert action(KeyError("x"), policy) is RetryAction.FAIL
    assert action(SettingsError("x"), policy) is RetryAction.FAIL  # a ValueError: a bad setting never heals
    decision = policy.evaluate(FlinkConnectionError("down"), try_number=1, max_tries=3)
    assert decision.retry_delay == timedelta(seconds=7)
    again = FlinkRetryPolicy.deserialize(policy.serialize())
    assert (again.transient_delay, again.fail_on) == (timedelta(seconds=7), (KeyError,))
