"""The scenario catalogue (flink_lessons.scenarios) and the files of include/sql it points to."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flink_lessons.fixtures import fixture_lines
from flink_lessons.job_names import JobName, parse
from flink_lessons.paths import SQL_DIR
from flink_lessons.scenarios import (
    DEDUP,
    EVENT_TIME_WATERMARKS,
    FAILURE_CHECKS,
    LATE_EVENTS,
    PHASE0_PRINT,
    SCENARIOS,
    Scenario,
    print_identifier,
    render,
    sql_literal,
)
from flink_lessons.settings import RUN_CONF, Settings, resolve

from airflow_flink_provider.protocol.statements import split_statements

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.unit

ALL = sorted(SCENARIOS.values(), key=lambda s: s.name)
DOCUMENTED_SETTINGS = {
    EVENT_TIME_WATERMARKS.name: [None, {"window_size": "20s", "window_slide": "10s"}],
    DEDUP.name: [None, {"watermark_delay": "0s"}],
    LATE_EVENTS.name: [None, {"watermark_delay": "5s"}],
}


def settings(scenario: Scenario, conf: dict[str, Any] | None = None) -> Settings:
    return resolve(scenario.family, (RUN_CONF, conf), tag="feedbeef", connection_bootstrap=lambda _: "127.0.0.1:9092")


def test_every_phase_0_and_1_folder_is_a_scenario() -> None:
    folders = [p.name for p in SQL_DIR.iterdir() if p.is_dir() and p.name.startswith(("phase0_", "phase1_"))]
    assert sorted(folders) == sorted(SCENARIOS)


@pytest.mark.parametrize("scenario", ALL, ids=lambda s: s.name)
def test_scenario_folder_has_its_files(scenario: Scenario) -> None:
    assert (scenario.folder / "README.md").is_file()
    assert fixture_lines(scenario.fixture), "the fixture is empty"
    for variant in scenario.variants:
        assert (scenario.folder / variant.template).is_file()
    if scenario is FAILURE_CHECKS:
        return  # its jobs fail on purpose: no expected rows
    for conf in DOCUMENTED_SETTINGS.get(scenario.name, [None]):
        for sink in scenario.sinks:
            path = scenario.expected_path(sink, settings(scenario, conf))
            assert path.is_file(), f"missing expected output {path.relative_to(ROOT)}"


@pytest.mark.parametrize("scenario", ALL, ids=lambda s: s.name)
def test_templates_render_and_split(scenario: Scenario) -> None:
    run = settings(scenario)
    for variant in scenario.variants:
        sql = render(scenario, variant, run)
        statements = split_statements(sql)
        assert statements, variant.name
        assert "{{" not in sql and "{%" not in sql
        assert f"'{run.topics[scenario.input_topic]}'" in sql
        for sink in variant.sinks:
            if sink.topic:
                assert f"'{run.topics[sink.topic]}'" in sql, sink.name
        assert any(s.text.upper().startswith(("INSERT", "EXECUTE STATEMENT SET")) for s in statements)


@pytest.mark.parametrize("scenario", ALL, ids=lambda s: s.name)
def test_expected_jsonl_rows_are_json_objects(scenario: Scenario) -> None:
    for path in scenario.folder.glob("expected/**/*.jsonl"):
        for line in path.read_text().splitlines():
            assert isinstance(json.loads(line), dict), path


def test_window_and_watermark_settings_reach_the_sql() -> None:
    sql = render(EVENT_TIME_WATERMARKS, EVENT_TIME_WATERMARKS.variants[0], settings(
        EVENT_TIME_WATERMARKS, {"window_size": "2 min", "window_slide": "30s", "watermark_delay": "7s"}))  # fmt: skip
    assert "WATERMARK FOR event_time AS event_time - INTERVAL '7' SECOND" in sql
    assert "TUMBLE(TABLE readings, DESCRIPTOR(event_time), INTERVAL '2' MINUTE)" in sql
    assert "HOP(TABLE readings, DESCRIPTOR(event_time), INTERVAL '30' SECOND, INTERVAL '2' MINUTE)" in sql


def test_late_capture_uses_the_window_size_in_milliseconds() -> None:
    sql = render(LATE_EVENTS, LATE_EVENTS.variants[0], settings(LATE_EVENTS, {"window_size": "1 min"}))
    assert "TO_TIMESTAMP_LTZ(ts_ms - MOD(ts_ms, 60000) + 60000, 3) AS window_end" in sql
    assert "TUMBLE(TABLE events, DESCRIPTOR(event_time), INTERVAL '1' MINUTE)" in sql


def test_startup_mode_and_parallelism_reach_the_sql() -> None:
    scenario = SCENARIOS["phase1_malformed_json"]
    sql = render(scenario, scenario.variants[0], settings(scenario, {"startup_mode": "latest-offset",
                                                                      "parallelism": 2}))  # fmt: skip
    assert "'scan.startup.mode' = 'latest-offset'" in sql
    assert "SET 'parallelism.default' = '2';" in sql


def test_job_names_follow_the_one_convention_and_carry_the_run_tag() -> None:
    names = []
    for scenario in ALL:
        for variant in scenario.variants:
            sql = render(scenario, variant, settings(scenario))
            for name in re.findall(r"SET 'pipeline.name' = '([^']*)';", sql):
                names.append(name)
                job = parse(name)
                assert job is not None and (job.job, job.tag) == (scenario.name, "feedbeef"), name
                assert job.version.split(".")[0] == variant.name
    assert "phase1_schema_evolution@schema_evolution.v2#feedbeef" in names
    assert len(names) == len(set(names))


def test_job_names_parse_back() -> None:
    name = JobName("phase1_dedup", "dedup", "feedbeef")
    assert str(name) == "phase1_dedup@dedup#feedbeef"
    assert parse(str(name)) == name
    assert parse("orders_enrichment@v2") == JobName("orders_enrichment", "v2")
    assert str(name.part("v1")) == "phase1_dedup@dedup.v1#feedbeef"
    assert [parse(bad) for bad in ("orders", "a@b@c", "a@b#zz", "@v1", "a@")] == [None] * 5


def test_print_identifier_is_per_attempt() -> None:
    run = settings(PHASE0_PRINT)
    first = render(PHASE0_PRINT, PHASE0_PRINT.variants[0], run)
    again = render(PHASE0_PRINT, PHASE0_PRINT.variants[0], run, attempt=2)
    assert f"'print-identifier' = '{print_identifier(PHASE0_PRINT, 'feedbeef', 1)}'" in first
    assert "'print-identifier' = 'phase0_print-feedbeef-2'" in again
    assert [line for line in first.splitlines() if "INSERT" in line] == [
        line for line in again.splitlines() if "INSERT" in line
    ]  # the job statement: one identity, see the provider


def test_expected_outputs_follow_the_settings() -> None:
    default = EVENT_TIME_WATERMARKS.expected_dir(settings(EVENT_TIME_WATERMARKS))
    assert default.name == "window_size=10s,window_slide=5s,watermark_delay=2s"
    malformed = SCENARIOS["phase1_malformed_json"]
    assert malformed.expected_dir(settings(malformed)).name == "expected"


def test_render_cli_prints_the_script() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "flink_lessons.scenarios", "render", "phase1_late_events", "late_events",
         "--set", 'watermark_delay="5s"', "--tag", "cli"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "event_time - INTERVAL '5' SECOND" in out
    assert "'phase1-late-input-cli'" in out


def test_sql_literal_doubles_quotes() -> None:
    assert sql_literal("it's") == "it''s"
    assert sql_literal("''") == "''''"
    assert sql_literal(3) == "3"


_QUOTED_TEMPLATE_VALUE = re.compile(r"'[^'\n]*\{\{(?P<expr>[^}]*)\}\}")


@pytest.mark.parametrize("scenario", ALL, ids=lambda s: s.name)
def test_every_value_between_quotes_goes_through_the_sql_literal_filter(scenario: Scenario) -> None:
    for variant in scenario.variants:
        source = (scenario.folder / variant.template).read_text()
        quoted = list(_QUOTED_TEMPLATE_VALUE.finditer(source))
        assert quoted, variant.template
        for match in quoted:
            assert match["expr"].rstrip().endswith("| sql_literal"), f"{variant.template}: {match.group()}"


def test_a_quote_in_a_setting_stays_inside_its_literal() -> None:
    """Even a value that skipped validation cannot end its literal and add WITH options."""
    run = settings(DEDUP)
    hostile = Settings(run.family, run.values, run.tag, "k:9092', 'scan.startup.mode' = 'latest-offset")
    sql = render(DEDUP, DEDUP.variants[0], hostile)
    assert "'properties.bootstrap.servers' = 'k:9092'', ''scan.startup.mode'' = ''latest-offset'," in sql
