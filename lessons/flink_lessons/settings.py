"""The one settings system of the lesson DAGs: every Variable family is a :class:`Family` of :class:`Key` s.

A DAG run's settings are the family's defaults, overridden by its JSON Variable, overridden by the run conf
(``airflow dags test <dag> -c '{...}'`` or "Trigger DAG w/ config"). A dotted key is a nested object:
``topics.input`` is ``{"topics": {"input": ...}}``, and nested objects merge per key. :func:`resolve`
validates every key at run time (never at parse time) and reports every problem at once, each with where its
value came from (the defaults, the Variable or the run conf), before anything is created or submitted.
:func:`schema_markdown` renders a family's table; docs/local-setup.md and playbooks/rollback-retry.md embed
the tables and tests keep them current.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from flink_lessons.rules import Duration, DurationRule, check_bootstrap, parse_duration

DEFAULTS = "the defaults"
RUN_CONF = "the run conf"


class VariableError(ValueError):
    """A setting breaks a rule; the message names every key at fault, its rule and where its value came from."""


class Check(Protocol):
    """A value check of :mod:`flink_lessons.rules`: called with a value, returns it parsed or raises ValueError."""

    @property
    def rule(self) -> str:
        """The rule in words."""

    def __call__(self, value: Any) -> Any:
        """Check and parse ``value``."""


def variable_source(name: str) -> str:
    """How messages name a Variable.

    :param name: the Variable's name.
    """
    return f"Variable '{name}'"


@dataclass(frozen=True)
class Key:
    """One key of a family.

    :param name: the key; ``group.key`` for a key of the nested object ``group``.
    :param default: its value when nothing sets it.
    :param check: the rule its values follow (see :mod:`flink_lessons.rules`).
    :param description: what it is for, for the docs.
    :param nullable: ``null`` is allowed (meaning: derive it, see the description).
    """

    name: str
    default: Any
    check: Check
    description: str
    nullable: bool = False

    @property
    def rule(self) -> str:
        """The rule in words, for the docs."""
        return self.check.rule + (", or null" if self.nullable else "")

    def parse(self, value: Any) -> Any:
        """Check one value.

        :param value: from the defaults, a Variable or the run conf.
        :raises ValueError: naming the rule.
        """
        return None if value is None and self.nullable else self.check(value)


@dataclass(frozen=True)
class Problem:
    """A rule that spans keys is broken.

    :param keys: the keys involved, the one to change first.
    :param message: the rule and the values.
    """

    keys: tuple[str, ...]
    message: str


CrossCheck = Callable[[Mapping[str, Any]], Iterable[Problem]]
"""Given the parsed values (``None`` for keys that failed their own check), the problems across keys."""


@dataclass(frozen=True)
class Family:
    """The JSON Variable of a family of DAGs, and the bootstrap servers it derives.

    :param variable: the Variable's name.
    :param title: what the family is, for the docs.
    :param keys: its keys.
    :param checks: rules across keys.
    :param bootstrap_key: the key of the Kafka brokers as Flink reaches them; when it is null they come
        from the Kafka connection named by ``kafka_conn_id``. Empty: the family has no brokers.
    """

    variable: str
    title: str
    keys: tuple[Key, ...]
    checks: tuple[CrossCheck, ...] = field(default=())
    bootstrap_key: str = ""

    def key(self, name: str) -> Key:
        """The key called ``name``.

        :param name: e.g. ``window_size`` or ``topics.late_input``.
        """
        return next(k for k in self.keys if k.name == name)

    def defaults(self) -> dict[str, Any]:
        """The Variable's default JSON value (nested objects for dotted keys)."""
        value: dict[str, Any] = {}
        for key in self.keys:
            group, _, name = key.name.rpartition(".")
            (value.setdefault(group, {}) if group else value)[name] = key.default
        return value


@dataclass
class Merged:
    """The raw values of a run, and where each came from.

    :param values: dotted key -> raw value.
    :param origin: dotted key -> ``the defaults``, ``Variable '...'`` or ``the run conf``.
    """

    values: dict[str, Any]
    origin: dict[str, str]


