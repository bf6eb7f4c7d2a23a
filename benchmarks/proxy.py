"""A counting HTTP proxy in front of Flink's REST API: every request and TCP connection a client makes.

The sensor benchmark points its Airflow connection at it, so the figures are the real calls on the wire,
whatever transport (requests, httpx) and retries the provider uses.
"""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from benchmarks.httprec import normalize_path

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"}


class CountingProxy:
    """Forward HTTP/1.1 requests to ``upstream`` and count them.

    :param upstream: e.g. ``http://127.0.0.1:8081``.
    """

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.requests: Counter[str] = Counter()
        self.connections = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with proxy._lock:
                    proxy.connections += 1
                self._upstream: http.client.HTTPConnection | None = None

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with proxy._lock:
                    proxy.requests[f"{self.command} {normalize_path(self.path)}"] += 1
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                if self._upstream is None:
                    self._upstream = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                try:
                    self._upstream.request(self.command, self.path, body=body, headers=headers)
                    resp = self._upstream.getresponse()
                    data = resp.read()
                except (OSError, http.client.HTTPException):
                    self._upstream.close()
                    self._upstream = None
                    self.send_error(502, "upstream unreachable")
                    return
                self.send_response(resp.status, resp.reason)
                for key, value in resp.getheaders():
                    if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        """The local port the proxy listens on."""
        return int(self._server.server_address[1])

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def snapshot(self) -> tuple[dict[str, int], int]:
        """Requests per ``METHOD path`` and connections so far."""
        with self._lock:
            return dict(self.requests), self.connections

    def reset(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self.requests.clear()
            self.connections = 0
