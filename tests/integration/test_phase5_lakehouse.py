"""Phase 5 on the real stack: Kafka -> Flink (dedup, temporal join, windows) -> Iceberg, checked against the
reference computed in Python from the dataset; pyiceberg reads the append tables, the gateway the upsert table.

- The streaming job, stopped with ``--drain`` once Kafka's offsets are committed: every window is written,
  the last one included (only the dimension source may go idle: an idle orders source drops the final
  MAX_WATERMARK at drain, FLINK-40499), and every table matches the reference exactly.
- The two DAGs with ``dag.test()``: flink_phase5_pipeline replays size S (bounded at the dataset's end offsets)
  and publishes the tables as Assets; flink_phase5_acceptance, run next, finds that replay in the latest
  Asset event and passes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from flink_lessons.load.kafka import Kafka
from flink_lessons.phase5 import acceptance, dataset, pipeline, readers
from flink_lessons.phase5.params import IcebergCatalog, PipelineParams
from flink_lessons.phase5.pipeline import Cluster
from flink_lessons.phase5.settings import JOB
from flink_lessons.phase5.sql import pipeline_script

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from stack import cli
from tests.integration.test_pyflink_kit import DRIVER, ROOT, DagResult

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def catalog() -> IcebergCatalog:
    """The stack's Iceberg catalog, also exported to the environment (for the DAG runs' workers)."""
    env = cli.iceberg_catalog().env()
    os.environ.update(env)
    return IcebergCatalog.from_env(env)


@pytest.fixture
def run(stack: dict[str, int], catalog: IcebergCatalog) -> Iterator[tuple[Cluster, str]]:
    """The cluster and a fresh tag; afterwards this test's jobs are cancelled, its tables and topics dropped."""
    tag = uuid.uuid4().hex[:8]
    kafka = Kafka.from_bootstrap(f"127.0.0.1:{stack['kafka']}")
    with Cluster(kafka, statement_timeout=300) as cluster:
        yield cluster, tag
        cluster.close()
        for database in (f"p5_{tag}", f"p5dag_{tag}"):
            pipeline.drop_database(cluster, catalog, database)
    kafka.delete_topics([f"p5-{role}-{tag}" for role in ("orders", "products")])


def test_streaming_job_drained_writes_every_window_exactly_once(
    run: tuple[Cluster, str], catalog: IcebergCatalog
) -> None:
    cluster, tag = run
    data = dataset.generate("XS", 11)
    bootstrap = cluster.kafka.bootstrap_servers
    params = PipelineParams(f"p5-orders-{tag}", f"p5-products-{tag}", bootstrap, catalog, database=f"p5_{tag}",
                            job_name=f"{JOB}@drain#{tag}", checkpoint_interval_ms=1000)  # fmt: skip
    pipeline.setup(cluster, catalog, params.database)
    dataset.ensure_topics(cluster.kafka, params.orders_topic, params.products_topic, 2)
    job = cluster.submit_one(pipeline_script(params))
    cluster.wait_for(job, "RUNNING")
    production = dataset.produce(data, kafka=cluster.kafka, orders_topic=params.orders_topic,
                                 products_topic=params.products_topic, partitions=2, progress=None)  # fmt: skip
    ends = production.end_offsets[params.orders_topic]
    assert sum(ends.values()) == len(data.deliveries) and ends == pipeline.expected_end_offsets(data, 2)
    cluster.until(
        lambda: pipeline.consumed(cluster.kafka, params, ends), 180, "the job to commit the dataset's offsets"
    )

    state = readers.checkpoint_sizes(job)
    assert 0 < state["state_size"] < 5_000_000, state  # temporal join and window dedup: bounded state
    FlinkRestHook().stop_with_savepoint(job, drain=True, timeout=180)
    cluster.until(lambda: cluster.state(job) == "FINISHED", 120, "the drained job to finish")

    report = acceptance.check(params, dataset.manifest(data), raise_on_failure=False)
    assert report.passed, f"{report.table()}\n{report.diff()}"
    windows = sorted({w.window_start_ms for w in readers.read_windows(catalog, params.database)})
    expected_last = max(o.event_time_ms for o in report_expected(data, params).enriched.values())
    assert windows[-1] == expected_last - expected_last % params.window_ms  # the last window survived the drain
    stats = readers.table_stats(catalog, params.database)
    assert stats["customer_totals"]["delete_files"] > 0  # upserts: equality deletes, read through Flink
    assert all(stats[t]["snapshots"] >= 1 for t in stats)


def report_expected(data: dataset.Dataset, params: PipelineParams) -> Any:
    from flink_lessons.phase5.reference import Rules, compute

    return compute(data, Rules(params.window_ms, params.watermark_delay_ms))


