"""The phase 5 acceptance: the four tables against the independent reference, as a table and a readable diff.

Typical use (a DAG task, a test, the benchmark)::

    expected = reference.compute(dataset.from_manifest(manifest), Rules(params.window_ms, params.watermark_delay_ms))
    report = acceptance.compare(expected, readers.read_all(params))
    print(report.table())
    report.raise_for_failures()        # AcceptanceError with the diff

or all of it in one call: :func:`check`. Every count is exact: a row missing, a row too many, a value off by a
cent all fail, each shown in the diff with the row it concerns.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from flink_lessons.phase5.dataset import BASE_MS
from flink_lessons.phase5.readers import Actual, TotalsRow
from flink_lessons.phase5.reference import EnrichedOrder, Expected, Totals

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
DIFF_LINES = 8
"""Example rows shown per failing check."""


class AcceptanceError(AssertionError):
    """The tables differ from the reference; ``report`` has every check, ``str()`` the table and the diff."""

    def __init__(self, report: Report) -> None:
        super().__init__(f"{report.table()}\n\n{report.diff()}")
        self.report = report


@dataclass
class Check:
    """One line of the acceptance table.

    :param table: the table (or ``dataset``).
    :param name: what is counted.
    :param expected: the reference's value.
    :param actual: the table's value.
    :param diff: example rows behind a difference (``-`` missing, ``+`` unexpected, ``~`` different).
    """

    table: str
    name: str
    expected: Any
    actual: Any
    diff: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the table agrees with the reference."""
        return bool(self.expected == self.actual)


