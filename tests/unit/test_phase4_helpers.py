"""Phase 4 helpers (dags/common/phase4.py) without Flink: Variable schema, job arguments, naming, health gate
rules, the cancel helper and the retry policy."""

from __future__ import annotations

import logging
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "dags"))

from common import phase4  # noqa: E402
from common.variables import VariableError  # noqa: E402

from airflow_flink_provider.protocol.errors import (  # noqa: E402
    FlinkConnectionError,
    FlinkError,
    FlinkJobFailedError,
    FlinkSavepointError,
    FlinkSqlError,
    FlinkTimeoutError,
)

pytestmark = pytest.mark.unit

JAR = str(ROOT / "pyproject.toml")  # any existing file stands in for the flink-python jar
LOG = logging.getLogger("test")


def resolve(variable: dict[str, Any] | None = None, conf: dict[str, Any] | None = None) -> phase4.PyflinkSettings:
    base = {"python_jar": JAR, **(variable or {})}
    return phase4.resolve_pyflink(base, conf, kafka_bootstrap=lambda conn_id: "127.0.0.1:9092")


def test_defaults_resolve_and_produce_arguments_the_job_accepts() -> None:
    settings = resolve()
    args = settings.check_version("v1")
    assert args[:2] == ["--bootstrap-servers", "127.0.0.1:9092"]
    assert args[args.index("--window-seconds") + 1] == "60"
    assert args[args.index("--job-name") + 1] == "orders_enrichment@v1"
    assert settings.py_file("v2") == ROOT / "include" / "pyflink" / "orders_enrichment" / "v2.py"


def test_run_conf_overrides_the_variable_and_groups_merge_per_key() -> None:
    settings = resolve(
        {"version": "v1", "topics": {"source": "in-a"}, "health": {"min_checkpoints": 5}},
        {"version": "v2", "topics": {"sink": "out-b"}, "window_size": "10s"},
    )
    assert settings["version"] == "v2"
    assert (settings["topics.source"], settings["topics.sink"]) == ("in-a", "out-b")
    assert settings.seconds("window_size") == 10
    assert settings.health() == phase4.HealthPolicy(5, 30, 0, 300, 2)


def test_every_bad_key_is_reported_at_once() -> None:
    with pytest.raises(VariableError) as raised:
        resolve(
            {
                "window_size": "1.5s",
                "parallelism": 0,
                "topics": {"source": "a b"},
                "restart": {"strategy": "sometimes"},
                "savepoint_dir": "relative/dir",
            }
        )
    message = str(raised.value)
    for key in ("window_size", "parallelism", "topics.source", "restart.strategy", "savepoint_dir"):
        assert f"- {key}:" in message
    assert "nothing was done" in message


def test_unknown_keys_and_non_objects_are_refused() -> None:
    with pytest.raises(VariableError, match=r"unknown key\(s\) \['health.patience', 'windows'\]"):
        resolve({"windows": "10s", "health": {"patience": 3}})
    with pytest.raises(VariableError, match="'topics' must be a JSON object"):
        resolve({"topics": "orders"})
    with pytest.raises(VariableError, match="must be a JSON object"):
        phase4.resolve_pyflink(["v1"], None, kafka_bootstrap=lambda conn_id: None)  # type: ignore[arg-type]


def test_bootstrap_comes_from_the_kafka_connection_unless_set() -> None:
    asked: list[str] = []

    def lookup(conn_id: str) -> str | None:
        asked.append(conn_id)
        return None

    with pytest.raises(VariableError, match=r"has no bootstrap\.servers"):
        phase4.resolve_pyflink({"python_jar": JAR, "kafka_conn_id": "kafka_x"}, None, kafka_bootstrap=lookup)
    assert asked == ["kafka_x"]
    settings = phase4.resolve_pyflink(
        {"python_jar": JAR, "bootstrap_servers": "broker:9093"}, None, kafka_bootstrap=lookup
    )
    assert settings.bootstrap_servers == "broker:9093"
    assert asked == ["kafka_x"]


