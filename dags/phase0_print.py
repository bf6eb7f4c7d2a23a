"""Phase 0: Kafka -> Flink SQL -> print sink, observed through Flink's REST API.

The order fixture (include/sql/phase0_print/input.jsonl) goes to Kafka, print.sql.j2 runs through the SQL
Gateway, and once the job runs, ``observe_print_output`` reads this attempt's print-sink lines from the
TaskManagers' stdout (``/taskmanagers/<id>/stdout``) into its log; ``compare_print`` checks them against
expected/print.txt. The job is unbounded: the clean-up teardown cancels it. Settings: Variable
``flink_phase0`` (docs/local-setup.md). Try ``airflow dags test flink_phase0_print``.
"""

from __future__ import annotations

from airflow.providers.apache.kafka.operators.produce import ProduceToTopicOperator
from airflow.sdk import DAG
from flink_lessons.operators.jobs import FindUnfinishedJobsOperator, JobIdsOperator
from flink_lessons.operators.kafka import CreateTopicsOperator
from flink_lessons.operators.scenario import (
    CompareOutputsOperator,
    ObservePrintOperator,
    RenderSqlOperator,
    ReportOperator,
    ValidateSettingsOperator,
)
from flink_lessons.scenario_dag import CANCEL, DAG_ARGS, STARTED, compared, fixture, reported, script, topics
from flink_lessons.scenarios import PHASE0_PRINT as SCENARIO

from airflow_flink_provider.operators.savepoint import FlinkCancelJobOperator
from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator
from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor

with DAG(dag_id=SCENARIO.dag_id, tags=["flink", "phase0"], doc_md=__doc__, **DAG_ARGS) as dag:
    settings = ValidateSettingsOperator(task_id="validate_settings", scenario=SCENARIO.name)
    create_topics = CreateTopicsOperator(task_id="create_topics", **topics(settings))
    produce = ProduceToTopicOperator(task_id="produce_fixture", **fixture(SCENARIO, settings))
    render = RenderSqlOperator(task_id="render_print", **script(SCENARIO, "print", settings))
    submit = FlinkSqlGatewayOperator(task_id="submit_print", sql=render.output["sql"])
    jobs = JobIdsOperator(task_id="jobs_print", outcome=submit.output)
    running = FlinkJobStateSensor.partial(task_id="wait_running_print", **STARTED).expand(job_id=jobs.output)
    observe = ObservePrintOperator(task_id="observe_print_output", scenario=SCENARIO.name,
                                   settings=settings.output["settings"],
                                   print_identifier=render.output["print_identifier"])  # fmt: skip
    compare = CompareOutputsOperator(
        task_id="compare_print", **compared(SCENARIO, settings, render, {"print": observe})
    )
    report = ReportOperator(task_id="report", **reported(SCENARIO, settings, compare))
    # The print job is unbounded: the clean-up (teardown tasks) cancels it once everything else is done.
    unfinished = FindUnfinishedJobsOperator(task_id="find_unfinished_jobs", tag=settings.output["tag"])
    cancel = FlinkCancelJobOperator.partial(task_id="cancel_jobs", **CANCEL).expand(job_id=unfinished.output)

    settings >> create_topics >> produce >> render.as_setup() >> submit >> jobs >> running >> observe >> compare
    compare >> report >> unfinished.as_teardown() >> cancel.as_teardown()