@dataclass
class Report:
    """Every check of one acceptance run.

    :param checks: the checks, in table order.
    :param info: what the run was about (dataset, rules, read times...).
    """

    checks: list[Check] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Whether every check agrees."""
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        """The checks that disagree."""
        return [c for c in self.checks if not c.ok]

    def table(self) -> str:
        """The acceptance table (Markdown)."""
        lines = ["| table | check | expected | actual | |", "|---|---|---:|---:|---|"]
        for c in self.checks:
            lines.append(
                f"| {c.table} | {c.name} | {_show(c.expected)} | {_show(c.actual)} | {'ok' if c.ok else '**FAIL**'} |"
            )
        return "\n".join(lines)

    def diff(self) -> str:
        """The rows behind every failing check (empty when all pass)."""
        blocks = []
        for c in self.failures:
            head = f"{c.table}: {c.name}: expected {_show(c.expected)}, got {_show(c.actual)}"
            blocks.append("\n".join([head, *(f"    {line}" for line in c.diff)]))
        return "\n".join(blocks)

    def raise_for_failures(self) -> None:
        """Raise :class:`AcceptanceError` when a check disagrees."""
        if not self.passed:
            raise AcceptanceError(self)

    def to_json(self) -> dict[str, Any]:
        """For XCom or a result file."""
        return {"passed": self.passed, "info": self.info, "checks": [{**asdict(c), "ok": c.ok} for c in self.checks]}


def _show(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


# ---------------------------------------------------------------------------------------------- comparing


def _keyed_checks(
    table: str,
    what: str,
    expected: Mapping[K, V],
    rows: Iterable[tuple[K, V]],
    show: Callable[[V], str],
) -> list[Check]:
    """Rows vs expected by key: row count, keys written twice, keys missing, keys unexpected, values differing."""
    seen: Counter[K] = Counter()
    written: dict[K, V] = {}
    for key, value in rows:
        seen[key] += 1
        written.setdefault(key, value)
    duplicated = sorted((k for k, n in seen.items() if n > 1), key=str)
    missing = sorted((k for k in expected if k not in written), key=str)
    unexpected = sorted((k for k in written if k not in expected), key=str)
    differing = sorted((k for k in expected if k in written and written[k] != expected[k]), key=str)
    return [
        Check(table, f"{what} rows", len(expected), sum(seen.values())),
        Check(
            table,
            f"{what} written twice or more",
            0,
            len(duplicated),
            [f"* {k}: {seen[k]} rows" for k in duplicated[:DIFF_LINES]],
        ),
        Check(table, f"{what} missing", 0, len(missing), [f"- {k}: {show(expected[k])}" for k in missing[:DIFF_LINES]]),
        Check(
            table,
            f"{what} not expected",
            0,
            len(unexpected),
            [f"+ {k}: {show(written[k])}" for k in unexpected[:DIFF_LINES]],
        ),
        Check(
            table,
            f"{what} with other values",
            0,
            len(differing),
            [f"~ {k}: expected {show(expected[k])}, got {show(written[k])}" for k in differing[:DIFF_LINES]],
        ),
    ]


def _order(o: EnrichedOrder) -> str:
    return (
        f"{o.customer_id} {o.product_id} {o.category} {o.quantity} x {o.unit_price} = {o.revenue} "
        f"at {o.event_time_ms} (price from {o.price_valid_from_ms})"
    )


def _totals(t: tuple[Any, ...]) -> str:
    return f"orders {t[0]}, units {t[1]}, revenue {t[2]}" + (f", last event {t[3]}" if len(t) > 3 else "")


def compare(expected: Expected, actual: Actual) -> Report:
    """Compare the tables with the reference.

    :param expected: the reference (:func:`~flink_lessons.phase5.reference.compute`).
    :param actual: the tables (:func:`~flink_lessons.phase5.readers.read_all`).
    """
    report = Report(
        info={"rules": asdict(expected.rules), "stats": dict(expected.stats), "read_seconds": dict(actual.read_seconds)}
    )
    checks = report.checks

    checks += _keyed_checks(
        "orders_enriched", "orders", expected.enriched, ((o.order_id, o) for o in actual.enriched), _order
    )
    new_prices = sum(1 for o in actual.enriched if o.price_valid_from_ms > BASE_MS)
    checks.append(
        Check(
            "orders_enriched",
            "orders priced by a mid-stream product version",
            expected.stats.get("priced_by_mid_stream_version", 0),
            new_prices,
        )
    )

    window_expected = {(start, cat): (t.orders, t.units, t.revenue) for (start, cat), t in expected.windows.items()}
    checks += _keyed_checks(
        "category_windows",
        "windows x categories",
        window_expected,
        (((w.window_start_ms, w.category), (w.orders, w.units, w.revenue)) for w in actual.windows),
        _totals,
    )
    bad_ends = [w for w in actual.windows if w.window_end_ms - w.window_start_ms != expected.rules.window_ms]
    checks.append(
        Check(
            "category_windows",
            "windows of another length",
            0,
            len(bad_ends),
            [f"~ {w.window_start_ms}..{w.window_end_ms} {w.category}" for w in bad_ends[:DIFF_LINES]],
        )
    )
    checks.append(
        Check(
            "category_windows", "orders in all windows", len(expected.enriched), sum(w.orders for w in actual.windows)
        )
    )

    totals_expected = {c: _tuple(t) for c, t in expected.totals.items()}
    checks += _keyed_checks(
        "customer_totals",
        "customers",
        totals_expected,
        ((t.customer_id, _row_tuple(t)) for t in actual.totals),
        _totals,
    )

    late_expected = expected.late
    late_written: Counter[Any] = Counter(r.delivery for r in actual.late)
    missing = late_expected - late_written
    extra = late_written - late_expected
    positions = Counter((r.kafka_partition, r.kafka_offset) for r in actual.late)
    twice = [(p, n) for p, n in positions.items() if n > 1]
    checks += [
        Check("late_orders", "late deliveries", sum(late_expected.values()), len(actual.late)),
        Check(
            "late_orders",
            "Kafka records written twice or more",
            0,
            len(twice),
            [f"* partition {p[0]} offset {p[1]}: {n} rows" for p, n in sorted(twice)[:DIFF_LINES]],
        ),
        Check(
            "late_orders",
            "late deliveries missing",
            0,
            sum(missing.values()),
            [f"- {d}" for d in list(missing.elements())[:DIFF_LINES]],
        ),
        Check(
            "late_orders",
            "deliveries that are not late",
            0,
            sum(extra.values()),
            [f"+ {d}" for d in list(extra.elements())[:DIFF_LINES]],
        ),
    ]
    return report


def _tuple(t: Totals) -> tuple[int, int, Any, int | None]:
    return (t.orders, t.units, t.revenue, t.last_event_time_ms)


def _row_tuple(t: TotalsRow) -> tuple[int, int, Any, int | None]:
    return (t.orders, t.units, t.revenue, t.last_event_time_ms)


# ---------------------------------------------------------------------------------------------- one call


def check(
    params: Any,
    manifest: Mapping[str, Any],
    *,
    gateway_conn_id: str = "flink_sql_gateway_default",
    totals: list[TotalsRow] | None = None,
    raise_on_failure: bool = True,
) -> Report:
    """Regenerate the manifest's dataset, compute the reference under the pipeline's rules, read the tables
    and compare: the acceptance in one call.

    :param params: the pipeline's :class:`~flink_lessons.phase5.params.PipelineParams`.
    :param manifest: the dataset's manifest (:func:`~flink_lessons.phase5.dataset.read_manifest`).
    :param gateway_conn_id: the gateway connection for the upsert table.
    :param totals: the upsert table's rows when already read (e.g. by ``FlinkSqlGatewayOperator``).
    :param raise_on_failure: raise :class:`AcceptanceError` (with the table and the diff) when a check fails.
    """
    from flink_lessons.phase5.dataset import from_manifest
    from flink_lessons.phase5.readers import read_all
    from flink_lessons.phase5.reference import Rules, compute

    began = time.monotonic()
    expected = compute(from_manifest(manifest), Rules(params.window_ms, params.watermark_delay_ms))
    reference_s = time.monotonic() - began
    actual = read_all(params, gateway_conn_id=gateway_conn_id, totals=totals)
    report = compare(expected, actual)
    report.info.update(
        dataset={"size": manifest["size"], "seed": manifest["seed"], "sha256": manifest["sha256"]},
        reference_seconds=round(reference_s, 3),
        seconds=round(time.monotonic() - began, 3),
    )
    if raise_on_failure:
        report.raise_for_failures()
    return report
