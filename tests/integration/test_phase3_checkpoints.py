"""Lesson 4 (checkpoint tuning and failure recovery) through ``dag.test()`` on the private stack ``.stack-p3``
(ports +4000), whose TaskManagers and JobManager the drills kill; never the shared stack's. The module starts that
stack (small TaskManagers of 2 slots, heartbeats every 1 s: ``TUNED_HEARTBEATS``) when it is down, and stops it
after. Small size: five checkpoint settings for 30 s (the full sweep is in make bench), three kills; then one
JobManager kill, recovered by flink_recover_from_savepoint (the phase 4 DAGs, in a fresh Airflow home)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flink_lessons.load.kafka import Kafka
from flink_lessons.phase3.failover import TUNED_HEARTBEATS, LocalStack, kill_jobmanager
from flink_lessons.waiting import wait_for

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from benchmarks.phase5_stack import PrivateStack
from tests.conftest import ROOT
from tests.integration import test_dags_phase0_1, test_pyflink_kit
from tests.integration.test_dags_phase0_1 import assert_succeeded
from tests.integration.test_phase4_dags import Deployment, check_whole_run, produce_first_batch
from tests.integration.test_pyflink_kit import AirflowHome, Jobs, Topics

pytestmark = [pytest.mark.integration, pytest.mark.private_stack]
FLINK, GATEWAY, KAFKA = "flink_p3", "flink_p3_gateway", "kafka_p3"
STACK = LocalStack(ROOT / ".stack-p3", 4000)
DRILL_CONF = {**TUNED_HEARTBEATS, "taskmanager.numberOfTaskSlots": 2, "taskmanager.memory.process.size": "1600m",
              "taskmanager.memory.jvm-metaspace.size": "256m", "jobmanager.memory.process.size": "1200m"}  # fmt: skip
"""The drill stack: short heartbeats, and TaskManagers small enough to keep a standby beside the one at work."""
SWEEP = "hashmap_1s,min_pause_3s,rocksdb_incremental,aligned_backpressure,unaligned_backpressure"


@pytest.fixture(scope="module")
def private() -> Iterator[PrivateStack]:
    """The private stack with the drill's settings and three TaskManagers (six slots: one per setting), up;
    stopped afterwards if this module started it."""
    stack = PrivateStack(STACK.directory, STACK.port_offset)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLINK_STACK_FLINK_CONF", json.dumps(DRILL_CONF))
        stack.up()
        try:
            with stack.environment(rename={"flink_default": FLINK, "flink_sql_gateway_default": GATEWAY,
                                           "kafka_default": KAFKA}):  # fmt: skip
                flink = FlinkRestHook(FLINK)
                for _ in range(3 - len(flink.list_taskmanagers())):
                    STACK.start_taskmanager()
                deadline = time.monotonic() + 300
                while len(flink.list_taskmanagers()) < 3 and time.monotonic() < deadline:
                    time.sleep(2)
                yield stack
        finally:
            stack.down()


@pytest.mark.timeout(2400)  # a sweep and three kills on a loaded 2-core machine: ~15 min
def test_checkpoint_lesson_tabulates_each_setting_and_survives_three_kills_exactly_once(
    private: PrivateStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(test_dags_phase0_1, "DAG_FILE", "phase3_checkpoints", raising=False)
    conf = {"settings": SWEEP, "sweep_seconds": 30, "kills": 3, "drill_rate": 50, "flink_conn_id": FLINK,
            "gateway_conn_id": GATEWAY, "kafka_conn_id": KAFKA}  # fmt: skip
    run = test_dags_phase0_1.run_dag("flink_phase3_checkpoints", conf=conf, timeout=2300)
    assert_succeeded(run)
    report = run.xcoms["report"]
    assert report["ok"] is True, run.output[-6000:]
    rows = {
        row["setting"]: row
        for row in report["tables"]["checkpoints per setting (all ran at once, on the same machine)"]
    }
    assert list(rows) == SWEEP.split(",")
    assert rows["rocksdb_incremental"]["checkpointed_kb"] < rows["rocksdb_incremental"]["state_kb"]
    assert (
        rows["unaligned_backpressure"]["persisted_in_flight_kb"]
        > 0
        == rows["aligned_backpressure"]["persisted_in_flight_kb"]
    )
    counts = report["tables"]["failure drill: events (committed output read with read_committed)"][0]
    assert counts["expected"] > 0 and (counts["lost"], counts["duplicated"], counts["unexpected"]) == (0, 0, 0)
    kills = report["tables"]["failure drill: seconds from each TaskManager kill"]
    assert len(kills) == 3 and len({k["taskmanager"] for k in kills}) == 3, kills
    assert all(k["job_rescheduled"] < 10 for k in kills), kills
    # Clean-up: the run's jobs are over and its topics are gone.
    flink = FlinkRestHook(FLINK)
    tag = run.xcoms["resolve_settings"]["tag"]
    mine = [j for j in flink.list_jobs() if tag in j.get("name", "")]
    assert mine and all(j["state"] in ("CANCELED", "FINISHED") for j in mine), mine
    kafka = Kafka.from_connection(KAFKA)
    assert not [t for t in run.xcoms["resolve_settings"]["topics"].values() if kafka.partitions(t)]


@pytest.mark.timeout(1200)
def test_a_killed_jobmanager_forgets_the_job_and_the_recovery_dag_restores_it_with_its_state(
    private: PrivateStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No HA: the restarted JobManager knows no job (``GET /jobs/<id>`` 404, ``/jobs/overview`` empty); the
    savepoint taken before the kill restores the job with its open window, so every window counts each event
    once (test_phase4_dags' exact check)."""
    monkeypatch.setattr(test_pyflink_kit, "BOOTSTRAP", Kafka.from_connection(KAFKA).bootstrap_servers)
    with private.environment():  # flink_default, kafka_default and FLINK_STACK_HOME: the private stack's
        home, topics, jobs = AirflowHome(tmp_path), Topics(), Jobs()
        try:
            deployment = Deployment(home, topics, jobs, "p3-jm", python_jar=None)
            v1 = deployment.deploy_v1()
            first = produce_first_batch(deployment)  # windows 0-2 written, window 3 open in the job's state
            savepoint = jobs.rest.wait_for_savepoint(v1, jobs.rest.trigger_savepoint(v1))

            drill = kill_jobmanager(STACK, v1)
            print("jobmanager drill:", json.dumps(drill))
            assert drill["job_status"] == 404 and drill["jobs_overview"] == [], drill
            # kill_jobmanager waited until each TaskManager was registered again: 3, or 4 after the checkpoint test
            assert drill["taskmanagers"] >= 3, drill

            started = time.time()
            run = deployment.run("flink_recover_from_savepoint", restore_from="savepoint", savepoint_path=savepoint)
            assert run.state == "success", run
            restored_id = run.xcom("submit_restored")
            running_at = jobs.rest.get_job(restored_id)["timestamps"]["RUNNING"] / 1000
            print(f"recovery DAG: restored job RUNNING {running_at - started:.1f}s after the run started, "
                  f"run {time.time() - started:.1f}s")  # fmt: skip
            assert run.xcom("find_restore_point")["location"] == savepoint
            restored_job = (restored_id, f"{deployment.name}@v1")
            assert [(job["jid"], job["name"]) for job in deployment.active()] == [restored_job]
            restored = jobs.rest.get_checkpoints(restored_id)["latest"]["restored"]["external_path"]
            assert restored == savepoint
            check_whole_run(deployment, first, "v1")
        finally:
            jobs.cancel_all()
            topics.delete_all()
        flink = FlinkRestHook(FLINK)

        def settled() -> bool:  # the stack as the module found it: its TaskManagers registered, every slot free
            overview = flink.get_overview()
            return bool(overview["taskmanagers"] >= 3 and overview["slots-available"] == overview["slots-total"])

        wait_for("three TaskManagers or more, every slot free again", settled, 120)
