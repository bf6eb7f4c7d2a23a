"""Phase 3, lesson 1: partitioning and key selection (include/sql/phase3_partitioning/README.md).

The load command writes the same number of events to three topics of ``partitions`` partitions: uniform
keys, Zipf-skewed keys (``skew``) and the same Zipf keys without a Kafka key. ``submit_skewed`` aggregates the
first two per key (one phase) and ``submit_fixed`` the skewed topic again with mini-batches and a local-global
aggregation; both read bounded sources and FINISH. ``report`` reads each subtask's records in from Flink's
REST API and prints them next to what the lesson expects: a hot subtask under Zipf keys, evenness under
uniform keys and after the fix, records on the partitions murmur2 predicts. Settings: Variable
``flink_phase3_partitioning`` (run conf keys override it). Try:
``airflow dags test flink_phase3_partitioning -c '{"events": 20000, "parallelism": 2}'``.
"""

from __future__ import annotations

from airflow.sdk import DAG
from flink_lessons.operators.jobs import FindUnfinishedJobsOperator, JobIdsOperator
from flink_lessons.phase3 import operators as ops
from flink_lessons.phase4_dag import DAG_ARGS, SUBMIT

from airflow_flink_provider.operators.savepoint import FlinkCancelJobOperator
from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator
from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor

with DAG(dag_id="flink_phase3_partitioning", tags=["flink", "phase3"], doc_md=__doc__, **DAG_ARGS) as dag:
    resolved = ops.ResolvePhase3Operator(task_id="resolve_settings", variable="flink_phase3_partitioning")
    loaded = ops.LoadPartitioningTopicsOperator(
        task_id="load_topics",
        settings=resolved.output["settings"],
        tag=resolved.output["tag"],
        kafka_conn_id=resolved.output["kafka_conn_id"],
    )
    rendered = ops.RenderPartitioningOperator(task_id="render_sql", settings=resolved.output["settings"],
                                              topics=loaded.output["topics"], bootstrap=resolved.output["bootstrap"],
                                              tag=resolved.output["tag"])  # fmt: skip
    skewed = FlinkSqlGatewayOperator(task_id="submit_skewed", sql=rendered.output["skewed"], **SUBMIT)
    skewed_jobs = JobIdsOperator(task_id="job_ids_skewed", outcome=skewed.output)
    skewed_done = FlinkJobStateSensor.partial(task_id="wait_finished_skewed", **ops.WAIT_FINISHED).expand(
        job_id=skewed_jobs.output
    )
    fixed = FlinkSqlGatewayOperator(task_id="submit_fixed", sql=rendered.output["fixed"], **SUBMIT)
    fixed_jobs = JobIdsOperator(task_id="job_ids_fixed", outcome=fixed.output)
    fixed_done = FlinkJobStateSensor.partial(task_id="wait_finished_fixed", **ops.WAIT_FINISHED).expand(
        job_id=fixed_jobs.output
    )
    report = ops.PartitioningReportOperator(task_id="report", settings=resolved.output["settings"],
                                            prepared=loaded.output,
                                            outcomes={"skewed": skewed.output, "fixed": fixed.output})  # fmt: skip
    unfinished = FindUnfinishedJobsOperator(task_id="find_unfinished_jobs", tag=resolved.output["tag"])
    cancel = FlinkCancelJobOperator.partial(task_id="cancel_jobs", timeout=60).expand(job_id=unfinished.output)
    delete = ops.DeleteTopicsOperator(task_id="delete_topics", kafka_conn_id=resolved.output["kafka_conn_id"],
                                      topics=resolved.output["topics"])  # fmt: skip

    resolved >> loaded >> rendered >> skewed >> skewed_jobs >> skewed_done
    skewed_done >> fixed >> fixed_jobs >> fixed_done >> report
    report >> unfinished.as_teardown() >> cancel.as_teardown()
    cancel >> delete.as_teardown()
