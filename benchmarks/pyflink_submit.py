"""1. PyFlink submission: submit -> RUNNING with FlinkJobSubmitOperator, ``flink run -d -py`` and raw REST.

All three submit the same job file and are timed from the start of the task (or request) until the job is
RUNNING with all its tasks running, observed live (``GET /jobs/overview``, not the cached ``GET /jobs/{id}``)
at the same interval:

- ``operator``: FlinkJobSubmitOperator(py_file=..., wait_for_running=True) run as a task (``taskrun``).
- ``cli``: a BashOperator running ``flink run -d -py <job>`` (how it is done today), then the same poll.
- ``rest``: ``POST /jars/{flink-python jar}/run`` with the PythonDriver, then the same poll.
"""

from __future__ import annotations

import argparse
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from benchmarks import env
from benchmarks.core import BenchResult, Sample, Target, interleave, median, ratio, record_methods
from benchmarks.httprec import HttpRecorder, group_calls
from benchmarks.taskrun import bench_dag, run_task

BENCH_JOB = Path(__file__).resolve().parent / "jobs" / "pyflink_datagen.py"
PYTHON_DRIVER = "org.apache.flink.client.python.PythonDriver"


@dataclass(frozen=True)
class JobSpec:
    """A PyFlink job to submit: its file, its arguments and the topics it needs.

    :param path: the job file.
    :param args: program arguments; ``{name}``, ``{source_topic}`` and ``{sink_topic}`` are filled in per run
        (``{name}`` is the unique job name the benchmark finds and cancels the job by).
    :param topics: topic roles to create once (``source_topic``, ``sink_topic``).
    """

    path: Path
    args: tuple[str, ...]
    topics: tuple[str, ...] = ()

    def arguments(self, name: str, topics: dict[str, str]) -> list[str]:
        """The arguments of one run.

        :param name: the run's unique job name.
        :param topics: topic role -> name.
        """
        return [arg.format(name=name, **topics) for arg in self.args]


PRESETS = {
    "datagen": JobSpec(BENCH_JOB, ("{name}",)),
    "orders_enrichment": JobSpec(
        env.ROOT / "include" / "pyflink" / "orders_enrichment" / "v1.py",
        ("--source-topic", "{source_topic}", "--sink-topic", "{sink_topic}", "--consumer-group", "{name}",
         "--job-name", "{name}"),
        ("source_topic", "sink_topic"),
    ),
}  # fmt: skip
"""``--pyflink-job`` presets: the benchmark's datagen job (default) and the project's orders_enrichment v1."""


def job_spec(job: str | None, args: list[str]) -> JobSpec:
    """The job to submit from ``--pyflink-job`` (a preset or a file) and ``--pyflink-arg``.

    :param job: a preset name, a file, or ``None`` for ``datagen``.
    :param args: program arguments for a file (``{name}`` is filled in with the unique job name).
    :raises FileNotFoundError: for a file that does not exist.
    """
    if job is None or job in PRESETS:
        return PRESETS[job or "datagen"]
    path = Path(job).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"--pyflink-job {job!r} is neither a preset ({', '.join(PRESETS)}) nor a file")
    return JobSpec(path, tuple(args))


def python_jar() -> Path:
    """The flink-python jar of the stack's Flink home.

    :raises FileNotFoundError: when the Flink home has none.
    """
    jars = sorted((env.FLINK_HOME / "opt").glob("flink-python*.jar")) + sorted(
        (env.FLINK_HOME / "lib").glob("flink-python*.jar")
    )
    if not jars:
        raise FileNotFoundError(f"no flink-python jar in {env.FLINK_HOME}/opt or lib")
    return jars[0]


def uploaded_jar_id(jar: Path) -> str:
    """The id of ``jar`` on the cluster, uploading it once if no jar of that name is there.

    :param jar: the local jar.
    """
    for item in env.rest("GET", "/jars").json().get("files", []):
        if item.get("name") == jar.name:
            return str(item["id"])
    with jar.open("rb") as handle:
        resp = env.rest("POST", "/jars/upload", files={"jarfile": (jar.name, handle, "application/x-java-archive")})
    resp.raise_for_status()
    return str(resp.json()["filename"]).rsplit("/", 1)[-1]


