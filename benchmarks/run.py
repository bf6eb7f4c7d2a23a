"""Run the benchmarks on the local stack, write the JSON result file and print the table.

``make bench`` runs all of them; ``python -m benchmarks.run --help`` lists the flags (sizes, repeats, which
benchmarks). Every figure is a ratio of methods measured side by side in the same run; absolute times on a
shared machine are noise. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from benchmarks.console import redirect_stdout_to, say
from benchmarks.core import BenchResult, build_report, combine_repeats, machine_info, render_table, write_json

BENCHMARKS = {
    "pyflink_submit": "benchmarks.pyflink_submit",
    "sql_submit": "benchmarks.sql_submit",
    "sensor": "benchmarks.sensor_cost",
    "parse_time": "benchmarks.parse_time",
    "throughput": "benchmarks.throughput",
    "phase3_backpressure": "benchmarks.phase3_backpressure",
    "phase3_checkpoints": "benchmarks.phase3_checkpoints",
    "recovery": "benchmarks.recovery",
    "phase5": "benchmarks.phase5",
    "phase5_tm_kill": "benchmarks.phase5_tm_kill",
    "scale": "benchmarks.scale",
}
"""Name (for ``--only``/``--skip``) -> module with ``run(opts) -> BenchResult``, in run order."""

NO_STACK = frozenset({"parse_time", "scale"})
"""Benchmarks that run without the local stack."""

REPEATABLE = ("pyflink_submit", "sql_submit")
"""The submission benchmarks ``--repeat-runs`` runs several times (their ratios judged on the median)."""

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    return names


def _rates(text: str) -> list[int]:
    try:
        rates = [int(float(item)) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"rates must be comma-separated numbers, got {text!r}") from None
    if not rates or any(rate <= 0 for rate in rates):
        raise argparse.ArgumentTypeError(f"rates must be positive, got {text!r}")
    return sorted(rates)


def _sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(item) for item in text.split(",") if item.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes must be comma-separated integers, got {text!r}") from None
    if not sizes or sizes[0] <= 0:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return sizes


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    sel = p.add_argument_group("selection")
    sel.add_argument("--only", type=_names, default=None, help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    sel.add_argument("--skip", type=_names, default=[], help="comma-separated benchmarks to leave out")
    sel.add_argument(
        "--quick", action="store_true", help="small sizes and 2 repeats, for development (figures are not reportable)"
    )
    out = p.add_argument_group("output")
    out.add_argument(
        "--out", type=Path, default=None, help="JSON result file (default benchmarks/results/bench-<time>.json)"
    )
    out.add_argument("--plot", type=Path, default=None, help="throughput/latency PNG (default beside the JSON file)")
    out.add_argument("--strict", action="store_true", help="exit 1 when a target is missed (default: only on errors)")

    sub = p.add_argument_group("submission (1, 2)")
    sub.add_argument("--repeats", type=_positive_int, default=5, help="measured runs per method (default 5)")
    sub.add_argument(
        "--repeat-runs",
        type=_positive_int,
        default=1,
        help="run the submission benchmarks this many times; each ratio is then the median, with its spread",
    )
    sub.add_argument("--warmup", type=int, default=1, help="discarded runs per method first (default 1)")
    sub.add_argument("--poll-interval", type=float, default=0.2, help="seconds between job-state polls, all methods")
    sub.add_argument("--submit-timeout", type=float, default=180, help="seconds one submission may take")
    sub.add_argument(
        "--pyflink-job",
        default=None,
        help="PyFlink job: preset 'datagen' (default, benchmarks/jobs/pyflink_datagen.py), 'orders_enrichment' "
        "(include/pyflink/orders_enrichment/v1.py with fresh topics) or a job file",
    )
    sub.add_argument(
        "--pyflink-arg",
        action="append",
        default=[],
        help="program argument for a job file (repeatable; {name} becomes the unique job name): --pyflink-arg={name}",
    )
    sub.add_argument("--sql-script", default=None, help="SQL script (default: the phase-0 scenario, see README)")
    sub.add_argument("--sql-param", action="append", default=[], help="KEY=VALUE for the script's Jinja params")

    sen = p.add_argument_group("sensor (3)")
    sen.add_argument("--sensor-seconds", type=float, default=30, help="how long each mode watches the job")
    sen.add_argument("--sensor-interval", type=float, default=2, help="poke/poll interval in seconds")

    par = p.add_argument_group("parse time (4)")
    par.add_argument("--dags-folder", type=Path, default=None, help="DAG folder (default dags/)")
    par.add_argument("--parse-repeats", type=_positive_int, default=5, help="parses per file (fresh fork each)")

    thr = p.add_argument_group("throughput (5)")
    # A backlog that drains in ~10 s: 200k events drained in 2.5 s, mostly the new job's warm-up (78k/s
    # against 177k/s steady with 2M), which understated the job's rate.
    thr.add_argument("--events", type=_positive_int, default=1_000_000, help="events in the backlog runs")
    thr.add_argument("--load-events", type=_positive_int, default=50_000, help="events the load script produces")
    thr.add_argument("--load-timeout", type=float, default=120, help="seconds the load script may run")
    thr.add_argument(
        "--rates",
        type=_rates,
        default=[1000, 5000, 10000, 20000, 40000, 80000, 120000, 160000, 240000],
        help="input rates",
    )
    thr.add_argument("--rate-seconds", type=float, default=10, help="seconds at each input rate")

    rec = p.add_argument_group("recovery (6): kills the TaskManager, lead only")
    rec.add_argument("--recovery-rate", type=_positive_int, default=2000, help="input events/s during recovery")
    rec.add_argument("--checkpoint-interval", type=float, default=2, help="seconds between checkpoints")
    rec.add_argument("--recovery-timeout", type=float, default=240, help="seconds to wait for recovery")
    rec.add_argument(
        "--recovery-dry-run",
        action="store_true",
        help="everything but the kill: checks the exactly-once job and the event accounting (safe on a shared cluster)",
    )
    rec.add_argument(
        "--force-recovery", action="store_true", help="kill the TaskManager even though other jobs run on the cluster"
    )
    sca = p.add_argument_group("scale (issue 15): N triggers in one loop, shared vs per-trigger polling")
    sca.add_argument(
        "--scale-sizes", type=_sizes, default=[10, 100, 1000], help="numbers of triggers (default 10,100,1000)"
    )
    sca.add_argument(
        "--scale-poll", type=float, default=30, help="poll interval of the fake-server runs (default 30 s)"
    )
    sca.add_argument(
        "--scale-seconds",
        type=float,
        default=120,
        help="seconds each fake-server run lasts (1800 for the 30-minute figure)",
    )
    sca.add_argument(
        "--scale-real-triggers", type=int, default=50, help="triggers against the real JobManager (0: skip)"
    )
    sca.add_argument("--scale-real-poll", type=float, default=5, help="their poll interval (default 5 s)")
    sca.add_argument("--scale-real-seconds", type=float, default=45, help="seconds each real-JobManager run lasts")
    return p


QUICK = {
    "repeats": 2,
    "warmup": 0,
    "sensor_seconds": 10,
    "parse_repeats": 2,
    "events": 20_000,
    "load_events": 5_000,
    "rates": [1000, 5000],
    "rate_seconds": 5,
    "scale_sizes": [10, 100],
    "scale_poll": 5,
    "scale_seconds": 30,
    "scale_real_seconds": 20,
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line, applying ``--quick`` to every size left at its default.

    :param argv: arguments (default ``sys.argv[1:]``).
    """
    p = parser()
    opts = p.parse_args(argv)
    if opts.quick:
        for key, value in QUICK.items():
            if getattr(opts, key) == p.get_default(key):
                setattr(opts, key, value)
    selected = opts.only or list(BENCHMARKS)
    opts.selected = [name for name in BENCHMARKS if name in selected and name not in opts.skip]
    return opts


