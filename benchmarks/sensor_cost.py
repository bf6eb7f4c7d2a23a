"""3. Sensor cost: FlinkJobStateSensor in poke mode against deferrable mode, watching one job for a fixed time.

One running job (datagen -> blackhole) is watched for ``--sensor-seconds`` by each mode in turn, waiting
for a state it never reaches (FINISHED), so both run for the full window and end with a sensor timeout.
The sensor talks to Flink through a counting proxy (``proxy.py``): every HTTP request and TCP connection
is counted on the wire. Worker slots: task code holding a worker (``taskrun.SlotLog``), sampled every
50 ms; a deferred task holds none while its trigger waits in the (in-process) triggerer.

Polls are counted in the code: ``poke()`` calls in poke mode; in deferrable mode the first ``poke()`` plus
each ``get_job`` exchange the trigger runs.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from typing import Any

from benchmarks import env, gateway
from benchmarks.console import say
from benchmarks.core import BenchResult, Target
from benchmarks.proxy import CountingProxy
from benchmarks.taskrun import SlotLog, bench_dag, run_task, run_trigger

CONN_ID = "flink_bench_proxy"

WATCHED_JOB = """
SET 'pipeline.name' = '{name}';
SET 'parallelism.default' = '1';
CREATE TEMPORARY TABLE src (n BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '5');
CREATE TEMPORARY TABLE snk (n BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO snk SELECT n FROM src;
"""


STATE_READS = frozenset({"get_job_overview", "get_job"})
"""The exchanges a sensor or trigger polls the job's state with (the live overview, or the cached details)."""


class PollCounter:
    """Counts state polls (thread-safe)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def hit(self) -> None:
        """One more poll."""
        with self._lock:
            self.count += 1


class CountingTransport:
    """Wraps the trigger's async transport; a state read (``get_job_overview``, or ``get_job``) is one poll.

    :param inner: the real transport.
    :param polls: the counter.
    """

    def __init__(self, inner: Any, polls: PollCounter) -> None:
        self.inner = inner
        self.polls = polls

    async def run(self, exchange: Any) -> Any:
        """Count and delegate.

        :param exchange: a protocol exchange (a generator).
        """
        if getattr(exchange, "__name__", "") in STATE_READS:
            self.polls.hit()
        return await self.inner.run(exchange)

    async def send(self, request: Any) -> Any:
        """Count a state read sent on the trigger's shared poll (the overview, a job's details) and delegate.

        :param request: a protocol request.
        """
        if request.method == "GET" and (request.path == "/jobs/overview" or request.path.count("/") == 2):
            self.polls.hit()
        return await self.inner.send(request)

    def __getattr__(self, name: str) -> Any:
        """Everything else (``config``, ``aclose``...) is the real transport's."""
        return getattr(self.inner, name)


def sensor_class() -> type:
    """FlinkJobStateSensor with its ``poke`` calls counted."""
    from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor

    class CountingSensor(FlinkJobStateSensor):
        polls: PollCounter

        def poke(self, context: Any) -> Any:
            self.polls.hit()
            return super().poke(context)

    return CountingSensor


