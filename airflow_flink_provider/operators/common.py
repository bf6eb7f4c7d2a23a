"""What the Flink operators share: job identity across retries, waiting for a job state, slot checks."""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from airflow_flink_provider.links.flink_ui import XCOM_JOB_ID_KEY
from airflow_flink_provider.protocol import errors
from airflow_flink_provider.protocol.errors import (
    FlinkError,
    FlinkJobFailedError,
    FlinkResourceError,
    FlinkTimeoutError,
    hint_for,
)
from airflow_flink_provider.protocol.job_ids import deterministic_job_id, validate_job_id
from airflow_flink_provider.triggers.job_state import JobStateCheck, Verdict, may_be_stuck

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.types import Logger

    from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

DEAD_STATES = frozenset({"FAILED", "FAILING", "CANCELED", "CANCELLING"})
"""A job in one of these states is not attached to: a retry submits a new generation instead."""

MAX_GENERATIONS = 50
"""How many failed or cancelled jobs of one task run are skipped before giving up."""


def task_identity(context: Context) -> tuple[str, str, str, str]:
    """The try-independent identity of the running task instance: DAG, task, run and map index.

    :param context: the task's execution context.
    """
    ti = context["ti"]
    return ti.dag_id, ti.task_id, ti.run_id, str(getattr(ti, "map_index", -1))


def resolve_job_id(
    hook: FlinkRestHook, context: Context, purpose: str, log: Logger, *, taken: Collection[str] = ()
) -> tuple[str, Mapping[str, Any] | None]:
    """Decide the job id to submit with, or find the live job an earlier try already started.

    Ids are ``deterministic_job_id(dag, task, run, map index, purpose, generation)``. Generation 0 is
    used first; a job that already exists under an id and is alive (or finished) is returned to attach
    to; one that failed or was cancelled moves on to the next generation, so a retry after a failure
    submits afresh instead of colliding with the dead job. The chosen id is written to the task state
    store (when the context has one) *before* the caller submits.

    :param hook: the Flink REST hook.
    :param context: the task's execution context.
    :param purpose: what the job is within the task, e.g. ``statement-3`` or ``job``.
    :param log: where to report the decision.
    :param taken: ids Flink refused as already used although it no longer shows the job (its job result
        store outlives the job archive); they are skipped like dead jobs.
    :return: ``(job_id, job)``: ``job`` is the existing job's details, or ``None`` when the caller
        must submit with ``job_id``.
    """
    parts = (*task_identity(context), purpose)
    store = context.get("task_state_store")
    store_key = f"{XCOM_JOB_ID_KEY}:{purpose}"
    for generation in range(MAX_GENERATIONS):
        job_id = deterministic_job_id(*parts, f"generation-{generation}")
        if job_id in taken:
            continue
        job = hook.find_job(job_id)
        if job is None:
            if store is not None:
                store.set(store_key, job_id)
            return job_id, None
        state = str(job.get("state", "")).upper()
        if state in DEAD_STATES:
            log.info("Job %s of an earlier try is %s; trying the next job id", job_id, state)
            continue
        log.info("Job %s of an earlier try is %s: attaching to it instead of submitting again", job_id, state)
        return job_id, job
    raise FlinkError(
        f"{MAX_GENERATIONS} jobs of this task run ({'/'.join(parts)}) already failed or were cancelled",
        hint="Clear the task with a new DAG run, or investigate why the job keeps failing.",
    )


def push_job_id(context: Context, job_id: str) -> None:
    """Record the job id for the Flink UI link.

    :param context: the task's execution context.
    :param job_id: the Flink job id.
    """
    context["ti"].xcom_push(key=XCOM_JOB_ID_KEY, value=job_id)


def job_failed_error(hook: FlinkRestHook, job_id: str, state: str) -> FlinkJobFailedError:
    """The error for a job in a failure state, typed and worded by the root cause in its exception history.

    :param hook: the Flink REST hook.
    :param job_id: the job's id.
    :param state: the state it reached.
    """
    return errors.job_failed_error(job_id, hook.get_root_cause(job_id), state=state)


