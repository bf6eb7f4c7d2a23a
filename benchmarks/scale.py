"""Scale (issue 15): N deferred sensors' triggers in one triggerer-like event loop, shared against per-trigger polling.

For each N (10, 100, 1,000 by default) a loopback fake Flink REST server (a subprocess) serves N jobs whose
states toggle CREATED <-> RUNNING on a fixed schedule (each job every ``3 x poll`` seconds, at its own offset).
One child process per mode runs N watchers in one asyncio loop, all started at once (a herd): each waits for its
job's next state with a trigger and, on the event, waits for the one after (as a new deferred sensor would).

* ``shared``: :class:`~airflow_flink_provider.triggers.job_state.FlinkJobStateTrigger` as built (one overview
  poll per connection and interval, :mod:`airflow_flink_provider.triggers.shared_poll`);
* ``per_trigger``: what each trigger did before: its own keep-alive client running
  :func:`~airflow_flink_provider.protocol.job_state.wait_for_job_state`, so N polls per interval.

Measured: requests/s at the server (and the most overview requests within any one poll interval), the loop
process's CPU (share of one core, and per 100 triggers), event-loop lag (a 50 ms probe: p99 in the first minute
after the herd start and after it) and detection latency (state change at the server -> the trigger's event,
p50/p99). Plus N = 50 triggers against the real JobManager through a counting proxy (two of this run's own
jobs; one is cancelled two thirds in, for the detection latency), with the JobManager's JVM CPU time.

``python -m benchmarks.scale serve|measure`` are the two child processes (internal).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from benchmarks.core import BenchResult, Target, percentile

MODES = ("per_trigger", "shared")
PROBE = 0.05
"""Seconds the event-loop lag probe sleeps; its overshoot is the lag."""
HERD_WINDOW = 60.0
"""The first minute after all triggers start together."""


@dataclass(frozen=True)
class Schedule:
    """When each fake job toggles: at ``t0 + offset_i + k * period`` (k >= 0), CREATED first, then RUNNING...

    :param n: jobs.
    :param period: seconds between two toggles of one job.
    :param t0: epoch seconds of the schedule's start.
    :param seed: offsets are uniform in ``[0, period)`` from this seed.
    """

    n: int
    period: float
    t0: float
    seed: int = 15

    def offsets(self) -> list[float]:
        rng = random.Random(self.seed)
        return [rng.uniform(0, self.period) for _ in range(self.n)]

    @staticmethod
    def job_id(index: int) -> str:
        return f"{index:032x}"

    def toggles(self, offset: float, now: float) -> int:
        """How many toggles a job with ``offset`` has made by ``now``."""
        since = now - self.t0 - offset
        return 0 if since < 0 else int(since // self.period) + 1

    def state(self, offset: float, now: float) -> str:
        return "RUNNING" if self.toggles(offset, now) % 2 else "CREATED"

    def last_toggle(self, offset: float, now: float) -> float | None:
        count = self.toggles(offset, now)
        return None if count == 0 else self.t0 + offset + (count - 1) * self.period


# --- the fake Flink REST server (child process) -----------------------------------------------------


class FakeFlink:
    """Answers ``/jobs/overview``, ``/jobs/{id}``, ``/jobs/{id}/exceptions`` from a :class:`Schedule`; counts."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.offsets = {schedule.job_id(i): offset for i, offset in enumerate(schedule.offsets())}
        self.counts: Counter[str] = Counter()
        self.overview_times: list[float] = []
        self.connections = 0

    def entry(self, jid: str, now: float) -> dict[str, Any]:
        state = self.schedule.state(self.offsets[jid], now)
        tasks = {"total": 1, "running" if state == "RUNNING" else "created": 1}
        return {"jid": jid, "name": f"scale-{jid[-6:]}", "state": state, "start-time": 0, "tasks": tasks}

    def route(self, method: str, target: str) -> tuple[int, Any]:
        path = urlsplit(target).path.rstrip("/")
        now = time.time()
        if path == "/_stats":
            stats = {
                "counts": dict(self.counts),
                "overview_times": self.overview_times,
                "connections": self.connections,
                "cpu_s": time.process_time(),
            }
            if "reset" in target:
                self.counts.clear()
                self.overview_times = []
                self.connections = 0
            return 200, stats
        if path == "/jobs/overview":
            self.counts["GET /jobs/overview"] += 1
            self.overview_times.append(time.monotonic())
            return 200, {"jobs": [self.entry(jid, now) for jid in self.offsets]}
        parts = path.split("/")
        self.counts[f"{method} /jobs/{{id}}" + ("/" + "/".join(parts[3:]) if len(parts) > 3 else "")] += 1
        if len(parts) < 3 or parts[2] not in self.offsets:
            return 404, {"errors": [f"Job {parts[2] if len(parts) > 2 else '?'} not found"]}
        if len(parts) > 3 and parts[3] == "exceptions":
            return 200, {"exceptionHistory": {"entries": []}}
        return 200, {**self.entry(parts[2], now), "vertices": []}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """HTTP/1.1 with keep-alive, as small as the benchmark needs."""
        self.connections += 1
        try:
            while line := await reader.readline():
                method, target, _ = line.decode("latin-1").split(" ", 2)
                length = 0
                while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    if header.lower().startswith(b"content-length:"):
                        length = int(header.split(b":", 1)[1])
                if length:
                    await reader.readexactly(length)
                status, body = self.route(method, target)
                data = json.dumps(body).encode()
                head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
                writer.write(head.encode() + data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()


async def _serve(schedule: Schedule) -> None:
    fake = FakeFlink(schedule)
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0, backlog=2048)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


