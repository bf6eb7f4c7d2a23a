"""What the phase 0/1 DAGs (``dags/phase0_1_scenarios.py``) share: the DAG's arguments, how their tasks retry
and their waits wait, and the arguments that wire a task to the outputs of ``validate_settings`` (XComArgs,
never task-id strings).

The DAG file shows the graph (its docstring lists the steps); these helpers only fill in arguments:

.. code-block:: python

    settings = ValidateSettingsOperator(task_id="validate_settings", scenario=DEDUP.name)
    produce = ProduceToTopicOperator(task_id="produce_fixture", **fixture(DEDUP, settings))
    render = RenderSqlOperator(task_id="render_dedup", **script(DEDUP, "dedup", settings))

Nothing here does I/O: files, Variables and connections are read by the tasks, at run time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from airflow_flink_provider.retry import FlinkRetryPolicy
from flink_lessons.compare import OutputMismatchError
from flink_lessons.reports import ScenarioCheckError
from flink_lessons.scenarios import Scenario
from flink_lessons.settings import VariableError

TASK_DEFAULTS: dict[str, Any] = {
    # A blip of the REST API, the gateway or Kafka fails a try, not the run: transient Flink failures are
    # retried, permanent ones (bad SQL, a missing connector, a bad setting, a wrong output) fail at once.
    "retries": 2,
    "retry_delay": dt.timedelta(seconds=10),
    "retry_policy": FlinkRetryPolicy(fail_on=(VariableError, OutputMismatchError, ScenarioCheckError)),
}
"""``default_args`` of the phase 0 and phase 1 DAGs."""

DAG_ARGS: dict[str, Any] = {"schedule": None, "start_date": dt.datetime(2024, 1, 1), "catchup": False,
                            "max_active_runs": 1, "default_args": TASK_DEFAULTS}  # fmt: skip
"""Triggered by hand, one run at a time."""

WAIT: dict[str, Any] = {"poke_interval": 2, "timeout": 300, "deferrable": True}
"""The job-state sensors: deferrable (the triggerer polls, no worker slot is held)."""

STARTED: dict[str, Any] = {**WAIT, "target_states": ("RUNNING", "FINISHED")}
"""Until every task of the job runs (a bounded job may be done before the first poke: FINISHED passes too)."""

FINISHED: dict[str, Any] = {**WAIT, "target_states": ("FINISHED",)}
"""Until a bounded job has finished (every row is in its sinks)."""

CANCEL: dict[str, Any] = {"timeout": 60}
"""``cancel_jobs``: how long a cancel may take."""

CONSUME_POLL_SECONDS = 4
"""The consumer stops after this long without a new message (the jobs have finished by then)."""


def topics(settings: Any) -> dict[str, Any]:
    """``CreateTopicsOperator``'s arguments: the run's topics on the run's Kafka connection.

    :param settings: the ``validate_settings`` task.
    """
    return {"kafka_config_id": settings.output["kafka_conn_id"], "topics": settings.output["topics"]}


def fixture(scenario: Scenario, settings: Any) -> dict[str, Any]:
    """``ProduceToTopicOperator``'s arguments: the scenario's fixture to the run's input topic.

    :param scenario: the scenario.
    :param settings: the ``validate_settings`` task.
    """
    return {
        "kafka_config_id": settings.output["kafka_conn_id"],
        "topic": settings.output[f"topic.{scenario.input_topic}"],
        "producer_function": "flink_lessons.fixtures.fixture_messages",
        "producer_function_kwargs": {"path": str(scenario.fixture)},
        # One flush at the end, not one per message: the connection's idempotent producer keeps the
        # fixture's order within the partition, which the event-time scenarios depend on.
        "synchronous": False,
    }


def script(scenario: Scenario, variant: str, settings: Any) -> dict[str, Any]:
    """``RenderSqlOperator``'s arguments: one script of the scenario, with the run's settings.

    :param scenario: the scenario.
    :param variant: the script.
    :param settings: the ``validate_settings`` task.
    """
    return {"scenario": scenario.name, "variant": variant, "settings": settings.output["settings"],
            "consumer_conn_id": settings.output["consumer_conn_id"]}  # fmt: skip


def sink(settings: Any, topic: str) -> dict[str, Any]:
    """``ConsumeFromTopicOperator``'s arguments: read a sink topic to its end, one record per message.

    :param settings: the ``validate_settings`` task.
    :param topic: the sink's topic role.
    """
    return {
        "kafka_config_id": settings.output["consumer_conn_id"],
        "topics": [settings.output[f"topic.{topic}"]],
        "apply_function": "flink_lessons.compare.message_record",
        "return_apply_function_results": True,
        "commit_cadence": "never",
        "max_batch_size": 1,
        "poll_timeout": CONSUME_POLL_SECONDS,
    }


def compared(scenario: Scenario, settings: Any, render: Any, outputs: Mapping[str, Any]) -> dict[str, Any]:
    """``CompareOutputsOperator``'s arguments: each sink's rows against the expected rows.

    :param scenario: the scenario.
    :param settings: the ``validate_settings`` task.
    :param render: the script's render task (where each sink topic's output of this attempt starts).
    :param outputs: sink name -> the task that read it.
    """
    return {"scenario": scenario.name, "settings": settings.output["settings"],
            "outputs": {name: task.output for name, task in outputs.items()},
            "output_starts": render.output["output_starts"]}  # fmt: skip


def reported(scenario: Scenario, settings: Any, *compares: Any) -> dict[str, Any]:
    """``ReportOperator``'s arguments: the rows every compare task found.

    :param scenario: the scenario.
    :param settings: the ``validate_settings`` task.
    :param compares: the compare tasks.
    """
    return {"scenario": scenario.name, "settings": settings.output["settings"],
            "rows": [compare.output for compare in compares]}  # fmt: skip
