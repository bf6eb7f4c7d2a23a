"""orders_enrichment v1: paid orders, enriched with their product category, aggregated per event-time window.

Run it (see include/pyflink/README.md):
``.stack/flink/bin/flink run -py include/pyflink/orders_enrichment/v1.py --source-topic ... --sink-topic ...``
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package, also when run via a symlink

from orders_enrichment import jobkit

VERSION = "v1"
DESCRIPTION = (
    "orders_enrichment v1: keeps PAID orders with a positive quantity, adds the product's category from the "
    "products reference file, and writes per-category order count, units and revenue per tumbling "
    "event-time window to Kafka."
)


def build(t_env: Any, settings: jobkit.Settings) -> Any:
    """The v1 pipeline: filter, enrich, window aggregate.

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
            lit(VERSION).alias("job_version"),
        )
    )


if __name__ == "__main__":
    sys.exit(jobkit.main(VERSION, DESCRIPTION, build))
