"""orders_enrichment v1: keeps PAID orders with a positive quantity, adds the product's category from the
products reference file, and writes per-category order count, units and revenue per tumbling event-time
window to Kafka.

Run it (see include/pyflink/README.md):
``.stack/flink/bin/flink run -py include/pyflink/orders_enrichment/v1.py --source-topic ... --sink-topic ...``
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package, also when run via a symlink

from orders_enrichment import jobkit

VERSION = "v1"

if __name__ == "__main__":
    sys.exit(jobkit.main(VERSION, __doc__ or VERSION))
