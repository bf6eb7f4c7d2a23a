"""Observability: every 5 minutes, lag, checkpoint health, restarts, backpressure and watermark delay of the
running Flink jobs (or those matching ``job_name_pattern``), alerts once per incident, and a report with a plot.

Settings: Variable ``flink_observability`` (limits, jobs, where alerts go), checked before anything is read.
History, incidents and reports: ``.stack/state/observability/`` (see docs/observability.md).
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG
from flink_lessons.observability.tasks import observe_task, render_report, send_alerts_task, settings_task

with DAG(
    dag_id="flink_observability",
    schedule=dt.timedelta(minutes=5),
    start_date=dt.datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,  # one writer of the history and incidents file
    # A hung run ends; a slow one may run past the next interval (max_active_runs 1, no catch-up: the next waits).
    # At load 40 on the 2-core test machine a run took over 4 minutes and the timeout killed render_report.
    dagrun_timeout=dt.timedelta(minutes=20),
    doc_md=__doc__,
    tags=["observability"],
    default_args={"retries": 1, "retry_delay": dt.timedelta(seconds=20)},
) as dag:
    settings = PythonOperator(task_id="resolve_settings", python_callable=settings_task, retries=0)
    observe = PythonOperator(task_id="observe", python_callable=observe_task, op_args=[settings.output])
    alerts = PythonOperator(
        task_id="send_alerts", python_callable=send_alerts_task, op_args=[settings.output, observe.output]
    )
    report = PythonOperator(task_id="render_report", python_callable=render_report, op_args=[observe.output])
