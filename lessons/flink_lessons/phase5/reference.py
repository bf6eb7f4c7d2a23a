"""What the phase 5 tables must hold, computed in plain Python from the dataset: the independent reference.

It implements the documented rules (``include/sql/phase5_lakehouse/README.md``), not the SQL:

1. **Lateness is a property of each delivery**: a delivery is *late* when it arrived (its Kafka timestamp)
   ``watermark_delay`` or more after its event time. Late deliveries go to ``late_orders``, one row per
   delivery (a re-delivery too), and nowhere else. On-time deliveries can never be dropped by a window: the
   watermark never passes an on-time event's window before the event arrives (see the README's proof).
2. **Duplicates**: on-time deliveries of the same order are counted once (the order's copies carry the same
   event time, so they fall in the same window, where the job's window deduplication keeps one). A
   re-delivery that arrives late while an earlier copy was on time is a late delivery (rule 1).
3. **Enrichment**: each on-time order takes the product version valid at its event time: the version with
   the greatest ``valid_from`` not after the order's time (Flink's event-time temporal join).
4. **Aggregates**: ``category_windows`` sums orders, units and revenue per tumbling window (aligned to the
   epoch, UTC) and category; ``customer_totals`` per customer over all on-time orders.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from flink_lessons.phase5.dataset import BASE_MS, Dataset, Delivery, ProductVersion


@dataclass(frozen=True)
class Rules:
    """The parameters the expected results depend on.

    :param window_ms: the tumbling window.
    :param watermark_delay_ms: the lateness bound (and the watermark's delay).
    """

    window_ms: int = 60_000
    watermark_delay_ms: int = 5_000

    def is_late(self, delivery: Delivery) -> bool:
        """Rule 1: did this delivery arrive ``watermark_delay`` or more after its event time?

        :param delivery: the delivery.
        """
        return delivery.arrival_ms - delivery.ts_ms >= self.watermark_delay_ms

    def window_start(self, ts_ms: int) -> int:
        """The start of the tumbling window holding ``ts_ms`` (epoch-aligned).

        :param ts_ms: an event time, epoch ms.
        """
        return ts_ms - ts_ms % self.window_ms


class EnrichedOrder(NamedTuple):
    """A row of ``orders_enriched``."""

    order_id: int
    customer_id: str
    product_id: str
    product_name: str
    category: str
    unit_price: Decimal
    quantity: int
    revenue: Decimal
    event_time_ms: int
    price_valid_from_ms: int


class LateDelivery(NamedTuple):
    """A row of ``late_orders`` (without Kafka's partition and offset, which depend on the topic)."""

    order_id: int
    customer_id: str
    product_id: str
    quantity: int
    event_time_ms: int
    arrived_at_ms: int


@dataclass
class Totals:
    """Orders, units and revenue (a window's or a customer's)."""

    orders: int = 0
    units: int = 0
    revenue: Decimal = Decimal("0.00")
    last_event_time_ms: int | None = None

    def add(self, order: EnrichedOrder) -> None:
        """Count one order in.

        :param order: the order.
        """
        self.orders += 1
        self.units += order.quantity
        self.revenue += order.revenue
        if self.last_event_time_ms is None or order.event_time_ms > self.last_event_time_ms:
            self.last_event_time_ms = order.event_time_ms


@dataclass
class Expected:
    """The reference: every table's expected content, and how the deliveries were classified.

    :param rules: the rules it was computed under.
    :param enriched: ``orders_enriched`` by order id.
    :param windows: ``category_windows`` by ``(window start ms, category)``.
    :param totals: ``customer_totals`` by customer.
    :param late: ``late_orders`` as a multiset of deliveries.
    :param stats: deliveries, on-time orders, duplicates dropped, late deliveries, orders priced by a
        mid-stream product version.
    """

    rules: Rules
    enriched: dict[int, EnrichedOrder] = field(default_factory=dict)
    windows: dict[tuple[int, str], Totals] = field(default_factory=dict)
    totals: dict[str, Totals] = field(default_factory=dict)
    late: Counter[LateDelivery] = field(default_factory=Counter)
    stats: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The manifest's ``expected`` section: the rules, the counts, and the aggregates per key and window."""
        return {
            "rules": {"window_ms": self.rules.window_ms, "watermark_delay_ms": self.rules.watermark_delay_ms},
            "stats": dict(self.stats),
            "category_windows": [
                {
                    "window_start_ms": start,
                    "category": category,
                    "orders": t.orders,
                    "units": t.units,
                    "revenue": str(t.revenue),
                }
                for (start, category), t in sorted(self.windows.items())
            ],
            "customer_totals": [
                {
                    "customer_id": customer,
                    "orders": t.orders,
                    "units": t.units,
                    "revenue": str(t.revenue),
                    "last_event_time_ms": t.last_event_time_ms,
                }
                for customer, t in sorted(self.totals.items())
            ],
        }


class Catalogue:
    """Product versions by product, for "the version valid at time t" (rule 3).

    :param versions: every version (in any order).
    """

    def __init__(self, versions: Iterable[ProductVersion]) -> None:
        by_product: dict[str, list[ProductVersion]] = defaultdict(list)
        for version in versions:
            by_product[version.product_id].append(version)
        self._versions = {pid: sorted(vs, key=lambda v: v.valid_from_ms) for pid, vs in by_product.items()}
        self._starts = {pid: [v.valid_from_ms for v in vs] for pid, vs in self._versions.items()}

    def at(self, product_id: str, ts_ms: int) -> ProductVersion | None:
        """The version of ``product_id`` valid at ``ts_ms``, or ``None`` (no version yet: the inner join drops it).

        :param product_id: the product.
        :param ts_ms: the event time.
        """
        starts = self._starts.get(product_id)
        if not starts:
            return None
        index = bisect.bisect_right(starts, ts_ms) - 1
        return self._versions[product_id][index] if index >= 0 else None


def compute(dataset: Dataset, rules: Rules) -> Expected:
    """Apply the rules to the dataset's deliveries, in production order.

    :param dataset: the dataset.
    :param rules: the window and lateness bound.
    """
    catalogue = Catalogue(dataset.versions)
    expected = Expected(rules)
    stats: Counter[str] = Counter()
    for delivery in dataset.deliveries:
        stats["deliveries"] += 1
        if rules.is_late(delivery):
            stats["late_deliveries"] += 1
            expected.late[
                LateDelivery(
                    delivery.order_id,
                    delivery.customer_id,
                    delivery.product_id,
                    delivery.quantity,
                    delivery.ts_ms,
                    delivery.arrival_ms,
                )
            ] += 1
            continue
        if delivery.order_id in expected.enriched:
            stats["duplicates_dropped"] += 1
            continue
        version = catalogue.at(delivery.product_id, delivery.ts_ms)
        if version is None:
            stats["no_product_version"] += 1
            continue
        order = EnrichedOrder(
            delivery.order_id,
            delivery.customer_id,
            delivery.product_id,
            version.name,
            version.category,
            version.unit_price,
            delivery.quantity,
            version.unit_price * delivery.quantity,
            delivery.ts_ms,
            version.valid_from_ms,
        )
        expected.enriched[order.order_id] = order
        if version.valid_from_ms > BASE_MS:
            stats["priced_by_mid_stream_version"] += 1
        expected.windows.setdefault((rules.window_start(order.event_time_ms), order.category), Totals()).add(order)
        expected.totals.setdefault(order.customer_id, Totals()).add(order)
    stats["on_time_orders"] = len(expected.enriched)
    stats["late_orders_never_on_time"] = len({d.order_id for d in expected.late} - set(expected.enriched))
    expected.stats = dict(sorted(stats.items()))
    return expected
