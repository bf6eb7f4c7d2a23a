"""Build the phase 0 and phase 1 DAGs from the provider's and the Kafka provider's operators.

A scenario DAG runs: validate_settings (the Variable, before anything else) -> create_topics ->
produce_fixture (ProduceToTopicOperator) -> per SQL script: render_<v> -> submit_<v>
(FlinkSqlGatewayOperator) -> jobs_<v> -> wait_running_<v> -> wait_finished_<v> (FlinkJobStateSensor, one
per job) -> consume_<sink> (ConsumeFromTopicOperator) -> compare_<v> -> report. Whatever happens,
find_unfinished_jobs then cancel_jobs (FlinkCancelJobOperator), teardown tasks, cancel this run's jobs that
are still alive.

Nothing here does I/O when a DAG file is parsed: files, Variables and connections are read by the tasks.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.apache.kafka.operators.consume import ConsumeFromTopicOperator
from airflow.providers.apache.kafka.operators.produce import ProduceToTopicOperator

from airflow_flink_provider.operators.savepoint import FlinkCancelJobOperator
from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator
from airflow_flink_provider.retry import FlinkRetryPolicy
from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor
from common.compare import OutputMismatchError
from common.operators import (
    VALIDATE_TASK,
    CompareOutputsOperator,
    CreateTopicsOperator,
    FindUnfinishedJobsOperator,
    JobIdsOperator,
    ObservePrintOperator,
    RenderSqlOperator,
    ReportOperator,
    ValidateSettingsOperator,
)
from common.scenarios import Scenario, ScenarioCheckError
from common.variables import VariableError

TASK_DEFAULTS: dict[str, Any] = {
    # A blip of the REST API, the gateway or Kafka fails a try, not the run: transient Flink failures are
    # retried, permanent ones (bad SQL, a missing connector, a bad setting, a wrong output) fail at once.
    "retries": 2,
    "retry_delay": timedelta(seconds=10),
    "retry_policy": FlinkRetryPolicy(fail_on=(VariableError, OutputMismatchError, ScenarioCheckError)),
}
"""``default_args`` of the phase 0 and phase 1 DAGs."""
SENSOR_POKE_SECONDS = 2
CONSUME_POLL_SECONDS = 4
"""The consumer stops after this long without a new message (the jobs have finished by then)."""


def setting(path: str) -> str:
    """A Jinja expression for a value of the validated settings, e.g. ``setting("['topics']['late_input']")``.

    :param path: subscripts into the validate task's XCom.
    """
    return "{{ ti.xcom_pull(task_ids='" + VALIDATE_TASK + "')" + path + " }}"


def prepare(scenario: Scenario, *, consumes: bool) -> tuple[Any, Any]:
    """validate_settings -> create_topics -> produce_fixture.

    :param scenario: the scenario.
    :param consumes: the DAG reads sink topics (check the consumer connection).
    :return: the validate task and the produce task.
    """
    validate = ValidateSettingsOperator(family=scenario.family.variable, consumes=consumes)
    produce = ProduceToTopicOperator(
        task_id="produce_fixture",
        kafka_config_id=setting("['values']['kafka_conn_id']"),
        topic=setting(f"['topics']['{scenario.input_topic}']"),
        producer_function="common.fixtures.fixture_messages",
        producer_function_kwargs={"path": str(scenario.fixture)},
        # One flush at the end, not one per message: the connection's idempotent producer keeps the
        # fixture's order within the partition, which the event-time scenarios depend on.
        synchronous=False,
    )
    validate >> CreateTopicsOperator(scenario=scenario.name) >> produce
    return validate, produce


def submit_and_wait(
    scenario: Scenario, variant: str, after: Any, waits: tuple[str, ...] = ("RUNNING", "FINISHED")
) -> Any:
    """render_<v> -> submit_<v> -> jobs_<v> -> one sensor per state of ``waits``, mapped over the jobs.

    :param scenario: the scenario.
    :param variant: the script.
    :param after: the task the chain starts after.
    :param waits: ``RUNNING`` (accepting FINISHED too: a bounded job may be done before the first poke)
        and/or ``FINISHED``; empty: stop after submitting.
    :return: the last task of the chain.
    """
    render = RenderSqlOperator(scenario=scenario.name, variant=variant)
    submit = FlinkSqlGatewayOperator(task_id=f"submit_{variant}", sql=render.output)
    after >> render
    if not waits:
        return submit
    jobs = JobIdsOperator(task_id=f"jobs_{variant}", submit_task_id=submit.task_id)
    submit >> jobs
    last: Any = jobs
    for state in waits:
        sensor = FlinkJobStateSensor.partial(
            task_id=f"wait_{state.lower()}_{variant}",
            target_states=("RUNNING", "FINISHED") if state == "RUNNING" else (state,),
            poke_interval=SENSOR_POKE_SECONDS,
            timeout=300,
            mode="poke",
        ).expand(job_id=jobs.output)
        last >> sensor
        last = sensor
    return last


def consume_sink(sink_name: str, topic_role: str) -> ConsumeFromTopicOperator:
    """Read a sink topic to its end; the XCom is the list of its messages.

    :param sink_name: the sink.
    :param topic_role: its topic role.
    """
    return ConsumeFromTopicOperator(
        task_id=f"consume_{sink_name}",
        kafka_config_id=setting("['values']['kafka_consumer_conn_id']"),
        topics=[setting(f"['topics']['{topic_role}']")],
        apply_function="common.compare.message_record",
        return_apply_function_results=True,
        commit_cadence="never",
        max_batch_size=1,
        poll_timeout=CONSUME_POLL_SECONDS,
    )


def cleanup(after: list[Any]) -> None:
    """find_unfinished_jobs -> cancel_jobs: teardown tasks that run after everything else, on success and on
    failure alike, and do not decide the run's state (a failed run stays failed, a good one succeeds).

    :param after: the tasks to wait for.
    """
    alive = FindUnfinishedJobsOperator()
    cancel = FlinkCancelJobOperator.partial(task_id="cancel_jobs", timeout=60).expand(job_id=alive.output)
    after >> alive
    alive.as_teardown()
    cancel.as_teardown()


def scenario_tasks(scenario: Scenario) -> None:
    """Build a bounded phase 1 scenario's tasks in the current DAG.

    :param scenario: the scenario.
    """
    _, produce = prepare(scenario, consumes=True)
    compares = []
    for variant in scenario.variants:
        finished = submit_and_wait(scenario, variant.name, produce)
        consumers = {sink.name: consume_sink(sink.name, sink.topic) for sink in variant.sinks if sink.topic}
        compare = CompareOutputsOperator(
            task_id=f"compare_{variant.name}",
            scenario=scenario.name,
            sources={name: op.task_id for name, op in consumers.items()},
        )
        finished >> list(consumers.values()) >> compare
        compares.append(compare)
    report = ReportOperator(scenario=scenario.name, compare_task_ids=[c.task_id for c in compares])
    compares >> report
    cleanup([report])


def print_scenario_tasks(scenario: Scenario) -> None:
    """Build phase 0's tasks: the job is unbounded, its output is read from the TaskManagers' stdout.

    :param scenario: the print scenario.
    """
    _, produce = prepare(scenario, consumes=False)
    running = submit_and_wait(scenario, scenario.variants[0].name, produce, waits=("RUNNING",))
    observe = ObservePrintOperator(scenario=scenario.name)
    compare = CompareOutputsOperator(task_id="compare_print", scenario=scenario.name,
                                     sources={scenario.sinks[0].name: observe.task_id})  # fmt: skip
    report = ReportOperator(scenario=scenario.name, compare_task_ids=[compare.task_id])
    running >> observe >> compare >> report
    cleanup([report])


def failure_check_tasks(scenario: Scenario) -> None:
    """Build the failure checks: each chain ends in a task that fails on purpose.

    :param scenario: the failure-check scenario.
    """
    _, produce = prepare(scenario, consumes=False)
    cleanup([
        submit_and_wait(scenario, "strict_json", produce, waits=("FINISHED",)),
        submit_and_wait(scenario, "too_many_slots", produce, waits=()),
        submit_and_wait(scenario, "bad_sql", produce, waits=()),
    ])  # fmt: skip
