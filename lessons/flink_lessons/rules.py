"""The value checks of the settings: topics, brokers, durations, names, locations...

Each check is a small object: called with a value, it returns the value parsed (a :class:`Duration` for
durations) or raises ``ValueError`` naming the rule; its ``rule`` is the same rule in words, for the docs
tables and messages. Pure Python, no Airflow: the settings of every DAG family are built from these.

The PyFlink jobs check their own command line in Flink's Python (``include/pyflink/<job>/jobkit.py``);
``tests/unit/test_pyflink_jobkit.py`` checks that the job and these rules accept and refuse the same topics,
brokers and group ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

KAFKA_TOPIC_MAX = 249
"""Kafka's limit on topic names."""

_TOPIC_CHAR = re.compile(r"[a-zA-Z0-9._-]")
_BROKER = re.compile(r"(?:[a-zA-Z0-9._-]+|\[[0-9a-fA-F:.]+\]):(?P<port>[0-9]{1,5})")
_DURATION = re.compile(r"^\s*(\d+)\s*([a-zA-Z]+)\s*$")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:/\S+")
_UNITS_MS = {
    "ms": 1, "millisecond": 1, "milliseconds": 1,
    "s": 1000, "sec": 1000, "secs": 1000, "second": 1000, "seconds": 1000,
    "m": 60_000, "min": 60_000, "mins": 60_000, "minute": 60_000, "minutes": 60_000,
    "h": 3_600_000, "hour": 3_600_000, "hours": 3_600_000,
}  # fmt: skip


