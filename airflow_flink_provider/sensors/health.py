"""Wait until a Flink job is healthy: poke, reschedule or deferrable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import PokeReturnValue
from airflow.sdk.configuration import conf
from airflow.sdk.exceptions import AirflowSensorTimeout

from airflow_flink_provider.operators.common import require_job_id
from airflow_flink_provider.protocol.health import HealthPolicy, HealthWatch, wait_until_healthy
from airflow_flink_provider.sensors.base import FlinkRestSensor
from airflow_flink_provider.triggers.health import FlinkJobHealthTrigger
from airflow_flink_provider.triggers.job_state import error_from_event

if TYPE_CHECKING:
    from airflow.sdk import Context

WATCH_KEY = "flink_health_watch"
"""Task state store key of what the pokes found so far (reschedule mode): checkpoints, restarts, since when."""


class FlinkJobHealthSensor(FlinkRestSensor):
    """Wait until a Flink job is healthy; fail as soon as it cannot become healthy.

    Healthy (:mod:`airflow_flink_provider.protocol.health`): RUNNING with all tasks, at least
    ``min_checkpoints`` completed checkpoints since ``checkpoints_since``, and no restart for ``stable_for``
    seconds. It fails when the job ends (FINISHED, FAILED, CANCELED, FAILING, CANCELLING, SUSPENDED) or restarts
    more than ``max_restarts`` times, with :class:`~airflow_flink_provider.protocol.errors.FlinkJobFailedError`
    (:class:`~airflow_flink_provider.protocol.errors.FlinkJobUnhealthyError` unless the job failed) carrying the
    root cause from the exception history. Returns (XCom) ``{"job_id", "healthy", "reason", "state",
    "checkpoints", "restarts", "root_cause"}``.

    What the pokes found is kept on the sensor (poke mode), in the task state store (``flink_health_watch``,
    reschedule mode), or handed to the trigger (deferrable). API outages are ridden out as by
    :class:`~airflow_flink_provider.sensors.job_state.FlinkJobStateSensor`.

    :param job_id: the Flink job id (templated).
    :param min_checkpoints: completed checkpoints needed since ``checkpoints_since``.
    :param checkpoints_since: epoch seconds from which checkpoints count; default: when the sensor first ran.
    :param stable_for: seconds the job must run with all tasks and without a restart.
    :param max_restarts: restarts allowed since the sensor first ran (one more fails it); ``None``: no limit.
    :param max_pending_records: optional: not healthy while the sources' ``pendingRecords`` is above it (or not
        reported yet, ~10 s after RUNNING).
    :param max_checkpoint_age: optional: not healthy while the latest completed checkpoint is older (seconds).
    :param max_failed_checkpoints: optional: failed checkpoints allowed within ``window``.
    :param max_restarts_in_window: optional: restarts allowed within ``window`` (not fatal, unlike
        ``max_restarts``).
    :param max_backpressure: optional: the worst backpressure level allowed, ``ok`` or ``low``.
    :param window: seconds back from each poke that the windowed limits count.
    :param deferrable: wait in the triggerer; default: Airflow's ``[operators] default_deferrable``.
    :param flink_conn_id: the ``flink`` REST connection.
    :param outage_budget: seconds an API outage may last; ``None`` for the connection's ``outage_budget``.
    """

    template_fields: Sequence[str] = ("job_id",)

    def __init__(
        self,
        *,
        job_id: str,
        min_checkpoints: int = 0,
        checkpoints_since: float | None = None,
        stable_for: float = 0,
        max_restarts: int | None = None,
        max_pending_records: float | None = None,
        max_checkpoint_age: float | None = None,
        max_failed_checkpoints: int | None = None,
        max_restarts_in_window: int | None = None,
        max_backpressure: str | None = None,
        window: float = 600.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        flink_conn_id: str = "flink_default",
        outage_budget: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(deferrable=deferrable, flink_conn_id=flink_conn_id, outage_budget=outage_budget, **kwargs)
        self.job_id = job_id
        self.policy = HealthPolicy(
            min_checkpoints=min_checkpoints,
            checkpoints_since=checkpoints_since,
            stable_for=stable_for,
            max_restarts=max_restarts,
            max_pending_records=max_pending_records,
            max_checkpoint_age=max_checkpoint_age,
            max_failed_checkpoints=max_failed_checkpoints,
            max_restarts_in_window=max_restarts_in_window,
            max_backpressure=max_backpressure,
            window=window,
        )
        self._watch: HealthWatch | None = None

    def trigger(self, deadline: float) -> FlinkJobHealthTrigger:
        """The health trigger, carrying what the pokes so far found.

        :param deadline: epoch seconds when the wait times out.
        """
        return FlinkJobHealthTrigger(
            job_id=require_job_id(self.job_id),
            policy=self.policy.as_dict(),
            memory=self._watch.as_dict() if self._watch else None,
            flink_conn_id=self.flink_conn_id,
            poll_interval=self.poke_interval,
            deadline=deadline,
            outage_budget=self.outage_budget,
        )

    def poke(self, context: Context) -> PokeReturnValue:
        """Look at the job once; an API outage within its budget is another poke later."""
        job_id = require_job_id(self.job_id)
        self.note_job(context, job_id)
        store = context.get("task_state_store") if self.reschedule else None
        if self._watch is None or store is not None:
            remembered = store.get(WATCH_KEY) if store is not None else None
            self._watch = HealthWatch(self.policy, memory=remembered if isinstance(remembered, dict) else None)
        outage = self.outage_record(store)
        verdict = self.hook.run(
            wait_until_healthy(job_id, self._watch, timeout=None, poll_interval=0, polls=1, outage=outage, log=self.log)
        )
        self.keep_outage(store, outage)
        if store is not None:
            store.set(WATCH_KEY, self._watch.as_dict())
        return PokeReturnValue(is_done=verdict.outcome == "healthy", xcom_value=verdict.as_xcom(job_id))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: fail with its error, or return the healthy verdict."""
        if event.get("status") == "timeout":
            raise AirflowSensorTimeout(str(event.get("message")))
        error = error_from_event(event)
        if error is not None:
            raise error
        self.log.info("Flink job %s is healthy: %s", event["verdict"]["job_id"], event["verdict"]["reason"])
        return dict(event["verdict"])
