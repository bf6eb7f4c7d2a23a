"""Lesson 4, failure recovery: an exactly-once Kafka -> Flink -> Kafka job whose TaskManager is killed (SIGKILL,
as a crash) several times mid-stream, on a local stack of ``stack/cli.py`` that is not the shared one.

The stream is the load command's producer (idempotent, every acknowledged order id kept) into one input topic;
the job copies it into an output topic through a transactional sink (``sink.delivery-guarantee`` exactly-once,
committed on each checkpoint). For each kill the drill finds the TaskManager that runs the job (its data port,
from ``GET /taskmanagers``, to the PID listening on it), kills it, and times from the kill: when the job left
RUNNING (the JobManager noticed), when the killed TaskManager was dropped, and when every task of the job ran
again. The job restarts on a standby TaskManager; a new standby is started before the next kill. At the end the
committed output, read with ``read_committed``, is compared with the acknowledged input: lost and duplicated
events, both must be 0.

The JobManager drill (:func:`kill_jobmanager`, or ``python -m flink_lessons.phase3.failover kill-jobmanager``)
kills the stack's JobManager instead and starts it again (``stack/cli.py up``). Without high availability the
JobManager keeps job graphs and checkpoint metadata in memory only: the new one knows no job, and a job comes
back only by submitting it again from a savepoint or retained checkpoint (``flink_recover_from_savepoint``).

What bounds the recovery time is how soon the JobManager learns that the TaskManager is gone: a killed process
refuses connections, so its heartbeat RPCs fail at once and ``heartbeat.rpc-failure-threshold`` (2) failed
heartbeats, ``heartbeat.interval`` apart, mark it lost. With the default 10 s interval that is ~20 s; at 1 s it
is ~2 s. Then the restart strategy's delay, and a free slot: a standby TaskManager (or spare slots on another
one) lets the job restart at once instead of waiting for a new TaskManager to start.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flink_lessons.load.schemas import Orders
from flink_lessons.phase3.settings import FromSettings, seconds
from flink_lessons.waiting import wait_for

if TYPE_CHECKING:
    from flink_lessons.load.kafka import Kafka

    from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

ROOT = Path(__file__).resolve().parents[3]
TASKMANAGER_CLASS = "org.apache.flink.runtime.taskexecutor.TaskManagerRunner"
JOBMANAGER_CLASS = "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint"
SHARED_STACK = ".stack"
"""The folder of the shared stack, whose processes no drill may kill."""
HEARTBEAT_KEYS = ("heartbeat.interval", "heartbeat.timeout", "heartbeat.rpc-failure-threshold")
TUNED_HEARTBEATS = {"heartbeat.interval": 1000, "heartbeat.timeout": 20000}
"""The drill stack's heartbeats (ms): a lost TaskManager is noticed within ~2 intervals; the timeout, which a
hung (not killed) TaskManager still needs, stays 20 s, so a long GC pause on a loaded machine does not fail the
job (at 5 s it would: the stability the speed would cost)."""


def account(delivered: Iterable[int], seen: Iterable[int], passes: Callable[[int], bool]) -> dict[str, int]:
    """Compare an exactly-once sink's committed output with the acknowledged input.

    :param delivered: order ids the broker acknowledged to the producer.
    :param seen: order ids in the committed output, with repeats.
    :param passes: whether an id survives the job's filter.
    :return: expected, seen (with repeats), unique, lost, duplicated and unexpected (in the output but not
        expected) counts.
    """
    expected = {i for i in delivered if passes(i)}
    seen_list = list(seen)
    unique = set(seen_list)
    return {
        "expected": len(expected),
        "seen": len(seen_list),
        "unique": len(unique),
        "lost": len(expected - unique),
        "duplicated": len(seen_list) - len(unique),
        "unexpected": len(unique - expected),
    }


class Timeline:
    """Epoch seconds of the recovery's events, relative to the kill."""

    def __init__(self) -> None:
        self.kill = 0.0
        self.events: dict[str, float] = {}

    def mark(self, name: str, when: float | None = None) -> None:
        """Record an event once (the first time).

        :param name: the event.
        :param when: epoch seconds (now by default).
        """
        self.events.setdefault(name, when if when is not None else time.time())

    def since_kill(self) -> dict[str, float]:
        """Each event's seconds after the kill."""
        return {name: round(when - self.kill, 3) for name, when in sorted(self.events.items(), key=lambda e: e[1])}


