"""Every SQL scenario of include/sql against the real stack, straight through the SQL Gateway REST API.

No Airflow and no provider code runs the SQL here (only the provider's pure statement splitter), so these
tests pin the scenarios themselves: the rendered script runs, and every sink holds exactly the expected
rows. The DAG tests (test_dags_phase0_1*.py) run the same scenarios through Airflow.

Each test uses fresh topics (a random run tag), one partition each, and parallelism 1; every job it starts
is cancelled at the end if it is still running.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from flink_lessons.compare import assert_all_match, compare_rows, load_expected, rows_from_records
from flink_lessons.fixtures import fixture_lines
from flink_lessons.scenarios import (
    DEDUP,
    EVENT_TIME_WATERMARKS,
    LATE_EVENTS,
    MALFORMED_JSON,
    PHASE0_PRINT,
    SCHEMA_EVOLUTION,
    Scenario,
    print_identifier,
    render,
)
from flink_lessons.settings import Settings, resolve

from airflow_flink_provider.protocol.job_state import TERMINAL
from airflow_flink_provider.protocol.statements import split_statements
from stack.smoke import BOOTSTRAP, FLINK, GATEWAY

pytestmark = pytest.mark.integration


class GatewayError(RuntimeError):
    """The SQL Gateway answered an error; the message is its chain of causes, the root cause last."""


def gateway_call(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """One SQL Gateway request; the whole error text on failure.

    :param method: HTTP method.
    :param path: path below /v1.
    :param body: JSON body.
    """
    resp = requests.request(method, f"{GATEWAY}{path}", json=body, timeout=30)
    if not resp.ok:
        text = resp.text.replace("\\n", "\n").replace("\\t", "\t")
        causes = [line.strip() for line in text.splitlines() if line.startswith("Caused by:")]
        raise GatewayError("\n".join(causes) or text[:3000])
    return resp.json()


def execute(session: str, statement: str, timeout: float = 120) -> list[dict[str, Any]]:
    """Execute one statement and read all result pages.

    :param session: the session handle.
    :param statement: the SQL statement.
    :param timeout: seconds for the whole result.
    """
    op = gateway_call("POST", f"/sessions/{session}/statements", {"statement": statement})["operationHandle"]
    uri: str | None = f"/sessions/{session}/operations/{op}/result/0?rowFormat=JSON"
    rows: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while uri is not None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no result within {timeout}s for: {statement[:200]}")
        page = gateway_call("GET", uri.removeprefix("/v1"))
        if page["resultType"] == "NOT_READY":
            time.sleep(0.2)
            continue
        rows += page.get("results", {}).get("data", [])
        uri = page.get("nextResultUri") if page["resultType"] != "EOS" else None
    return rows


def run_script(script: str, jobs: list[str]) -> None:
    """Run a rendered script statement by statement in one session; job ids are appended to ``jobs``.

    :param script: the rendered SQL.
    :param jobs: collects the ids of submitted jobs (also for the cleanup).
    """
    session = gateway_call("POST", "/sessions", {"sessionName": f"scenario-test-{uuid.uuid4().hex[:8]}"})
    handle = session["sessionHandle"]
    try:
        for statement in split_statements(script):
            rows = execute(handle, statement.text)
            head = statement.text.lstrip().upper()
            if head.startswith(("INSERT", "EXECUTE STATEMENT SET")):
                jobs.append(rows[0]["fields"][0])
    finally:
        requests.delete(f"{GATEWAY}/sessions/{handle}", timeout=10)


def job_state(job_id: str) -> str:
    """The job's state from Flink's REST API.

    :param job_id: the job.
    """
    return str(requests.get(f"{FLINK}/jobs/{job_id}", timeout=10).json()["state"])


def wait_terminal(job_id: str, timeout: float = 120) -> str:
    """Poll until the job is FINISHED, FAILED or CANCELED.

    :param job_id: the job.
    :param timeout: seconds.
    """
    deadline = time.monotonic() + timeout
    state = job_state(job_id)
    while state not in TERMINAL and time.monotonic() < deadline:
        time.sleep(0.5)
        state = job_state(job_id)
    return state


def cancel_unfinished(jobs: list[str]) -> None:
    """Cancel every job of the list that is still alive.

    :param jobs: job ids.
    """
    for job_id in jobs:
        if job_state(job_id) not in TERMINAL:
            requests.patch(f"{FLINK}/jobs/{job_id}?mode=cancel", timeout=10)
            wait_terminal(job_id, 60)


def create_topics(names: list[str]) -> None:
    """Create topics with one partition each.

    :param names: topic names.
    """
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    for future in admin.create_topics([NewTopic(name, 1, 1) for name in names]).values():
        future.result(30)


def produce(topic: str, values: list[str]) -> None:
    """Produce message values in order, without keys.

    :param topic: the topic.
    :param values: the message values.
    """
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True})
    for value in values:
        producer.produce(topic, value=value.encode("utf-8"))
    assert producer.flush(30) == 0, "not every fixture message reached Kafka"


def read_topic(topic: str) -> list[dict[str, Any]]:
    """Every message of a one-partition topic, up to its current end (no timing guesswork).

    :param topic: the topic.
    :return: records shaped like common.compare.message_record's.
    """
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"scenario-test-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})  # fmt: skip
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, 0)])
        records: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while len(records) < high and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            key, value = msg.key(), msg.value()
            records.append({"partition": 0, "offset": msg.offset(),
                            "key": key.decode() if key is not None else None,
                            "value": value.decode() if value is not None else None})  # fmt: skip
        assert len(records) == high, f"read {len(records)} of {high} messages of {topic}"
        return records
    finally:
        consumer.close()


@dataclass
class ScenarioRun:
    """What one scenario run produced.

    :param settings: the settings it ran with.
    :param produced: how many fixture messages were produced.
    :param states: final state of each job.
    :param rows: rows per sink name.
    """

    settings: Settings
    produced: int
    states: list[str]
    rows: dict[str, list[Any]]


@pytest.fixture
def jobs() -> Iterator[list[str]]:
    """The ids of the jobs a test starts; the ones still alive are cancelled afterwards."""
    started: list[str] = []
    yield started
    cancel_unfinished(started)


def scenario_settings(scenario: Scenario, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Settings with the Variable defaults, the given overrides and a random run tag.

    :param scenario: the scenario.
    :param overrides: run-conf style overrides.
    """
    return resolve(scenario.family, ("the test", overrides), tag=uuid.uuid4().hex[:8],
                   connection_bootstrap=lambda _: BOOTSTRAP)