def merge(family: Family, *layers: tuple[str, Any]) -> Merged:
    """The defaults, overridden by each layer in turn; nested objects merge per key.

    :param family: the family.
    :param layers: ``(where it comes from, JSON value or None)``, e.g. the Variable, then the run conf.
    :raises VariableError: on a layer that is not a JSON object or has unknown keys.
    """
    merged = Merged({key.name: key.default for key in family.keys}, {key.name: DEFAULTS for key in family.keys})
    groups = {key.name.rpartition(".")[0] for key in family.keys} - {""}
    for source, layer in layers:
        if layer is None:
            continue
        if not isinstance(layer, Mapping):
            raise VariableError(f"{source} must be a JSON object, got {type(layer).__name__}")
        unknown: list[str] = []
        for name, value in layer.items():
            if name in groups:
                if not isinstance(value, Mapping):
                    raise VariableError(f"{source}: key '{name}' must be a JSON object, got {value!r}")
                items = [(f"{name}.{sub}", sub_value) for sub, sub_value in value.items()]
            else:
                items = [(str(name), value)]
            for dotted, item in items:
                if dotted not in merged.values:
                    unknown.append(dotted)
                else:
                    merged.values[dotted], merged.origin[dotted] = item, source
        if unknown:
            known = ", ".join(key.name for key in family.keys)
            raise VariableError(f"{source}: unknown key(s) {unknown}; known keys: {known}")
    return merged


def validate(family: Family, merged: Merged) -> dict[str, Any]:
    """Check every key and every rule across keys; report all problems at once.

    :param family: the family.
    :param merged: the output of :func:`merge`.
    :return: dotted key -> parsed value.
    :raises VariableError: one line per problem, naming the key(s), where each value came from, and the rule.
    """
    parsed: dict[str, Any] = {}
    problems: list[Problem] = []
    for key in family.keys:
        try:
            parsed[key.name] = key.parse(merged.values[key.name])
        except ValueError as err:
            parsed[key.name] = None
            problems.append(Problem((key.name,), str(err)))
    for check in family.checks:
        problems.extend(check(parsed))
    if problems:
        lines = [" vs ".join(f"{k} (from {merged.origin[k]})" for k in p.keys) + f": {p.message}" for p in problems]
        raise VariableError("Invalid settings (nothing was submitted):\n  - " + "\n  - ".join(lines))
    return parsed


