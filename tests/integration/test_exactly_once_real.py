"""Exactly one job per task on the real cluster: lost answers through a loopback proxy, and racing tries.

The proxy forwards each request to the real JobManager (or SQL Gateway), lets it be carried out, then loses
the answer (closed connection, 504, reset). The operators see exactly what a flaky network or proxy would
show them; the jobs are counted on the real cluster, by this test's own unique names only.

Set ``FLINK_FAULT_REPORT=<file>`` to append one JSON line per case for the closing note's table.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from airflow_flink_provider.operators.job_submit import FlinkJobSubmitOperator
from airflow_flink_provider.operators.savepoint import FlinkStopJobOperator
from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator
from airflow_flink_provider.protocol.errors import FlinkError
from tests.conftest import HOST, PORTS
from tests.integration import _flink_it as it
from tests.integration._flink_it import TERMINAL
from tests.support.proxy import FaultProxy
from tests.unit._flink_fakes import FakeStateStore
from tests.unit.test_exactly_once_faults import race

pytestmark = pytest.mark.integration


RUN = r"^/jars/[^/]+/run$"
EXECUTE = r"^/v\d/sessions/[^/]+/statements$"
LOOKUP = r"^/jobs/[0-9a-f]{32}(/status)?$"
REAL_RACES = 3


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], FaultProxy]:
    """Start a fault proxy in front of ``flink_rest`` or ``sql_gateway``; connection ``<service>_proxy`` uses it."""
    started: list[FaultProxy] = []

    def make(service: str) -> FaultProxy:
        proxy = FaultProxy(f"http://{HOST}:{PORTS[service]}", hang_for=3).__enter__()
        started.append(proxy)
        conn_type = "flink" if service == "flink_rest" else "flink_sql_gateway"
        conn = {"conn_type": conn_type, "host": HOST, "port": proxy.port, "extra": {"retries": 3, "retry_wait": 0}}
        monkeypatch.setenv(f"AIRFLOW_CONN_{service.upper()}_PROXY", json.dumps(conn))
        return proxy

    yield make  # type: ignore[misc]
    for proxy in started:
        proxy.__exit__(None, None, None)


@pytest.fixture
def named_jobs(rest: FlinkRestHook) -> Iterator[Callable[[str], list[dict[str, Any]]]]:
    """Jobs whose name contains a marker, live ones cancelled at teardown."""
    markers: set[str] = set()

    def jobs(marker: str) -> list[dict[str, Any]]:
        markers.add(marker)
        return [job for job in rest.list_jobs() if marker in str(job.get("name"))]

    yield jobs
    it.cancel_all(
        rest, [str(job["jid"]) for job in rest.list_jobs() if any(m in str(job.get("name")) for m in markers)]
    )


def live(jobs: list[dict[str, Any]]) -> list[str]:
    return [str(job["jid"]) for job in jobs if job["state"] not in TERMINAL | {"CANCELLING", "FAILING"}]


def report(**row: Any) -> None:
    if target := os.environ.get("FLINK_FAULT_REPORT"):
        with open(target, "a") as out:
            out.write(json.dumps({"cluster": "real", **row}) + "\n")


def jar_try(jar: Path, name: str, conn: str = "flink_default") -> FlinkJobSubmitOperator:
    return it.throttled_submit(jar, name, flink_conn_id=conn)


def streaming_sql(table: str) -> str:
    return (
        f"CREATE TABLE {table}_src (n BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '1');\n"
        f"CREATE TABLE {table} (n BIGINT) WITH ('connector' = 'blackhole');\n"
        f"INSERT INTO {table} SELECT n FROM {table}_src;\n"
    )


def sql_try(table: str, gateway_conn: str = "flink_sql_gateway_default") -> FlinkSqlGatewayOperator:
    return FlinkSqlGatewayOperator(
        task_id="sql",
        sql=streaming_sql(table),
        session_properties={"parallelism.default": "1"},
        flink_sql_gateway_conn_id=gateway_conn,
    )


def context() -> dict[str, Any]:
    return {**it.context_for("exactly-once"), "task_state_store": FakeStateStore()}


@pytest.mark.parametrize("fault", ["drop", "504", "reset"])
def test_a_lost_run_answer_on_the_real_jobmanager_ends_with_one_job(
    proxy: Callable[[str], FaultProxy],
    named_jobs: Callable[[str], list[dict[str, Any]]],
    throttled_jar: Path,
    fault: str,
) -> None:
    flink = proxy("flink_rest")
    injected = flink.inject("POST", RUN, fault)
    name = f"it-lost-run-{uuid.uuid4().hex[:8]}"

    job_id = jar_try(throttled_jar, name, "flink_rest_proxy").execute(context())

    jobs = named_jobs(name)
    report(path="jar", fault=fault, scenario="in-task", hits=injected.hits, live=len(live(jobs)))
    assert injected.hits == 1 and flink.count("POST", RUN) == 2  # the transport repeated the run: "duplicate"
    assert live(jobs) == [job_id] and len(jobs) == 1


def test_an_airflow_retry_after_lost_run_answers_on_the_real_jobmanager_ends_with_one_job(
    proxy: Callable[[str], FaultProxy],
    named_jobs: Callable[[str], list[dict[str, Any]]],
    throttled_jar: Path,
) -> None:
    flink = proxy("flink_rest")
    submit = flink.inject("POST", RUN, "drop", times=3)
    flink.inject("GET", LOOKUP, "502", times=10_000, after=submit)
    name = f"it-retry-run-{uuid.uuid4().hex[:8]}"
    ctx = context()

    with pytest.raises(FlinkError):
        jar_try(throttled_jar, name, "flink_rest_proxy").execute(ctx)
    flink.clear_faults()
    job_id = jar_try(throttled_jar, name, "flink_rest_proxy").execute(ctx)

    jobs = named_jobs(name)
    report(path="jar", fault="drop", scenario="Airflow retry", hits=submit.hits, live=len(live(jobs)))
    assert live(jobs) == [job_id] and len(jobs) == 1


@pytest.mark.parametrize("fault", ["drop", "504"])
def test_a_lost_insert_answer_on_the_real_gateway_ends_with_one_job(
    proxy: Callable[[str], FaultProxy], named_jobs: Callable[[str], list[dict[str, Any]]], fault: str
) -> None:
    gateway = proxy("sql_gateway")
    table = f"it_lost_insert_{uuid.uuid4().hex[:8]}"
    injected = gateway.inject("POST", EXECUTE, fault, skip=2)  # the INSERT, after the two CREATE TABLEs

    outcome = sql_try(table, "sql_gateway_proxy").execute(context())

    jobs = named_jobs(table)
    report(path="sql", fault=fault, scenario="in-task", hits=injected.hits, live=len(live(jobs)))
    assert injected.hits == 1 and live(jobs) == outcome["job_ids"] and len(jobs) == 1


@pytest.mark.parametrize("path", ["jar", "sql"])
def test_racing_tries_on_the_real_cluster_converge_on_one_job(
    named_jobs: Callable[[str], list[dict[str, Any]]], throttled_jar: Path, path: str
) -> None:
    """Two tries of one task instance at once (a zombie and its retry); 20 more races run against the fake."""
    outcomes: list[str] = []
    for _ in range(REAL_RACES):
        marker = f"it_race_{uuid.uuid4().hex[:8]}"
        ctx = context()
        if path == "jar":
            results = race(lambda ctx=ctx, marker=marker: jar_try(throttled_jar, marker).execute(ctx), tries=2)
        else:
            results = race(lambda ctx=ctx, marker=marker: sql_try(marker).execute(ctx), tries=2)
        jobs = named_jobs(marker)
        ids = {
            result if isinstance(result, str) else result["job_ids"][0]
            for result in results
            if isinstance(result, (str, dict))
        }
        assert len(live(jobs)) == 1 and len(jobs) == 1, (results, jobs)
        assert ids == set(live(jobs)), results  # every try that succeeded has that job
        assert all(isinstance(result, (str, dict, FlinkError)) for result in results), results
        outcomes += [type(result).__name__ if isinstance(result, FlinkError) else "job" for result in results]
    report(path=path, fault="race (2 concurrent tries)", scenario=f"{REAL_RACES} repetitions", hits=REAL_RACES, live=1,
           tries={outcome: outcomes.count(outcome) for outcome in set(outcomes)})  # fmt: skip


def test_a_lost_stop_answer_takes_one_savepoint(
    proxy: Callable[[str], FaultProxy], rest: FlinkRestHook, started_jobs: list[str], tmp_path: Path
) -> None:
    """``POST /jobs/{id}/stop`` carries a trigger id: the repeated request gets the same operation from Flink."""
    table = f"it_stop_{uuid.uuid4().hex[:8]}"
    (job_id,) = sql_try(table).execute(context())["job_ids"]
    started_jobs.append(job_id)
    it.wait_until(lambda: rest.get_job_overview(job_id)["state"] == "RUNNING", timeout=60)
    flink = proxy("flink_rest")
    injected = flink.inject("POST", r"^/jobs/[0-9a-f]{32}/stop$", "drop")
    stop = FlinkStopJobOperator(
        task_id="stop",
        job_id=job_id,
        target_directory=f"file://{tmp_path}",
        timeout=120,
        flink_conn_id="flink_rest_proxy",
    )
    ctx = context()

    location = stop.execute(ctx)
    again = stop.execute(ctx)  # an Airflow retry of the stop task

    assert injected.hits == 1 and flink.count("POST", r"/stop$") == 2
    assert again == location and rest.get_job_state(job_id) == "FINISHED"
    savepoints = [path for path in tmp_path.iterdir() if path.name.startswith("savepoint-")]
    assert len(savepoints) == 1 and location.endswith(savepoints[0].name)
    report(path="stop with savepoint", fault="drop", scenario="in-task + Airflow retry", hits=1, live=0)


@pytest.mark.parametrize("fault", ["drop", "504"])
def test_a_lost_upload_answer_uploads_once_and_leaks_no_jar(
    proxy: Callable[[str], FaultProxy],
    rest: FlinkRestHook,
    named_jobs: Callable[[str], list[dict[str, Any]]],
    throttled_jar: Path,
    fault: str,
) -> None:
    """The jar landed but the answer did not: it is found by its unique name, not uploaded again."""
    flink = proxy("flink_rest")
    injected = flink.inject("POST", r"^/jars/upload$", fault)
    name = f"it-lost-upload-{uuid.uuid4().hex[:8]}"

    job_id = jar_try(throttled_jar, name, "flink_rest_proxy").execute(context())

    uploads = [
        re.search(rb'filename="([^"]+)"', head)
        for (method, path), head in zip(flink.plan.requests, flink.plan.heads, strict=True)
        if (method, path) == ("POST", "/jars/upload")
    ]
    assert injected.hits == 1 and len(uploads) == 1 and uploads[0] and flink.count("GET", r"^/jars$") >= 1
    assert live(named_jobs(name)) == [job_id]
    assert not [jar for jar in rest.list_jars() if jar["name"] == uploads[0].group(1).decode()]
    report(path="jar upload", fault=fault, scenario="in-task", hits=injected.hits, live=len(live(named_jobs(name))))


def test_a_lost_pyflink_run_answer_is_resolved_by_a_lookup_not_a_second_run(
    proxy: Callable[[str], FaultProxy], named_jobs: Callable[[str], list[dict[str, Any]]]
) -> None:
    """A lost PyFlink run answer is resolved by looking the job id up, never by a second run: a second run sent
    while the first PythonDriver still ran started a second job in a mini cluster inside the JobManager (random
    id, no savepoint), which no job id can refuse."""
    flink = proxy("flink_rest")
    injected = flink.inject("POST", RUN, "drop")
    name = f"it-lost-pyflink-{uuid.uuid4().hex[:8]}"
    op = FlinkJobSubmitOperator(
        task_id="pyflink",
        py_file=str(it.DATA / "pyflink_datagen_job.py"),
        python_jar=it.python_jar(),
        program_args=[name],
        parallelism=1,
        flink_conn_id="flink_rest_proxy",
    )

    job_id = op.execute(context())

    jobs = named_jobs(name)
    report(path="PyFlink", fault="drop", scenario="in-task", hits=injected.hits, live=len(live(jobs)))
    assert injected.hits == 1 and flink.count("POST", RUN) == 1
    assert live(jobs) == [job_id] and len(jobs) == 1