# --- the triggerer-like loop (child process) --------------------------------------------------------


@dataclass(frozen=True)
class Watch:
    """One watcher: a job and the state it waits for first (then the other, for a toggling fake job).

    :param job_id: the job.
    :param target: the first target state.
    :param offset: the fake job's schedule offset, or ``None`` for a real job.
    """

    job_id: str
    target: str
    offset: float | None = None


async def _wait_once(mode: str, url: str, job_id: str, target: str, poll: float) -> str:
    """One deferred sensor's trigger run to its event; returns the event's status."""
    from airflow_flink_provider.hooks.transport import AsyncTransport, TransportConfig
    from airflow_flink_provider.protocol.errors import FlinkJobFailedError
    from airflow_flink_provider.protocol.job_state import JobStateCheck, wait_for_job_state
    from airflow_flink_provider.triggers.job_state import FlinkJobStateTrigger

    config = TransportConfig(base_url=url, outage_budget=120)
    if mode == "shared":
        trigger = FlinkJobStateTrigger(job_id=job_id, target_states=[target], poll_interval=poll)

        async def make() -> AsyncTransport:
            return AsyncTransport(config)

        trigger._transport = make  # type: ignore[method-assign]  # the fake/proxy, not an Airflow connection
        async for event in trigger.run():
            return str(event.payload["status"])
        raise RuntimeError("the trigger ended without an event")
    async with AsyncTransport(config) as transport:
        try:
            await transport.run(
                wait_for_job_state(job_id, JobStateCheck.of([target]), timeout=None, poll_interval=poll)
            )
        except FlinkJobFailedError:
            return "failed"
    return "success"


