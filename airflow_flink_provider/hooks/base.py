"""From an Airflow connection to a transport: the part both Flink hooks share."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from airflow_flink_provider.hooks.transport import (
    AsyncTransport,
    BasicAuth,
    BearerAuth,
    SyncTransport,
    TransportConfig,
)
from airflow_flink_provider.protocol.http import Exchange, RetryPolicy

if TYPE_CHECKING:
    from airflow.sdk import Connection

T = TypeVar("T")

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _verify(value: Any) -> bool | str:
    """``verify`` extra: a bool, a bool-ish string, or a CA bundle path."""
    if isinstance(value, bool):
        return value
    text = str(value).strip()
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    return text


def _positive(extra: dict[str, Any], key: str, default: float) -> float:
    value = extra.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"connection extra {key!r} must be a number, got {value!r}") from None
    if number <= 0:
        raise ValueError(f"connection extra {key!r} must be positive, got {value!r}")
    return number


def _auth(conn: Connection, extra: dict[str, Any]) -> BasicAuth | BearerAuth | None:
    auth_type = str(extra.get("auth_type") or "").lower()
    token = extra.get("token")
    if auth_type not in ("", "basic", "bearer"):
        raise ValueError(f"connection extra auth_type must be 'basic' or 'bearer', got {auth_type!r}")
    if auth_type == "bearer" or (not auth_type and token and not conn.login):
        secret = token or conn.password
        if not secret:
            raise ValueError("bearer auth needs a token (extra 'token' or the connection password)")
        return BearerAuth(str(secret))
    if conn.login:
        return BasicAuth(conn.login, conn.password or "")
    if auth_type == "basic":
        raise ValueError("basic auth needs the connection login")
    return None


def transport_config_from_connection(conn: Connection, default_port: int) -> TransportConfig:
    """Build the transport settings of a Flink connection.

    ``conn.host`` may carry a scheme and path prefix (``https://flink.example.com/flink``); ``conn.port``
    (or a port in the host URL) overrides ``default_port``. Login/password give basic auth. Extra:
    ``{"auth_type": "basic"|"bearer", "token": "...", "verify": true|false|"/path/ca.pem",
    "cert": "/path/client.pem" or ["/path/cert.pem", "/path/key.pem"], "timeout": 30, "retries": 5,
    "retry_wait": 0.5}``.

    :param conn: the Airflow connection.
    :param default_port: port when neither the connection nor its host gives one.
    """
    extra = dict(conn.extra_dejson or {})
    host = (conn.host or "").strip() or "localhost"
    scheme = "http"
    if "://" in host:
        parts = urlsplit(host)
        scheme = parts.scheme.lower()
        netloc_host = parts.hostname or "localhost"
        port = conn.port or parts.port or default_port
        prefix = parts.path.rstrip("/")
    else:
        schema = (conn.schema or "").lower()
        scheme = schema if schema in ("http", "https") else scheme
        netloc_host, port, prefix = host.rstrip("/"), conn.port or default_port, ""
    if scheme not in ("http", "https"):
        raise ValueError(f"connection {conn.conn_id!r}: scheme must be http or https, got {scheme!r}")
    if ":" in netloc_host and not netloc_host.startswith("["):
        netloc_host = f"[{netloc_host}]"  # IPv6 literal
    cert = extra.get("cert")
    retries = int(_positive(extra, "retries", RetryPolicy.attempts))
    return TransportConfig(
        base_url=f"{scheme}://{netloc_host}:{port}{prefix}",
        auth=_auth(conn, extra),
        verify=_verify(extra.get("verify", True)),
        cert=(str(cert[0]), str(cert[1])) if isinstance(cert, list | tuple) else cert,
        timeout=_positive(extra, "timeout", 30.0),
        retry=RetryPolicy(attempts=retries, initial=_positive(extra, "retry_wait", RetryPolicy.initial)),
    )


class FlinkBaseHook(BaseHook):
    """A hook whose connection points at one Flink HTTP endpoint.

    :param conn_id: the Airflow connection id.
    """

    conn_name_attr: ClassVar[str]
    default_conn_name: ClassVar[str]
    conn_type: ClassVar[str]
    hook_name: ClassVar[str]
    default_port: ClassVar[int]

    def __init__(self, conn_id: str) -> None:
        super().__init__()
        self.conn_id = conn_id

    @cached_property
    def transport_config(self) -> TransportConfig:
        """Transport settings read from the connection (read once per hook)."""
        return transport_config_from_connection(self.get_connection(self.conn_id), self.default_port)

    @cached_property
    def transport(self) -> SyncTransport:
        """The hook's pooled synchronous transport."""
        return SyncTransport(self.transport_config)

    def get_conn(self) -> SyncTransport:
        """The synchronous transport (Airflow's hook convention)."""
        return self.transport

    def run(self, exchange: Exchange[T]) -> T:
        """Run any protocol exchange over this hook's connection.

        :param exchange: e.g. ``rest.get_job(job_id)``.
        """
        return self.transport.run(exchange)

    def async_transport(self) -> AsyncTransport:
        """An async transport with the same settings (reads the connection synchronously)."""
        return AsyncTransport(self.transport_config)

    @classmethod
    async def aget_async_transport(cls, conn_id: str) -> AsyncTransport:
        """An async transport for ``conn_id``, reading the connection without blocking the event loop.

        :param conn_id: the Airflow connection id.
        """
        conn = await cls.aget_connection(conn_id)
        return AsyncTransport(transport_config_from_connection(conn, cls.default_port))

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """How the connection form looks in the Airflow UI."""
        return {
            "hidden_fields": ["schema"],
            "relabeling": {"host": "Host (may include http:// or https:// and a path prefix)"},
            "placeholders": {
                "host": "127.0.0.1",
                "port": str(cls.default_port),
                "extra": '{"auth_type": "basic", "verify": true, "timeout": 30, "retries": 5}',
            },
        }
