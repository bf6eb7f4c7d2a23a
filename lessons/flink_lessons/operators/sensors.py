"""The provider's sensors, with their thresholds and timeouts taken from the run's settings.

A sensor's timeout and poke interval are fixed when the DAG file is parsed, so these subclasses apply the
run's values (from the Variables, read at run time) when they start.

The health gate waits, for now, with ``FlinkJobStateSensor``: "healthy" is RUNNING with all tasks (a job
that fails while restoring, or whose restart strategy gives up, fails the gate with its root cause). The
provider's ``FlinkJobHealthSensor`` (checkpoints, stability, restarts) replaces that base class once it is
released; the DAG files and the gate's XCom (``{"job_id", "healthy", "reason", "state"}``) stay the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor

if TYPE_CHECKING:
    from airflow.sdk import Context


class TimedJobStateSensor(FlinkJobStateSensor):
    """``FlinkJobStateSensor`` whose timeout and poke interval are settings of the run.

    :param wait_timeout: seconds (templated).
    :param wait_poll: seconds between looks (templated); empty: the sensor's ``poke_interval``.
    """

    template_fields: Sequence[str] = (*FlinkJobStateSensor.template_fields, "wait_timeout", "wait_poll")

    def __init__(self, *, wait_timeout: Any, wait_poll: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wait_timeout = wait_timeout
        self.wait_poll = wait_poll

    def execute(self, context: Context) -> Any:
        """Apply the run's timeout, then wait as the provider's sensor does."""
        self.timeout = float(self.wait_timeout)
        if self.wait_poll not in (None, ""):
            self.poke_interval = float(self.wait_poll)
        return super().execute(context)


class HealthGateSensor(TimedJobStateSensor):
    """The health gate: wait until the job runs with all its tasks, within the run's ``health.timeout``.

    Fails (``FlinkJobFailedError`` with the job's root cause) when the job fails or ends first. Returns
    ``{"job_id", "healthy": True, "reason", "state"}``.

    :param job_id: the job (templated).
    :param thresholds: the resolve task's ``health`` output (templated): ``{"timeout", "poll_interval", ...}``,
        durations in seconds.
    """

    template_fields: Sequence[str] = (*TimedJobStateSensor.template_fields, "thresholds")

    def __init__(self, *, thresholds: Any, **kwargs: Any) -> None:
        super().__init__(wait_timeout=None, target_states=("RUNNING",), **kwargs)
        self.thresholds = thresholds

    def execute(self, context: Context) -> Any:
        """Apply the run's thresholds, then wait; the verdict is the XCom."""
        thresholds: Mapping[str, Any] = self.thresholds
        self.wait_timeout, self.wait_poll = thresholds["timeout"], thresholds["poll_interval"]
        self.log.info("Health gate for job %s: RUNNING with all tasks within %ss", self.job_id, self.wait_timeout)
        return self.verdict(super().execute(context))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Resume after the trigger fired: the verdict, or the trigger's error."""
        return self.verdict(super().execute_complete(context, event))

    def verdict(self, state: str) -> dict[str, Any]:
        """The gate's XCom once the job is healthy.

        :param state: the state reached.
        """
        return {"job_id": self.job_id, "healthy": True, "reason": f"{state} with all tasks", "state": state}
