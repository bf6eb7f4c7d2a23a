"""Fuzzing the Variables and the rendered SQL: any settings give valid Settings or a VariableError naming the
problem, and every rendered scenario's WITH and SET option values stay single, well-formed SQL literals."""

from __future__ import annotations

import functools
import re
from typing import Any

import pytest
from flink_lessons.families import PHASE0, PHASE1
from flink_lessons.scenarios import SCENARIOS, Scenario, render
from flink_lessons.settings import RUN_CONF, Family, Settings, VariableError, resolve, variable_source
from hypothesis import given
from hypothesis import strategies as st

from airflow_flink_provider.protocol.statements import split_statements
from tests.unit._fuzz import fuzz

pytestmark = pytest.mark.unit

_LITERAL = re.compile(r"'(?:[^']|'')*'")
_BLANKS_AND_COMMENTS = re.compile(r"(?:\s+|--[^\n]*(?:\n|$))*")
_WITH = re.compile(r"\bWITH\s*\(", re.IGNORECASE)
_SET = re.compile(r"SET\s+", re.IGNORECASE)
_TABLE = re.compile(r"CREATE\s+(?:TEMPORARY\s+)?TABLE\b", re.IGNORECASE)


def _skip(sql: str, i: int) -> int:
    match = _BLANKS_AND_COMMENTS.match(sql, i)
    assert match is not None
    return match.end()


def _literal(sql: str, i: int) -> tuple[str, int]:
    """The literal at ``i`` unquoted, and the index after it; an AssertionError when there is none."""
    match = _LITERAL.match(sql, i)
    assert match is not None, f"expected a '...' literal at {sql[i : i + 60]!r}"
    return match.group()[1:-1].replace("''", "'"), match.end()


def _pair(sql: str, i: int) -> tuple[tuple[str, str], int]:
    key, i = _literal(sql, _skip(sql, i))
    i = _skip(sql, i)
    assert sql[i : i + 1] == "=", f"expected '=' at {sql[i : i + 60]!r}"
    value, i = _literal(sql, _skip(sql, i + 1))
    return (key, value), _skip(sql, i)


def options(sql: str) -> list[tuple[str, str]]:
    """Every ``'key' = 'value'`` of the script's SET statements and CREATE TABLE ... WITH (...) clauses, each
    checked to be exactly two well-formed literals and nothing else."""
    found: list[tuple[str, str]] = []
    for statement in split_statements(sql):
        text = statement.text
        if set_match := _SET.match(text):
            pair, end = _pair(text, set_match.end())
            assert end == len(text), f"trailing text after a SET option: {text[end:]!r}"
            found.append(pair)
        elif _TABLE.match(text):
            with_match = _WITH.search(text)
            assert with_match is not None, text
            i = with_match.end()
            while True:
                pair, i = _pair(text, i)
                found.append(pair)
                if text[i : i + 1] == ",":
                    i += 1
                    continue
                assert text[i : i + 1] == ")", f"expected ',' or ')' at {text[i : i + 60]!r}"
                assert _skip(text, i + 1) == len(text), f"trailing text after WITH (...): {text[i + 1 :]!r}"
                break
    return found


def _scenarios(family: Family) -> list[Scenario]:
    return [scenario for scenario in SCENARIOS.values() if scenario.family is family]


def _shape(sql: str) -> list[str]:
    """The statements of a script by their first two words: an injected statement or comment break shows."""
    return [" ".join(statement.text.split()[:2]).upper() for statement in split_statements(sql)]


@functools.cache
def _reference(family: Family) -> dict[tuple[str, str], tuple[list[str], list[str]]]:
    """Per script of the family, rendered with the defaults: its statement shape and its option keys."""
    settings = resolve(family, tag="t", connection_bootstrap=lambda _: "k:9092")
    return {
        (scenario.name, variant.name): (
            _shape(sql := render(scenario, variant, settings)),
            [key for key, _ in options(sql)],
        )
        for scenario in _scenarios(family)
        for variant in scenario.variants
    }


