"""flink_observability and flink_dlq_alerts under Airflow's real scheduler, DAG processor and triggerer (what
``make airflow-ui`` runs, in a private Airflow home on a free port: tests/e2e/airflow_ui.py), on the shared stack.
Alerts go to a real SMTP receiver on loopback (``smtp_alerts`` points at it) and are read back from it.

- A dead letter written to a dead-letter topic: flink_dlq_alerts' AssetWatcher (the Kafka provider's
  KafkaMessageQueueTrigger, in the triggerer) turns it into an asset event, the scheduler runs the DAG, its
  ``send_alert`` task mails the alert naming the topic, the count and the parse error.
- flink_phase5_pipeline (size XS, unbounded: the job runs on) triggered through the API; then flink_observability,
  unpaused with its Variable watching that job, gets its scheduled run: its report names the job with a verdict,
  its plot is a PNG the task log names, and the receiver got exactly the alerts the verdict calls for.

The watcher reads with a consumer group of its own, committed at the end of the dead-letter topics that already
exist (the shared Kafka holds older dead letters of other runs) and ``earliest`` on the test's new topic.
Report, plot and times are kept under test-results/observability-airflow/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from flink_lessons.load.kafka import Kafka
from flink_lessons.observability.dlq import DLQ_TOPICS
from flink_lessons.phase5 import pipeline
from flink_lessons.phase5.params import IcebergCatalog

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from stack import cli
from tests.conftest import HOST, PORTS, ROOT
from tests.e2e.airflow_ui import AirflowUI, wait_until
from tests.unit._alert_inbox import Inbox, smtp_inbox

# It starts an Airflow of its own (one per run: the module is one work unit, tests/conftest.py).
pytestmark = [pytest.mark.integration]
STARTUP = 1500  # seconds: migrate, start, parse (the API server answered after 12 min at load 30)
RUN_DEADLINE = 900  # seconds for one DAG run (the phase 5 pipeline deploys, waits for health and produces)
TAG = uuid.uuid4().hex[:8]
DLQ_TOPIC = f"phase1-malformed-dlq-{TAG}"
BOOTSTRAP = f"{HOST}:{PORTS['kafka']}"
KEPT = ROOT / "test-results" / "observability-airflow" / TAG
DAG_FILES = ("flink_dlq_alerts.py", "flink_observability.py", "phase5_pipeline.py")


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AirflowUI, Inbox]]:
    """The private Airflow with its alerts going to the receiver; the test's dead-letter topic exists first (the
    provider's trigger fails on a subscription that matches no topic)."""
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    for future in admin.create_topics([NewTopic(DLQ_TOPIC, 1, 1)]).values():
        future.result()
    skip_older_dead_letters(f"it-dlq-{TAG}")
    home = tmp_path_factory.mktemp("airflow-obs")
    variables = {"flink_observability": {"job_name_pattern": "^no job yet$", "state_dir": str(home / "observability")},
                 "flink_phase5": {"dataset": {"size": "XS"}, "bounded": False, "database": f"p5obs_{TAG}",
                                  "checkpoint_interval": "5s"}}  # fmt: skip
    with pytest.MonkeyPatch.context() as patch, smtp_inbox(patch) as inbox:
        ui = AirflowUI(home, variables)
        # Only the DAG files this module runs (copies of the real ones), each parsed once: the DAG processor
        # parsing the whole folder every few seconds competes for the 2 cores with everything else.
        dags = home / "dags"
        dags.mkdir()
        for name in DAG_FILES:
            shutil.copy(ROOT / "dags" / name, dags / name)
        ui.env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)
        ui.env["AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL"] = "3600"
        ui.env["AIRFLOW_CONN_SMTP_ALERTS"] = os.environ["AIRFLOW_CONN_SMTP_ALERTS"]
        ui.env["AIRFLOW_CONN_KAFKA_DLQ_WATCHER"] = json.dumps({"conn_type": "kafka", "extra": {
            "bootstrap.servers": BOOTSTRAP, "group.id": f"it-dlq-{TAG}", "auto.offset.reset": "earliest",
            "topic.metadata.refresh.interval.ms": "2000"}})  # fmt: skip
        # Under load a task's first call to the execution API waited minutes (the API builds its versioned
        # routes on first use); the worker's default 5 s timeout then failed the task before it ran.
        ui.env["AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT"] = str(STARTUP)
        try:
            ui.start(STARTUP)
            wait_until("the execution API", lambda: requests.get(f"{ui.url}/execution/health", timeout=STARTUP).ok,
                       STARTUP)  # fmt: skip
            wait_until("the DAG processor to parse the observability DAGs", lambda: ui.parsed(DAG_FILES), STARTUP, 5)
            yield ui, inbox
        finally:
            ui.stop()
            admin.delete_topics([DLQ_TOPIC])


