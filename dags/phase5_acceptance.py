"""Phase 5 acceptance: the four Iceberg tables against a reference computed in plain Python from the dataset.

Scheduled on the tables' Assets, so it runs whenever flink_phase5_pipeline publishes them (or trigger it;
the run conf may name a replay: ``{"params": ..., "dataset": ...}``). The append tables are read with
pyiceberg, outside Flink; the upsert table customer_totals through the SQL Gateway (pyiceberg 0.12 cannot
apply equality deletes). Every count, key and value must be exact, late deliveries included; the log shows
the acceptance table, a failure the diff.
"""

from __future__ import annotations

from airflow.sdk import DAG
from flink_lessons.phase5.operators import ASSETS, DAG_ARGS, AcceptanceRunOperator, CheckTablesOperator

from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator

with DAG(dag_id="flink_phase5_acceptance", schedule=list(ASSETS.values()), doc_md=__doc__, **DAG_ARGS):
    run = AcceptanceRunOperator(task_id="find_replay")
    totals = FlinkSqlGatewayOperator(
        task_id="read_customer_totals", sql=run.output["totals_sql"], result_row_limit=1_000_000, statement_timeout=600
    )
    check = CheckTablesOperator(
        task_id="check_tables", params_json=run.output["params"], dataset=run.output["dataset"], totals=totals.output
    )
    run >> totals >> check
