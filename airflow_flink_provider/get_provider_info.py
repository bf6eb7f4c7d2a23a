"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_flink_provider import __version__
from airflow_flink_provider.connection_fields import CONNECTION_FIELDS, REST_FIELDS

INTEGRATION = "Apache Flink"


def _connection_type(
    conn_type: str, hook: str, hook_name: str, port: int, extra_fields: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """One ``connection-types`` entry: the hook, its form fields and how the standard fields look."""
    return {
        "connection-type": conn_type,
        "hook-class-name": hook,
        "hook-name": hook_name,
        "conn-fields": {**CONNECTION_FIELDS, **extra_fields},
        "ui-field-behaviour": {
            "hidden-fields": ["schema"],
            "relabeling": {"host": "Host (http[s]://host or host)", "login": "Username (basic auth)"},
            "placeholders": {
                "host": "https://flink.example.com or 127.0.0.1",
                "port": str(port),
                "login": "optional",
                "password": "optional",
                "extra": '{"ca_bundle": "/etc/ssl/certs/ca.pem", "timeout": 30, "retries": 5}',
            },
        },
    }


def get_provider_info() -> dict[str, Any]:
    """Return the provider description Airflow's ProvidersManager validates and registers."""
    return {
        "package-name": "airflow-flink-provider",
        "name": "Apache Flink (REST API and SQL Gateway)",
        "description": "Submit Flink SQL through the SQL Gateway and jobs through the REST API, "
        "watch them without holding a worker, and manage savepoints.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://nightlies.apache.org/flink/flink-docs-release-2.1/",
                "tags": ["apache"],
            }
        ],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_flink_provider.operators.sql_gateway",
                    "airflow_flink_provider.operators.job_submit",
                    "airflow_flink_provider.operators.savepoint",
                    "airflow_flink_provider.operators.job_status",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": INTEGRATION,
                "python-modules": ["airflow_flink_provider.sensors.job_state", "airflow_flink_provider.sensors.health"],
            }
        ],
        "triggers": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_flink_provider.triggers.job_state",
                    "airflow_flink_provider.triggers.health",
                ],
            }
        ],
        "hooks": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_flink_provider.hooks.flink_rest",
                    "airflow_flink_provider.hooks.sql_gateway",
                ],
            }
        ],
        "connection-types": [
            _connection_type(
                "flink",
                "airflow_flink_provider.hooks.flink_rest.FlinkRestHook",
                "Apache Flink REST API",
                8081,
                REST_FIELDS,
            ),
            _connection_type(
                "flink_sql_gateway",
                "airflow_flink_provider.hooks.sql_gateway.FlinkSqlGatewayHook",
                "Apache Flink SQL Gateway",
                8083,
                {},
            ),
        ],
        "extra-links": ["airflow_flink_provider.links.flink_ui.FlinkJobLink"],
        "notifications": ["airflow_flink_provider.notifications.flink_alert.FlinkAlertNotifier"],
    }