def skip_older_dead_letters(group: str) -> None:
    """Commit ``group`` at the end of every dead-letter topic there is (``auto.offset.reset: latest`` would race:
    a dead letter written between the watcher's assignment and its first fetch would be skipped)."""
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group, "enable.auto.commit": False})
    try:
        topics = consumer.list_topics(timeout=10).topics
        dead = [TopicPartition(t, p) for t, meta in topics.items() if re.match(DLQ_TOPICS, t) for p in meta.partitions]
        ends = [
            TopicPartition(tp.topic, tp.partition, consumer.get_watermark_offsets(tp, timeout=10)[1]) for tp in dead
        ]
        if ends:
            consumer.commit(offsets=ends, asynchronous=False)
    finally:
        consumer.close()


def unpause(ui: AirflowUI, dag_id: str, reparse: bool = False) -> None:
    """Unpause a DAG; with ``reparse``, also ask the DAG processor to read its file again now: Airflow registers an
    ``AssetWatcher``'s trigger only when it parses the file of an unpaused DAG, and this Airflow parses each file
    once an hour (``AirflowUI``), so without it the watcher would never start."""
    answer = ui.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
    if reparse:
        ui.api("PUT", f"/parseDagFile/{answer['file_token']}")


def finished_run(ui: AirflowUI, dag_id: str, run_id: str | None = None) -> dict[str, Any]:
    """Wait for ``run_id`` (or the DAG's first run) to end; fail naming its task states unless it succeeded."""

    def ended() -> dict[str, Any] | None:
        ui.check_alive()
        runs = ui.api("GET", f"/dags/{dag_id}/dagRuns")["dag_runs"]
        run = next((r for r in runs if run_id in (None, r["dag_run_id"])), None)
        return run if run and run["state"] in ("success", "failed") else None

    run = wait_until(f"a run of {dag_id} to end", ended, RUN_DEADLINE, 3)
    if run["state"] != "success":
        tis = ui.api("GET", f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances")["task_instances"]
        raise AssertionError(f"{dag_id} {run['dag_run_id']} failed: {[(t['task_id'], t['state']) for t in tis]}")
    return run


def xcom(ui: AirflowUI, dag_id: str, run_id: str, task_id: str) -> Any:
    """The task's return value; ``None`` when it pushed none (e.g. it failed)."""
    path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
    try:
        value = ui.api("GET", path)["value"]
    except AssertionError:  # 404: no such XCom
        return None
    return json.loads(value) if isinstance(value, str) else value


def task_log(ui: AirflowUI, dag_id: str, run_id: str, task_id: str) -> str:
    content = ui.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/1")["content"]
    return content if isinstance(content, str) else json.dumps(content)


def watcher_assigned(group: str, topic: str) -> bool:
    """Whether a member of ``group`` holds a partition of ``topic`` (the triggerer's consumer has joined)."""
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    described = admin.describe_consumer_groups([group])[group].result(timeout=10)
    return any(tp.topic == topic for m in described.members for tp in m.assignment.topic_partitions)


@pytest.mark.timeout(STARTUP + RUN_DEADLINE)
def test_a_dead_letter_reaches_the_receiver_through_the_triggerer(airflow: tuple[AirflowUI, Inbox]) -> None:
    ui, inbox = airflow
    unpause(ui, "flink_dlq_alerts", reparse=True)
    wait_until("the triggerer's watcher to join its group", lambda: watcher_assigned(f"it-dlq-{TAG}", DLQ_TOPIC),
               STARTUP, 2)  # fmt: skip
    letter = {"reason": "not valid JSON", "payload": '{"order_id": 7, "amount": ', "source_offset": 3}
    producer = Producer({"bootstrap.servers": BOOTSTRAP})
    produced_at = time.time()
    producer.produce(DLQ_TOPIC, json.dumps(letter).encode())
    assert producer.flush(10) == 0

    def mine() -> Any:
        ui.check_alive()
        failed = ui.api("GET", "/dags/flink_dlq_alerts/dagRuns", params={"state": "failed"})["dag_runs"]
        assert not failed, f"flink_dlq_alerts failed: {failed}"
        return next((m for m in inbox.messages if m["X-Flink-Job"] == DLQ_TOPIC), None)

    mail = wait_until("the dead-letter alert at the receiver", mine, RUN_DEADLINE, 1)
    alerted = time.time() - produced_at
    assert mail["X-Flink-Metric"] == "dead_letters" and mail["X-Flink-Alert-Status"] == "FIRING"
    assert "dead_letters = 1 (1 'not valid JSON')" in mail["Subject"], mail["Subject"]
    run = finished_run(ui, "flink_dlq_alerts")
    summary = xcom(ui, "flink_dlq_alerts", run["dag_run_id"], "report_dead_letters")
    assert summary["by_topic"] == {DLQ_TOPIC: 1} and summary["sample"][0]["payload"] == letter["payload"]
    created = run["queued_at"] or run["start_date"]
    KEPT.mkdir(parents=True, exist_ok=True)
    (KEPT / "dead_letter_to_alert_s.json").write_text(json.dumps({"dead letter -> alert": round(alerted, 1),
                                                                  "run queued at": created}))  # fmt: skip
    print(f"dead letter -> alert at the receiver: {alerted:.1f}s (run {run['dag_run_id']})")


@pytest.fixture
def phase5_job(airflow: tuple[AirflowUI, Inbox]) -> Iterator[str]:
    """flink_phase5_pipeline run by the scheduler; yields its job's name. Cancels the job, drops its tables and
    topics afterwards."""
    ui, _ = airflow
    rest, job_ids, topics = FlinkRestHook(), [], []
    try:
        unpause(ui, "flink_phase5_pipeline")
        run_id = ui.api("POST", "/dags/flink_phase5_pipeline/dagRuns", json={"logical_date": None})["dag_run_id"]
        try:
            finished_run(ui, "flink_phase5_pipeline", run_id)
        finally:
            params = (xcom(ui, "flink_phase5_pipeline", run_id, "validate_settings") or {}).get("params", {})
            topics = [params[key] for key in ("orders_topic", "products_topic") if key in params]
            job_ids = xcom(ui, "flink_phase5_pipeline", run_id, "job_ids") or []
        assert len(job_ids) == 1 and rest.find_job_state(job_ids[0]) == "RUNNING"
        name = str(rest.get_job(job_ids[0])["name"])
        assert name == params.get("job_name"), (name, params)
        yield name
    finally:
        for job_id in job_ids:
            if rest.find_job(job_id) is not None:
                rest.cancel_job(job_id)
        catalog = IcebergCatalog.from_env(cli.iceberg_catalog().env())
        kafka = Kafka.from_bootstrap(BOOTSTRAP)
        with pipeline.Cluster(kafka, statement_timeout=300) as cluster:
            pipeline.drop_database(cluster, catalog, f"p5obs_{TAG}")
        kafka.delete_topics(topics)


@pytest.mark.timeout(3 * RUN_DEADLINE)
def test_flink_observability_reports_on_the_phase5_pipeline(airflow: tuple[AirflowUI, Inbox], phase5_job: str) -> None:
    ui, inbox = airflow
    state = Path(ui.home) / "observability"
    ui.api("PATCH", "/variables/flink_observability", json={"key": "flink_observability", "value": json.dumps({
        "job_name_pattern": f"^{re.escape(phase5_job)}$", "consumer_groups": {phase5_job: phase5_job},
        "state_dir": str(state)})})  # fmt: skip
    unpause(ui, "flink_observability")  # catchup off: the scheduler creates the latest interval's run now
    run = finished_run(ui, "flink_observability")
    run_id = run["dag_run_id"]
    assert run["run_type"] == "scheduled", run
    observed = xcom(ui, "flink_observability", run_id, "observe")
    assert list(observed["jobs"]) == [phase5_job], observed
    paths = xcom(ui, "flink_observability", run_id, "render_report")
    report, plot = Path(paths["report"]), Path(paths["plot"])
    assert report.is_relative_to(state) and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(plot) in task_log(ui, "flink_observability", run_id, "render_report")
    text = report.read_text()
    breached = observed["breaches"][phase5_job]
    verdict = "OK" if not breached else f"ALERT: {', '.join(breached)}"
    assert f"| {phase5_job} | {verdict} |" in text, text
    # The receiver got exactly what the verdict calls for (nothing when the job is healthy).
    got = [alert for alert in inbox.alerts() if alert[1] == phase5_job]
    assert got == [("FIRING", phase5_job, metric) for metric in breached], (got, text)
    KEPT.mkdir(parents=True, exist_ok=True)
    shutil.copy(report, KEPT / "report.md")
    shutil.copy(plot, KEPT / "lag_checkpoints.png")
    print(f"flink_observability {run_id}: report {report}, plot {plot}\n{text}")
