"""Orders enrichment: versioned PyFlink Table API jobs (v1, v2, and the deliberately broken v3_broken).

Kafka order events are filtered (paid orders with a positive quantity), enriched with their product's
category from a reference CSV (an event-time temporal join), counted per category in tumbling event-time
windows and written to Kafka. ``jobkit`` holds what the versions share.
"""
