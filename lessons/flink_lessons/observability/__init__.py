"""The glue of ``flink_observability`` and ``flink_dlq_alerts``: settings, collection, history, alerts, report."""