def run_one(name: str, opts: argparse.Namespace) -> BenchResult:
    """Run one benchmark; an exception becomes an ``error`` result, and its jobs are cancelled.

    :param name: the benchmark.
    :param opts: the parsed command line.
    """
    from benchmarks import env

    began = time.monotonic()
    say(f"[bench] {name} ...")
    try:
        result: BenchResult = importlib.import_module(BENCHMARKS[name]).run(opts)
    except Exception as error:
        result = BenchResult(name, name, status="error", error=f"{type(error).__name__}: {error}")
        result.notes.append(traceback.format_exc(limit=8))
    finally:
        cancelled = env.JOBS.cancel_all()
    if cancelled:
        result.notes.append(f"cancelled {len(cancelled)} leftover job(s): {', '.join(cancelled)}")
    result.seconds = round(time.monotonic() - began, 1)
    say(f"[bench] {name}: {result.status} in {result.seconds:.0f}s")
    return result


def render_tables(results: Sequence[BenchResult]) -> str:
    """The tables some benchmarks keep in their profile (``profile["table"]``: the scale table, the parse-time
    table), each under its benchmark's name, printed after the figures.

    :param results: the benchmarks' results, in run order.
    """
    return "\n\n".join(
        f"[bench] {result.name}:\n{result.profile['table']}" for result in results if result.profile.get("table")
    )