def listening_pid(port: int, pids: Iterable[int], proc: Path = Path("/proc")) -> int | None:
    """The process among ``pids`` that listens on a TCP port (its socket's inode among the process's fds).

    :param port: the port.
    :param pids: the candidates.
    :param proc: the proc file system (tests).
    """
    inodes = set()
    for table in ("tcp", "tcp6"):
        path = proc / "net" / table
        for line in path.read_text().splitlines()[1:] if path.exists() else []:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    for pid in pids:
        try:
            links = {os.readlink(fd) for fd in (proc / str(pid) / "fd").iterdir()}
        except OSError:
            continue
        if links & inodes:
            return pid
    return None


@dataclass
class LocalStack:
    """A stack of ``stack/cli.py`` in its own folder (``FLINK_STACK_DIR``): the drills kill and start its
    TaskManagers and its JobManager, never those of another folder.

    :param directory: the stack's folder, e.g. ``.stack-p3``; never the shared ``.stack``.
    :param port_offset: its ``FLINK_STACK_PORT_OFFSET``.
    :raises ValueError: for the shared stack's folder.
    """

    directory: Path
    port_offset: int
    _env: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.directory.resolve().name == SHARED_STACK:
            raise ValueError(f"{self.directory} is the shared stack: the drills kill its processes, and every job on "
                             "it fails with them; use a private stack (e.g. .stack-p3)")  # fmt: skip

    @property
    def rest_port(self) -> int:
        """The JobManager's REST port (``stack/stack.toml``'s ``flink_rest`` plus the offset)."""
        ports = tomllib.loads((ROOT / "stack" / "stack.toml").read_text())["ports"]
        return int(ports["flink_rest"]) + self.port_offset

    def _cli_env(self) -> dict[str, str]:
        return {**os.environ, "FLINK_STACK_DIR": str(self.directory), "FLINK_STACK_PORT_OFFSET": str(self.port_offset)}

    def flink_env(self) -> dict[str, str]:
        """The environment ``stack/cli.py`` starts this stack's Flink scripts with."""
        if not self._env:
            code = "import json; from stack import cli; print(json.dumps(cli.flink_env()))"
            out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=self._cli_env(), capture_output=True,
                                 text=True, timeout=60, check=True)  # fmt: skip
            self._env = json.loads(out.stdout.strip().splitlines()[-1])
        return self._env

    def _pids(self, pid_files: str, main_class: str) -> list[int]:
        """Live JVMs of this stack from its PID files, checked against their command lines (the main class and
        this folder: a reused PID, or another stack's process, is never taken)."""
        pids = []
        for pid_file in (self.directory / "run").glob(pid_files):
            for word in pid_file.read_text().split():
                try:
                    cmdline = (Path("/proc") / word / "cmdline").read_bytes().decode(errors="replace")
                except (OSError, ValueError):
                    continue
                if main_class in cmdline and f"{self.directory.resolve()}/" in cmdline:
                    pids.append(int(word))
        return pids

    def taskmanager_pids(self) -> list[int]:
        """Live TaskManager JVMs of this stack."""
        return self._pids("flink-*-taskexecutor.pid", TASKMANAGER_CLASS)

    def jobmanager_pid(self) -> int:
        """The JobManager JVM of this stack: from its PID file, listening on its REST port.

        :raises RuntimeError: when none runs.
        """
        pid = listening_pid(self.rest_port, self._pids("flink-*-standalonesession.pid", JOBMANAGER_CLASS))
        if pid is None:
            raise RuntimeError(f"no JobManager of {self.directory} listens on {self.rest_port}")
        return pid

    def start_taskmanager(self) -> None:
        """One more TaskManager (``taskmanager.sh start``, as the stack starts its own)."""
        env = {**os.environ, **self.flink_env()}
        done = subprocess.run([str(Path(env["FLINK_BIN_DIR"]) / "taskmanager.sh"), "start"], env=env,
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"taskmanager.sh start failed: {done.stdout[-500:]} {done.stderr[-500:]}")

    def up(self) -> None:
        """``stack/cli.py up --skip-airflow``: start what is down (a killed JobManager), with this environment's
        ``FLINK_STACK_FLINK_CONF`` (``up`` writes Flink's config from it: give the one the stack started with).

        :raises RuntimeError: with the command's output when it fails.
        """
        command = [sys.executable, str(ROOT / "stack" / "cli.py"), "up", "--skip-airflow"]
        done = subprocess.run(command, cwd=ROOT, env=self._cli_env(), capture_output=True, text=True, timeout=1200,
                              check=False)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"stack/cli.py up failed for {self.directory}:\n{done.stdout[-3000:]}\n"
                               f"{done.stderr[-3000:]}")  # fmt: skip

    def probe(self, path: str) -> tuple[int, Any]:
        """One GET on this stack's REST API, without retries (a drill times the outage by it).

        :param path: e.g. ``/overview``.
        :return: the HTTP status (0: nothing answered) and the JSON body (``None`` unless 200).
        """
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.rest_port}{path}", timeout=5) as answer:
                return answer.status, json.load(answer)
        except urllib.error.HTTPError as error:
            return error.code, None
        except (OSError, ValueError):
            return 0, None


