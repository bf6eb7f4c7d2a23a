"""The Airflow Variables of the phase 0 and phase 1 DAG families: schema, defaults and validation.

This module is the one definition of the Variables. The DAGs validate with it at run time (never at parse
time), ``docs/local-setup.md`` shows the table :func:`schema_markdown` renders, and a test keeps the two in
sync. Each family has one JSON Variable; a key that is missing takes its default, and ``dag_run.conf`` keys
override the Variable for one run (handy with ``airflow dags test <dag> -c '{...}'``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

TOPIC_SUFFIX_LENGTH = 9
"""Each run appends ``-<8 hex digits>`` to every topic, so reruns never read an earlier run's events."""

KAFKA_TOPIC_MAX = 249
STARTUP_MODES = ("earliest-offset", "latest-offset", "group-offsets")

_TOPIC_CHARS = re.compile(r"^[a-zA-Z0-9._-]+$")
_CONN_ID = re.compile(r"^[a-zA-Z0-9._-]+$")
_BROKER = re.compile(r"(?:[a-zA-Z0-9._-]+|\[[0-9a-fA-F:.]+\]):(?P<port>[0-9]{1,5})")
_DURATION = re.compile(r"^\s*(\d+)\s*([a-zA-Z]+)\s*$")
_UNITS_MS = {
    "ms": 1, "millisecond": 1, "milliseconds": 1,
    "s": 1000, "sec": 1000, "secs": 1000, "second": 1000, "seconds": 1000,
    "m": 60_000, "min": 60_000, "mins": 60_000, "minute": 60_000, "minutes": 60_000,
    "h": 3_600_000, "hour": 3_600_000, "hours": 3_600_000,
}  # fmt: skip


class VariableError(ValueError):
    """A Variable (or run conf) value breaks a rule; the message names every key at fault and its rule."""


@dataclass(frozen=True)
class Duration:
    """A validated duration: whole seconds, as Flink SQL interval literals need.

    :param ms: the length in milliseconds (a multiple of 1000).
    """

    ms: int

    @property
    def text(self) -> str:
        """The canonical short form, e.g. ``10s``, ``2m``, ``1h``: used in expected-output folder names."""
        for unit, size in (("h", 3_600_000), ("m", 60_000)):
            if self.ms and self.ms % size == 0:
                return f"{self.ms // size}{unit}"
        return f"{self.ms // 1000}s"

    @property
    def sql(self) -> str:
        """The Flink SQL interval literal, e.g. ``INTERVAL '10' SECOND`` or ``INTERVAL '150' MINUTE(3)``."""
        for unit, size in (("HOUR", 3_600_000), ("MINUTE", 60_000), ("SECOND", 1000)):
            if self.ms % size == 0 and (self.ms or unit == "SECOND"):
                value = self.ms // size
                digits = len(str(value))
                return f"INTERVAL '{value}' {unit}" + (f"({digits})" if digits > 2 else "")
        raise AssertionError("durations are whole seconds")


def parse_duration(value: Any) -> Duration:
    """Parse ``"10s"``, ``"2 min"``, ``"1h"``, ``"1500ms"``... into a :class:`Duration`.

    :param value: the Variable's value.
    :raises ValueError: on anything else, or on a duration that is not a whole number of seconds.
    """
    match = _DURATION.match(value) if isinstance(value, str) else None
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS_MS:
        raise ValueError(
            f"must be a duration such as '10s', '2 min', '1h' or '1500ms' (units: ms, s, min, h), got {value!r}"
        )
    ms = int(match.group(1)) * _UNITS_MS[unit]
    if ms % 1000:
        raise ValueError(f"must be a whole number of seconds (Flink SQL interval literals), got {value!r}")
    return Duration(ms)


def check_bootstrap(value: Any) -> str:
    """Check Kafka bootstrap servers: ``host:port[,host:port...]``, as they go into rendered SQL options.

    :param value: the Variable's value, or the Kafka connection's ``bootstrap.servers``.
    :raises ValueError: naming the rule that fails (a quote, space or control character never passes).
    """
    rule = "must be host:port[,host:port...] (ports 1-65535; no quotes, spaces or control characters)"
    if not isinstance(value, str):
        raise ValueError(f"{rule}, got {value!r}")
    for broker in value.split(","):
        match = _BROKER.fullmatch(broker)
        if match is None or not 1 <= int(match.group("port")) <= 65535:
            raise ValueError(f"{rule}, got {value!r}")
    return value


