"""In-memory stand-ins for the hooks and the task context, for unit tests of orchestration logic.

They model just enough Flink behaviour (jobs with states, fixed job ids set in a gateway session,
savepoints) for the operators' decisions to be observable; every call is recorded in ``calls``. Like Flink,
a submit under a job id it has seen answers "duplicate" whether that job is alive or ended (and for ids in
``used_ids``: jobs whose archive expired while Flink's job result store still holds the id).
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_flink_provider.hooks.transport import TransportConfig, drive_sync
from airflow_flink_provider.protocol.errors import (
    FlinkDuplicateJobError,
    FlinkError,
    FlinkNotFoundError,
    FlinkResourceError,
)
from airflow_flink_provider.protocol.http import Exchange, Request, Response

T = TypeVar("T")

_FIXED_ID = re.compile(r"SET '\$internal\.pipeline\.job-id' = '([0-9a-f]{32})'")


class FakeTI:
    """The bits of a RuntimeTaskInstance the operators use."""

    def __init__(self, dag_id: str = "dag", task_id: str = "task", run_id: str = "run1", map_index: int = -1):
        self.dag_id, self.task_id, self.run_id, self.map_index = dag_id, task_id, run_id, map_index
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value

    def xcom_pull(self, task_ids: str, key: str, map_indexes: int | None = None) -> Any:
        assert (task_ids, map_indexes) == (self.task_id, self.map_index)  # only this task's own XComs
        return self.xcoms.get(key)


class FakeStateStore:
    """task_state_store: get/set, recording the order of writes."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        if value is None:
            raise ValueError("Cannot set value as None")  # as Airflow's TaskStateStoreAccessor
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def make_context(ti: FakeTI | None = None, store: FakeStateStore | None = None) -> dict[str, Any]:
    context: dict[str, Any] = {"ti": ti or FakeTI()}
    if store is not None:
        context["task_state_store"] = store
    return context


def deferral(
    task: Any, trigger_class: type, context: dict[str, Any] | None = None
) -> tuple[TaskDeferred, dict[str, Any]]:
    """Execute a deferrable task until it defers; returns the deferral and its trigger's kwargs.

    Checks what the triggerer needs: a ``trigger_class`` trigger, importable by its serialized path, whose
    kwargs survive JSON.

    :param task: the operator or sensor.
    :param trigger_class: the trigger it must defer to.
    :param context: the execution context (default: a fresh one).
    """
    with pytest.raises(TaskDeferred) as deferred:
        task.execute(context if context is not None else make_context())
    trigger = deferred.value.trigger
    assert isinstance(trigger, trigger_class), trigger
    classpath, kwargs = trigger.serialize()
    assert classpath == f"{trigger_class.__module__}.{trigger_class.__qualname__}"
    assert json.loads(json.dumps(kwargs)) == kwargs
    return deferred.value, kwargs


