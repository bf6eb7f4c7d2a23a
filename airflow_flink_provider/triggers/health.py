"""Wait for a Flink job to be healthy, asynchronously, in the triggerer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Unpack

from airflow.triggers.base import TriggerEvent

from airflow_flink_provider.protocol.errors import FlinkError
from airflow_flink_provider.protocol.health import HealthPolicy, HealthWatch, wait_until_healthy
from airflow_flink_provider.triggers.base import FlinkJobTrigger, JobTriggerArguments, error_event


class FlinkJobHealthTrigger(FlinkJobTrigger):
    """Poll a Flink job until it is healthy (:mod:`airflow_flink_provider.protocol.health`), unhealthy, or the
    deadline passes.

    Events (plain values): ``{"status": "success", "verdict": {...}}`` with the sensor's XCom dict,
    ``{"status": "timeout", "job_id", "message", "verdict"}`` and ``{"status": "error", "job_id", "message",
    "error_type", "root_cause", "hint", "http_status"}``
    (:func:`~airflow_flink_provider.triggers.job_state.error_from_event` turns it back into the exception).

    :param policy: the limits, as :meth:`HealthPolicy.as_dict` gives them.
    :param memory: what the sensor's pokes found so far (:meth:`HealthWatch.as_dict`).
    :param common: the job and how to watch it (:class:`~airflow_flink_provider.triggers.base.FlinkJobTrigger`):
        ``job_id``, ``flink_conn_id``, ``poll_interval``, ``deadline`` and ``outage_budget``.
    """

    def __init__(
        self,
        *,
        policy: Mapping[str, Any],
        memory: Mapping[str, Any] | None = None,
        **common: Unpack[JobTriggerArguments],
    ) -> None:
        super().__init__(**common)
        self.policy = HealthPolicy.from_dict(policy)
        self.memory = dict(memory or {})

    def own_arguments(self) -> dict[str, Any]:
        """The policy and what the pokes found, as plain values."""
        return {"policy": self.policy.as_dict(), "memory": self.memory}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Look at the job every ``poll_interval`` seconds until healthy, unhealthy or the deadline."""
        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

        async with await FlinkRestHook.aget_async_transport(self.flink_conn_id) as transport:
            outage = self.outage(transport.config)
            watch = HealthWatch(self.policy, memory=self.memory)
            event: dict[str, Any] = {"job_id": self.job_id}
            try:
                verdict = await transport.run(
                    wait_until_healthy(
                        self.job_id, watch, timeout=self.time_left(), poll_interval=self.poll_interval,
                        outage=outage, log=self.log,
                    )
                )  # fmt: skip
            except FlinkError as err:
                event = error_event(self.job_id, err)
            else:
                status = "success" if verdict.outcome == "healthy" else "timeout"
                event |= {"status": status, "verdict": verdict.as_xcom(self.job_id)}
                if status == "timeout":
                    event["message"] = (
                        f"Flink job {self.job_id} was not healthy before the deadline: {verdict.reason}"
                        f"{outage.summary()}"
                    )
        yield TriggerEvent(event)