def run_tag(dag_id: str, run_id: str, attempt: int = 1, instance: str = "") -> str:
    """Eight hex digits that identify one DAG run: appended to its topics and job names.

    A run cleared from the UI runs its settings task again (``attempt`` 2, 3...): it gets a new tag, so it
    starts on fresh topics instead of reading the fixture its earlier attempt produced there too. A run made
    again for the same logical date (``airflow dags test <dag> <date>`` twice: Airflow deletes the earlier run
    and creates a new one under the same run id, its tasks at try 1) differs only by its task instances' ids:
    ``instance`` tells it apart.

    :param dag_id: the DAG's id.
    :param run_id: the run's id.
    :param attempt: the settings task's try number.
    :param instance: the settings task instance's id (new for each try and each re-created run).
    """
    key = f"{dag_id}\n{run_id}" + (f"\n{attempt}" if attempt > 1 else "") + (f"\n{instance}" if instance else "")
    return hashlib.sha256(key.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Settings:
    """The validated settings of one DAG run.

    :param family: the Variable's name.
    :param values: parsed values by dotted key (durations as :class:`~flink_lessons.rules.Duration`).
    :param tag: the run tag (:func:`run_tag`) appended to ``topics.*``; empty: topics are used as named.
    :param bootstrap_servers: the Kafka brokers as Flink reaches them (``None`` for families without).
    """

    family: str
    values: Mapping[str, Any]
    tag: str = ""
    bootstrap_servers: str | None = None

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def duration(self, name: str) -> Duration:
        """A duration setting.

        :param name: its key.
        """
        value = self.values[name]
        assert isinstance(value, Duration)
        return value

    @property
    def topics(self) -> dict[str, str]:
        """Topic role -> this run's topic name (with ``-<tag>`` appended when there is a tag)."""
        suffix = f"-{self.tag}" if self.tag else ""
        return {k.removeprefix("topics."): f"{v}{suffix}" for k, v in self.values.items() if k.startswith("topics.")}

    def to_json(self) -> dict[str, Any]:
        """A JSON-serializable form (for XCom): durations as their text, and this run's ``topics``."""
        values = {name: (value.text if isinstance(value, Duration) else value) for name, value in self.values.items()}
        return {"family": self.family, "tag": self.tag, "values": values,
                "bootstrap_servers": self.bootstrap_servers, "topics": self.topics}  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Settings:
        """Rebuild from :meth:`to_json` (durations parsed again).

        :param data: the XCom value.
        """
        from flink_lessons.families import FAMILIES

        family = FAMILIES[data["family"]]
        values = {
            name: (parse_duration(value) if isinstance(family.key(name).check, DurationRule) and value else value)
            for name, value in data["values"].items()
        }
        return cls(data["family"], values, data["tag"], data["bootstrap_servers"])


def resolve(
    family: Family,
    *layers: tuple[str, Any],
    tag: str = "",
    connection_bootstrap: Callable[[str], Any] | None = None,
) -> Settings:
    """Merge and validate a run's settings, then derive the bootstrap servers.

    :param family: the family.
    :param layers: ``(where it comes from, JSON value or None)``, lowest first (see :func:`layers`).
    :param tag: the run tag, for families whose topics are per run.
    :param connection_bootstrap: gives ``bootstrap.servers`` of a Kafka connection id; called (and its answer
        checked like a setting) only when the family's bootstrap key is null.
    :raises VariableError: on any invalid value.
    """
    merged = merge(family, *layers)
    values = validate(family, merged)
    bootstrap = None
    if family.bootstrap_key:
        bootstrap = values[family.bootstrap_key]
        if bootstrap is None:
            assert connection_bootstrap is not None, "the family takes its brokers from a connection"
            conn_id = values["kafka_conn_id"]
            bootstrap = checked_connection_bootstrap(family.bootstrap_key, merged.origin["kafka_conn_id"],
                                                     conn_id, connection_bootstrap(conn_id))  # fmt: skip
    return Settings(family.variable, values, tag, bootstrap)


def resolve_for_task(family: Family, context: Mapping[str, Any], *given: tuple[str, Any]) -> Settings:
    """:func:`resolve` for the task instance that runs now: a run tag per try and task instance (:func:`run_tag`),
    the brokers from the Kafka connection when the family's bootstrap key is null.

    :param family: the family.
    :param context: the task's Airflow context (its ``dag_run`` and ``ti``).
    :param given: the layers to merge; by default the family's Variable and the run conf (:func:`layers`).
    :raises VariableError: on any invalid value.
    """
    dag_run, ti = context["dag_run"], context["ti"]
    return resolve(family, *(given or layers(family.variable, dag_run.conf)),
                   tag=run_tag(dag_run.dag_id, dag_run.run_id, ti.try_number, str(ti.id)),
                   connection_bootstrap=connection_bootstrap)  # fmt: skip


def checked_connection_bootstrap(key: str, origin: str, conn_id: str, value: Any) -> str:
    """``bootstrap.servers`` of a Kafka connection, checked like the setting it stands in for.

    :param key: the bootstrap key that is null.
    :param origin: where ``kafka_conn_id`` came from.
    :param conn_id: the Kafka connection's id.
    :param value: its ``bootstrap.servers``.
    :raises VariableError: naming the connection, when the value is missing or breaks the rule.
    """
    where = f"{key} is null, so the brokers come from the Kafka connection '{conn_id}' (kafka_conn_id, from {origin})"
    if not value:
        raise VariableError(f"Invalid settings (nothing was submitted): {where}, which has no bootstrap.servers")
    try:
        return check_bootstrap(value)
    except ValueError as err:
        raise VariableError(f"Invalid settings (nothing was submitted): {where}; its bootstrap.servers {err}") from None


def layers(variable: str, conf: Mapping[str, Any] | None, *, exclude: Iterable[str] = ()) -> list[tuple[str, Any]]:
    """The Variable's JSON value and the run conf as :func:`resolve` layers (run time only).

    :param variable: the Variable's name.
    :param conf: the DAG run's conf.
    :param exclude: run conf keys that are not settings (the DAG's params).
    """
    skipped = set(exclude)
    run_conf = {key: value for key, value in (conf or {}).items() if key not in skipped}
    return [(variable_source(variable), load_variable(variable)), (RUN_CONF, run_conf)]


def load_variable(name: str) -> Any:
    """Read a JSON Variable at run time; ``None`` when it is not set.

    :param name: the Variable's name.
    :raises VariableError: when its value is not JSON.
    """
    from airflow.sdk import Variable

    raw = Variable.get(name, default=None)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as err:
        raise VariableError(f"Variable '{name}' is not valid JSON: {err}") from None


def connection_bootstrap(conn_id: str) -> Any:
    """``bootstrap.servers`` of an Airflow Kafka connection (run time only).

    :param conn_id: the connection id.
    """
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id).extra_dejson.get("bootstrap.servers")


def schema_markdown(family: Family) -> str:
    """The Markdown table of a family's keys, which the docs embed (tests check they are current).

    :param family: the family.
    """
    lines = [f"Variable `{family.variable}` ({family.title}):", "",
             "| key | default | rule | meaning |", "|---|---|---|---|"]  # fmt: skip
    lines += [f"| `{k.name}` | `{json.dumps(k.default)}` | {k.rule} | {k.description} |" for k in family.keys]
    return "\n".join(lines)
