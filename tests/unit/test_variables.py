"""The one settings system (flink_lessons.settings, .rules, .families): rules, merging with where each value
came from, validation, the documentation tables."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from flink_lessons.families import FAMILIES, PHASE0, PHASE1, PYFLINK, SQL_DEPLOY
from flink_lessons.rules import Duration, check_bootstrap, parse_duration
from flink_lessons.settings import (
    RUN_CONF,
    Settings,
    VariableError,
    load_variable,
    merge,
    resolve,
    run_tag,
    schema_markdown,
    validate,
    variable_source,
)

ROOT = Path(__file__).resolve().parents[2]
VARIABLE = variable_source("flink_phase1")

pytestmark = pytest.mark.unit


def settings_for(conf: dict[str, Any] | None = None, variable: dict[str, Any] | None = None) -> Settings:
    return resolve(PHASE1, (VARIABLE, variable), (RUN_CONF, conf), tag="0123abcd",
                   connection_bootstrap=lambda _: "127.0.0.1:9092")  # fmt: skip


def error_for(conf: dict[str, Any]) -> str:
    with pytest.raises(VariableError) as info:
        settings_for(conf)
    return str(info.value)


@pytest.mark.parametrize("family", list(FAMILIES.values()), ids=lambda f: f.variable)
def test_defaults_are_valid(family: Any) -> None:
    parsed = validate(family, merge(family))
    assert {key.name for key in family.keys} == set(parsed)
    assert family.defaults() == {**family.defaults()}  # nested objects for dotted keys
    for key in family.keys:
        group, _, name = key.name.rpartition(".")
        assert (family.defaults()[group] if group else family.defaults())[name] == key.default


@pytest.mark.parametrize(
    ("text", "ms"),
    [("10s", 10_000), ("10 s", 10_000), ("2 min", 120_000), ("1h", 3_600_000), ("3000ms", 3000), ("0s", 0),
     ("5 seconds", 5000), ("2M", 120_000)],
)  # fmt: skip
def test_durations_parse(text: str, ms: int) -> None:
    assert parse_duration(text).ms == ms


@pytest.mark.parametrize("text", ["10", "ten seconds", "1.5s", "10 parsecs", "", "-5s"])
def test_durations_that_do_not_parse(text: str) -> None:
    with pytest.raises(ValueError, match="must be a duration"):
        parse_duration(text)


def test_durations_must_be_whole_seconds() -> None:
    with pytest.raises(ValueError, match="whole number of seconds"):
        parse_duration("1500ms")


def test_durations_must_be_strings() -> None:
    with pytest.raises(ValueError, match="must be a duration"):
        parse_duration(10)


@pytest.mark.parametrize(
    ("ms", "sql", "text"),
    [(10_000, "INTERVAL '10' SECOND", "10s"), (0, "INTERVAL '0' SECOND", "0s"),
     (90_000, "INTERVAL '90' SECOND", "90s"), (125_000, "INTERVAL '125' SECOND(3)", "125s"),
     (120_000, "INTERVAL '2' MINUTE", "2m"), (9_000_000, "INTERVAL '150' MINUTE(3)", "150m"),
     (7_200_000, "INTERVAL '2' HOUR", "2h")],
)  # fmt: skip
def test_duration_sql_literal_and_text(ms: int, sql: str, text: str) -> None:
    assert Duration(ms).sql == sql
    assert Duration(ms).text == text


@pytest.mark.parametrize(
    ("name", "rule"),
    [("bad topic", "may only contain the characters [a-zA-Z0-9._-]"),
     ("ümlaut", "may only contain the characters"),
     (".", "must not be '.' or '..'"),
     ("..", "must not be '.' or '..'"),
     ("", "must be a non-empty string"),
     ("x" * 241, "must be at most 240 characters")],
)  # fmt: skip
def test_topic_rules_name_the_key_and_the_rule(name: str, rule: str) -> None:
    message = error_for({"topics": {"late_input": name}})
    assert "topics.late_input (from the run conf):" in message
    assert rule in message
    assert "nothing was submitted" in message


def test_longest_legal_topic_leaves_room_for_the_run_suffix() -> None:
    settings = settings_for({"topics": {"late_input": "x" * 240}})
    assert len(settings.topics["late_input"]) == 249


def test_slide_larger_than_size_is_rejected() -> None:
    message = error_for({"window_size": "10s", "window_slide": "20s"})
    assert ("window_slide (from the run conf) vs window_size (from the run conf): window_slide must not be "
            "larger than window_size (10s), got 20s") in message  # fmt: skip


def test_size_must_be_a_multiple_of_slide() -> None:
    message = error_for({"window_size": "10s", "window_slide": "3s"})
    assert "window_size (10s) must be a whole multiple of window_slide" in message


@pytest.mark.parametrize("key", ["window_size", "window_slide"])
def test_windows_must_be_positive(key: str) -> None:
    message = error_for({key: "0s"})
    assert f"{key} (from the run conf): must be at least 1s" in message


def test_watermark_delay_may_be_zero() -> None:
    assert settings_for({"watermark_delay": "0s"}).duration("watermark_delay").ms == 0


@pytest.mark.parametrize(
    ("conf", "fragment"),
    [({"startup_mode": "newest"}, "startup_mode: must be one of ['earliest-offset', 'latest-offset', 'group-offsets']"),
     ({"parallelism": 0}, "parallelism: must be at least 1"),
     ({"parallelism": "2"}, "parallelism: must be an integer"),
     ({"kafka_conn_id": "no spaces please"}, "kafka_conn_id: must be an Airflow connection id"),
     ({"flink_bootstrap_servers": "localhost"}, "flink_bootstrap_servers: must be host:port")],
)  # fmt: skip
def test_other_rules(conf: dict[str, Any], fragment: str) -> None:
    key, _, rule = fragment.partition(": ")
    assert f"{key} (from the run conf): {rule}" in error_for(conf)


def test_every_problem_is_reported_at_once() -> None:
    message = error_for({"window_size": "soon", "topics": {"dedup_input": "a b"}, "parallelism": -1})
    assert all(f"{key} (from the run conf):" in message for key in ("window_size", "topics.dedup_input", "parallelism"))


def test_unknown_keys_are_rejected_with_the_known_ones() -> None:
    message = error_for({"windw_size": "10s", "topics": {"nope": "x"}})
    assert "unknown key(s) ['windw_size', 'topics.nope']" in message
    assert "window_size" in message


def test_variable_must_be_an_object() -> None:
    with pytest.raises(VariableError, match="Variable 'flink_phase1' must be a JSON object"):
        settings_for(variable=["10s"])  # type: ignore[arg-type]
    with pytest.raises(VariableError, match="the run conf: key 'topics' must be a JSON object"):
        settings_for({"topics": "x"})


def test_each_problem_names_where_its_value_came_from() -> None:
    """A bad value in the run conf is the run conf's, not the Variable's (and a default is the defaults')."""
    message = error_for({"window_size": "7s"})
    assert message.startswith("Invalid settings (nothing was submitted):")
    assert "Variable 'flink_phase1'" not in message
    assert "window_slide (from the defaults) vs window_size (from the run conf): window_size (7s) must be" in message
    with pytest.raises(VariableError) as info:
        settings_for({"parallelism": 0}, {"window_size": "soon"})
    lines = str(info.value).splitlines()[1:]
    assert lines == ["  - window_size (from Variable 'flink_phase1'): must be a duration such as '10s', '2 min', "
                     "'1h' or '1500ms' (units: ms, s, min, h), got 'soon'",
                     "  - parallelism (from the run conf): must be at least 1, got 0"]  # fmt: skip


def test_conf_overrides_variable_overrides_defaults_topics_per_role() -> None:
    variable = {"window_size": "20s", "window_slide": "10s", "topics": {"late_input": "from-variable"}}
    settings = settings_for({"window_slide": "5s", "topics": {"late_events": "from-conf"}}, variable)
    assert settings.duration("window_size").text == "20s"
    assert settings.duration("window_slide").text == "5s"
    assert settings.topics["late_input"] == "from-variable-0123abcd"
    assert settings.topics["late_events"] == "from-conf-0123abcd"
    assert settings.topics["dedup_input"] == "phase1-dedup-input-0123abcd"


@pytest.mark.parametrize(
    "value",
    ["kafka:9092", "a.b-c_d:1,e:65535", "[::1]:9092", "10.0.0.1:9092,10.0.0.2:9093"],
)
def test_bootstrap_rule_accepts_brokers(value: str) -> None:
    assert check_bootstrap(value) == value


@pytest.mark.parametrize(
    "value",
    ["localhost", "k:0", "k:99999", "k:9092,", ",k:9092", "k:9092\n", "k:9092 ", " k:9092", "k :9092",
     "k:9092', 'connector' = 'x", 'k"x:9092', "k:90\x0092", "k:9092;m:1", "", 9092, ["k:9092"], None],
)  # fmt: skip
def test_bootstrap_rule_refuses_anything_else(value: Any) -> None:
    with pytest.raises(ValueError, match=r"must be host:port\[,host:port\.\.\.\] \(ports 1-65535; no quotes"):
        check_bootstrap(value)


@pytest.mark.parametrize("family", [PHASE0, PHASE1, PYFLINK], ids=lambda f: f.variable)
def test_bootstrap_from_the_connection_is_checked_and_the_connection_named(family: Any) -> None:
    """Every family's brokers, from its own key or the Kafka connection, pass the one rule."""
    with pytest.raises(VariableError) as info:
        resolve(family, tag="t", connection_bootstrap=lambda _: "k:9092', 'scan.startup.mode' = 'x")
    message = str(info.value)
    assert f"{family.bootstrap_key} is null, so the brokers come from the Kafka connection 'kafka_default'" in message
    assert "its bootstrap.servers must be host:port" in message and "nothing was submitted" in message
    with pytest.raises(VariableError, match=r"Kafka connection 'other' \(kafka_conn_id, from the run conf"):
        resolve(family, (RUN_CONF, {"kafka_conn_id": "other"}), connection_bootstrap=lambda _: ["k:9092"])
    with pytest.raises(VariableError, match=rf"{family.bootstrap_key} \(from the run conf\): must be host:port"):
        resolve(family, (RUN_CONF, {family.bootstrap_key: "k:1 "}), connection_bootstrap=lambda _: "k:9092")


def test_bootstrap_comes_from_the_connection_unless_set() -> None:
    assert settings_for().bootstrap_servers == "127.0.0.1:9092"
    assert settings_for({"flink_bootstrap_servers": "kafka:29092"}).bootstrap_servers == "kafka:29092"
    with pytest.raises(VariableError, match=r"which has no bootstrap\.servers"):
        resolve(PHASE1, tag="t", connection_bootstrap=lambda _: None)
    assert resolve(SQL_DEPLOY).bootstrap_servers is None  # no brokers of its own: its scenario's family has them


def test_settings_survive_xcom() -> None:
    settings = settings_for({"window_size": "1 min", "window_slide": "30s"})
    data = json.loads(json.dumps(settings.to_json()))
    assert Settings.from_json(data) == settings
    assert data["values"]["window_size"] == "1m"
    assert data["topics"]["late_input"].endswith("-0123abcd")


def test_run_tag_is_stable_and_short() -> None:
    assert run_tag("dag", "run") == run_tag("dag", "run")
    assert run_tag("dag", "run") != run_tag("dag", "run2")
    assert len(run_tag("dag", "run")) == 8
    int(run_tag("dag", "run"), 16)
    # A run cleared from the UI (its settings task's second try) starts on fresh topics.
    assert run_tag("dag", "run", attempt=1) == run_tag("dag", "run")
    assert len({run_tag("dag", "run", attempt=n) for n in (1, 2, 3)}) == 3
    # A run made again for the same logical date (same run id, try 1 again) differs by its task instance.
    assert run_tag("dag", "run", 1, "0193a1b2-ti-1") != run_tag("dag", "run", 1, "0193a1b2-ti-2")


def test_load_variable_reads_json_at_run_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_FLINK_PHASE1", json.dumps({"window_size": "20s"}))
    assert load_variable("flink_phase1") == {"window_size": "20s"}
    monkeypatch.setenv("AIRFLOW_VAR_FLINK_PHASE1", "{not json")
    with pytest.raises(VariableError, match="Variable 'flink_phase1' is not valid JSON"):
        load_variable("flink_phase1")


@pytest.mark.parametrize("name", ["flink_phase0", "flink_phase1"])
def test_docs_show_the_current_schema(name: str) -> None:
    docs = (ROOT / "docs" / "local-setup.md").read_text()
    assert schema_markdown(FAMILIES[name]) in docs, "regenerate the table in docs/local-setup.md"


def test_every_key_documents_its_rule_and_default() -> None:
    for family in FAMILIES.values():
        table = schema_markdown(family)
        for key in family.keys:
            row = f"| `{key.name}` | `{json.dumps(key.default)}` | {key.rule} | {key.description} |"
            assert row in table
            assert key.rule and key.description and not re.search(r"\s$", key.description)
