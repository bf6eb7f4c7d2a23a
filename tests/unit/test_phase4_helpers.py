"""The phase 4 helpers without Flink: the PyFlink settings and their job arguments, versions, job names, restore
points, the last good record, and flink_deploy_sql's settings (flink_lessons)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flink_lessons import last_good, pyflink
from flink_lessons.families import PYFLINK
from flink_lessons.job_names import jobs_named
from flink_lessons.restore_points import check_snapshot, latest_retained_checkpoint, local_path
from flink_lessons.settings import RUN_CONF, Settings, VariableError, resolve, variable_source

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
JAR = str(ROOT / "pyproject.toml")  # any existing file stands in for the flink-python jar
VARIABLE = variable_source(PYFLINK.variable)


def settings_of(variable: dict[str, Any] | None = None, conf: dict[str, Any] | None = None) -> Settings:
    base = {"python_jar": JAR, **(variable or {})}
    return resolve(PYFLINK, (VARIABLE, base), (RUN_CONF, conf), connection_bootstrap=lambda conn_id: "127.0.0.1:9092")


def error_of(variable: dict[str, Any] | None = None, conf: dict[str, Any] | None = None) -> str:
    with pytest.raises(VariableError) as info:
        settings_of(variable, conf)
    return str(info.value)


def test_defaults_resolve_and_produce_arguments_the_job_accepts() -> None:
    settings = settings_of()
    args = pyflink.validated_args(settings, "v1")
    assert args[:2] == ["--bootstrap-servers", "127.0.0.1:9092"]
    assert args[args.index("--window-seconds") + 1] == "60"
    assert args[args.index("--job-name") + 1] == "orders_enrichment@v1"
    assert pyflink.program(settings, "v2") == ROOT / "include" / "pyflink" / "orders_enrichment" / "v2.py"


def test_run_conf_overrides_the_variable_and_groups_merge_per_key() -> None:
    settings = settings_of(
        {"version": "v1", "topics": {"source": "in-a"}, "health": {"min_checkpoints": 5}},
        {"version": "v2", "topics": {"sink": "out-b"}, "window_size": "10s"},
    )
    assert settings["version"] == "v2"
    assert (settings["topics.source"], settings["topics.sink"]) == ("in-a", "out-b")
    assert settings.duration("window_size").seconds == 10
    assert (settings["health.min_checkpoints"], settings.duration("health.stable_for").seconds) == (5, 30)


def test_every_bad_key_is_reported_at_once_with_where_it_came_from() -> None:
    conf = {"window_size": "1.5s", "topics": {"sink": "orders"}, "restart": {"initial_backoff": "2 min"}}
    message = error_of({"parallelism": 0, "checkpoint": {"mode": "twice"}}, conf)
    assert message.startswith("Invalid settings (nothing was submitted):")
    for fragment in (
        "parallelism (from Variable 'flink_phase4_pyflink'): must be at least 1",
        "checkpoint.mode (from Variable 'flink_phase4_pyflink'): must be one of ['exactly-once', 'at-least-once']",
        "window_size (from the run conf): must be a duration",
        "topics.sink (from the run conf) vs topics.source (from the defaults): the sink topic must differ",
        "restart.initial_backoff (from the run conf) vs restart.max_backoff (from the defaults): the first pause "
        "(2m) must not exceed the longest (1m)",
    ):
        assert fragment in message, message


def test_unknown_keys_and_non_objects_are_refused() -> None:
    assert "the run conf: unknown key(s) ['windowsize', 'health.min_checkpoint']" in error_of(
        None, {"windowsize": "1s", "health": {"min_checkpoint": 1}})  # fmt: skip
    assert "Variable 'flink_phase4_pyflink': key 'health' must be a JSON object" in error_of({"health": 3})


def test_bootstrap_comes_from_the_kafka_connection_unless_set() -> None:
    assert settings_of().bootstrap_servers == "127.0.0.1:9092"
    assert settings_of({"bootstrap_servers": "kafka:29092"}).bootstrap_servers == "kafka:29092"
    with pytest.raises(VariableError, match=r"Kafka connection 'kafka_default'.*which has no bootstrap\.servers"):
        resolve(PYFLINK, (VARIABLE, {"python_jar": JAR}), connection_bootstrap=lambda conn_id: None)


@pytest.mark.parametrize("version", ["v9", "v9; rm -rf /", "../v1", "jobkit", "", None])
def test_an_unknown_version_lists_the_real_ones(version: Any) -> None:
    with pytest.raises(VariableError) as info:
        pyflink.validated_args(settings_of(), version)
    assert f"version: job 'orders_enrichment' has no version {version!r}; known: ['broken', 'v1', 'v2']" in str(
        info.value
    )


def test_versions_are_what_the_job_package_declares() -> None:
    assert pyflink.known_jobs() == ["orders_enrichment"]
    assert pyflink.known_versions("orders_enrichment") == ["broken", "v1", "v2"]
    with pytest.raises(VariableError, match=r"job: no package 'nope' under .*; known: \['orders_enrichment'\]"):
        pyflink.known_versions("nope")
    assert "job (from the run conf): must be a job package" in error_of(None, {"job": "../sql"})


def test_arguments_the_job_refuses_fail_before_submitting(monkeypatch: pytest.MonkeyPatch) -> None:
    """The job's own parser has the last word (the settings' rules are stricter today; it still runs)."""
    args = pyflink.job_args(settings_of(), "v1")
    monkeypatch.setattr(pyflink, "job_args", lambda settings, version: [*args, "--window-seconds", "0"])
    with pytest.raises(VariableError, match=r"the v1 job refuses its arguments: .*--window-seconds.*at least 1"):
        pyflink.validated_args(settings_of(), "v1")


def test_settings_survive_the_xcom_round_trip() -> None:
    settings = settings_of({"health": {"timeout": "2 min"}})
    again = Settings.from_json(json.loads(json.dumps(settings.to_json())))
    assert again == settings
    assert again.duration("health.timeout").seconds == 120


def test_python_jar_from_the_stack_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert pyflink.stack_python_jar(JAR) == JAR
    (tmp_path / "opt").mkdir()
    (tmp_path / "opt" / "flink-python-2.1.1.jar").write_text("jar")
    monkeypatch.setenv("FLINK_STACK_HOME", str(tmp_path))
    assert pyflink.stack_python_jar(None) == str(tmp_path / "opt" / "flink-python-2.1.1.jar")
    monkeypatch.delenv("FLINK_STACK_HOME")
    with pytest.raises(VariableError, match="python_jar is null"):
        pyflink.stack_python_jar(None)


def test_the_running_versions_of_a_job_are_found_by_its_name() -> None:
    jobs = [
        {"jid": "1", "name": "orders@v1", "state": "RUNNING", "start-time": 1},
        {"jid": "2", "name": "orders@v2", "state": "RUNNING", "start-time": 2},
        {"jid": "3", "name": "orders-other@v1", "state": "RUNNING", "start-time": 3},
        {"jid": "4", "name": "orders", "state": "RUNNING", "start-time": 4},
        {"jid": "5", "name": "phase1_dedup@dedup#feedbeef", "state": "FINISHED", "start-time": 5},
    ]
    assert [(job["jid"], job["version"]) for job in jobs_named(jobs, job="orders")] == [("2", "v2"), ("1", "v1")]
    assert [job["jid"] for job in jobs_named(jobs, tag="feedbeef")] == ["5"]


def test_snapshot_locations(tmp_path: Path) -> None:
    assert local_path("file:/tmp/sp") == Path("/tmp/sp") == local_path("file:///tmp/sp") == local_path("/tmp/sp")
    assert local_path("s3://bucket/sp") is None
    savepoint = tmp_path / "savepoint-1"
    savepoint.mkdir()
    with pytest.raises(VariableError, match="is not a savepoint or checkpoint"):
        check_snapshot(f"file:{savepoint}")
    (savepoint / "_metadata").write_text("x")
    assert check_snapshot(f"file:{savepoint}") == f"file:{savepoint}"  # kept in Flink's own form
    assert check_snapshot("s3://bucket/sp") == "s3://bucket/sp"
    with pytest.raises(VariableError, match="not a snapshot location"):
        check_snapshot("relative/path")


def test_latest_retained_checkpoint(tmp_path: Path) -> None:
    job = "a" * 32
    for n in (2, 10, 11):
        (tmp_path / job / f"chk-{n}").mkdir(parents=True)
    for n in (2, 10):
        (tmp_path / job / f"chk-{n}" / "_metadata").write_text("x")
    assert latest_retained_checkpoint(f"file://{tmp_path}", job) == str(tmp_path / job / "chk-10")
    assert latest_retained_checkpoint(f"file://{tmp_path}", "b" * 32) is None
    assert latest_retained_checkpoint("s3://bucket/checkpoints", job) is None


def test_last_good_records_of_format_1_are_migrated() -> None:
    old = {"job_name": "orders", "version": "v1", "job_id": "a" * 32, "savepoint": "file:///sp/savepoint-1",
           "restored_from": None, "recorded_at": "2026-01-01T00:00:00Z", "dag_id": "d", "run_id": "r"}  # fmt: skip
    good = last_good.from_json(old)
    assert (good.version, good.flink_job_name, good.savepoint) == ("v1", "orders@v1", "file:///sp/savepoint-1")
    assert good.to_json() == {"format": 2, **old, "flink_job_name": "orders@v1"}
    assert last_good.from_json(good.to_json()) == good
    with pytest.raises(VariableError, match="lacks \\['version'\\]"):
        last_good.from_json({"job_name": "orders", "job_id": "x"})
    with pytest.raises(VariableError, match="not a last good record of format 1 or 2"):
        last_good.from_json({"format": 3})


def test_last_good_is_read_from_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    record = {"format": 2, "job_name": "orders", "version": "v2", "flink_job_name": "orders@v2",
              "job_id": "b" * 32, "savepoint": None, "restored_from": "file:/sp", "recorded_at": "t", "dag_id": "d",
              "run_id": "r"}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_VAR_FLINK_PHASE4_LAST_GOOD__ORDERS", json.dumps(record))
    assert last_good.read("orders") == last_good.from_json(record)
