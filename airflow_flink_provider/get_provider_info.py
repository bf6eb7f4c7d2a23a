"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

INTEGRATION = "Apache Flink"

_TLS_AND_AUTH_FIELDS: dict[str, dict[str, Any]] = {
    "auth_type": {
        "label": "Auth type",
        "schema": {"type": ["string", "null"], "enum": ["basic", "bearer", None], "default": None},
        "description": "basic: the Login and Password fields; bearer: the Token field. Empty: no auth.",
    },
    "token": {
        "label": "Bearer token",
        "schema": {"type": ["string", "null"], "format": "password"},
        "description": "Sent as 'Authorization: Bearer <token>' when the auth type is bearer.",
    },
    "verify": {
        "label": "TLS verification",
        "schema": {"type": ["string", "null"], "default": "true"},
        "description": "true (default), false, or the path of a CA bundle (PEM) to verify the server with.",
    },
    "timeout": {
        "label": "Request timeout (seconds)",
        "schema": {"type": ["number", "null"], "default": 30, "exclusiveMinimum": 0, "maximum": 3600},
    },
    "retries": {
        "label": "Attempts per request",
        "schema": {"type": ["integer", "null"], "default": 5, "minimum": 1, "maximum": 100},
        "description": "Tries for connection errors, timeouts, 429 and 5xx, with exponential backoff.",
    },
    "retry_wait": {
        "label": "First retry wait (seconds)",
        "schema": {"type": ["number", "null"], "default": 0.5, "minimum": 0, "maximum": 600},
        "description": "Wait before the second try of a request; it doubles with each try (capped at 10 s).",
    },
    "outage_budget": {
        "label": "Outage budget (seconds)",
        "schema": {"type": ["number", "null"], "default": 60, "minimum": 0, "maximum": 86400},
        "description": "How long a wait (sensor, trigger, the operators' waits) rides out refused connections, "
        "timeouts, 429 and 5xx answers (e.g. a JobManager leader election) before it fails.",
    },
}


def _connection_type(
    conn_type: str, hook: str, hook_name: str, port: int, extra_fields: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """One ``connection-types`` entry: the hook, its form fields and how the standard fields look."""
    return {
        "connection-type": conn_type,
        "hook-class-name": hook,
        "hook-name": hook_name,
        "conn-fields": {**_TLS_AND_AUTH_FIELDS, **extra_fields},
        "ui-field-behaviour": {
            "hidden-fields": ["schema"],
            "relabeling": {"host": "Host (http[s]://host or host)", "login": "Username (basic auth)"},
            "placeholders": {
                "host": "https://flink.example.com or 127.0.0.1",
                "port": str(port),
                "login": "optional",
                "password": "optional",
                "extra": '{"verify": "/etc/ssl/certs/ca.pem", "timeout": 30, "retries": 5}',
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
        "versions": ["0.1.0"],
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
                {
                    "ui_url": {
                        "label": "Web UI URL",
                        "schema": {"type": ["string", "null"]},
                        "description": "Base URL of the Flink web UI for task links, when it differs from "
                        "the REST address (e.g. behind a proxy).",
                    }
                },
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
