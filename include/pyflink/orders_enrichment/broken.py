"""orders_enrichment broken: v1 with an extra aggregate (the largest order per window). Its window state
is incompatible with v1/v2 savepoints: restoring one fails. For rollback drills only.

A deliberately bad upgrade, for the rollback drill and its test. It changes the window aggregate's state (one
more aggregate, the largest order), so it cannot restore a v1/v2 savepoint: the aggregate's uid is the same
but its accumulators are not, and the task fails while restoring with ``StateMigrationException`` (the new
state serializer is incompatible). Started without a savepoint it runs fine, which is what makes the mistake
easy to ship. The upgrade DAG's health gate catches it and rolls back.

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
SINK_COLUMNS = ("max_order_cents BIGINT",)


def largest_order() -> list[Any]:
    """The largest order per window: one more aggregate function, so the window operator's state changes."""
    from pyflink.table.expressions import col

    return [col("amount_cents").max.alias("max_order_cents")]


if __name__ == "__main__":
    sys.exit(jobkit.main(VERSION, __doc__ or VERSION, largest_order, SINK_COLUMNS))
