"""What the provider's job triggers share: their common arguments and serialization, the time left before the
deadline, the outage window, and the event for an error."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Required, TypedDict

from airflow.triggers.base import BaseTrigger

from airflow_flink_provider.protocol.outage import Outage

if TYPE_CHECKING:
    from airflow_flink_provider.hooks.transport import TransportConfig
    from airflow_flink_provider.protocol.errors import FlinkError


def validate_outage_budget(value: float | None) -> float | None:
    """An explicit outage budget as seconds (``None``: the connection's).

    :param value: the value given to a sensor or trigger.
    :raises ValueError: it is not a finite number >= 0.
    """
    if value is None:
        return None
    try:
        budget = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"outage_budget must be a number of seconds, got {value!r}") from None
    if not 0 <= budget < float("inf"):
        raise ValueError(f"outage_budget must be a finite number of seconds >= 0, got {value!r}")
    return budget


def error_event(job_id: str, err: FlinkError) -> dict[str, Any]:
    """The event of a wait that ended with a Flink error (plain values; ``error_from_event`` rebuilds the error).

    :param job_id: the job the trigger watched.
    :param err: the error.
    """
    return {
        "job_id": job_id,
        "status": "error",
        "message": err.message,
        "error_type": type(err).__name__,
        "root_cause": err.root_cause,
        "hint": err.hint,
        "http_status": err.status,
    }


class JobTriggerArguments(TypedDict, total=False):
    """The keyword arguments every job trigger takes and passes on to :class:`FlinkJobTrigger`."""

    job_id: Required[str]
    flink_conn_id: str
    poll_interval: float
    deadline: float | None
    outage_budget: float | None


class FlinkJobTrigger(BaseTrigger):
    """A trigger that watches one Flink job over the REST API until an outcome or its deadline.

    :param job_id: the Flink job id.
    :param flink_conn_id: the ``flink`` connection of the REST API.
    :param poll_interval: seconds between looks.
    :param deadline: epoch seconds after which the wait times out; ``None`` for no limit. Absolute, so a
        trigger restarted in another triggerer keeps the original deadline.
    :param outage_budget: seconds an API outage may last; ``None`` for the connection's ``outage_budget``.
    """

    def __init__(
        self,
        *,
        job_id: str,
        flink_conn_id: str = "flink_default",
        poll_interval: float = 5.0,
        deadline: float | None = None,
        outage_budget: float | None = None,
    ) -> None:
        super().__init__()
        self.job_id = job_id
        self.flink_conn_id = flink_conn_id
        self.poll_interval = float(poll_interval)
        self.deadline = deadline
        self.outage_budget = validate_outage_budget(outage_budget)

    def own_arguments(self) -> dict[str, Any]:
        """The subclass's own keyword arguments, as plain values (added to :meth:`serialize`)."""
        return {}

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and plain keyword arguments to rebuild this trigger in the triggerer."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "flink_conn_id": self.flink_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "outage_budget": self.outage_budget,
                **self.own_arguments(),
            },
        )

    def time_left(self) -> float | None:
        """Seconds until the deadline (0 once past it); ``None`` for no deadline."""
        return None if self.deadline is None else max(0.0, self.deadline - time.time())

    def outage(self, config: TransportConfig) -> Outage:
        """A new outage window of the trigger's budget (or the connection's) for the REST API of ``config``.

        :param config: the connection's transport configuration.
        """
        budget = config.outage_budget if self.outage_budget is None else self.outage_budget
        return Outage(budget, what=f"Flink REST API at {config.base_url}", log=self.log)