def test_unknown_version_and_arguments_the_job_refuses() -> None:
    with pytest.raises(VariableError, match=r"no version 'v9'.*known: \['broken', 'v1', 'v2'\]"):
        resolve().check_version("v9")
    bad_broker = resolve({"topics": {"source": "x", "sink": "y"}})
    object.__setattr__(bad_broker, "bootstrap_servers", "not a broker list")
    with pytest.raises(VariableError, match=r"the v1 job refuses its arguments: .*--bootstrap-servers"):
        bad_broker.check_version("v1")
    with pytest.raises(VariableError, match="must differ"):
        resolve({"topics": {"source": "same", "sink": "same"}})


def test_settings_survive_the_xcom_round_trip() -> None:
    settings = resolve({"window_size": "2 min", "checkpoint": {"dir": "file:///tmp/cp"}})
    again = phase4.PyflinkSettings.from_json(settings.to_json())
    assert again.job_args("v2") == settings.job_args("v2")
    assert again.health() == settings.health()


def test_python_jar_from_the_stack_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "opt").mkdir()
    jar = tmp_path / "opt" / "flink-python-2.1.3.jar"
    jar.write_bytes(b"")
    monkeypatch.setenv("FLINK_STACK_HOME", str(tmp_path))
    assert phase4.find_python_jar(None) == str(jar)
    monkeypatch.delenv("FLINK_STACK_HOME")
    with pytest.raises(VariableError, match="python_jar is null"):
        phase4.find_python_jar(None)


def test_job_names_and_the_running_job() -> None:
    assert phase4.flink_job_name("orders", "v2") == "orders@v2"
    assert phase4.split_job_name("orders@v2") == ("orders", "v2")
    assert phase4.split_job_name("a@b@v1") == ("a@b", "v1")
    assert phase4.split_job_name("plain") == ("plain", None)
    jobs = [
        {"jid": "a", "name": "orders@v1", "state": "FINISHED", "start-time": 1},
        {"jid": "b", "name": "orders@v2", "state": "RUNNING", "start-time": 3},
        {"jid": "c", "name": "orders-eu@v1", "state": "RUNNING", "start-time": 4},
        {"jid": "d", "name": "orders@v1", "state": "RESTARTING", "start-time": 2},
    ]
    found = phase4.running_jobs(jobs, "orders")
    assert [(job["job_id"], job["version"], job["state"]) for job in found] == [
        ("b", "v2", "RUNNING"),
        ("d", "v1", "RESTARTING"),
    ]


POLICY = phase4.HealthPolicy(min_checkpoints=2, stable_seconds=10, max_restarts=0, timeout_seconds=60, poll_seconds=1)


def look(state: str = "RUNNING", running: bool = True, checkpoints: int = 0, restarts: int = 0) -> phase4.Observation:
    return phase4.Observation(state, running, checkpoints, restarts)


def test_health_needs_checkpoints_and_a_stable_period() -> None:
    watch = phase4.HealthWatch(POLICY, started=0)
    assert watch.observe(0, look(running=False)).outcome == "waiting"
    assert watch.observe(2, look(checkpoints=1)).outcome == "waiting"  # stable from t=2
    assert watch.observe(11, look(checkpoints=2)).outcome == "waiting"  # stable 9s < 10s
    verdict = watch.observe(12, look(checkpoints=2))
    assert verdict.outcome == "healthy"
    assert "for 10s" in verdict.reason


def test_tasks_not_running_restart_the_stable_period() -> None:
    watch = phase4.HealthWatch(POLICY, started=0)
    watch.observe(0, look(checkpoints=3))
    watch.observe(8, look(state="RUNNING", running=False, checkpoints=3))
    assert watch.observe(12, look(checkpoints=3)).outcome == "waiting"
    assert watch.observe(22, look(checkpoints=3)).outcome == "healthy"


def test_a_restart_beyond_the_limit_is_unhealthy_at_once() -> None:
    watch = phase4.HealthWatch(POLICY, started=0)
    verdict = watch.observe(1, look(state="RESTARTING", restarts=1))
    assert verdict.outcome == "unhealthy"
    assert "restarted 1 time(s); max_restarts is 0" in verdict.reason


def test_tolerated_restarts_reset_the_stable_period() -> None:
    policy = phase4.HealthPolicy(0, 10, 1, 60, 1)
    watch = phase4.HealthWatch(policy, started=0)
    watch.observe(0, look())
    assert watch.observe(9, look(restarts=1)).outcome == "waiting"
    assert watch.observe(15, look(restarts=1)).outcome == "waiting"
    assert watch.observe(19, look(restarts=1)).outcome == "healthy"


