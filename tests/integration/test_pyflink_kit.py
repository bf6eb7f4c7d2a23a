"""Helpers of the PyFlink job and phase 4 DAG integration tests (this module holds no tests).

Kafka topics with a uuid suffix and one partition, the orders dataset in and the aggregates out, the
``flink run -py`` command of include/pyflink/orders_enrichment/README.md, and ``dag.test()`` of the phase 4
DAGs in a fresh Airflow home (a subprocess, so its configuration and database are its own).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from tests.conftest import HOST, PORTS

ROOT = Path(__file__).resolve().parents[2]
JOBS = ROOT / "include" / "pyflink"
FLINK_HOME = Path(os.environ.get("FLINK_STACK_DIR", ROOT / ".stack")).resolve() / "flink"
BOOTSTRAP = f"{HOST}:{PORTS['kafka']}"
ENDED = {"FINISHED", "FAILED", "CANCELED"}

sys.path.insert(0, str(JOBS))
from orders_enrichment import dataset  # noqa: E402

PRODUCTS = dataset.load_products()


def python_jar() -> str:
    """The flink-python jar of the local stack."""
    jars = sorted((FLINK_HOME / "opt").glob("flink-python*.jar"))
    assert jars, f"no flink-python jar in {FLINK_HOME / 'opt'}"
    return str(jars[-1])


class Topics:
    """Unique topics with one partition each, deleted at the end."""

    def __init__(self) -> None:
        self.admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
        self.created: list[str] = []

    def create(self, prefix: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        for future in self.admin.create_topics([NewTopic(name, 1, 1)]).values():
            future.result(30)
        self.created.append(name)
        return name

    def delete_all(self) -> None:
        if self.created:
            for future in self.admin.delete_topics(self.created).values():
                with contextlib.suppress(Exception):  # a topic that is already gone is fine
                    future.result(30)


@pytest.fixture
def topics() -> Iterator[Topics]:
    made = Topics()
    yield made
    made.delete_all()


class Jobs:
    """Every Flink job a test starts, cancelled when the test ends (the cluster is shared)."""

    def __init__(self) -> None:
        self.rest = FlinkRestHook()
        self.ids: list[str] = []
        self.names: list[str] = []

    def track(self, job_id: str) -> str:
        self.ids.append(job_id)
        return job_id

    def track_name(self, base: str) -> str:
        self.names.append(base)
        return base

    def cancel_all(self) -> None:
        ids = set(self.ids)
        for job in self.rest.list_jobs():
            if any(str(job.get("name", "")).startswith(f"{base}@") for base in self.names):
                ids.add(job["jid"])
        for job_id in ids:
            job = self.rest.find_job(job_id)
            if job is not None and job["state"] not in ENDED:
                self.rest.cancel_job(job_id)


@pytest.fixture
def jobs() -> Iterator[Jobs]:
    tracked = Jobs()
    yield tracked
    tracked.cancel_all()


def produce(topic: str, events: Iterable[Mapping[str, Any]]) -> None:
    """Write events as JSON, in order, and wait until Kafka has them all."""
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True})
    for event in events:
        producer.produce(topic, json.dumps(event).encode())
    assert producer.flush(30) == 0, "not every event reached Kafka"


def _epoch_ms(value: str) -> int:
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def normalize(row: Mapping[str, Any]) -> dict[str, Any]:
    """An output row with its window bounds as epoch milliseconds."""
    return {**row, "window_start": _epoch_ms(row["window_start"]), "window_end": _epoch_ms(row["window_end"])}


def read_rows(topic: str, count: int, *, timeout: float = 90, settle: float = 2.0) -> list[dict[str, Any]]:
    """Read a sink topic from the start until ``count`` rows are there (then ``settle`` seconds for extras).

    :param topic: the topic.
    :param count: rows to wait for (computed from the input).
    :param timeout: give up after this long.
    :param settle: keep reading this long after ``count`` rows, so a duplicate would show.
    """
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"it-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})  # fmt: skip
    consumer.subscribe([topic])
    rows: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    settled_at: float | None = None
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                rows.append(normalize(json.loads(message.value())))
            if len(rows) >= count and settled_at is None:
                settled_at = time.monotonic() + settle
            if settled_at is not None and time.monotonic() >= settled_at:
                break
    finally:
        consumer.close()
    return rows


def without(rows: Iterable[Mapping[str, Any]], *keys: str) -> list[dict[str, Any]]:
    """Rows without some keys (e.g. ``job_version``), sorted by window and category."""
    trimmed = [{k: v for k, v in row.items() if k not in keys} for row in rows]
    return sorted(trimmed, key=lambda row: (row["window_start"], row["category"]))


def job_args(source: str, sink: str, job_name: str, **overrides: Any) -> list[str]:
    """The test settings of a job version: small windows, no watermark delay, frequent checkpoints."""
    settings = {"window-seconds": 10, "watermark-delay-seconds": 0, "checkpoint-interval-seconds": 2,
                "restart-attempts": 1, "restart-delay-seconds": 1, **overrides}  # fmt: skip
    group = job_name.split("@")[0]
    args = ["--source-topic", source, "--sink-topic", sink, "--job-name", job_name, "--consumer-group", group]
    for key, value in settings.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def flink_run(version: str, args: list[str], *, job_id: str, savepoint: str | None = None) -> str:
    """``flink run -d -py include/pyflink/orders_enrichment/<version>.py <args>`` (detached) with a fixed id.

    :param version: the job version.
    :param args: the job's arguments.
    :param job_id: the job id to use (``$internal.pipeline.job-id``).
    :param savepoint: restore from this savepoint (``-s``).
    :return: the CLI's output.
    """
    command = [str(FLINK_HOME / "bin" / "flink"), "run", "-d", "-D", f"$internal.pipeline.job-id={job_id}"]
    if savepoint:
        command += ["-s", savepoint]
    command += ["-py", str(JOBS / "orders_enrichment" / f"{version}.py"), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, f"flink run failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return done.stdout


def wait_state(rest: FlinkRestHook, job_id: str, states: set[str], timeout: float = 90) -> dict[str, Any]:
    """Poll a job until its state is one of ``states`` (a RUNNING target also needs every task running)."""
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = rest.find_job(job_id) or {}
        state = job.get("state")
        tasks_ok = all(v.get("status") in ("RUNNING", "FINISHED") for v in job.get("vertices", []))
        if state in states and (state != "RUNNING" or tasks_ok):
            return job
        if state in ENDED and state not in states:
            raise AssertionError(f"job {job_id} is {state}: {rest.get_root_cause(job_id)}")
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not reach {states} within {timeout}s (last: {job.get('state')})")


def wait_checkpoints(rest: FlinkRestHook, job_id: str, count: int, timeout: float = 60) -> None:
    """Wait until a job has ``count`` completed checkpoints."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if int((rest.get_checkpoints(job_id).get("counts") or {}).get("completed") or 0) >= count:
            return
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not complete {count} checkpoints within {timeout}s")


