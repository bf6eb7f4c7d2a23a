"""orders_enrichment v2: as v1 (PAID orders with a positive quantity, enriched with the product's category,
aggregated per category and tumbling event-time window) plus avg_order_cents, the average order value.
Restores from v1 savepoints.

The change is compatible: the stateful operators (sources, temporal join, window aggregate with the same
aggregates, sink) stay the same and in the same order, so their uids stay the same (see ``jobkit``). Only
the stateless projection after the aggregate computes one more column.

Run it (see README.md): ``.stack/flink/bin/flink run -py include/pyflink/orders_enrichment/v2.py ...``
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package, also when run via a symlink

from orders_enrichment import jobkit

VERSION = "v2"
SINK_COLUMNS = ("avg_order_cents BIGINT",)


def average_order() -> list[Any]:
    """The average order value, computed from the window's existing aggregates (no new state)."""
    from pyflink.table import DataTypes
    from pyflink.table.expressions import col

    return [(col("amount_cents").sum / col("order_id").count).cast(DataTypes.BIGINT()).alias("avg_order_cents")]


if __name__ == "__main__":
    sys.exit(jobkit.main(VERSION, __doc__ or VERSION, average_order, SINK_COLUMNS))