@pytest.mark.parametrize("state", ["FAILED", "CANCELED", "FINISHED", "FAILING", "SUSPENDED"])
def test_an_ended_or_failing_job_is_unhealthy(state: str) -> None:
    verdict = phase4.HealthWatch(POLICY, started=0).observe(0, look(state=state))
    assert verdict == phase4.Verdict("unhealthy", f"the job is {state}")


def test_timeout_says_what_was_missing() -> None:
    watch = phase4.HealthWatch(POLICY, started=0)
    watch.observe(0, look(checkpoints=1))
    verdict = watch.observe(60, look(checkpoints=1))
    assert verdict.outcome == "unhealthy"
    assert "not healthy within 60s" in verdict.reason
    assert "checkpoints 1/2" in verdict.reason


class FakeHook:
    """Just the REST calls the health gate and ensure_stopped make."""

    def __init__(self, states: list[str], *, checkpoints: int = 5, failures: int = 0, known: bool = True) -> None:
        self.states = states
        self.checkpoints = checkpoints
        self.failures = failures
        self.known = known
        self.cancelled = False

    def _state(self) -> str:
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]

    def get_job(self, job_id: str) -> dict[str, Any]:
        return {"state": self._state(), "vertices": [{"status": "RUNNING"}, {"status": "FINISHED"}]}

    def get_checkpoints(self, job_id: str) -> dict[str, Any]:
        return {"counts": {"completed": self.checkpoints}}

    def get_exceptions(self, job_id: str) -> dict[str, Any]:
        return {"exceptionHistory": {"entries": [{}] * self.failures}}

    def get_root_cause(self, job_id: str) -> str | None:
        return "StateMigrationException: incompatible" if self.failures else None

    def find_job(self, job_id: str) -> dict[str, Any] | None:
        return {"state": self._state()} if self.known else None

    def cancel_job(self, job_id: str) -> None:
        self.cancelled = True

    def get_job_state(self, job_id: str) -> str:
        return self._state()


def test_health_gate_loop_reports_the_root_cause() -> None:
    clock = iter(range(0, 1000, 5))
    verdict = phase4.health_gate(
        FakeHook(["RUNNING"], failures=1), "j", POLICY, LOG, clock=lambda: float(next(clock)), sleep=lambda s: None
    )
    assert verdict["healthy"] is False
    assert verdict["root_cause"] == "StateMigrationException: incompatible"
    assert verdict["restarts"] == 1


def test_health_gate_loop_healthy() -> None:
    clock = iter(range(0, 1000, 5))
    verdict = phase4.health_gate(
        FakeHook(["RUNNING"]), "j", POLICY, LOG, clock=lambda: float(next(clock)), sleep=lambda s: None
    )
    assert verdict["healthy"] is True
    assert verdict["root_cause"] is None
    assert (verdict["state"], verdict["checkpoints"]) == ("RUNNING", 5)


def test_ensure_stopped() -> None:
    assert phase4.ensure_stopped(FakeHook(["RUNNING"], known=False), "j", LOG) is None
    failed = FakeHook(["FAILED"])
    assert phase4.ensure_stopped(failed, "j", LOG) == "FAILED"
    assert not failed.cancelled
    running = FakeHook(["RESTARTING", "CANCELLING", "CANCELED"])
    assert phase4.ensure_stopped(running, "j", LOG, poll=0) == "CANCELED"
    assert running.cancelled


@pytest.mark.parametrize(
    ("error", "action"),
    [
        (FlinkConnectionError("refused"), "retry"),
        (FlinkTimeoutError("savepoint did not complete"), "retry"),
        (FlinkSavepointError("savepoint failed"), "retry"),
        (FlinkError("gateway", status=503), "retry"),
        (FlinkSqlError("bad SQL"), "fail"),
        (FlinkJobFailedError("job FAILED"), "fail"),
        (FlinkError("bad request", status=400), "fail"),
        (ValueError("bad argument"), "fail"),
        (VariableError("bad Variable"), "fail"),
        (RuntimeError("something else"), "default"),
    ],
)
def test_retry_policy(error: BaseException, action: str) -> None:
    decision = phase4.FlinkRetryPolicy().evaluate(error, try_number=3, max_tries=5)
    assert decision.action.value == action
    if action == "retry":
        assert decision.retry_delay == timedelta(seconds=20)


