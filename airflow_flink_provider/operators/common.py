"""What the Flink operators share: one job per task across retries and races, waits, slot and path checks."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_flink_provider.links.flink_ui import XCOM_JOB_ID_KEY, flink_ui_url, job_url
from airflow_flink_provider.protocol import errors
from airflow_flink_provider.protocol.errors import (
    FlinkDuplicateJobError,
    FlinkError,
    FlinkJobFailedError,
    FlinkResourceError,
    FlinkTimeoutError,
    hint_for,
)
from airflow_flink_provider.protocol.job_ids import deterministic_job_id, validate_job_id
from airflow_flink_provider.protocol.job_state import JobState, JobStateCheck, timeout_message, wait_for_job_state
from airflow_flink_provider.protocol.outage import Outage
from airflow_flink_provider.protocol.redaction import redact
from airflow_flink_provider.protocol.rest import answer_lost

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.types import Logger

    from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

IF_ENDED_CHOICES = ("resubmit", "reuse", "fail")
"""What a try does with the job of an earlier try that FINISHED, was CANCELED or FAILED."""

MAX_GENERATIONS = 50
"""How many ended jobs of one task run and purpose are skipped (``if_ended='resubmit'``) before giving up."""

SAME_ID_SUBMITS = 3
"""How many times one job id is submitted when the answers are lost and Flink does not show the job."""

JOB_LOOKUP_TIMEOUT = 20.0
"""Seconds a submission whose outcome is unknown polls for its job id before deciding (a PyFlink program
runs for seconds in the JobManager before its job is submitted)."""

JOB_LOOKUP_INTERVAL = 0.5
"""Seconds between those polls."""

STORE_KEY = "flink_job_ids"
"""Task state store key: ``{purpose: job id}`` of the jobs this task instance's tries submitted."""

_HIDDEN_DUPLICATE = ("Python process exits with code", "No jobs included in application")
"""How PyFlink's driver answers a run whose job id is taken (it hides the duplicate; which one depends on timing)."""


def is_over(state: str) -> bool:
    """Whether a job in ``state`` (as Flink reports it) will never run again: ended, or ending.

    A state Flink 2.x does not have counts as alive (attaching to it never starts a second job).

    :param state: e.g. ``"CANCELLING"``.
    """
    known = JobState.lookup(state)
    return known is not None and known.is_over


@dataclass(frozen=True)
class JobHandle:
    """The job a try ends up with.

    :param job_id: its id.
    :param state: its state when attached to (``None`` when this try's submit started it).
    :param reused: it ended before this try and ``if_ended='reuse'`` takes its outcome.
    """

    job_id: str
    state: str | None = None
    reused: bool = False


def task_identity(context: Context) -> tuple[str, str, str, str]:
    """The try-independent identity of the running task instance: DAG, task, run and map index.

    :param context: the task's execution context.
    """
    ti = context["ti"]
    return ti.dag_id, ti.task_id, ti.run_id, str(getattr(ti, "map_index", -1))


def shown(value: Any) -> str:
    """A user's value as an error message quotes it: its ``repr``, with any secret in it masked.

    :param value: e.g. ``program_args`` given as one string, ``"--password x"``.
    """
    return redact(repr(value))


def validate_if_ended(value: Any) -> str:
    """The ``if_ended`` parameter, checked.

    :param value: the value given to the operator.
    :raises ValueError: when it is not one of :data:`IF_ENDED_CHOICES`.
    """
    if value not in IF_ENDED_CHOICES:
        raise ValueError(f"if_ended must be one of {', '.join(map(repr, IF_ENDED_CHOICES))}, got {value!r}")
    return str(value)


def recorded_jobs(context: Context) -> dict[str, str]:
    """``{purpose: job id}`` recorded by earlier tries of this task instance (empty without a store).

    :param context: the task's execution context.
    """
    store = context.get("task_state_store")
    value = store.get(STORE_KEY) if store is not None else None
    if not isinstance(value, Mapping):
        return {}
    return {str(purpose): str(job_id) for purpose, job_id in value.items()}


def record_job(context: Context, purpose: str, job_id: str) -> None:
    """Record ``purpose -> job_id`` in the task state store (when there is one), before submitting.

    :param context: the task's execution context.
    :param purpose: what the job is within the task.
    :param job_id: the id it is about to be submitted under.
    """
    store = context.get("task_state_store")
    if store is not None:
        store.set(STORE_KEY, {**recorded_jobs(context), purpose: job_id})