# --- dag.test() in a fresh Airflow home ---------------------------------------------------------------------

DRIVER = textwrap.dedent(
    """
    import json, sys
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.variable import Variable
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    dag_id, conf = sys.argv[1], json.loads(sys.argv[2])
    dag = DagBag().get_dag(dag_id)
    run = dag.test(run_conf=conf)
    with create_session() as session:
        states = {ti.task_id: str(ti.state) for ti in run.get_task_instances(session=session)}
        xcoms = {
            f"{row.task_id}/{row.key}": row.value
            for row in session.query(XComModel).filter_by(dag_id=dag_id, run_id=run.run_id)
        }
        variables = {row.key: row.val for row in session.query(Variable)}
    print("RESULT " + json.dumps({"state": str(run.state), "run_id": run.run_id, "states": states, "xcoms": xcoms,
                                  "variables": variables}, default=str))
    """
)


class AirflowHome:
    """A fresh Airflow home whose DAG folder holds just the phase 4 DAGs (their helpers are the installed
    ``flink_lessons`` package)."""

    def __init__(self, base: Path) -> None:
        self.home = base / "home"
        self.dags = base / "dags"
        self.home.mkdir()
        self.dags.mkdir()
        for name in ("flink_deploy_pyflink.py", "flink_upgrade_with_rollback.py",
                     "flink_recover_from_savepoint.py", "flink_deploy_sql.py"):  # fmt: skip
            (self.dags / name).symlink_to(ROOT / "dags" / name)
        (base / "driver.py").write_text(DRIVER)
        self.driver = base / "driver.py"
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
        self.env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "PYTHONPATH": str(ROOT),
                "AIRFLOW_CONN_FLINK_DEFAULT": os.environ["AIRFLOW_CONN_FLINK_DEFAULT"],
                "AIRFLOW_CONN_KAFKA_DEFAULT": os.environ["AIRFLOW_CONN_KAFKA_DEFAULT"],
                "AIRFLOW_CONN_FLINK_SQL_GATEWAY_DEFAULT": os.environ["AIRFLOW_CONN_FLINK_SQL_GATEWAY_DEFAULT"],
            }
        )
        airflow = str(Path(sys.executable).with_name("airflow"))
        subprocess.run([airflow, "db", "migrate"], env=self.env, check=True, capture_output=True, timeout=1200)

    def run(self, dag_id: str, variables: Mapping[str, Any], conf: Mapping[str, Any] | None = None) -> DagResult:
        """``dag.test()`` one run with these Variables (as environment Variables) and run conf."""
        env = dict(self.env)
        for name, value in variables.items():
            env[f"AIRFLOW_VAR_{name.upper()}"] = json.dumps(value)
        done = subprocess.run(
            [sys.executable, str(self.driver), dag_id, json.dumps(conf or {})],
            env=env, capture_output=True, text=True, timeout=1500, check=False,
        )  # fmt: skip
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        assert lines, f"dag.test() printed no result:\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
        result = json.loads(lines[-1][len("RESULT ") :])
        return DagResult(dag_id, result, done.stdout + done.stderr, self.home)