class Phase5Home:
    """A fresh Airflow home whose DAG folder holds only the two phase 5 DAGs, with the stack's Iceberg catalog
    in the environment and a deadline per run that a loaded 2-core machine can meet."""

    def __init__(self, base: Path) -> None:
        self.home, self.dags = base / "home", base / "dags"
        self.home.mkdir()
        self.dags.mkdir()
        for name in ("phase5_pipeline.py", "phase5_acceptance.py"):
            (self.dags / name).symlink_to(ROOT / "dags" / name)
        self.driver = base / "driver.py"
        self.driver.write_text(DRIVER)
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
        self.env.update({key: value for key, value in os.environ.items() if key.startswith("AIRFLOW_CONN_")})
        self.env.update({"AIRFLOW_HOME": str(self.home), "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
                         "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PYTHONPATH": str(ROOT)})  # fmt: skip
        airflow = str(Path(sys.executable).with_name("airflow"))
        subprocess.run([airflow, "db", "migrate"], env=self.env, check=True, capture_output=True, timeout=600)

    def run(self, dag_id: str, variables: Mapping[str, Any], conf: Mapping[str, Any] | None = None) -> DagResult:
        """``dag.test()`` one run with these Variables and run conf."""
        env = {**self.env, **{f"AIRFLOW_VAR_{name.upper()}": json.dumps(value) for name, value in variables.items()}}
        done = subprocess.run([sys.executable, str(self.driver), dag_id, json.dumps(conf or {})], env=env,
                              capture_output=True, text=True, timeout=1800, check=False)  # fmt: skip
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        assert lines, f"dag.test() printed no result:\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
        return DagResult(dag_id, json.loads(lines[-1][len("RESULT ") :]), done.stdout + done.stderr, self.home)


@pytest.mark.timeout(1800)  # two dag.test() runs in a fresh Airflow home: minutes on a loaded 2-core machine
def test_pipeline_dag_then_acceptance_dag_size_s(
    run: tuple[Cluster, str], catalog: IcebergCatalog, tmp_path: Path
) -> None:
    _cluster, tag = run
    home = Phase5Home(tmp_path)
    variables = {"flink_phase5": {"database": f"p5dag_{tag}", "checkpoint_interval": "2s",
                                  "topics": {"orders": f"p5-orders-{tag}", "products": f"p5-products-{tag}"},
                                  "dataset": {"size": "S"}}}  # fmt: skip
    piped = home.run("flink_phase5_pipeline", variables)
    assert piped.state == "success", piped
    assert piped.states["wait_finished"] == "success" and piped.states["cancel_jobs"] in ("skipped", "success")
    stats = piped.xcom("publish_tables")
    assert (
        stats["orders_enriched"]["data_records"]
        == dataset.manifest(dataset.generate("S"))["expected"]["stats"]["on_time_orders"]
    )

    checked = home.run("flink_phase5_acceptance", variables)
    assert checked.state == "success", checked
    result = checked.xcom("check_tables")
    assert result["passed"] and result["info"]["dataset"]["size"] == "S"
    assert len(result["checks"]) >= 20 and all(c["ok"] for c in result["checks"])


def test_produce_step_rerun_does_not_double_the_input(stack: dict[str, int], catalog: IcebergCatalog) -> None:
    """A cleared or retried produce_dataset (the same run: the same topics) finds the dataset there and writes
    nothing; topics holding anything else fail the step, naming them, before a record is written."""
    from airflow.sdk.exceptions import AirflowFailException
    from flink_lessons.phase5.operators import ProduceDatasetOperator

    tag = uuid.uuid4().hex[:8]
    data = dataset.generate("XS", 11)
    kafka = Kafka.from_bootstrap(f"127.0.0.1:{stack['kafka']}")
    params = PipelineParams(f"p5-orders-{tag}", f"p5-products-{tag}", kafka.bootstrap_servers, catalog,
                            database=f"p5_{tag}", job_name=f"{JOB}@rerun#{tag}")  # fmt: skip
    manifest = {"size": "XS", "seed": 11, "sha256": data.sha256(), "rate": None, "partitions": 2}
    step = ProduceDatasetOperator(task_id="produce_dataset", params_json=params.to_json(), dataset=manifest)
    try:
        dataset.ensure_topics(kafka, params.orders_topic, params.products_topic, 2)
        first = step.execute({})
        ends = {topic: kafka.end_offsets(topic) for topic in (params.orders_topic, params.products_topic)}
        assert first["records"] == len(data.timeline) and not first["already_produced"]
        assert ends[params.orders_topic] == pipeline.expected_end_offsets(data, 2)

        again = step.execute({})  # the clear: same run, same topics
        assert again["already_produced"] and again["records"] == 0
        assert {topic: kafka.end_offsets(topic) for topic in ends} == ends  # not one record more

        bigger = {**manifest, "size": "S", "sha256": dataset.generate("S", 11).sha256()}
        other = ProduceDatasetOperator(task_id="produce_dataset", params_json=params.to_json(), dataset=bigger)
        with pytest.raises(AirflowFailException, match=params.orders_topic):
            other.execute({})  # another dataset in these topics: refused, nothing written
        assert {topic: kafka.end_offsets(topic) for topic in ends} == ends
    finally:
        kafka.delete_topics([params.orders_topic, params.products_topic])