def job_id_by_name(name: str) -> str:
    """The id of the (only) job with this name.

    :param name: the unique job name.
    :raises LookupError: when there is none.
    """
    for job in env.list_jobs():
        if job.get("name") == name:
            return str(job["jid"])
    raise LookupError(f"no job named {name!r} on the cluster")


class PyFlinkMethods:
    """The three ways of submitting, each returning a timed :class:`Sample`."""

    def __init__(self, job: JobSpec, topics: dict[str, str], poll: float, timeout: float) -> None:
        self.job = job
        self.job_file = job.path
        self.topics = topics
        self.poll = poll
        self.timeout = timeout
        self.jar = python_jar()
        self.jar_id = uploaded_jar_id(self.jar)
        self.cli_env, self.notes = env.flink_cli_env()
        self.http = HttpRecorder()
        self.last_job: str | None = None

    def _name(self, method: str) -> str:
        return env.unique(f"bench-pyflink-{method}")

    def operator(self) -> Sample:
        """FlinkJobSubmitOperator as a task, waiting for RUNNING."""
        from airflow_flink_provider.operators.job_submit import FlinkJobSubmitOperator

        name = self._name("operator")
        with bench_dag("bench_pyflink_submit"):
            task = FlinkJobSubmitOperator(
                task_id="submit",
                py_file=str(self.job_file),
                python_jar=str(self.jar),
                program_args=self.job.arguments(name, self.topics),
                wait_for_running=True,
                poll_interval=self.poll,
                wait_timeout=self.timeout,
            )
        began_epoch = time.time()
        with self.http.active():
            outcome = run_task(task)
        calls = self.http.take()
        job_id = outcome.result if isinstance(outcome.result, str) else None
        if job_id:
            self.last_job = env.JOBS.add(job_id)
        else:
            self._register_by_name(name)
        if outcome.error is not None:
            raise outcome.error
        phases = {f"{c['call']} (x{c['count']})": c["total_s"] for c in group_calls(calls)}
        detail = {"job_id": job_id, "http_calls": len(calls), **flink_clock(job_id, began_epoch, outcome.seconds)}
        return Sample(outcome.seconds, phases, detail)

    def cli(self) -> Sample:
        """A BashOperator running ``flink run -d -py``, then polling until RUNNING."""
        from airflow.providers.standard.operators.bash import BashOperator

        name = self._name("cli")
        command = shlex.join(
            [
                str(env.FLINK_HOME / "bin" / "flink"),
                "run",
                "-d",
                "-py",
                str(self.job_file),
                *self.job.arguments(name, self.topics),
            ]
        )
        with bench_dag("bench_pyflink_submit"):
            task = BashOperator(task_id="flink_run", bash_command=command, env=self.cli_env, append_env=False)
        began, began_epoch = time.monotonic(), time.time()
        outcome = run_task(task)
        exited = time.monotonic()
        job_id = self._register_by_name(name)
        if outcome.error is not None:
            raise outcome.error
        if job_id is None:
            raise LookupError(f"`flink run` exited but no job named {name} is on the cluster")
        running = env.wait_running(job_id, poll=self.poll, timeout=self.timeout)
        return Sample(
            running - began,
            {"flink run (process)": exited - began, "exit -> RUNNING (poll)": running - exited},
            {"job_id": job_id, **flink_clock(job_id, began_epoch, running - began)},
        )

    def rest(self) -> Sample:
        """``POST /jars/{id}/run`` with the PythonDriver, then polling until RUNNING."""
        name = self._name("rest")
        began, began_epoch = time.monotonic(), time.time()
        args = ["-py", str(self.job_file), *self.job.arguments(name, self.topics)]
        with requests.Session() as session:
            resp = session.post(
                f"{env.REST_URL}/jars/{self.jar_id}/run",
                json={"entryClass": PYTHON_DRIVER, "programArgsList": args},
                timeout=self.timeout,
            )
        submitted = time.monotonic()
        if resp.status_code != 200:
            self._register_by_name(name)
            raise RuntimeError(f"POST /jars/run answered {resp.status_code}: {_flink_error(resp)}")
        job_id = self.last_job = env.JOBS.add(str(resp.json()["jobid"]))
        running = env.wait_running(job_id, poll=self.poll, timeout=self.timeout)
        return Sample(
            running - began,
            {"POST /jars/{id}/run": submitted - began, "submitted -> RUNNING (poll)": running - submitted},
            {"job_id": job_id, **flink_clock(job_id, began_epoch, running - began)},
        )

    def _register_by_name(self, name: str) -> str | None:
        try:
            self.last_job = env.JOBS.add(job_id_by_name(name))
        except LookupError:
            self.last_job = None
        return self.last_job

    def cleanup(self, method: str, sample: Sample | None) -> None:
        """Cancel the job the last run started and wait until its slot is free."""
        job_id = self.last_job
        self.last_job = None
        if job_id:
            env.JOBS.cancel(job_id)


