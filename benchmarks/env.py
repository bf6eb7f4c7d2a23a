"""The local stack as the benchmarks see it: addresses, Flink's CLI environment, raw REST, Kafka, cleanup.

Everything a benchmark starts on the shared cluster is registered in :data:`JOBS` and cancelled at the end
(also on Ctrl-C): other engineers use the same 8 slots. Topics get unique names and are deleted.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import requests

from stack import cli as stack_cli

ROOT = stack_cli.ROOT
HOST = stack_cli.HOST
PORTS = stack_cli.PORTS
FLINK_HOME = stack_cli.FLINK_HOME
FLINK_PYTHON = stack_cli.FLINK_VENV / "bin" / "python"
REST_URL = f"http://{HOST}:{PORTS['flink_rest']}"
GATEWAY_URL = f"http://{HOST}:{PORTS['sql_gateway']}"
BOOTSTRAP = f"{HOST}:{PORTS['kafka']}"
KAFKA_JARS = stack_cli.JARS / "kafka"
ACTIVE_STATES = frozenset({"INITIALIZING", "CREATED", "RUNNING", "FAILING", "CANCELLING", "RESTARTING", "RECONCILING"})

RUN_ID = uuid.uuid4().hex[:8]
"""This benchmark run's id: every job and topic name carries it, so cleanup finds exactly ours."""


def unique(prefix: str) -> str:
    """A name no other run (or engineer) uses: ``<prefix>-<run id>-<6 hex>``.

    :param prefix: what it is, e.g. ``bench-in``.
    """
    return f"{prefix}-{RUN_ID}-{uuid.uuid4().hex[:6]}"


def airflow_connections() -> dict[str, str]:
    """The stack's Airflow connections as ``AIRFLOW_CONN_*`` environment values (JSON)."""
    import json

    return {
        "AIRFLOW_CONN_FLINK_DEFAULT": json.dumps({"conn_type": "flink", "host": HOST, "port": PORTS["flink_rest"]}),
        "AIRFLOW_CONN_FLINK_SQL_GATEWAY_DEFAULT": json.dumps(
            {"conn_type": "flink_sql_gateway", "host": HOST, "port": PORTS["sql_gateway"]}
        ),
        "AIRFLOW_CONN_KAFKA_DEFAULT": json.dumps(
            {"conn_type": "kafka", "extra": {"bootstrap.servers": BOOTSTRAP, "group.id": "airflow-flink-bench"}}
        ),
    }


def java_opts_missing(conf_file: Path) -> bool:
    """Whether Flink's config lacks ``env.java.opts.all`` (Java 17 then refuses Flink's reflection).

    :param conf_file: Flink's ``config.yaml`` (flat ``a.b.c: v`` keys or nested maps).
    """
    import yaml

    if not conf_file.exists():
        return False
    data = yaml.safe_load(conf_file.read_text()) or {}
    if data.get("env.java.opts.all"):
        return False
    nested = data.get("env", {})
    return not (isinstance(nested, dict) and (nested.get("java", {}) or {}).get("opts", {}).get("all"))


def wheel_java_opts() -> str | None:
    """The ``env.java.opts.all`` value of the config shipped in the Flink wheel (the JVM module opens)."""
    import yaml

    candidates = list((stack_cli.FLINK_VENV / "lib").glob("python3*/site-packages/pyflink/conf/config.yaml"))
    for conf in candidates:
        data = yaml.safe_load(conf.read_text()) or {}
        opts = data.get("env", {}).get("java", {}).get("opts", {}).get("all")
        if opts:
            return str(opts)
    return None


def flink_cli_env() -> tuple[dict[str, str], list[str]]:
    """The environment Flink's scripts (``flink``, ``sql-client.sh``) run with, and notes on workarounds.

    The stack's generated ``config.yaml`` may lack ``env.java.opts.all``: on Java 17 ``flink run -py`` then
    fails with ``InaccessibleObjectException``. The CLI gets the wheel's default options through
    ``FLINK_ENV_JAVA_OPTS`` in that case (a user would have to do the same); the note says so.
    """
    env = {**os.environ, **stack_cli.flink_env()}
    notes: list[str] = []
    if java_opts_missing(FLINK_HOME / "conf" / "config.yaml") and "FLINK_ENV_JAVA_OPTS" not in os.environ:
        opts = wheel_java_opts()
        if opts:
            env["FLINK_ENV_JAVA_OPTS"] = opts
            notes.append(
                "the stack's Flink config.yaml has no env.java.opts.all, so the CLI got the wheel's JVM "
                "--add-opens through FLINK_ENV_JAVA_OPTS (without them `flink run -py` fails on Java 17)"
            )
    return env, notes


# ---------------------------------------------------------------------------------------------- Flink REST


