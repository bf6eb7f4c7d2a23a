"""Exchanges for the Flink REST API (the JobManager's ``:8081``), one per operation.

Each function returns an :data:`~airflow_flink_provider.protocol.http.Exchange`; run it with
``SyncTransport.run`` (hooks) or ``await AsyncTransport.run`` (triggers). Names match the
:class:`~airflow_flink_provider.hooks.flink_rest.FlinkRestHook` methods.
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypedDict, TypeVar, Unpack

from airflow_flink_provider.protocol.errors import (
    FlinkConnectionError,
    FlinkError,
    FlinkNotFoundError,
    FlinkSavepointError,
    FlinkSavepointNotFoundError,
    FlinkTimeoutError,
    error_from_response,
    error_from_text,
    root_cause,
)
from airflow_flink_provider.protocol.http import Exchange, Request, Response, Sleep, path_segment

_PROXY_STATUSES = frozenset({502, 503, 504})

PYTHON_DRIVER = "org.apache.flink.client.python.PythonDriver"
"""Entry class of the flink-python jar that runs a PyFlink program in the JobManager."""

PYTHON_RUN_TIMEOUT = 300.0
"""Seconds a PyFlink run may take to answer: the program runs, and builds its job, inside the request (30 s at
load 20 on a 2-core machine, the connection's default read timeout)."""

Clock = Callable[[], float]

T = TypeVar("T")


def _body(response: Response | None) -> Any:
    """The JSON body of a response the transport handed back."""
    assert response is not None, "a transport answers every Request with a Response"
    return response.body


def _job_path(job_id: str, *rest: str) -> str:
    return "/".join(("/jobs", path_segment(job_id), *rest))


def get_overview() -> Exchange[dict[str, Any]]:
    """``GET /overview``: cluster summary (task managers, slots total/available, job counts, version)."""
    return _body((yield Request("GET", "/overview")))


def get_config() -> Exchange[dict[str, Any]]:
    """``GET /config``: the web UI configuration (Flink version, revision, enabled features)."""
    return _body((yield Request("GET", "/config")))


def get_jobmanager_config() -> Exchange[dict[str, str]]:
    """``GET /jobmanager/config``: the cluster configuration as a ``{key: value}`` dict."""
    entries = _body((yield Request("GET", "/jobmanager/config")))
    return {entry["key"]: entry["value"] for entry in entries}


def answer_lost(error: FlinkError) -> bool:
    """Whether a failed request may have reached Flink and done its work although no answer came back.

    A read timeout, a connection reset after the request was sent, or a 502/503/504 (a proxy's answer, not
    Flink's) leaves it unknown whether a submit or upload happened; Flink's own error answers do not.

    :param error: what the transport raised.
    """
    if isinstance(error, FlinkTimeoutError):
        return error.transient
    if isinstance(error, FlinkConnectionError):
        return error.request_sent
    return type(error) is FlinkError and error.status in _PROXY_STATUSES


def upload_jar(path: str, *, timeout: float | None = None, attempts: int = 3) -> Exchange[str]:
    """``POST /jars/upload``: upload a local jar; returns its jar id (``<uuid>_<file name>``).

    An upload is not idempotent: the transport repeats it only when it surely never reached Flink. When
    the answer is lost (:func:`answer_lost`), the jar is looked up by its file name in ``GET /jars``
    instead of being uploaded again; only when no jar of that name is there is it sent again. Upload
    under a file name unique to the upload, and delete every jar of that name when done (a lost upload
    that lands later would otherwise stay).

    :param path: local path of the jar; its file name is the name Flink lists it under.
    :param timeout: request timeout for a large jar, overriding the transport's.
    :param attempts: uploads at most, counting those whose answer was lost.
    """
    name = posixpath.basename(path)
    for attempt in range(1, attempts + 1):
        try:
            body = _body((yield Request("POST", "/jars/upload", upload=path, timeout=timeout, idempotent=False)))
            return posixpath.basename(body["filename"])
        except FlinkError as error:
            if not answer_lost(error) or attempt == attempts:
                raise
        landed = [jar for jar in (yield from list_jars()) if jar.get("name") == name]
        if landed:
            return str(max(landed, key=lambda jar: jar.get("uploaded", 0))["id"])
    raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover


def jars_named(name: str) -> Exchange[list[str]]:
    """The ids of the uploaded jars listed under the file name ``name``.

    :param name: the uploaded file's name, e.g. ``job-1f2e.jar``.
    """
    return [str(jar["id"]) for jar in (yield from list_jars()) if jar.get("name") == name]


def list_jars() -> Exchange[list[dict[str, Any]]]:
    """``GET /jars``: uploaded jars (``id``, ``name``, ``uploaded`` epoch ms, ``entry`` classes)."""
    return list(_body((yield Request("GET", "/jars"))).get("files", []))


def delete_jar(jar_id: str) -> Exchange[None]:
    """``DELETE /jars/{jar_id}``; a jar that is already gone (Flink answers 400 "does not exist") is fine.

    :param jar_id: the id :func:`upload_jar` returned.
    """
    response = yield Request("DELETE", f"/jars/{path_segment(jar_id)}", accept=frozenset({400}))
    if response is not None and response.status == 400 and "does not exist" not in response.text:
        raise error_from_response(response.status, response.body if response.body is not None else response.text)


class RunJarOptions(TypedDict, total=False):
    """How :func:`run_jar` (and ``FlinkRestHook.run_jar``) submits a jar's job; every option may be left out.

    :param entry_class: main class, when the jar's manifest has none (or another is wanted).
    :param program_args: arguments for the main method.
    :param parallelism: default parallelism of the job.
    :param savepoint_path: savepoint or retained checkpoint to restore from.
    :param allow_non_restored_state: skip state that maps to no operator.
    :param claim_mode: ``CLAIM``, ``NO_CLAIM`` or ``LEGACY`` for the restored snapshot.
    :param flink_configuration: job configuration entries.
    :param job_id: the 32-hex job id to use.
    """

    entry_class: str | None
    program_args: list[str] | None
    parallelism: int | None
    savepoint_path: str | None
    allow_non_restored_state: bool | None
    claim_mode: str | None
    flink_configuration: Mapping[str, str] | None
    job_id: str | None


def run_jar(jar_id: str, **options: Unpack[RunJarOptions]) -> Exchange[str]:
    """``POST /jars/{jar_id}/run``: submit the jar's job; returns the job id.

    Arguments go as ``programArgsList`` (one list item per argument, no shell splitting). With a fixed
    ``job_id`` a repeated submit of a jar is refused by Flink, so the transport may repeat the request.

    A PyFlink run (``entry_class`` :data:`PYTHON_DRIVER`) is never repeated by the transport, and waits
    :data:`PYTHON_RUN_TIMEOUT` for its answer: its program runs inside the request, and a repeat sent while the
    first still ran started a second job in Flink 2.1.3 that no job id stops: in a local mini cluster inside
    the JobManager, under a random id, without the savepoint, invisible to ``/jobs``. After a lost answer the
    caller looks the job id up instead (``operators.common.converge_on_job``).

    :param jar_id: the uploaded jar.
    :param options: see :class:`RunJarOptions`.
    :raises TypeError: an option it does not know.
    """
    unknown = sorted(set(options) - RunJarOptions.__optional_keys__)
    if unknown:
        raise TypeError(f"run_jar() got unknown options: {', '.join(unknown)}")
    program_args, flink_configuration = options.get("program_args"), options.get("flink_configuration")
    job_id = options.get("job_id")
    payload: dict[str, Any] = {
        "entryClass": options.get("entry_class"),
        "programArgsList": list(program_args) if program_args is not None else None,
        "parallelism": options.get("parallelism"),
        "savepointPath": options.get("savepoint_path"),
        "allowNonRestoredState": options.get("allow_non_restored_state"),
        "claimMode": options.get("claim_mode"),
        "flinkConfiguration": dict(flink_configuration) if flink_configuration else None,
        "jobId": job_id,
    }
    payload = {key: value for key, value in payload.items() if value is not None}
    path = f"/jars/{path_segment(jar_id)}/run"
    python = options.get("entry_class") == PYTHON_DRIVER
    request = Request("POST", path, json=payload, idempotent=job_id is not None and not python,
                      timeout=PYTHON_RUN_TIMEOUT if python else None)  # fmt: skip
    body = _body((yield request))
    return str(body["jobid"])


def get_job(job_id: str) -> Exchange[dict[str, Any]]:
    """``GET /jobs/{job_id}``: job details (``state``, ``vertices`` with task counts, timestamps...).

    :param job_id: the job.
    """
    return _body((yield Request("GET", _job_path(job_id))))


def get_vertex(job_id: str, vertex_id: str) -> Exchange[dict[str, Any]]:
    """``GET /jobs/{job_id}/vertices/{vertex_id}``: the vertex's ``status``, ``parallelism`` and its
    ``subtasks``, each with its ``status``, host, ``taskmanager-id`` and ``metrics`` (``read-records``,
    ``write-records``, ``accumulated-busy-time``, ``accumulated-backpressured-time``,
    ``accumulated-idle-time``...). Also answered for a finished job (from its archived execution graph), unlike
    the metric endpoints of :mod:`~airflow_flink_provider.protocol.metrics`, which answer only while it runs.

    :param job_id: the job.
    :param vertex_id: the vertex (``vertices[].id`` of :func:`get_job`).
    """
    return dict(_body((yield Request("GET", _job_path(job_id, "vertices", path_segment(vertex_id))))))


def get_job_overview(job_id: str) -> Exchange[dict[str, Any]]:
    """The job's live state and task counts: its entry in ``GET /jobs/overview``.

    ``GET /jobs/{id}`` is served from a cache refreshed every ``web.refresh-interval``; the overview is
    answered live, so a wait sees a state change at once. The entry has ``jid``, ``name``, ``state`` and
    ``tasks`` (counts per task state, and ``total``). A job missing from the overview is read with
    :func:`get_job` instead (which raises ``FlinkNotFoundError`` for an unknown job).

    :param job_id: the job.
    """
    jobs = _body((yield Request("GET", "/jobs/overview"))).get("jobs", [])
    for job in jobs:
        if job.get("jid") == job_id:
            return dict(job)
    return (yield from get_job(job_id))


def get_job_state(job_id: str) -> Exchange[str]:
    """``GET /jobs/{job_id}/status``: the job's state, e.g. ``RUNNING``.

    :param job_id: the job.
    """
    return str(_body((yield Request("GET", _job_path(job_id, "status"))))["status"])


def find_job(job_id: str) -> Exchange[dict[str, Any] | None]:
    """Like :func:`get_job`, but ``None`` when Flink does not know the job (HTTP 404).

    :param job_id: the job.
    """
    response = yield Request("GET", _job_path(job_id), accept=frozenset({404}))
    return None if response is None or response.status == 404 else response.body


def find_job_state(job_id: str) -> Exchange[str | None]:
    """The job's live state, or ``None`` when Flink does not know the job.

    ``GET /jobs/{id}/status`` asks the dispatcher, while ``GET /jobs/{id}`` is served from a cache refreshed
    every ``web.refresh-interval``: a job cancelled or stopped a moment ago still shows RUNNING there. An
    unknown job is HTTP 500 ``FlinkJobNotFoundException`` here.

    :param job_id: the job.
    """
    try:
        return (yield from get_job_state(job_id))
    except FlinkNotFoundError:
        return None


def list_jobs(name: str | None = None, states: Collection[str] | None = None) -> Exchange[list[dict[str, Any]]]:
    """``GET /jobs/overview``: jobs (``jid``, ``name``, ``state``, ``start-time``...), newest first.

    :param name: keep only jobs with exactly this name.
    :param states: keep only jobs in one of these states.
    """
    jobs = _body((yield Request("GET", "/jobs/overview"))).get("jobs", [])
    wanted = {state.upper() for state in states} if states is not None else None
    selected = [
        job
        for job in jobs
        if (name is None or job.get("name") == name) and (wanted is None or job.get("state") in wanted)
    ]
    return sorted(selected, key=lambda job: job.get("start-time", 0), reverse=True)


def get_exceptions(job_id: str) -> Exchange[dict[str, Any]]:
    """``GET /jobs/{job_id}/exceptions``: the exception history (``exceptionHistory.entries``, newest first).

    :param job_id: the job.
    """
    return _body((yield Request("GET", _job_path(job_id, "exceptions"))))


def root_cause_of(exceptions: Mapping[str, Any]) -> str | None:
    """The root cause of the newest failure in an exceptions answer, or ``None`` when there was none.

    :param exceptions: the body of ``GET /jobs/{id}/exceptions``.
    """
    entries = (exceptions.get("exceptionHistory") or {}).get("entries") or []
    if entries:
        newest = max(entries, key=lambda entry: entry.get("timestamp") or 0)
        trace = newest.get("stacktrace") or newest.get("exceptionName") or ""
        return root_cause(trace) or None
    legacy = exceptions.get("root-exception")  # Flink 1.x
    return root_cause(legacy) if legacy else None


def get_root_cause(job_id: str) -> Exchange[str | None]:
    """The root cause (last ``Caused by:``) of the job's newest failure, or ``None`` if it never failed.

    :param job_id: the job.
    """
    return root_cause_of((yield from get_exceptions(job_id)))


def get_checkpoints(job_id: str) -> Exchange[dict[str, Any]]:
    """``GET /jobs/{job_id}/checkpoints``: counts, ``latest`` (completed, savepoint, failed, restored), history.

    :param job_id: the job.
    """
    return _body((yield Request("GET", _job_path(job_id, "checkpoints"))))


def get_checkpoint_config(job_id: str) -> Exchange[dict[str, Any]]:
    """``GET /jobs/{job_id}/checkpoints/config``: ``mode``, ``interval`` (ms; ``2**63 - 1`` when checkpointing
    is not enabled), ``timeout``, state backend and storage.

    :param job_id: the job.
    """
    return _body((yield Request("GET", _job_path(job_id, "checkpoints", "config"))))


def get_checkpoint_subtasks(job_id: str, checkpoint_id: int, vertex_id: str) -> Exchange[dict[str, Any]]:
    """``GET /jobs/{job_id}/checkpoints/details/{checkpoint_id}/subtasks/{vertex_id}``: one task's part of a
    checkpoint: ``summary`` (``alignment`` with ``duration`` and ``persisted``, ``start_delay``,
    ``checkpoint_duration`` sync/async, min/max/avg over subtasks) and ``subtasks``, each with its own figures.

    :param job_id: the job.
    :param checkpoint_id: the checkpoint (``history[].id`` of :func:`get_checkpoints`).
    :param vertex_id: the task (``vertices[].id`` of :func:`get_job`).
    """
    path = _job_path(job_id, "checkpoints", "details", str(int(checkpoint_id)), "subtasks", path_segment(vertex_id))
    return dict(_body((yield Request("GET", path))))


def get_latest_checkpoint_path(job_id: str) -> Exchange[str | None]:
    """The external path of the job's latest completed checkpoint, or ``None``.

    :param job_id: the job.
    """
    checkpoints = yield from get_checkpoints(job_id)
    completed = (checkpoints.get("latest") or {}).get("completed") or {}
    return completed.get("external_path") or None


def trigger_savepoint(
    job_id: str,
    target_directory: str | None = None,
    *,
    format_type: str | None = None,
    trigger_id: str | None = None,
) -> Exchange[str]:
    """``POST /jobs/{job_id}/savepoints`` (job keeps running); returns the request (trigger) id to poll.

    Flink accepts the request even for an unknown job; the failure shows in the status. With a
    ``trigger_id`` the request is idempotent: Flink answers a repeated trigger id with the same operation
    (while it runs and after it completed, for ``rest.async.store-duration``) instead of taking a second
    savepoint, so the request is retried like a read.

    :param job_id: the job.
    :param target_directory: where to write; the cluster's default savepoint directory when ``None``.
    :param format_type: ``CANONICAL`` (portable) or ``NATIVE`` (faster).
    :param trigger_id: 32 hex digits naming the operation (see :func:`find_savepoint`).
    """
    payload: dict[str, Any] = {"cancel-job": False}
    if target_directory:
        payload["target-directory"] = target_directory
    if format_type:
        payload["formatType"] = format_type.upper()
    if trigger_id:
        payload["triggerId"] = trigger_id
    request = Request("POST", _job_path(job_id, "savepoints"), json=payload, idempotent=trigger_id is not None)
    return str(_body((yield request))["request-id"])


def find_savepoint(job_id: str, trigger_id: str) -> Exchange[dict[str, Any] | None]:
    """The status of the savepoint operation ``trigger_id`` of the job, or ``None`` if Flink has none.

    Flink keeps an operation's result for ``rest.async.store-duration`` (5 minutes by default).

    :param job_id: the job.
    :param trigger_id: the trigger id the savepoint or stop was requested with.
    """
    path = _job_path(job_id, "savepoints", path_segment(trigger_id))
    response = yield Request("GET", path, accept=frozenset({404}))
    return None if response is None or response.status == 404 else response.body


def get_savepoint_status(job_id: str, request_id: str) -> Exchange[dict[str, Any]]:
    """``GET /jobs/{job_id}/savepoints/{request_id}``: ``{"status": {"id": ...}, "operation": {...}}``.

    :param job_id: the job.
    :param request_id: from :func:`trigger_savepoint` or :func:`stop_with_savepoint`.
    """
    return _body((yield Request("GET", _job_path(job_id, "savepoints", path_segment(request_id)))))


def savepoint_failure(job_id: str, failure: Mapping[str, Any]) -> FlinkSavepointError:
    """The error for a savepoint status's ``failure-cause``.

    :param job_id: the job.
    :param failure: ``operation["failure-cause"]`` (``class`` and ``stack-trace``).
    """
    trace = str(failure.get("stack-trace") or failure.get("class") or "unknown failure")
    cause = error_from_text(trace)
    cls = FlinkSavepointNotFoundError if isinstance(cause, FlinkNotFoundError) else FlinkSavepointError
    return cls(f"Savepoint of Flink job {job_id} failed: {cause.message}", root_cause=cause.root_cause, hint=cause.hint)


def savepoint_location(job_id: str, status: Mapping[str, Any]) -> str | None:
    """The location of a completed savepoint operation, ``None`` while it is in progress.

    :param job_id: the job.
    :param status: a savepoint status answer (:func:`get_savepoint_status`).
    :raises FlinkSavepointError: it completed with a ``failure-cause``.
    """
    if (status.get("status") or {}).get("id") != "COMPLETED":
        return None
    operation = status.get("operation") or {}
    if operation.get("failure-cause"):
        raise savepoint_failure(job_id, operation["failure-cause"])
    return str(operation["location"])


def _wait_for_operation(
    result: Callable[[], Exchange[T | None]], what: str, timeout: float, poll_interval: float, clock: Clock
) -> Exchange[T]:
    """Poll an asynchronous operation of Flink's (savepoint, checkpoint) until it has a result.

    :param result: one poll: the operation's result, ``None`` while it is in progress.
    :param what: the operation, for the timeout's message.
    :param timeout: seconds to wait in all.
    :param poll_interval: seconds between polls.
    :param clock: monotonic clock.
    :raises FlinkTimeoutError: still in progress after ``timeout``.
    """
    deadline = clock() + timeout
    while True:
        value = yield from result()
        if value is not None:
            return value
        if clock() >= deadline:
            raise FlinkTimeoutError(f"{what} not done after {timeout}s")
        yield Sleep(poll_interval)


def wait_for_savepoint(
    job_id: str, request_id: str, *, timeout: float = 300, poll_interval: float = 1, clock: Clock = time.monotonic
) -> Exchange[str]:
    """Poll a savepoint (or stop-with-savepoint) until it completes; returns its location.

    :param job_id: the job.
    :param request_id: the savepoint request id.
    :param timeout: seconds to wait in all.
    :param poll_interval: seconds between polls.
    :param clock: monotonic clock (tests).
    :raises FlinkSavepointError: the status is COMPLETED with a ``failure-cause``.
    :raises FlinkTimeoutError: still in progress after ``timeout``.
    """

    def location() -> Exchange[str | None]:
        return savepoint_location(job_id, (yield from get_savepoint_status(job_id, request_id)))

    return (yield from _wait_for_operation(location, f"Savepoint {request_id} of Flink job {job_id}", timeout,
                                           poll_interval, clock))  # fmt: skip


def stop_with_savepoint(
    job_id: str,
    target_directory: str | None = None,
    *,
    drain: bool = False,
    timeout: float = 300,
    poll_interval: float = 1,
    clock: Clock = time.monotonic,
    trigger_id: str | None = None,
) -> Exchange[str]:
    """``POST /jobs/{job_id}/stop``, then wait for the savepoint; returns its location.

    With a ``trigger_id`` the request is idempotent (see :func:`trigger_savepoint`).

    :param job_id: the job.
    :param target_directory: where to write; the cluster's default savepoint directory when ``None``.
    :param drain: emit MAX_WATERMARK first (flushes windows; use only when the job will not be resumed).
    :param timeout: seconds to wait for the savepoint.
    :param poll_interval: seconds between polls.
    :param clock: monotonic clock (tests).
    :param trigger_id: 32 hex digits naming the operation.
    """
    payload: dict[str, Any] = {"drain": drain}
    if target_directory:
        payload["targetDirectory"] = target_directory
    if trigger_id:
        payload["triggerId"] = trigger_id
    request = Request("POST", _job_path(job_id, "stop"), json=payload, idempotent=trigger_id is not None)
    request_id = str(_body((yield request))["request-id"])
    return (
        yield from wait_for_savepoint(job_id, request_id, timeout=timeout, poll_interval=poll_interval, clock=clock)
    )


def trigger_checkpoint(job_id: str, checkpoint_type: str = "FULL") -> Exchange[str]:
    """``POST /jobs/{job_id}/checkpoints``: take a checkpoint now; returns the request id to poll.

    Flink 2.x takes it also when periodic checkpointing is not enabled, and accepts the request even for an
    unknown job (the failure shows in the status, as for a savepoint).

    :param job_id: the job.
    :param checkpoint_type: ``FULL``, ``INCREMENTAL`` or ``CONFIGURED`` (what the state backend is set to).
    """
    payload = {"checkpointType": checkpoint_type.upper()}
    return str(_body((yield Request("POST", _job_path(job_id, "checkpoints"), json=payload)))["request-id"])


def get_checkpoint_trigger_status(job_id: str, request_id: str) -> Exchange[dict[str, Any]]:
    """``GET /jobs/{job_id}/checkpoints/{request_id}``: ``{"status": {"id": "IN_PROGRESS" | "COMPLETED"},
    "operation": {"checkpointId": n} or {"failureCause": {...}}}`` (``failureCause``, unlike a savepoint's
    ``failure-cause``).

    :param job_id: the job.
    :param request_id: from :func:`trigger_checkpoint`.
    """
    return _body((yield Request("GET", _job_path(job_id, "checkpoints", path_segment(request_id)))))


def checkpoint_id_of(job_id: str, status: Mapping[str, Any]) -> int | None:
    """The id of a completed checkpoint operation, ``None`` while it is in progress.

    :param job_id: the job.
    :param status: a :func:`get_checkpoint_trigger_status` answer.
    :raises FlinkError: it completed with a failure (typed by Flink's cause: an unknown job is a
        ``FlinkNotFoundError``).
    """
    if (status.get("status") or {}).get("id") != "COMPLETED":
        return None
    operation = status.get("operation") or {}
    failure = operation.get("failureCause") or operation.get("failure-cause")
    if failure:
        cause = error_from_text(str(failure.get("stack-trace") or failure.get("class") or "unknown failure"))
        raise type(cause)(f"Checkpoint of Flink job {job_id} failed: {cause.message}", root_cause=cause.root_cause,
                          hint=cause.hint)  # fmt: skip
    return int(operation["checkpointId"])


def wait_for_checkpoint(
    job_id: str, request_id: str, *, timeout: float = 300, poll_interval: float = 0.5, clock: Clock = time.monotonic
) -> Exchange[int]:
    """Poll a triggered checkpoint until it completes; returns its id.

    :param job_id: the job.
    :param request_id: from :func:`trigger_checkpoint`.
    :param timeout: seconds to wait in all.
    :param poll_interval: seconds between polls.
    :param clock: monotonic clock (tests).
    :raises FlinkError: it failed (see :func:`checkpoint_id_of`).
    :raises FlinkTimeoutError: still in progress after ``timeout``.
    """

    def checkpoint() -> Exchange[int | None]:
        return checkpoint_id_of(job_id, (yield from get_checkpoint_trigger_status(job_id, request_id)))

    return (yield from _wait_for_operation(checkpoint, f"Checkpoint {request_id} of Flink job {job_id}", timeout,
                                           poll_interval, clock))  # fmt: skip


def cancel_job(job_id: str) -> Exchange[None]:
    """``PATCH /jobs/{job_id}?mode=cancel``. A job already in another terminal state (HTTP 409) is left alone.

    :param job_id: the job.
    """
    yield Request("PATCH", _job_path(job_id), params={"mode": "cancel"}, accept=frozenset({409}), idempotent=True)


def list_taskmanagers() -> Exchange[list[dict[str, Any]]]:
    """``GET /taskmanagers``: task managers (``id``, ``slotsNumber``, ``freeSlots``, resources...)."""
    return list(_body((yield Request("GET", "/taskmanagers"))).get("taskmanagers", []))


def get_taskmanager_stdout(tm_id: str) -> Exchange[str]:
    """``GET /taskmanagers/{tm_id}/stdout``: the task manager's stdout (``print`` sink output) as text.

    :param tm_id: a task manager id from :func:`list_taskmanagers`.
    """
    response = yield Request("GET", f"/taskmanagers/{path_segment(tm_id)}/stdout")
    assert response is not None
    return response.text
