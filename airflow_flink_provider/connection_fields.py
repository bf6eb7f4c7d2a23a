"""The connection form's fields and the bounds of their values: one source for the form Airflow shows
(``get_provider_info``) and the parser that reads a connection (``hooks/base.transport_config_from_connection``).

Plain data, imported by ``get_provider_info`` when Airflow discovers providers, so it imports nothing.
"""

from __future__ import annotations

from typing import Any

TIMEOUT_MAX = 3600.0
"""Longest request timeout a connection may set, in seconds."""
RETRIES_MAX = 100
"""Most attempts per request a connection may set."""
RETRY_WAIT_MAX = 600.0
"""Longest first backoff wait a connection may set, in seconds."""
OUTAGE_BUDGET_MAX = 86_400.0
"""Longest outage budget a connection may set, in seconds."""

NO_AUTH = "none"
"""The auth type of a connection without auth (the form's default; an unset or null extra means the same)."""

CONNECTION_FIELDS: dict[str, dict[str, Any]] = {
    "auth_type": {
        "label": "Auth type",
        "schema": {"type": "string", "enum": [NO_AUTH, "basic", "bearer"], "default": NO_AUTH},
        "description": "none (default): no auth; basic: the Login and Password fields; bearer: the Token field.",
    },
    "token": {
        "label": "Bearer token",
        "schema": {"type": ["string", "null"], "format": "password"},
        "description": "Sent as 'Authorization: Bearer <token>' when the auth type is bearer.",
    },
    "verify": {
        "label": "TLS verification",
        "schema": {"type": "boolean", "default": True},
        "description": "Verify the server's TLS certificate (default: on). For a private CA, set the CA bundle.",
    },
    "ca_bundle": {
        "label": "CA bundle (PEM path)",
        "schema": {"type": ["string", "null"]},
        "description": "Path of the CA certificates (PEM) to verify the server with, when TLS verification is on.",
    },
    "cert": {
        "label": "Client certificate (PEM path)",
        "schema": {"type": ["string", "null"]},
        "description": "Path of a PEM file holding the client certificate and its key, for mutual TLS "
        "(in the Extra JSON also [cert_path, key_path]).",
    },
    "timeout": {
        "label": "Request timeout (seconds)",
        "schema": {"type": ["number", "null"], "default": 30, "exclusiveMinimum": 0, "maximum": TIMEOUT_MAX},
    },
    "retries": {
        "label": "Attempts per request",
        "schema": {"type": ["integer", "null"], "default": 5, "minimum": 1, "maximum": RETRIES_MAX},
        "description": "Tries for connection errors, timeouts, 429 and 5xx, with exponential backoff.",
    },
    "retry_wait": {
        "label": "First retry wait (seconds)",
        "schema": {"type": ["number", "null"], "default": 0.5, "minimum": 0, "maximum": RETRY_WAIT_MAX},
        "description": "Wait before the second try of a request; it doubles with each try (capped at 10 s).",
    },
    "outage_budget": {
        "label": "Outage budget (seconds)",
        "schema": {"type": ["number", "null"], "default": 60, "minimum": 0, "maximum": OUTAGE_BUDGET_MAX},
        "description": "How long a wait (sensor, trigger, the operators' waits) rides out refused connections, "
        "timeouts, 429 and 5xx answers (e.g. a JobManager leader election) before it fails.",
    },
}
"""Fields of both connection types, read by ``transport_config_from_connection``."""

REST_FIELDS: dict[str, dict[str, Any]] = {
    "ui_url": {
        "label": "Web UI URL",
        "schema": {"type": ["string", "null"]},
        "description": "Base URL of the Flink web UI for task links, when it differs from the REST address "
        "(e.g. behind a proxy).",
    }
}
"""Fields of the ``flink`` (REST) connection only, read by ``links/flink_ui.flink_ui_url``."""
