"""Example DAG of the reference docs: run Flink SQL through the SQL Gateway and wait for its job.

A bounded job (20 generated orders, the large ones into a blackhole sink, parallelism 1) that finishes by
itself: the SQL task submits it, the sensor waits in the triggerer until it is FINISHED. Run it against the
local stack with ``airflow dags test example_flink_sql`` (DAGs folder ``docs/examples``).
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator
from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor

with DAG(
    dag_id="example_flink_sql",
    schedule=None,  # manual runs only (Airflow 3: no start date or catchup needed)
    tags=["example", "flink"],
) as dag:
    # [START howto_operator_flink_sql_gateway]
    run_sql = FlinkSqlGatewayOperator(
        task_id="run_sql",
        sql="""
            SET 'parallelism.default' = '1';
            SET 'pipeline.name' = 'example_flink_sql {{ run_id }}';
            CREATE TEMPORARY TABLE orders (order_id BIGINT, amount DOUBLE)
                WITH ('connector' = 'datagen', 'number-of-rows' = '20', 'fields.amount.max' = '500');
            CREATE TEMPORARY TABLE large_orders (order_id BIGINT, amount DOUBLE) WITH ('connector' = 'blackhole');
            INSERT INTO large_orders SELECT order_id, amount FROM orders WHERE amount > 100;
            SHOW TABLES;
        """,
        session_properties={"execution.runtime-mode": "streaming"},
        result_row_limit=10,
    )
    # [END howto_operator_flink_sql_gateway]

    # [START howto_sensor_flink_job_state]
    wait_finished = FlinkJobStateSensor(
        task_id="wait_finished",
        job_id=run_sql.output["flink_job_id"],  # the first job the script submitted
        target_states=["FINISHED"],
        deferrable=True,
        poke_interval=2,
        timeout=300,
    )
    # [END howto_sensor_flink_job_state]

    run_sql >> wait_finished