class FakeRest:
    """FlinkRestHook stand-in with an in-memory cluster."""

    def __init__(self, slots_total: int = 8, slots_free: int = 8) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.root_causes: dict[str, str] = {}
        self.state_plan: dict[str, list[str]] = {}
        self.checkpoints: dict[str, dict[str, Any]] = {}
        self.jars: list[dict[str, Any]] = []
        self.slots_total, self.slots_free = slots_total, slots_free
        self.on_call: Any = None
        self.used_ids: set[str] = set()  # ids Flink refuses although it no longer shows the job
        self.savepoints: dict[tuple[str, str], dict[str, Any]] = {}  # (job id, trigger id) -> status
        self.transport_config = TransportConfig(base_url="http://jm:8081")

    def refuses(self, job_id: str) -> bool:
        """Whether Flink answers "duplicate" for a submit under ``job_id`` (alive, ended or remembered)."""
        return job_id in self.jobs or job_id in self.used_ids

    def _record(self, *call: Any) -> None:
        self.calls.append(call)
        if self.on_call is not None:
            self.on_call(call)

    def names(self) -> list[str]:
        return [call[0] for call in self.calls]

    def add_job(self, job_id: str, state: str = "RUNNING", name: str = "job", vertices: Any = None) -> None:
        if vertices is None:
            vertices = [{"name": "Source", "status": "RUNNING" if state == "RUNNING" else state}]
        self.jobs[job_id] = {"jid": job_id, "name": name, "state": state, "vertices": vertices}

    def _job(self, job_id: str) -> dict[str, Any]:
        if job_id not in self.jobs:
            raise FlinkNotFoundError(f"Job {job_id} not found", status=404)
        plan = self.state_plan.get(job_id)
        if plan:
            state = plan.pop(0)
            self.jobs[job_id]["state"] = state
            self.jobs[job_id]["vertices"] = [{"name": "Source", "status": state}]
        return dict(self.jobs[job_id])

    def run(self, exchange: Exchange[T]) -> T:
        """Drive a protocol exchange as ``SyncTransport.run`` does, answering its requests from this cluster.

        Errors (also those ``on_call`` raises) are thrown into the exchange, as the transport throws them.
        """
        return drive_sync(exchange, self._answer)

    def _answer(self, request: Request) -> Response:
        """What Flink answers a GET of the REST API, in its shapes (checked against Flink 2.1.3)."""
        parts = request.path.strip("/").split("/")
        name = f"{request.method} /" + "/".join("{id}" if part in self.jobs else part for part in parts)
        self._record(name, *[part for part in parts if part in self.jobs])
        match request.method, parts:
            case "GET", ["jobs", "overview"]:
                return Response(200, {"jobs": [_overview_entry(self._job(job_id)) for job_id in list(self.jobs)]}, "")
            case "GET", ["jobs", job_id, *rest] if job_id in self.jobs:
                job = self.jobs[job_id]
                if rest == ["exceptions"]:
                    cause = self.root_causes.get(job_id)
                    entries = [{"timestamp": 1, "stacktrace": cause, "exceptionName": cause}] if cause else []
                    return Response(200, {"exceptionHistory": {"entries": entries}}, "")
                if rest == ["checkpoints"]:
                    return Response(200, self.checkpoints.get(job_id, {"counts": {}, "latest": {}}), "")
                if rest == ["status"]:
                    return Response(200, {"status": job["state"]}, "")
                return Response(200, dict(job), "")
            case "GET", ["jobs", job_id, *_]:
                if 404 in request.accept:
                    return Response(404, {"errors": ["Not found"]}, "")
                raise FlinkNotFoundError(f"Job {job_id} not found", status=404)
        raise AssertionError(f"FakeRest has no answer for {request.method} {request.path}")

    def find_job(self, job_id: str) -> dict[str, Any] | None:
        self._record("find_job", job_id)
        return dict(self.jobs[job_id]) if job_id in self.jobs else None

    def find_job_state(self, job_id: str) -> str | None:
        self._record("find_job_state", job_id)
        return str(self.jobs[job_id]["state"]) if job_id in self.jobs else None

    def get_job(self, job_id: str) -> dict[str, Any]:
        self._record("get_job", job_id)
        return self._job(job_id)

    def get_job_overview(self, job_id: str) -> dict[str, Any]:
        self._record("get_job_overview", job_id)
        return self._job(job_id)

    def get_job_state(self, job_id: str) -> str:
        self._record("get_job_state", job_id)
        return str(self._job(job_id)["state"])

    def get_root_cause(self, job_id: str) -> str | None:
        self._record("get_root_cause", job_id)
        return self.root_causes.get(job_id)

    def check_job(self, job_id: str) -> str:
        self._record("check_job", job_id)
        cause = self.root_causes.get(job_id) or ""
        if "NoResourceAvailable" in cause:
            raise FlinkResourceError(
                f"Flink job {job_id} cannot get the task slots it needs: {cause}", root_cause=cause
            )
        return str(self.jobs[job_id]["state"])

    def get_overview(self) -> dict[str, Any]:
        self._record("get_overview")
        return {"slots-total": self.slots_total, "slots-available": self.slots_free, "taskmanagers": 1}

    def list_jobs(self, name: str | None = None, states: Any = None) -> list[dict[str, Any]]:
        self._record("list_jobs", name, tuple(states or ()))
        return [
            dict(job)
            for job in self.jobs.values()
            if (name is None or job["name"] == name) and (states is None or job["state"] in states)
        ]

    def upload_jar(self, path: str, *, timeout: float | None = None, name: str | None = None) -> str:
        self._record("upload_jar", path, name)
        name = name or path.rsplit("/", 1)[-1]
        jar_id = f"{uuid.uuid4()}_{name}"
        self.jars.append({"id": jar_id, "name": name})
        return jar_id

    def jars_named(self, name: str) -> list[str]:
        self._record("jars_named", name)
        return [jar["id"] for jar in self.jars if jar["name"] == name]

    def list_jars(self) -> list[dict[str, Any]]:
        self._record("list_jars")
        return list(self.jars)

    def delete_jar(self, jar_id: str) -> None:
        self._record("delete_jar", jar_id)
        self.jars = [jar for jar in self.jars if jar["id"] != jar_id]

    def run_jar(self, jar_id: str, **kwargs: Any) -> str:
        self._record("run_jar", jar_id, kwargs)
        if not any(jar["id"] == jar_id for jar in self.jars):
            raise FlinkNotFoundError(f"Jar file {jar_id} does not exist", status=400)
        job_id = kwargs.get("job_id") or uuid.uuid4().hex
        if self.refuses(job_id):
            raise FlinkDuplicateJobError("DuplicateJobSubmissionException: Job has already been submitted.", status=400)
        name = (kwargs.get("flink_configuration") or {}).get("pipeline.name", "job")
        self.add_job(job_id, "RUNNING", name=name)
        return job_id

    def cancel_job(self, job_id: str) -> None:
        self._record("cancel_job", job_id)
        self._job(job_id)
        self.jobs[job_id]["state"] = "CANCELED"

    def trigger_savepoint(
        self,
        job_id: str,
        target_directory: str | None = None,
        *,
        format_type: Any = None,
        trigger_id: str | None = None,
    ) -> str:
        self._record("trigger_savepoint", job_id, target_directory, format_type, trigger_id)
        self._job(job_id)
        request_id = trigger_id or uuid.uuid4().hex
        if (job_id, request_id) not in self.savepoints:  # Flink answers a repeated trigger id with its operation
            self.savepoints[job_id, request_id] = {"status": {"id": "IN_PROGRESS"}}
        return request_id

    def find_savepoint(self, job_id: str, trigger_id: str) -> dict[str, Any] | None:
        self._record("find_savepoint", job_id, trigger_id)
        return self.savepoints.get((job_id, trigger_id))

    def wait_for_savepoint(
        self, job_id: str, request_id: str, *, timeout: float = 300, poll_interval: float = 1
    ) -> str:
        self._record("wait_for_savepoint", job_id, request_id)
        location = f"file:/savepoints/savepoint-{job_id[:6]}-{request_id[:4]}"
        self.savepoints[job_id, request_id] = {"status": {"id": "COMPLETED"}, "operation": {"location": location}}
        self.checkpoints[job_id] = {
            "latest": {"savepoint": {"checkpoint_type": "SAVEPOINT", "external_path": location}}
        }
        return location

    def stop_with_savepoint(
        self,
        job_id: str,
        target_directory: str | None = None,
        *,
        drain: bool = False,
        timeout: float = 300,
        trigger_id: str | None = None,
    ) -> str:
        self._record("stop_with_savepoint", job_id, target_directory, drain, trigger_id)
        self._job(job_id)
        location = f"file:/savepoints/savepoint-{job_id[:6]}-2"
        self.jobs[job_id]["state"] = "FINISHED"
        self.checkpoints[job_id] = {
            "latest": {"savepoint": {"checkpoint_type": "SYNC_SAVEPOINT", "external_path": location}}
        }
        if trigger_id:
            self.savepoints[job_id, trigger_id] = {"status": {"id": "COMPLETED"}, "operation": {"location": location}}
        return location

    def get_checkpoints(self, job_id: str) -> dict[str, Any]:
        self._record("get_checkpoints", job_id)
        return self.checkpoints.get(job_id, {"latest": {"savepoint": None}})


