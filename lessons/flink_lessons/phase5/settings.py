"""The Variable ``flink_phase5`` of the phase 5 DAGs, and the :class:`~flink_lessons.phase5.params.PipelineParams`
a validated run builds from it (one :class:`~flink_lessons.settings.Family`, like the other lessons).

Topics get the run tag (``phase5-orders-<8 hex>``), so each run of ``flink_phase5_pipeline`` replays the
dataset into topics of its own; the Iceberg tables are the same from run to run (``reset`` empties them first,
so the acceptance compares one replay of the dataset with its reference).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from flink_lessons.job_names import JobName
from flink_lessons.phase5.dataset import SIZES
from flink_lessons.phase5.params import IDENTIFIER, IcebergCatalog, PipelineParams
from flink_lessons.rules import CONN_ID, Boolean, Bootstrap, Choice, DurationRule, Integer, Name, Number, Topic
from flink_lessons.settings import Family, Key, Problem, Settings

JOB = "phase5_lakehouse"
"""The ``<job>`` of the pipeline's Flink job name (``phase5_lakehouse@pipeline#<run tag>``)."""
RUN_TAG_LENGTH = 9


def _pipeline_rules(values: Mapping[str, Any]) -> Iterator[Problem]:
    parallelism, partitions = values.get("parallelism"), values.get("partitions")
    if parallelism is not None and partitions is not None and partitions < parallelism:
        yield Problem(("partitions", "parallelism"), f"the orders topic needs at least one partition per source "
                      f"subtask: partitions ({partitions}) < parallelism ({parallelism})")  # fmt: skip
    window = values.get("window")
    if window is not None and 86_400_000 % window.ms:
        yield Problem(("window",), f"window ({window.text}) must divide a day: windows align to midnight UTC")


PHASE5 = Family(
    variable="flink_phase5",
    title="Phase 5: Kafka orders -> Flink enrichment and windows -> Iceberg",
    keys=(
        Key(
            "topics.orders",
            "phase5-orders",
            Topic(reserve=RUN_TAG_LENGTH),
            "Order deliveries (JSON, key = customer id); the run tag is appended.",
        ),
        Key(
            "topics.products",
            "phase5-products",
            Topic(reserve=RUN_TAG_LENGTH),
            "Product versions (compacted, key = product id), the temporal join's dimension; the run tag is appended.",
        ),
        Key(
            "database",
            "phase5",
            Name("a lower-case SQL identifier", IDENTIFIER.pattern.strip("^$")),
            "The Iceberg namespace of the four tables in the stack's catalog (FLINK_STACK_ICEBERG_*).",
        ),
        Key(
            "reset",
            True,
            Boolean(),
            "Drop the four tables first, so they hold exactly this run's replay of the dataset.",
        ),
        Key("dataset.size", "S", Choice(*SIZES), "The dataset: XS (400 orders), S (10k) or M (1M)."),
        Key("dataset.seed", 7, Integer(0), "The dataset's random seed: the same seed and size give the same records."),
        Key(
            "dataset.rate",
            None,
            Number(1),
            "Orders per second to produce at; null: as fast as Kafka takes them.",
            nullable=True,
        ),
        Key("window", "60s", DurationRule(1000), "The tumbling window of category_windows."),
        Key(
            "watermark_delay",
            "5s",
            DurationRule(1000),
            "Bounded out-of-orderness, and the lateness rule: a delivery received this long after its event "
            "time or later goes to late_orders.",
        ),
        Key("parallelism", 1, Integer(1), "The job's parallelism."),
        Key("partitions", 1, Integer(1), "Partitions of the orders topic (at least the parallelism)."),
        Key(
            "checkpoint_interval",
            "10s",
            DurationRule(1000),
            "Checkpoints, and so Iceberg commits, this often (exactly once: files are committed per checkpoint).",
        ),
        Key(
            "bounded",
            True,
            Boolean(),
            "Stop the job at the dataset's last offsets (then the run waits for FINISHED); false: the job "
            "runs on after the health gate.",
        ),
        Key("wait_timeout", "15m", DurationRule(1000), "How long the run waits for the job to finish."),
        Key("kafka_conn_id", "kafka_default", CONN_ID, "Airflow Kafka connection for topics and production."),
        Key(
            "flink_bootstrap_servers",
            None,
            Bootstrap(),
            "Kafka bootstrap servers as Flink reaches them; null: the Kafka connection's bootstrap.servers.",
            nullable=True,
        ),
    ),
    checks=(_pipeline_rules,),
    bootstrap_key="flink_bootstrap_servers",
)


def pipeline_params(settings: Settings, catalog: IcebergCatalog, **overrides: Any) -> PipelineParams:
    """The pipeline's parameters for one run.

    :param settings: the run's validated settings (:func:`flink_lessons.settings.resolve` with :data:`PHASE5`).
    :param catalog: the Iceberg catalog (:meth:`IcebergCatalog.from_env`).
    :param overrides: more :class:`PipelineParams` fields (``end_offsets``...).
    """
    assert settings.bootstrap_servers is not None
    topics = settings.topics
    return PipelineParams(
        orders_topic=topics["orders"],
        products_topic=topics["products"],
        bootstrap_servers=settings.bootstrap_servers,
        catalog=catalog,
        database=settings["database"],
        job_name=str(JobName(JOB, "pipeline", settings.tag or None)),
        window_ms=settings.duration("window").ms,
        watermark_delay_ms=settings.duration("watermark_delay").ms,
        parallelism=settings["parallelism"],
        checkpoint_interval_ms=settings.duration("checkpoint_interval").ms,
        **overrides,
    )