def _decoded(value: Any) -> Any:
    """A stored value: JSON text decoded, anything else as it is."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


class DagResult:
    """The outcome of one ``dag.test()`` run."""

    def __init__(self, dag_id: str, result: Mapping[str, Any], output: str, home: Path) -> None:
        self.dag_id = dag_id
        self.state = result["state"]
        self.run_id = result["run_id"]
        self.states: dict[str, str] = result["states"]
        self.xcoms = {key: _decoded(value) for key, value in result["xcoms"].items()}
        self.variables = {key: _decoded(value) for key, value in result["variables"].items()}
        self.output = output
        self.home = home

    def xcom(self, task_id: str, key: str = "return_value") -> Any:
        return self.xcoms.get(f"{task_id}/{key}")

    def log(self, task_id: str) -> str:
        """Everything logged by the task's tries (its log files in the home), plus the run's output."""
        files = sorted(self.home.glob(f"logs/dag_id={self.dag_id}/run_id={self.run_id}/task_id={task_id}/*"))
        return "\n".join(path.read_text(errors="replace") for path in files) + self.output

    def __repr__(self) -> str:
        return f"{self.dag_id} {self.state}: {json.dumps(self.states, indent=1)}\n{self.output[-6000:]}"


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> AirflowHome:
    return AirflowHome(tmp_path_factory.mktemp("phase4"))


def pyflink_variable(source: str, sink: str, job_name: str, **overrides: Any) -> dict[str, Any]:
    """The ``flink_phase4_pyflink`` Variable of a test: its own topics and name, small windows, fast gates."""
    value: dict[str, Any] = {
        "job_name": job_name,
        "topics": {"source": source, "sink": sink},
        "consumer_group": job_name,
        "window_size": "10s",
        "watermark_delay": "0s",
        "checkpoint": {"interval": "2s"},
        "restart": {"strategy": "fixed-delay", "attempts": 1, "delay": "1s"},
        "health": {"min_checkpoints": 1, "stable_for": "4s", "max_restarts": 0, "timeout": "90s",
                   "poll_interval": "1s"},
        "bootstrap_servers": BOOTSTRAP,
        "python_jar": python_jar(),
    }  # fmt: skip
    for key, val in overrides.items():
        if isinstance(val, dict):
            value[key] = {**value.get(key, {}), **val}
        else:
            value[key] = val
    return value
