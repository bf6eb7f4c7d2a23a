"""What every loopback HTTP server of the tests and benchmarks shares: serving in a thread for a ``with`` block,
and a handler that reads and writes whole messages.

:class:`~tests.support.proxy.FaultProxy`, :class:`~tests.support.fake_flink.FakeFlink`, the chaos servers'
:class:`~tests.support.chaos_server.OutageProxy` and the benchmarks' counting proxy are built on it.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class LoopbackServer:
    """An HTTP server on 127.0.0.1 that serves in a daemon thread: ``with server: ... server.url ...``.

    :param handler: the request handler class.
    :param name: the serving thread's name.
    :param port: the port to listen on; 0 picks a free one.
    """

    def __init__(self, handler: type[BaseHTTPRequestHandler], *, name: str, port: int = 0) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Serve (in the thread) from now on."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LoopbackHandler(BaseHTTPRequestHandler):
    """A request handler that keeps connections alive (HTTP/1.1), logs nothing, and reads and answers whole."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def read_body(self) -> bytes:
        """The request's body (``Content-Length`` bytes; empty without one)."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
        """Write one whole answer: status line, headers, ``Content-Length`` (of ``body``), body.

        :param status: the HTTP status.
        :param headers: headers to send (without ``Content-Length``).
        :param body: the body.
        """
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
