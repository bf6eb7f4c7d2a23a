"""Dead letters alert: runs when the malformed-JSON scenario's dead-letter topic receives events.

An Airflow 3 AssetWatcher with the Kafka provider's KafkaMessageQueueTrigger (it runs in the triggerer, so
``make airflow-ui``) reads ``phase1-malformed-dlq-*`` through the connection ``kafka_dlq_watcher``; each dead
letter is an asset event, and this DAG reports how many arrived and a sample with their parse errors, then
sends one alert (to ``alerts.to`` of the Variable ``flink_observability``, through ``alerts.smtp_conn_id``).
See docs/observability.md ("Dead-letter events").
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.apache.kafka.triggers.msg_queue import KafkaMessageQueueTrigger
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Asset, AssetWatcher
from flink_lessons.observability.dlq import DLQ_TOPICS, WATCHER_CONN_ID, alert_task, report_task

dead_letters = Asset(
    name="phase1_malformed_dead_letters",
    watchers=[
        AssetWatcher(
            name="phase1_malformed_dlq_watcher",
            trigger=KafkaMessageQueueTrigger(
                topics=[DLQ_TOPICS],
                kafka_config_id=WATCHER_CONN_ID,
                apply_function="flink_lessons.observability.dlq.dead_letter_event",
                poll_interval=1,
            ),
        )
    ],
)

with DAG(
    dag_id="flink_dlq_alerts",
    schedule=[dead_letters],
    start_date=dt.datetime(2025, 1, 1),
    catchup=False,
    doc_md=__doc__,
    tags=["observability"],
) as dag:
    report = PythonOperator(task_id="report_dead_letters", python_callable=report_task)
    PythonOperator(task_id="send_alert", python_callable=alert_task, op_args=[report.output])
