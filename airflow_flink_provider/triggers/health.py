"""Wait for a Flink job to be healthy, asynchronously, in the triggerer."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_flink_provider.protocol.errors import FlinkError
from airflow_flink_provider.protocol.health import HealthPolicy, HealthWatch, wait_until_healthy
from airflow_flink_provider.protocol.outage import Outage
from airflow_flink_provider.triggers.job_state import validate_outage_budget


class FlinkJobHealthTrigger(BaseTrigger):
    """Poll a Flink job until it is healthy (:mod:`airflow_flink_provider.protocol.health`), unhealthy, or the
    deadline passes.

    Events (plain values): ``{"status": "success", "verdict": {...}}`` with the sensor's XCom dict,
    ``{"status": "timeout", "job_id", "message", "verdict"}`` and ``{"status": "error", "job_id", "message",
    "error_type", "root_cause", "hint", "http_status"}``
    (:func:`~airflow_flink_provider.triggers.job_state.error_from_event` turns it back into the exception).

    :param job_id: the Flink job id.
    :param policy: the limits, as :meth:`HealthPolicy.as_dict` gives them.
    :param memory: what the sensor's pokes found so far (:meth:`HealthWatch.as_dict`).
    :param flink_conn_id: the ``flink`` connection of the REST API.
    :param poll_interval: seconds between looks.
    :param deadline: epoch seconds after which the wait times out; ``None`` for no limit.
    :param outage_budget: seconds an API outage may last; ``None`` for the connection's ``outage_budget``.
    """

    def __init__(
        self,
        *,
        job_id: str,
        policy: Mapping[str, Any],
        memory: Mapping[str, Any] | None = None,
        flink_conn_id: str = "flink_default",
        poll_interval: float = 5.0,
        deadline: float | None = None,
        outage_budget: float | None = None,
    ) -> None:
        super().__init__()
        self.job_id = job_id
        self.policy = HealthPolicy.from_dict(policy)
        self.memory = dict(memory or {})
        self.flink_conn_id = flink_conn_id
        self.poll_interval = float(poll_interval)
        self.deadline = deadline
        self.outage_budget = validate_outage_budget(outage_budget)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and plain keyword arguments to rebuild this trigger in the triggerer."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "policy": self.policy.as_dict(),
                "memory": self.memory,
                "flink_conn_id": self.flink_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "outage_budget": self.outage_budget,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Look at the job every ``poll_interval`` seconds until healthy, unhealthy or the deadline."""
        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

        async with await FlinkRestHook.aget_async_transport(self.flink_conn_id) as transport:
            budget = transport.config.outage_budget if self.outage_budget is None else self.outage_budget
            outage = Outage(budget, what=f"Flink REST API at {transport.config.base_url}", log=self.log)
            watch = HealthWatch(self.policy, memory=self.memory)
            timeout = None if self.deadline is None else max(0.0, self.deadline - time.time())
            event: dict[str, Any] = {"job_id": self.job_id}
            try:
                verdict = await transport.run(
                    wait_until_healthy(
                        self.job_id, watch, timeout=timeout, poll_interval=self.poll_interval, outage=outage,
                        log=self.log,
                    )
                )  # fmt: skip
            except FlinkError as err:
                event |= {
                    "status": "error",
                    "message": err.message,
                    "error_type": type(err).__name__,
                    "root_cause": err.root_cause,
                    "hint": err.hint,
                    "http_status": err.status,
                }
            else:
                status = "success" if verdict.outcome == "healthy" else "timeout"
                event |= {"status": status, "verdict": verdict.as_xcom(self.job_id)}
                if status == "timeout":
                    event["message"] = (
                        f"Flink job {self.job_id} was not healthy before the deadline: {verdict.reason}"
                        f"{outage.summary()}"
                    )
        yield TriggerEvent(event)