async def _measure(opts: dict[str, Any]) -> dict[str, Any]:
    """Run the watchers for ``opts['seconds']``; lag, CPU and detection latencies."""
    loop = asyncio.get_running_loop()
    mode, url, poll, seconds = opts["mode"], opts["url"], float(opts["poll"]), float(opts["seconds"])
    schedule = Schedule(**opts["schedule"]) if opts.get("schedule") else None
    watches = [Watch(**w) for w in opts["watches"]]
    lags: list[tuple[float, float, float]] = []
    polls: list[tuple[float, float]] = []
    detections: list[float] = []
    statuses: Counter[str] = Counter()
    cancelled_at: list[float] = []
    began = loop.time()

    longest_turn = [0.0]
    run_once = loop._run_once  # type: ignore[attr-defined]

    def timed_run_once() -> None:
        """One event-loop turn, its CPU time kept (time blocked in select() costs none)."""
        cpu = time.thread_time()
        run_once()
        longest_turn[0] = max(longest_turn[0], time.thread_time() - cpu)

    loop._run_once = timed_run_once  # type: ignore[attr-defined]

    async def probe() -> None:
        """Lag: how late a 50 ms sleep wakes; own lag: at most the CPU time of the longest event-loop turn
        meanwhile (the rest of a late wake-up is the OS running other processes, on a shared machine)."""
        from airflow_flink_provider.triggers import shared_poll

        while True:
            start = loop.time()
            longest_turn[0] = 0.0
            await asyncio.sleep(PROBE)
            late = max(0.0, loop.time() - start - PROBE)
            lags.append((start - began, late * 1000, min(late, longest_turn[0]) * 1000))
            for poller in shared_poll._REGISTRY.values():
                latest = poller.latest
                if latest is not None and (not polls or polls[-1][0] != latest.taken):
                    polls.append((latest.taken, latest.answered - latest.taken))

    async def watcher(watch: Watch) -> None:
        target = watch.target
        while True:
            armed = time.time()
            status = await _wait_once(mode, url, watch.job_id, target, poll)
            now = time.time()
            statuses[status] += 1
            if schedule is not None and watch.offset is not None:
                changed = schedule.last_toggle(watch.offset, now)
                if changed is not None and changed >= armed:  # not a state the job was in before the watch
                    detections.append(now - changed)
                target = "CREATED" if target == "RUNNING" else "RUNNING"
                continue
            if cancelled_at and status == "failed":
                detections.append(now - cancelled_at[0])
            return

    async def cancel_later() -> None:
        await asyncio.sleep(opts["cancel_after"])
        import httpx

        cancelled_at.append(time.time())
        async with httpx.AsyncClient() as client:
            await client.patch(f"{opts['cancel_url']}/jobs/{opts['cancel_job']}", params={"mode": "cancel"})

    probe_task = asyncio.ensure_future(probe())
    extra = [asyncio.ensure_future(cancel_later())] if opts.get("cancel_job") else []
    cpu0 = time.process_time()
    tasks = [asyncio.ensure_future(watcher(watch)) for watch in watches]  # the herd: all at once
    await asyncio.sleep(min(HERD_WINDOW, seconds))
    cpu_herd = time.process_time()
    await asyncio.sleep(max(0.0, seconds - HERD_WINDOW))
    cpu_end = time.process_time()
    wall = loop.time() - began
    for task in [*tasks, probe_task, *extra]:
        task.cancel()
    await asyncio.gather(*tasks, probe_task, *extra, return_exceptions=True)
    herd = [lag for at, lag, _ in lags if at < HERD_WINDOW]
    steady = [lag for at, lag, _ in lags if at >= HERD_WINDOW]
    herd_own = [own for at, _, own in lags if at < HERD_WINDOW]
    steady_own = [own for at, _, own in lags if at >= HERD_WINDOW]
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(polls)]
    return {
        "lag_own_ms_p99_herd": percentile(herd_own, 99) if herd_own else None,
        "lag_own_ms_p99_steady": percentile(steady_own, 99) if steady_own else None,
        "poll_answer_s_max": max((answer for _, answer in polls), default=None),
        "poll_period_s_max": max(gaps, default=None),
        "load_average_end": os.getloadavg()[0],
        "wall_s": wall,
        "cpu_s": cpu_end - cpu0,
        "cpu_steady_s": cpu_end - cpu_herd,
        "steady_s": max(0.0, wall - HERD_WINDOW),
        "lag_ms_p99_herd": percentile(herd, 99) if herd else None,
        "lag_ms_max_herd": max(herd, default=None),
        "lag_ms_p99_steady": percentile(steady, 99) if steady else None,
        "lag_ms_max_steady": max(steady, default=None),
        "detections": len(detections),
        "detect_s_p50": percentile(detections, 50) if detections else None,
        "detect_s_p99": percentile(detections, 99) if detections else None,
        "detect_s_max": max(detections, default=None),
        "events": dict(statuses),
    }


