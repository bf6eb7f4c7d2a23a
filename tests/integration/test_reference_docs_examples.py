"""The example DAGs of the reference docs (docs/examples) run green in ``airflow dags test`` on the stack.

Lean: parallelism 1, a bounded SQL job (20 rows) and a jar job that is stopped with a savepoint by the DAG
itself; any job of the run still alive at the end is cancelled.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration._flink_it import build_throttled_jar
from tests.integration.test_dags_phase0_1 import airflow_env, task_log

# Each DAG run: Airflow's start-up, the run and the OpenLineage emission at exit take minutes on the loaded
# 2-core machine (about 7 min at load 35); the default per-test limit (600 s) is for one quick run.
DAG_RUN = 1200
pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(2 * DAG_RUN + 300),
]

ROOT = Path(__file__).resolve().parents[2]
FLINK = "http://127.0.0.1:8081"


@pytest.fixture(scope="module")
def own_airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The project's Airflow environment on a copy of its metadata DB, for this module's ``airflow dags test``
    runs: other runs writing the shared SQLite file (other modules, other people) cannot lock them out."""
    env = airflow_env()
    home = tmp_path_factory.mktemp("airflow_home")
    shared = sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db")
    with closing(shared), closing(sqlite3.connect(home / "airflow.db")) as own:
        shared.backup(own)  # consistent while another process writes the shared DB
    return {**env, "AIRFLOW_HOME": str(home)}


def dags_test(dag_id: str, env: dict[str, str], conf: dict[str, Any] | None = None) -> str:
    """``airflow dags test`` one DAG; its output (the test fails on a non-zero exit).

    :param dag_id: the DAG.
    :param env: the environment (``own_airflow_env`` and the run's settings).
    :param conf: the run conf.
    """
    command = [str(Path(sys.executable).with_name("airflow")), "dags", "test", dag_id]
    if conf:
        command += ["-c", json.dumps(conf)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=DAG_RUN, check=False)
    except subprocess.TimeoutExpired as exc:  # name where the run stood, not only that it was slow
        tail = (exc.stdout or b"")[-6000:]
        raise AssertionError(f"airflow dags test {dag_id} still running after {DAG_RUN} s:\n{tail!r}") from exc
    output = done.stdout + done.stderr
    if done.returncode != 0:  # each task that logged an error: its own section of the output, then the end
        tasks = dict.fromkeys(re.findall(r"\[DAG TEST\] starting task_id=(\S+) ", output))
        failed = [section[-4000:] for task in tasks if "[error" in (section := task_log(output, task))]
        raise AssertionError(f"airflow dags test {dag_id} failed:\n" + "\n...\n".join([*failed, output[-3000:]]))
    return output


def jobs_since(prefix: str, started_ms: float) -> list[dict[str, Any]]:
    """This test's jobs: named ``<prefix> <run id>`` and started after the test began."""
    jobs = requests.get(f"{FLINK}/jobs/overview", timeout=10).json()["jobs"]
    return [job for job in jobs if job["name"].startswith(f"{prefix} ") and job["start-time"] >= started_ms]


def cancel_alive(jobs: list[dict[str, Any]]) -> None:
    for job in jobs:
        if job["state"] not in ("FINISHED", "CANCELED", "FAILED"):
            requests.patch(f"{FLINK}/jobs/{job['jid']}", params={"mode": "cancel"}, timeout=10)


def test_example_dags_run_green(tmp_path: Path, own_airflow_env: dict[str, str]) -> None:
    env = {**own_airflow_env, "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "docs" / "examples")}
    started = time.time() * 1000
    jar = build_throttled_jar(tmp_path)
    try:
        dags_test("example_flink_sql", env)
        sql_jobs = jobs_since("example_flink_sql", started)
        assert [job["state"] for job in sql_jobs] == ["FINISHED"], sql_jobs

        output = dags_test("example_flink_job", env, {"jar": str(jar), "entry_class": "ThrottledSequenceJob"})
        jar_jobs = jobs_since("example_flink_job", started)
        assert [job["state"] for job in jar_jobs] == ["FINISHED"], jar_jobs  # stopped with a savepoint
        assert "savepoint" in output.lower()
    finally:
        cancel_alive(jobs_since("example_flink_sql", started) + jobs_since("example_flink_job", started))