def run_bounded(scenario: Scenario, jobs: list[str], overrides: Mapping[str, Any] | None = None,
                variants: tuple[str, ...] | None = None) -> ScenarioRun:  # fmt: skip
    """Produce the fixture, run the scenario's scripts, wait for the jobs to end and read every sink.

    :param scenario: a phase 1 scenario (bounded jobs).
    :param jobs: the test's job list (for the cleanup).
    :param overrides: settings overrides.
    :param variants: which variants to run (default: all).
    """
    settings = scenario_settings(scenario, overrides)
    topics = settings.topics
    create_topics([topics[role] for role in scenario.topics()])
    lines = fixture_lines(scenario.fixture)
    produce(topics[scenario.input_topic], lines)
    chosen = [v for v in scenario.variants if variants is None or v.name in variants]
    first = len(jobs)
    for variant in chosen:
        run_script(render(scenario, variant, settings), jobs)
    states = [wait_terminal(job_id) for job_id in jobs[first:]]
    rows = {
        sink.name: rows_from_records(read_topic(topics[sink.topic]), sink.kind)
        for variant in chosen
        for sink in variant.sinks
        if sink.topic is not None
    }
    return ScenarioRun(settings, len(lines), states, rows)


def assert_expected(scenario: Scenario, run: ScenarioRun) -> None:
    """Every sink of the run holds exactly its expected rows.

    :param scenario: the scenario.
    :param run: the run.
    """
    assert run.states and set(run.states) == {"FINISHED"}, run.states
    sinks = {sink.name: sink for sink in scenario.sinks}
    assert_all_match([
        compare_rows(rows, load_expected(scenario.expected_path(sinks[name], run.settings)), name)
        for name, rows in run.rows.items()
    ])  # fmt: skip


