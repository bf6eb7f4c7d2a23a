"""Example DAG of the reference docs: branch on a Flink job's state and root cause.

``FlinkJobStatusOperator`` asks Flink once and returns ``{"job_id", "state", "root_cause"}``; the branch
decides on that XCom without a Flink call of its own. Run it against the local stack with
``airflow dags test example_flink_job_status -c '{"job_id": "<32 hex digits>"}'`` (DAGs folder
``docs/examples``).
"""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Param, task

from airflow_flink_provider.operators.job_status import FlinkJobStatusOperator

with DAG(
    dag_id="example_flink_job_status",
    schedule=None,  # manual runs only (Airflow 3: no start date or catchup needed)
    tags=["example", "flink"],
    params={"job_id": Param("0" * 32, type="string", pattern="^[0-9a-f]{32}$", description="the job to look at")},
) as dag:
    # [START howto_operator_flink_job_status]
    status = FlinkJobStatusOperator(task_id="job_status", job_id="{{ params.job_id }}")

    @task.branch
    def choose(job: dict[str, Any]) -> str:
        """Where to go for the job's state (``None``: Flink does not know the job)."""
        if job["state"] in ("FAILED", "FAILING"):
            print(f"Job {job['job_id']} failed: {job['root_cause']}")
            return "page_the_owner"
        return "carry_on"

    choose(status.output) >> [EmptyOperator(task_id="page_the_owner"), EmptyOperator(task_id="carry_on")]
    # [END howto_operator_flink_job_status]
