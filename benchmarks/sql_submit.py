"""2. SQL submission: FlinkSqlGatewayOperator against ``sql-client.sh gateway -f`` for the same script.

The script is the phase-0 scenario (``include/sql/phase0_print/print.sql.j2``) rendered the way its DAG
renders it (``flink_lessons.scenarios``), with fresh topics per run; ``--sql-script`` takes another one.
Both methods get the same rendered text:

- ``operator``: FlinkSqlGatewayOperator(sql=<script>) run as a task (``taskrun``), default ``wait_for=None``.
- ``cli``: a BashOperator running ``sql-client.sh gateway --endpoint 127.0.0.1:8083 -f <file>``.

The headline figure is the task's duration: both return once every statement ran and the job is
submitted. The time until the job is RUNNING (polled at the same interval after each returns) is given too.
"""

from __future__ import annotations

import argparse
import shlex
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from benchmarks import env
from benchmarks.core import BenchResult, Sample, Target, interleave, median, ratio, record_methods
from benchmarks.httprec import HttpRecorder, group_calls
from benchmarks.pyflink_submit import flink_clock, flink_clock_figures
from benchmarks.taskrun import bench_dag, run_task


@dataclass
class Script:
    """A rendered script, the topics it needs and the marker in its job's name.

    :param text: the SQL.
    :param topics: topics to create before it runs.
    :param marker: a unique part of its job's ``pipeline.name``.
    """

    text: str
    topics: list[str]
    marker: str


def phase0_script(tag: str) -> Script:
    """The phase-0 scenario rendered by the project's own renderer with run tag ``tag``.

    :param tag: the run tag (8 hex digits, like a DAG run's): it suffixes topics and the job name.
    """
    from flink_lessons.scenarios import SCENARIOS, render
    from flink_lessons.settings import resolve

    scenario = SCENARIOS["phase0_print"]
    variant = scenario.variants[0]
    settings = resolve(scenario.family, tag=tag, connection_bootstrap=lambda conn_id: env.BOOTSTRAP)
    topics = [settings.topics[role] for role in scenario.topics()]
    return Script(render(scenario, variant, settings), topics, tag)


def custom_script(path: Path, params: list[str], tag: str) -> Script:
    """A user's script (``--sql-script``), rendered with Jinja: ``job_name``, ``bootstrap_servers``, ``tag`` and
    each ``--sql-param KEY=VALUE``. Topics it reads must exist.

    :param path: the script.
    :param params: ``KEY=VALUE`` strings.
    :param tag: the run tag.
    """
    import jinja2

    values: dict[str, str] = {"job_name": f"bench-sql-{tag}", "bootstrap_servers": env.BOOTSTRAP, "tag": tag}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--sql-param must be KEY=VALUE, got {item!r}")
        values[key] = value
    template = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False).from_string(path.read_text())
    return Script(template.render(**values), [], tag)


