"""Savepoints and the end of a job: trigger a savepoint, stop with a savepoint, cancel."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_flink_provider.links.flink_ui import FlinkJobLink
from airflow_flink_provider.operators.common import (
    log_job_url,
    push_job_id,
    require_job_id,
    task_identity,
    validate_snapshot_path,
    wait_for_job,
)
from airflow_flink_provider.protocol.errors import FlinkError, FlinkNotFoundError, FlinkSavepointError
from airflow_flink_provider.protocol.job_ids import deterministic_job_id
from airflow_flink_provider.protocol.job_state import JobState, JobStateCheck
from airflow_flink_provider.protocol.rest import savepoint_location

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

_FORMAT_TYPES = ("CANONICAL", "NATIVE")
MAX_SAVEPOINT_GENERATIONS = 10
"""How many failed savepoint operations of earlier tries of one task instance are skipped before giving up."""


def latest_savepoint(hook: FlinkRestHook, job_id: str, checkpoint_types: Sequence[str]) -> str | None:
    """Location of the job's latest completed savepoint of one of the given checkpoint types, if any.

    :param hook: the Flink REST hook.
    :param job_id: the job's id.
    :param checkpoint_types: accepted ``checkpoint_type`` values, e.g. ``SYNC_SAVEPOINT`` for the savepoint
        a stop-with-savepoint takes.
    """
    latest = (hook.get_checkpoints(job_id).get("latest") or {}).get("savepoint")
    if not isinstance(latest, Mapping) or latest.get("checkpoint_type") not in checkpoint_types:
        return None
    location = latest.get("external_path")
    return str(location) if location else None


class _JobOperator(BaseOperator):
    """Base of the operators acting on an existing job: job id, connection, extra link, savepoint trigger ids."""

    template_fields: Sequence[str] = ("job_id", "target_directory")
    ui_color = "#fdf1e3"
    operator_extra_links = (FlinkJobLink(),)

    def __init__(
        self,
        *,
        job_id: str,
        target_directory: str | None = None,
        timeout: float = 600.0,
        flink_conn_id: str = "flink_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.target_directory = target_directory
        self.timeout = timeout
        self.flink_conn_id = flink_conn_id

    def _rest_hook(self) -> FlinkRestHook:
        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

        return FlinkRestHook(flink_conn_id=self.flink_conn_id)

    def _validated(self) -> tuple[str, str | None]:
        """The job id and target directory, checked before any request."""
        target = self.target_directory or None
        if target is not None:
            validate_snapshot_path(target, "target_directory")
        return require_job_id(self.job_id), target

    def _start(self, context: Context) -> tuple[str, str | None, FlinkRestHook]:
        """Check the arguments (before any request), push the job id and log the job's UI link.

        :return: ``(job id, target directory, hook)``.
        """
        job_id, target = self._validated()
        hook = self._rest_hook()
        push_job_id(context, job_id)
        log_job_url(self.log, self.flink_conn_id, job_id)
        return job_id, target, hook

    def _earlier_savepoint(
        self, hook: FlinkRestHook, context: Context, job_id: str, *purpose: str, poll_interval: float = 1.0
    ) -> tuple[str | None, str]:
        """The savepoint an earlier try of this task took, and the trigger id for a new one.

        Trigger ids are ``deterministic_job_id(dag, task, run, map index, *purpose, job id, generation)``:
        a retried request (by the transport, or by an Airflow retry of the task) repeats the same id, and
        Flink answers it with the same operation instead of taking another savepoint. Flink keeps an
        operation for ``rest.async.store-duration`` (5 minutes by default). An earlier operation still in
        progress is waited for; one that failed moves on to the next generation's id.

        :return: ``(location, trigger_id)``: the earlier savepoint's location (or ``None``) and the id to
            trigger a new savepoint with.
        """
        parts = (*task_identity(context), *purpose, job_id)
        for generation in range(MAX_SAVEPOINT_GENERATIONS):
            trigger_id = deterministic_job_id(*parts, f"generation-{generation}")
            status = hook.find_savepoint(job_id, trigger_id)
            if status is None:
                return None, trigger_id
            try:
                location = savepoint_location(job_id, status)
            except FlinkSavepointError as err:
                self.log.warning(
                    "Savepoint operation %s of job %s by an earlier try failed (%s): using a new trigger id",
                    trigger_id,
                    job_id,
                    err.message,
                )
                continue
            if location is None:
                self.log.info(
                    "Savepoint operation %s of job %s by an earlier try is in progress: waiting", trigger_id, job_id
                )
                location = hook.wait_for_savepoint(
                    job_id, trigger_id, timeout=self.timeout, poll_interval=poll_interval
                )
            self.log.info(
                "Savepoint operation %s of job %s by an earlier try completed: %s (not taking another)",
                trigger_id,
                job_id,
                location,
            )
            return location, trigger_id
        raise FlinkError(
            f"{MAX_SAVEPOINT_GENERATIONS} savepoint operations of job {job_id} by this task instance failed",
            hint="Check the job's checkpoints (GET /jobs/<id>/checkpoints) and the JobManager log.",
        )


class FlinkTriggerSavepointOperator(_JobOperator):
    """Take a savepoint of a running job and return its location (XCom).

    The request carries a trigger id derived from the task instance and job, so a retried request or an
    Airflow retry of the task gets the same savepoint operation instead of a second savepoint (within
    Flink's ``rest.async.store-duration``). ``target_directory`` is checked before anything is sent (an
    absolute path or a ``file``/``hdfs``/``s3``/``gs``/... URI, no ``..``).

    :param job_id: the Flink job id (templated).
    :param target_directory: where to write it (templated); default: the cluster's savepoint directory.
    :param format_type: ``CANONICAL`` (portable, default) or ``NATIVE`` (faster, state-backend specific).
    :param timeout: seconds to wait for the savepoint to complete.
    :param poll_interval: seconds between savepoint status polls.
    :param flink_conn_id: the ``flink`` REST connection.
    """

    def __init__(self, *, format_type: str | None = None, poll_interval: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if format_type is not None and format_type.upper() not in _FORMAT_TYPES:
            raise ValueError(f"format_type must be one of {_FORMAT_TYPES}, got {format_type!r}")
        self.format_type = format_type.upper() if format_type else None
        self.poll_interval = poll_interval

    def execute(self, context: Context) -> str:
        """Trigger the savepoint (once per task instance, see the class docstring) and wait; returns its location."""
        job_id, target, hook = self._start(context)
        location, trigger_id = self._earlier_savepoint(
            hook, context, job_id, "savepoint", target or "", self.format_type or "", poll_interval=self.poll_interval
        )
        if location is not None:
            return location
        request_id = hook.trigger_savepoint(job_id, target, format_type=self.format_type, trigger_id=trigger_id)
        self.log.info("Triggered a savepoint of job %s (request %s)", job_id, request_id)
        location = hook.wait_for_savepoint(job_id, request_id, timeout=self.timeout, poll_interval=self.poll_interval)
        self.log.info("Savepoint of job %s completed: %s", job_id, location)
        return location


class FlinkStopJobOperator(_JobOperator):
    """Stop a job with a savepoint and return the savepoint's location (XCom).

    The stop carries a trigger id like :class:`FlinkTriggerSavepointOperator`'s; a retry that finds the job
    already FINISHED by a stop-with-savepoint returns that savepoint instead of failing.

    :param job_id: the Flink job id (templated).
    :param target_directory: where to write the savepoint (templated); default: the cluster's.
    :param drain: emit MAX_WATERMARK first, flushing event-time windows (for a final stop, not an upgrade).
    :param timeout: seconds to wait for the savepoint and the stop.
    :param flink_conn_id: the ``flink`` REST connection.
    """

    def __init__(self, *, drain: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.drain = drain

    def execute(self, context: Context) -> str:
        """Stop the job with a savepoint; returns its location."""
        job_id, target, hook = self._start(context)
        location, trigger_id = self._earlier_savepoint(hook, context, job_id, "stop", target or "", str(self.drain))
        if location is not None:
            return location
        state = JobState.parse(hook.get_job_state(job_id))
        if state.is_terminal:
            location = latest_savepoint(hook, job_id, ("SYNC_SAVEPOINT",)) if state is JobState.FINISHED else None
            if location is None:
                raise FlinkError(
                    f"Flink job {job_id} is already {state}: there is nothing to stop",
                    hint="Check the job id; restart the job from its last savepoint or checkpoint if needed.",
                )
            self.log.warning("Flink job %s was already stopped with savepoint %s", job_id, location)
            return location
        self.log.info("Stopping job %s (%s) with a savepoint%s", job_id, state, ", draining" if self.drain else "")
        location = hook.stop_with_savepoint(
            job_id, target, drain=self.drain, timeout=self.timeout, trigger_id=trigger_id
        )
        self.log.info("Stopped job %s; savepoint: %s", job_id, location)
        return location


class FlinkCancelJobOperator(_JobOperator):
    """Cancel a job, optionally after taking a savepoint; returns the savepoint location or ``None`` (XCom).

    The point is that the job no longer runs: cancelling a job that already ended (CANCELED, FAILED,
    FINISHED), or that Flink does not know (never started, or forgotten after ``jobstore.expiration-time``),
    succeeds with one log line and returns ``None``, so a retry, or a clean-up after a failed or never
    started job, does not fail. Only a savepoint asked of a job that is unknown, or ended without one, fails.

    :param job_id: the Flink job id (templated).
    :param savepoint_before_cancel: take a savepoint first and return its location.
    :param target_directory: where to write it (templated); default: the cluster's.
    :param timeout: seconds to wait for the savepoint and for the job to be CANCELED.
    :param poll_interval: seconds between polls.
    :param flink_conn_id: the ``flink`` REST connection.
    """

    def __init__(self, *, savepoint_before_cancel: bool = False, poll_interval: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.savepoint_before_cancel = savepoint_before_cancel
        self.poll_interval = poll_interval

    def execute(self, context: Context) -> str | None:
        """Cancel the job (after a savepoint if asked) and wait until it is CANCELED."""
        job_id, target, hook = self._start(context)
        found = hook.find_job_state(job_id)
        if found is None:
            if self.savepoint_before_cancel:
                raise FlinkNotFoundError(
                    f"Flink does not know job {job_id}: there is no job to take a savepoint of",
                    hint="Check the job id; a job is forgotten after jobstore.expiration-time once it ended.",
                )
            self.log.info("Flink does not know job %s: nothing to cancel", job_id)
            return None
        state = JobState.parse(found)
        if state.is_terminal:
            location = latest_savepoint(hook, job_id, ("SAVEPOINT",)) if self.savepoint_before_cancel else None
            if self.savepoint_before_cancel and location is None:
                raise FlinkError(f"Flink job {job_id} is already {state} and has no savepoint to return")
            self.log.warning("Flink job %s is already %s: nothing to cancel", job_id, state)
            return location
        location = None
        if self.savepoint_before_cancel:
            location, trigger_id = self._earlier_savepoint(
                hook, context, job_id, "cancel-savepoint", target or "", poll_interval=self.poll_interval
            )
            if location is None:
                request_id = hook.trigger_savepoint(job_id, target, trigger_id=trigger_id)
                self.log.info("Triggered a savepoint of job %s before cancelling (request %s)", job_id, request_id)
                location = hook.wait_for_savepoint(
                    job_id, request_id, timeout=self.timeout, poll_interval=self.poll_interval
                )
                self.log.info("Savepoint of job %s completed: %s", job_id, location)
        self.log.info("Cancelling job %s (%s)", job_id, state)
        hook.cancel_job(job_id)
        wait_for_job(
            hook,
            job_id,
            JobStateCheck.of(("CANCELED",), failure_states=()),
            timeout=self.timeout,
            poll_interval=self.poll_interval,
            log=self.log,
        )
        self.log.info("Flink job %s is CANCELED", job_id)
        return location
