"""Run the phase 5 pipeline outside Airflow: for the tests, the benchmarks and a reader at the command line.

A DAG does the same with the provider: ``FlinkSqlGatewayOperator(sql=setup_script(...))``, then
``FlinkSqlGatewayOperator(sql=pipeline_script(...))`` and its sensors. Here :class:`Cluster` submits through
the same hooks, waits with the provider's one wait, and cancels the jobs it started when it is closed.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from airflow_flink_provider.hooks.sql_gateway import FlinkSqlGatewayHook
from airflow_flink_provider.protocol.errors import FlinkError
from airflow_flink_provider.protocol.job_state import JobState, JobStateCheck, wait_for_job_state
from airflow_flink_provider.protocol.statements import split_statements
from flink_lessons.load.kafka import Kafka
from flink_lessons.load.partitioner import partition_for
from flink_lessons.phase5.dataset import Dataset
from flink_lessons.phase5.params import IcebergCatalog, PipelineParams
from flink_lessons.phase5.sql import setup_script, teardown_script


class PipelineError(RuntimeError):
    """A phase 5 run could not do what it does (a job failed, a wait ran out): the message says what."""


@dataclass
class Cluster:
    """Flink (REST API and SQL Gateway, by Airflow connection) and Kafka, as one phase 5 run outside Airflow
    uses them; every job it starts is cancelled by :meth:`close` unless it has ended.

    :param kafka: Kafka as the run's clients reach it.
    :param flink_conn_id: the ``flink`` connection.
    :param gateway_conn_id: the ``flink_sql_gateway`` connection.
    :param statement_timeout: seconds one SQL statement may take.
    """

    kafka: Kafka
    flink_conn_id: str = "flink_default"
    gateway_conn_id: str = "flink_sql_gateway_default"
    statement_timeout: float = 300
    started: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rest = FlinkRestHook(self.flink_conn_id)
        self.gateway = FlinkSqlGatewayHook(self.gateway_conn_id)

    def submit(self, script: str) -> list[str]:
        """Run a script in a fresh gateway session; return the ids of the jobs it started.

        :param script: the script.
        """
        session = self.gateway.open_session({}, session_name=f"phase5-{uuid.uuid4().hex[:8]}")
        jobs: list[str] = []
        try:
            for statement in split_statements(script):
                result = self.gateway.run_statement(session, statement.text, timeout=self.statement_timeout)
                if result.job_id:
                    jobs.append(result.job_id)
                    self.started.append(result.job_id)
        finally:
            with contextlib.suppress(FlinkError):
                self.gateway.close_session(session)
        return jobs

    def submit_one(self, script: str) -> str:
        """Like :meth:`submit` for a script that starts exactly one job.

        :param script: the script.
        :raises PipelineError: when it started none or several.
        """
        jobs = self.submit(script)
        if len(jobs) != 1:
            raise PipelineError(f"expected the script to start one job, it started {len(jobs)}: {jobs}")
        return jobs[0]

    def wait_for(self, job_id: str, *states: str, timeout: float = 300) -> str:
        """Wait with the provider's wait until the job is in one of ``states`` (RUNNING: every task running).

        :param job_id: the job.
        :param states: target states.
        :param timeout: seconds.
        :raises PipelineError: the wait ran out.
        """
        verdict = self.rest.run(wait_for_job_state(job_id, JobStateCheck.of(states or ("RUNNING",)),
                                                   timeout=timeout, poll_interval=1))  # fmt: skip
        if verdict.outcome != "reached":
            raise PipelineError(f"job {job_id} did not reach {'/'.join(states)} in {timeout:.0f}s: {verdict.state}")
        return str(verdict.state)

    def state(self, job_id: str) -> str | None:
        """The job's live state, ``None`` when Flink does not know it.

        :param job_id: the job.
        """
        return self.rest.find_job_state(job_id)

    def close(self) -> None:
        """Cancel every job this run started that has not ended, and wait until it has."""
        for job_id in self.started:
            state = self.state(job_id)
            if state is not None and not JobState.parse(state).is_terminal:
                with contextlib.suppress(FlinkError):
                    self.rest.cancel_job(job_id)
                self.until(lambda j=job_id: JobState.parse(self.state(j) or "CANCELED").is_terminal, 120,
                           f"job {job_id} to be cancelled")  # fmt: skip

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def until(predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.5) -> Any:
        """Poll ``predicate`` until it returns something truthy; return that.

        :param predicate: the condition.
        :param timeout: seconds.
        :param what: what is waited for, for the error.
        :param poll: seconds between polls.
        :raises PipelineError: it did not hold in time.
        """
        deadline = time.monotonic() + timeout
        while not (value := predicate()):
            if time.monotonic() > deadline:
                raise PipelineError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(poll)
        return value


def expected_end_offsets(dataset: Dataset, partitions: int) -> dict[int, int]:
    """The orders topic's end offsets once a fresh topic holds the dataset: deliveries per partition, as Kafka's
    partitioner places them by key. A bounded job given these offsets stops exactly at the dataset's end, even
    when it starts before the data is produced.

    :param dataset: the dataset.
    :param partitions: the orders topic's partitions.
    """
    counts = Counter(partition_for(d.customer_id.encode(), partitions) for d in dataset.deliveries)
    return {p: counts.get(p, 0) for p in range(partitions)}


def already_produced(kafka: Kafka, dataset: Dataset, orders_topic: str, products_topic: str, partitions: int) -> bool:
    """Whether the topics already hold exactly this dataset (an earlier try of the run produced it), so that a
    cleared or retried produce step does not write the input twice. Empty topics: ``False``.

    :param kafka: the cluster.
    :param dataset: the dataset.
    :param orders_topic: the orders topic.
    :param products_topic: the products topic (one partition).
    :param partitions: the orders topic's partitions.
    :raises PipelineError: when the topics hold something else (a production cut short, or other data): producing
        again would double part of the input, so the run must start over on fresh topics.
    """
    found = {
        orders_topic: kafka.end_offsets(orders_topic, partitions),
        products_topic: kafka.end_offsets(products_topic, 1),
    }
    if not any(offset for offsets in found.values() for offset in offsets.values()):
        return False
    expected = {orders_topic: expected_end_offsets(dataset, partitions), products_topic: {0: len(dataset.versions)}}
    if found == expected:
        return True
    raise PipelineError(
        f"the topics hold other data than dataset {dataset.size.name} (seed {dataset.seed}): end offsets {found}, "
        f"the dataset's {expected}. Producing it again would double part of the input: delete both topics (or "
        "name new ones in the settings' topics) and run again"
    )


def setup(cluster: Cluster, catalog: IcebergCatalog, database: str) -> None:
    """Create the catalog, database and tables (idempotent).

    :param cluster: the cluster.
    :param catalog: the Iceberg catalog.
    :param database: the namespace.
    """
    cluster.submit(setup_script(catalog, database))


def consumed(kafka: Kafka, params: PipelineParams, end_offsets: Mapping[int, int]) -> bool:
    """Whether the job's consumer group committed the orders topic up to ``end_offsets``: Flink commits its
    offsets when a checkpoint completes, so everything before them is in a completed checkpoint (and, for
    the append tables, in committed Iceberg snapshots once their windows closed).

    :param kafka: the cluster.
    :param params: the pipeline (topic, consumer group).
    :param end_offsets: partition -> offset to reach.
    """
    committed = kafka.group_offsets(params.consumer_group, params.orders_topic)
    return all(committed.get((params.orders_topic, p), -1) >= offset for p, offset in end_offsets.items())


def drop_database(cluster: Cluster, catalog: IcebergCatalog, database: str) -> None:
    """Drop the pipeline's tables and namespace, and what is left of their files in a ``file://`` warehouse.

    :param cluster: the cluster.
    :param catalog: the Iceberg catalog.
    :param database: the namespace.
    """
    cluster.submit(teardown_script(catalog, database))
    warehouse = urlparse(catalog.warehouse)
    if warehouse.scheme == "file":
        root = Path(warehouse.path).resolve()
        folder = (root / database).resolve()
        if folder.is_relative_to(root) and folder != root:
            shutil.rmtree(folder, ignore_errors=True)
