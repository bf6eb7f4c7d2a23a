"""flink_deploy_sql's own steps: resolve which scenario script to submit, with which settings; pick the wait;
report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, TriggerRule, task

from flink_lessons.settings import VariableError

if TYPE_CHECKING:
    from airflow.sdk import Context


class ResolveSqlDeployOperator(BaseOperator):
    """Validate ``flink_phase4_sql`` and the scenario's own Variable (``settings`` overriding it), render the script.

    A bad value in either fails this first task, naming the key and where it came from (the Variable, the
    run conf, or ``flink_phase4_sql.settings``). Outputs (XCom keys): ``sql`` (also in the log), ``tag``,
    ``kafka_conn_id``, ``topics``, ``input_topic``, ``fixture``, ``wait_for``, ``timeout`` (seconds) and
    ``health`` (the thresholds of a RUNNING wait).
    """

    ui_color = "#fff7e6"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(multiple_outputs=True, **kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        """Resolve; see the class docstring."""
        from flink_lessons.families import SQL_DEPLOY
        from flink_lessons.scenarios import SCENARIOS, render
        from flink_lessons.settings import layers, load_variable, merge, resolve_for_task, validate

        dag_run = context["dag_run"]
        deploy = layers(SQL_DEPLOY.variable, dag_run.conf)
        merged = merge(SQL_DEPLOY, *deploy)
        values = validate(SQL_DEPLOY, merged)
        scenario = SCENARIOS.get(values["scenario"])
        if scenario is None:
            raise VariableError(f"scenario (from {merged.origin['scenario']}): unknown {values['scenario']!r}; "
                                f"known: {sorted(SCENARIOS)}")  # fmt: skip
        names = [variant.name for variant in scenario.variants]
        if values["variant"] not in names:
            raise VariableError(f"variant (from {merged.origin['variant']}): {scenario.name} has no script "
                                f"{values['variant']!r}; known: {names}")  # fmt: skip
        family = scenario.family
        overrides = (f"'settings' in {merged.origin['settings']}", values["settings"])
        settings = resolve_for_task(family, context, (f"Variable '{family.variable}'", load_variable(family.variable)),
                                    overrides)  # fmt: skip
        sql = render(scenario, scenario.variant(values["variant"]), settings)
        self.log.info("Rendered %s/%s:\n%s", scenario.name, values["variant"], sql)
        timeout = values["timeout"].seconds
        return {
            "sql": sql,
            "tag": settings.tag,
            "kafka_conn_id": settings["kafka_conn_id"],
            "topics": [settings.topics[role] for role in scenario.topics()],
            "input_topic": settings.topics[scenario.input_topic],
            "fixture": {"path": str(scenario.fixture)},
            "wait_for": values["wait_for"],
            "timeout": timeout,
            "health": {"min_checkpoints": 0, "stable_for": 0, "max_restarts": values["max_restarts"],
                       "timeout": timeout, "poll_interval": 2},
        }  # fmt: skip




@task.branch
def choose_wait(wait_for: str) -> str:
    """``wait_finished`` for bounded scripts, ``watch_running`` for streaming ones (the ``wait_for`` setting)."""
    return "wait_finished" if wait_for == "FINISHED" else "watch_running"


@task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
def report(job_ids: Sequence[str], topics: Sequence[str], wait_for: str) -> dict[str, Any]:
    """What runs (or ran) and where its output goes; the run's state follows this task."""
    import logging

    log = logging.getLogger("airflow.task")
    done = "finished" if wait_for == "FINISHED" else "run healthy, and keep running"
    log.info("Jobs %s %s. Topics of this run: %s", ", ".join(job_ids), done, ", ".join(topics))
    return {"job_ids": list(job_ids), "topics": list(topics), "wait_for": wait_for}
