"""The builder of the phase 0/1 scenario DAGs: each step is one call, and a DAG file chains them.

.. code-block:: python

    with lesson_dag(DEDUP, doc=__doc__, tags=["phase1"]) as lesson:
        lesson.prepare() >> lesson.run("dedup", "RUNNING", "FINISHED") >> lesson.check("dedup") >> lesson.report()

builds, in order:

- ``prepare()``: ``validate_settings`` (the Variable and the run conf, before anything else) >>
  ``create_topics`` >> ``produce_fixture`` (the Kafka provider's ProduceToTopicOperator);
- ``run(variant, *states)``: ``render_<variant>`` (a setup task: clearing the submit renders again, see
  :class:`~flink_lessons.operators.scenario.RenderSqlOperator`) >> ``submit_<variant>``
  (FlinkSqlGatewayOperator) >> ``jobs_<variant>`` >> ``wait_<state>_<variant>`` per state
  (FlinkJobStateSensor, deferrable, one per job);
- ``check(variant)``: ``consume_<sink>`` per Kafka sink (ConsumeFromTopicOperator), or
  ``observe_print_output`` for the print sink, >> ``compare_<variant>``;
- ``report()``: ``report``, the scenario's own accounting;
- when the ``with`` block ends, the clean-up: ``find_unfinished_jobs`` >> ``cancel_jobs``
  (FlinkCancelJobOperator), teardown tasks that run after everything else, whatever failed, and cancel this
  run's jobs that are still alive. They do not decide the run's state.

Nothing here does I/O: files, Variables and connections are read by the tasks, at run time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow.providers.apache.kafka.operators.consume import ConsumeFromTopicOperator
from airflow.providers.apache.kafka.operators.produce import ProduceToTopicOperator
from airflow.sdk import DAG
from airflow.sdk.definitions._internal.mixins import DependencyMixin

from airflow_flink_provider.operators.savepoint import FlinkCancelJobOperator
from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator
from airflow_flink_provider.retry import FlinkRetryPolicy
from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor
from flink_lessons.compare import OutputMismatchError
from flink_lessons.operators.jobs import FindUnfinishedJobsOperator, JobIdsOperator
from flink_lessons.operators.kafka import CreateTopicsOperator
from flink_lessons.operators.scenario import (
    CompareOutputsOperator,
    ObservePrintOperator,
    RenderSqlOperator,
    ReportOperator,
    ValidateSettingsOperator,
)
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
WAIT = {"poke_interval": 2, "timeout": 300, "deferrable": True}
"""The job-state sensors: deferrable (the triggerer polls, no worker slot is held)."""
CONSUME_POLL_SECONDS = 4
"""The consumer stops after this long without a new message (the jobs have finished by then)."""


@dataclass
class Steps(DependencyMixin):
    """A chain of tasks that ``>>`` links as one: from its last tasks, to its first.

    :param first: the tasks that start it.
    :param last: the tasks that end it.
    """

    first: list[Any]
    last: list[Any]

    @property
    def roots(self) -> list[Any]:
        """The tasks that start it."""
        return self.first

    @property
    def leaves(self) -> list[Any]:
        """The tasks that end it."""
        return self.last

    def set_upstream(self, other: Any, edge_modifier: Any = None) -> None:
        """Make ``other`` run before the chain."""
        for task in self.first:
            task.set_upstream(other, edge_modifier)

    def set_downstream(self, other: Any, edge_modifier: Any = None) -> None:
        """Make ``other`` run after the chain."""
        for task in self.last:
            task.set_downstream(other, edge_modifier)


@dataclass
class Lesson:
    """One scenario DAG under construction (see the module docstring).

    :param scenario: the scenario it runs.
    :param dag: the DAG.
    """

    scenario: Scenario
    dag: DAG
    settings: Any = None
    renders: dict[str, Any] = field(default_factory=dict)
    compares: list[Any] = field(default_factory=list)

    def prepare(self) -> Steps:
        """validate_settings >> create_topics >> produce_fixture."""
        self.settings = ValidateSettingsOperator(task_id="validate_settings", scenario=self.scenario.name)
        topics = CreateTopicsOperator(task_id="create_topics", kafka_config_id=self.output("kafka_conn_id"),
                                      topics=self.output("topics"))  # fmt: skip
        produce = ProduceToTopicOperator(
            task_id="produce_fixture",
            kafka_config_id=self.output("kafka_conn_id"),
            topic=self.output(f"topic.{self.scenario.input_topic}"),
            producer_function="flink_lessons.fixtures.fixture_messages",
            producer_function_kwargs={"path": str(self.scenario.fixture)},
            # One flush at the end, not one per message: the connection's idempotent producer keeps the
            # fixture's order within the partition, which the event-time scenarios depend on.
            synchronous=False,
        )
        self.settings >> topics >> produce
        return Steps([self.settings], [produce])

    def output(self, key: str) -> Any:
        """An output of ``validate_settings`` (an XComArg).

        :param key: its XCom key.
        """
        assert self.settings is not None, "prepare() comes first"
        return self.settings.output[key]

    def run(self, variant: str, *states: str) -> Steps:
        """render_<v> (setup) >> submit_<v> [>> jobs_<v> >> wait_<state>_<v>, one sensor per job and state].

        :param variant: the script.
        :param states: ``RUNNING`` (FINISHED also passes: a bounded job may be done before the first poke)
            and/or ``FINISHED``; none: stop after submitting.
        """
        render = RenderSqlOperator(task_id=f"render_{variant}", scenario=self.scenario.name, variant=variant,
                                   settings=self.output("settings"),
                                   consumer_conn_id=self.output("consumer_conn_id"))  # fmt: skip
        self.renders[variant] = render
        submit = FlinkSqlGatewayOperator(task_id=f"submit_{variant}", sql=render.output["sql"])
        render.as_setup() >> submit
        if not states:
            return Steps([render], [submit])
        last: Any = JobIdsOperator(task_id=f"jobs_{variant}", outcome=submit.output)
        job_ids = last.output
        for state in states:
            targets = ("RUNNING", "FINISHED") if state == "RUNNING" else (state,)
            sensor = FlinkJobStateSensor.partial(task_id=f"wait_{state.lower()}_{variant}", target_states=targets,
                                                 **WAIT).expand(job_id=job_ids)  # fmt: skip
            last >> sensor
            last = sensor
        return Steps([render], [last])

    def check(self, variant: str) -> Steps:
        """consume_<sink> per Kafka sink, or observe_print_output, >> compare_<v>.

        :param variant: the script whose sinks to check.
        """
        render = self.renders[variant]
        sinks = self.scenario.variant(variant).sinks
        readers = {sink.name: self.read(sink.name, sink.topic, render) for sink in sinks}
        compare = CompareOutputsOperator(task_id=f"compare_{variant}", scenario=self.scenario.name,
                                         settings=self.output("settings"),
                                         outputs={name: reader.output for name, reader in readers.items()},
                                         output_starts=render.output["output_starts"])  # fmt: skip
        list(readers.values()) >> compare
        self.compares.append(compare)
        return Steps(list(readers.values()), [compare])

    def read(self, sink: str, topic: str | None, render: Any) -> Any:
        """The task that reads a sink's output: its topic to the end, or the print sink's lines.

        :param sink: the sink's name.
        :param topic: its topic role; ``None`` for the print sink.
        :param render: the render task of its script.
        """
        if topic is None:
            return ObservePrintOperator(task_id="observe_print_output", scenario=self.scenario.name,
                                        settings=self.output("settings"),
                                        print_identifier=render.output["print_identifier"])  # fmt: skip
        return ConsumeFromTopicOperator(
            task_id=f"consume_{sink}",
            kafka_config_id=self.output("consumer_conn_id"),
            topics=[self.output(f"topic.{topic}")],
            apply_function="flink_lessons.compare.message_record",
            return_apply_function_results=True,
            commit_cadence="never",
            max_batch_size=1,
            poll_timeout=CONSUME_POLL_SECONDS,
        )

    def report(self) -> Any:
        """report: rows per sink and the scenario's accounting, from every compare task built so far."""
        return ReportOperator(task_id="report", scenario=self.scenario.name, settings=self.output("settings"),
                              rows=[compare.output for compare in self.compares])  # fmt: skip

    def clean_up(self, after: Iterable[Any]) -> None:
        """find_unfinished_jobs >> cancel_jobs, teardown tasks after everything else.

        :param after: the tasks to wait for.
        """
        alive = FindUnfinishedJobsOperator(task_id="find_unfinished_jobs", tag=self.output("tag"))
        cancel = FlinkCancelJobOperator.partial(task_id="cancel_jobs", timeout=60).expand(job_id=alive.output)
        list(after) >> alive >> cancel
        alive.as_teardown()
        cancel.as_teardown()


@contextlib.contextmanager
def lesson_dag(scenario: Scenario, *, doc: str | None, tags: Sequence[str]) -> Iterator[Lesson]:
    """The DAG of a scenario, with its defaults; the ``with`` block builds its steps, then the clean-up follows.

    :param scenario: the scenario.
    :param doc: the DAG file's docstring, shown in the UI.
    :param tags: tags besides ``flink``.
    """
    with DAG(dag_id=scenario.dag_id, schedule=None, start_date=dt.datetime(2024, 1, 1), catchup=False,
             max_active_runs=1, default_args=TASK_DEFAULTS, tags=["flink", *tags], doc_md=doc) as dag:  # fmt: skip
        lesson = Lesson(scenario, dag)
        yield lesson
        lesson.clean_up(dag.leaves)
