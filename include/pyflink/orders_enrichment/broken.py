"""orders_enrichment broken: a deliberately bad upgrade, for the rollback drill and its test.

It changes the window aggregate's state (one more aggregate, the largest order), so it cannot restore a
v1/v2 savepoint: the aggregate's uid is the same but its accumulators are not, and the task fails while
restoring with ``StateMigrationException`` (the new state serializer is incompatible). Started without a
savepoint it runs fine, which is what makes the mistake easy to ship. The upgrade DAG's health gate catches
it and rolls back.

Never deploy it outside a drill. Run it (see README.md):
``.stack/flink/bin/flink run -py include/pyflink/orders_enrichment/broken.py -s <v1 savepoint> ...``
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package, also when run via a symlink

from orders_enrichment import jobkit

VERSION = "broken"
DESCRIPTION = (
    "orders_enrichment broken: v1 with an extra aggregate (the largest order per window). Its window state "
    "is incompatible with v1/v2 savepoints: restoring one fails. For rollback drills only."
)
SINK_COLUMNS = ("max_order_cents BIGINT",)


def build(t_env: Any, settings: jobkit.Settings) -> Any:
    """v1's pipeline with one more aggregate, which changes the window operator's state.

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
            col("amount_cents").max.alias("max_order_cents"),
            lit(VERSION).alias("job_version"),
        )
    )


if __name__ == "__main__":
    sys.exit(jobkit.main(VERSION, DESCRIPTION, build, SINK_COLUMNS))
