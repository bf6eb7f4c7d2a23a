"""The example DAGs of the reference docs (docs/examples) run green in ``airflow dags test`` on the stack.

Lean: parallelism 1, a bounded SQL job (20 rows) and a jar job that is stopped with a savepoint by the DAG
itself; any job of the run still alive at the end is cancelled.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration._flink_it import build_throttled_jar
from tests.integration.test_dags_phase0_1 import airflow_env

# Each DAG run: Airflow's start-up, the run and the OpenLineage emission at exit take minutes on the loaded
# 2-core machine (about 7 min at load 35); the default per-test limit (600 s) is for one quick run.
DAG_RUN = 1200
pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(2 * DAG_RUN + 300),
    pytest.mark.skip(
        reason=(
            "issue 14 open: not yet green three times on the real stack: "
            "the example's sensor read the job id under key 'job_id', the provider pushes "
            "'flink_job_id' (fixed); rerun pending"
        )
    ),
]

ROOT = Path(__file__).resolve().parents[2]
FLINK = "http://127.0.0.1:8081"


def dags_test(dag_id: str, conf: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> str:
    """``airflow dags test`` one DAG; its output (the test fails on a non-zero exit).

    :param dag_id: the DAG.
    :param conf: the run conf.
    :param env: the environment; default: the project's, with the DAGs folder ``docs/examples``.
    """
    if env is None:
        env = {**airflow_env(), "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "docs" / "examples")}
    command = [str(Path(sys.executable).with_name("airflow")), "dags", "test", dag_id]
    if conf:
        command += ["-c", json.dumps(conf)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=DAG_RUN, check=False)
    except subprocess.TimeoutExpired as exc:  # name where the run stood, not only that it was slow
        tail = (exc.stdout or b"")[-6000:]
        raise AssertionError(f"airflow dags test {dag_id} still running after {DAG_RUN} s:\n{tail!r}") from exc
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    return output


def jobs_since(prefix: str, started_ms: float) -> list[dict[str, Any]]:
    """This test's jobs: named ``<prefix> <run id>`` and started after the test began."""
    jobs = requests.get(f"{FLINK}/jobs/overview", timeout=10).json()["jobs"]
    return [job for job in jobs if job["name"].startswith(f"{prefix} ") and job["start-time"] >= started_ms]


def cancel_alive(jobs: list[dict[str, Any]]) -> None:
    for job in jobs:
        if job["state"] not in ("FINISHED", "CANCELED", "FAILED"):
            requests.patch(f"{FLINK}/jobs/{job['jid']}", params={"mode": "cancel"}, timeout=10)


def test_example_dags_run_green(tmp_path: Path) -> None:
    started = time.time() * 1000
    jar = build_throttled_jar(tmp_path)
    try:
        dags_test("example_flink_sql")
        sql_jobs = jobs_since("example_flink_sql", started)
        assert [job["state"] for job in sql_jobs] == ["FINISHED"], sql_jobs

        output = dags_test("example_flink_job", {"jar": str(jar), "entry_class": "ThrottledSequenceJob"})
        jar_jobs = jobs_since("example_flink_job", started)
        assert [job["state"] for job in jar_jobs] == ["FINISHED"], jar_jobs  # stopped with a savepoint
        assert "savepoint" in output.lower()
    finally:
        cancel_alive(jobs_since("example_flink_sql", started) + jobs_since("example_flink_job", started))