def rest(method: str, path: str, *, timeout: float = 30, **kwargs: Any) -> requests.Response:
    """One raw Flink REST call.

    :param method: HTTP method.
    :param path: path below the REST root, e.g. ``/jobs/overview``.
    :param timeout: seconds.
    :param kwargs: passed to :func:`requests.request`.
    """
    return requests.request(method, REST_URL + path, timeout=timeout, **kwargs)


def get_job(job_id: str, session: requests.Session | None = None) -> dict[str, Any] | None:
    """``GET /jobs/{id}``, or ``None`` when Flink does not (yet) know the job.

    :param job_id: the job.
    :param session: a session to reuse.
    """
    resp = (session or requests).get(f"{REST_URL}/jobs/{job_id}", timeout=30)
    if resp.status_code == 404:
        return None
    resp.raise_for_status()
    return dict(resp.json())


def live_job(job_id: str, session: requests.Session | None = None) -> dict[str, Any] | None:
    """The job's entry of ``GET /jobs/overview`` (state and task counts), or ``None`` when it is not listed.

    Unlike ``GET /jobs/{id}``, which the REST API serves from a cache refreshed every ``web.refresh-interval``
    (3 s), the overview is answered live: every method compared observes RUNNING this way, as the provider does.

    :param job_id: the job.
    :param session: a session to reuse.
    """
    resp = (session or requests).get(f"{REST_URL}/jobs/overview", timeout=30)
    resp.raise_for_status()
    return next((dict(job) for job in resp.json().get("jobs", []) if job.get("jid") == job_id), None)


def job_is_running(job: Mapping[str, Any] | None) -> bool:
    """Whether a job runs for real: state RUNNING and every subtask RUNNING (or already FINISHED).

    This is the provider's own notion of RUNNING (a job waiting for slots is not running), applied to the
    CLI and raw-REST paths alike.

    :param job: ``GET /jobs/{id}`` details or a ``GET /jobs/overview`` entry, or ``None``.
    """
    if not job or job.get("state") != "RUNNING":
        return False
    counts = job.get("tasks")
    if isinstance(counts, Mapping) and "total" in counts:  # an overview entry
        total = int(counts["total"])
        return total > 0 and int(counts.get("running", 0)) + int(counts.get("finished", 0)) == total
    for vertex in job.get("vertices") or ():
        tasks = vertex.get("tasks")
        parallelism = int(vertex.get("parallelism") or 0)
        if isinstance(tasks, Mapping) and parallelism:
            done = sum(int(n) for state, n in tasks.items() if str(state).upper() in ("RUNNING", "FINISHED"))
            if done < parallelism:
                return False
        elif str(vertex.get("status", "")).upper() not in ("RUNNING", "FINISHED"):
            return False
    return True


class JobFailed(RuntimeError):
    """A job the benchmark waits for reached FAILED/CANCELED."""


def wait_running(job_id: str, *, poll: float, timeout: float = 180) -> float:
    """Poll a job until :func:`job_is_running`; return ``time.monotonic()`` at that moment.

    :param job_id: the job.
    :param poll: seconds between polls (the same for every method compared).
    :param timeout: seconds to give up after.
    :raises JobFailed: the job reached a terminal state first.
    :raises TimeoutError: it did not run in time.
    """
    deadline = time.monotonic() + timeout
    with requests.Session() as session:
        while True:
            job = live_job(job_id, session)
            if job_is_running(job):
                return time.monotonic()
            if job and job.get("state") in ("FAILED", "CANCELED", "FINISHED"):
                raise JobFailed(f"job {job_id} is {job.get('state')}: {root_cause(job_id)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} not RUNNING after {timeout:.0f}s (last: {job and job.get('state')})")
            time.sleep(poll)


def tasks_running_at(job_id: str) -> float | None:
    """When the job's last subtask switched to RUNNING, by Flink's own clock (epoch seconds), or ``None``.

    Polling ``GET /jobs/{id}`` learns it up to ``web.refresh-interval`` later (the REST API's cache); this
    reads the subtasks' state timestamps instead.

    :param job_id: a job that has run.
    """
    job = get_job(job_id)
    moments = []
    for vertex in (job or {}).get("vertices", []):
        data = rest("GET", f"/jobs/{job_id}/vertices/{vertex['id']}/subtasktimes").json()
        for subtask in data.get("subtasks", []):
            running = int((subtask.get("timestamps") or {}).get("RUNNING") or 0)
            if running <= 0:
                return None
            moments.append(running)
    return max(moments) / 1000 if moments else None


def root_cause(job_id: str) -> str:
    """The last line of the root exception of a failed job, for error messages."""
    try:
        data = rest("GET", f"/jobs/{job_id}/exceptions").json()
    except (requests.RequestException, ValueError):
        return "?"
    trace = str(data.get("root-exception") or "")
    causes = [line for line in trace.splitlines() if line.startswith("Caused by:")]
    return (causes[-1] if causes else trace.splitlines()[0] if trace else "no exception recorded")[:300]


