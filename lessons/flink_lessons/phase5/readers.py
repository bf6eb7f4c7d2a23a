"""Read the phase 5 tables as written: pyiceberg for the append tables, Flink (through the SQL Gateway) for the
upsert table, Iceberg metadata for snapshot and file counts, the provider's REST hook for checkpoint sizes.

Readers return plain Python values keyed like :class:`~flink_lessons.phase5.reference.Expected`, with every
row kept (a duplicate row is data here: the acceptance counts it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flink_lessons.phase5.params import APPEND_TABLES, TABLES, IcebergCatalog, PipelineParams
from flink_lessons.phase5.reference import EnrichedOrder, LateDelivery

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def epoch_ms(value: dt.datetime | str | None) -> int | None:
    """Epoch milliseconds of a timestamp: aware, naive (taken as UTC, as the job's session writes it), or the
    text Flink prints (``2024-03-01 00:01:02.345``, UTC).

    :param value: the timestamp.
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return (value - EPOCH) // dt.timedelta(milliseconds=1)


@dataclass
class WindowRow:
    """A row of ``category_windows`` as written."""

    window_start_ms: int
    window_end_ms: int
    category: str
    orders: int
    units: int
    revenue: Decimal


@dataclass
class TotalsRow:
    """A row of ``customer_totals`` as written."""

    customer_id: str
    orders: int
    units: int
    revenue: Decimal
    last_event_time_ms: int | None


@dataclass
class LateRow:
    """A row of ``late_orders``: the delivery and where Kafka had it."""

    delivery: LateDelivery
    kafka_partition: int
    kafka_offset: int


@dataclass
class Actual:
    """The four tables as read (every row, duplicates included).

    :param enriched: ``orders_enriched`` rows.
    :param windows: ``category_windows`` rows.
    :param totals: ``customer_totals`` rows (through the gateway).
    :param late: ``late_orders`` rows.
    :param read_seconds: how long each read took.
    """

    enriched: list[EnrichedOrder] = field(default_factory=list)
    windows: list[WindowRow] = field(default_factory=list)
    totals: list[TotalsRow] = field(default_factory=list)
    late: list[LateRow] = field(default_factory=list)
    read_seconds: dict[str, float] = field(default_factory=dict)


def _columns(table: Any, names: Sequence[str]) -> Iterator[tuple[Any, ...]]:
    """The rows of a pyarrow table as tuples of the named columns (column-wise conversion: fast for 1M rows)."""
    missing = [n for n in names if n not in table.column_names]
    if missing:
        raise ValueError(
            f"the table has no column(s) {missing}; it has {table.column_names}: was it created "
            "by another version of the phase 5 setup?"
        )
    return zip(*(table.column(n).to_pylist() for n in names), strict=True)


def scan(catalog: IcebergCatalog, database: str, table: str) -> Any:
    """An append table's current snapshot as a pyarrow table (pyiceberg; no Flink involved).

    :param catalog: the Iceberg catalog.
    :param database: the namespace.
    :param table: one of the append tables.
    :raises ValueError: for the upsert table, which pyiceberg 0.12 cannot read (equality deletes).
    """
    if table not in APPEND_TABLES:
        raise ValueError(
            f"{table!r} is not an append-only phase 5 table ({APPEND_TABLES}); read "
            "customer_totals through the gateway (read_totals)"
        )
    return catalog.pyiceberg().load_table(f"{database}.{table}").scan().to_arrow()  # type: ignore[attr-defined]


def _rows(catalog: IcebergCatalog, database: str, table: str, names: Sequence[str]) -> list[list[Any]]:
    """The named columns of an append table, row by row; timestamp columns (``*_time``, ``*_at``, ``window_*``,
    ``price_valid_from``) as epoch ms (0 for null).

    :param catalog: the Iceberg catalog.
    :param database: the namespace.
    :param table: the table.
    :param names: the columns, in the order of the row type they fill.
    """
    times = [n.endswith(("_time", "_at", "_start", "_end")) or n == "price_valid_from" for n in names]
    return [
        [epoch_ms(value) or 0 if is_time else value for value, is_time in zip(row, times, strict=True)]
        for row in _columns(scan(catalog, database, table), names)
    ]


def read_enriched(catalog: IcebergCatalog, database: str) -> list[EnrichedOrder]:
    """Every row of ``orders_enriched``.

    :param catalog: the Iceberg catalog.
    :param database: the namespace.
    """
    names = ("order_id", "customer_id", "product_id", "product_name", "category", "unit_price", "quantity",
             "revenue", "event_time", "price_valid_from")  # fmt: skip
    return [EnrichedOrder(*row) for row in _rows(catalog, database, "orders_enriched", names)]


def read_windows(catalog: IcebergCatalog, database: str) -> list[WindowRow]:
    """Every row of ``category_windows``.

    :param catalog: the Iceberg catalog.
    :param database: the namespace.
    """
    names = ("window_start", "window_end", "category", "orders", "units", "revenue")
    return [WindowRow(*row) for row in _rows(catalog, database, "category_windows", names)]


def read_late(catalog: IcebergCatalog, database: str) -> list[LateRow]:
    """Every row of ``late_orders``.

    :param catalog: the Iceberg catalog.
    :param database: the namespace.
    """
    names = ("order_id", "customer_id", "product_id", "quantity", "event_time", "arrived_at", "kafka_partition",
             "kafka_offset")  # fmt: skip
    return [LateRow(LateDelivery(*row[:6]), *row[6:]) for row in _rows(catalog, database, "late_orders", names)]


def totals_from_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[TotalsRow]:
    """``customer_totals`` rows from the result of :func:`~flink_lessons.phase5.sql.totals_query` (e.g. the
    ``results`` of a ``FlinkSqlGatewayOperator`` that ran it).

    :param columns: the result's column names.
    :param rows: its rows.
    :raises ValueError: when the columns are not the query's.
    """
    expected = ["customer_id", "orders", "units", "revenue", "last_event_time"]
    if list(columns) != expected:
        raise ValueError(f"not the totals query's result: columns {list(columns)}, expected {expected}")
    return [TotalsRow(str(c), int(o), int(u), Decimal(str(r)), epoch_ms(t)) for c, o, u, r, t in rows]


def read_totals(
    params: PipelineParams, *, gateway_conn_id: str = "flink_sql_gateway_default", timeout: float = 300
) -> list[TotalsRow]:
    """``customer_totals`` as Flink reads it (equality deletes applied): a batch query through the gateway.

    :param params: the pipeline's parameters (catalog, database).
    :param gateway_conn_id: the ``flink_sql_gateway`` connection.
    :param timeout: seconds the query may take (its batch job included).
    """
    from airflow_flink_provider.hooks.sql_gateway import FlinkSqlGatewayHook
    from airflow_flink_provider.protocol.statements import split_statements
    from flink_lessons.phase5.sql import totals_query

    gateway = FlinkSqlGatewayHook(flink_sql_gateway_conn_id=gateway_conn_id)
    session = gateway.open_session({"parallelism.default": "1"}, session_name=f"phase5-totals-{params.database}")
    try:
        result = None
        for statement in split_statements(totals_query(params)):
            result = gateway.run_statement(session, statement.text, row_limit=1_000_000, timeout=timeout)
        assert result is not None
        return totals_from_rows(result.columns, result.rows)
    finally:
        gateway.close_session(session)


def read_all(
    params: PipelineParams, *, gateway_conn_id: str = "flink_sql_gateway_default", totals: list[TotalsRow] | None = None
) -> Actual:
    """Read the four tables.

    :param params: the pipeline's parameters (catalog, database).
    :param gateway_conn_id: the gateway connection for the upsert table.
    :param totals: the upsert table's rows when already read (e.g. by an operator); else read here.
    """
    import time

    actual = Actual()
    for name, read in (
        ("orders_enriched", read_enriched),
        ("category_windows", read_windows),
        ("late_orders", read_late),
    ):
        began = time.monotonic()
        setattr(
            actual,
            {"orders_enriched": "enriched", "category_windows": "windows", "late_orders": "late"}[name],
            read(params.catalog, params.database),
        )
        actual.read_seconds[name] = round(time.monotonic() - began, 3)
    began = time.monotonic()
    actual.totals = totals if totals is not None else read_totals(params, gateway_conn_id=gateway_conn_id)
    actual.read_seconds["customer_totals"] = round(time.monotonic() - began, 3)
    return actual


# ---------------------------------------------------------------------------------------------- metadata


def table_stats(catalog: IcebergCatalog, database: str) -> dict[str, dict[str, int]]:
    """Per table, from its current snapshot's summary: snapshots, live data files, live delete files, records
    in data files, delete records, and total bytes: how much every checkpoint's commit adds (why the upsert
    table needs compaction). A table without a snapshot has zeros.

    :param catalog: the Iceberg catalog.
    :param database: the namespace.
    """
    reader = catalog.pyiceberg()
    stats: dict[str, dict[str, int]] = {}
    for name in TABLES:
        table = reader.load_table(f"{database}.{name}")  # type: ignore[attr-defined]
        snapshot = table.current_snapshot()
        summary = snapshot.summary if snapshot is not None and snapshot.summary is not None else {}

        def total(key: str, summary: Any = summary) -> int:
            return int(summary.get(key) or 0)

        stats[name] = {
            "snapshots": len(table.metadata.snapshots),
            "data_files": total("total-data-files"),
            "delete_files": total("total-delete-files"),
            "data_records": total("total-records"),
            "delete_records": total("total-equality-deletes") + total("total-position-deletes"),
            "bytes": total("total-files-size"),
        }
    return stats


def first_commit_ms(catalog: IcebergCatalog, database: str, table: str) -> int | None:
    """When the first snapshot that added records to ``table`` was committed (epoch ms), or ``None``.

    :param catalog: the Iceberg catalog.
    :param database: the namespace.
    :param table: the table.
    """
    loaded = catalog.pyiceberg().load_table(f"{database}.{table}")  # type: ignore[attr-defined]
    times = [
        s.timestamp_ms
        for s in loaded.metadata.snapshots
        if s.summary is not None and int(s.summary.get("added-records", "0") or 0) > 0
    ]
    return min(times) if times else None


# ---------------------------------------------------------------------------------------------- checkpoints


def checkpoint_sizes(job_id: str, *, flink_conn_id: str = "flink_default") -> dict[str, int]:
    """The latest completed checkpoint's size (the provider's ``FlinkRestHook.get_checkpoints``).

    ``state_size`` is the full state a restore reads; ``checkpointed_size`` what this checkpoint wrote (the
    same with full checkpoints, less with incremental ones).

    :param job_id: the job.
    :param flink_conn_id: the ``flink`` connection.
    :raises ValueError: when the job has no completed checkpoint yet.
    """
    from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

    latest = (FlinkRestHook(flink_conn_id=flink_conn_id).get_checkpoints(job_id).get("latest") or {}).get("completed")
    if not latest:
        raise ValueError(f"job {job_id} has no completed checkpoint yet")
    return {
        "checkpoint_id": int(latest["id"]),
        "state_size": int(latest.get("state_size", 0)),
        "checkpointed_size": int(latest.get("checkpointed_size", latest.get("state_size", 0))),
    }