def _overview_entry(job: dict[str, Any]) -> dict[str, Any]:
    """A job's entry in ``GET /jobs/overview``: its state and task counts per (lower-case) task state."""
    tasks: dict[str, int] = {"total": 0}
    for vertex in job.get("vertices") or []:
        parallelism = int(vertex.get("parallelism") or 1)
        tasks["total"] += parallelism
        counts = vertex.get("tasks") or {str(vertex.get("status", "CREATED")): parallelism}
        for task_state, count in counts.items():
            tasks[task_state.lower()] = tasks.get(task_state.lower(), 0) + int(count)
    return {"jid": job["jid"], "name": job["name"], "state": job["state"], "tasks": tasks}


@dataclass
class FakeResult:
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    job_id: str | None = None
    result_kind: str = "SUCCESS"
    truncated: bool = False


class FakeGateway:
    """FlinkSqlGatewayHook stand-in: sessions, a fixed job id option, jobs created in a FakeRest."""

    def __init__(self, rest: FakeRest) -> None:
        self.rest = rest
        self.calls: list[tuple[Any, ...]] = []
        self.open_sessions: dict[str, dict[str, str]] = {}
        self.errors: dict[str, FlinkError] = {}
        self.rows: dict[str, tuple[list[str], list[list[Any]]]] = {}
        self._ops: dict[str, FakeResult] = {}
        self._counter = itertools.count(1)

    def names(self) -> list[str]:
        return [call[0] for call in self.calls]

    def open_session(self, properties: dict[str, str] | None = None, session_name: str | None = None) -> str:
        handle = f"session-{next(self._counter)}"
        self.calls.append(("open_session", dict(properties or {}), session_name))
        self.open_sessions[handle] = dict(properties or {})
        return handle

    def close_session(self, session: str) -> None:
        self.calls.append(("close_session", session))
        self.open_sessions.pop(session, None)

    def session_exists(self, session: str) -> bool:
        self.calls.append(("session_exists", session))
        return session in self.open_sessions

    def configure_session(self, session: str, statement: str) -> None:
        self.calls.append(("configure_session", session, statement))
        config = self.open_sessions[session]
        if match := _FIXED_ID.fullmatch(statement):
            config["$internal.pipeline.job-id"] = match.group(1)
        elif statement == "RESET '$internal.pipeline.job-id'":
            config.pop("$internal.pipeline.job-id", None)

    def execute_statement(self, session: str, statement: str, **kwargs: Any) -> str:
        self.calls.append(("execute_statement", session, statement))
        for needle, error in self.errors.items():
            if needle in statement:
                raise error
        op = f"op-{next(self._counter)}"
        result = FakeResult()
        if statement.upper().startswith("INSERT"):
            job_id = self.open_sessions[session].get("$internal.pipeline.job-id") or uuid.uuid4().hex
            if self.rest.refuses(job_id):
                raise FlinkDuplicateJobError("DuplicateJobSubmissionException: Job has already been submitted.")
            self.rest.add_job(job_id, "RUNNING", name=f"insert-{job_id[:4]}")
            result = FakeResult(["job id"], [[job_id]], job_id, "SUCCESS_WITH_CONTENT")
        for needle, (columns, rows) in self.rows.items():
            if needle in statement:
                result = FakeResult(columns, rows, None, "SUCCESS_WITH_CONTENT")
        self._ops[op] = result
        return op

    def fetch_results(self, session: str, op: str, *, row_limit: int = 1000, timeout: float | None = None) -> Any:
        self.calls.append(("fetch_results", session, op, row_limit))
        result = self._ops[op]
        truncated = len(result.rows) > row_limit
        return FakeResult(result.columns, result.rows[:row_limit], result.job_id, result.result_kind, truncated)

    def close_operation(self, session: str, op: str) -> None:
        self.calls.append(("close_operation", session, op))