def kill_jobmanager(stack: LocalStack, job_id: str | None = None, timeout: float = 600) -> dict[str, Any]:
    """Kill the stack's JobManager (SIGKILL, as a crash), start it again (``stack/cli.py up``), and wait until
    every TaskManager registered before is registered with the new one.

    :param stack: a private stack.
    :param job_id: a job to look for after the restart (without HA it is gone: ``GET /jobs/<id>`` is 404).
    :param timeout: seconds the restart may take.
    :return: ``pid`` (killed), ``taskmanagers`` (registered before), ``moments`` (s after the kill:
        ``rest_gone``, ``rest_answers``, ``taskmanagers_registered``, ``up_done``), ``jobs_overview`` (what
        ``GET /jobs/overview`` lists after the restart) and ``job_status`` (HTTP status of ``GET /jobs/<id>``).
    :raises RuntimeError: when the JobManager does not answer before the kill, or the restart fails.
    """
    status, overview = stack.probe("/overview")
    if status != 200:
        raise RuntimeError(f"the JobManager of {stack.directory} does not answer (HTTP {status}): nothing to kill")
    taskmanagers = int(overview["taskmanagers"])
    pid = stack.jobmanager_pid()
    timeline = Timeline()
    timeline.kill = time.time()
    os.kill(pid, signal.SIGKILL)
    wait_for("the killed JobManager's REST port to close", lambda: stack.probe("/overview")[0] == 0, 60, 0.05)
    timeline.mark("rest_gone")
    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(1) as pool:
        restart = pool.submit(lambda: (stack.up(), time.time())[1])  # when up returned
        while not (restart.done() and "taskmanagers_registered" in timeline.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{taskmanagers} TaskManagers not registered with the new JobManager "
                                   f"{timeout:.0f}s after the kill: {timeline.since_kill()}")  # fmt: skip
            status, overview = stack.probe("/overview")
            if status == 200:
                timeline.mark("rest_answers")
                if int(overview["taskmanagers"]) >= taskmanagers:
                    timeline.mark("taskmanagers_registered")
            if restart.done():
                restart.result()  # raises when up failed
            time.sleep(0.2)
        timeline.mark("up_done", restart.result())
    jobs = (stack.probe("/jobs/overview")[1] or {}).get("jobs", [])
    return {
        "pid": pid,
        "taskmanagers": taskmanagers,
        "moments": timeline.since_kill(),
        "jobs_overview": [{key: job.get(key) for key in ("jid", "name", "state")} for job in jobs],
        "job_status": stack.probe(f"/jobs/{job_id}")[0] if job_id else None,
    }