def _child_main(argv: Sequence[str]) -> None:
    """``serve <json schedule>`` or ``measure <json options>`` (the benchmark's child processes)."""
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("airflow_flink_provider").setLevel(logging.WARNING)
    what, spec = argv[0], json.loads(argv[1])
    if what == "serve":
        asyncio.run(_serve(Schedule(**spec)))
    else:
        import httpx  # noqa: F401  (imported before the clock starts: a triggerer has its modules loaded)

        import airflow_flink_provider.triggers.job_state  # noqa: F401
        from airflow_flink_provider.hooks import transport

        transport._ssl_context(True, None)  # the process-wide TLS context a running triggerer already has

        print(json.dumps(asyncio.run(_measure(spec))), flush=True)


# --- orchestration ----------------------------------------------------------------------------------


def _child(what: str, spec: dict[str, Any], **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.scale", what, json.dumps(spec)],
        stdout=subprocess.PIPE,
        text=True,
        # INFO lines (each trigger's "job: - -> CREATED") off in both modes: the polling's cost is measured
        env={**os.environ, "PYTHONUNBUFFERED": "1", "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"},
        **kwargs,
    )


def _measure_child(spec: dict[str, Any]) -> dict[str, Any]:
    proc = _child("measure", spec)
    out, _ = proc.communicate(timeout=float(spec["seconds"]) + 300)
    if proc.returncode != 0:
        raise RuntimeError(f"measure child failed ({proc.returncode}): {out[-2000:]}")
    return dict(json.loads(out.strip().splitlines()[-1]))


def _stats(url: str, reset: bool = False) -> dict[str, Any]:
    import requests

    return dict(requests.get(f"{url}/_stats{'?reset=1' if reset else ''}", timeout=30).json())


def max_in_window(times: Sequence[float], window: float) -> int:
    """The most of ``times`` within any half-open interval of length ``window``.

    :param times: sorted or not.
    :param window: seconds.
    """
    ordered = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def _row(n: int, mode: str, measured: dict[str, Any], stats: dict[str, Any], poll: float) -> dict[str, Any]:
    wall = measured["wall_s"]
    counts = stats["counts"]
    total = sum(counts.values())
    cpu_pct = 100 * measured["cpu_s"] / wall
    steady = measured["steady_s"]
    cpu_steady = 100 * measured["cpu_steady_s"] / steady if steady > 1 else None
    return {
        "n": n,
        "mode": mode,
        "requests_per_s": total / wall,
        "overview_per_s": counts.get("GET /jobs/overview", 0) / wall,
        "overview_max_per_interval": max_in_window(stats["overview_times"], poll) if stats["overview_times"] else 0,
        "other_requests": {k: v for k, v in counts.items() if k != "GET /jobs/overview"},
        "connections": stats["connections"],
        "cpu_pct": cpu_pct,
        "cpu_pct_steady": cpu_steady,
        "cpu_pct_per_100": cpu_pct * 100 / n,
        **{k: measured[k] for k in measured if k.startswith(("lag_", "detect", "events", "poll_", "load_"))},
        "wall_s": wall,
    }


def _fake_runs(opts: argparse.Namespace, result: BenchResult) -> list[dict[str, Any]]:
    rows = []
    poll, seconds = float(opts.scale_poll), float(opts.scale_seconds)
    for n in opts.scale_sizes:
        schedule = Schedule(n=n, period=3 * poll, t0=time.time() + 5)
        server = _child("serve", schedule.__dict__)
        try:
            assert server.stdout is not None
            url = f"http://127.0.0.1:{int(server.stdout.readline())}"
            offsets = schedule.offsets()
            watches = [{"job_id": Schedule.job_id(i), "target": "RUNNING", "offset": offsets[i]} for i in range(n)]
            for mode in MODES if n % 2 else reversed(MODES):
                _stats(url, reset=True)
                spec = {"mode": mode, "url": url, "poll": poll, "seconds": seconds, "schedule": schedule.__dict__}
                measured = _measure_child({**spec, "watches": watches})
                row = _row(n, mode, measured, _stats(url), poll)
                rows.append(row)
                say_row(row)
        finally:
            server.terminate()
            server.wait(timeout=30)
    return rows


