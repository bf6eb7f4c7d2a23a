"""The restart drill, on the private stack (``.stack-obs``, ports +5000): its TaskManager is killed, never the
shared one's.

A checkpointed datagen -> blackhole job (1 s checkpoints) is watched by flink_observability's own task code
(``observe`` + ``send_alerts``) with only the restart limit on (``max_restarts`` 0 in a 10 s window); alerts go
through Airflow's SMTP notifier to a real SMTP receiver on loopback and are read back from it. Healthy: no
alert. A standby TaskManager joins, then the job's TaskManager is SIGKILLed -> the restart alert fires, naming
the job; the job runs again on the standby, its checkpoints complete again -> the alert resolves once the failure
has left the window, once. The module starts the private stack (short heartbeats, metrics fetched every second,
small TaskManagers: ``DRILL_CONF``) when it is down and stops it after.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flink_lessons.observability import tasks
from flink_lessons.observability.settings import OBSERVABILITY
from flink_lessons.phase3.failover import TUNED_HEARTBEATS
from flink_lessons.settings import resolve

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from airflow_flink_provider.hooks.sql_gateway import FlinkSqlGatewayHook
from benchmarks.phase5_stack import PrivateStack
from benchmarks.phase5_tm_kill import RESTARTS
from tests.conftest import ROOT
from tests.integration._flink_it import wait_until
from tests.unit._alert_inbox import smtp_inbox

pytestmark = [pytest.mark.integration, pytest.mark.private_stack]
FLINK, GATEWAY = "flink_obs_private", "flink_obs_private_gateway"
DRILL_CONF = {**TUNED_HEARTBEATS, "metrics.fetcher.update-interval": 1000, "taskmanager.numberOfTaskSlots": 2,
              "taskmanager.memory.process.size": "1600m", "taskmanager.memory.jvm-metaspace.size": "256m",
              "jobmanager.memory.process.size": "1200m"}  # fmt: skip
"""The JobManager notices a killed TaskManager within seconds (not the default 50 s heartbeat timeout); two
small TaskManagers fit beside the shared stack's."""


@pytest.fixture(scope="module")
def private() -> Iterator[PrivateStack]:
    """The private stack, up; stopped afterwards if this module started it."""
    stack = PrivateStack(flink_conf=DRILL_CONF)
    try:
        stack.up()
        with stack.environment(rename={"flink_default": FLINK, "flink_sql_gateway_default": GATEWAY}):
            yield stack
    finally:
        stack.down()


def _completed(rest: FlinkRestHook, job_id: str) -> int:
    return int(rest.get_checkpoints(job_id).get("counts", {}).get("completed", 0))


@pytest.mark.timeout(1200)  # a TaskManager restart on a loaded 2-core machine
def test_taskmanager_kill_fires_the_restart_alert_and_recovery_clears_it(
    private: PrivateStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"obs-restart-{uuid.uuid4().hex[:8]}"
    rest, gateway = FlinkRestHook(FLINK), FlinkSqlGatewayHook(GATEWAY)
    session = gateway.open_session({"parallelism.default": "1", "execution.checkpointing.interval": "1s",
                                    "pipeline.name": name, **RESTARTS})  # fmt: skip
    job_id = None
    try:
        gateway.run_statement(session, "CREATE TABLE src (k BIGINT) WITH ('connector'='datagen','rows-per-second'='5')")
        gateway.run_statement(session, "CREATE TABLE snk (k BIGINT) WITH ('connector'='blackhole')")
        job_id = gateway.fetch_results(session, gateway.execute_statement(session, "INSERT INTO snk SELECT k FROM src",
                                                                          timeout=300)).job_id  # fmt: skip
        assert job_id
        wait_until(lambda: _completed(rest, job_id) >= 1 or None, timeout=300, interval=1)
        victims = private.taskmanager_pids()  # the job's TaskManager: the only one when it started
        standing = len(private.registered_taskmanagers())
        private.start_taskmanager()
        wait_until(lambda: len(private.registered_taskmanagers()) > standing or None, timeout=300, interval=1)
        settings = resolve(OBSERVABILITY, ("the test", {
            "job_name_pattern": f"^{name}$", "flink_conn_id": FLINK, "window": "10s", "state_dir": str(tmp_path),
            "limits": {"max_pending_records": None, "checkpoint_age_intervals": None, "max_failed_checkpoints": None,
                       "max_restarts": 0, "max_backpressure": None},
        })).to_json()  # fmt: skip
        with smtp_inbox(monkeypatch) as inbox:

            def cycle() -> list[tuple[str, str, str]]:
                tasks.send_alerts(settings, tasks.observe(settings["values"]))
                return inbox.alerts()

            assert cycle() == []  # healthy: nothing
            killed_at = time.time()
            private.kill_taskmanager(victims)
            fired = ("FIRING", name, "restarts")
            wait_until(lambda: fired in cycle() or None, timeout=300, interval=1)
            fired_after = time.time() - killed_at
            subject = inbox.messages[0]["Subject"]
            assert name in subject and "restarts" in subject, subject

            before = _completed(rest, job_id)  # the job restarts on the standby
            wait_until(lambda: _completed(rest, job_id) > before or None, timeout=600, interval=1)
            assert rest.find_job_state(job_id) == "RUNNING"
            resolved = ("RESOLVED", name, "restarts")
            wait_until(lambda: resolved in cycle() or None, timeout=300, interval=1)
            resolved_after = time.time() - killed_at
            assert inbox.alerts() == [fired, resolved]  # one incident: fired once, resolved once
            report = tasks.render_report(tasks.observe(settings["values"]))
        kept = ROOT / "test-results" / "observability-drill" / name
        kept.mkdir(parents=True, exist_ok=True)
        shutil.copy(report["report"], kept / "report.md")
        shutil.copy(report["plot"], kept / "lag_checkpoints.png")
        timing = {"restarts (TaskManager killed)": round(fired_after, 1), "resolved": round(resolved_after, 1)}
        (kept / "fault_to_alert_s.json").write_text(json.dumps(timing, indent=1))
        print(f"kill -> alert, kill -> resolved seconds: {timing}; report and plot kept in {kept}")
    finally:
        if job_id and rest.find_job(job_id) is not None:
            rest.cancel_job(job_id)
        gateway.close_session(session)
