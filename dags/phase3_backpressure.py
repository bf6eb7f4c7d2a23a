"""Phase 3, lesson 3: backpressure and throughput tuning (include/sql/phase3_backpressure/README.md).

The load command writes a backlog to one input topic; one bounded job per variant (chaining, buffer timeout,
object reuse, parallelism) reads it through a deliberately slow operator, all at once, side by side. While they
drain it, ``sweep`` samples the unchained job's backpressure through the provider's hook (the source shows
``high``); then it writes a tail at a light rate, on which latency is measured. ``report`` prints the table
(throughput, latency p50/p99 per variant), draws it as a PNG, and judges the unchained job's busy and
back-pressured time per task. Settings: Variable ``flink_phase3_backpressure`` (run conf keys override it).
Try: ``airflow dags test flink_phase3_backpressure -c '{"backlog_events": 5000}'``.
"""

from __future__ import annotations

from airflow.sdk import DAG
from flink_lessons.operators.jobs import FindUnfinishedJobsOperator, JobIdsOperator
from flink_lessons.phase3 import operators as ops
from flink_lessons.phase4_dag import DAG_ARGS, SUBMIT

from airflow_flink_provider.operators.savepoint import FlinkCancelJobOperator
from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator
from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor

with DAG(dag_id="flink_phase3_backpressure", tags=["flink", "phase3"], doc_md=__doc__, **DAG_ARGS) as dag:
    resolved = ops.ResolvePhase3Operator(task_id="resolve_settings", variable="flink_phase3_backpressure")
    common = {"settings": resolved.output["settings"], "tag": resolved.output["tag"],
              "kafka_conn_id": resolved.output["kafka_conn_id"]}  # fmt: skip
    prepared = ops.PrepareBackpressureOperator(task_id="load_backlog", **common)
    topics = prepared.output["topics"]
    rendered = ops.RenderBackpressureOperator(task_id="render_sql", bootstrap=resolved.output["bootstrap"],
                                              topics=topics, **common)  # fmt: skip
    submitted = FlinkSqlGatewayOperator.partial(task_id="submit_variants", **SUBMIT).expand(sql=rendered.output)
    sweep = ops.BackpressureSweepOperator(task_id="sweep", outcomes=submitted.output, topics=topics, **common)
    job_ids = JobIdsOperator(task_id="job_ids", outcome=sweep.output)
    finished = FlinkJobStateSensor.partial(task_id="wait_finished", **ops.WAIT_FINISHED).expand(job_id=job_ids.output)
    report = ops.BackpressureReportOperator(task_id="report", sweep=sweep.output, topics=topics, **common)
    unfinished = FindUnfinishedJobsOperator(task_id="find_unfinished_jobs", tag=resolved.output["tag"])
    cancel = FlinkCancelJobOperator.partial(task_id="cancel_jobs", timeout=60).expand(job_id=unfinished.output)
    delete = ops.DeleteTopicsOperator(task_id="delete_topics", kafka_conn_id=resolved.output["kafka_conn_id"],
                                      topics=topics)  # fmt: skip

    resolved >> prepared >> rendered >> submitted >> sweep >> job_ids >> finished >> report
    report >> unfinished.as_teardown() >> cancel.as_teardown()
    cancel >> delete.as_teardown()
