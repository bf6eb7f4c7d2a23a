"""6. Recovery: kill the TaskManager under a checkpointed exactly-once job; time the recovery, count the events.

DESTRUCTIVE: it SIGKILLs the stack's only TaskManager, which fails every job on the cluster. It refuses
to run while jobs it did not start are active (``--force-recovery`` overrides), and always starts a
TaskManager again (``.stack/flink/bin/taskmanager.sh start`` with the stack's Flink environment; the
PID file in ``.stack/run`` then names the new process). Run it on its own:

    python -m benchmarks.run --only recovery

The job is the phase-0 style pipeline with checkpoints every ``--checkpoint-interval`` seconds and an
exactly-once Kafka sink (transactions), fed by an idempotent producer at ``--recovery-rate`` events/s.
Measured from the kill: when Flink noticed the failure, when the new TaskManager registered, when the
job ran again, and when it completed a new checkpoint (the headline). Afterwards the committed output
(``read_committed``) is compared with the acknowledged input: events lost and duplicated, both must be 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flink_lessons.load.producer import RateProducer
from flink_lessons.phase3.failover import TASKMANAGER_CLASS, Timeline, account

from benchmarks import env, kafkatools
from benchmarks.console import say
from benchmarks.core import BenchResult, Target
from benchmarks.events import EventFactory, load_templates, order_id_of
from benchmarks.throughput import render_job
from stack.cli import alive

# ---------------------------------------------------------------------------------------------- pure parts


def ident_of(pid_file: Path) -> str:
    """The ``FLINK_IDENT_STRING`` a daemon PID file was written with: ``flink-<ident>-taskexecutor.pid``.

    :param pid_file: the PID file.
    :raises ValueError: for a name of another shape.
    """
    name = pid_file.name
    if not (name.startswith("flink-") and name.endswith("-taskexecutor.pid")):
        raise ValueError(f"not a TaskManager PID file: {name}")
    return name[len("flink-") : -len("-taskexecutor.pid")]


def read_pids(pid_file: Path) -> list[int]:
    """The PIDs listed in a daemon PID file (one per line).

    :param pid_file: the PID file.
    """
    if not pid_file.exists():
        return []
    return [int(line) for line in pid_file.read_text().split() if line.strip().isdigit()]


def drop_dead_pids(pid_file: Path, alive: Callable[[int], bool]) -> list[int]:
    """Rewrite a PID file keeping only live processes (Flink's script appends the new one on start).

    :param pid_file: the PID file.
    :param alive: whether a PID is a live process.
    :return: the PIDs kept.
    """
    kept = [pid for pid in read_pids(pid_file) if alive(pid)]
    if kept:
        pid_file.write_text("".join(f"{pid}\n" for pid in kept))
    else:
        pid_file.unlink(missing_ok=True)
    return kept


def new_checkpoint(checkpoints: Mapping[str, Any], after_id: int, after_ms: float) -> dict[str, Any] | None:
    """The first completed checkpoint newer than ``after_id`` and triggered after ``after_ms``, if any.

    :param checkpoints: ``GET /jobs/{id}/checkpoints``.
    :param after_id: the last completed checkpoint id before the kill.
    :param after_ms: the kill, epoch milliseconds.
    """
    done = [
        c
        for c in checkpoints.get("history") or []
        if str(c.get("status")).upper() == "COMPLETED"
        and int(c.get("id", 0)) > after_id
        and float(c.get("trigger_timestamp", 0)) >= after_ms
    ]
    latest = (checkpoints.get("latest") or {}).get("completed") or {}
    if latest and int(latest.get("id", 0)) > after_id and float(latest.get("trigger_timestamp", 0)) >= after_ms:
        done.append(latest)
    return min(done, key=lambda c: int(c["id"])) if done else None


# ---------------------------------------------------------------------------------------------- the TaskManager


def is_taskmanager(pid: int) -> bool:
    """Whether a PID is a running Flink TaskManager JVM.

    :param pid: the PID.
    """
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        return TASKMANAGER_CLASS in cmdline.read_bytes().decode(errors="replace")
    except OSError:
        return False


def taskmanager() -> tuple[Path, int]:
    """The stack's TaskManager: its PID file and its (one, live) PID.

    :raises RuntimeError: when there is not exactly one live TaskManager recorded in ``.stack/run``.
    """
    from stack import cli as stack_cli

    found = [
        (pid_file, pid)
        for pid_file in sorted(stack_cli.RUN.glob("flink-*-taskexecutor.pid"))
        for pid in read_pids(pid_file)
        if is_taskmanager(pid)
    ]
    if len(found) != 1:
        raise RuntimeError(f"expected one live TaskManager in {stack_cli.RUN}, found {found}")
    return found[0]


def start_taskmanager(pid_file: Path) -> float:
    """``taskmanager.sh start`` with the stack's environment and the PID file's ident; return when it returned.

    :param pid_file: the TaskManager's PID file (dead PIDs are dropped from it first).
    """
    from stack import cli as stack_cli

    drop_dead_pids(pid_file, alive)
    environment = {**os.environ, **stack_cli.flink_env(), "FLINK_IDENT_STRING": ident_of(pid_file)}
    proc = subprocess.run(
        [str(env.FLINK_HOME / "bin" / "taskmanager.sh"), "start"],
        env=environment, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"taskmanager.sh start failed: {proc.stdout[-300:]} {proc.stderr[-300:]}")
    return time.time()


def taskmanager_ids() -> set[str] | None:
    """Ids of the TaskManagers the JobManager has registered (``None`` when the REST API does not answer).

    A killed TaskManager stays registered until the JobManager notices (heartbeat), so recovery is judged
    by ids: the old one gone, a new one there.
    """
    try:
        return {str(tm["id"]) for tm in env.rest("GET", "/taskmanagers", timeout=5).json().get("taskmanagers", [])}
    except Exception:
        return None


def ensure_taskmanager(pid_file: Path, old_ids: set[str], timeout: float = 120) -> bool:
    """Leave the cluster with a live TaskManager: start one if none runs; wait until a new one registered.

    :param pid_file: the TaskManager's PID file.
    :param old_ids: the ids of TaskManagers from before the kill.
    :param timeout: seconds to wait for the registration.
    """
    if not any(is_taskmanager(pid) for pid in read_pids(pid_file)):
        start_taskmanager(pid_file)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (taskmanager_ids() or set()) - old_ids:
            return True
        time.sleep(0.5)
    return False


def wait_for_ids(seen: list[int], expected: set[int], *, stall: float, timeout: float) -> bool:
    """Wait until every expected id was seen (duplicates do not count), or progress stalls.

    :param seen: the ids read so far (appended to by the reader thread).
    :param expected: the ids that must show up.
    :param stall: give up after this many seconds without a new expected id.
    :param timeout: give up after this many seconds in all.
    """
    deadline = time.monotonic() + timeout
    found: set[int] = set()
    read = 0
    last_change = time.monotonic()
    while True:
        fresh = seen[read:]
        read += len(fresh)
        before = len(found)
        found.update(i for i in fresh if i in expected)
        now = time.monotonic()
        if len(found) != before:
            last_change = now
        if len(found) == len(expected):
            return True
        if now - last_change > stall or now > deadline:
            return False
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------- the run


def _latest_completed_id(job_id: str) -> int:
    data = env.rest("GET", f"/jobs/{job_id}/checkpoints").json()
    return int(((data.get("latest") or {}).get("completed") or {}).get("id") or 0)


def wait_checkpoints(job_id: str, count: int, timeout: float) -> int:
    """Wait until the job completed ``count`` checkpoints; return the latest id.

    :param job_id: the job.
    :param count: completed checkpoints needed.
    :param timeout: seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = env.rest("GET", f"/jobs/{job_id}/checkpoints").json()
        if int((data.get("counts") or {}).get("completed", 0)) >= count:
            return _latest_completed_id(job_id)
        time.sleep(0.2)
    raise TimeoutError(f"job {job_id} did not complete {count} checkpoints in {timeout:.0f}s")


def follow_recovery(
    job_id: str, timeline: Timeline, before_id: int, old_tms: set[str], timeout: float
) -> dict[str, Any]:
    """Poll the job after the kill until it runs again with a new completed checkpoint.

    :param job_id: the job.
    :param timeline: where the moments go.
    :param before_id: the latest completed checkpoint before the kill.
    :param old_tms: the TaskManager ids registered before the kill.
    :param timeout: seconds.
    """
    states: list[str] = []
    left_running = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = time.time()
        job = env.get_job(job_id) or {}
        state = str(job.get("state"))
        running = env.job_is_running(job)
        if not states or states[-1] != state:
            states.append(state)
        if not running:
            left_running = True
            timeline.mark("job_left_running", now)
        ids = taskmanager_ids()
        if ids is not None:
            if not ids & old_tms:
                timeline.mark("old_tm_unregistered", now)
            if ids - old_tms:
                timeline.mark("new_tm_registered", now)
        if running and left_running:
            timeline.mark("running_again", now)
        if "running_again" in timeline.events:
            checkpoint = new_checkpoint(env.rest("GET", f"/jobs/{job_id}/checkpoints").json(), before_id,
                                        timeline.kill * 1000)  # fmt: skip
            if checkpoint is not None:
                completed_ms = float(checkpoint.get("latest_ack_timestamp") or now * 1000)
                timeline.mark("new_checkpoint", completed_ms / 1000)
                return {"states": states, "checkpoint_id": checkpoint.get("id")}
        if state in ("FAILED", "CANCELED", "FINISHED"):
            raise RuntimeError(f"job {job_id} ended {state} instead of recovering: {env.root_cause(job_id)}")
        time.sleep(0.2)
    raise TimeoutError(f"no recovery within {timeout:.0f}s; states seen: {states}; {timeline.since_kill()}")


def run(opts: argparse.Namespace) -> BenchResult:
    """Kill the TaskManager under the job, restart it, time the recovery and count events.

    :param opts: ``recovery_rate``, ``checkpoint_interval``, ``recovery_timeout``, ``force_recovery``.
    """
    result = BenchResult("recovery", "TaskManager killed under a checkpointed exactly-once job: recovery and events")
    dry = bool(getattr(opts, "recovery_dry_run", False))
    others = env.jobs_of_others()
    if others and not opts.force_recovery and not dry:
        result.status = "skipped"
        result.error = (
            f"{len(others)} job(s) of others run on the cluster ({', '.join(j['name'] for j in others[:3])}); "
            "killing the TaskManager would fail them. Rerun with --force-recovery on a quiet cluster."
        )
        return result
    pid_file, tm_pid = taskmanager()
    old_tms = taskmanager_ids() or set()
    factory = EventFactory(load_templates())
    ci = opts.checkpoint_interval
    topic_in, topic_out = env.unique("bench-rec-in"), env.unique("bench-rec-out")
    env.create_topics([topic_in, topic_out])
    seen: list[int] = []

    def collect(value: bytes, timestamp_ms: int) -> None:
        order_id = order_id_of(value)
        if order_id is not None:
            seen.append(order_id)

    reader = kafkatools.OutputReader(topic_out, collect, read_committed=True).start()
    producer = RateProducer(topic_in, factory.batch, track=True,
                            config={"bootstrap.servers": env.BOOTSTRAP, "enable.idempotence": True})  # fmt: skip
    timeline = Timeline()
    job_name = env.unique("bench-recovery")
    killed = False
    try:
        script = render_job(
            job_name=job_name, input_topic=topic_in, output_topic=topic_out,
            extra_settings={"execution.checkpointing.interval": f"{ci:g}s",
                            "execution.checkpointing.mode": "EXACTLY_ONCE"},
            sink_options={"sink.delivery-guarantee": "exactly-once",
                          "sink.transactional-id-prefix": job_name,
                          "properties.transaction.timeout.ms": "600000"},
        )  # fmt: skip
        from benchmarks import gateway

        producer.start(opts.recovery_rate)
        job_id = gateway.submit(script)[0]
        env.wait_running(job_id, poll=0.2)
        before_id = wait_checkpoints(job_id, 2, timeout=max(60, 10 * ci))
        if dry:
            say(f"[bench]   dry run: NOT killing TaskManager pid {tm_pid}; checking the sink's accounting only")
            recovery: dict[str, Any] = {"states": [], "checkpoint_id": wait_checkpoints(job_id, 4, timeout=60)}
        else:
            say(f"[bench]   killing TaskManager pid {tm_pid} (checkpoint {before_id} done)")
            timeline.kill = time.time()
            os.kill(tm_pid, signal.SIGKILL)
            killed = True
            while alive(tm_pid):
                time.sleep(0.01)
            timeline.mark("tm_process_gone")
            timeline.mark("tm_start_script_returned", start_taskmanager(pid_file))
            recovery = follow_recovery(job_id, timeline, before_id, old_tms, opts.recovery_timeout)
        time.sleep(2 * ci)  # the job keeps running past the recovery
        producer.stop()
        delivered = list(producer.delivered)
        expected = {i for i in delivered if factory.passes(i)}
        complete = wait_for_ids(seen, expected, stall=3 * ci + 15, timeout=opts.recovery_timeout)
        time.sleep(2 * ci)  # one more checkpoint: late duplicates would be committed by now
        env.JOBS.cancel(job_id)
    finally:
        producer.stop()
        reader.stop()
        if killed and not ensure_taskmanager(pid_file, old_tms):
            result.notes.append("the TaskManager did not register again: check .stack/logs/flink")
        env.delete_topics([topic_in, topic_out])
    counts = account(delivered, seen, factory.passes)
    moments = timeline.since_kill()
    result.figure("recovery_s", moments.get("new_checkpoint"), "s")
    result.figure("running_again_s", moments.get("running_again"), "s")
    result.figure("failure_noticed_s", moments.get("job_left_running"), "s")
    result.figure("lost_events", counts["lost"])
    result.figure("duplicated_events", counts["duplicated"])
    result.figure("unexpected_events", counts["unexpected"])
    result.figure("events_checked", counts["expected"])
    result.profile["timeline_s_after_kill"] = moments
    result.samples.update({"counts": counts, "states_after_kill": recovery["states"],
                           "new_checkpoint_id": recovery["checkpoint_id"], "checkpoint_before_kill": before_id,
                           "producer_failures": producer.errors[:5], "reader_errors": reader.errors[:5]})  # fmt: skip
    if not complete:
        result.notes.append(f"output incomplete after the wait: {counts['unique']}/{counts['expected']}")
    if dry:
        result.notes.append("dry run (--recovery-dry-run): the TaskManager was not killed; recovery not measured")
    result.targets = [
        Target("lost_events", "<=", 0, "0 lost"),
        Target("duplicated_events", "<=", 0, "0 duplicated"),
    ]
    return result