def refuse_orphaned_jobs(hook: FlinkRestHook, context: Context, purposes: Collection[str], log: Logger) -> None:
    """Fail, before anything is submitted, if an earlier try's job that this try would not reuse still runs.

    An earlier try recorded ``{purpose: job id}`` in the task state store. A purpose this try does not have
    (the SQL statement or the submitted program was changed since) belongs to a job this try would never
    attach to: if that job is alive, running this try would leave two jobs for one task.

    :param hook: the Flink REST hook.
    :param context: the task's execution context.
    :param purposes: the purposes of the jobs this try may submit.
    :param log: where to report what was checked.
    :raises FlinkError: naming the live job.
    """
    for purpose, job_id in recorded_jobs(context).items():
        if purpose in purposes:
            continue
        state = hook.find_job_state(job_id)
        if state is None or is_over(state):
            log.info("Job %s of an earlier try (%s) is %s; this try does not reuse it", job_id, purpose, state)
            continue
        raise FlinkError(
            f"Flink job {job_id} of an earlier try of this task is still {state}, and this try would not "
            f"reuse it: what it runs ({purpose}) has changed since. Submitting now would leave two jobs "
            "running for one task.",
            hint=f"Stop it with a savepoint (FlinkStopJobOperator) or cancel it (PATCH /jobs/{job_id}"
            "?mode=cancel), then retry the task.",
        )


def converge_on_job(
    hook: FlinkRestHook,
    context: Context,
    purpose: str,
    submit: Callable[[str], str],
    log: Logger,
    *,
    if_ended: str = "resubmit",
    job_id: str | None = None,
) -> JobHandle:
    """Find the job of this task and purpose, or submit it: the one rule of every submission path.

    Ids are ``deterministic_job_id(dag, task, run, map index, purpose, generation)``, from generation 0
    (or ``job_id`` alone when given). For each id:

    - a live job under it (an earlier or a concurrent try started it) is attached to;
    - an ended or ending one (FINISHED, CANCELED, FAILED, CANCELLING, FAILING: :func:`is_over`) is handled
      by ``if_ended``: ``resubmit`` moves on to the next generation, ``reuse`` takes that job's outcome,
      ``fail`` raises;
    - an unknown id is recorded in the task state store, then submitted.

    A submit answered "duplicate", or whose answer was lost (read timeout, reset after sending, 502/504)
    or hidden (PyFlink's ``Python process exits with code: 1``), looks the id up for
    :data:`JOB_LOOKUP_TIMEOUT` seconds: a job found is attached to (alive) or taken as this submission's
    outcome (ended); after a lost answer with no job, the same id is submitted again (Flink refuses a
    second job under it, so this is safe); a "duplicate" with no job (Flink's job result store outlives
    its job archive) moves on to the next generation. Two racing tries thus end with one job.

    :param hook: the Flink REST hook.
    :param context: the task's execution context.
    :param purpose: what the job is within the task, with a fingerprint of what it runs.
    :param submit: submits under the given id and returns the id Flink started the job under.
    :param log: where each decision is reported, one line each.
    :param if_ended: ``resubmit``, ``reuse`` or ``fail`` (see above).
    :param job_id: a fixed id to use instead of the deterministic ones.
    :raises FlinkError: a refused or failed submission, an ended job under ``if_ended='fail'``, or an ended
        job's failure under ``if_ended='reuse'``.
    """
    parts = (*task_identity(context), purpose)
    for generation in range(1 if job_id else MAX_GENERATIONS):
        candidate = job_id or deterministic_job_id(*parts, f"generation-{generation}")
        state = hook.find_job_state(candidate)
        if state is not None:
            if not is_over(state):
                log.info(
                    "Flink job %s is %s: started by an earlier or concurrent try of this task; attaching to it "
                    "instead of submitting again",
                    candidate,
                    state,
                )
                return JobHandle(candidate, state)
            handle = _ended_job(hook, candidate, state, if_ended, fixed=job_id is not None, log=log)
            if handle is not None:
                return handle
            continue
        record_job(context, purpose, candidate)
        handle = _submit_converging(hook, candidate, submit, log)
        if handle is not None:
            return handle
        if job_id:
            raise FlinkDuplicateJobError(
                f"Flink refuses job id {job_id} as used before, but no longer shows that job",
                hint="A job id is used once: leave job_id unset to get a fresh deterministic id, or pass a new one.",
            )
    raise FlinkError(
        f"{MAX_GENERATIONS} jobs of this task run ({'/'.join(parts)}) already ended and were resubmitted",
        hint="Clear the task with a new DAG run, or investigate why the job keeps ending.",
    )