def _check_rendered(family: Family, settings: Settings) -> None:
    """Each script of the family renders to the template's statements and options, each value one literal."""
    for scenario in _scenarios(family):
        for variant in scenario.variants:
            shape, keys = _reference(family)[scenario.name, variant.name]
            sql = render(scenario, variant, settings)
            assert _shape(sql) == shape
            rendered = options(sql)
            assert [key for key, _ in rendered] == keys
            for key, value in rendered:
                if key == "properties.bootstrap.servers":
                    assert value == settings.bootstrap_servers
                if key == "topic":
                    assert value in settings.topics.values()


def test_the_option_parser_sees_an_injected_option() -> None:
    """The check itself: a quote that ends a literal early is caught."""
    assert options("CREATE TABLE t (a INT) WITH ('topic' = 'it''s', 'x' = 'y')") == [("topic", "it's"), ("x", "y")]
    with pytest.raises(AssertionError):
        options("CREATE TABLE t (a INT) WITH ('servers' = 'k:1', 'scan.startup.mode' = 'x'')")


# --- settings that went through validation --------------------------------------------------------------

_GOOD = {
    "window_size": ["10s", "20s", "1 min"], "window_slide": ["5s", "10s"], "watermark_delay": ["0s", "2s"],
    "startup_mode": ["earliest-offset", "latest-offset"], "parallelism": [1, 2], "kafka_conn_id": ["kafka_default"],
    "flink_bootstrap_servers": [None, "k:9092", "a:1,b:2"], "observe_timeout": ["60s"],
}  # fmt: skip
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)
hostile_text = st.text(max_size=12) | st.sampled_from(["a'b", "k:9092', 'x' = 'y", "k:9092\n", "''", "-- c", "a b"])


@st.composite
def settings_values(draw: st.DrawFn, family: Family) -> dict[str, Any]:
    """A Variable or run conf: mostly known keys with good, hostile or random values, sometimes unknown keys."""
    value: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from([k.name for k in family.keys]), max_size=4)):
        good = _GOOD.get(key, ["topic-a", "b.c_d"])
        choice = draw(st.sampled_from(good) | hostile_text | json_values)
        if key.startswith("topics."):
            value.setdefault("topics", {})[key.removeprefix("topics.")] = choice
        else:
            value[key] = choice
    if draw(st.booleans()):
        value.update(draw(st.dictionaries(st.text(max_size=6), json_values, max_size=2)))
    return value


bootstraps = st.none() | st.sampled_from(["127.0.0.1:9092", "a:1,b:65535", "[::1]:9092"]) | hostile_text | json_values


@pytest.mark.parametrize("family", [PHASE0, PHASE1], ids=lambda f: f.variable)
def test_any_variable_conf_and_connection_give_settings_or_a_clear_error(family: Family) -> None:
    @fuzz(examples=150, budget_ms=3000)
    @given(
        variable=st.none() | settings_values(family) | json_values,
        conf=st.none() | settings_values(family),
        bootstrap=bootstraps,
    )
    def check(variable: Any, conf: Any, bootstrap: Any) -> None:
        layers = ((variable_source(family.variable), variable), (RUN_CONF, conf))
        try:
            settings = resolve(family, *layers, tag="fuzz0001", connection_bootstrap=lambda _: bootstrap)
        except VariableError as error:
            message = str(error)
            named = {source for source, _ in layers if source in message}
            assert named or "Kafka connection" in message, message
            for source in named:  # a source the message blames did give a value
                assert dict(layers)[source] is not None, message
            return
        _check_rendered(family, settings)

    check()


# --- settings that skipped validation: the sql_literal filter alone keeps each value one literal ----------------


@pytest.mark.parametrize("family", [PHASE0, PHASE1], ids=lambda f: f.variable)
def test_unvalidated_values_stay_inside_their_literals(family: Family) -> None:
    reference = resolve(family, tag="t", connection_bootstrap=lambda _: "k:9092")

    @fuzz(examples=100, budget_ms=3000)
    @given(
        tag=hostile_text,
        bootstrap=hostile_text,
        startup_mode=hostile_text,
        parallelism=hostile_text | st.integers(),
        topic=hostile_text,
    )
    def check(tag: str, bootstrap: str, startup_mode: str, parallelism: Any, topic: str) -> None:
        values = {name: (topic if name.startswith("topics.") else value) for name, value in reference.values.items()}
        values.update(startup_mode=startup_mode, parallelism=parallelism)
        _check_rendered(family, Settings(family.variable, values, tag, bootstrap))

    check()
