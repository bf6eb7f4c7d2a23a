"""flink_deploy_sql: submit a phase 1 SQL scenario (include/sql) through the SQL Gateway and watch its jobs.

Which scenario and script, what state to wait for and how many restarts to tolerate come from the Variable
``flink_phase4_sql`` (run conf keys override it for one run). The scenario's own settings (topics, window
size and slide, watermark delay, parallelism) come from its Variable (``flink_phase1``), overridden by
``flink_phase4_sql.settings``: change a window there and the next run uses it. Nothing is read at parse time.

``resolve_settings`` validates both Variables and renders the script; ``create_topics`` and
``produce_fixture`` prepare this run's topics (suffixed with the run tag) and the scenario's events;
``submit_sql`` runs the script in one gateway session (each job gets a job id derived from the run: a retry
attaches, it never submits twice); ``wait_running`` polls until the jobs run; ``watch_jobs`` follows them
to ``wait_for`` and fails with the root cause on a failure or too many restarts; ``report`` says what runs
and where its output goes; ``cancel_on_failure`` cancels this run's jobs when anything failed (``report``
then fails the run: the clean-up task succeeding does not make it green).

Try it: ``airflow dags test flink_deploy_sql -c '{"settings": {"window_size": "20s", "window_slide": "10s"}}'``.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.providers.apache.kafka.operators.produce import ProduceToTopicOperator
from airflow.sdk import DAG, TriggerRule, task
from airflow.sdk.exceptions import AirflowFailException

# The DAG processor puts the dags folder on sys.path, a plain DagBag does not.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parent))

from common import phase4

from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator
from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor

log = logging.getLogger("airflow.task")

with DAG(
    dag_id="flink_deploy_sql",
    schedule=None,
    start_date=dt.datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["flink", "phase4", "sql"],
    doc_md=__doc__,
) as dag:

    @task(multiple_outputs=True)
    def resolve_settings(**context: Any) -> dict[str, Any]:
        """Validate flink_phase4_sql and the scenario's Variable; render the script."""
        from common.scenarios import SCENARIOS, render
        from common.variables import VariableError, load_variable, resolve, run_tag

        dag_run = context["dag_run"]
        values = phase4.validate(
            phase4.SQL_RULES,
            phase4.merge(
                phase4.SQL_RULES,
                (f"Variable '{phase4.SQL_VARIABLE}'", phase4.read_json_variable(phase4.SQL_VARIABLE)),
                ("the run conf", dag_run.conf or {}),
            ),
            phase4.SQL_VARIABLE,
        )
        scenario = SCENARIOS.get(values["scenario"])
        if scenario is None:
            raise VariableError(f"scenario: unknown {values['scenario']!r}; known: {sorted(SCENARIOS)}")
        names = [variant.name for variant in scenario.variants]
        if values["variant"] not in names:
            raise VariableError(f"variant: {scenario.name} has no script {values['variant']!r}; known: {names}")
        family = scenario.family
        base = load_variable(family.variable) or {}
        overrides = values["settings"] or {}
        merged = {**base, **overrides, "topics": {**base.get("topics", {}), **overrides.get("topics", {})}}
        settings = resolve(
            family,
            merged,
            None,
            tag=run_tag(dag_run.dag_id, dag_run.run_id),
            connection_bootstrap=phase4.kafka_bootstrap,
        )
        sql = render(scenario, scenario.variant(values["variant"]), settings)
        log.info("Rendered %s/%s:\n%s", scenario.name, values["variant"], sql)
        return {
            "sql": sql,
            "kafka_conn_id": settings.values["kafka_conn_id"],
            "topics": [settings.topics[role] for role in scenario.topics()],
            "input_topic": settings.topics[scenario.input_topic],
            "fixture": {"path": str(scenario.fixture)},
            "watch": {"wait_for": values["wait_for"], "max_restarts": values["max_restarts"],
                      "timeout": values["timeout"].ms / 1000},
        }  # fmt: skip

    @task
    def create_topics(kafka_conn_id: str, topics: list[str]) -> list[str]:
        """This run's topics, one partition each (the scenarios' event order depends on it)."""
        from airflow.providers.apache.kafka.hooks.client import KafkaAdminClientHook

        KafkaAdminClientHook(kafka_config_id=kafka_conn_id).create_topic([(name, 1, 1) for name in topics])
        return topics

    @task
    def job_ids(outcome: dict[str, Any]) -> list[str]:
        """The jobs the script submitted."""
        if not outcome["job_ids"]:
            raise AirflowFailException("The script submitted no job")
        return list(outcome["job_ids"])

    @task
    def watch_jobs(ids: list[str], watch: dict[str, Any], **context: Any) -> list[dict[str, Any]]:
        """Follow every job to ``wait_for``; fail with the root cause on a failure or too many restarts."""
        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

        hook = FlinkRestHook()
        outcomes = [
            phase4.watch_until(hook, job_id, watch["wait_for"], max_restarts=watch["max_restarts"],
                               timeout=watch["timeout"], poll=2, log=log)
            for job_id in ids
        ]  # fmt: skip
        failed = [o for o in outcomes if not o["ok"]]
        for outcome in outcomes:
            log.info("Job %(job_id)s: %(reason)s, %(restarts)d restart(s), %(checkpoints)d checkpoint(s)", outcome)
        if failed:
            raise AirflowFailException(
                "; ".join(f"job {o['job_id']} {o['reason']} (root cause: {o['root_cause']})" for o in failed)
            )
        return outcomes

    @task
    def report(outcomes: list[dict[str, Any]], topics: list[str]) -> dict[str, Any]:
        """What runs (or ran) and where its output is; the run's state follows this task."""
        for outcome in outcomes:
            log.info("Job %s: %s", outcome["job_id"], outcome["reason"])
        log.info("Topics of this run: %s", ", ".join(topics))
        return {"jobs": outcomes, "topics": topics}

    @task(trigger_rule=TriggerRule.ONE_FAILED)
    def cancel_on_failure(**context: Any) -> list[str]:
        """Something failed: cancel this run's jobs that still run."""
        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

        outcome = context["ti"].xcom_pull(task_ids="submit_sql") or {}
        hook = FlinkRestHook()
        for job_id in outcome.get("job_ids", []):
            phase4.ensure_stopped(hook, job_id, log)
        return list(outcome.get("job_ids", []))

    resolved = resolve_settings()
    topics = create_topics(resolved["kafka_conn_id"], resolved["topics"])
    produce = ProduceToTopicOperator(
        task_id="produce_fixture",
        kafka_config_id=resolved["kafka_conn_id"],
        topic=resolved["input_topic"],
        producer_function="common.fixtures.fixture_messages",
        producer_function_kwargs=resolved["fixture"],
        # One flush at the end, not one per message: the connection's idempotent producer keeps the
        # fixture's order within the partition, which the event-time scenarios depend on.
        synchronous=False,
    )
    submit = FlinkSqlGatewayOperator(
        task_id="submit_sql",
        sql=resolved["sql"],
        retries=2,
        retry_delay=timedelta(seconds=5),
        retry_policy=phase4.FlinkRetryPolicy(),
    )
    topics >> produce >> submit
    ids = job_ids(submit.output)
    wait_running = FlinkJobStateSensor.partial(
        task_id="wait_running",
        target_states=["RUNNING", "FINISHED"],
        # Poke, not deferrable: the wait is seconds long, and `airflow dags test` runs triggers in a process
        # that cannot read connections stored in the metadata database.
        mode="poke",
        poke_interval=2,
        timeout=600,
    ).expand(job_id=ids)
    watched = watch_jobs(ids, resolved["watch"])
    wait_running >> watched >> [report(watched, topics), cancel_on_failure()]