def list_jobs() -> list[dict[str, Any]]:
    """``/jobs/overview``: every job the cluster knows (``jid``, ``name``, ``state``...)."""
    return list(rest("GET", "/jobs/overview").json().get("jobs", []))


class JobRegistry:
    """The jobs this run started; :meth:`cancel_all` cancels those still alive."""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._markers: set[str] = {RUN_ID}
        self._lock = threading.Lock()

    def add_marker(self, marker: str) -> None:
        """Also cancel, at the end, active jobs whose name contains ``marker``.

        :param marker: a unique part of job names, e.g. a scenario run tag.
        """
        with self._lock:
            self._markers.add(marker)

    def add(self, job_id: str) -> str:
        """Remember a job (returns it, for chaining).

        :param job_id: the job.
        """
        with self._lock:
            self._ids.add(job_id)
        return job_id

    def cancel(self, job_id: str, *, wait: float = 30) -> None:
        """Cancel a job and wait until it is no longer active (so its slot is free for the next run).

        :param job_id: the job.
        :param wait: seconds to wait for CANCELED.
        """
        rest("PATCH", f"/jobs/{job_id}", params={"mode": "cancel"})
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            job = get_job(job_id)
            if job is None or job.get("state") not in ACTIVE_STATES:
                break
            time.sleep(0.2)
        with self._lock:
            self._ids.discard(job_id)

    def cancel_all(self) -> list[str]:
        """Cancel every registered job and every active job whose name carries this run's id or a marker.

        :return: the job ids that were cancelled.
        """
        with self._lock:
            ids, markers = set(self._ids), set(self._markers)
        try:
            jobs = list_jobs()
            ids |= {job["jid"] for job in jobs if any(m in str(job.get("name", "")) for m in markers)}
            active = {job["jid"] for job in jobs if job.get("state") in ACTIVE_STATES}
        except requests.RequestException:
            active = ids
        cancelled = []
        for job_id in sorted(ids & active):
            try:
                self.cancel(job_id, wait=10)
                cancelled.append(job_id)
            except requests.RequestException:
                pass
        with self._lock:
            self._ids.clear()
        return cancelled


JOBS = JobRegistry()


def jobs_of_others() -> list[dict[str, Any]]:
    """Active jobs on the cluster that this run did not start."""
    return [job for job in list_jobs() if job.get("state") in ACTIVE_STATES and RUN_ID not in str(job.get("name"))]


def stack_problems() -> list[str]:
    """What of the local stack does not answer: Flink REST with a TaskManager, the gateway, Kafka."""
    problems = []
    try:
        overview = rest("GET", "/overview", timeout=5).json()
        if int(overview.get("taskmanagers", 0)) < 1 or int(overview.get("slots-total", 0)) < 1:
            problems.append(f"Flink at {REST_URL} has no TaskManager with slots")
    except (requests.RequestException, ValueError):
        problems.append(f"Flink REST at {REST_URL} does not answer")
    try:
        requests.get(f"{GATEWAY_URL}/v1/info", timeout=5).raise_for_status()
    except requests.RequestException:
        problems.append(f"the SQL Gateway at {GATEWAY_URL} does not answer")
    try:
        if not kafka_admin().list_topics(timeout=5).brokers:
            problems.append(f"Kafka at {BOOTSTRAP} has no broker")
    except Exception:
        problems.append(f"Kafka at {BOOTSTRAP} does not answer")
    return problems


# ---------------------------------------------------------------------------------------------- Kafka


def kafka_admin() -> Any:
    """A confluent-kafka AdminClient for the stack's broker."""
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": BOOTSTRAP, "log_level": 4})


def create_topics(names: Iterable[str], *, partitions: int = 1, config: Mapping[str, str] | None = None) -> None:
    """Create topics and wait until they exist.

    :param names: topic names.
    :param partitions: partitions of each.
    :param config: topic configuration, e.g. ``{"message.timestamp.type": "LogAppendTime"}``.
    """
    from confluent_kafka.admin import NewTopic

    names = list(names)
    if not names:
        return
    topics = [
        NewTopic(name, num_partitions=partitions, replication_factor=1, config=dict(config or {})) for name in names
    ]
    admin = kafka_admin()  # keep a reference: a collected client fails its futures with _DESTROY
    for future in admin.create_topics(topics, operation_timeout=30).values():
        future.result()


def delete_topics(names: Iterable[str]) -> None:
    """Delete topics, ignoring those that are already gone.

    :param names: topic names.
    """
    names = list(names)
    if not names:
        return
    admin = kafka_admin()
    for future in admin.delete_topics(names, operation_timeout=30).values():
        with contextlib.suppress(Exception):  # best-effort cleanup of our own topics
            future.result()