class SlotSampler:
    """Samples ``SlotLog.held_now()`` every ``interval`` seconds in a thread, tagged with a phase."""

    def __init__(self, slots: SlotLog, interval: float = 0.05) -> None:
        self.slots = slots
        self.interval = interval
        self.phase = "running"
        self.samples: list[tuple[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append((self.phase, self.slots.held_now()))

    def __enter__(self) -> SlotSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def held(self, phase: str | None = None) -> tuple[float, int]:
        """Mean and max slots held over the samples (of one phase, or all).

        :param phase: ``deferred`` for the samples taken while the trigger waited.
        """
        values = [held for p, held in self.samples if phase is None or p == phase]
        return (sum(values) / len(values) if values else 0.0), max(values, default=0)


def watch(job_id: str, *, deferrable: bool, seconds: float, interval: float, proxy: CountingProxy) -> dict[str, Any]:
    """Watch ``job_id`` with one sensor mode for ``seconds``; return its costs.

    :param job_id: the running job.
    :param deferrable: the mode.
    :param seconds: the sensor's timeout: how long it watches.
    :param interval: poke interval / trigger poll interval.
    :param proxy: the counting proxy the sensor's connection points at.
    """
    from airflow.sdk.exceptions import AirflowSensorTimeout

    polls = PollCounter()
    slots = SlotLog()
    cls = sensor_class()
    with bench_dag("bench_sensor"):
        sensor = cls(
            task_id=f"watch_{'deferrable' if deferrable else 'poke'}",
            job_id=job_id,
            target_states=["FINISHED"],
            mode="poke",
            deferrable=deferrable,
            poke_interval=interval,
            timeout=seconds,
            flink_conn_id=CONN_ID,
        )
    sensor.polls = polls
    sampler = SlotSampler(slots)
    counted_in_trigger = []

    def triggerer(trigger: Any) -> dict[str, Any]:
        original = getattr(trigger, "_transport", None)
        if original is not None:

            async def counting() -> Any:
                return CountingTransport(await original(), polls)

            trigger._transport = counting
            counted_in_trigger.append(True)
        sampler.phase = "deferred"
        try:
            return run_trigger(trigger)
        finally:
            sampler.phase = "resumed"

    proxy.reset()
    with sampler:
        outcome = run_task(sensor, slots=slots, triggerer=triggerer)
    requests_seen, connections = proxy.snapshot()
    if outcome.error is not None and not isinstance(outcome.error, AirflowSensorTimeout):
        raise outcome.error
    total = sum(requests_seen.values())
    state_reads = sum(n for call, n in requests_seen.items() if call in ("GET /jobs/overview", "GET /jobs/{id}"))
    mean_all, _ = sampler.held()
    mean_deferred, max_deferred = sampler.held("deferred")
    poll_count = polls.count if (not deferrable or counted_in_trigger) else state_reads
    return {
        "seconds": round(outcome.seconds, 2),
        "ended_with": type(outcome.error).__name__ if outcome.error else "success",
        "polls": poll_count,
        "http_requests": total,
        "tcp_connections": connections,
        "requests_per_poll": total / poll_count if poll_count else None,
        "connections_per_poll": connections / poll_count if poll_count else None,
        "requests": requests_seen,
        "slot_seconds": round(slots.held_seconds(), 3),
        "slots_mean": round(mean_all, 3),
        "slots_max_while_deferred": max_deferred if deferrable else None,
        "slots_mean_while_deferred": round(mean_deferred, 3) if deferrable else None,
        "deferrals": outcome.deferrals,
        "trigger_seconds": round(outcome.trigger_seconds, 2),
        "polls_counted_in_code": not deferrable or bool(counted_in_trigger),
    }


def run(opts: argparse.Namespace) -> BenchResult:
    """Watch one job with each mode and compare.

    :param opts: ``sensor_seconds``, ``sensor_interval``.
    """
    result = BenchResult("sensor", "FlinkJobStateSensor: poke vs deferrable, one job watched for a fixed time")
    name = env.unique("bench-sensor-watched")
    job_id = gateway.submit(WATCHED_JOB.format(name=name))[0]
    env.wait_running(job_id, poll=0.2)
    try:
        with CountingProxy(env.REST_URL) as proxy:
            os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(
                {"conn_type": "flink", "host": env.HOST, "port": proxy.port}
            )
            modes = {}
            for mode, deferrable in (("poke", False), ("deferrable", True)):
                began = time.monotonic()
                modes[mode] = watch(
                    job_id, deferrable=deferrable, seconds=opts.sensor_seconds, interval=opts.sensor_interval,
                    proxy=proxy,
                )  # fmt: skip
                say(f"[bench]   {mode}: {time.monotonic() - began:.0f}s, {modes[mode]['polls']} polls")
    finally:
        os.environ.pop(f"AIRFLOW_CONN_{CONN_ID.upper()}", None)
        env.JOBS.cancel(job_id)
    result.samples.update(modes)
    poke, deferred = modes["poke"], modes["deferrable"]
    result.figure("watch_s", opts.sensor_seconds, "s")
    result.figure("poke_slot_seconds", poke["slot_seconds"], "slot-s")
    result.figure("deferrable_slot_seconds", deferred["slot_seconds"], "slot-s")
    result.figure("deferred_slots_held_max", deferred["slots_max_while_deferred"], "slots")
    result.figure("poke_requests_per_poll", poke["requests_per_poll"], "calls")
    result.figure("deferrable_requests_per_poll", deferred["requests_per_poll"], "calls")
    result.figure("poke_connections_per_poll", poke["connections_per_poll"], "conns")
    result.figure("deferrable_connections_per_poll", deferred["connections_per_poll"], "conns")
    result.targets = [
        Target("deferred_slots_held_max", "<=", 0, "0 slots while deferred"),
        Target("poke_requests_per_poll", "<=", 1.0, "<= 1 call per poll"),
        Target("deferrable_requests_per_poll", "<=", 1.0, "<= 1 call per poll"),
    ]
    if not deferred["polls_counted_in_code"]:
        result.notes.append(
            "the trigger has no _transport hook: deferrable polls counted as GET /jobs/{id} on the wire"
        )
    return result