@dataclass(frozen=True)
class DrillParams(FromSettings):
    """The failure drill's settings.

    :param kills: TaskManager kills, one after the other.
    :param rate: events/s the producer writes while the job runs.
    :param checkpoint_interval: the job's checkpoint interval (the sink commits on each).
    :param restart_delay: the job's fixed-delay restart strategy's delay.
    :param between_kills: checkpoints the job completes after recovering before the next kill.
    :param timeout: seconds any one wait may take.
    """

    kills: int = 3
    rate: float = 100.0
    checkpoint_interval: str = "1 s"
    restart_delay: str = "1 s"
    between_kills: int = 2
    timeout: float = 300.0

    @classmethod
    def given(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """``rate`` from ``drill_rate``, ``timeout`` in seconds."""
        return {"rate": values["drill_rate"], "timeout": seconds(values["timeout"])}


def drill_script(params: DrillParams, job_name: str, source: str, sink: str, bootstrap: str) -> str:
    """The exactly-once copy job: Kafka source (``read_committed``), transactional Kafka sink.

    :param params: the settings.
    :param job_name: ``pipeline.name`` (and the sink's transactional id prefix).
    :param source: the input topic.
    :param sink: the output topic.
    :param bootstrap: Kafka as Flink reaches it.
    """
    from flink_lessons.phase3 import sql

    options = sql.kafka_source_options(source, bootstrap, job_name, **{"properties.isolation.level": "read_committed"})
    return sql.render("checkpoints", "failover.sql.j2", job_name=job_name, source=options, sink_topic=sink,
                      bootstrap=bootstrap, interval=params.checkpoint_interval,
                      restart_delay=params.restart_delay)  # fmt: skip


def _job_taskmanager(flink: FlinkRestHook, job_id: str) -> str:
    vertex = flink.get_job(job_id)["vertices"][0]
    return str(flink.get_vertex(job_id, vertex["id"])["subtasks"][0]["taskmanager-id"])


def _job_state(flink: FlinkRestHook, job_id: str) -> tuple[str, bool]:
    """The job's state, and whether every task of it runs."""
    job = flink.get_job_overview(job_id)
    tasks = job.get("tasks") or {}
    return str(job.get("state")), job.get("state") == "RUNNING" and tasks.get("running") == tasks.get("total")


def _completed(flink: FlinkRestHook, job_id: str) -> int:
    return int((flink.get_checkpoints(job_id).get("counts") or {}).get("completed") or 0)


def kill_once(stack: LocalStack, flink: FlinkRestHook, job_id: str, timeout: float) -> dict[str, Any]:
    """Kill the TaskManager that runs the job; follow the job until every task runs again.

    :param stack: the drill's stack.
    :param flink: its REST API.
    :param job_id: the job (RUNNING).
    :param timeout: seconds.
    :return: the killed TaskManager and PID, and the moments (s after the kill): ``failure_noticed`` (a task
        left RUNNING), ``killed_tm_dropped``, ``job_restarting`` and ``job_rescheduled`` (the job RESTARTING,
        then RUNNING again: the restart strategy's delay is over and its tasks are being deployed) and
        ``running_again`` (every task RUNNING: deployed and initialized, e.g. its Kafka producers).
    """
    tm_id = _job_taskmanager(flink, job_id)
    port = next(int(tm["dataPort"]) for tm in flink.list_taskmanagers() if tm["id"] == tm_id)
    pid = listening_pid(port, stack.taskmanager_pids())
    if pid is None:
        raise RuntimeError(f"no TaskManager of {stack.directory} listens on {port} (TaskManager {tm_id})")
    timeline = Timeline()
    timeline.kill = time.time()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while "running_again" not in timeline.events:
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} not RUNNING again {timeout:.0f}s after the kill: {timeline.since_kill()}")
        now, (state, running) = time.time(), _job_state(flink, job_id)
        if not running:
            timeline.mark("failure_noticed", now)
        elif "failure_noticed" in timeline.events:
            timeline.mark("running_again", now)
        if state != "RUNNING":
            timeline.mark("job_restarting", now)
        elif "job_restarting" in timeline.events:
            timeline.mark("job_rescheduled", now)
        if tm_id not in {tm["id"] for tm in flink.list_taskmanagers()}:
            timeline.mark("killed_tm_dropped", now)
        time.sleep(0.1)
    return {"taskmanager": tm_id, "pid": pid, "moments": timeline.since_kill()}


def _events(first_id: int, count: int, ts_ms: int) -> tuple[list[bytes | None], list[bytes]]:
    keys = [b"c%d" % (i % 100) for i in range(first_id, first_id + count)]
    return list(keys), Orders().values(first_id, keys, ts_ms)


