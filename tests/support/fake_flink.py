"""A fake Flink JobManager REST API and SQL Gateway on loopback, for faults a real server cannot be made to produce.

It is a real HTTP server (``http.server`` in a thread) that the provider's real transports talk to. It models
Flink's job registry the way the real one behaves (checked against Flink 2.1.3 on the local stack):

- ``POST /jars/{id}/run`` with a ``jobId`` starts the job; any later submit under that id is answered
  "duplicate" (HTTP 400, ``DuplicateJobSubmissionException: Job has already been submitted.``) whether the
  job is alive *or* ended. Through the PythonDriver the same refusal shows only as
  ``Python process exits with code: 1``.
- The SQL Gateway starts an ``INSERT``'s job under the session's ``$internal.pipeline.job-id``; a duplicate id
  makes the operation fail, and fetching its result answers HTTP 500 with the same exception.
- A new job is ``INITIALIZING`` for a moment, and may stay invisible to ``GET /jobs/{id}`` for
  ``visible_after`` seconds (a job that is being submitted is known to the dispatcher before it is listed).

Faults (``FakeFlink.inject``, see :mod:`tests.support.faults`) apply to the requests matching a method and a
path pattern, each *after* the request was carried out: the job started, its answer is lost.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.faults import FaultPlan, FaultyHandler
from tests.support.loopback import LoopbackServer

PYTHON_DRIVER = "org.apache.flink.client.python.PythonDriver"
FIXED_JOB_ID_KEY = "$internal.pipeline.job-id"
ENDED = frozenset({"FINISHED", "CANCELED", "FAILED"})

_DUPLICATE_TRACE = (
    "org.apache.flink.runtime.rest.handler.RestHandlerException: Could not execute application.\n"
    "\tat org.apache.flink.runtime.webmonitor.handlers.JarRunHandler.lambda$handleRequest$1(JarRunHandler.java:114)\n"
    "Caused by: org.apache.flink.client.program.ProgramInvocationException: The main method caused an error: "
    "Failed to execute job '{name}'.\n"
    "Caused by: org.apache.flink.util.FlinkException: Failed to execute job '{name}'.\n"
    "Caused by: org.apache.flink.runtime.client.DuplicateJobSubmissionException: Job has already been submitted.\n"
)
_PYTHON_EXIT_TRACE = (
    "org.apache.flink.runtime.rest.handler.RestHandlerException: Could not execute application.\n"
    "Caused by: org.apache.flink.client.program.ProgramAbortException: java.lang.RuntimeException: "
    "Python process exits with code: 1\n"
    "Caused by: java.lang.RuntimeException: Python process exits with code: 1\n"
)


@dataclass
class FakeJob:
    """One job in the registry."""

    jid: str
    name: str
    created: float
    visible_at: float
    state: str = "RUNNING"

    def current_state(self, initializing_for: float) -> str:
        if self.state == "RUNNING" and time.monotonic() < self.created + initializing_for:
            return "INITIALIZING"
        return self.state


@dataclass
class _Session:
    properties: dict[str, str]
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)


class FakeFlink(LoopbackServer):
    """The fake cluster: ``with FakeFlink() as flink: ... flink.url ...``.

    :param initializing_for: seconds a new job reports INITIALIZING.
    :param visible_after: seconds before a new job shows in ``GET /jobs/{id}`` and ``/jobs/overview``.
    :param submit_delay: seconds a jar run takes before the job is registered (a program's ``main``).
    :param hang_for: seconds a ``hang`` fault holds the connection before closing it.
    """

    def __init__(
        self,
        *,
        initializing_for: float = 0.2,
        visible_after: float = 0.0,
        submit_delay: float = 0.0,
        hang_for: float = 3.0,
    ) -> None:
        self.initializing_for = initializing_for
        self.visible_after = visible_after
        self.submit_delay = submit_delay
        self.hang_for = hang_for
        self.jobs: dict[str, FakeJob] = {}
        self.jars: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, _Session] = {}
        self.plan = FaultPlan()
        self.inject = self.plan.inject
        self.clear_faults = self.plan.clear_faults
        self.count = self.plan.count
        self.lock = threading.RLock()
        super().__init__(_handler_for(self), name="fake-flink")

    # --- what a test sets up and looks at -----------------------------------------------------------

    def live_jobs(self) -> list[str]:
        """Ids of the jobs that are not ended (whether visible yet or not)."""
        with self.lock:
            return [job.jid for job in self.jobs.values() if job.state not in ENDED]

    def set_state(self, job_id: str, state: str) -> None:
        with self.lock:
            self.jobs[job_id].state = state

    # --- the model -----------------------------------------------------------------------------------

    def _visible(self, job_id: str) -> FakeJob | None:
        job = self.jobs.get(job_id)
        return job if job is not None and time.monotonic() >= job.visible_at else None

    def _job_json(self, job: FakeJob) -> dict[str, Any]:
        state = job.current_state(self.initializing_for)
        running = 1 if state == "RUNNING" else 0
        return {
            "jid": job.jid,
            "name": job.name,
            "state": state,
            "start-time": int(job.created * 1000),
            "tasks": {"total": 1, "running": running, "finished": int(state == "FINISHED")},
            "vertices": [{"name": "Source", "parallelism": 1, "tasks": {state if running else "CREATED": 1}}],
        }

    def submit(self, job_id: str | None, name: str) -> tuple[str | None, str | None]:
        """Register a job as the dispatcher does: ``(job id, None)`` or ``(None, "duplicate")``."""
        with self.lock:
            jid = job_id or uuid.uuid4().hex
            if jid in self.jobs:
                return None, "duplicate"
            now = time.monotonic()
            self.jobs[jid] = FakeJob(jid, name, now, now + self.visible_after)
            return jid, None

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        """Answer one request: ``(status, JSON body)``."""
        parts = [part for part in path.split("/") if part]
        if parts and parts[0] in ("v1", "v2", "v3", "v4"):
            return self._gateway(method, parts[1:], body)
        return self._rest(method, parts, query, body)

    def _rest(self, method: str, parts: list[str], query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        with self.lock:
            match method, parts:
                case "GET", ["api_versions"]:
                    return 200, {"versions": ["V1", "V2", "V3", "V4"]}
                case "GET", ["overview"]:
                    live = len(self.live_jobs())
                    return 200, {"taskmanagers": 1, "slots-total": 8, "slots-available": max(0, 8 - live),
                                 "flink-version": "2.1.3"}  # fmt: skip
                case "GET", ["jobs", "overview"]:
                    visible = [job for job in self.jobs.values() if self._visible(job.jid)]
                    return 200, {"jobs": [self._job_json(job) for job in visible]}
                case "GET", ["jobs", job_id, *rest]:
                    job = self._visible(job_id)
                    if job is None and rest == ["status"]:  # asks the dispatcher, which throws
                        trace = f"FlinkJobNotFoundException: Could not find Flink job ({job_id})"
                        return 500, {"errors": ["Internal server error.", f"<Exception on server side:\n{trace}>"]}
                    if job is None:
                        return 404, {"errors": [f"Job {job_id} not found"]}
                    if rest == ["status"]:
                        return 200, {"status": job.current_state(self.initializing_for)}
                    if rest == ["exceptions"]:
                        return 200, {"exceptionHistory": {"entries": []}}
                    if rest == ["checkpoints"]:
                        return 200, {"counts": {}, "latest": {}}
                    return 200, self._job_json(job)
                case "PATCH", ["jobs", job_id]:
                    job = self.jobs.get(job_id)
                    if job is None:
                        return 404, {"errors": [f"Job {job_id} not found"]}
                    if job.state in ENDED:
                        return 409, {"errors": [f"Job {job_id} is already {job.state}"]}
                    job.state = "CANCELED"
                    return 202, {}
                case "POST", ["jars", "upload"]:
                    jar_id = f"{uuid.uuid4()}_{body}"
                    self.jars[jar_id] = {"id": jar_id, "name": body, "uploaded": int(time.time() * 1000), "entry": []}
                    return 200, {"filename": f"/tmp/flink-web-upload/{jar_id}", "status": "success"}
                case "GET", ["jars"]:
                    return 200, {"address": "", "files": list(self.jars.values())}
                case "DELETE", ["jars", jar_id]:
                    if self.jars.pop(jar_id, None) is None:
                        return 400, {"errors": [f"File {jar_id} does not exist in /tmp/flink-web-upload."]}
                    return 200, {}
        if method == "POST" and len(parts) == 3 and parts[0] == "jars" and parts[2] == "run":
            return self._run_jar(parts[1], body or {})
        return 404, {"errors": ["Not found: /" + "/".join(parts)]}

    def _run_jar(self, jar_id: str, body: dict[str, Any]) -> tuple[int, Any]:
        if jar_id not in self.jars:
            return 400, {"errors": [f"Jar file /tmp/flink-web-upload/{jar_id} does not exist"]}
        time.sleep(self.submit_delay)  # the program's main() runs before it submits its job
        args = body.get("programArgsList") or []
        name = (body.get("flinkConfiguration") or {}).get("pipeline.name") or (args[-1] if args else "job")
        job_id, refused = self.submit(body.get("jobId"), str(name))
        if refused:
            trace = _PYTHON_EXIT_TRACE if body.get("entryClass") == PYTHON_DRIVER else _DUPLICATE_TRACE
            return 400, {"errors": [trace.format(name=name)]}
        return 200, {"jobid": job_id}

    def _gateway(self, method: str, parts: list[str], body: Any) -> tuple[int, Any]:
        match method, parts:
            case "GET", ["info"]:
                return 200, {"productName": "Apache Flink", "version": "2.1.3"}
            case "POST", ["sessions"]:
                handle = str(uuid.uuid4())
                with self.lock:
                    self.sessions[handle] = _Session(dict((body or {}).get("properties") or {}))
                return 200, {"sessionHandle": handle}
        if len(parts) < 2 or parts[0] != "sessions":
            return 404, {"errors": ["Not found"]}
        handle, rest = parts[1], parts[2:]
        with self.lock:
            session = self.sessions.get(handle)
        if session is None:
            return 500, {"errors": [f"org.apache.flink.table.gateway.api.utils.SqlGatewayException: "
                                    f"Session '{handle}' does not exist."]}  # fmt: skip
        match method, rest:
            case "GET", []:
                return 200, {"properties": dict(session.properties)}
            case "DELETE", []:
                with self.lock:
                    self.sessions.pop(handle, None)
                return 200, {"status": "CLOSED"}
            case "POST", ["heartbeat"]:
                return 200, {}
            case "POST", ["configure-session"]:
                return self._configure(session, str((body or {}).get("statement", "")))
            case "POST", ["statements"]:
                return self._statement(session, str((body or {}).get("statement", "")))
            case _, ["operations", operation, *action]:
                return self._operation(session, method, operation, action, handle)
        return 404, {"errors": ["Not found"]}

    def _configure(self, session: _Session, statement: str) -> tuple[int, Any]:
        if match := re.fullmatch(r"SET\s+'([^']+)'\s*=\s*'([^']*)'", statement.strip()):
            session.properties[match.group(1)] = match.group(2)
        elif match := re.fullmatch(r"RESET\s+'([^']+)'", statement.strip()):
            session.properties.pop(match.group(1), None)
        return 200, {}

    def _statement(self, session: _Session, statement: str) -> tuple[int, Any]:
        operation: dict[str, Any] = {"status": "FINISHED", "job": None, "error": None}
        if statement.lstrip().upper().startswith("INSERT"):
            name = f"insert-into_{statement.split()[2] if len(statement.split()) > 2 else 'sink'}"
            job_id, refused = self.submit(session.properties.get(FIXED_JOB_ID_KEY), name)
            if refused:
                operation.update(status="ERROR", error=_DUPLICATE_TRACE.format(name=name))
            operation["job"] = job_id
        handle = str(uuid.uuid4())
        with self.lock:
            session.operations[handle] = operation
        return 200, {"operationHandle": handle}

    def _operation(
        self, session: _Session, method: str, handle: str, action: list[str], session_handle: str
    ) -> tuple[int, Any]:
        operation = session.operations.get(handle)
        if operation is None:
            return 500, {"errors": [f"Can not find the submitted operation in the OperationManager with the {handle}."]}
        match method, action:
            case "GET", ["status"]:
                return 200, {"status": operation["status"]}
            case "DELETE", ["close"]:
                session.operations.pop(handle, None)
                return 200, {"status": "CLOSED"}
            case "POST", ["cancel"]:
                return 200, {"status": "CANCELED"}
            case "GET", ["result", token]:
                if operation["status"] == "ERROR":
                    return 500, {"errors": ["Internal server error.", operation["error"]]}
                if token != "0":
                    return 200, {"resultType": "EOS", "results": {"columns": [], "data": []}}
                data = [{"kind": "INSERT", "fields": [operation["job"]]}] if operation["job"] else []
                return 200, {
                    "resultType": "PAYLOAD",
                    "isQueryResult": False,
                    "jobID": operation["job"],
                    "resultKind": "SUCCESS_WITH_CONTENT" if data else "SUCCESS",
                    "results": {"columns": [{"name": "job id"}] if data else [], "data": data},
                    "nextResultUri": f"/v4/sessions/{session_handle}/operations/{handle}/result/1?rowFormat=JSON",
                }
        return 404, {"errors": ["Not found"]}


def _handler_for(flink: FakeFlink) -> type[FaultyHandler]:
    class Handler(FaultyHandler):
        plan = flink.plan
        hang_for = flink.hang_for

        def respond(self, method: str, target: str, raw: bytes) -> tuple[int, dict[str, str], bytes]:
            url = urlsplit(target)
            if self.headers.get("Content-Type", "").startswith("multipart/form-data"):
                found = re.search(rb'filename="([^"]+)"', raw)
                body: Any = found.group(1).decode() if found else "upload.jar"
            else:
                body = json.loads(raw) if raw.strip() else None
            status, answer = flink.route(method, url.path, parse_qs(url.query), body)
            return status, {"Content-Type": "application/json; charset=UTF-8"}, json.dumps(answer).encode()

    return Handler


@contextmanager
def fake_flink(**kwargs: Any) -> Iterator[FakeFlink]:
    """A running :class:`FakeFlink` for the ``with`` block."""
    with FakeFlink(**kwargs) as flink:
        yield flink
