"""Phase 3, lesson 3 at full size: every tuning variant side by side over a bigger backlog.

The same code as the DAG ``flink_phase3_backpressure`` (``flink_lessons.phase3.backpressure``): the load
command writes the backlog, one bounded job per variant runs at once, the unchained job's backpressure is
sampled through the provider's hook while they drain it, a tail at a light rate gives the latency, and the
report judges the same relations. Figures: throughput (events/s) and latency p50/p99 (ms) per variant; the
table and the PNG go to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import time
import uuid
from dataclasses import replace
from pathlib import Path

from benchmarks import gateway
from benchmarks.core import BenchResult

RESULTS = Path(__file__).resolve().parent / "results"
BACKLOG, TAIL, TAIL_RATE = 15_000, 1_000, 50.0
"""The full size (the DAG test runs 3 000 events and three variants)."""


def run(opts: argparse.Namespace) -> BenchResult:
    """Measure; see the module docstring.

    :param opts: the bench runner's options (unused).
    """
    from flink_lessons.load.kafka import Kafka
    from flink_lessons.phase3.backpressure import (
        VARIANTS,
        Params,
        judge,
        output_figures,
        plot,
        prepare,
        run_sweep,
        scripts,
        task_shares,
    )
    from flink_lessons.phase3.report import table_lines
    from flink_lessons.waiting import wait_for

    from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

    result = BenchResult("phase3_backpressure", "Phase 3 lesson 3: tuning variants side by side")
    params = replace(Params(), variants=tuple(VARIANTS), backlog_events=BACKLOG, tail_events=TAIL, tail_rate=TAIL_RATE)
    tag = uuid.uuid4().hex[:8]
    kafka, flink = Kafka.from_connection("kafka_default"), FlinkRestHook("flink_default")
    prepared = prepare(params, kafka, tag)
    names = prepared["topics"]
    try:
        texts = scripts(params, names, kafka.bootstrap_servers, tag)
        jobs = {name: gateway.submit(text)[0] for name, text in zip(params.variants, texts, strict=True)}
        began = time.monotonic()
        sweep = run_sweep(params, kafka, flink, names, jobs)
        wait_for("every variant's job FINISHED",
                 lambda: all(flink.get_job_state(j) == "FINISHED" for j in jobs.values()), params.timeout)  # fmt: skip
        outputs = {n: output_figures(params, [(r.value, r.timestamp) for r in kafka.read(names[n])])
                   for n in params.variants}  # fmt: skip
        report = judge(params, sweep, outputs, task_shares(flink, jobs["unchained"]), None)
        table = report.tables["sweep (all variants ran at once, on the same machine)"]
        path = plot(table, RESULTS / "phase3_backpressure.png")
        (RESULTS / "phase3_backpressure.txt").write_text(report.render() + "\n")
        result.seconds = round(time.monotonic() - began, 1)
        for row in table:
            result.figure(f"{row['variant']}_events_per_s", row["throughput (events/s)"], "events/s")
            result.figure(f"{row['variant']}_latency_p50_ms", row["latency p50 (ms)"], "ms")
            result.figure(f"{row['variant']}_latency_p99_ms", row["latency p99 (ms)"], "ms")
        result.samples["report"] = report.to_json()
        result.notes += [*table_lines(table), f"plot: {path}"]
        result.notes += [f"FAILED: {c.text}" for c in report.failed()]
    finally:
        kafka.delete_topics(names.values())
    return result