@dataclass(frozen=True)
class Duration:
    """A validated duration: whole seconds, as Flink SQL interval literals need.

    :param ms: the length in milliseconds (a multiple of 1000).
    """

    ms: int

    @property
    def seconds(self) -> int:
        """The length in whole seconds."""
        return self.ms // 1000

    @property
    def text(self) -> str:
        """The canonical short form, e.g. ``10s``, ``2m``, ``1h``: used in expected-output folder names."""
        for unit, size in (("h", 3_600_000), ("m", 60_000)):
            if self.ms and self.ms % size == 0:
                return f"{self.ms // size}{unit}"
        return f"{self.seconds}s"

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

    :param value: the setting's value.
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

    :param value: a setting, or a Kafka connection's ``bootstrap.servers``.
    :raises ValueError: naming the rule (a quote, space or control character never passes).
    """
    if isinstance(value, str):
        matches = [_BROKER.fullmatch(broker) for broker in value.split(",")]
        if all(m is not None and 1 <= int(m.group("port")) <= 65535 for m in matches):
            return value
    rule = f"{Bootstrap.rule} (ports 1-65535; no quotes, spaces or control characters)"
    raise ValueError(f"must be {rule}, got {value!r}")


def check_topic(name: Any, reserve: int = 0) -> str:
    """Check a topic name against Kafka's rules.

    :param name: the setting's value.
    :param reserve: characters kept free for a suffix the DAG appends (the run tag).
    :raises ValueError: naming the rule that fails.
    """
    limit = KAFKA_TOPIC_MAX - reserve
    if not isinstance(name, str) or not name:
        raise ValueError(f"must be a non-empty string, got {name!r}")
    if name in {".", ".."}:
        raise ValueError(f"must not be '.' or '..' (Kafka reserves them), got {name!r}")
    bad = sorted({c for c in name if not _TOPIC_CHAR.fullmatch(c)})
    if bad:
        raise ValueError(f"may only contain the characters [a-zA-Z0-9._-] (Kafka topic names), found {bad}")
    if len(name) > limit:
        suffix = f" minus the {reserve}-character run suffix" if reserve else ""
        why = f"{KAFKA_TOPIC_MAX}, Kafka's limit{suffix}"
        raise ValueError(f"must be at most {limit} characters ({why}), got {len(name)}")
    return name


@dataclass(frozen=True)
class Topic:
    """A Kafka topic name.

    :param reserve: characters kept free for the run suffix the DAG appends.
    """

    reserve: int = 0

    @property
    def rule(self) -> str:
        """The rule in words."""
        return f"[a-zA-Z0-9._-], 1-{KAFKA_TOPIC_MAX - self.reserve} chars, not '.' or '..'"

    def __call__(self, value: Any) -> str:
        return check_topic(value, self.reserve)


@dataclass(frozen=True)
class Bootstrap:
    """Kafka brokers as Flink reaches them."""

    rule = "host:port[,host:port...]"

    def __call__(self, value: Any) -> str:
        return check_bootstrap(value)


@dataclass(frozen=True)
class DurationRule:
    """A duration in whole seconds.

    :param minimum_ms: the shortest allowed, in milliseconds.
    """

    minimum_ms: int = 0

    @property
    def rule(self) -> str:
        """The rule in words."""
        return f"whole seconds, e.g. '10s', '2 min', '1h', >= {Duration(self.minimum_ms).text}"

    def __call__(self, value: Any) -> Duration:
        duration = parse_duration(value)
        if duration.ms < self.minimum_ms:
            raise ValueError(f"must be at least {Duration(self.minimum_ms).text}, got {value!r}")
        return duration


@dataclass(frozen=True)
class Number:
    """A JSON number (not a boolean).

    :param minimum: the smallest allowed.
    """

    minimum: float
    kind: ClassVar[str] = "number"
    types: ClassVar[tuple[type, ...]] = (float, int)
    """The Python types of the JSON values allowed; the first converts the value."""

    @property
    def rule(self) -> str:
        """The rule in words."""
        return f"{self.kind}, >= {self._minimum_text}"

    @property
    def _minimum_text(self) -> str:
        return f"{self.minimum:g}" if isinstance(self.minimum, float) else str(self.minimum)

    def __call__(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, self.types):
            raise ValueError(f"must be {'an' if self.kind[0] in 'aeiou' else 'a'} {self.kind}, got {value!r}")
        if not value >= self.minimum:
            raise ValueError(f"must be at least {self._minimum_text}, got {value!r}")
        return self.types[0](value)


@dataclass(frozen=True)
class Integer(Number):
    """A JSON integer (not a boolean).

    :param minimum: the smallest allowed.
    """

    minimum: int
    kind: ClassVar[str] = "integer"
    types: ClassVar[tuple[type, ...]] = (int,)


@dataclass(frozen=True, init=False)
class Choice:
    """One of a fixed set of strings.

    :param choices: the allowed values.
    """

    choices: tuple[str, ...]

    def __init__(self, *choices: str) -> None:
        object.__setattr__(self, "choices", choices)

    @property
    def rule(self) -> str:
        """The rule in words."""
        return "one of " + ", ".join(self.choices)

    def __call__(self, value: Any) -> str:
        if value not in self.choices:
            raise ValueError(f"must be one of {list(self.choices)}, got {value!r}")
        return str(value)


@dataclass(frozen=True)
class Boolean:
    """``true`` or ``false``."""

    rule = "true or false"

    def __call__(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, got {value!r}")
        return value


@dataclass(frozen=True)
class Name:
    """A name made of a restricted set of characters.

    :param rule: what it is, for messages and the docs (e.g. ``an Airflow connection id``).
    :param pattern: the regular expression the whole value must match.
    """

    rule: str
    pattern: str

    def __call__(self, value: Any) -> str:
        if not isinstance(value, str) or not re.fullmatch(self.pattern, value):
            raise ValueError(f"must be {self.rule} ({self.pattern}), got {value!r}")
        return value


CONN_ID = Name("an Airflow connection id", r"[a-zA-Z0-9._-]{1,250}")
"""An Airflow connection id."""


@dataclass(frozen=True)
class Location:
    """Where snapshots go: a URI or an absolute path."""

    rule = "a URI (file://, s3://...) or an absolute path"

    def __call__(self, value: Any) -> str:
        if isinstance(value, str) and (_URI.fullmatch(value) or (value.startswith("/") and " " not in value)):
            return value
        raise ValueError(f"must be {self.rule}, got {value!r}")


@dataclass(frozen=True)
class LocalFile:
    """An existing file on this machine, by absolute path."""

    rule = "an absolute path of an existing file"

    def __call__(self, value: Any) -> str:
        if not isinstance(value, str) or not value.startswith("/"):
            raise ValueError(f"must be an absolute path, got {value!r}")
        if not Path(value).is_file():
            raise ValueError(f"does not exist: {value}")
        return value


@dataclass(frozen=True)
class JsonObject:
    """A JSON object, checked further by whoever uses it."""

    rule = "a JSON object"

    def __call__(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValueError(f"must be a JSON object, got {value!r}")
        return dict(value)