def flink_clock(job_id: str | None, began_epoch: float, observed: float) -> dict[str, float]:
    """Start -> all tasks RUNNING by Flink's own clock, and how much later the method saw it (REST cache).

    :param job_id: the job.
    :param began_epoch: when the method started (epoch seconds).
    :param observed: the method's measured time.
    """
    running_at = env.tasks_running_at(job_id) if job_id else None
    if running_at is None:
        return {}
    return {"flink_running_s": running_at - began_epoch, "seen_later_s": observed - (running_at - began_epoch)}


def flink_clock_figures(result: BenchResult, samples: dict[str, list[Sample]]) -> None:
    """Per method, the median start -> RUNNING by Flink's clock and the median lag of seeing it (profile);
    the operator's speed-up over the CLI by that clock (a figure without target: the REST API's cache is
    part of what a task waits).

    :param result: where the figures go.
    :param samples: measured samples per method.
    """
    clocks: dict[str, float] = {}
    for method, runs in samples.items():
        clock = [s.detail["flink_running_s"] for s in runs if "flink_running_s" in s.detail]
        lag = [s.detail["seen_later_s"] for s in runs if "seen_later_s" in s.detail]
        if clock:
            clocks[method] = median(clock)
            result.profile.setdefault(method, {})["tasks RUNNING by Flink's clock"] = {
                "median_s": round(median(clock), 4), "runs": len(clock)
            }  # fmt: skip
            result.profile[method]["seen later than that (REST cache)"] = {
                "median_s": round(median(lag), 4), "runs": len(lag)
            }  # fmt: skip
    if "operator" in clocks and "cli" in clocks:
        result.figure("speedup_vs_cli_by_flink_clock", ratio(clocks["cli"], clocks["operator"]), "x")


def _flink_error(resp: requests.Response) -> str:
    """The root cause line of a Flink REST error response."""
    try:
        errors = resp.json().get("errors", [])
    except ValueError:
        return resp.text[:300]
    trace = "\n".join(str(e) for e in errors)
    causes = [line for line in trace.splitlines() if line.startswith("Caused by:")]
    return (causes[-1] if causes else trace.splitlines()[0] if trace else resp.text)[:400]


def run(opts: argparse.Namespace) -> BenchResult:
    """Measure and compare the three methods.

    :param opts: ``repeats``, ``warmup``, ``poll_interval``, ``submit_timeout``, ``pyflink_job``,
        ``pyflink_arg``.
    """
    result = BenchResult("pyflink_submit", "PyFlink submit -> RUNNING: operator vs `flink run -d -py` vs raw REST")
    job = job_spec(opts.pyflink_job, list(opts.pyflink_arg or []))
    topics = {role: env.unique(f"bench-pyflink-{role.split('_')[0]}") for role in job.topics}
    env.create_topics(topics.values())
    try:
        methods = PyFlinkMethods(job, topics, opts.poll_interval, opts.submit_timeout)
        result.notes += methods.notes
        shown = job.path.relative_to(env.ROOT) if job.path.is_relative_to(env.ROOT) else job.path
        result.notes.append(f"job: {shown} {' '.join(job.args)}")
        samples, errors = interleave(
            {"operator": methods.operator, "cli": methods.cli, "rest": methods.rest},
            repeats=opts.repeats,
            warmup=opts.warmup,
            between=methods.cleanup,
        )
    finally:
        env.delete_topics(topics.values())
    record_methods(result, samples, errors)
    flink_clock_figures(result, samples)
    op, cli, raw = (result.figures.get(f"{m}_median_s") for m in ("operator", "cli", "rest"))
    result.figure("speedup_vs_cli", ratio(cli, op), "x")
    result.figure("operator_over_rest", ratio(op, raw), "x")
    result.targets = [
        Target("speedup_vs_cli", ">=", 5.0, ">= 5x faster than flink run"),
        Target("operator_over_rest", "<=", 1.2, "<= 1.2x raw REST"),
    ]
    return result