def run_drill(params: DrillParams, stack: LocalStack, flink: FlinkRestHook, kafka: Kafka,
              submit: Callable[[str], str], topics: Mapping[str, str], job_name: str,
              bootstrap: str) -> dict[str, Any]:  # fmt: skip
    """The whole drill; see the module docstring. The caller creates and deletes the topics and cancels the job.

    :param params: the settings.
    :param stack: the stack whose TaskManagers are killed.
    :param flink: its REST API.
    :param kafka: its Kafka.
    :param submit: submits a SQL script, returns the job id.
    :param topics: ``{"input": ..., "output": ...}``.
    :param job_name: the job's name.
    :param bootstrap: Kafka as Flink reaches it.
    :return: ``{"job_id", "kills_asked", "kills": [...], "counts": account(...), "heartbeats": {...},
        "producer_errors"}``.
    """
    from flink_lessons.load.producer import RateProducer

    config = flink.get_jobmanager_config()
    heartbeats = {k: config.get(k) for k in HEARTBEAT_KEYS}
    producer = RateProducer(topics["input"], _events, track=True,
                            config={**kafka.config, "enable.idempotence": True})  # fmt: skip
    producer.start(params.rate)
    out: dict[str, Any] = {"heartbeats": heartbeats, "kills_asked": params.kills, "kills": []}
    try:
        out["job_id"] = job_id = submit(drill_script(params, job_name, topics["input"], topics["output"], bootstrap))
        first = params.between_kills
        wait_for("the job's first checkpoints", lambda: _completed(flink, job_id) >= first, params.timeout)
        for _ in range(params.kills):
            wait_for("a standby TaskManager", lambda: len(flink.list_taskmanagers()) >= 2, params.timeout, 0.5)
            kill = kill_once(stack, flink, job_id, params.timeout)
            out["kills"].append(kill)
            stack.start_taskmanager()  # the next standby
            target = _completed(flink, job_id) + params.between_kills
            wait_for("checkpoints after the recovery", lambda n=target: _completed(flink, job_id) >= n, params.timeout)
    finally:
        producer.stop()
    delivered = list(producer.delivered)
    expected = set(delivered)
    seen: list[int] = []

    def complete() -> bool:
        seen[:] = [Orders.parse(r.value)["order_id"] for r in kafka.read(topics["output"], read_committed=True)]
        return expected <= set(seen)

    wait_for("every acknowledged event in the committed output", complete, params.timeout, 2)
    done = _completed(flink, job_id)
    wait_for("one more checkpoint (a late duplicate would be committed by then)",
          lambda: _completed(flink, job_id) > done, params.timeout)  # fmt: skip
    complete()
    out["counts"] = account(delivered, seen, lambda _: True)
    out["producer_errors"] = producer.errors[:5]
    return out


def gateway_submitter(gateway: Any, properties: Mapping[str, str] | None = None) -> Callable[[str], str]:
    """``submit`` for :func:`run_drill`: runs a script's statements in one SQL Gateway session; returns the
    INSERT's job id.

    :param gateway: a ``FlinkSqlGatewayHook``.
    :param properties: the session's configuration.
    """
    from airflow_flink_provider.protocol.statements import split_statements

    def submit(script: str) -> str:
        session = gateway.open_session(dict(properties or {}))
        try:
            jobs = [gateway.run_statement(session, s.text, timeout=300).job_id for s in split_statements(script)]
        finally:
            gateway.close_session(session)
        found = [job for job in jobs if job]
        if len(found) != 1:
            raise RuntimeError(f"the script submitted {len(found)} jobs, not one: {found}")
        return str(found[0])

    return submit


def _main() -> None:
    """``python -m flink_lessons.phase3.failover kill-jobmanager``: the JobManager drill from a shell."""
    parser = argparse.ArgumentParser(prog="python -m flink_lessons.phase3.failover", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    kill = sub.add_parser("kill-jobmanager", help="SIGKILL a private stack's JobManager, start it again, report")
    kill.add_argument("--stack-dir", type=Path, default=Path(".stack-p3"), help="the stack's FLINK_STACK_DIR")
    kill.add_argument("--port-offset", type=int, default=4000, help="its FLINK_STACK_PORT_OFFSET")
    kill.add_argument("--job", help="a job id to look for after the restart")
    kill.add_argument("--timeout", type=float, default=600, help="seconds the restart may take")
    args = parser.parse_args()
    try:
        stack = LocalStack(args.stack_dir, args.port_offset)
        print(json.dumps(kill_jobmanager(stack, args.job, args.timeout), indent=2))
    except (ValueError, RuntimeError, TimeoutError) as error:
        parser.exit(1, f"error: {error}\n")


if __name__ == "__main__":
    _main()
