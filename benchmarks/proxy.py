"""A counting HTTP proxy in front of Flink's REST API: every request and TCP connection a client makes.

The sensor benchmark points its Airflow connection at it, so the figures are the real calls on the wire,
whatever transport (requests, httpx) and retries the provider uses.
"""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from urllib.parse import urlsplit

from benchmarks.httprec import normalize_path
from tests.support.loopback import LoopbackHandler, LoopbackServer

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"}


class CountingProxy(LoopbackServer):
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

        class Handler(LoopbackHandler):
            def setup(self) -> None:
                super().setup()
                with proxy._lock:
                    proxy.connections += 1
                self._upstream: http.client.HTTPConnection | None = None

            def _forward(self) -> None:
                body = self.read_body() or None
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
                kept = {k: v for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP | {"content-length"}}
                self.answer(resp.status, kept, data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward

        super().__init__(Handler, name="counting-proxy")

    def snapshot(self) -> tuple[dict[str, int], int]:
        """Requests per ``METHOD path`` and connections so far."""
        with self._lock:
            return dict(self.requests), self.connections

    def reset(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self.requests.clear()
            self.connections = 0