def check_topic(name: Any) -> str:
    """Check a topic base name against Kafka's rules, leaving room for the run suffix.

    :param name: the Variable's value.
    :raises ValueError: naming the rule that fails.
    """
    limit = KAFKA_TOPIC_MAX - TOPIC_SUFFIX_LENGTH
    if not isinstance(name, str) or not name:
        raise ValueError(f"must be a non-empty string, got {name!r}")
    if name in {".", ".."}:
        raise ValueError(f"must not be '.' or '..' (Kafka reserves them), got {name!r}")
    if not _TOPIC_CHARS.match(name):
        bad = sorted({c for c in name if not re.match(r"[a-zA-Z0-9._-]", c)})
        raise ValueError(f"may only contain the characters [a-zA-Z0-9._-] (Kafka topic names), found {bad}")
    if len(name) > limit:
        raise ValueError(
            f"must be at most {limit} characters ({KAFKA_TOPIC_MAX}, Kafka's limit, minus the "
            f"{TOPIC_SUFFIX_LENGTH}-character run suffix), got {len(name)}"
        )
    return name


@dataclass(frozen=True)
class Key:
    """One key of a Variable.

    :param name: the key; ``topics.<role>`` keys live in the Variable's ``topics`` object.
    :param kind: ``topic``, ``duration``, ``int``, ``choice``, ``conn_id`` or ``bootstrap``.
    :param default: the value used when the Variable does not set the key.
    :param description: what it is for, for the docs.
    :param choices: the allowed values of a ``choice`` key.
    :param minimum: the smallest allowed ``int`` or ``duration`` (in ms).
    :param nullable: ``None`` is allowed (meaning: derive it, see the description).
    """

    name: str
    kind: str
    default: Any
    description: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    nullable: bool = False

    @property
    def rule(self) -> str:
        """The rule in words, for the docs and error messages."""
        rules = {
            "topic": f"[a-zA-Z0-9._-], 1-{KAFKA_TOPIC_MAX - TOPIC_SUFFIX_LENGTH} chars, not '.' or '..'",
            "duration": "whole seconds, e.g. '10s', '2 min', '1h'",
            "int": "integer",
            "choice": "one of " + ", ".join(self.choices),
            "conn_id": "an Airflow connection id",
            "bootstrap": "host:port[,host:port...]",
        }
        rule = rules[self.kind]
        if self.minimum is not None:
            rule += f", >= {minimum_text(self)}"
        return rule + (", or null" if self.nullable else "")

    def check(self, value: Any) -> Any:
        """Validate one value.

        :param value: the value from the Variable, the run conf or the default.
        :return: the value, parsed (a :class:`Duration` for durations).
        :raises ValueError: naming the rule that fails.
        """
        if value is None and self.nullable:
            return None
        if self.kind == "topic":
            return check_topic(value)
        if self.kind == "duration":
            duration = parse_duration(value)
            if self.minimum is not None and duration.ms < self.minimum:
                raise ValueError(f"must be at least {minimum_text(self)}, got {value!r}")
            return duration
        if self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"must be an integer, got {value!r}")
            if self.minimum is not None and value < self.minimum:
                raise ValueError(f"must be at least {self.minimum}, got {value!r}")
            return value
        if self.kind == "choice":
            if value not in self.choices:
                raise ValueError(f"must be one of {list(self.choices)}, got {value!r}")
            return value
        if self.kind == "conn_id":
            if not isinstance(value, str) or not _CONN_ID.match(value):
                raise ValueError(f"must be an Airflow connection id ([a-zA-Z0-9._-]+), got {value!r}")
            return value
        if self.kind == "bootstrap":
            return check_bootstrap(value)
        raise AssertionError(f"unknown kind {self.kind}")


