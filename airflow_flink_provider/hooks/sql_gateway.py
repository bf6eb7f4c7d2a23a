"""Hook for the Flink SQL Gateway REST API: sessions, statements, results."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from airflow_flink_provider.hooks.base import FlinkBaseHook
from airflow_flink_provider.protocol import sql_gateway
from airflow_flink_provider.protocol.http import Exchange
from airflow_flink_provider.protocol.sql_gateway import StatementResult

__all__ = ["FlinkSqlGatewayHook", "StatementResult"]

T = TypeVar("T")


class FlinkSqlGatewayHook(FlinkBaseHook):
    """Talk to a Flink SQL Gateway (default port 8083).

    The API version is negotiated once per hook (``GET /api_versions``, highest of v4/v3/v2). Each method
    runs the exchange of the same name in :mod:`airflow_flink_provider.protocol.sql_gateway`.

    :param flink_sql_gateway_conn_id: Airflow connection of type ``flink_sql_gateway``.
    """

    conn_name_attr = "flink_sql_gateway_conn_id"
    default_conn_name = "flink_sql_gateway_default"
    conn_type = "flink_sql_gateway"
    hook_name = "Apache Flink SQL Gateway"
    default_port = 8083

    def __init__(self, flink_sql_gateway_conn_id: str = default_conn_name) -> None:
        super().__init__(flink_sql_gateway_conn_id)
        self.flink_sql_gateway_conn_id = flink_sql_gateway_conn_id
        self._api_version: str | None = None

    def test_connection(self) -> tuple[bool, str]:
        """Check that the gateway answers (used by the Airflow UI's Test button)."""
        try:
            info = self.get_info()
        except Exception as error:
            return False, str(error)
        return True, f"{info.get('productName')} {info.get('version')} SQL Gateway, API {self.get_api_version()}"

    def get_api_version(self) -> str:
        """The negotiated API version, e.g. ``"v4"`` (asked once, then cached)."""
        if self._api_version is None:
            self._api_version = self.run(sql_gateway.negotiate_version())
        return self._api_version

    def _call(self, exchange: Callable[..., Exchange[T]], *args: Any, **kwargs: Any) -> T:
        """Run a gateway exchange at the negotiated API version (every gateway URL starts with it).

        :param exchange: a function of :mod:`airflow_flink_provider.protocol.sql_gateway` taking ``version``.
        :param args: its arguments.
        :param kwargs: its keyword arguments.
        """
        return self.run(exchange(*args, version=self.get_api_version(), **kwargs))

    def get_info(self) -> dict[str, Any]:
        """``productName`` and ``version`` of the Flink behind the gateway."""
        return self._call(sql_gateway.get_info)

    def open_session(self, properties: dict[str, str] | None = None, session_name: str | None = None) -> str:
        """Open a session; returns its handle.

        Repeated only when the request surely never reached the gateway (refused connection, 429). When its
        answer is lost (a reset after sending, a read timeout, a 5xx) it raises
        :class:`~airflow_flink_provider.protocol.errors.FlinkConnectionError` instead of opening a second
        session: the gateway cannot list sessions, so one it may have opened stays open until
        ``sql-gateway.session.idle-timeout``; the task's retry opens exactly one new session.

        :param properties: session configuration.
        :param session_name: a name for the gateway's logs.
        """
        return self._call(sql_gateway.open_session, properties, session_name)

    def heartbeat(self, session: str) -> None:
        """Keep an idle session alive.

        :param session: session handle.
        """
        self._call(sql_gateway.heartbeat, session)

    def close_session(self, session: str) -> None:
        """Close a session (already closed or unknown is fine). INSERT jobs it started keep running.

        :param session: session handle.
        """
        self._call(sql_gateway.close_session, session)

    def session_exists(self, session: str) -> bool:
        """Whether the gateway still knows the session.

        :param session: session handle.
        """
        return self._call(sql_gateway.session_exists, session)

    def get_session_config(self, session: str) -> dict[str, str]:
        """The session's effective configuration.

        :param session: session handle.
        """
        return self._call(sql_gateway.get_session_config, session)

    def configure_session(self, session: str, statement: str) -> None:
        """Run a DDL, ``USE``, ``SET``/``RESET`` or ``ADD JAR`` statement synchronously in the session.

        :param session: session handle.
        :param statement: one statement.
        """
        self._call(sql_gateway.configure_session, session, statement)

    def execute_statement(
        self,
        session: str,
        statement: str,
        *,
        execution_config: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> str:
        """Queue one statement; returns the operation handle (errors surface when fetching).

        With ``timeout``, also wait until the statement finished executing (a DDL ran, an INSERT's job was
        submitted, a query's result can be fetched): if it has not after ``timeout`` seconds, its operation is
        cancelled and closed and ``FlinkTimeoutError`` names it. The timeout is kept by the client: the Flink 2.1
        gateway refuses its own ``executionTimeout``.

        :param session: session handle.
        :param statement: one statement.
        :param execution_config: configuration for this statement only.
        :param timeout: seconds the statement may take to execute (``None``: return once it is queued).
        """
        return self._call(
            sql_gateway.execute_statement, session, statement, execution_config=execution_config, timeout=timeout
        )

    def get_operation_status(self, session: str, operation: str) -> str:
        """The operation's status.

        :param session: session handle.
        :param operation: operation handle.
        """
        return self._call(sql_gateway.get_operation_status, session, operation)

    def wait_for_operation(self, session: str, operation: str, *, timeout: float | None = None) -> str:
        """Wait until the operation ends; returns its status, raises the typed error on ERROR.

        :param session: session handle.
        :param operation: operation handle.
        :param timeout: seconds to wait (``None``: no limit).
        """
        return self._call(sql_gateway.wait_for_operation, session, operation, timeout=timeout)

    def fetch_results(
        self, session: str, operation: str, *, row_limit: int = 1000, timeout: float | None = None
    ) -> StatementResult:
        """Fetch the operation's result until EOS or ``row_limit`` rows; raises the statement's typed error.

        :param session: session handle.
        :param operation: operation handle.
        :param row_limit: stop after this many rows (``truncated`` is then set).
        :param timeout: seconds to wait in all (``None``: no limit).
        """
        return self._call(sql_gateway.fetch_results, session, operation, row_limit=row_limit, timeout=timeout)

    def run_statement(
        self, session: str, statement: str, *, row_limit: int = 1000, timeout: float | None = None
    ) -> StatementResult:
        """Execute one statement, fetch its result and close the operation.

        :param session: session handle.
        :param statement: one statement.
        :param row_limit: stop after this many rows.
        :param timeout: seconds from submission to the end of the result (``None``: no limit); when it runs
            out, the operation is cancelled and closed (which cancels a query's job) and ``FlinkTimeoutError``
            names it.
        """
        return self._call(sql_gateway.run_statement, session, statement, row_limit=row_limit, timeout=timeout)

    def cancel_operation(self, session: str, operation: str) -> str:
        """Cancel a running operation; returns its status (an ended operation is left as it is).

        :param session: session handle.
        :param operation: operation handle.
        """
        return self._call(sql_gateway.cancel_operation, session, operation)

    def close_operation(self, session: str, operation: str) -> str:
        """Release the operation (cancels a query's job, not an INSERT's); returns its status.

        :param session: session handle.
        :param operation: operation handle.
        """
        return self._call(sql_gateway.close_operation, session, operation)
