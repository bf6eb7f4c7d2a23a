"""Phase 5 exactly-once under failure: kill the TaskManager mid-run, the Iceberg tables still match exactly.

On the private stack (:mod:`benchmarks.phase5_stack`, ``.stack-obs``, ports +5000; never the shared one), each
run:

1. creates its topics and tables, submits the pipeline bounded at the dataset's end offsets (checkpoints every
   2 s, so Iceberg commits every 2 s) and produces the dataset at a limited rate while the job runs;
2. once two checkpoints have completed (so Iceberg has committed) and records are still arriving, SIGKILLs the
   TaskManager (a crash: no savepoint, no flush) and starts a new one through ``stack/cli.py up``;
3. waits for the job to run again and finish, then runs the acceptance: every table against the reference
   computed in Python from the dataset, rows lost and rows written twice counted per table.

Figures per run: acceptance passed, rows lost, rows duplicated, restarts, kill -> RUNNING again, the run's
time. ``PHASE5_TM_KILL_RUNS`` runs (default 3) in a row; ``PHASE5_TM_KILL_SIZE`` (default ``S``).
``python -m benchmarks.phase5_tm_kill`` runs it alone.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import uuid
from typing import Any

from flink_lessons.load.kafka import Kafka
from flink_lessons.phase5 import acceptance, dataset, pipeline
from flink_lessons.phase5.params import IcebergCatalog, PipelineParams
from flink_lessons.phase5.settings import JOB
from flink_lessons.phase5.sql import pipeline_script

from benchmarks.core import BenchResult
from benchmarks.phase5_stack import PrivateStack

CHECKPOINT_MS = 2_000
PARTITIONS = 2
RATE = 200
"""Order records per second while the job runs: size S takes about 50 s, long enough to kill mid-run."""
RESTARTS = {"restart-strategy.type": "fixed-delay", "restart-strategy.fixed-delay.attempts": "1000",
            "restart-strategy.fixed-delay.delay": "5 s"}  # fmt: skip
"""The stack's exponential-delay strategy gives up after 10 attempts (about 100 s): on a loaded machine the new
TaskManager took longer, and the job FAILED with NoResourceAvailableException (not a delivery problem). A
production job needs a strategy that outlasts a TaskManager's replacement too."""


def _losses(report: acceptance.Report) -> dict[str, int]:
    """Rows missing and rows written twice or more, summed over the tables (from the acceptance's own checks)."""
    return {
        "lost": sum(int(c.actual) for c in report.checks if c.name.endswith(" missing")),
        "duplicated": sum(int(c.actual) for c in report.checks if c.name.endswith(" written twice or more")),
    }


def one_run(stack: PrivateStack, data: dataset.Dataset, run: int) -> dict[str, Any]:
    """One kill-and-check run; see the module docstring. Its jobs are cancelled, tables and topics dropped.

    :param stack: the private stack, up, with this process's environment pointing at it.
    :param data: the dataset.
    :param run: the run's number (in names only).
    """
    tag = f"{uuid.uuid4().hex[:6]}r{run}"
    catalog = IcebergCatalog.from_env()
    kafka = Kafka.from_connection("kafka_default")
    params = PipelineParams(f"p5k-orders-{tag}", f"p5k-products-{tag}", kafka.bootstrap_servers, catalog,
                            database=f"p5k_{tag}", job_name=f"{JOB}@tm-kill#{tag}",
                            checkpoint_interval_ms=CHECKPOINT_MS,
                            end_offsets=pipeline.expected_end_offsets(data, PARTITIONS),
                            products_end_offset=len(data.versions), extra=RESTARTS)  # fmt: skip
    began = time.monotonic()
    out: dict[str, Any] = {"run": run, "tag": tag}
    with pipeline.Cluster(kafka) as cluster:
        try:
            pipeline.setup(cluster, catalog, params.database)
            dataset.ensure_topics(kafka, params.orders_topic, params.products_topic, PARTITIONS)
            job = cluster.submit_one(pipeline_script(params))
            cluster.wait_for(job, "RUNNING", timeout=600)
            produced: dict[str, Any] = {}

            def produce() -> None:
                try:
                    produced["done"] = dataset.produce(data, kafka=kafka, orders_topic=params.orders_topic,
                                                       products_topic=params.products_topic, partitions=PARTITIONS,
                                                       rate=RATE, progress=None)  # fmt: skip
                except Exception as err:  # re-raised below, in the bench's thread
                    produced["error"] = err

            producer = threading.Thread(target=produce, daemon=True)
            producer.start()
            # Mid-run: a checkpoint completed (Iceberg committed, offsets recorded) while records still arrive.
            cluster.until(lambda: _completed_checkpoints(cluster, job) >= 2 or not producer.is_alive(), 600,
                          "two completed checkpoints")  # fmt: skip
            out["killed_while_producing"] = producer.is_alive()
            killed_at = time.monotonic()
            out["killed_pids"] = stack.kill_taskmanager()
            out["tm_loss_noticed_s"] = round(stack.replace_taskmanager(), 1)
            # Not the provider's wait: it rightly fails a job whose newest failure is "no slots", which is what
            # this job's restart attempts report until the new TaskManager registers.
            cluster.until(lambda: _running_again(cluster, job), 900, "the job to run again on the new TaskManager")
            out["kill_to_running_s"] = round(time.monotonic() - killed_at, 1)
            producer.join(timeout=1800)
            if "error" in produced:
                raise produced["error"]
            cluster.wait_for(job, "FINISHED", timeout=1800)
            history = cluster.rest.get_exceptions(job).get("exceptionHistory") or {}
            out["restarts"] = len(history.get("entries") or [])  # each failure restarted the job
            report = acceptance.check(params, dataset.manifest(data), raise_on_failure=False)
            out.update(passed=report.passed, **_losses(report), checks=len(report.checks), table=report.table())
            if not report.passed:
                out["diff"] = report.diff()
        finally:
            cluster.close()
            pipeline.drop_database(cluster, catalog, params.database)
            kafka.delete_topics([params.orders_topic, params.products_topic])
    out["run_s"] = round(time.monotonic() - began, 1)
    return out


