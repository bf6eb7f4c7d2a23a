"""Phase 3, lesson 4: checkpoint tuning and failure recovery (include/sql/phase3_checkpoints/README.md).

``tuning_sweep`` runs one keyed aggregation per checkpoint setting side by side (interval, min pause, timeout,
aligned vs unaligned under backpressure, hashmap vs RocksDB incremental) and reads what each checkpoint cost
from the REST API. ``failure_drill`` runs an exactly-once Kafka -> Kafka job while the load command writes, kills
the TaskManager under it ``kills`` times (SIGKILL) on the local stack in ``stack_dir`` (a private stack: never
the shared one), and counts lost and duplicated events in the output read with ``read_committed``. ``report``
prints both tables next to what the lesson expects. Settings: Variable ``flink_phase3_checkpoints`` (run conf keys
override it). Try: ``airflow dags test flink_phase3_checkpoints -c '{"sweep_seconds": 30}'`` with the connections
of a private stack (``FLINK_STACK_DIR=.stack-p3 FLINK_STACK_PORT_OFFSET=4000 stack/cli.py env``).
"""

from __future__ import annotations

from airflow.sdk import DAG
from flink_lessons.phase3 import operators as ops
from flink_lessons.phase4_dag import DAG_ARGS

with DAG(dag_id="flink_phase3_checkpoints", tags=["flink", "phase3"], doc_md=__doc__, **DAG_ARGS) as dag:
    resolved = ops.ResolvePhase3Operator(task_id="resolve_settings", variable="flink_phase3_checkpoints")
    common = {"settings": resolved.output["settings"], "tag": resolved.output["tag"],
              "kafka_conn_id": resolved.output["kafka_conn_id"], "topics": resolved.output["topics"]}  # fmt: skip
    sweep = ops.CheckpointSweepOperator(task_id="tuning_sweep", **common)
    drill = ops.FailureDrillOperator(task_id="failure_drill", **common)
    report = ops.CheckpointsReportOperator(task_id="report", sweep=sweep.output, drill=drill.output, **common)
    delete = ops.DeleteTopicsOperator(task_id="delete_topics", kafka_conn_id=resolved.output["kafka_conn_id"],
                                      topics=resolved.output["topics"])  # fmt: skip

    resolved >> sweep >> drill >> report >> delete.as_teardown(setups=resolved)
