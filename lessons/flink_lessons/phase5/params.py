"""The phase 5 pipeline's parameters and the Iceberg catalog it writes to, validated before any submission.

A DAG builds :class:`PipelineParams` from its validated Variable (phase B: the settings system) and passes it to
:mod:`~flink_lessons.phase5.sql` and :mod:`~flink_lessons.phase5.acceptance`. Every bad value is a
``ValueError`` naming the parameter, raised when the object is built.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flink_lessons.rules import check_bootstrap, check_topic

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")

TABLES = ("orders_enriched", "category_windows", "customer_totals", "late_orders")
"""The Iceberg tables of the pipeline: three append-only tables and the upsert ``customer_totals``."""
APPEND_TABLES = ("orders_enriched", "category_windows", "late_orders")
UPSERT_TABLES = ("customer_totals",)


@dataclass(frozen=True)
class IcebergCatalog:
    """The Iceberg catalog as both sides open it: Flink (``CREATE CATALOG``) and pyiceberg (``SqlCatalog``).

    :param name: the catalog name; the same on both sides (it is stored in the catalog's own table).
    :param flink_options: the ``WITH`` options of Flink's ``CREATE CATALOG``.
    :param sqlalchemy_uri: pyiceberg's ``uri`` (the same catalog database).
    :param warehouse: the warehouse URI.
    """

    name: str
    flink_options: Mapping[str, str]
    sqlalchemy_uri: str
    warehouse: str

    def __post_init__(self) -> None:
        if not IDENTIFIER.match(self.name):
            raise ValueError(f"Iceberg catalog name {self.name!r} must be a lower-case SQL identifier")
        if self.flink_options.get("type") != "iceberg":
            raise ValueError(f"the catalog options of {self.name!r} must say 'type' = 'iceberg': {self.flink_options}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IcebergCatalog:
        """The catalog the local stack exports (``stack/cli.py env``: ``FLINK_STACK_ICEBERG_*``).

        :param environ: the variables (default ``os.environ``).
        :raises ValueError: when a variable is missing or the options are not a JSON object.
        """
        env = os.environ if environ is None else environ
        names = ("CATALOG_NAME", "CATALOG_OPTIONS", "SQLALCHEMY_URI", "WAREHOUSE")
        missing = [f"FLINK_STACK_ICEBERG_{n}" for n in names if not env.get(f"FLINK_STACK_ICEBERG_{n}")]
        if missing:
            raise ValueError(
                f"{', '.join(missing)} not set: load the stack's environment first "
                '(eval "$(.venv/bin/python stack/cli.py env)")'
            )
        try:
            options = json.loads(env["FLINK_STACK_ICEBERG_CATALOG_OPTIONS"])
        except json.JSONDecodeError as error:
            raise ValueError(f"FLINK_STACK_ICEBERG_CATALOG_OPTIONS is not JSON: {error}") from None
        if not isinstance(options, dict):
            raise ValueError("FLINK_STACK_ICEBERG_CATALOG_OPTIONS must be a JSON object of CREATE CATALOG options")
        return cls(
            name=env["FLINK_STACK_ICEBERG_CATALOG_NAME"],
            flink_options={str(k): str(v) for k, v in options.items()},
            sqlalchemy_uri=env["FLINK_STACK_ICEBERG_SQLALCHEMY_URI"],
            warehouse=env["FLINK_STACK_ICEBERG_WAREHOUSE"],
        )

    def pyiceberg(self) -> object:
        """pyiceberg's ``SqlCatalog`` on the same catalog database."""
        from pyiceberg.catalog.sql import SqlCatalog

        return SqlCatalog(self.name, uri=self.sqlalchemy_uri, warehouse=self.warehouse)


@dataclass(frozen=True)
class PipelineParams:
    """Everything the phase 5 job depends on. Durations are milliseconds; SQL intervals need whole seconds.

    :param orders_topic: the Kafka topic of order deliveries (JSON; key = customer id).
    :param products_topic: the compacted Kafka topic of product versions (key = product id).
    :param bootstrap_servers: Kafka's ``bootstrap.servers`` as Flink reaches it.
    :param catalog: the Iceberg catalog.
    :param database: the Iceberg namespace of the tables.
    :param job_name: Flink's ``pipeline.name``; also the Kafka consumer group unless ``group_id`` is set.
    :param window_ms: the tumbling window of ``category_windows``.
    :param watermark_delay_ms: the bounded out-of-orderness; also the lateness rule (a delivery that arrives
        this long or longer after its event time is late).
    :param parallelism: the job's parallelism (the orders topic needs at least as many partitions).
    :param checkpoint_interval_ms: checkpoints (and so Iceberg commits) this often.
    :param dimension_idle_ms: the products source counts as idle after this long without a record, so that a
        quiet dimension does not hold back the temporal join. Only that source: see the README's drain pitfall.
    :param mini_batch_ms: buffer updates this long before emitting them (``None``: off). The totals then write
        one upsert per customer and batch instead of one per order: far fewer equality deletes in Iceberg.
    :param bounded: stop at the end of the topics as they are when the job starts (``latest-offset``).
    :param end_offsets: stop the orders source at these offsets, partition -> offset (overrides ``bounded``).
    :param products_end_offset: stop the products source at this offset of its one partition; needed with
        ``end_offsets`` when the job starts before the data is produced (``latest-offset`` is read at start).
    :param global_idle_timeout_ms: ``table.exec.source.idle-timeout`` for every source. Only to show the drain
        pitfall; leave ``None``.
    :param output_topics: write the four results to these Kafka topics (keys: the table names) instead of
        Iceberg; the benchmark's baseline.
    :param group_id: the Kafka consumer group (default: ``job_name``).
    :param extra: more Flink options for the job's session (``SET 'key' = 'value'``), e.g. for a benchmark.
    """

    orders_topic: str
    products_topic: str
    bootstrap_servers: str
    catalog: IcebergCatalog
    database: str = "phase5"
    job_name: str = "phase5_lakehouse"
    window_ms: int = 60_000
    watermark_delay_ms: int = 5_000
    parallelism: int = 1
    checkpoint_interval_ms: int = 10_000
    dimension_idle_ms: int = 2_000
    mini_batch_ms: int | None = 1_000
    bounded: bool = False
    end_offsets: Mapping[int, int] | None = None
    products_end_offset: int | None = None
    global_idle_timeout_ms: int | None = None
    output_topics: Mapping[str, str] | None = None
    group_id: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("orders_topic", "products_topic"):
            _check(name, check_topic, getattr(self, name))
        if self.orders_topic == self.products_topic:
            raise ValueError(f"orders_topic and products_topic must differ, both are {self.orders_topic!r}")
        _check("bootstrap_servers", check_bootstrap, self.bootstrap_servers)
        self.check_database(self.database)
        if not self.job_name or "'" in self.job_name or len(self.job_name) > 200:
            raise ValueError(f"job_name = {self.job_name!r} must be 1..200 characters without quotes")
        _whole_seconds("window_ms", self.window_ms, minimum=1000)
        _whole_seconds("watermark_delay_ms", self.watermark_delay_ms, minimum=1000)
        if self.window_ms > 86_400_000 or 86_400_000 % self.window_ms:
            raise ValueError(f"window_ms = {self.window_ms} must divide a day (windows align to midnight UTC)")
        if not isinstance(self.parallelism, int) or not 1 <= self.parallelism <= 64:
            raise ValueError(f"parallelism = {self.parallelism!r} must be an integer in 1..64")
        if not isinstance(self.checkpoint_interval_ms, int) or self.checkpoint_interval_ms < 100:
            raise ValueError(f"checkpoint_interval_ms = {self.checkpoint_interval_ms!r} must be >= 100 (ms)")
        if not isinstance(self.dimension_idle_ms, int) or self.dimension_idle_ms < 100:
            raise ValueError(f"dimension_idle_ms = {self.dimension_idle_ms!r} must be >= 100 (ms)")
        if self.mini_batch_ms is not None and (not isinstance(self.mini_batch_ms, int) or self.mini_batch_ms < 1):
            raise ValueError(f"mini_batch_ms = {self.mini_batch_ms!r} must be >= 1 (ms) or None")
        if self.global_idle_timeout_ms is not None and self.global_idle_timeout_ms < 100:
            raise ValueError(f"global_idle_timeout_ms = {self.global_idle_timeout_ms!r} must be >= 100 (ms) or None")
        if self.end_offsets is not None:
            if not self.end_offsets:
                raise ValueError("end_offsets must name at least one partition")
            for partition, offset in self.end_offsets.items():
                if not isinstance(partition, int) or partition < 0 or not isinstance(offset, int) or offset < 0:
                    raise ValueError(
                        f"end_offsets must map partitions to offsets (ints >= 0), got {partition!r}: {offset!r}"
                    )
        if self.products_end_offset is not None and (
            not isinstance(self.products_end_offset, int) or self.products_end_offset < 0
        ):
            raise ValueError(f"products_end_offset = {self.products_end_offset!r} must be an integer >= 0 or None")
        if self.output_topics is not None:
            if set(self.output_topics) != set(TABLES):
                raise ValueError(
                    f"output_topics must name a topic for each of {TABLES}, got {sorted(self.output_topics)}"
                )
            for table, topic in self.output_topics.items():
                _check(f"output_topics[{table!r}]", check_topic, topic)
        if self.group_id is not None and (not self.group_id or "'" in self.group_id):
            raise ValueError(f"group_id = {self.group_id!r} must be non-empty and without quotes")
        for key, value in self.extra.items():
            if "'" in key or "'" in str(value):
                raise ValueError(f"extra option {key!r} must not contain quotes")

    @staticmethod
    def check_database(database: str) -> None:
        """Check an Iceberg namespace name (it goes into SQL unquoted).

        :param database: the name.
        :raises ValueError: unless it is a lower-case SQL identifier.
        """
        if not isinstance(database, str) or not IDENTIFIER.match(database):
            raise ValueError(f"database = {database!r} must be a lower-case SQL identifier ([a-z_][a-z0-9_]*)")

    def to_json(self) -> dict[str, Any]:
        """The parameters as JSON (for XCom and Asset events), without the catalog: each task opens that from
        its own environment (:meth:`IcebergCatalog.from_env`)."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "catalog"}
        values["end_offsets"] = None if self.end_offsets is None else {str(p): o for p, o in self.end_offsets.items()}
        values["extra"] = dict(self.extra)
        values["output_topics"] = None if self.output_topics is None else dict(self.output_topics)
        return values

    @classmethod
    def from_json(cls, data: Mapping[str, Any], catalog: IcebergCatalog) -> PipelineParams:
        """Rebuild (and validate again) from :meth:`to_json`.

        :param data: the JSON.
        :param catalog: the Iceberg catalog.
        """
        values = dict(data)
        if values.get("end_offsets") is not None:
            values["end_offsets"] = {int(p): int(o) for p, o in values["end_offsets"].items()}
        return cls(catalog=catalog, **values)

    @property
    def consumer_group(self) -> str:
        """The Kafka consumer group of the job's sources."""
        return self.group_id or self.job_name

    def table(self, name: str) -> str:
        """The fully qualified Flink name of one of :data:`TABLES`.

        :param name: the table's short name.
        """
        if name not in TABLES:
            raise ValueError(f"unknown phase 5 table {name!r}; the tables are {TABLES}")
        return f"{self.catalog.name}.{self.database}.{name}"


def _check(name: str, check: Callable[[Any], Any], value: Any) -> None:
    try:
        check(value)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None


def _whole_seconds(name: str, value: object, *, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum or value % 1000:
        raise ValueError(f"{name} = {value!r} must be whole seconds in milliseconds, at least {minimum}")
