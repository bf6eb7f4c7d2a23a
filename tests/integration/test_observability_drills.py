"""Fault drills on the shared stack: each fault fires its alert and clears it, a healthy job alerts nothing.

Three jobs of this test only (found by a unique name pattern), observed by flink_observability's own task code
(``observe`` + ``send_alerts``) every few seconds, alerts delivered by Airflow's SMTP notifier to a real SMTP
receiver on loopback and read back from it:

- ``lag``: a Kafka source 5,000 records behind, slowed by a Python UDF (10 ms a record) -> source_lag fires;
  the UDF is released (its flag file removed), the backlog drains -> resolved;
- ``bp``: a datagen source at 300 rows/s into the slowed UDF in its own vertex (chaining off), aligned
  checkpoints with a 1 s timeout -> backpressure and failed_checkpoints (more than 2 in 20 s) fire; released ->
  both resolve (failed checkpoints once the failures are older than the 20 s window);
- ``ok``: datagen at 5 rows/s into blackhole, checkpoints every second -> no alert, ever.

Every wait is on a condition with a generous deadline; nothing asserts on timing. The time from each job's
start (the fault is there from its first record) to its alert is printed and written next to the report.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from flink_lessons.observability import tasks
from flink_lessons.observability.settings import OBSERVABILITY
from flink_lessons.settings import resolve

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from airflow_flink_provider.hooks.sql_gateway import FlinkSqlGatewayHook
from tests.conftest import HOST, PORTS, ROOT
from tests.integration._flink_it import wait_until
from tests.unit._alert_inbox import smtp_inbox

UDF = '''
import os, time
from pyflink.table import DataTypes
from pyflink.table.udf import udf

@udf(result_type=DataTypes.BIGINT())
def slow(value):
    if os.path.exists({flag!r}):
        time.sleep(0.01)
    return value
'''
BACKLOG = 5_000

pytestmark = pytest.mark.integration


@pytest.fixture
def drill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    tag = uuid.uuid4().hex[:8]
    flag = tmp_path / "slow.flag"
    flag.touch()
    module = tmp_path / f"obs_slow_{tag}.py"
    module.write_text(UDF.format(flag=str(flag)))
    bootstrap = f"{HOST}:{PORTS['kafka']}"
    topic = f"obs-drill-{tag}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for i in range(BACKLOG):
        producer.produce(topic, json.dumps({"k": i}).encode())
        if i % 5000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0
    rest, gateway = FlinkRestHook(), FlinkSqlGatewayHook()
    sessions: list[str] = []
    jobs: dict[str, str] = {}
    try:
        common = {"parallelism.default": "1", "python.files": str(module), "python.fn-execution.bundle.size": "100"}
        statements = {
            "lag": (
                {"execution.checkpointing.interval": "2s"},
                [
                    f"CREATE TABLE src (k BIGINT) WITH ('connector'='kafka','topic'='{topic}',"
                    f"'properties.bootstrap.servers'='{bootstrap}','properties.group.id'='obs-drill-{tag}',"
                    "'scan.startup.mode'='earliest-offset','format'='json')",
                    "CREATE TABLE snk (k BIGINT) WITH ('connector'='blackhole')",
                ],
                "INSERT INTO snk SELECT slow(k) FROM src",
            ),
            "bp": (
                {"execution.checkpointing.interval": "2s", "execution.checkpointing.timeout": "1s",
                 "execution.checkpointing.tolerable-failed-checkpoints": "1000000",
                 "pipeline.operator-chaining.enabled": "false"},
                [
                    "CREATE TABLE src (k BIGINT) WITH ('connector'='datagen','rows-per-second'='300')",
                    "CREATE TABLE snk (k BIGINT) WITH ('connector'='blackhole')",
                ],
                "INSERT INTO snk SELECT slow(k) FROM src",
            ),
            "ok": (
                {"execution.checkpointing.interval": "1s"},
                [
                    "CREATE TABLE src (k BIGINT) WITH ('connector'='datagen','rows-per-second'='5')",
                    "CREATE TABLE snk (k BIGINT) WITH ('connector'='blackhole')",
                ],
                "INSERT INTO snk SELECT k FROM src",
            ),
        }  # fmt: skip
        for role, (config, ddl, insert) in statements.items():
            name = f"obs-drill-{tag}-{role}"
            session = gateway.open_session({**common, **config, "pipeline.name": name})
            sessions.append(session)
            if role != "ok":
                gateway.run_statement(session, "CREATE TEMPORARY SYSTEM FUNCTION slow AS "
                                               f"'{module.stem}.slow' LANGUAGE PYTHON")  # fmt: skip
            for statement in ddl:
                gateway.run_statement(session, statement)
            operation = gateway.execute_statement(session, insert, timeout=180)
            job_id = gateway.fetch_results(session, operation).job_id
            assert job_id
            jobs[name] = job_id
        with smtp_inbox(monkeypatch) as inbox:
            yield {"tag": tag, "flag": flag, "jobs": jobs, "inbox": inbox, "state": tmp_path / "state", "rest": rest}
    finally:
        for job_id in jobs.values():
            if rest.find_job(job_id) is not None:
                rest.cancel_job(job_id)
        for session in sessions:
            gateway.close_session(session)
        admin.delete_topics([topic])


def test_faults_fire_and_clear_and_a_healthy_job_alerts_nothing(drill: dict[str, Any]) -> None:
    tag, inbox, rest = drill["tag"], drill["inbox"], drill["rest"]
    settings = resolve(OBSERVABILITY, ("the test", {
        "job_name_pattern": f"^obs-drill-{tag}-",
        "window": "20s",
        "state_dir": str(drill["state"]),
        # A loaded 2-core machine fails a healthy job's checkpoint now and then ("Trigger checkpoint failure"), and
        # Python UDF tasks take minutes to start there: the limits tell a fault from that, not from perfection.
        "limits": {"max_pending_records": 1000, "checkpoint_age_intervals": 100, "max_failed_checkpoints": 2,
                   "max_restarts": 0, "max_backpressure": "low"},
    })).to_json()  # fmt: skip
    lag, bp, ok = (f"obs-drill-{tag}-{role}" for role in ("lag", "bp", "ok"))
    started = {name: rest.get_job(job_id)["start-time"] for name, job_id in drill["jobs"].items()}
    received_at: dict[tuple[str, str, str], float] = {}

    def cycle() -> set[tuple[str, str, str]]:
        observed = tasks.observe(settings["values"])
        tasks.send_alerts(settings, observed)
        for alert in inbox.alerts():
            received_at.setdefault(alert, time.time())
        assert all(job != ok for _, job, _ in inbox.alerts()), inbox.alerts()  # no false positive, ever
        return set(inbox.alerts())

    fired = {("FIRING", lag, "source_lag"), ("FIRING", bp, "backpressure"), ("FIRING", bp, "failed_checkpoints")}
    wait_until(lambda: fired <= cycle() or None, timeout=480, interval=3)
    drill["flag"].unlink()  # release the slowed UDF: the backlog drains, the backpressure and the timeouts end
    resolved = {("RESOLVED", job, metric) for _, job, metric in fired}
    wait_until(lambda: resolved <= cycle() or None, timeout=300, interval=3)
    # One alert per incident: each fault fired once and resolved once (a flapping extra incident would add more).
    counts = {alert: inbox.alerts().count(alert) for alert in fired | resolved}
    assert set(counts.values()) == {1}, counts
    report = tasks.render_report(tasks.observe(settings["values"]))
    assert Path(report["plot"]).stat().st_size > 0
    text = Path(report["report"]).read_text()
    assert f"| {ok} | OK |" in text, text
    timing = {f"{metric} ({job})": round(received_at[("FIRING", job, metric)] - started[job] / 1000, 1)
              for _, job, metric in sorted(fired)}  # fmt: skip
    # Kept for the record (test-results/ is git-ignored): the report, the plot and the fault -> alert times.
    kept = ROOT / "test-results" / "observability-drill" / tag
    kept.mkdir(parents=True, exist_ok=True)
    shutil.copy(report["report"], kept / "report.md")
    shutil.copy(report["plot"], kept / "lag_checkpoints.png")
    (kept / "fault_to_alert_s.json").write_text(json.dumps(timing, indent=1))
    print(f"fault -> alert seconds: {timing}; report and plot kept in {kept}")
