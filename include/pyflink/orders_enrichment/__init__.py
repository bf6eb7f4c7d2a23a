"""Orders enrichment: versioned PyFlink Table API jobs (v1, v2, and the deliberately broken ``broken``).

Kafka order events are filtered (paid orders with a positive quantity), enriched with their product's
category from a reference CSV (an event-time temporal join), counted per category in tumbling event-time
windows and written to Kafka. ``jobkit`` holds what the versions share.
"""

VERSIONS = ("v1", "v2", "broken")
"""The versions the DAGs may deploy: each is the program ``<version>.py`` of this folder, which calls
``jobkit.main`` with ``VERSION`` set to its name (tests/unit/test_pyflink_jobkit.py checks both ways)."""
