"""The PyFlink jobs of phase 4: their versions, their command lines, and the flink-python jar.

A job is a package ``include/pyflink/<job>/``: its ``VERSIONS`` names the programs ``<version>.py`` the DAGs
may deploy, and its ``jobkit.validate_args(argv, version)`` checks a command line without PyFlink (the
Airflow workers have none). The package is loaded from its folder with :mod:`importlib`, without touching
``sys.path``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from flink_lessons.job_names import JobName
from flink_lessons.paths import PYFLINK_DIR
from flink_lessons.settings import Settings, VariableError


def known_jobs() -> list[str]:
    """The job packages under ``include/pyflink``."""
    return sorted(path.parent.name for path in PYFLINK_DIR.glob("*/__init__.py"))


@functools.cache
def job_package(job: str) -> ModuleType:
    """The job's package, imported from its folder (no PyFlink needed).

    :param job: the ``job`` setting.
    :raises VariableError: when there is no such package.
    """
    if job not in known_jobs():
        raise VariableError(f"job: no package {job!r} under {PYFLINK_DIR}; known: {known_jobs()}")
    if job not in sys.modules:
        folder = PYFLINK_DIR / job
        spec = importlib.util.spec_from_file_location(job, folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])  # fmt: skip
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[job] = module
        spec.loader.exec_module(module)
    return sys.modules[job]


def known_versions(job: str) -> list[str]:
    """The versions a job declares (its package's ``VERSIONS``).

    :param job: the ``job`` setting.
    """
    return sorted(job_package(job).VERSIONS)


def check_version(job: str, version: object) -> str:
    """A version the job declares, or a clear error listing those it does.

    :param job: the ``job`` setting.
    :param version: a version from the settings, a param or the last good record.
    :raises VariableError: an unknown version (``v9; rm -rf /`` included).
    """
    known = known_versions(job)
    if version not in known:
        raise VariableError(f"version: job {job!r} has no version {version!r}; known: {known}")
    return str(version)


def program(settings: Settings, version: str) -> Path:
    """The program file of a version.

    :param settings: the run's ``flink_phase4_pyflink`` settings.
    :param version: a checked version.
    """
    return PYFLINK_DIR / settings["job"] / f"{check_version(settings['job'], version)}.py"


def job_name(settings: Settings, version: str) -> str:
    """The Flink job name of a version: ``<job_name>@<version>`` (see :mod:`flink_lessons.job_names`).

    :param settings: the run's settings.
    :param version: the version.
    """
    return str(JobName(settings["job_name"], version))


def job_args(settings: Settings, version: str) -> list[str]:
    """The command line of a version's program.

    :param settings: the run's ``flink_phase4_pyflink`` settings.
    :param version: the version.
    """
    seconds = {key: str(settings.duration(key).seconds) for key in (
        "window_size", "watermark_delay", "checkpoint.interval", "restart.delay", "restart.initial_backoff",
        "restart.max_backoff")}  # fmt: skip
    args = [
        "--bootstrap-servers", str(settings.bootstrap_servers),
        "--source-topic", settings["topics.source"],
        "--sink-topic", settings["topics.sink"],
        "--consumer-group", settings["consumer_group"],
        "--startup-mode", settings["startup_mode"],
        "--products-path", str(PYFLINK_DIR / settings["job"] / "data" / "products.csv"),
        "--window-seconds", seconds["window_size"],
        "--watermark-delay-seconds", seconds["watermark_delay"],
        "--job-name", job_name(settings, version),
        "--parallelism", str(settings["parallelism"]),
        "--checkpoint-interval-seconds", seconds["checkpoint.interval"],
        "--checkpoint-mode", settings["checkpoint.mode"],
        "--state-backend", settings["state_backend"],
        "--restart-strategy", settings["restart.strategy"],
        "--restart-attempts", str(settings["restart.attempts"]),
        "--restart-delay-seconds", seconds["restart.delay"],
        "--restart-initial-backoff-seconds", seconds["restart.initial_backoff"],
        "--restart-max-backoff-seconds", seconds["restart.max_backoff"],
        "--restart-backoff-multiplier", str(settings["restart.multiplier"]),
    ]  # fmt: skip
    if settings["checkpoint.dir"]:
        args += ["--checkpoint-dir", settings["checkpoint.dir"]]
    return args


def validated_args(settings: Settings, version: str) -> list[str]:
    """A version's command line, checked by the job's own parser here, before anything reaches Flink.

    A PythonDriver given arguments its program refuses exits the JobManager's JVM: they fail this task
    instead.

    :param settings: the run's settings.
    :param version: the version.
    :raises VariableError: an unknown version, or arguments the job refuses.
    """
    version = check_version(settings["job"], version)
    jobkit = importlib.import_module(f"{job_package(settings['job']).__name__}.jobkit")
    args = job_args(settings, version)
    try:
        jobkit.validate_args(args, version)
    except jobkit.JobArgumentError as err:
        raise VariableError(f"the {version} job refuses its arguments: {err}") from None
    return args


def stack_python_jar(configured: str | None) -> str:
    """The flink-python jar to submit with: the configured one, else the local stack's.

    :param configured: the ``python_jar`` setting.
    :raises VariableError: when there is none.
    """
    if configured:
        return configured
    home = os.environ.get("FLINK_STACK_HOME")
    jars = sorted(Path(home, "opt").glob("flink-python*.jar")) if home else []
    if not jars:
        raise VariableError(
            "python_jar is null and no $FLINK_STACK_HOME/opt/flink-python-*.jar was found: set python_jar, "
            'or load the stack environment (eval "$(.venv/bin/python stack/cli.py env)")'
        )
    return str(jars[-1])