def is_json_object(line: str) -> bool:
    """Whether a message is a JSON object (what the JSON format can turn into a row).

    :param line: the message value.
    """
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def test_phase0_print_rows_reach_taskmanager_stdout(jobs: list[str]) -> None:
    settings = scenario_settings(PHASE0_PRINT)
    topic = settings.topics["input"]
    create_topics([topic])
    produce(topic, fixture_lines(PHASE0_PRINT.fixture))
    run_script(render(PHASE0_PRINT, PHASE0_PRINT.variants[0], settings), jobs)
    expected = load_expected(PHASE0_PRINT.expected_path(PHASE0_PRINT.sinks[0], settings))
    prefix = f"{print_identifier(PHASE0_PRINT, settings.tag)}> "
    taskmanagers = requests.get(f"{FLINK}/taskmanagers", timeout=10).json()["taskmanagers"]
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while len(lines) < len(expected) and time.monotonic() < deadline:
        time.sleep(1)
        stdout = "".join(requests.get(f"{FLINK}/taskmanagers/{tm['id']}/stdout", timeout=10).text
                         for tm in taskmanagers)  # fmt: skip
        lines = [line.removeprefix(prefix) for line in stdout.splitlines() if line.startswith(prefix)]
    assert job_state(jobs[0]) == "RUNNING", "the print job is unbounded: it runs until cancelled"
    assert_all_match([compare_rows(lines, expected, "print")])


def test_malformed_json_ignore_parse_errors_drops_unparseable(jobs: list[str]) -> None:
    run = run_bounded(MALFORMED_JSON, jobs, variants=("ignore_parse_errors",))
    assert_expected(MALFORMED_JSON, run)
    unparseable = sum(not is_json_object(line) for line in fixture_lines(MALFORMED_JSON.fixture))
    assert run.produced - len(run.rows["parsed"]) == unparseable == 5


def test_malformed_json_dead_letter_accounts_for_every_event(jobs: list[str]) -> None:
    run = run_bounded(MALFORMED_JSON, jobs, variants=("dead_letter",))
    assert_expected(MALFORMED_JSON, run)
    assert len(run.rows["clean"]) + len(run.rows["dlq"]) == run.produced
    assert sorted(r["source_offset"] for r in run.rows["clean"] + run.rows["dlq"]) == list(range(run.produced))
    lines = fixture_lines(MALFORMED_JSON.fixture)
    assert all(row["payload"] == lines[row["source_offset"]] for row in run.rows["dlq"])
    assert MALFORMED_JSON.summary is not None
    assert any("= 16 of 16" in line for line in MALFORMED_JSON.summary(run.produced, run.rows))


def test_schema_evolution_nulls_defaults_and_added_column(jobs: list[str]) -> None:
    run = run_bounded(SCHEMA_EVOLUTION, jobs)
    assert_expected(SCHEMA_EVOLUTION, run)
    assert len(run.rows["v1"]) == len(run.rows["v2"]) == run.produced, "the evolved table lost events"


@pytest.mark.parametrize(
    "overrides",
    [None, {"window_size": "20s", "window_slide": "10s"}],
    ids=["size10s-slide5s", "size20s-slide10s"],
)
def test_event_time_windows(jobs: list[str], overrides: dict[str, str] | None) -> None:
    run = run_bounded(EVENT_TIME_WATERMARKS, jobs, overrides)
    assert_expected(EVENT_TIME_WATERMARKS, run)
    size = run.settings.duration("window_size").ms // 1000
    assert {row["window_end"][-2:] for row in run.rows["tumble"]} <= {f"{s:02d}" for s in range(0, 60, size)}
    assert sum(row["readings"] for row in run.rows["tumble"]) == run.produced, "no reading may be late here"


@pytest.mark.parametrize("delay", ["2s", "0s"])
def test_dedup_keep_first_and_keep_last(jobs: list[str], delay: str) -> None:
    run = run_bounded(DEDUP, jobs, {"watermark_delay": delay})
    assert_expected(DEDUP, run)
    assert len({row["order_id"] for row in run.rows["last"]}) == len(run.rows["last"])


@pytest.mark.parametrize("delay", ["2s", "5s"])
def test_late_events_are_captured_not_lost(jobs: list[str], delay: str) -> None:
    run = run_bounded(LATE_EVENTS, jobs, {"watermark_delay": delay})
    assert_expected(LATE_EVENTS, run)
    assert LATE_EVENTS.summary is not None
    LATE_EVENTS.summary(run.produced, run.rows)  # windows + late == produced, or ScenarioCheckError
