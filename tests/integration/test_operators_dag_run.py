"""The operators, the sensor and the trigger run by Airflow's own task runner: ``dag.test()`` in a fresh home.

A SQL file rendered through ``template_searchpath`` and params starts a job; a deferrable sensor waits for
it (the trigger runs inline); a cancel operator ends it. Airflow pushes the return values and the Flink UI
links to XCom itself, and the job id is kept in Airflow's real task state store before submit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from tests.integration import _flink_it as it

pytestmark = pytest.mark.integration


DAG_FILE = textwrap.dedent(
    """
    import datetime as dt
    import json
    import sys

    from airflow.sdk import DAG

    from airflow_flink_provider.operators.savepoint import FlinkCancelJobOperator
    from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator
    from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor

    JOB_ID = "{{ ti.xcom_pull(task_ids='start')['job_ids'][0] }}"

    with DAG(
        "it_flink_provider_dag",
        schedule=None,
        start_date=dt.datetime(2025, 1, 1),
        template_searchpath=[sys.argv[1]],
        params={"table": sys.argv[2]},
    ) as dag:
        start = FlinkSqlGatewayOperator(task_id="start", sql="job.sql", session_properties={"parallelism.default": 1})
        wait = FlinkJobStateSensor(task_id="wait", job_id=JOB_ID, deferrable=True, poke_interval=1, timeout=120)
        cancel = FlinkCancelJobOperator(task_id="cancel", job_id=JOB_ID, poll_interval=0.5)
        start >> wait >> cancel

    if __name__ == "__main__":
        from airflow.models.task_state_store import TaskStateStoreModel
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        run = dag.test()
        with create_session() as session:
            states = {ti.task_id: str(ti.state) for ti in run.get_task_instances(session=session)}
            xcoms = {
                f"{row.task_id}/{row.key}": row.value
                for row in session.query(XComModel).filter_by(dag_id=dag.dag_id, run_id=run.run_id)
            }
            stored = {
                f"{row.task_id}/{row.key}": row.value
                for row in session.query(TaskStateStoreModel).filter_by(dag_id=dag.dag_id, run_id=run.run_id)
            }
        print("RESULT " + json.dumps({"states": states, "xcoms": xcoms, "stored": stored}, default=str))
    """
)

SQL_FILE = """-- rendered by Airflow: the table name comes from the DAG params
CREATE TABLE {{ params.table }}_src (n BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '2');
CREATE TABLE {{ params.table }} (n BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO {{ params.table }} SELECT n FROM {{ params.table }}_src;
"""


def test_dag_run_with_templated_sql_deferrable_sensor_and_links(tmp_path: Path, rest: FlinkRestHook) -> None:
    home, dags, sql = tmp_path / "home", tmp_path / "dags", tmp_path / "sql"
    for directory in (home, dags, sql):
        directory.mkdir()
    (dags / "flink_dag.py").write_text(DAG_FILE)
    (sql / "job.sql").write_text(SQL_FILE)
    table = f"it_dag_{uuid.uuid4().hex[:8]}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW__")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PYTHONPATH": str(it.ROOT),
        }
    )
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)

    done = subprocess.run(
        [sys.executable, str(dags / "flink_dag.py"), str(sql), table],
        env=env,
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"dag.test() printed no result:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    result = json.loads(lines[-1][len("RESULT ") :])

    jobs = [job for job in rest.list_jobs() if table in job["name"]]
    it.cancel_all(rest, [job["jid"] for job in jobs])
    assert result["states"] == {"start": "success", "wait": "success", "cancel": "success"}, done.stdout[-4000:]
    xcoms = result["xcoms"]
    (job_id,) = xcoms["start/return_value"]["job_ids"]
    assert [job["jid"] for job in jobs] == [job_id]
    assert rest.get_job_state(job_id) == "CANCELED"
    assert xcoms["wait/return_value"] == "RUNNING"
    assert "cancel/return_value" not in xcoms  # a plain cancel returns None, which Airflow does not push
    assert list(json.loads(result["stored"]["start/flink_job_ids"]).values()) == [job_id]  # stored before submit
    assert "start/flink_sql_session" not in result["stored"]  # recorded while open, forgotten once closed
    for task in ("start", "wait", "cancel"):
        assert xcoms[f"{task}/_link_FlinkJobLink"] == f"http://127.0.0.1:8081/#/job/running/{job_id}/overview"
