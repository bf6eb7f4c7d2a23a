"""Phase 3, lesson 2: consumer groups and offset resets (include/sql/phase3_offsets/README.md).

The load command writes batches A and B (an instant T between them) to a source topic. A streaming job on the
consumer group reads them; the group has no committed offsets until ``commit_on_checkpoint`` takes a
checkpoint, then it has the topic's end offsets. The job is stopped with a savepoint, batch C produced and the
group reset through the Kafka admin API; the job restored from the savepoint reads exactly C (it resumes from
the offsets in its state, ignoring the reset: the classic gotcha). After a second reset, one bounded job reads
the topic with each ``scan.startup.mode``. ``report`` reads back what every job read and compares it with the
exact record sets each mode designates. Settings: Variable ``flink_phase3_offsets`` (run conf keys override
it). Try: ``airflow dags test flink_phase3_offsets -c '{"batch_events": 400}'``.
"""

from __future__ import annotations

from airflow.sdk import DAG
from flink_lessons.operators.jobs import FindUnfinishedJobsOperator
from flink_lessons.phase3 import operators as ops
from flink_lessons.phase4_dag import DAG_ARGS, SUBMIT

from airflow_flink_provider.operators.savepoint import FlinkCancelJobOperator, FlinkStopJobOperator
from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator

WAIT = {"wait_timeout": 600, "poll_interval": 2}

with DAG(dag_id="flink_phase3_offsets", tags=["flink", "phase3"], doc_md=__doc__, **DAG_ARGS) as dag:
    resolved = ops.ResolvePhase3Operator(task_id="resolve_settings", variable="flink_phase3_offsets")
    common = {"settings": resolved.output["settings"], "tag": resolved.output["tag"],
              "kafka_conn_id": resolved.output["kafka_conn_id"], "topics": resolved.output["topics"]}  # fmt: skip
    prepared = ops.PrepareOffsetsOperator(task_id="load_a_and_b", **common)
    rendered = ops.RenderOffsetsOperator(task_id="render_sql", bootstrap=resolved.output["bootstrap"],
                                         timestamp_ms=prepared.output["timestamp_ms"], **common)  # fmt: skip
    stream = FlinkSqlGatewayOperator(task_id="submit_stream", sql=rendered.output["stream"], wait_for="RUNNING",
                                     **WAIT, **SUBMIT)  # fmt: skip
    first = ops.CommitOnCheckpointOperator(task_id="commit_on_checkpoint", outcome=stream.output, batches=2, **common)
    stop = FlinkStopJobOperator(task_id="stop_with_savepoint", job_id=stream.output["flink_job_id"])
    reset = ops.ResetGroupOperator(task_id="load_c_and_reset_group", produce_batch_c=True, **common)
    restored = FlinkSqlGatewayOperator(task_id="submit_restored", sql=rendered.output["stream"],
                                       savepoint_path=stop.output, wait_for="RUNNING", **WAIT, **SUBMIT)  # fmt: skip
    restored_commit = ops.CommitOnCheckpointOperator(task_id="restored_commit", outcome=restored.output, batches=1,
                                                     read_start=first.output["read_end"], **common)  # fmt: skip
    cancel_restored = FlinkCancelJobOperator(task_id="cancel_restored", timeout=60,
                                             job_id=restored.output["flink_job_id"])  # fmt: skip
    reset_again = ops.ResetGroupOperator(task_id="reset_group_again", **common)
    modes = FlinkSqlGatewayOperator(task_id="submit_modes", sql=rendered.output["modes"], wait_for="FINISHED",
                                    **WAIT, **SUBMIT)  # fmt: skip
    report = ops.OffsetsReportOperator(task_id="report", prepared=prepared.output, **common, drills={
        "first": first.output, "reset": reset.output, "restored": restored_commit.output,
        "reset_again": reset_again.output})  # fmt: skip
    unfinished = FindUnfinishedJobsOperator(task_id="find_unfinished_jobs", tag=resolved.output["tag"])
    cancel = FlinkCancelJobOperator.partial(task_id="cancel_jobs", timeout=60).expand(job_id=unfinished.output)
    delete = ops.DeleteTopicsOperator(task_id="delete_topics", kafka_conn_id=resolved.output["kafka_conn_id"],
                                      topics=resolved.output["topics"])  # fmt: skip

    resolved >> prepared >> rendered >> stream >> first >> stop >> reset >> restored >> restored_commit
    restored_commit >> cancel_restored >> reset_again >> modes >> report
    report >> unfinished.as_teardown() >> cancel.as_teardown()
    cancel >> delete.as_teardown()