def _jm_cpu_s() -> float | None:
    """The JobManager's JVM CPU time so far (seconds), from its metrics."""
    from benchmarks import env

    try:
        answer = env.rest("GET", "/jobmanager/metrics", params={"get": "Status.JVM.CPU.Time"}).json()
        return float(answer[0]["value"]) / 1e9
    except Exception:
        return None


def _real_runs(opts: argparse.Namespace) -> list[dict[str, Any]]:
    from benchmarks import env, gateway
    from benchmarks.proxy import CountingProxy

    rows = []
    n, poll, seconds = opts.scale_real_triggers, float(opts.scale_real_poll), float(opts.scale_real_seconds)
    with CountingProxy(env.REST_URL) as proxy:
        url = f"http://127.0.0.1:{proxy.port}"
        for mode in MODES:
            jobs = []
            for _ in range(2):
                table = env.unique("scale").replace("-", "_")
                script = (
                    f"CREATE TABLE {table}_src (n BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '5');\n"
                    f"CREATE TABLE {table} (n BIGINT) WITH ('connector' = 'blackhole');\n"
                    f"INSERT INTO {table} SELECT n FROM {table}_src;\n"
                )
                jobs += gateway.submit(script, {"parallelism.default": "1", "pipeline.name": table})
            for job in jobs:
                env.wait_running(job, poll=0.5)
            try:
                watches = [{"job_id": jobs[i % 2], "target": "FINISHED"} for i in range(n)]
                proxy.reset()
                cpu0 = _jm_cpu_s()
                spec = {
                    "mode": mode,
                    "url": url,
                    "poll": poll,
                    "seconds": seconds,
                    "watches": watches,
                    "cancel_job": jobs[0],
                    "cancel_url": env.REST_URL,
                    "cancel_after": seconds * 2 / 3,
                }
                measured = _measure_child(spec)
                cpu1 = _jm_cpu_s()
                counts, connections = proxy.snapshot()
                times: list[float] = []
                stats = {"counts": counts, "overview_times": times, "connections": connections}
                row = _row(n, f"{mode} (real JobManager)", measured, stats, poll)
                if cpu0 is not None and cpu1 is not None and row["requests_per_s"]:
                    row["jm_cpu_ms_per_request"] = 1000 * (cpu1 - cpu0) / (row["requests_per_s"] * row["wall_s"])
                    row["jm_cpu_pct"] = 100 * (cpu1 - cpu0) / row["wall_s"]
                rows.append(row)
                say_row(row)
            finally:
                for job in jobs:
                    env.JOBS.cancel(job)
    return rows


def say_row(row: dict[str, Any]) -> None:
    from benchmarks.console import say

    say(f"[scale] {render_rows([row]).splitlines()[-1]}")


COLUMNS = (
    ("N", "n", "{:d}"),
    ("mode", "mode", "{}"),
    ("req/s", "requests_per_s", "{:.2f}"),
    ("overview/interval (max)", "overview_max_per_interval", "{:d}"),
    ("CPU %", "cpu_pct", "{:.1f}"),
    ("CPU % per 100", "cpu_pct_per_100", "{:.2f}"),
    ("lag p99 1st min ms", "lag_ms_p99_herd", "{:.1f}"),
    ("lag p99 after ms", "lag_ms_p99_steady", "{:.1f}"),
    ("own lag p99 1st/after ms", "own_lag", "{}"),
    ("detect p50 s", "detect_s_p50", "{:.2f}"),
    ("detect p99 s", "detect_s_p99", "{:.2f}"),
    ("JM CPU %", "jm_cpu_pct", "{:.1f}"),
)


def render_rows(rows: Sequence[dict[str, Any]]) -> str:
    """The scale table, one row per N and mode.

    :param rows: the measured rows.
    """
    table = [[title for title, _, _ in COLUMNS]]
    for row in rows:
        cells = []
        own = [row.get("lag_own_ms_p99_herd"), row.get("lag_own_ms_p99_steady")]
        row = {**row, "own_lag": "/".join("-" if value is None else f"{value:.1f}" for value in own)}
        for _, key, fmt in COLUMNS:
            value = row.get(key)
            cells.append("-" if value is None else fmt.format(value))
        table.append(cells)
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)) for line in table)