def minimum_text(key: Key) -> str:
    """The minimum of a key as users write it.

    :param key: a key with a minimum.
    """
    if key.kind == "duration" and key.minimum is not None:
        return Duration(key.minimum).text if key.minimum else "0s"
    return str(key.minimum)


@dataclass(frozen=True)
class Family:
    """The JSON Variable of one DAG family.

    :param variable: the Variable's name.
    :param title: what the family is, for the docs.
    :param keys: its keys.
    """

    variable: str
    title: str
    keys: tuple[Key, ...] = field(default_factory=tuple)

    def key(self, name: str) -> Key:
        """The key called ``name``.

        :param name: e.g. ``window_size`` or ``topics.late_input``.
        """
        return next(k for k in self.keys if k.name == name)

    def defaults(self) -> dict[str, Any]:
        """The Variable's default JSON value (topics nested under ``topics``)."""
        value: dict[str, Any] = {}
        for key in self.keys:
            if key.name.startswith("topics."):
                value.setdefault("topics", {})[key.name.removeprefix("topics.")] = key.default
            else:
                value[key.name] = key.default
        return value


def _common_keys(*, consumer: bool) -> tuple[Key, ...]:
    keys = [
        Key("startup_mode", "choice", "earliest-offset",
            "Where the Flink Kafka source starts ('scan.startup.mode'). The expected outputs assume "
            "earliest-offset; latest-offset reads nothing that was produced before the job started.",
            choices=STARTUP_MODES),
        Key("parallelism", "int", 1,
            "Parallelism of the Flink jobs (slots they need). Set it above the cluster's slot count to see the "
            "'not enough task slots' failure.", minimum=1),
        Key("kafka_conn_id", "conn_id", "kafka_default",
            "Airflow Kafka connection used to create topics and produce the fixtures."),
        Key("flink_bootstrap_servers", "bootstrap", None,
            "Kafka bootstrap servers as Flink reaches them; null: the Kafka connection's bootstrap.servers.",
            nullable=True),
    ]
    if consumer:
        keys.append(
            Key("kafka_consumer_conn_id", "conn_id", "kafka_practice_consumer",
                "Airflow Kafka connection used to read the sink topics; it needs group.id and "
                "auto.offset.reset=earliest (see docs/local-setup.md).")
        )
    return tuple(keys)


PHASE0 = Family(
    variable="flink_phase0",
    title="Phase 0: Kafka source, transformation, print sink",
    keys=(
        Key("topics.input", "topic", "phase0-orders", "Topic the order fixture is produced to and Flink reads."),
        *_common_keys(consumer=False),
        Key("observe_timeout", "duration", "60s",
            "How long the observe task waits for the print sink's lines in the TaskManager's stdout.",
            minimum=1000),
    ),
)

_PHASE1_TOPICS = (
    ("malformed_input", "phase1-malformed-input", "malformed_json: raw events, some malformed"),
    ("malformed_parsed", "phase1-malformed-parsed", "malformed_json (a): rows kept by json.ignore-parse-errors"),
    ("malformed_clean", "phase1-malformed-clean", "malformed_json (b): valid rows"),
    ("malformed_dlq", "phase1-malformed-dlq", "malformed_json (b): dead letters with reason and payload"),
    ("schema_input", "phase1-schema-input", "schema_evolution: v1 and v2 producers' events"),
    ("schema_v1", "phase1-schema-v1", "schema_evolution: read with the original table"),
    ("schema_v2", "phase1-schema-v2", "schema_evolution: read again after ALTER TABLE ADD"),
    ("event_time_input", "phase1-event-time-input", "event_time_watermarks: readings, epoch and ISO times"),
    ("event_time_tumble", "phase1-event-time-tumble", "event_time_watermarks: tumbling window results"),
    ("event_time_hop", "phase1-event-time-hop", "event_time_watermarks: hopping window results"),
    ("dedup_input", "phase1-dedup-input", "dedup: order status events with duplicates"),
    ("dedup_first", "phase1-dedup-first", "dedup: keep-first rows (append)"),
    ("dedup_last", "phase1-dedup-last", "dedup: keep-last rows (upsert, keyed by order_id)"),
    ("late_input", "phase1-late-input", "late_events: events in arrival order"),
    ("late_windows", "phase1-late-windows", "late_events: tumbling window results"),
    ("late_events", "phase1-late-events", "late_events: the events the windows dropped as late"),
    ("failure_input", "phase1-failure-input", "failure_checks: events with a malformed one"),
    ("failure_output", "phase1-failure-output", "failure_checks: the strict JSON job's sink"),
)

