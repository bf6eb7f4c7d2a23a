"""Phase 3 lesson 4 at full size: every checkpoint setting side by side for two minutes.

The same code as the DAG ``flink_phase3_checkpoints``'s ``tuning_sweep`` (``flink_lessons.phase3.checkpoints``):
one keyed aggregation per setting (interval, min pause, timeout, aligned vs unaligned under backpressure, hashmap
vs RocksDB incremental), their checkpoint figures from the REST API, judged by the same relations. It takes one
slot per setting (seven) and kills nothing: the lesson's failure drill, which kills TaskManagers, runs only on a
private stack (``tests/integration/test_phase3_checkpoints.py``); the shared stack's TaskManager-kill benchmark is
``recovery``. The table goes to ``benchmarks/results/phase3_checkpoints.txt``.
"""

from __future__ import annotations

import argparse
import time
import uuid
from dataclasses import replace
from pathlib import Path

from benchmarks.core import BenchResult

RESULTS = Path(__file__).resolve().parent / "results"
SECONDS = 120.0
"""The full size (the DAG test runs five settings for 30 s)."""


def run(opts: argparse.Namespace) -> BenchResult:
    """Measure; see the module docstring.

    :param opts: the bench runner's options (unused).
    """
    from flink_lessons.phase3.checkpoints import SweepParams, judge, run_sweep, table
    from flink_lessons.phase3.failover import gateway_submitter
    from flink_lessons.phase3.report import table_lines

    from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
    from airflow_flink_provider.hooks.sql_gateway import FlinkSqlGatewayHook

    result = BenchResult("phase3_checkpoints", "Phase 3 lesson 4: checkpoint settings side by side")
    params = replace(SweepParams(), seconds=SECONDS)
    began = time.monotonic()
    sweep = run_sweep(params, FlinkRestHook("flink_default"), gateway_submitter(FlinkSqlGatewayHook()),
                      uuid.uuid4().hex[:8])  # fmt: skip
    result.seconds = round(time.monotonic() - began, 1)
    rows = table(params, sweep["figures"])
    checks = judge(params, sweep["figures"])
    RESULTS.mkdir(parents=True, exist_ok=True)
    lines = [*table_lines(rows), "", *(("  " if c.ok else "! ") + c.text for c in checks)]
    (RESULTS / "phase3_checkpoints.txt").write_text("\n".join(lines) + "\n")
    for row in rows:
        result.figure(f"{row['setting']}_duration_p50_ms", row["duration_p50_ms"], "ms")
        result.figure(f"{row['setting']}_checkpointed_kb", row["checkpointed_kb"], "kB")
        result.figure(f"{row['setting']}_start_delay_max_ms", row["start_delay_max_ms"], "ms")
    result.samples["table"] = rows
    result.notes += [*table_lines(rows), *(f"FAILED: {c.text}" for c in checks if not c.ok)]
    return result