def wait_for_job(
    hook: FlinkRestHook,
    job_id: str,
    check: JobStateCheck,
    *,
    timeout: float,
    poll_interval: float,
    log: Logger,
) -> str:
    """Poll a job until it reaches a target state.

    :param hook: the Flink REST hook.
    :param job_id: the job's id.
    :param check: target and failure states.
    :param timeout: seconds to wait at most.
    :param poll_interval: seconds between polls.
    :param log: where state changes are reported.
    :return: the state reached.
    :raises FlinkJobFailedError: the job reached a failure state.
    :raises FlinkResourceError: the job's tasks cannot get slots.
    :raises FlinkTimeoutError: the timeout ran out first.
    """
    deadline = time.monotonic() + timeout
    last_state: str | None = None
    last_waiting: tuple[str, ...] = ()
    last_verdict: Verdict | None = None
    while True:
        verdict = check.evaluate(hook.get_job_overview(job_id))
        if verdict.state != last_state:
            log.info("Flink job %s: %s -> %s", job_id, last_state or "-", verdict.state)
            last_state = verdict.state
        if verdict.outcome == "reached":
            return verdict.state
        if verdict.outcome == "failed":
            raise job_failed_error(hook, job_id, verdict.state)
        if verdict.waiting_tasks and verdict.waiting_tasks != last_waiting:
            log.info("Flink job %s is RUNNING but these tasks are not: %s", job_id, ", ".join(verdict.waiting_tasks))
        last_waiting = verdict.waiting_tasks
        if may_be_stuck(verdict, last_verdict):
            hook.check_job(job_id)  # raises FlinkResourceError for a job that cannot get its slots
        last_verdict = verdict
        if time.monotonic() >= deadline:
            waiting = f"; tasks not running: {', '.join(last_waiting)}" if last_waiting else ""
            raise FlinkTimeoutError(
                f"Flink job {job_id} did not reach {sorted(check.target_states)} within {timeout:g}s "
                f"(last state {last_state}{waiting})",
                hint=hint_for("not enough slots") if last_waiting else None,
            )
        time.sleep(poll_interval)


def check_slots(hook: FlinkRestHook, parallelism: int | None, log: Logger) -> None:
    """Fail before submitting a job that can never get its slots.

    With slot sharing a job needs as many slots as its highest parallelism. A job asking for more than the
    cluster has in total would hold free slots until ``slot.request.timeout`` and then fail, so it is
    refused here; one asking for more than is free right now only gets a warning.

    :param hook: the Flink REST hook.
    :param parallelism: the job's (default) parallelism, ``None`` when unknown.
    :param log: where to warn.
    :raises FlinkResourceError: the cluster has fewer slots in total.
    """
    if parallelism is None:
        return
    overview = hook.get_overview()
    total = int(overview.get("slots-total", 0))
    free = int(overview.get("slots-available", 0))
    if total == 0:
        raise FlinkResourceError(
            "The Flink cluster has no TaskManager registered (0 task slots); the job was not submitted",
            hint="Check that the TaskManagers are running and can reach the JobManager (GET /taskmanagers).",
        )
    if parallelism > total:
        raise FlinkResourceError(
            f"Not enough task slots: the job needs {parallelism} slots (parallelism {parallelism}) but the "
            f"cluster has {total} in total ({free} free); it was not submitted",
            hint=hint_for("not enough slots"),
        )
    if parallelism > free:
        log.warning(
            "The job needs %d slots but only %d of %d are free now: it will wait for slots and fail after "
            "slot.request.timeout if none are released",
            parallelism,
            free,
            total,
        )


def parse_parallelism(value: Any, what: str) -> int | None:
    """A positive parallelism from user input, or ``None``.

    :param value: an int, a numeric string, or ``None``.
    :param what: the parameter's name, for the error message.
    :raises ValueError: when it is not a positive integer.
    """
    if value is None:
        return None
    try:
        parallelism = int(str(value).strip())
    except ValueError:
        raise ValueError(f"{what} must be a positive integer, got {value!r}") from None
    if parallelism <= 0:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return parallelism


def require_job_id(value: Any, what: str = "job_id") -> str:
    """A validated Flink job id from user input.

    :param value: the (rendered) value.
    :param what: the parameter's name, for the error message.
    :raises ValueError: when it is not 32 hex digits.
    """
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a Flink job id (32 hex digits), got {value!r}")
    return validate_job_id(value)