PHASE1 = Family(
    variable="flink_phase1",
    title="Phase 1: data quality and transformation scenarios",
    keys=(
        *(Key(f"topics.{role}", "topic", default, text) for role, default, text in _PHASE1_TOPICS),
        Key("window_size", "duration", "10s", "Size of the tumbling and hopping windows.", minimum=1000),
        Key("window_slide", "duration", "5s",
            "Slide of the hopping windows: no larger than window_size, and window_size must be a whole "
            "multiple of it (Flink's HOP window TVF requires it).", minimum=1000),
        Key("watermark_delay", "duration", "2s",
            "Bounded out-of-orderness: WATERMARK FOR event_time AS event_time - <delay>.", minimum=0),
        *_common_keys(consumer=True),
    ),
)

FAMILIES = {family.variable: family for family in (PHASE0, PHASE1)}


def merge(family: Family, variable: Mapping[str, Any] | None, conf: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults, overridden by the Variable, overridden by the run conf; ``topics`` merges per role.

    :param family: the Variable's family.
    :param variable: the Variable's JSON value, or ``None`` when it is not set.
    :param conf: the DAG run's conf.
    :raises VariableError: when the Variable or conf is not a JSON object or has unknown keys.
    """
    merged = family.defaults()
    for source, values in ((f"Variable '{family.variable}'", variable), ("the run conf", conf)):
        if values is None:
            continue
        if not isinstance(values, Mapping):
            raise VariableError(f"{source} must be a JSON object, got {type(values).__name__}")
        unknown = sorted(set(values) - set(merged))
        topics = values.get("topics", {})
        if not isinstance(topics, Mapping):
            raise VariableError(f"{source}: key 'topics' must be a JSON object of role -> topic name")
        unknown += sorted(f"topics.{role}" for role in set(topics) - set(merged.get("topics", {})))
        if unknown:
            known = ", ".join(key.name for key in family.keys)
            raise VariableError(f"{source}: unknown key(s) {unknown}; known keys: {known}")
        for name, value in values.items():
            if name == "topics":
                merged["topics"] = {**merged["topics"], **topics}
            else:
                merged[name] = value
    return merged


def validate(family: Family, values: Mapping[str, Any]) -> dict[str, Any]:
    """Check every key of a merged Variable value; report all problems at once.

    :param family: the Variable's family.
    :param values: the output of :func:`merge`.
    :return: key name (``topics.<role>`` for topics) -> parsed value.
    :raises VariableError: one line per key at fault, naming the key, its value and the rule.
    """
    parsed: dict[str, Any] = {}
    problems: list[str] = []
    for key in family.keys:
        raw = values["topics"][key.name.removeprefix("topics.")] if key.name.startswith("topics.") else values[key.name]
        try:
            parsed[key.name] = key.check(raw)
        except ValueError as err:
            problems.append(f"{key.name}: {err}")
    size, slide = parsed.get("window_size"), parsed.get("window_slide")
    if isinstance(size, Duration) and isinstance(slide, Duration):
        if slide.ms > size.ms:
            problems.append(f"window_slide: must not be larger than window_size ({size.text}), got {slide.text}")
        elif size.ms % slide.ms:
            problems.append(
                f"window_slide: window_size ({size.text}) must be a whole multiple of window_slide "
                f"(Flink's HOP window TVF requires it), got {slide.text}"
            )
    if problems:
        raise VariableError(
            f"Invalid settings for Variable '{family.variable}' (nothing was submitted):\n  - "
            + "\n  - ".join(problems)
        )
    return parsed


def run_tag(dag_id: str, run_id: str) -> str:
    """Eight hex digits that identify one DAG run: appended to topics, used as the print identifier.

    :param dag_id: the DAG's id.
    :param run_id: the run's id.
    """
    return hashlib.sha256(f"{dag_id}\n{run_id}".encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Settings:
    """The validated settings of one DAG run, ready for SQL templates and tasks.

    :param family: the Variable's name.
    :param tag: the run tag (:func:`run_tag`).
    :param values: parsed values by key name.
    :param bootstrap_servers: the Kafka brokers as Flink reaches them.
    """

    family: str
    tag: str
    values: Mapping[str, Any]
    bootstrap_servers: str

    @property
    def topics(self) -> dict[str, str]:
        """Topic role -> this run's topic name (base name plus the run suffix)."""
        return {
            name.removeprefix("topics."): f"{value}-{self.tag}"
            for name, value in self.values.items()
            if name.startswith("topics.")
        }

    def to_json(self) -> dict[str, Any]:
        """A JSON-serializable form (for XCom): durations as their text, and this run's ``topics``."""
        values = {name: (value.text if isinstance(value, Duration) else value) for name, value in self.values.items()}
        return {
            "family": self.family,
            "tag": self.tag,
            "values": values,
            "bootstrap_servers": self.bootstrap_servers,
            "topics": self.topics,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Settings:
        """Rebuild from :meth:`to_json`.

        :param data: the XCom value.
        """
        family = FAMILIES[data["family"]]
        values = {
            name: (parse_duration(value) if family.key(name).kind == "duration" else value)
            for name, value in data["values"].items()
        }
        return cls(data["family"], data["tag"], values, data["bootstrap_servers"])

    def duration(self, name: str) -> Duration:
        """A duration setting.

        :param name: its key.
        """
        value = self.values[name]
        assert isinstance(value, Duration)
        return value


def resolve(
    family: Family,
    variable: Mapping[str, Any] | None,
    conf: Mapping[str, Any] | None,
    *,
    tag: str,
    connection_bootstrap: Callable[[str], Any],
) -> Settings:
    """Merge and validate, then fill the derived values.

    :param family: the Variable's family.
    :param variable: the Variable's JSON value, or ``None``.
    :param conf: the run conf.
    :param tag: the run tag.
    :param connection_bootstrap: gives ``bootstrap.servers`` of a Kafka connection id; used (and checked)
        only when ``flink_bootstrap_servers`` is null.
    :raises VariableError: on any invalid value.
    """
    values = validate(family, merge(family, variable, conf))
    bootstrap = values.get("flink_bootstrap_servers") or connection_bootstrap_servers(
        family, values["kafka_conn_id"], connection_bootstrap
    )
    return Settings(family.variable, tag, values, bootstrap)


def connection_bootstrap_servers(family: Family, conn_id: str, connection_bootstrap: Callable[[str], Any]) -> str:
    """``bootstrap.servers`` of the Kafka connection, checked like the Variable's own value.

    :param family: the Variable's family (for the message).
    :param conn_id: the Kafka connection id.
    :param connection_bootstrap: gives ``bootstrap.servers`` of a Kafka connection id.
    :raises VariableError: naming the connection, when the value is missing or breaks the rule.
    """
    value = connection_bootstrap(conn_id)
    if not value:
        raise VariableError(
            f"Invalid settings for Variable '{family.variable}': flink_bootstrap_servers is null and the Kafka "
            f"connection '{conn_id}' has no bootstrap.servers"
        )
    try:
        return check_bootstrap(value)
    except ValueError as err:
        raise VariableError(
            f"Invalid settings for Variable '{family.variable}': flink_bootstrap_servers is null, and "
            f"bootstrap.servers of the Kafka connection '{conn_id}' {err} (nothing was submitted)"
        ) from None


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


def schema_markdown(family: Family) -> str:
    """The Markdown table of a family's keys: docs/local-setup.md embeds it (a test checks it is current).

    :param family: the Variable's family.
    """
    lines = [
        f"Variable `{family.variable}` ({family.title}):",
        "",
        "| key | default | rule | meaning |",
        "|---|---|---|---|",
    ]
    for key in family.keys:
        lines.append(f"| `{key.name}` | `{json.dumps(key.default)}` | {key.rule} | {key.description} |")
    return "\n".join(lines)
