"""orders_enrichment v2: v1 plus the average order value per window; restores v1's savepoints.

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
DESCRIPTION = (
    "orders_enrichment v2: as v1 (PAID orders with a positive quantity, enriched with the product's category, "
    "aggregated per category and tumbling event-time window) plus avg_order_cents, the average order value. "
    "Restores from v1 savepoints."
)
SINK_COLUMNS = ("avg_order_cents BIGINT",)


def build(t_env: Any, settings: jobkit.Settings) -> Any:
    """The v2 pipeline: v1's filter, enrichment and aggregates, plus the average order value.

    :param t_env: the TableEnvironment with the job's tables.
    :param settings: the job's settings.
    """
    from pyflink.table import DataTypes
    from pyflink.table.expressions import col, lit
    from pyflink.table.window import Tumble

    paid = t_env.from_path("orders").filter((col("status") == "PAID") & (col("quantity") > 0))
    t_env.create_temporary_view("paid_orders", paid)
    enriched = t_env.sql_query(jobkit.ENRICHED_SQL)
    return (
        enriched.window(Tumble.over(lit(settings.window_seconds).seconds).on(col("event_time")).alias("w"))
        .group_by(col("w"), col("category"))
        .select(
            col("w").start.alias("window_start"),
            col("w").end.alias("window_end"),
            col("category"),
            col("order_id").count.alias("orders"),
            col("quantity").sum.cast(DataTypes.BIGINT()).alias("units"),
            col("amount_cents").sum.alias("revenue_cents"),
            (col("amount_cents").sum / col("order_id").count).cast(DataTypes.BIGINT()).alias("avg_order_cents"),
            lit(VERSION).alias("job_version"),
        )
    )


if __name__ == "__main__":
    sys.exit(jobkit.main(VERSION, DESCRIPTION, build, SINK_COLUMNS))
