"""Phase 5 benchmark: the Kafka -> Flink -> Iceberg pipeline on the real stack.

Figures (ratios where they make sense):

- submit -> first Iceberg commit, against the checkpoint interval (a commit can only follow a checkpoint);
- sustained events/s into Iceberg at parallelism 1 and 2, against the same job writing to Kafka topics, in
  one run on the same pre-produced topic (bounded at the dataset's end offsets: the rate is deliveries over
  the time from RUNNING to FINISHED);
- the state a checkpoint holds with the event-time temporal join vs the naive regular join;
- the acceptance check's time (reference + pyiceberg reads + gateway query) for the dataset size.

Size: ``PHASE5_BENCH_SIZE`` (default ``M``; ``S`` for a quick look).
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from typing import Any

from flink_lessons.load.kafka import Kafka
from flink_lessons.phase5 import acceptance, dataset, pipeline, readers
from flink_lessons.phase5.params import TABLES, IcebergCatalog, PipelineParams
from flink_lessons.phase5.settings import JOB
from flink_lessons.phase5.sql import naive_script, pipeline_script

from benchmarks.core import BenchResult

CHECKPOINT_MS = 5_000
PARTITIONS = 2


def _bounded_run(cluster: pipeline.Cluster, params: PipelineParams, deliveries: int) -> dict[str, float]:
    """Submit a bounded job over the pre-produced topic; time it from RUNNING to FINISHED."""
    submitted = time.time()
    job = cluster.submit_one(pipeline_script(params))
    cluster.wait_for(job, "RUNNING", timeout=600)
    running = time.monotonic()
    cluster.wait_for(job, "FINISHED", timeout=3600)
    seconds = time.monotonic() - running
    return {"job": job, "submitted_ms": submitted * 1000, "seconds": seconds, "events_per_s": deliveries / seconds}


def _state_after_consuming(cluster: pipeline.Cluster, script: str, params: PipelineParams, ends: Any) -> int:
    """Run an unbounded job until its offsets are committed, wait for one more checkpoint, return its state."""
    job = cluster.submit_one(script)
    cluster.wait_for(job, "RUNNING", timeout=600)
    cluster.until(lambda: pipeline.consumed(cluster.kafka, params, ends), 1800, f"{params.job_name} to consume")
    first = readers.checkpoint_sizes(job)["checkpoint_id"]
    cluster.until(lambda: readers.checkpoint_sizes(job)["checkpoint_id"] > first, 120, "one more checkpoint")
    size = readers.checkpoint_sizes(job)["state_size"]
    cluster.rest.cancel_job(job)
    return size


def run(opts: argparse.Namespace) -> BenchResult:
    """Measure; see the module docstring.

    :param opts: the bench runner's options (unused: the size comes from ``PHASE5_BENCH_SIZE``).
    """
    result = BenchResult("phase5", "Phase 5: Kafka -> Flink -> Iceberg")
    size = os.environ.get("PHASE5_BENCH_SIZE", "M")
    tag = uuid.uuid4().hex[:8]
    catalog = IcebergCatalog.from_env()
    kafka = Kafka.from_connection("kafka_default")
    began = time.monotonic()
    data = dataset.generate(size)
    result.figure("generate_s", round(time.monotonic() - began, 1), "s")
    orders, products = f"p5b-orders-{tag}", f"p5b-products-{tag}"
    production = dataset.produce(data, kafka=kafka, orders_topic=orders, products_topic=products,
                                 partitions=PARTITIONS, progress=None)  # fmt: skip
    ends = production.end_offsets[orders]
    deliveries = len(data.deliveries)
    result.figure("deliveries", deliveries, "events")
    result.figure("produce_events_per_s", round(production.records / production.seconds), "events/s")
    databases: list[str] = []

    def params(name: str, **overrides: Any) -> PipelineParams:
        return PipelineParams(orders, products, kafka.bootstrap_servers, catalog, database=f"p5b_{name}_{tag}",
                              job_name=f"{JOB}@bench-{name}#{tag}", checkpoint_interval_ms=CHECKPOINT_MS,
                              **overrides)  # fmt: skip

    with pipeline.Cluster(kafka) as cluster:
        try:
            rates: dict[str, float] = {}
            for name, parallelism, sinks in (("iceberg_p1", 1, False), ("iceberg_p2", 2, False), ("kafka_p1", 1, True)):
                outputs = {t: f"p5b-{name}-{t}-{tag}" for t in TABLES} if sinks else None
                p = params(name, parallelism=parallelism, end_offsets=ends, output_topics=outputs)
                if not sinks:
                    databases.append(p.database)
                    pipeline.setup(cluster, catalog, p.database)
                timing = _bounded_run(cluster, p, deliveries)
                rates[name] = timing["events_per_s"]
                result.figure(f"{name}_events_per_s", round(timing["events_per_s"]), "events/s")
                if name == "iceberg_p1":
                    first = readers.first_commit_ms(catalog, p.database, "orders_enriched")
                    if first is not None:
                        latency = (first - timing["submitted_ms"]) / 1000
                        result.figure("submit_to_first_commit_s", round(latency, 1), "s")
                        result.figure(
                            "first_commit_vs_checkpoint_interval", round(latency * 1000 / CHECKPOINT_MS, 2), "x"
                        )
                    began = time.monotonic()
                    report = acceptance.check(p, dataset.manifest(data), raise_on_failure=False)
                    result.figure("acceptance_s", round(time.monotonic() - began, 1), "s")
                    result.figure("acceptance_passed", report.passed)
                    result.samples["acceptance_table"] = report.table()
                    result.samples["table_stats"] = readers.table_stats(catalog, p.database)
            result.figure("iceberg_vs_kafka_p1", round(rates["iceberg_p1"] / rates["kafka_p1"], 2), "x")
            result.figure("iceberg_p2_vs_p1", round(rates["iceberg_p2"] / rates["iceberg_p1"], 2), "x")

            temporal = params("state_temporal")
            databases.append(temporal.database)
            pipeline.setup(cluster, catalog, temporal.database)
            naive = params("state_naive")
            result.figure("state_temporal_join_bytes", _state_after_consuming(cluster, pipeline_script(temporal),
                                                                              temporal, ends), "B")  # fmt: skip
            result.figure(
                "state_regular_join_bytes", _state_after_consuming(cluster, naive_script(naive), naive, ends), "B"
            )
        finally:
            cluster.close()
            for database in databases:
                pipeline.drop_database(cluster, catalog, database)
            kafka.delete_topics([orders, products, *(f"p5b-kafka_p1-{t}-{tag}" for t in TABLES)])
    result.notes.append(f"size {size}: {deliveries:,} deliveries on {PARTITIONS} partitions, checkpoints every "
                        f"{CHECKPOINT_MS} ms; the shared 2-core machine runs other work meanwhile")  # fmt: skip
    return result
