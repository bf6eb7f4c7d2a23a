"""A task retry policy that tells transient Flink failures from permanent ones.

Airflow 3.3 asks a task's ``retry_policy`` what to do with the exception that failed a try. Retrying a SQL
error, a missing connector or a savepoint that does not match the job's state only repeats the failure and
delays the alert; retrying an unreachable JobManager, a 503 during a leader election or a savepoint that
timed out while the job runs usually succeeds. :class:`FlinkRetryPolicy` decides which is which from the
provider's typed errors (:mod:`airflow_flink_provider.protocol.errors`); the task's ``retries`` stays the
upper bound.

.. code-block:: python

    FlinkSqlGatewayOperator(..., retries=3, retry_policy=FlinkRetryPolicy())
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk.definitions.retry_policy import RetryDecision, RetryPolicy

from airflow_flink_provider.protocol.errors import (
    FlinkConnectionError,
    FlinkDuplicateJobError,
    FlinkError,
    FlinkJobFailedError,
    FlinkJobResourceError,
    FlinkJsonParseError,
    FlinkMissingConnectorError,
    FlinkNotFoundError,
    FlinkResourceError,
    FlinkSavepointError,
    FlinkSqlError,
    FlinkTimeoutError,
)

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context

_STATE_MISMATCH = re.compile(
    r"StateMigrationException|incompatible|Cannot map checkpoint/savepoint state|"
    r"does not match any operator|ClassNotFoundException|NoSuchMethodError",
    re.IGNORECASE,
)


def _state_mismatch(error: FlinkError) -> bool:
    """Whether Flink's cause says the job's code and its restored state do not fit together.

    :param error: a failed job or savepoint.
    """
    return _STATE_MISMATCH.search(error.root_cause or error.message) is not None


# What a failure is, by its type: the first row it is an instance of wins, so subclasses come first (a job that
# FAILED for lack of slots before any failed job, a failed job before the causes it shares with a statement).
_RULES: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str, str], ...] = (
    (FlinkConnectionError, "transient", "Flink was unreachable"),
    (FlinkJobResourceError, "transient", "the job failed for lack of task slots; other jobs may release them"),
    (FlinkJobFailedError, "unknown", "the job failed"),
    (FlinkSqlError, "permanent", "the SQL does not parse or validate"),
    (FlinkMissingConnectorError, "permanent", "a connector or format is missing from the classpath"),
    (FlinkJsonParseError, "permanent", "a record is not valid JSON for the table"),
    (FlinkResourceError, "permanent", "the cluster has fewer task slots in total than the job needs"),
    (
        (FlinkDuplicateJobError, FlinkNotFoundError),
        "permanent",
        "the job, jar, savepoint or session id is wrong for this cluster",
    ),
    (FlinkSavepointError, "transient", "the savepoint failed while the job runs (e.g. a declined checkpoint)"),
    ((ValueError, TypeError), "permanent", "an argument or setting is invalid"),
)

# A failed job or savepoint whose cause is a state mismatch is permanent whatever its row says.
_MISMATCH: dict[type[BaseException] | tuple[type[BaseException], ...], str] = {
    FlinkJobFailedError: "the job's code does not match its restored state",
    FlinkSavepointError: "the savepoint does not match the job",
}


def classify(error: BaseException) -> tuple[str, str]:
    """Whether a failure is ``transient`` (worth another try), ``permanent`` or ``unknown``, and why.

    :param error: the exception that failed the try.
    :return: ``(kind, reason)``.
    """
    if isinstance(error, FlinkTimeoutError):
        if error.transient:
            return "transient", "a request to Flink timed out"
        return "transient", "a wait ran out of time (e.g. a savepoint while the job runs under backpressure)"
    for types, kind, reason in _RULES:
        if isinstance(error, types):
            mismatch = _MISMATCH.get(types)  # the row's own type only, not a subclass's row
            if mismatch and isinstance(error, FlinkError) and _state_mismatch(error):
                return "permanent", mismatch
            return kind, reason
    if isinstance(error, FlinkError) and error.retryable:
        return "transient", "Flink answered a server-side error"
    return "unknown", ""


class FlinkRetryPolicy(RetryPolicy):
    """Retry transient Flink failures, fail permanent ones at once, leave the rest to the task's retries.

    :param transient_delay: wait before retrying a transient failure (``None``: the task's ``retry_delay``).
    :param fail_on: further exception types that never deserve a retry (e.g. a DAG's own settings error).
    """

    def __init__(
        self, *, transient_delay: timedelta | None = None, fail_on: Sequence[type[BaseException]] = ()
    ) -> None:
        self.transient_delay = transient_delay
        self.fail_on = tuple(fail_on)

    def evaluate(
        self, exception: BaseException, try_number: int, max_tries: int, context: Context | None = None
    ) -> RetryDecision:
        """Decide from the exception's type and root cause.

        :param exception: what failed the try.
        :param try_number: the try that failed (1-based).
        :param max_tries: the task's maximum tries.
        :param context: the task context (unused).
        """
        if self.fail_on and isinstance(exception, self.fail_on):
            return RetryDecision.fail(f"{type(exception).__name__} is not worth a retry")
        kind, reason = classify(exception)
        if kind == "permanent":
            return RetryDecision.fail(f"not retrying: {reason}")
        if kind == "transient":
            return RetryDecision.retry(self.transient_delay, f"retrying: {reason}")
        return RetryDecision.default()

    def serialize(self) -> dict[str, Any]:
        """Plain values for DAG serialization."""
        return {
            "__type": "FlinkRetryPolicy",
            "transient_delay": self.transient_delay.total_seconds() if self.transient_delay else None,
            "fail_on": [f"{cls.__module__}.{cls.__qualname__}" for cls in self.fail_on],
        }

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> FlinkRetryPolicy:
        """Rebuild from :meth:`serialize`'s output.

        :param data: the serialized policy.
        """
        from airflow.sdk.module_loading import import_string

        delay = data.get("transient_delay")
        return cls(
            transient_delay=timedelta(seconds=delay) if delay is not None else None,
            fail_on=[import_string(path) for path in data.get("fail_on") or ()],
        )