def test_retry_backoff_is_capped_and_serializable() -> None:
    policy = phase4.FlinkRetryPolicy(base=timedelta(seconds=10), cap=timedelta(seconds=30))
    assert policy.evaluate(FlinkConnectionError("x"), 1, 5).retry_delay == timedelta(seconds=10)
    assert policy.evaluate(FlinkConnectionError("x"), 5, 5).retry_delay == timedelta(seconds=30)
    again = phase4.FlinkRetryPolicy.deserialize(policy.serialize())
    assert (again.base, again.cap) == (policy.base, policy.cap)


def test_schema_table_lists_every_key() -> None:
    table = phase4.schema_markdown(phase4.PYFLINK_RULES)
    for rule in phase4.PYFLINK_RULES:
        assert f"| `{rule.key}` |" in table


def test_snapshot_locations(tmp_path: Path) -> None:
    assert phase4.normalize_location("file:/data/sp-1") == "file:///data/sp-1"
    assert phase4.normalize_location("file:///data/sp-1") == "file:///data/sp-1"
    assert phase4.normalize_location("s3://bucket/sp-1") == "s3://bucket/sp-1"
    assert phase4.local_path("file:/data/sp") == phase4.local_path("file:///data/sp") == Path("/data/sp")
    assert phase4.local_path("s3://bucket/sp") is None
    savepoint = tmp_path / "savepoint-1"
    savepoint.mkdir()
    with pytest.raises(VariableError, match="_metadata does not exist"):
        phase4.check_snapshot(f"file:{savepoint}")
    (savepoint / "_metadata").write_bytes(b"")
    assert phase4.check_snapshot(f"file:{savepoint}") == f"file://{savepoint}"
    assert phase4.check_snapshot("s3://bucket/sp-1") == "s3://bucket/sp-1"
    with pytest.raises(VariableError, match="not a snapshot location"):
        phase4.check_snapshot("relative/path")


def test_latest_retained_checkpoint(tmp_path: Path) -> None:
    job = "a" * 32
    for number, complete in ((2, True), (10, True), (11, False)):
        folder = tmp_path / job / f"chk-{number}"
        folder.mkdir(parents=True)
        if complete:
            (folder / "_metadata").write_bytes(b"")
    (tmp_path / job / "shared").mkdir()
    assert phase4.latest_retained_checkpoint(f"file://{tmp_path}", job) == str(tmp_path / job / "chk-10")
    assert phase4.latest_retained_checkpoint(f"file://{tmp_path}", "b" * 32) is None
    assert phase4.latest_retained_checkpoint("s3://bucket/checkpoints", job) is None


def test_watch_until_finished_and_failures() -> None:
    clock = iter(range(0, 1000))
    done = phase4.watch_until(FakeHook(["RUNNING", "FINISHED"]), "j", "FINISHED", max_restarts=0, timeout=60,
                              poll=0, log=LOG, clock=lambda: float(next(clock)), sleep=lambda s: None)  # fmt: skip
    assert (done["ok"], done["state"], done["reason"]) == (True, "FINISHED", "reached FINISHED")
    failed = phase4.watch_until(FakeHook(["FAILED"], failures=1), "j", "FINISHED", max_restarts=3, timeout=60,
                                poll=0, log=LOG, clock=lambda: float(next(clock)), sleep=lambda s: None)  # fmt: skip
    assert (failed["ok"], failed["reason"]) == (False, "ended FAILED instead of reaching FINISHED")
    assert failed["root_cause"] == "StateMigrationException: incompatible"
    restarts = phase4.watch_until(FakeHook(["RESTARTING"], failures=2), "j", "RUNNING", max_restarts=1,
                                  timeout=60, poll=0, log=LOG, clock=lambda: 0.0, sleep=lambda s: None)  # fmt: skip
    assert restarts["reason"] == "restarted 2 time(s); max_restarts is 1"
    ticks = iter([0.0, 0.0, 100.0])
    late = phase4.watch_until(FakeHook(["RESTARTING"]), "j", "RUNNING", max_restarts=0, timeout=60, poll=0,
                              log=LOG, clock=lambda: next(ticks), sleep=lambda s: None)  # fmt: skip
    assert late["reason"] == "did not reach RUNNING within 60s (last state RESTARTING)"