class SqlMethods:
    """The two ways of running the script, each returning a timed :class:`Sample`."""

    def __init__(self, opts: argparse.Namespace, workdir: Path) -> None:
        self.opts = opts
        self.workdir = workdir
        self.poll = opts.poll_interval
        self.cli_env, self.notes = env.flink_cli_env()
        self.http = HttpRecorder()
        self.topics: list[str] = []
        self.last_jobs: list[str] = []

    def script(self) -> Script:
        """A freshly rendered script with its own topics (created now, outside the timing)."""
        tag = uuid.uuid4().hex[:8]
        env.JOBS.add_marker(tag)
        if self.opts.sql_script:
            script = custom_script(Path(self.opts.sql_script), self.opts.sql_param, tag)
        else:
            script = phase0_script(tag)
        if script.topics:
            env.create_topics(script.topics)
            self.topics += script.topics
        return script

    def _jobs_named(self, marker: str) -> list[str]:
        return [job["jid"] for job in env.list_jobs() if marker in str(job.get("name", ""))]

    def operator(self) -> Sample:
        """FlinkSqlGatewayOperator as a task."""
        from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator

        script = self.script()
        with bench_dag("bench_sql_submit"):
            task = FlinkSqlGatewayOperator(task_id="run_sql", sql=script.text, poll_interval=self.poll)
        began_epoch = time.time()
        with self.http.active():
            outcome = run_task(task)
        calls = self.http.take()
        returned = outcome.ended
        jobs = list(outcome.result.get("job_ids", [])) if isinstance(outcome.result, dict) else []
        self.last_jobs = [env.JOBS.add(j) for j in jobs or self._jobs_named(script.marker)]
        if outcome.error is not None:
            raise outcome.error
        if not jobs:
            raise RuntimeError("the operator returned no job id")
        running = max(env.wait_running(job, poll=self.poll, timeout=self.opts.submit_timeout) for job in jobs)
        phases = {f"{c['call']} (x{c['count']})": c["total_s"] for c in group_calls(calls)}
        phases["returned -> RUNNING (poll)"] = running - returned
        to_running = running - outcome.started
        detail = {"job_ids": jobs, "http_calls": len(calls), "to_running_s": to_running}
        return Sample(outcome.seconds, phases, {**detail, **flink_clock(jobs[-1], began_epoch, to_running)})

    def cli(self) -> Sample:
        """A BashOperator running ``sql-client.sh gateway -f``."""
        from airflow.providers.standard.operators.bash import BashOperator

        script = self.script()
        path = self.workdir / f"{script.marker}.sql"
        path.write_text(script.text)
        endpoint = f"{env.HOST}:{env.PORTS['sql_gateway']}"
        command = shlex.join(
            [str(env.FLINK_HOME / "bin" / "sql-client.sh"), "gateway", "--endpoint", endpoint, "-f", str(path)]
        )
        with bench_dag("bench_sql_submit"):
            task = BashOperator(task_id="sql_client", bash_command=command, env=self.cli_env, append_env=False,
                                cwd=str(self.workdir))  # fmt: skip
        began_epoch = time.time()
        outcome = run_task(task)
        jobs = self._jobs_named(script.marker)
        self.last_jobs = [env.JOBS.add(j) for j in jobs]
        if outcome.error is not None:
            raise outcome.error
        if not jobs:
            raise LookupError(f"sql-client.sh exited but no job named *{script.marker}* is on the cluster")
        running = max(env.wait_running(job, poll=self.poll, timeout=self.opts.submit_timeout) for job in jobs)
        return Sample(
            outcome.seconds,
            {"sql-client.sh (process)": outcome.seconds, "exit -> RUNNING (poll)": running - outcome.ended},
            {
                "job_ids": jobs,
                "to_running_s": running - outcome.started,
                **flink_clock(jobs[-1], began_epoch, running - outcome.started),
            },
        )

    def cleanup(self, method: str, sample: Sample | None) -> None:
        """Cancel the jobs of the last run."""
        for job in self.last_jobs:
            env.JOBS.cancel(job)
        self.last_jobs = []


def run(opts: argparse.Namespace) -> BenchResult:
    """Measure and compare the operator and the SQL client.

    :param opts: ``repeats``, ``warmup``, ``poll_interval``, ``submit_timeout``, ``sql_script``, ``sql_param``.
    """
    result = BenchResult("sql_submit", "SQL script: FlinkSqlGatewayOperator vs `sql-client.sh gateway -f`")
    with tempfile.TemporaryDirectory(prefix="bench-sql-") as tmp:
        methods = SqlMethods(opts, Path(tmp))
        result.notes += methods.notes
        result.notes.append(f"script: {opts.sql_script or 'include/sql/phase0_print/print.sql.j2 (phase-0 scenario)'}")
        try:
            samples, errors = interleave(
                {"operator": methods.operator, "cli": methods.cli},
                repeats=opts.repeats,
                warmup=opts.warmup,
                between=methods.cleanup,
            )
        finally:
            env.delete_topics(methods.topics)
    record_methods(result, samples, errors)
    flink_clock_figures(result, samples)
    for method, runs in samples.items():
        to_running = [s.detail["to_running_s"] for s in runs if "to_running_s" in s.detail]
        if to_running:
            result.figure(f"{method}_to_running_median_s", median(to_running), "s")
    op, cli = result.figures.get("operator_median_s"), result.figures.get("cli_median_s")
    result.figure("speedup_vs_cli", ratio(cli, op), "x")
    result.figure(
        "speedup_to_running",
        ratio(result.figures.get("cli_to_running_median_s"), result.figures.get("operator_to_running_median_s")),
        "x",
    )
    result.targets = [Target("speedup_vs_cli", ">=", 3.0, ">= 3x faster than sql-client.sh -f")]
    return result
