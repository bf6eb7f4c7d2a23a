"""What the phase 4 DAG files share: the DAG's arguments, how submits retry, how waits wait, and the
arguments that hand a resolved PyFlink version to ``FlinkJobSubmitOperator``.

.. code-block:: python

    resolved = ResolvePyflinkOperator(task_id="resolve_settings", purpose="deploy")
    submit = FlinkJobSubmitOperator(task_id="submit_job", **program(resolved, resolved), **SUBMIT)
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow_flink_provider.retry import FlinkRetryPolicy

DAG_ARGS: dict[str, Any] = {"schedule": None, "start_date": dt.datetime(2025, 1, 1), "catchup": False,
                            "max_active_runs": 1}  # fmt: skip
"""Phase 4 DAGs are triggered by hand (or by another system), one run at a time."""

SUBMIT: dict[str, Any] = {"retries": 2, "retry_delay": dt.timedelta(seconds=5), "retry_policy": FlinkRetryPolicy()}
"""Submits retry transient failures (the job id is fixed, so a retry attaches to the job it started) and fail
permanent ones at once (a bad argument, state the version cannot restore)."""

WAIT_RUNNING: dict[str, Any] = {"target_states": ["RUNNING"], "deferrable": True, "poke_interval": 2, "timeout": 600}
"""``FlinkJobStateSensor``: until every task of the job runs; the triggerer polls, no worker slot is held."""

WAIT_STARTED: dict[str, Any] = {**WAIT_RUNNING, "target_states": ["RUNNING", "FINISHED"]}
"""Until every task runs, or the job already finished (a bounded job may be done before the first poke)."""

STATUS: dict[str, Any] = {"retries": 2, "retry_delay": dt.timedelta(seconds=5), "retry_policy": FlinkRetryPolicy()}
"""``FlinkJobStatusOperator``: a REST blip is retried; when Flink stays unreachable the decision downstream
gets no status (``None``) and says so."""

GATE: dict[str, Any] = {"deferrable": True}
"""The health gate waits in the triggerer too; its thresholds come from the run's settings."""


def program(version: Any, resolved: Any, job_id: str = "job_id") -> dict[str, Any]:
    """The arguments of ``FlinkJobSubmitOperator`` that run one version: program, arguments, name, job id.

    :param version: the task whose outputs describe the version (``py_file``, ``program_args``, ``job_name``
        and a job id).
    :param resolved: the resolve task (its ``python_jar``).
    :param job_id: the output of ``version`` that holds the job id to submit under.
    """
    return {"py_file": version.output["py_file"], "program_args": version.output["program_args"],
            "job_name": version.output["job_name"], "job_id": version.output[job_id],
            "python_jar": resolved.output["python_jar"]}  # fmt: skip
