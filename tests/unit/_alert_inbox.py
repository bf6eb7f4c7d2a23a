"""A real SMTP receiver on loopback (aiosmtpd) and the Airflow SMTP connection pointing at it, for alert tests."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller


class Inbox:
    """aiosmtpd handler keeping every message it received."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def alerts(self) -> list[tuple[str, str, str]]:
        """``(status, job, metric)`` of each alert received, in order."""
        return [(m["X-Flink-Alert-Status"], m["X-Flink-Job"], m["X-Flink-Metric"]) for m in self.messages]


@contextmanager
def smtp_inbox(monkeypatch: pytest.MonkeyPatch, conn_id: str = "smtp_alerts") -> Iterator[Inbox]:
    """Start the receiver on a free port and set ``AIRFLOW_CONN_<CONN_ID>`` to it; stop it afterwards."""
    handler = Inbox()
    with socket.socket() as probe:  # aiosmtpd's readiness check cannot use port 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id.upper()}",
            json.dumps(
                {
                    "conn_type": "smtp",
                    "host": "127.0.0.1",
                    "port": port,
                    "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "flink-alerts@example.org"},
                }
            ),
        )
        yield handler
    finally:
        controller.stop()
