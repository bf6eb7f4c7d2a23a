"""From an Airflow connection to a transport: the part both Flink hooks share."""

from __future__ import annotations

import base64
import json
import math
import os
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from airflow_flink_provider.connection_fields import (
    NO_AUTH,
    OUTAGE_BUDGET_MAX,
    RETRIES_MAX,
    RETRY_WAIT_MAX,
    TIMEOUT_MAX,
)
from airflow_flink_provider.protocol.http import Exchange, RetryPolicy
from airflow_flink_provider.protocol.redaction import find_secrets

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from airflow_flink_provider.hooks.transport import (
        AsyncTransport,
        BasicAuth,
        BearerAuth,
        SyncTransport,
        TransportConfig,
    )

# The transport (requests, urllib3, httpx, tenacity: ~0.1 s) is imported when a hook first talks to Flink, not when
# a DAG file that names a hook is parsed.

T = TypeVar("T")

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def mask_secrets(*values: Any) -> None:
    """Register values with Airflow's secrets masker (task process and supervisor), so logs show ``***``.

    Empty values and ``None`` are skipped.

    :param values: passwords, tokens...
    """
    from airflow.sdk.log import mask_secret

    for value in values:
        if value:
            mask_secret(str(value))


def mask_secrets_in(*values: Any) -> list[str]:
    """Find the secrets in SQL, arguments or options (:func:`find_secrets`) and register them with the masker.

    Call it right after templates are rendered (Airflow stores rendered fields before ``execute`` runs), so
    the rendered-fields view, the logs and every copy of the values show ``***``.

    :param values: strings, or lists/mappings of them (e.g. ``program_args``, ``session_properties``).
    :return: the secrets found.
    """
    secrets: list[str] = []
    for value in values:
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        secrets.extend(find_secrets(text))
    mask_secrets(*secrets)
    return secrets


async def amask_secrets(*values: Any) -> None:
    """:func:`mask_secrets` for async code (triggers): never blocks the event loop.

    :param values: passwords, tokens...
    """
    from airflow.sdk.log import amask_secret

    for value in values:
        if value:
            await amask_secret(str(value))


def config_secrets(config: TransportConfig) -> list[str]:
    """The credentials a transport config carries: the password or token, and the basic-auth header value.

    :param config: a transport config.
    """
    from airflow_flink_provider.hooks.transport import BasicAuth, BearerAuth

    if isinstance(config.auth, BearerAuth):
        return [config.auth.token]
    if isinstance(config.auth, BasicAuth) and config.auth.password:
        header = base64.b64encode(f"{config.auth.username}:{config.auth.password}".encode()).decode()
        return [config.auth.password, header]
    return []