def _ended_job(
    hook: FlinkRestHook, job_id: str, state: str, if_ended: str, *, fixed: bool, log: Logger
) -> JobHandle | None:
    """Apply ``if_ended`` to an earlier try's job that ended: ``None`` means submit the next generation."""
    final = JobState.parse(state).final
    if if_ended == "resubmit" and not fixed:
        log.info(
            "Flink job %s of an earlier try is %s; if_ended='resubmit': submitting the job again under the "
            "next generation's id",
            job_id,
            state,
        )
        return None
    if if_ended == "reuse":
        log.info(
            "Flink job %s of an earlier try is %s; if_ended='reuse': taking its outcome instead of submitting again",
            job_id,
            state,
        )
        return _outcome(hook, job_id, final, reused=True)
    reason = (
        "a fixed job_id cannot be submitted twice"
        if if_ended == "resubmit"
        else "if_ended='fail' forbids resubmitting or reusing it"
    )
    log.error("Flink job %s of an earlier try is %s; %s: failing", job_id, state, reason)
    raise FlinkError(
        f"Flink job {job_id} of an earlier try of this task already ended ({state}); {reason}",
        hint="Set if_ended='resubmit' (with no fixed job_id) to run the job again, or if_ended='reuse' to take "
        "that job's outcome; or trigger a new DAG run.",
    )


def _outcome(hook: FlinkRestHook, job_id: str, state: JobState, *, reused: bool) -> JobHandle:
    """Take an ended job's outcome: FINISHED is a success, FAILED and CANCELED raise with the root cause."""
    if state is JobState.FINISHED:
        return JobHandle(job_id, state, reused=reused)
    if state is JobState.FAILED:
        raise job_failed_error(hook, job_id, state)
    raise FlinkJobFailedError(
        f"Flink job {job_id} was CANCELED",
        job_id=job_id,
        state=state,
        hint="Someone cancelled it; clear the task to run it again.",
    )


def _submit_converging(hook: FlinkRestHook, job_id: str, submit: Callable[[str], str], log: Logger) -> JobHandle | None:
    """Submit under ``job_id`` until Flink started it, shows it, or refuses the id: ``None`` is the last."""
    for attempt in range(1, SAME_ID_SUBMITS + 1):
        try:
            started = submit(job_id)
        except FlinkDuplicateJobError:
            state = await_job(hook, job_id)
            if state is None:
                log.warning(
                    "Flink refuses job id %s as used before but does not show its job (its job result store "
                    "outlives the job archive): moving on to the next id",
                    job_id,
                )
                return None
            return _converged(hook, job_id, state, "Flink answered 'duplicate job'", log)
        except FlinkError as error:
            said = f"{error.message} {error.root_cause or ''}"
            lost, hidden = answer_lost(error), any(words in said for words in _HIDDEN_DUPLICATE)
            if not (lost or hidden):
                raise
            state = await_job(hook, job_id)
            if state is not None:
                why = "the submit's answer was lost" if lost else "the PyFlink program started no job of its own"
                return _converged(hook, job_id, state, why, log)
            if hidden:
                raise FlinkError(
                    f"The PyFlink program failed and no job {job_id} was started: {error.message}",
                    hint="The program's own error is in the JobManager log (its Python traceback).",
                    **error.passed_on(),
                ) from error
            if attempt == SAME_ID_SUBMITS:
                raise
            log.warning(
                "The answer to submitting job %s was lost (%s) and Flink does not show the job after %gs: "
                "submitting it again under the same id (Flink refuses a second job with it)",
                job_id,
                error.message,
                JOB_LOOKUP_TIMEOUT,
            )
            continue
        if started != job_id:
            log.warning("Flink started job %s, not the requested id %s", started, job_id)
        log.info("Submitted Flink job %s", started)
        return JobHandle(started)
    raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover


def _converged(hook: FlinkRestHook, job_id: str, state: str, why: str, log: Logger) -> JobHandle:
    """The job found under the id this try just submitted: attach if alive, else take its outcome."""
    log.info(
        "Flink job %s is %s (%s): this submission or a concurrent try's started it; %s",
        job_id,
        state,
        why,
        "taking its outcome" if is_over(state) else "attaching to it",
    )
    if is_over(state):
        return _outcome(hook, job_id, JobState.parse(state).final, reused=False)
    return JobHandle(job_id, state)


def await_job(hook: FlinkRestHook, job_id: str) -> str | None:
    """Poll for a job id for :data:`JOB_LOOKUP_TIMEOUT` seconds: a job just submitted may not show yet.

    :param hook: the Flink REST hook.
    :param job_id: the job's id.
    :return: the job's live state, or ``None`` if Flink still does not know it.
    """
    deadline = time.monotonic() + JOB_LOOKUP_TIMEOUT
    while True:
        state = hook.find_job_state(job_id)
        if state is not None or time.monotonic() >= deadline:
            return state
        time.sleep(JOB_LOOKUP_INTERVAL)


def push_job_id(context: Context, job_id: str) -> None:
    """Record the job id for the Flink UI link.

    :param context: the task's execution context.
    :param job_id: the Flink job id.
    """
    context["ti"].xcom_push(key=XCOM_JOB_ID_KEY, value=job_id)


