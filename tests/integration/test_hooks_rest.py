"""FlinkRestHook against the real local Flink cluster (jobs started through jars and the SQL Gateway).

Every job a test starts is cancelled in a finalizer; Kafka topics get a uuid suffix and are deleted.
Each test uses at most 2 slots, except the slot-shortage tests, which hold the free slots for a few
seconds by design and cancel their job as soon as the shortage is seen.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from airflow_flink_provider.hooks.sql_gateway import FlinkSqlGatewayHook
from airflow_flink_provider.protocol.errors import (
    FlinkDuplicateJobError,
    FlinkError,
    FlinkJobFailedError,
    FlinkJobJsonParseError,
    FlinkJobResourceError,
    FlinkNotFoundError,
    FlinkResourceError,
    FlinkSavepointNotFoundError,
)
from airflow_flink_provider.protocol.job_ids import deterministic_job_id
from tests.conftest import HOST, PORTS, ROOT
from tests.integration._flink_it import TERMINAL, consume, produce, wait_for_state, wait_until

pytestmark = pytest.mark.integration

BOOTSTRAP = f"{HOST}:{PORTS['kafka']}"
TICK_JAVA = """
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;

public class Tick {
    public static void main(String[] args) throws Exception {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        long count = Long.parseLong(args[0]);
        long pauseMs = Long.parseLong(args[1]);
        env.fromSequence(1, count)
            .map((MapFunction<Long, Long>) n -> { Thread.sleep(pauseMs); return n; })
            .returns(Long.class)
            .sinkTo(new DiscardingSink<>());
        env.execute(args[2]);
    }
}
"""


@pytest.fixture(scope="module")
def tick_jar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny DataStream job (args: count, pause ms, job name) compiled against the stack's Flink."""
    javac, jar_tool = shutil.which("javac"), shutil.which("jar")
    dist = sorted((ROOT / ".stack" / "flink" / "lib").glob("flink-dist-*.jar"))
    if not (javac and jar_tool and dist):
        pytest.skip("needs javac, jar and the stack's flink-dist jar to build a job jar")
    work = tmp_path_factory.mktemp("tick")
    (work / "Tick.java").write_text(TICK_JAVA)
    subprocess.run([javac, "-cp", str(dist[0]), "-d", str(work / "classes"), str(work / "Tick.java")], check=True)
    classes = [p.name for p in (work / "classes").glob("*.class")]
    subprocess.run([jar_tool, "cfe", str(work / "tick.jar"), "Tick", *classes], cwd=work / "classes", check=True)
    return work / "tick.jar"


@pytest.fixture
def uploaded_jar(rest: FlinkRestHook, tick_jar: Path) -> Iterator[str]:
    jar_id = rest.upload_jar(str(tick_jar))
    yield jar_id
    if any(jar["id"] == jar_id for jar in rest.list_jars()):
        rest.delete_jar(jar_id)


