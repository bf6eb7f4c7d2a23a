"""Phase 5 without the stack: the dataset, the reference's rules, the parameters, the SQL and the comparison."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from flink_lessons.load.partitioner import partition_for
from flink_lessons.phase5 import acceptance, dataset, reference, sql
from flink_lessons.phase5.dataset import BASE_MS, Dataset, Delivery, ProductVersion
from flink_lessons.phase5.params import TABLES, IcebergCatalog, PipelineParams
from flink_lessons.phase5.pipeline import expected_end_offsets
from flink_lessons.phase5.readers import Actual, LateRow, TotalsRow, WindowRow, epoch_ms, totals_from_rows
from flink_lessons.phase5.reference import Rules

pytestmark = pytest.mark.unit

CATALOG = IcebergCatalog(
    "lakehouse",
    {"type": "iceberg", "uri": "jdbc:sqlite:/tmp/c.db", "warehouse": "file:///tmp/w"},
    "sqlite:////tmp/c.db",
    "file:///tmp/w",
)


def params(**overrides: object) -> PipelineParams:
    values: dict[str, object] = {"orders_topic": "o", "products_topic": "p", "bootstrap_servers": "127.0.0.1:9092",
                                 "catalog": CATALOG} | overrides  # fmt: skip
    return PipelineParams(**values)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- dataset


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    assert dataset.generate("XS", 7).sha256() == dataset.generate("XS", 7).sha256()
    assert dataset.generate("XS", 7).sha256() != dataset.generate("XS", 8).sha256()


def test_size_s_has_the_structure_the_lesson_needs() -> None:
    data = dataset.generate("S", 7)
    deliveries = data.deliveries
    orders = Counter(d.order_id for d in deliveries)
    assert len(orders) == 10_000
    assert len({d.customer_id for d in deliveries}) >= 20
    assert len({d.product_id for d in deliveries}) == 12
    assert sum(n - 1 for n in orders.values()) > 100  # duplicates
    late = [d for d in deliveries if d.arrival_ms - d.ts_ms >= dataset.NOMINAL_DELAY_MS]
    assert 100 < len(late) < 500
    out_of_order = sum(1 for a, b in itertools.pairwise(deliveries) if b.ts_ms < a.ts_ms)
    assert out_of_order > 1000
    mid_stream = [v for v in data.versions if v.valid_from_ms > BASE_MS]
    assert [v.product_id for v in mid_stream] == ["p03", "p05"]
    # Published ahead of when they apply, and in arrival order in the timeline.
    assert all(v.arrival_ms < v.valid_from_ms for v in mid_stream)
    arrivals = [r.arrival_ms for r in data.timeline]
    assert arrivals[12:] == sorted(arrivals[12:])


def test_manifest_round_trip_and_a_changed_generator_is_caught(tmp_path: Path) -> None:
    data = dataset.generate("XS", 3)
    path = dataset.write_manifest(tmp_path / "m.json", dataset.manifest(data))
    manifest = dataset.read_manifest(path)
    assert manifest["counts"]["deliveries"] == len(data.deliveries)
    assert manifest["expected"]["stats"]["on_time_orders"] == sum(
        w["orders"] for w in manifest["expected"]["category_windows"]
    )
    assert dataset.from_manifest(manifest).sha256() == data.sha256()
    with pytest.raises(ValueError, match="no longer reproduces"):
        dataset.from_manifest({**manifest, "sha256": "0" * 64})
    (tmp_path / "other.json").write_text(json.dumps({"dataset": "something else"}))
    with pytest.raises(ValueError, match="not a phase 5 dataset manifest"):
        dataset.read_manifest(tmp_path / "other.json")


def test_unknown_size_is_named() -> None:
    with pytest.raises(ValueError, match="unknown dataset size 'XL'; choose from XS, S, M"):
        dataset.generate("XL")


def test_end_offsets_follow_kafkas_partitioner() -> None:
    data = dataset.generate("XS", 7)
    offsets = expected_end_offsets(data, 3)
    assert sum(offsets.values()) == len(data.deliveries)
    assert offsets[0] == sum(1 for d in data.deliveries if partition_for(d.customer_id.encode(), 3) == 0)


# ---------------------------------------------------------------------------------------------- reference


def tiny() -> Dataset:
    """Two products, one re-priced at +60 s; on-time, duplicate, late and re-delivered-late orders."""
    old = BASE_MS - 86_400_000
    versions = [
        ProductVersion("p1", "One", "books", Decimal("10.00"), old, BASE_MS),
        ProductVersion("p2", "Two", "games", Decimal("2.50"), old, BASE_MS),
        ProductVersion("p1", "One", "games", Decimal("12.00"), BASE_MS + 60_000, BASE_MS + 50_000),
    ]
    deliveries = [
        Delivery(1, "c1", "p1", 2, BASE_MS + 59_999, BASE_MS + 60_500),  # old price, window 0
        Delivery(2, "c2", "p1", 1, BASE_MS + 60_000, BASE_MS + 60_100),  # new version, window 1
        Delivery(2, "c2", "p1", 1, BASE_MS + 60_000, BASE_MS + 60_900),  # duplicate on time: dropped
        Delivery(3, "c1", "p2", 4, BASE_MS + 10_000, BASE_MS + 15_000),  # exactly the delay: late
        Delivery(1, "c1", "p1", 2, BASE_MS + 59_999, BASE_MS + 200_000),  # late re-delivery of an on-time order
    ]
    return Dataset(1, dataset.SIZES["XS"], [*versions, *deliveries])


def test_reference_applies_lateness_duplicates_and_versions() -> None:
    expected = reference.compute(tiny(), Rules(window_ms=60_000, watermark_delay_ms=5_000))
    assert sorted(expected.enriched) == [1, 2]
    assert expected.enriched[1].unit_price == Decimal("10.00") and expected.enriched[1].category == "books"
    assert expected.enriched[2].unit_price == Decimal("12.00") and expected.enriched[2].category == "games"
    assert {k: (t.orders, t.units, t.revenue) for k, t in expected.windows.items()} == {
        (BASE_MS, "books"): (1, 2, Decimal("20.00")),
        (BASE_MS + 60_000, "games"): (1, 1, Decimal("12.00")),
    }
    assert (expected.totals["c1"].orders, expected.totals["c1"].revenue) == (1, Decimal("20.00"))
    assert sorted(d.order_id for d in expected.late.elements()) == [1, 3]
    assert expected.stats == {"deliveries": 5, "duplicates_dropped": 1, "late_deliveries": 2,
                              "late_orders_never_on_time": 1, "on_time_orders": 2,
                              "priced_by_mid_stream_version": 1}  # fmt: skip


# ---------------------------------------------------------------------------------------------- acceptance


def as_written(expected: reference.Expected) -> Actual:
    """The tables exactly as the reference says they must be."""
    return Actual(
        enriched=list(expected.enriched.values()),
        windows=[
            WindowRow(start, start + expected.rules.window_ms, cat, t.orders, t.units, t.revenue)
            for (start, cat), t in expected.windows.items()
        ],
        totals=[TotalsRow(c, t.orders, t.units, t.revenue, t.last_event_time_ms) for c, t in expected.totals.items()],
        late=[LateRow(d, 0, offset) for offset, d in enumerate(expected.late.elements())],
    )


def test_matching_tables_pass_and_every_difference_is_shown() -> None:
    expected = reference.compute(dataset.generate("XS", 7), Rules())
    actual = as_written(expected)
    report = acceptance.compare(expected, actual)
    assert report.passed, report.diff()
    assert report.diff() == ""

    lost = actual.enriched.pop()
    # One row written twice: one priced like the lost one, so the mid-stream price count still agrees.
    actual.enriched.append(next(o for o in actual.enriched if o.price_valid_from_ms == lost.price_valid_from_ms))
    actual.windows[0].revenue += Decimal("0.01")
    actual.totals = actual.totals[1:]
    actual.late.append(actual.late[0])
    report = acceptance.compare(expected, actual)
    assert {(c.table, c.name) for c in report.failures} == {
        ("orders_enriched", "orders written twice or more"),
        ("orders_enriched", "orders missing"),
        ("category_windows", "windows x categories with other values"),
        ("customer_totals", "customers rows"),
        ("customer_totals", "customers missing"),
        ("late_orders", "late deliveries"),
        ("late_orders", "Kafka records written twice or more"),
        ("late_orders", "deliveries that are not late"),
    }
    with pytest.raises(acceptance.AcceptanceError) as caught:
        report.raise_for_failures()
    text = str(caught.value)
    assert "| orders_enriched | orders missing | 0 | 1 | **FAIL** |" in text
    assert f"- {lost.order_id}: {lost.customer_id} {lost.product_id}" in text
    assert "~ (" in text and "revenue" in text


def test_totals_rows_from_the_gateway_result() -> None:
    rows = totals_from_rows(
        ["customer_id", "orders", "units", "revenue", "last_event_time"],
        [["c1", 3, 7, "101.50", "2024-03-01 00:01:02.345"]],
    )
    assert rows == [TotalsRow("c1", 3, 7, Decimal("101.50"), BASE_MS + 62_345)]
    assert epoch_ms(None) is None
    with pytest.raises(ValueError, match="not the totals query's result"):
        totals_from_rows(["customer_id"], [])


# ---------------------------------------------------------------------------------------------- params, SQL


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"orders_topic": "same", "products_topic": "same"}, "must differ"),
        ({"window_ms": 1500}, "window_ms = 1500 must be whole seconds"),
        ({"window_ms": 7_000}, "must divide a day"),
        ({"parallelism": 0}, "parallelism = 0 must be an integer in 1..64"),
        ({"database": "Bad-Name"}, "database = 'Bad-Name' must be a lower-case SQL identifier"),
        ({"job_name": "x'y"}, "without quotes"),
        ({"output_topics": {"orders_enriched": "t"}}, "must name a topic for each of"),
        ({"end_offsets": {0: -1}}, "end_offsets must map partitions to offsets"),
        ({"products_end_offset": -1}, "products_end_offset = -1 must be an integer >= 0"),
        ({"bootstrap_servers": "nohost"}, "bootstrap_servers"),
    ],
)
def test_bad_parameters_are_named(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        params(**overrides)


def test_catalog_from_the_stack_environment() -> None:
    env = {"FLINK_STACK_ICEBERG_CATALOG_NAME": "lakehouse", "FLINK_STACK_ICEBERG_SQLALCHEMY_URI": "sqlite:///c",
           "FLINK_STACK_ICEBERG_WAREHOUSE": "file:///w",
           "FLINK_STACK_ICEBERG_CATALOG_OPTIONS": '{"type": "iceberg", "uri": "jdbc:sqlite:c"}'}  # fmt: skip
    assert IcebergCatalog.from_env(env).flink_options["uri"] == "jdbc:sqlite:c"
    with pytest.raises(ValueError, match="FLINK_STACK_ICEBERG_WAREHOUSE not set"):
        IcebergCatalog.from_env({k: v for k, v in env.items() if not k.endswith("WAREHOUSE")})
    with pytest.raises(ValueError, match="'type' = 'iceberg'"):
        IcebergCatalog("lakehouse", {"type": "hive"}, "", "")


def test_scripts_render_every_table_and_quote_values() -> None:
    p = params(job_name="phase5@x#0a1b2c3d", group_id="g", database="p5_x", end_offsets={1: 20, 0: 10})
    script = sql.pipeline_script(p)
    assert "SET 'pipeline.name' = 'phase5@x#0a1b2c3d';" in script
    assert "'properties.group.id' = 'g'" in script
    assert "'scan.bounded.specific-offsets' = 'partition:0,offset:10;partition:1,offset:20'" in script
    assert "'scan.bounded.mode' = 'latest-offset'" in script  # products: bounded where they are at start
    bounded = sql.pipeline_script(params(end_offsets={0: 10}, products_end_offset=14))
    assert "'scan.bounded.specific-offsets' = 'partition:0,offset:14'" in bounded  # products known in advance
    assert "latest-offset" not in bounded
    assert "'scan.watermark.idle-timeout' = '2000 ms'" in script
    assert "table.exec.source.idle-timeout" not in script
    for table in TABLES:
        assert f"INSERT INTO lakehouse.p5_x.{table}" in script
        assert f"CREATE TABLE IF NOT EXISTS lakehouse.p5_x.{table}" in sql.setup_script(CATALOG, "p5_x")
    kafka = sql.pipeline_script(params(output_topics={t: f"out-{t}" for t in TABLES}))
    assert "CREATE CATALOG" not in kafka and "INSERT INTO out_customer_totals" in kafka
    assert "'table.exec.source.idle-timeout' = '500 ms'" in sql.pipeline_script(params(global_idle_timeout_ms=500))


def test_append_tables_are_read_into_their_row_types(monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt

    import pyarrow as pa
    from flink_lessons.phase5 import readers

    t0 = dt.datetime(2024, 3, 1, 0, 1, 2)
    tables = {
        "orders_enriched": {"order_id": [1], "customer_id": ["c1"], "product_id": ["p01"], "product_name": ["Shoes"],
                            "category": ["outdoor"], "unit_price": [Decimal("89.90")], "quantity": [2],
                            "revenue": [Decimal("179.80")], "event_time": [t0], "price_valid_from": [None]},
        "category_windows": {"window_start": [t0], "window_end": [t0], "category": ["games"], "orders": [3],
                             "units": [4], "revenue": [Decimal("5.00")]},
        "late_orders": {"order_id": [9], "customer_id": ["c2"], "product_id": ["p02"], "quantity": [1],
                        "event_time": [t0], "arrived_at": [t0], "kafka_partition": [0], "kafka_offset": [41]},
    }  # fmt: skip
    monkeypatch.setattr(readers, "scan", lambda catalog, database, table: pa.table(tables[table]))
    ms = epoch_ms(t0)
    assert readers.read_enriched(None, "db") == [  # type: ignore[arg-type]
        reference.EnrichedOrder(1, "c1", "p01", "Shoes", "outdoor", Decimal("89.90"), 2, Decimal("179.80"), ms, 0)
    ]
    assert readers.read_windows(None, "db") == [WindowRow(ms, ms, "games", 3, 4, Decimal("5.00"))]  # type: ignore[arg-type]
    late = readers.read_late(None, "db")  # type: ignore[arg-type]
    assert late == [LateRow(reference.LateDelivery(9, "c2", "p02", 1, ms, ms), 0, 41)]