def log_job_url(log: Logger, flink_conn_id: str, job_id: str) -> None:
    """Log the job's page in the Flink web UI, one line, so it is one click from the task's Logs tab.

    :param log: the task's logger.
    :param flink_conn_id: the ``flink`` connection (its ``ui_url`` extra, else its REST address).
    :param job_id: the Flink job id.
    """
    log.info("Flink web UI of job %s: %s", job_id, job_url(flink_ui_url(flink_conn_id), job_id))


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
    outage_budget: float | None = None,
) -> str:
    """Poll a job until it reaches a target state, on the worker: the wait exchange run by the hook.

    Polls every ``poll_interval`` seconds, the last time at the deadline; no retry of a poll runs past the
    deadline. An outage of the REST API (refused connections, timeouts, 429/5xx such as the 503 of a leader
    election) is ridden out for up to ``outage_budget`` seconds from the first failed poll
    (:func:`~airflow_flink_provider.protocol.job_state.wait_for_job_state`).

    :param hook: the Flink REST hook.
    :param job_id: the job's id.
    :param check: target and failure states.
    :param timeout: seconds to wait at most.
    :param poll_interval: seconds between polls.
    :param log: where state changes are reported.
    :param outage_budget: seconds an API outage may last; ``None`` for the connection's ``outage_budget``.
    :return: the state reached.
    :raises FlinkJobFailedError: the job reached a failure state.
    :raises FlinkResourceError: the job's tasks cannot get slots.
    :raises FlinkTimeoutError: the timeout ran out first.
    :raises FlinkConnectionError: the API was unavailable for longer than the outage budget.
    """
    config = hook.transport_config
    budget = config.outage_budget if outage_budget is None else outage_budget
    outage = Outage(budget, what=f"Flink REST API at {config.base_url}", log=log)
    verdict = hook.run(
        wait_for_job_state(job_id, check, timeout=timeout, poll_interval=poll_interval, outage=outage, log=log)
    )
    if verdict.outcome != "reached":
        raise FlinkTimeoutError(
            timeout_message(job_id, check, verdict, f"within {timeout:g}s", outage),
            hint=hint_for("not enough slots") if verdict.waiting_tasks else None,
        )
    return verdict.state


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


SNAPSHOT_SCHEMES = frozenset(
    {"file", "hdfs", "viewfs", "s3", "s3a", "s3p", "gs", "abfs", "abfss", "wasb", "wasbs", "oss"}
)
"""File systems a savepoint or checkpoint location may be on: the local/shared disk, HDFS, and the object
stores Flink ships file system plugins for (``s3``/``s3a`` Hadoop, ``s3p`` Presto, ``gs``, Azure
``abfs(s)``/``wasb(s)``, Aliyun ``oss``). Anything else (``http://``, a typo) is refused before submit."""

_SNAPSHOT_URI = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*):(?P<rest>.*)", re.DOTALL)


def validate_snapshot_path(value: Any, what: str) -> str:
    """A savepoint path or target directory, checked before anything is submitted.

    Accepted: an absolute path (``/data/savepoints/sp-1``) or a URI whose scheme is in
    :data:`SNAPSHOT_SCHEMES` (``file:///...``, Flink's own ``file:/...``, ``s3://bucket/...``). Refused: an
    empty value, whitespace or control characters, a ``..`` segment, the root directory alone, a relative
    path, another scheme (``http://``...), and an object store URI without a bucket.

    :param value: the (rendered) value.
    :param what: the parameter's name, for the error message.
    :raises ValueError: naming the problem.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty path or URI, got {shown(value)}")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError(f"{what} must not contain whitespace or control characters: {shown(value)}")
    match = _SNAPSHOT_URI.fullmatch(value)
    scheme, rest = (match["scheme"].lower(), match["rest"]) if match else ("", value)
    if match and scheme not in SNAPSHOT_SCHEMES:
        raise ValueError(
            f"{what} has the scheme {scheme!r}, which Flink cannot write savepoints to; use one of "
            f"{', '.join(sorted(SNAPSHOT_SCHEMES))} or an absolute path: {shown(value)}"
        )
    authority, path = "", rest
    if rest.startswith("//"):
        authority, _, path = rest[2:].partition("/")
        path = "/" + path
    if not path.startswith("/"):
        raise ValueError(
            f"{what} must be an absolute path or a URI like file:///dir or s3://bucket/dir: {shown(value)}"
        )
    if ".." in path.split("/"):
        raise ValueError(f"{what} must not contain '..' segments: {shown(value)}")
    if scheme in ("", "file", "hdfs", "viewfs") and not path.strip("/"):
        raise ValueError(f"{what} must name a directory below the root, got {shown(value)}")
    if scheme not in ("", "file", "hdfs", "viewfs") and not authority:
        raise ValueError(f"{what} must name a bucket or container ({scheme}://<bucket>/<path>): {shown(value)}")
    return value
