"""Phase 4 helpers: the Variables of the PyFlink deploy/upgrade/recover DAGs, job naming, the health gate,
the "last good" record and the retry policy.

Importable without I/O and without the provider's hooks, so the DAG files parse fast. Variables, files and
Flink are touched only by the functions the tasks call at run time.

Variables (JSON):

- ``flink_phase4_pyflink``: what to run and how (see :data:`PYFLINK_RULES`); ``dag_run.conf`` keys
  override it for one run.
- ``flink_phase4_sql``: which SQL scenario flink_deploy_sql submits and how it is watched
  (:data:`SQL_RULES`); the scenario's own settings come from its phase 0/1 Variable.
- ``flink_phase4_last_good__<job_name>``: written by the DAGs once a version passed the health gate:
  ``{"job_name", "version", "job_id", "savepoint", "restored_from", "recorded_at", "dag_id", "run_id"}``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from airflow.sdk.definitions.retry_policy import RetryDecision, RetryPolicy

from common.variables import Duration, VariableError, parse_duration

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context

ROOT = Path(__file__).resolve().parents[2]
PYFLINK_ROOT = ROOT / "include" / "pyflink"

PYFLINK_VARIABLE = "flink_phase4_pyflink"
LAST_GOOD_PREFIX = "flink_phase4_last_good__"

NAME_SEPARATOR = "@"
"""Flink job names are ``<job_name>@<version>``: the job is found by its base name, the version read off it."""

ACTIVE_STATES = ("INITIALIZING", "CREATED", "RUNNING", "FAILING", "CANCELLING", "RESTARTING", "RECONCILING")
ENDED_STATES = frozenset({"FINISHED", "FAILED", "CANCELED", "SUSPENDED"})

FAULTS = ("savepoint_failure",)
FAULT_SAVEPOINT_DIR = "file:///proc/flink-phase4-fault-injection"
"""Where the first stop-with-savepoint writes under ``fault_injection = savepoint_failure``: a directory no one
can create, so the savepoint fails, the job keeps running and the upgrade takes its retry branch."""

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
_VERSION = re.compile(r"[A-Za-z0-9_]{1,50}")
_TOPIC = re.compile(r"[a-zA-Z0-9._-]{1,249}")
_BOOTSTRAP = re.compile(r"[a-zA-Z0-9._-]+:\d{1,5}(,[a-zA-Z0-9._-]+:\d{1,5})*")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:/\S+")


# --- the Variable's schema --------------------------------------------------------------------------------


def _string(pattern: re.Pattern[str], what: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ValueError(f"must be {what}, got {value!r}")
        return value

    return check


def _integer(minimum: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be an integer, got {value!r}")
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, got {value}")
        return value

    return check


def _number(minimum: float) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= minimum:
            raise ValueError(f"must be a number >= {minimum}, got {value!r}")
        return float(value)

    return check


def _duration(minimum_ms: int) -> Callable[[Any], Duration]:
    def check(value: Any) -> Duration:
        duration = parse_duration(value)
        if duration.ms < minimum_ms:
            raise ValueError(f"must be at least {minimum_ms // 1000}s, got {value!r}")
        return duration

    return check


def _choice(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {list(choices)}, got {value!r}")
        return str(value)

    return check


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def _nullable(inner: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        return None if value is None else inner(value)

    return check


def _location(value: Any) -> str:
    if isinstance(value, str) and (_URI.fullmatch(value) or (value.startswith("/") and " " not in value)):
        return value
    raise ValueError(f"must be a URI (file://, s3://...) or an absolute path, got {value!r}")


def _local_file(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise ValueError(f"must be an absolute path, got {value!r}")
    if not Path(value).is_file():
        raise ValueError(f"does not exist: {value}")
    return value


@dataclass(frozen=True)
class Rule:
    """One key of a JSON Variable.

    :param key: the key; ``group.key`` for keys of a nested object (``topics.source``).
    :param default: its value when neither the Variable nor the run conf set it.
    :param check: validates a value and returns it parsed; raises ``ValueError`` with the rule.
    :param description: what it is for (the playbook's table).
    """

    key: str
    default: Any
    check: Callable[[Any], Any]
    description: str


PYFLINK_RULES: tuple[Rule, ...] = (
    Rule(
        "job",
        "orders_enrichment",
        _string(_NAME, "a job folder under include/pyflink"),
        "The job family: the folder `include/pyflink/<job>/` with its versions `<version>.py`.",
    ),
    Rule(
        "job_name",
        "orders_enrichment",
        _string(_NAME, "[A-Za-z0-9_.-]{1,100}"),
        "Base of the Flink job name `<job_name>@<version>`; the running job is found by it.",
    ),
    Rule(
        "version",
        "v1",
        _string(_VERSION, "a version file name such as v1"),
        "The version to deploy (flink_deploy_pyflink) or upgrade to (flink_upgrade_with_rollback).",
    ),
    Rule("topics.source", "orders", _string(_TOPIC, "a Kafka topic name"), "Topic of the order events."),
    Rule(
        "topics.sink",
        "orders-by-category",
        _string(_TOPIC, "a Kafka topic name"),
        "Topic the per-window aggregates are written to.",
    ),
    Rule(
        "create_topics",
        True,
        _boolean,
        "flink_deploy_pyflink creates the source and sink topics (one partition) when they are missing.",
    ),
    Rule(
        "consumer_group",
        "orders-enrichment",
        _string(_NAME, "a Kafka consumer group id"),
        "Consumer group of the job's Kafka source.",
    ),
    Rule(
        "startup_mode",
        "earliest-offset",
        _choice("earliest-offset", "latest-offset", "group-offsets"),
        "Where a job that does not restore a snapshot starts reading.",
    ),
    Rule("window_size", "60s", _duration(1000), "Size of the tumbling event-time windows."),
    Rule("watermark_delay", "5s", _duration(0), "Bounded out-of-orderness of the events."),
    Rule("parallelism", 1, _integer(1), "Parallelism of the job (task slots it takes)."),
    Rule("checkpoint.interval", "10s", _duration(1000), "Time between checkpoints."),
    Rule("checkpoint.mode", "exactly-once", _choice("exactly-once", "at-least-once"), "Checkpointing mode."),
    Rule(
        "checkpoint.dir",
        None,
        _nullable(_location),
        "Checkpoint storage; null: the cluster's execution.checkpointing.dir.",
    ),
    Rule("state_backend", "hashmap", _choice("hashmap", "rocksdb"), "State backend."),
    Rule(
        "restart.strategy",
        "fixed-delay",
        _choice("fixed-delay", "exponential-delay", "none"),
        "Flink restart strategy of the job.",
    ),
    Rule("restart.attempts", 3, _integer(0), "fixed-delay: restarts before the job fails."),
    Rule("restart.delay", "10s", _duration(0), "fixed-delay: pause between restarts."),
    Rule("restart.initial_backoff", "1s", _duration(1000), "exponential-delay: first pause."),
    Rule("restart.max_backoff", "60s", _duration(1000), "exponential-delay: longest pause."),
    Rule("restart.multiplier", 2.0, _number(1.0), "exponential-delay: growth of the pause."),
    Rule(
        "savepoint_dir",
        None,
        _nullable(_location),
        "Where the upgrade's savepoints go; null: the cluster's execution.checkpointing.savepoint-dir.",
    ),
    Rule("health.min_checkpoints", 2, _integer(0), "Health gate: completed checkpoints the new job must have."),
    Rule(
        "health.stable_for",
        "30s",
        _duration(0),
        "Health gate: how long the job must run with all tasks RUNNING and no new restart.",
    ),
    Rule(
        "health.max_restarts",
        0,
        _integer(0),
        "Health gate: restarts (failures in the job's exception history) tolerated before it fails.",
    ),
    Rule("health.timeout", "5 min", _duration(1000), "Health gate: give up (unhealthy) after this long."),
    Rule("health.poll_interval", "2s", _duration(1000), "Health gate: time between looks at the job."),
    Rule(
        "kafka_conn_id",
        "kafka_default",
        _string(_NAME, "an Airflow connection id"),
        "Kafka connection whose bootstrap.servers the job uses when bootstrap_servers is null.",
    ),
    Rule(
        "bootstrap_servers",
        None,
        _nullable(_string(_BOOTSTRAP, "host:port[,host:port...]")),
        "Kafka brokers as Flink reaches them; null: from kafka_conn_id.",
    ),
    Rule(
        "python_jar",
        None,
        _nullable(_local_file),
        "The flink-python jar to submit with; null: `$FLINK_STACK_HOME/opt/flink-python-*.jar`.",
    ),
    Rule(
        "fault_injection",
        None,
        _nullable(_choice(*FAULTS)),
        "Drills only: `savepoint_failure` makes the upgrade's first stop-with-savepoint fail (retry branch).",
    ),
)


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a JSON object, got {value!r}")
    return dict(value)


SQL_VARIABLE = "flink_phase4_sql"

SQL_RULES: tuple[Rule, ...] = (
    Rule(
        "scenario",
        "phase1_event_time_watermarks",
        _string(_NAME, "a scenario folder under include/sql"),
        "The SQL scenario (a folder of include/sql) to submit.",
    ),
    Rule(
        "variant",
        "windows",
        _string(_NAME, "a script of the scenario"),
        "Which of the scenario's scripts (`<variant>.sql.j2`).",
    ),
    Rule(
        "settings",
        None,
        _nullable(_object),
        "Overrides of the scenario's own Variable (flink_phase1/flink_phase0): topics, window_size, "
        "window_slide, watermark_delay, parallelism...",
    ),
    Rule(
        "wait_for",
        "FINISHED",
        _choice("RUNNING", "FINISHED"),
        "The state the jobs must reach: FINISHED for the bounded phase 1 scripts, RUNNING for streaming ones.",
    ),
    Rule("max_restarts", 0, _integer(0), "Restarts of a job tolerated while it is watched."),
    Rule("timeout", "5 min", _duration(1000), "How long the jobs may take to reach wait_for."),
)


def defaults(rules: Sequence[Rule]) -> dict[str, Any]:
    """The Variable's default JSON value, groups nested.

    :param rules: the Variable's rules.
    """
    value: dict[str, Any] = {}
    for rule in rules:
        group, _, key = rule.key.rpartition(".")
        (value.setdefault(group, {}) if group else value)[key] = rule.default
    return value


def merge(rules: Sequence[Rule], *layers: tuple[str, Mapping[str, Any] | None]) -> dict[str, Any]:
    """Defaults overridden by each layer in turn (the Variable, then the run conf); groups merge per key.

    :param rules: the Variable's rules.
    :param layers: ``(name for messages, JSON object or None)``.
    :raises VariableError: on a layer that is not an object or has unknown keys.
    """
    merged = defaults(rules)
    for name, layer in layers:
        if layer is None:
            continue
        if not isinstance(layer, Mapping):
            raise VariableError(f"{name} must be a JSON object, got {type(layer).__name__}")
        unknown: list[str] = []
        for key, value in layer.items():
            if key not in merged:
                unknown.append(key)
            elif isinstance(merged[key], dict):
                if not isinstance(value, Mapping):
                    raise VariableError(f"{name}: key {key!r} must be a JSON object")
                unknown += [f"{key}.{sub}" for sub in value if sub not in merged[key]]
                merged[key] = {**merged[key], **{sub: v for sub, v in value.items() if sub in merged[key]}}
            else:
                merged[key] = value
        if unknown:
            raise VariableError(
                f"{name}: unknown key(s) {sorted(unknown)}; known keys: {', '.join(r.key for r in rules)}"
            )
    return merged


def validate(rules: Sequence[Rule], merged: Mapping[str, Any], variable: str) -> dict[str, Any]:
    """Check every key; report every problem at once.

    :param rules: the Variable's rules.
    :param merged: the output of :func:`merge`.
    :param variable: the Variable's name, for the message.
    :return: dotted key -> parsed value.
    :raises VariableError: one line per key at fault.
    """
    parsed: dict[str, Any] = {}
    problems: list[str] = []
    for rule in rules:
        group, _, key = rule.key.rpartition(".")
        raw = merged[group][key] if group else merged[key]
        try:
            parsed[rule.key] = rule.check(raw)
        except ValueError as err:
            problems.append(f"{rule.key}: {err}")
    if problems:
        raise VariableError(
            f"Invalid settings in Variable '{variable}' (nothing was done):\n  - " + "\n  - ".join(problems)
        )
    return parsed


def schema_markdown(rules: Sequence[Rule]) -> str:
    """A Markdown table of the keys with their defaults (for the playbook).

    :param rules: the Variable's rules.
    """
    lines = ["| key | default | meaning |", "|---|---|---|"]
    lines += [f"| `{rule.key}` | `{json.dumps(rule.default)}` | {rule.description} |" for rule in rules]
    return "\n".join(lines)


# --- resolved settings ------------------------------------------------------------------------------------


def flink_job_name(job_name: str, version: str) -> str:
    """The Flink job name of a version, e.g. ``orders_enrichment@v2``.

    :param job_name: the base name.
    :param version: the version.
    """
    return f"{job_name}{NAME_SEPARATOR}{version}"


def split_job_name(name: str) -> tuple[str, str | None]:
    """``(base name, version)`` of a Flink job name; the version is ``None`` for names without one.

    :param name: the Flink job name.
    """
    base, separator, version = name.rpartition(NAME_SEPARATOR)
    return (base, version) if separator else (name, None)


@dataclass(frozen=True)
class PyflinkSettings:
    """The validated settings of one DAG run (JSON-serializable through :meth:`to_json`).

    :param values: parsed values by dotted key (durations as :class:`Duration`).
    :param bootstrap_servers: the Kafka brokers as Flink reaches them.
    :param python_jar: the flink-python jar to submit with.
    """

    values: Mapping[str, Any]
    bootstrap_servers: str
    python_jar: str

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def seconds(self, key: str) -> int:
        """A duration setting in whole seconds.

        :param key: its dotted key.
        """
        value = self.values[key]
        assert isinstance(value, Duration)
        return value.ms // 1000

    @property
    def job_name(self) -> str:
        """The base name of the Flink job."""
        return str(self.values["job_name"])

    def py_file(self, version: str) -> Path:
        """The program file of a version.

        :param version: e.g. ``v1``.
        """
        return PYFLINK_ROOT / self.values["job"] / f"{version}.py"

    def job_args(self, version: str) -> list[str]:
        """The command-line arguments of a version's program.

        :param version: e.g. ``v1``.
        """
        args = [
            "--bootstrap-servers", self.bootstrap_servers,
            "--source-topic", self.values["topics.source"],
            "--sink-topic", self.values["topics.sink"],
            "--consumer-group", self.values["consumer_group"],
            "--startup-mode", self.values["startup_mode"],
            "--products-path", str(PYFLINK_ROOT / self.values["job"] / "data" / "products.csv"),
            "--window-seconds", str(self.seconds("window_size")),
            "--watermark-delay-seconds", str(self.seconds("watermark_delay")),
            "--job-name", flink_job_name(self.job_name, version),
            "--parallelism", str(self.values["parallelism"]),
            "--checkpoint-interval-seconds", str(self.seconds("checkpoint.interval")),
            "--checkpoint-mode", self.values["checkpoint.mode"],
            "--state-backend", self.values["state_backend"],
            "--restart-strategy", self.values["restart.strategy"],
            "--restart-attempts", str(self.values["restart.attempts"]),
            "--restart-delay-seconds", str(self.seconds("restart.delay")),
            "--restart-initial-backoff-seconds", str(self.seconds("restart.initial_backoff")),
            "--restart-max-backoff-seconds", str(self.seconds("restart.max_backoff")),
            "--restart-backoff-multiplier", str(self.values["restart.multiplier"]),
        ]  # fmt: skip
        if self.values["checkpoint.dir"]:
            args += ["--checkpoint-dir", self.values["checkpoint.dir"]]
        return args

    def check_version(self, version: str) -> list[str]:
        """Validate a version's program and arguments here, before anything reaches the JobManager.

        The job's own argument parser runs (without PyFlink): bad arguments fail this task instead of the
        PythonDriver, which would exit the JobManager's JVM.

        :param version: e.g. ``v1``.
        :return: the validated arguments.
        :raises VariableError: unknown version, or arguments the job refuses.
        """
        path = self.py_file(version)
        if version not in known_versions(path.parent):
            known = known_versions(path.parent)
            raise VariableError(f"job {self.values['job']!r} has no version {version!r} ({path}); known: {known}")
        jobkit = load_jobkit()
        args = self.job_args(version)
        try:
            jobkit.validate_args(args, version)
        except jobkit.JobArgumentError as err:
            raise VariableError(f"the {version} job refuses its arguments: {err}") from None
        return args

    def to_json(self) -> dict[str, Any]:
        """A JSON form (for XCom): durations as text."""
        values = {k: (v.text if isinstance(v, Duration) else v) for k, v in self.values.items()}
        return {"values": values, "bootstrap_servers": self.bootstrap_servers, "python_jar": self.python_jar}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PyflinkSettings:
        """Rebuild from :meth:`to_json`.

        :param data: the XCom value.
        """
        rules = {rule.key: rule for rule in PYFLINK_RULES}
        values = {key: rules[key].check(value) for key, value in data["values"].items()}
        return cls(values, data["bootstrap_servers"], data["python_jar"])

    def health(self) -> HealthPolicy:
        """The health gate's thresholds."""
        return HealthPolicy(
            min_checkpoints=self.values["health.min_checkpoints"],
            stable_seconds=self.seconds("health.stable_for"),
            max_restarts=self.values["health.max_restarts"],
            timeout_seconds=self.seconds("health.timeout"),
            poll_seconds=self.seconds("health.poll_interval"),
        )


def known_versions(folder: Path) -> list[str]:
    """The versions of a job: the ``.py`` files of its folder that are programs (they call ``jobkit.main``).

    :param folder: the job's folder.
    """
    return sorted(path.stem for path in folder.glob("*.py") if "jobkit.main(" in path.read_text())


def load_jobkit() -> Any:
    """The PyFlink jobs' shared module (``include/pyflink/orders_enrichment/jobkit.py``), without PyFlink."""
    if str(PYFLINK_ROOT) not in sys.path:
        sys.path.insert(0, str(PYFLINK_ROOT))
    from orders_enrichment import jobkit

    return jobkit


def find_python_jar(configured: str | None) -> str:
    """The flink-python jar: the configured one, else the local stack's.

    :param configured: the Variable's ``python_jar``.
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


def resolve_pyflink(
    variable: Mapping[str, Any] | None,
    conf: Mapping[str, Any] | None,
    *,
    kafka_bootstrap: Callable[[str], str | None],
) -> PyflinkSettings:
    """Merge, validate and complete the settings of a PyFlink DAG run.

    :param variable: the ``flink_phase4_pyflink`` Variable's JSON value, or ``None``.
    :param conf: the run conf (same keys, for one run).
    :param kafka_bootstrap: looks up ``bootstrap.servers`` of a Kafka connection (only when needed).
    :raises VariableError: every invalid key, named.
    """
    merged = merge(PYFLINK_RULES, (f"Variable '{PYFLINK_VARIABLE}'", variable), ("the run conf", conf))
    values = validate(PYFLINK_RULES, merged, PYFLINK_VARIABLE)
    bootstrap = values["bootstrap_servers"] or kafka_bootstrap(values["kafka_conn_id"])
    if not bootstrap:
        raise VariableError(
            f"bootstrap_servers is null and the Kafka connection {values['kafka_conn_id']!r} has no bootstrap.servers"
        )
    if values["topics.source"] == values["topics.sink"]:
        raise VariableError("topics.source and topics.sink must differ")
    return PyflinkSettings(values, bootstrap, find_python_jar(values["python_jar"]))


def read_json_variable(name: str) -> Any:
    """A JSON Variable's value, or ``None`` when it is not set (run time only).

    :param name: the Variable's name.
    :raises VariableError: when it is not JSON.
    """
    from airflow.sdk import Variable

    raw = Variable.get(name, default=None)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as err:
        raise VariableError(f"Variable '{name}' is not valid JSON: {err}") from None


def kafka_bootstrap(conn_id: str) -> str | None:
    """``bootstrap.servers`` of an Airflow Kafka connection (run time only).

    :param conn_id: the connection id.
    """
    from airflow.sdk import BaseHook

    extra = BaseHook.get_connection(conn_id).extra_dejson
    value = extra.get("bootstrap.servers")
    return str(value) if value else None


def settings_for_run(context: Context, *, params: Sequence[str] = ()) -> PyflinkSettings:
    """Read the Variable, the run conf and the Kafka connection; validate (run time only).

    :param context: the task's context.
    :param params: names of the DAG's params: run conf keys that are not settings.
    """
    conf = {key: value for key, value in (context["dag_run"].conf or {}).items() if key not in params}
    return resolve_pyflink(read_json_variable(PYFLINK_VARIABLE), conf, kafka_bootstrap=kafka_bootstrap)


# --- the running job --------------------------------------------------------------------------------------


def running_jobs(jobs: Sequence[Mapping[str, Any]], job_name: str) -> list[dict[str, Any]]:
    """The active jobs whose name has ``job_name`` as base, newest first, each with its ``version``.

    :param jobs: ``/jobs/overview`` entries.
    :param job_name: the base name.
    """
    found = []
    for job in jobs:
        base, version = split_job_name(str(job.get("name", "")))
        if base == job_name and job.get("state") in ACTIVE_STATES:
            found.append(
                {
                    "job_id": job["jid"],
                    "name": job["name"],
                    "state": job["state"],
                    "version": version,
                    "start_time": job.get("start-time"),
                }
            )
    return sorted(found, key=lambda job: job.get("start_time") or 0, reverse=True)


# --- the health gate --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HealthPolicy:
    """What "healthy" means for a freshly (re)started job.

    :param min_checkpoints: completed checkpoints it must have.
    :param stable_seconds: how long it must run (all tasks RUNNING) without a new restart.
    :param max_restarts: restarts tolerated; one more fails the gate at once.
    :param timeout_seconds: give up after this long.
    :param poll_seconds: time between looks.
    """

    min_checkpoints: int
    stable_seconds: float
    max_restarts: int
    timeout_seconds: float
    poll_seconds: float


@dataclass(frozen=True)
class Observation:
    """One look at the job.

    :param state: the job's state.
    :param tasks_running: every task RUNNING (or FINISHED, e.g. a bounded source).
    :param checkpoints: completed checkpoints of this job.
    :param restarts: failures in its exception history.
    """

    state: str
    tasks_running: bool
    checkpoints: int
    restarts: int


@dataclass(frozen=True)
class Verdict:
    """The health gate's answer so far.

    :param outcome: ``healthy``, ``unhealthy`` or ``waiting``.
    :param reason: why, in words.
    """

    outcome: Literal["healthy", "unhealthy", "waiting"]
    reason: str


@dataclass
class HealthWatch:
    """The health gate's rules over successive observations (pure; the clock is passed in).

    :param policy: the thresholds.
    :param started: when the gate started (seconds, any monotonic clock).
    """

    policy: HealthPolicy
    started: float
    stable_since: float | None = field(default=None, init=False)
    restarts: int = field(default=0, init=False)

    def observe(self, now: float, look: Observation) -> Verdict:
        """Judge one observation.

        :param now: the clock's time of the observation.
        :param look: what the job looked like.
        """
        policy = self.policy
        if look.state in ENDED_STATES or look.state in ("FAILING", "CANCELLING"):
            return Verdict("unhealthy", f"the job is {look.state}")
        if look.restarts > self.restarts:
            self.restarts = look.restarts
            self.stable_since = None
        if look.restarts > policy.max_restarts:
            return Verdict(
                "unhealthy", f"the job restarted {look.restarts} time(s); max_restarts is {policy.max_restarts}"
            )
        if look.state != "RUNNING" or not look.tasks_running:
            self.stable_since = None
        elif self.stable_since is None:
            self.stable_since = now
        stable = now - self.stable_since if self.stable_since is not None else 0.0
        if (
            self.stable_since is not None
            and stable >= policy.stable_seconds
            and look.checkpoints >= policy.min_checkpoints
        ):
            return Verdict(
                "healthy",
                f"RUNNING with all tasks for {stable:.0f}s without a restart, "
                f"{look.checkpoints} checkpoint(s) completed",
            )
        if now - self.started >= policy.timeout_seconds:
            return Verdict(
                "unhealthy",
                f"not healthy within {policy.timeout_seconds:g}s: state {look.state}, all tasks running: "
                f"{look.tasks_running}, checkpoints {look.checkpoints}/{policy.min_checkpoints}, stable "
                f"{stable:.0f}/{policy.stable_seconds:g}s",
            )
        return Verdict("waiting", f"state {look.state}, checkpoints {look.checkpoints}/{policy.min_checkpoints}")


def observe(hook: Any, job_id: str) -> Observation:
    """Look at a job through the REST API.

    :param hook: a ``FlinkRestHook``.
    :param job_id: the job.
    """
    job = hook.get_job(job_id)
    vertices = job.get("vertices") or []
    tasks_running = bool(vertices) and all(v.get("status") in ("RUNNING", "FINISHED") for v in vertices)
    counts = (hook.get_checkpoints(job_id).get("counts") or {}) if job["state"] == "RUNNING" else {}
    history = (hook.get_exceptions(job_id).get("exceptionHistory") or {}).get("entries") or []
    return Observation(str(job["state"]), tasks_running, int(counts.get("completed") or 0), len(history))


def require_healthy(settings: Mapping[str, Any], job_id: str, what: str, log: Any, ti: Any = None) -> dict[str, Any]:
    """Run the health gate of a task; fail the task with the reason and the root cause unless the job is healthy.

    :param settings: the validated ``flink_phase4_pyflink`` settings (their health thresholds apply).
    :param job_id: the job to judge.
    :param what: how the message names the job, e.g. ``"Restored job"``.
    :param log: where to report progress.
    :param ti: the task instance; when given, the verdict goes to XCom key ``verdict`` also when it fails.
    :return: the verdict of :func:`health_gate`.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

    verdict = health_gate(FlinkRestHook(), job_id, PyflinkSettings.from_json(settings).health(), log)
    if ti is not None:
        ti.xcom_push(key="verdict", value=verdict)
    if not verdict["healthy"]:
        cause = f" Root cause: {verdict['root_cause']}" if verdict["root_cause"] else ""
        raise AirflowFailException(f"{what} {job_id} is not healthy: {verdict['reason']}.{cause}")
    return verdict


def health_gate(
    hook: Any,
    job_id: str,
    policy: HealthPolicy,
    log: Any,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Watch a job until it is healthy or unhealthy under ``policy``.

    :param hook: a ``FlinkRestHook``.
    :param job_id: the job.
    :param policy: the thresholds.
    :param log: where to report progress.
    :param clock: monotonic clock (tests).
    :param sleep: sleep function (tests).
    :return: ``{"job_id", "healthy", "reason", "root_cause", "state", "checkpoints", "restarts"}``.
    """
    watch = HealthWatch(policy, clock())
    last_reason = ""
    while True:
        look = observe(hook, job_id)
        verdict = watch.observe(clock(), look)
        if verdict.reason != last_reason:
            log.info("Health gate, job %s: %s", job_id, verdict.reason)
            last_reason = verdict.reason
        if verdict.outcome != "waiting":
            cause = hook.get_root_cause(job_id) if verdict.outcome == "unhealthy" or look.restarts else None
            return {
                "job_id": job_id,
                "healthy": verdict.outcome == "healthy",
                "reason": verdict.reason,
                "root_cause": cause,
                **asdict(look),
            }
        sleep(policy.poll_seconds)


def watch_until(
    hook: Any,
    job_id: str,
    target: str,
    *,
    max_restarts: int,
    timeout: float,
    poll: float,
    log: Any,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Follow a job until it reaches ``target`` (RUNNING with all tasks, or FINISHED), watching its restarts.

    A job that FINISHED while RUNNING was awaited (a bounded job) counts as reaching it.

    :param hook: a ``FlinkRestHook``.
    :param job_id: the job.
    :param target: ``RUNNING`` or ``FINISHED``.
    :param max_restarts: restarts tolerated.
    :param timeout: seconds to wait.
    :param poll: seconds between looks.
    :param log: where to report.
    :param clock: monotonic clock (tests).
    :param sleep: sleep function (tests).
    :return: ``{"job_id", "ok", "reason", "root_cause", "state", "checkpoints", "restarts"}``.
    """
    deadline = clock() + timeout
    last = ""
    while True:
        look = observe(hook, job_id)
        if look.state != last:
            log.info("Job %s is %s (%d restart(s))", job_id, look.state, look.restarts)
            last = look.state
        reached = look.state == "FINISHED" or (target == "RUNNING" and look.state == "RUNNING" and look.tasks_running)
        if look.restarts > max_restarts:
            ok, reason = False, f"restarted {look.restarts} time(s); max_restarts is {max_restarts}"
        elif reached:
            ok, reason = True, f"reached {look.state}"
        elif look.state in ENDED_STATES:
            ok, reason = False, f"ended {look.state} instead of reaching {target}"
        elif clock() >= deadline:
            ok, reason = False, f"did not reach {target} within {timeout:g}s (last state {look.state})"
        else:
            sleep(poll)
            continue
        cause = hook.get_root_cause(job_id) if not ok or look.restarts else None
        return {"job_id": job_id, "ok": ok, "reason": reason, "root_cause": cause, **asdict(look)}


def ensure_stopped(hook: Any, job_id: str, log: Any, *, timeout: float = 120, poll: float = 1) -> str | None:
    """Make sure a job does not run: cancel it if it is active; a missing or ended job is left alone.

    :param hook: a ``FlinkRestHook``.
    :param job_id: the job.
    :param log: where to report.
    :param timeout: seconds to wait for the cancel.
    :param poll: seconds between polls.
    :return: the job's final state, or ``None`` when Flink does not know it.
    :raises TimeoutError: the job did not end in time.
    """
    job = hook.find_job(job_id)
    if job is None:
        log.info("Job %s does not exist: nothing to cancel", job_id)
        return None
    if job["state"] in ENDED_STATES:
        log.info("Job %s is already %s", job_id, job["state"])
        return str(job["state"])
    log.info("Cancelling job %s (%s)", job_id, job["state"])
    hook.cancel_job(job_id)
    deadline = time.monotonic() + timeout
    while (state := hook.get_job_state(job_id)) not in ENDED_STATES:
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} is still {state} {timeout:g}s after the cancel")
        time.sleep(poll)
    log.info("Job %s is %s", job_id, state)
    return str(state)


# --- restore points ---------------------------------------------------------------------------------------


def local_path(location: str) -> Path | None:
    """The local directory of a ``file:`` URI or absolute path; ``None`` for remote storage (s3://...).

    :param location: a savepoint/checkpoint location.
    """
    if location.startswith("file:"):
        return Path(re.sub(r"^file:(//)?", "", location))
    return Path(location) if location.startswith("/") else None


def normalize_location(location: str) -> str:
    """A snapshot location in the ``file:///path`` form (Flink reports local ones as ``file:/path``).

    The provider's operators accept only ``scheme://...`` URIs or absolute paths as ``savepoint_path``.

    :param location: a savepoint/checkpoint location.
    """
    return re.sub(r"^file:/(?!/)", "file:///", location)


def check_snapshot(location: str) -> str:
    """Check that a savepoint or retained checkpoint exists (its ``_metadata``), when it is on local disk.

    :param location: the snapshot's location.
    :raises VariableError: a local snapshot without ``_metadata``, or not a location at all.
    """
    try:
        _location(location)
    except ValueError as err:
        raise VariableError(f"not a snapshot location: {err}") from None
    path = local_path(location)
    if path is not None and not (path / "_metadata").is_file():
        raise VariableError(f"{location} is not a savepoint or checkpoint: {path / '_metadata'} does not exist")
    return normalize_location(location)


def latest_retained_checkpoint(checkpoint_dir: str, job_id: str) -> str | None:
    """The newest retained checkpoint of a job in a local checkpoint directory (``<dir>/<job>/chk-N``).

    For jobs the REST API has forgotten (``jobstore.expiration-time``).

    :param checkpoint_dir: the checkpoint storage (``execution.checkpointing.dir``).
    :param job_id: the job whose checkpoints to look at.
    """
    root = local_path(checkpoint_dir)
    if root is None:
        return None
    done = [c for c in (root / job_id).glob("chk-*") if (c / "_metadata").is_file() and c.name[4:].isdigit()]
    return str(max(done, key=lambda c: int(c.name[4:]))) if done else None


# --- last good --------------------------------------------------------------------------------------------


def last_good_variable(job_name: str) -> str:
    """The Variable that records the last version of ``job_name`` that passed the health gate.

    :param job_name: the base job name.
    """
    return f"{LAST_GOOD_PREFIX}{job_name}"


def record_last_good(record: Mapping[str, Any]) -> None:
    """Write the "last good" record (run time only).

    :param record: ``job_name``, ``version``, ``job_id``, ``savepoint``, ``restored_from``, ``dag_id``, ``run_id``.
    """
    from airflow.sdk import Variable

    value = {**record, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for key in ("savepoint", "restored_from"):
        if value.get(key):
            value[key] = normalize_location(str(value[key]))
    Variable.set(
        last_good_variable(str(record["job_name"])),
        json.dumps(value, sort_keys=True),
        description="Written by the phase 4 DAGs: the last version that passed the health gate.",
    )


# --- retries ----------------------------------------------------------------------------------------------


class FlinkRetryPolicy(RetryPolicy):
    """Retry what may pass on a later try; fail at once what cannot.

    Retried, with exponential backoff (``base`` doubling up to ``cap``): Flink unreachable, request and
    savepoint timeouts, savepoint failures, 429/5xx answers. Failed at once: bad settings or arguments
    (``ValueError``), bad SQL, unknown ids, missing connectors, jobs that failed. Anything else follows the
    task's own retries.

    :param base: first delay.
    :param cap: longest delay.
    """

    def __init__(self, base: timedelta = timedelta(seconds=5), cap: timedelta = timedelta(minutes=2)) -> None:
        self.base = base
        self.cap = cap

    def evaluate(
        self, exception: BaseException, try_number: int, max_tries: int, context: Context | None = None
    ) -> RetryDecision:
        """Decide from the exception (see the class docstring).

        :param exception: what the task raised.
        :param try_number: the try that failed (1-based).
        :param max_tries: the task's maximum tries.
        :param context: the task context.
        """
        from airflow_flink_provider.protocol.errors import (
            FlinkConnectionError,
            FlinkError,
            FlinkSavepointError,
            FlinkSavepointNotFoundError,
            FlinkTimeoutError,
        )

        transient = isinstance(exception, (FlinkConnectionError, FlinkTimeoutError)) or (
            isinstance(exception, FlinkSavepointError) and not isinstance(exception, FlinkSavepointNotFoundError)
        )
        if transient or (isinstance(exception, FlinkError) and exception.retryable):
            delay = min(self.base * 2 ** max(try_number - 1, 0), self.cap)
            return RetryDecision.retry(delay, f"transient: {type(exception).__name__}; retrying in {delay}")
        if isinstance(exception, (ValueError, FlinkError)):
            return RetryDecision.fail(f"not transient ({type(exception).__name__}): retrying cannot help")
        return RetryDecision.default()

    def serialize(self) -> dict[str, Any]:
        """Plain form, for DAG serialization."""
        return {"__type": type(self).__name__, "base": self.base.total_seconds(), "cap": self.cap.total_seconds()}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> FlinkRetryPolicy:
        """Rebuild from :meth:`serialize`.

        :param data: the plain form.
        """
        return cls(timedelta(seconds=data["base"]), timedelta(seconds=data["cap"]))