class _Extras:
    """A connection's extras, read with checks whose errors name the connection and the extra.

    An extra set to ``null`` means "the default", as an empty field of the connection form does.

    :param conn: the connection.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn_id = conn.conn_id
        if conn.extra:
            try:
                json.loads(conn.extra)
            except ValueError as err:  # extra_dejson would log it and go on with no extras at all
                raise self.error(f"the extras are not valid JSON ({err})") from None
        extra = conn.extra_dejson
        if extra is None:  # "null": no extras
            extra = {}
        if not isinstance(extra, dict):
            raise self.error(f"the extras must be a JSON object, got {type(extra).__name__}")
        self.values = {key: value for key, value in extra.items() if value is not None}

    def error(self, message: str, key: str | None = None) -> ValueError:
        """A ValueError naming the connection (and the extra).

        :param message: what is wrong.
        :param key: the extra at fault.
        """
        where = f"Connection {self.conn_id!r}" + (f", extra {key!r}" if key else "")
        return ValueError(f"{where}: {message}")

    def get(self, key: str) -> Any:
        """The extra's value, ``None`` when unset or null.

        :param key: the extra.
        """
        return self.values.get(key)

    def number(self, key: str, default: float, *, maximum: float, allow_zero: bool = False) -> float:
        """A finite number of seconds in ``(0, maximum]`` (``[0, maximum]`` with ``allow_zero``).

        :param key: the extra.
        :param default: its value when unset.
        :param maximum: the largest value allowed.
        :param allow_zero: whether 0 is allowed.
        """
        value = self.values.get(key, default)
        number = _to_float(value)
        lowest = "0" if allow_zero else "more than 0"
        if number is None or not math.isfinite(number):
            raise self.error(f"must be a finite number of seconds, got {value!r}", key)
        if number < 0 or (number == 0 and not allow_zero) or number > maximum:
            raise self.error(f"must be from {lowest} to {maximum:g} seconds, got {value!r}", key)
        return number

    def integer(self, key: str, default: int, *, minimum: int, maximum: int) -> int:
        """A whole number in ``[minimum, maximum]`` (``5``, ``5.0`` and ``"5"`` are all 5).

        :param key: the extra.
        :param default: its value when unset.
        :param minimum: the smallest value allowed.
        :param maximum: the largest value allowed.
        """
        value = self.values.get(key, default)
        number = _to_float(value)
        if number is None or not math.isfinite(number) or number != int(number):
            raise self.error(f"must be a whole number, got {value!r}", key)
        if not minimum <= number <= maximum:
            raise self.error(f"must be from {minimum} to {maximum}, got {value!r}", key)
        return int(number)

    def verify(self) -> bool | str:
        """``verify``: true/false (or a bool-ish string), or the path of an existing CA bundle file; with
        ``verify`` on, a ``ca_bundle`` path is the CA bundle."""
        checked = self._verify()
        bundle = self.values.get("ca_bundle")
        if bundle is None or checked is False:
            return checked
        if not isinstance(bundle, str) or not bundle.strip() or not os.path.isfile(bundle.strip()):
            raise self.error(f"must be the path of an existing CA bundle file (PEM), got {bundle!r}", "ca_bundle")
        return bundle.strip()

    def _verify(self) -> bool | str:
        value = self.values.get("verify", True)
        if isinstance(value, bool):
            return value
        if not isinstance(value, str):
            raise self.error(f"must be true, false or the path of a CA bundle file, got {value!r}", "verify")
        text = value.strip()
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        if not text:
            raise self.error(
                "is empty: set true (verify TLS, the default), false (do not verify) or the path of a CA bundle "
                "file; remove the extra or set it to null for the default",
                "verify",
            )
        if not os.path.isfile(text):
            raise self.error(f"is not true/false and no CA bundle file exists at {text!r}", "verify")
        return text

    def cert(self) -> str | tuple[str, str] | None:
        """``cert``: one PEM path holding certificate and key, or ``[cert_path, key_path]``."""
        value = self.values.get("cert")
        if value is None:
            return None
        if isinstance(value, str) and value.strip():
            return value.strip()
        if (
            isinstance(value, list | tuple)
            and len(value) == 2
            and all(isinstance(part, str) and part.strip() for part in value)
        ):
            return value[0].strip(), value[1].strip()
        raise self.error(
            f"must be the path of a PEM file or a list of exactly 2 paths [cert, key], got {value!r}", "cert"
        )


def _to_float(value: Any) -> float | None:
    """A number or numeric string as a float; ``None`` for anything else (booleans included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _port(extras: _Extras, value: Any) -> int:
    """A TCP port: 1..65535."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise extras.error(f"port must be from 1 to 65535, got {value!r}")
    return value


def _auth(conn: Connection, extras: _Extras) -> BasicAuth | BearerAuth | None:
    from airflow_flink_provider.hooks.transport import BasicAuth, BearerAuth

    auth_type = extras.get("auth_type") or ""
    if not isinstance(auth_type, str) or auth_type.strip().lower() not in ("", NO_AUTH, "basic", "bearer"):
        raise extras.error(f"must be '{NO_AUTH}', 'basic' or 'bearer', got {auth_type!r}", "auth_type")
    auth_type = "" if auth_type.strip().lower() == NO_AUTH else auth_type.strip().lower()
    token = extras.get("token")
    if token is not None and not isinstance(token, str):
        raise extras.error(f"must be a string, got a {type(token).__name__}", "token")
    if auth_type == "bearer" or (not auth_type and token and not conn.login):
        secret = token or conn.password
        if not secret:
            raise extras.error("bearer auth needs a token (extra 'token' or the connection password)", "auth_type")
        return BearerAuth(str(secret))
    if conn.login:
        return BasicAuth(conn.login, conn.password or "")
    if auth_type == "basic":
        raise extras.error("basic auth needs the connection login", "auth_type")
    return None


def transport_config_from_connection(conn: Connection, default_port: int) -> TransportConfig:
    """Build the transport settings of a Flink connection, checking every extra.

    ``conn.host`` may carry a scheme and path prefix (``https://flink.example.com/flink``); ``conn.port``
    (or a port in the host URL) overrides ``default_port``. Login/password give basic auth. Extra:
    ``{"auth_type": "none"|"basic"|"bearer", "token": "...", "verify": true|false|"/path/ca.pem",
    "ca_bundle": "/path/ca.pem",
    "cert": "/path/client.pem" or ["/path/cert.pem", "/path/key.pem"], "timeout": 30, "retries": 5,
    "retry_wait": 0.5, "outage_budget": 60}``; an extra set to ``null`` takes its default. Nothing is
    masked here: :class:`FlinkBaseHook` registers the credentials with the masker (:func:`config_secrets`).

    :param conn: the Airflow connection.
    :param default_port: port when neither the connection nor its host gives one.
    :raises ValueError: naming the connection and the extra, for any value out of its rule.
    """
    extras = _Extras(conn)
    host = (conn.host or "").strip() or "localhost"
    scheme = "http"
    if "://" in host:
        parts = urlsplit(host)
        scheme = parts.scheme.lower()
        netloc_host = parts.hostname or "localhost"
        try:
            url_port = parts.port
        except ValueError:
            raise extras.error(f"the host URL's port must be from 1 to 65535, got {host!r}") from None
        port = conn.port or url_port or default_port
        prefix = parts.path.rstrip("/")
    else:
        schema = (conn.schema or "").lower()
        scheme = schema if schema in ("http", "https") else scheme
        netloc_host, port, prefix = host.rstrip("/"), conn.port or default_port, ""
    if scheme not in ("http", "https"):
        raise extras.error(f"scheme must be http or https, got {scheme!r}")
    if ":" in netloc_host and not netloc_host.startswith("["):
        netloc_host = f"[{netloc_host}]"  # IPv6 literal
    retry = RetryPolicy(
        attempts=extras.integer("retries", RetryPolicy.attempts, minimum=1, maximum=RETRIES_MAX),
        initial=extras.number("retry_wait", RetryPolicy.initial, maximum=RETRY_WAIT_MAX, allow_zero=True),
    )
    from airflow_flink_provider.hooks.transport import TransportConfig

    return TransportConfig(
        base_url=f"{scheme}://{netloc_host}:{_port(extras, port)}{prefix}",
        auth=_auth(conn, extras),
        verify=extras.verify(),
        cert=extras.cert(),
        timeout=extras.number("timeout", 30.0, maximum=TIMEOUT_MAX),
        retry=retry,
        outage_budget=extras.number("outage_budget", 60.0, maximum=OUTAGE_BUDGET_MAX, allow_zero=True),
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
        """Transport settings read from the connection (read once per hook); its credentials are masked."""
        config = transport_config_from_connection(self.get_connection(self.conn_id), self.default_port)
        mask_secrets(*config_secrets(config))
        return config

    @cached_property
    def transport(self) -> SyncTransport:
        """The hook's pooled synchronous transport."""
        from airflow_flink_provider.hooks.transport import SyncTransport

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
        from airflow_flink_provider.hooks.transport import AsyncTransport

        return AsyncTransport(self.transport_config)

    @classmethod
    async def aget_async_transport(cls, conn_id: str) -> AsyncTransport:
        """An async transport for ``conn_id``, reading the connection without blocking the event loop.

        :param conn_id: the Airflow connection id.
        """
        conn = await cls.aget_connection(conn_id)
        config = transport_config_from_connection(conn, cls.default_port)
        await amask_secrets(*config_secrets(config))
        from airflow_flink_provider.hooks.transport import AsyncTransport

        return AsyncTransport(config)