def stack_problems() -> list[str]:
    """What is missing from the local stack for the benchmarks (empty when all is up)."""
    from benchmarks import env

    return env.stack_problems()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the selected benchmarks, write the JSON file (and plot), print the table.

    :param argv: command-line arguments.
    """
    opts = parse_args(argv)
    from benchmarks import env

    for key, value in env.airflow_connections().items():
        os.environ.setdefault(key, value)
    problems = stack_problems() if set(opts.selected) - NO_STACK else []
    if problems:
        print("[bench] the local stack is not up (`make stack-up`): " + "; ".join(problems), file=sys.stderr)
        return 2
    started = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
    opts.out = opts.out or RESULTS_DIR / f"bench-{stamp}.json"
    opts.plot = opts.plot or opts.out.with_suffix(".png")
    machine = machine_info()
    signal.signal(signal.SIGTERM, _interrupt)
    results: list[BenchResult] = []
    task_log = redirect_stdout_to(opts.out.with_suffix(".log"))
    say(f"[bench] run {env.RUN_ID}: {', '.join(opts.selected)}{' (quick sizes)' if opts.quick else ''}")
    say(f"[bench] task logs: {task_log}")
    try:
        for name in opts.selected:
            if name in REPEATABLE and opts.repeat_runs > 1:
                results.append(combine_repeats([run_one(name, opts) for _ in range(opts.repeat_runs)]))
            else:
                results.append(run_one(name, opts))
    except KeyboardInterrupt:
        print("[bench] interrupted: cancelling this run's jobs", file=sys.stderr, flush=True)
        env.JOBS.cancel_all()
        raise
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(opts).items()}
    report = build_report(results, settings=settings, started=started, machine=machine)
    path = write_json(opts.out, report)
    write_json(RESULTS_DIR / "latest.json", report)
    say("")
    say(render_table(results))
    say("")
    tables = render_tables(results)
    if tables:
        say(tables)
        say("")
    for result in results:
        if result.status != "ok":
            say(f"[bench] {result.name} {result.status}: {(result.error or '')[:800]}")
    summary = report["summary"]
    say(
        f"[bench] {summary['targets_met']} target(s) met, {summary['targets_missed']} missed, "
        f"{summary['targets_unmeasured']} not measured; {len(summary['errors'])} error(s). "
        f"{report['duration_s']:.0f}s. JSON: {path}",
    )
    if summary["errors"]:
        return 1
    return 1 if opts.strict and summary["targets_missed"] else 0


if __name__ == "__main__":
    sys.exit(main())