def wait_for_all_tasks_running(rest: FlinkRestHook, job_id: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = rest.get_job(job_id)
        running = all(v["tasks"].get("RUNNING", 0) == v["parallelism"] for v in job["vertices"])
        if (job["state"] == "RUNNING" and running) or job["state"] in TERMINAL or time.monotonic() > deadline:
            return job
        time.sleep(0.5)


def local_path(location: str) -> Path:
    return Path(urlparse(location).path)


# --- cluster -------------------------------------------------------------------------------------


def test_overview_config_and_taskmanagers(rest: FlinkRestHook) -> None:
    overview = rest.get_overview()
    taskmanagers = rest.list_taskmanagers()
    assert overview["taskmanagers"] == len(taskmanagers) >= 1
    assert overview["slots-total"] == sum(tm["slotsNumber"] for tm in taskmanagers)
    assert rest.get_config()["flink-version"] == overview["flink-version"]
    config = rest.get_jobmanager_config()
    assert config["rest.port"] == str(PORTS["flink_rest"])
    ok, message = rest.test_connection()
    assert ok and overview["flink-version"] in message


def test_unknown_job_is_not_found_everywhere(rest: FlinkRestHook) -> None:
    job_id = uuid.uuid4().hex
    assert rest.find_job(job_id) is None
    assert rest.find_job_state(job_id) is None
    calls: list[tuple[Callable[[str], Any], int]] = [
        (rest.get_job, 404),
        (rest.get_job_state, 500),  # GET /jobs/{id}/status answers 500, not 404, for an unknown job
        (rest.get_exceptions, 404),
        (rest.get_checkpoints, 404),
        (rest.cancel_job, 404),
    ]
    for call, status in calls:
        with pytest.raises(FlinkNotFoundError) as info:
            call(job_id)
        assert info.value.status == status
        assert job_id in info.value.message
    with pytest.raises(FlinkNotFoundError):
        rest.check_job(job_id)
    assert rest.list_jobs(name=f"no-such-job-{job_id}") == []


def test_savepoint_of_unknown_job(rest: FlinkRestHook) -> None:
    job_id = uuid.uuid4().hex
    request_id = rest.trigger_savepoint(job_id)  # Flink accepts the trigger (HTTP 202) ...
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    with pytest.raises(FlinkSavepointNotFoundError) as info:  # ... and fails it in the status
        rest.wait_for_savepoint(job_id, request_id, timeout=30)
    assert info.value.message == (
        f"Savepoint of Flink job {job_id} failed: FlinkJobNotFoundException: Could not find Flink job ({job_id})"
    )
    with pytest.raises(FlinkNotFoundError, match="There is no savepoint operation"):
        rest.get_savepoint_status(job_id, uuid.uuid4().hex)


def test_unknown_taskmanager(rest: FlinkRestHook) -> None:
    with pytest.raises(FlinkNotFoundError, match="No TaskExecutor registered under nosuch"):
        rest.get_taskmanager_stdout("nosuch")


# --- jars ----------------------------------------------------------------------------------------


def test_jar_lifecycle_with_fixed_job_id(rest: FlinkRestHook, uploaded_jar: str, jobs: list[str]) -> None:
    assert uploaded_jar.endswith("_tick.jar")
    [listed] = [jar for jar in rest.list_jars() if jar["id"] == uploaded_jar]
    assert listed["name"] == "tick.jar"
    job_id = deterministic_job_id("it-jar", uuid.uuid4().hex)
    name = f"it-tick-{job_id[:8]}"
    jobs.append(job_id)
    returned = rest.run_jar(uploaded_jar, program_args=["100000", "100", name], parallelism=1, job_id=job_id)
    assert returned == job_id
    job = wait_for_all_tasks_running(rest, job_id)
    assert job["state"] == "RUNNING" and job["name"] == name
    assert rest.check_job(job_id) == "RUNNING" and rest.find_job_state(job_id) == "RUNNING"
    assert [j["jid"] for j in rest.list_jobs(name=name, states={"RUNNING"})] == [job_id]
    with pytest.raises(FlinkDuplicateJobError):
        rest.run_jar(uploaded_jar, program_args=["1", "0", name], job_id=job_id)
    rest.cancel_job(job_id)
    assert wait_for_state(rest, job_id, TERMINAL) == "CANCELED" and rest.find_job_state(job_id) == "CANCELED"
    rest.cancel_job(job_id)  # a job that already ended is left alone
    assert rest.get_root_cause(job_id) is None


def test_bounded_jar_job_finishes(rest: FlinkRestHook, uploaded_jar: str, jobs: list[str]) -> None:
    job_id = rest.run_jar(uploaded_jar, entry_class="Tick", program_args=["5", "0", "it-tick-bounded"])
    jobs.append(job_id)
    assert wait_for_state(rest, job_id, TERMINAL) == "FINISHED"
    assert rest.check_job(job_id) == "FINISHED"


def test_jar_whose_main_fails(rest: FlinkRestHook, uploaded_jar: str) -> None:
    with pytest.raises(FlinkError) as info:
        rest.run_jar(uploaded_jar, program_args=["not-a-number", "0", "x"])
    assert 'NumberFormatException: For input string: "not-a-number"' in info.value.message
    assert info.value.status is not None and info.value.status >= 400


def test_delete_and_unknown_jars(rest: FlinkRestHook, tick_jar: Path) -> None:
    jar_id = rest.upload_jar(str(tick_jar))
    rest.delete_jar(jar_id)
    assert all(jar["id"] != jar_id for jar in rest.list_jars())
    rest.delete_jar(jar_id)  # Flink answers 400 "File ... does not exist": already gone is fine
    with pytest.raises(FlinkNotFoundError, match="does not exist"):
        rest.run_jar(jar_id)


def test_upload_under_a_unique_name_is_found_by_it(rest: FlinkRestHook, tick_jar: Path) -> None:
    name = f"tick-{uuid.uuid4().hex[:12]}.jar"
    jar_id = rest.upload_jar(str(tick_jar), name=name)
    try:
        assert jar_id.endswith(f"_{name}") and rest.jars_named(name) == [jar_id]
        assert [jar["name"] for jar in rest.list_jars() if jar["id"] == jar_id] == [name]
    finally:
        rest.delete_jar(jar_id)
    assert rest.jars_named(name) == []


def test_a_repeated_savepoint_trigger_id_is_one_savepoint(
    rest: FlinkRestHook, uploaded_jar: str, jobs: list[str], tmp_path: Path
) -> None:
    """Flink answers a repeated ``triggerId`` with the same operation, while it runs and after it completed."""
    job_id = rest.run_jar(uploaded_jar, program_args=["100000", "100", f"it-trigger-{uuid.uuid4().hex[:8]}"])
    jobs.append(job_id)
    wait_for_all_tasks_running(rest, job_id)
    trigger = deterministic_job_id("it-trigger", uuid.uuid4().hex)
    assert rest.find_savepoint(job_id, trigger) is None

    first = rest.trigger_savepoint(job_id, f"file://{tmp_path}", trigger_id=trigger)
    again = rest.trigger_savepoint(job_id, f"file://{tmp_path}", trigger_id=trigger)  # while it runs
    location = rest.wait_for_savepoint(job_id, trigger, timeout=60)
    after = rest.trigger_savepoint(job_id, f"file://{tmp_path}", trigger_id=trigger)  # after it completed

    assert first == again == after == trigger
    assert rest.wait_for_savepoint(job_id, trigger, timeout=60) == location
    assert (rest.find_savepoint(job_id, trigger) or {}).get("status", {}).get("id") == "COMPLETED"
    assert len([path for path in tmp_path.iterdir() if path.name.startswith("savepoint-")]) == 1


# --- SQL jobs: Kafka to Kafka, checkpoints, savepoints, stop, restore -----------------------------


def kafka_table(name: str, topic: str, extra: str = "") -> str:
    return (
        f"CREATE TEMPORARY TABLE {name} (id INT, name STRING) WITH ('connector' = 'kafka', 'topic' = '{topic}', "
        f"'properties.bootstrap.servers' = '{BOOTSTRAP}', 'properties.group.id' = 'it-{uuid.uuid4().hex[:8]}', "
        f"'scan.startup.mode' = 'earliest-offset', 'format' = 'json'{extra})"
    )


def test_kafka_job_savepoint_stop_and_restore(
    rest: FlinkRestHook,
    gateway: FlinkSqlGatewayHook,
    session: str,
    jobs: list[str],
    topics: Callable[[str], str],
) -> None:
    source, sink = topics("src"), topics("dst")
    produce(source, [{"id": n, "name": f"n{n}"} for n in range(5)])
    gateway.configure_session(session, "SET 'execution.checkpointing.interval' = '1 s'")
    gateway.configure_session(session, kafka_table("src", source))
    gateway.configure_session(session, kafka_table("dst", sink))
    job_id = gateway.run_statement(session, "INSERT INTO dst SELECT id, UPPER(name) FROM src").job_id
    assert job_id is not None
    jobs.append(job_id)

    assert wait_for_all_tasks_running(rest, job_id)["state"] == "RUNNING"
    assert rest.check_job(job_id) == "RUNNING"
    assert sorted(r["id"] for r in consume(sink, 5)) == [0, 1, 2, 3, 4]

    def latest_on_disk() -> str | None:
        # with a 1 s interval the newest checkpoint may subsume (delete) the one just read: read again
        path = rest.get_latest_checkpoint_path(job_id)
        return path if path is not None and local_path(path).exists() else None

    assert f"/{job_id}/chk-" in wait_until(latest_on_disk, 60)
    assert rest.get_checkpoints(job_id)["counts"]["completed"] >= 1

    request_id = rest.trigger_savepoint(job_id)
    savepoint = rest.wait_for_savepoint(job_id, request_id, timeout=120)
    assert local_path(savepoint).is_dir() and (local_path(savepoint) / "_metadata").exists()
    assert rest.get_savepoint_status(job_id, request_id)["operation"]["location"] == savepoint
    assert rest.get_job_state(job_id) == "RUNNING"

    stopped_at = rest.stop_with_savepoint(job_id, timeout=120)
    assert (local_path(stopped_at) / "_metadata").exists() and stopped_at != savepoint
    assert wait_for_state(rest, job_id, TERMINAL) == "FINISHED"

    produce(source, [{"id": 5, "name": "n5"}])
    gateway.configure_session(session, f"SET 'execution.state-recovery.path' = '{stopped_at}'")
    restored = gateway.run_statement(session, "INSERT INTO dst SELECT id, UPPER(name) FROM src").job_id
    assert restored is not None and restored != job_id
    jobs.append(restored)
    assert wait_for_all_tasks_running(rest, restored)["state"] == "RUNNING"
    # the restored job resumes at the saved offsets: only the new record reaches the sink
    records = consume(sink, 6, timeout=60)
    assert sorted(r["id"] for r in records) == [0, 1, 2, 3, 4, 5]
    assert rest.get_checkpoints(restored)["latest"]["restored"]["external_path"] == stopped_at
    rest.cancel_job(restored)
    assert wait_for_state(rest, restored, TERMINAL) == "CANCELED"


def test_print_sink_output_in_taskmanager_stdout(
    rest: FlinkRestHook, gateway: FlinkSqlGatewayHook, session: str, jobs: list[str]
) -> None:
    marker = f"it-print-{uuid.uuid4().hex[:8]}"
    gateway.configure_session(
        session,
        "CREATE TEMPORARY TABLE printed (id INT, name STRING) "
        f"WITH ('connector'='print', 'print-identifier'='{marker}')",
    )
    job_id = gateway.run_statement(session, "INSERT INTO printed VALUES (1, 'a'), (2, 'b')").job_id
    assert job_id is not None
    jobs.append(job_id)
    assert wait_for_state(rest, job_id, TERMINAL) == "FINISHED"
    stdout = "".join(rest.get_taskmanager_stdout(tm["id"]) for tm in rest.list_taskmanagers())
    assert f"{marker}> +I[1, a]" in stdout and f"{marker}> +I[2, b]" in stdout


# --- failures: slots, bad JSON ------------------------------------------------------------------


def slot_hungry_job(gateway: FlinkSqlGatewayHook, session: str, restart_strategy: str | None) -> str:
    """Submit a job needing 64 slots (the cluster has 8); one region, so no task can start."""
    if restart_strategy:
        gateway.configure_session(session, f"SET 'restart-strategy.type' = '{restart_strategy}'")
    gateway.configure_session(session, "SET 'parallelism.default' = '64'")
    gateway.configure_session(
        session,
        "CREATE TEMPORARY TABLE gen (k INT) WITH ('connector'='datagen', 'rows-per-second'='1', "
        "'fields.k.min'='1', 'fields.k.max'='3')",
    )
    gateway.configure_session(session, "CREATE TEMPORARY TABLE counts (k INT, c BIGINT) WITH ('connector'='blackhole')")
    job_id = gateway.run_statement(session, "INSERT INTO counts SELECT k, COUNT(*) FROM gen GROUP BY k").job_id
    assert job_id is not None
    return job_id


def first_error(check: Callable[[], str], timeout: float) -> tuple[FlinkError | None, list[str], float]:
    """Call ``check`` until it raises; returns the error, the states seen before it, and the seconds taken."""
    started, states = time.monotonic(), []
    while time.monotonic() - started < timeout:
        try:
            states.append(check())
        except FlinkError as error:
            return error, states, time.monotonic() - started
        time.sleep(0.5)
    return None, states, time.monotonic() - started


def test_not_enough_slots_with_the_clusters_restart_strategy(
    rest: FlinkRestHook, gateway: FlinkSqlGatewayHook, session: str, jobs: list[str]
) -> None:
    job_id = slot_hungry_job(gateway, session, restart_strategy=None)
    jobs.append(job_id)
    try:
        error, states, seconds = first_error(lambda: rest.check_job(job_id), timeout=90)
    finally:
        rest.cancel_job(job_id)
    assert isinstance(error, FlinkResourceError) and not isinstance(error, FlinkJobFailedError), (states, seconds)
    assert error.root_cause == "NoResourceAvailableException: Could not acquire the minimum required resources."
    assert error.hint is not None and "slots" in error.hint
    assert set(states) <= {"CREATED", "RUNNING", "RESTARTING"}  # never FAILED: Flink keeps restarting it
    assert wait_for_state(rest, job_id, TERMINAL) == "CANCELED"


def test_not_enough_slots_without_restarts_fails_the_job(
    rest: FlinkRestHook, gateway: FlinkSqlGatewayHook, session: str, jobs: list[str]
) -> None:
    job_id = slot_hungry_job(gateway, session, restart_strategy="none")
    jobs.append(job_id)
    assert wait_for_state(rest, job_id, TERMINAL, timeout=120) == "FAILED"
    with pytest.raises(FlinkJobResourceError) as info:
        rest.check_job(job_id)
    assert isinstance(info.value, FlinkJobFailedError) and isinstance(info.value, FlinkResourceError)
    assert info.value.job_id == job_id
    assert (
        rest.get_root_cause(job_id) == "NoResourceAvailableException: Could not acquire the minimum required resources."
    )


def test_malformed_json_fails_the_job_with_the_json_hint(
    rest: FlinkRestHook,
    gateway: FlinkSqlGatewayHook,
    session: str,
    jobs: list[str],
    topics: Callable[[str], str],
) -> None:
    source = topics("bad-json")
    produce(source, [b'{"id": 1, "name": "ok"}', b'{"id": 2, "name": '])
    gateway.configure_session(session, "SET 'restart-strategy.type' = 'none'")
    gateway.configure_session(session, kafka_table("src", source))
    gateway.configure_session(
        session, "CREATE TEMPORARY TABLE sink (id INT, name STRING) WITH ('connector'='blackhole')"
    )
    job_id = gateway.run_statement(session, "INSERT INTO sink SELECT * FROM src").job_id
    assert job_id is not None
    jobs.append(job_id)
    assert wait_for_state(rest, job_id, TERMINAL, timeout=120) == "FAILED"
    with pytest.raises(FlinkJobJsonParseError) as info:
        rest.check_job(job_id)
    assert info.value.hint is not None and "json.ignore-parse-errors" in info.value.hint
    assert info.value.root_cause == rest.get_root_cause(job_id)
