"""flink_ops_report: every operations-checklist item (docs/operations-checklist.md) for one running job.

Params: ``job`` (a Flink job id, or the exact name of a RUNNING job), ``fail_on_bad`` (fail the run when an
item is bad) and ``kafka_group`` (a consumer group whose lag to add, e.g. the job's ``properties.group.id``).
The report task logs each item's value with a verdict (ok / warn / bad) and returns them as its XCom. Try:
``airflow dags test flink_ops_report -c '{"job": "<id or name>", "fail_on_bad": true}'``.
"""

from __future__ import annotations

from airflow.sdk import DAG, Param
from flink_lessons.phase3.operators import OpsReportOperator
from flink_lessons.phase4_dag import DAG_ARGS

with DAG(
    dag_id="flink_ops_report",
    tags=["flink", "phase3", "operations"],
    doc_md=__doc__,
    params={
        "job": Param("", type="string", description="Flink job id or exact name of a RUNNING job"),
        "fail_on_bad": Param(False, type="boolean", description="fail when any item is bad"),
        "kafka_group": Param("", type="string", description="consumer group whose lag to report (optional)"),
    },
    **DAG_ARGS,
) as dag:
    OpsReportOperator(task_id="report", job="{{ params.job }}", fail_on_bad="{{ params.fail_on_bad }}",
                      kafka_group="{{ params.kafka_group }}")  # fmt: skip
