"""The provider's sensors, with their thresholds and timeouts taken from the run's settings.

:class:`~airflow_flink_provider.sensors.health.FlinkJobHealthSensor` defines "healthy" (RUNNING with all
tasks, enough checkpoints, no restart for a while) and ``FlinkJobStateSensor`` what reaching a state means;
the lessons only choose the thresholds, from the Variables, read at run time. A sensor's thresholds, timeout
and poke interval are fixed when the DAG file is parsed, so these subclasses apply the run's values when
they start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from airflow_flink_provider.sensors.health import FlinkJobHealthSensor
from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor

if TYPE_CHECKING:
    from airflow.sdk import Context


class HealthGateSensor(FlinkJobHealthSensor):
    """The health gate: :class:`FlinkJobHealthSensor` with the run's ``health.*`` settings.

    Returns the provider's verdict ``{"job_id", "healthy": True, "reason", "state", "checkpoints", "restarts",
    "root_cause"}``; fails with the job's root cause when it ends, restarts more than ``max_restarts`` times,
    or is not healthy within ``timeout``.

    :param thresholds: the resolve task's ``health`` output (templated): ``{"min_checkpoints", "stable_for",
        "max_restarts", "timeout", "poll_interval"}``, durations in seconds.
    """

    template_fields: Sequence[str] = (*FlinkJobHealthSensor.template_fields, "thresholds")

    def __init__(self, *, thresholds: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.thresholds = thresholds

    def execute(self, context: Context) -> Any:
        """Apply the run's thresholds, then judge the job as the provider's sensor does."""
        self.apply(self.thresholds)
        return super().execute(context)

    def apply(self, thresholds: Mapping[str, Any]) -> None:
        """Take the thresholds of one run.

        :param thresholds: see the class docstring.
        """
        self.policy = replace(self.policy, min_checkpoints=int(thresholds["min_checkpoints"]),
                              stable_for=float(thresholds["stable_for"]),
                              max_restarts=int(thresholds["max_restarts"]))  # fmt: skip
        self.timeout = float(thresholds["timeout"])
        self.poke_interval = float(thresholds["poll_interval"])
        self.log.info("Health gate: %d checkpoint(s), stable for %gs, at most %d restart(s), within %gs",
                      self.policy.min_checkpoints, self.policy.stable_for, self.policy.max_restarts,
                      self.timeout)  # fmt: skip


class TimedJobStateSensor(FlinkJobStateSensor):
    """``FlinkJobStateSensor`` whose timeout is a setting of the run.

    :param wait_timeout: seconds (templated).
    """

    template_fields: Sequence[str] = (*FlinkJobStateSensor.template_fields, "wait_timeout")

    def __init__(self, *, wait_timeout: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wait_timeout = wait_timeout

    def execute(self, context: Context) -> Any:
        """Apply the run's timeout, then wait as the provider's sensor does."""
        self.timeout = float(self.wait_timeout)
        return super().execute(context)