def run(opts: argparse.Namespace) -> BenchResult:
    """The scale benchmark (see the module).

    :param opts: the parsed command line of ``benchmarks.run``.
    """
    from benchmarks import env
    from benchmarks.console import say

    result = BenchResult("scale", "N triggers in one loop: shared overview poll vs per-trigger polls")
    poll = float(opts.scale_poll)
    rows = _fake_runs(opts, result)
    if opts.scale_real_triggers and not env.stack_problems():
        try:
            rows += _real_runs(opts)
        except Exception as error:  # the fake-server rows are kept; the result says what failed
            result.status, result.error = "error", f"real-JobManager run: {type(error).__name__}: {error}"
    else:
        result.notes.append("the real-JobManager run was skipped (stack not up, or --scale-real-triggers 0)")
    result.samples["rows"] = rows
    result.profile["table"] = render_rows(rows)
    say(render_rows(rows))
    biggest = max(opts.scale_sizes)
    for row in rows:
        tag = f"{row['mode'].split(' ')[0]}_n{row['n']}{'_real' if 'real' in row['mode'] else ''}"
        result.figure(f"{tag}_req_per_s", round(row["requests_per_s"], 3), "req/s")
        result.figure(f"{tag}_cpu_pct_per_100", round(row["cpu_pct_per_100"], 3), "%")
        if row["n"] == biggest or "real" in row["mode"]:
            keys = ("overview_max_per_interval", "cpu_pct", "lag_ms_p99_herd", "lag_ms_p99_steady")
            for key in (
                *keys,
                "lag_own_ms_p99_herd",
                "lag_own_ms_p99_steady",
                "poll_answer_s_max",
                "poll_period_s_max",
                "load_average_end",
            ):
                value = row.get(key)
                result.figure(f"{tag}_{key}", None if value is None else round(value, 3))
            for key in ("detect_s_p50", "detect_s_p99"):
                value = row.get(key)
                result.figure(f"{tag}_{key}", None if value is None else round(value, 3), "s")
        if "real" in row["mode"]:
            for key, unit in (("jm_cpu_pct", "%"), ("jm_cpu_ms_per_request", "ms")):
                value = row.get(key)
                result.figure(f"{tag}_{key}", None if value is None else round(value, 3), unit)
    top = f"shared_n{biggest}"
    result.targets += [
        Target(f"{top}_overview_max_per_interval", "<=", 1, "<= 1 overview request per poll interval"),
        Target(f"{top}_detect_s_p99", "<=", poll + 1, f"p99 detection <= poll + 1 s ({poll + 1:g} s)"),
        Target(f"{top}_cpu_pct", "<=", 10, "< 10 % of one core"),
        Target(f"{top}_lag_ms_p99_herd", "<=", 20, "loop lag p99 < 20 ms, first minute"),
        Target(f"{top}_lag_ms_p99_steady", "<=", 20, "loop lag p99 < 20 ms, after it"),
    ]
    if float(opts.scale_seconds) < 1800:
        result.notes.append(
            f"each run lasted {opts.scale_seconds:g}s, not the issue's 30 minutes (make bench must take minutes): "
            "the after-the-first-minute lag is steady state over the rest; --scale-seconds 1800 for the long run"
        )
    result.notes.append(
        "own lag: a late wake-up of the 50 ms probe counted only up to the CPU time of the longest event-loop turn "
        "meanwhile (the rest is the OS running other processes: compare load_average_end with the 2 cores); "
        "detection latency counts state changes after the trigger started watching"
    )
    result.notes.append(
        "log level WARNING in the loop process (state-change lines are not the polling's cost); the fake server "
        "runs in its own process, so the loop's CPU is the triggerer's alone"
    )
    return result


if __name__ == "__main__":
    _child_main(sys.argv[1:])