def _completed_checkpoints(cluster: pipeline.Cluster, job: str) -> int:
    return int(cluster.rest.get_checkpoints(job).get("counts", {}).get("completed", 0))


def _running_again(cluster: pipeline.Cluster, job: str) -> bool:
    """Whether every task of the job runs again (or the job has already finished)."""
    detail = cluster.rest.get_job(job)
    if detail["state"] == "FINISHED":
        return True
    return detail["state"] == "RUNNING" and all(v["status"] in ("RUNNING", "FINISHED") for v in detail["vertices"])


def run(opts: argparse.Namespace | None = None) -> BenchResult:
    """Bring the private stack up, do the runs, take it down if it was down; see the module docstring.

    :param opts: the bench runner's options (unused: ``PHASE5_TM_KILL_RUNS``, ``PHASE5_TM_KILL_SIZE``).
    """
    result = BenchResult("phase5_tm_kill", "Phase 5: TaskManager killed mid-run, Iceberg exactly once")
    runs = int(os.environ.get("PHASE5_TM_KILL_RUNS", "3"))
    data = dataset.generate(os.environ.get("PHASE5_TM_KILL_SIZE", "S"))
    stack = PrivateStack()
    stack.up()
    outcomes: list[dict[str, Any]] = []
    try:
        with stack.environment():
            for number in range(1, runs + 1):
                outcome = one_run(stack, data, number)
                outcomes.append(outcome)
                print(json.dumps({k: v for k, v in outcome.items() if k != "table"}), flush=True)
    finally:
        stack.down()
    in_a_row = 0
    for outcome in outcomes:
        in_a_row = in_a_row + 1 if outcome["passed"] and outcome["killed_while_producing"] else 0
    result.figure("runs", len(outcomes))
    result.figure("passed_in_a_row", in_a_row)
    result.figure("rows_lost", sum(o["lost"] for o in outcomes), "rows")
    result.figure("rows_duplicated", sum(o["duplicated"] for o in outcomes), "rows")
    for outcome in outcomes:
        n = outcome["run"]
        result.figure(f"run{n}_passed", outcome["passed"])
        result.figure(f"run{n}_restarts", outcome["restarts"])
        result.figure(f"run{n}_kill_to_running_s", outcome["kill_to_running_s"], "s")
        result.figure(f"run{n}_s", outcome["run_s"], "s")
    result.samples["runs"] = outcomes
    result.notes.append(f"size {data.size.name}: {len(data.deliveries):,} deliveries at {RATE}/s on {PARTITIONS} "
                        f"partitions, checkpoints every {CHECKPOINT_MS} ms; TaskManager SIGKILLed after the first "
                        "Iceberg commit, a new one started by stack/cli.py up")  # fmt: skip
    if in_a_row < runs:
        result.status = "error"
        result.error = f"{in_a_row} of {runs} runs passed in a row"
    return result


if __name__ == "__main__":
    bench = run()
    print(json.dumps({"figures": bench.figures, "status": bench.status, "error": bench.error}, indent=1, default=str))
