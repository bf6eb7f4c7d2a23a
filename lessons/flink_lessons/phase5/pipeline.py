"""Run the phase 5 pipeline outside Airflow: for the tests, the benchmarks and a reader at the command line.

A DAG does the same with the provider: ``FlinkSqlGatewayOperator(sql=setup_script(...))``, then
``FlinkSqlGatewayOperator(sql=pipeline_script(...))`` and its sensors. Here the lessons' own
:class:`~flink_lessons.phase3.cluster.Cluster` submits through the same hooks and remembers the jobs it started.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

from flink_lessons.load.kafka import Kafka
from flink_lessons.load.partitioner import partition_for
from flink_lessons.phase3.cluster import Cluster
from flink_lessons.phase5.dataset import Dataset
from flink_lessons.phase5.params import IcebergCatalog, PipelineParams
from flink_lessons.phase5.sql import setup_script, teardown_script


def expected_end_offsets(dataset: Dataset, partitions: int) -> dict[int, int]:
    """The orders topic's end offsets once a fresh topic holds the dataset: deliveries per partition, as Kafka's
    partitioner places them by key. A bounded job given these offsets stops exactly at the dataset's end, even
    when it starts before the data is produced.

    :param dataset: the dataset.
    :param partitions: the orders topic's partitions.
    """
    counts = Counter(partition_for(d.customer_id.encode(), partitions) for d in dataset.deliveries)
    return {p: counts.get(p, 0) for p in range(partitions)}


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
