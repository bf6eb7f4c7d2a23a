"""A loopback HTTP proxy in front of a real server that can lose answers (see :mod:`tests.support.faults`).

Each request is forwarded to the upstream server and carried out there; a fault then replaces the answer
(dropped connection, 502/504, reset, hang). Used to lose the answer of the real JobManager's
``POST /jars/{id}/run`` after the job started.
"""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

from tests.support.faults import FaultPlan, FaultyHandler
from tests.support.loopback import LoopbackServer

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class FaultProxy(LoopbackServer):
    """``with FaultProxy("http://127.0.0.1:8081") as proxy: ... proxy.port ... proxy.inject(...)``.

    :param upstream: the real server's base URL.
    :param hang_for: seconds a ``hang`` fault holds the connection.
    """

    def __init__(self, upstream: str, *, hang_for: float = 3.0) -> None:
        self.plan = FaultPlan()
        self.inject = self.plan.inject
        self.clear_faults = self.plan.clear_faults
        self.count = self.plan.count
        target = urlsplit(upstream)
        host, port, plan = target.hostname or "127.0.0.1", target.port or 80, self.plan

        class Handler(FaultyHandler):
            def respond(self, method: str, path: str, raw: bytes) -> tuple[int, dict[str, str], bytes]:
                headers = {name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP}
                connection = http.client.HTTPConnection(host, port, timeout=120)
                try:
                    connection.request(method, path, body=raw or None, headers=headers)
                    answer = connection.getresponse()
                    body = answer.read()
                    kept = {name: value for name, value in answer.getheaders() if name.lower() not in _HOP_BY_HOP}
                    return answer.status, kept, body
                finally:
                    connection.close()

        Handler.plan = plan
        Handler.hang_for = hang_for
        super().__init__(Handler, name="fault-proxy")
