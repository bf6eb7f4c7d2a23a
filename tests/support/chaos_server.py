"""Misbehaving HTTP on loopback, at the byte level, for the transports' chaos tests.

:class:`ChaosServer` answers each request the way its ``behave`` function says: normally, trickling the
answer one byte at a time, resetting the connection in the middle of the body, with an HTML error page (what a
proxy or load balancer sends), or with 429 (``Retry-After`` or not). It keeps connections alive like a real
server, and counts the ones still open, so a test can tell whether a client leaked them.

:class:`OutageProxy` sits in front of a real server (the local JobManager) and can make it unavailable: answer
503 like Flink during a leader election, or stop listening (connection refused) and come back on the same port.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil
import requests

from tests.support.loopback import LoopbackHandler, LoopbackServer


@dataclass(frozen=True)
class Answer:
    """How to answer one request.

    :param status: HTTP status.
    :param body: the body (a dict/list is sent as JSON).
    :param headers: extra headers.
    :param trickle: seconds between single bytes of the whole answer (status line included); 0 sends at once.
    :param reset_after: send only this many bytes of the body, then reset the connection (TCP RST).
    """

    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    trickle: float = 0.0
    reset_after: int | None = None

    def encode(self) -> tuple[bytes, bytes]:
        """The answer's head and body as bytes."""
        if isinstance(self.body, bytes):
            body, content_type = self.body, "application/octet-stream"
        elif isinstance(self.body, str):
            body, content_type = self.body.encode(), "text/html; charset=utf-8"
        else:
            body, content_type = json.dumps(self.body).encode(), "application/json; charset=UTF-8"
        headers = {"Content-Type": content_type, **self.headers, "Content-Length": str(len(body))}
        lines = [f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Status')}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode(), body


_REASONS = {
    200: "OK",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def html_error(status: int, reason: str) -> Answer:
    """The HTML error page of a proxy (nginx's shape, padded like a real one with a long body)."""
    page = (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        + "<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n" * 6
        + "</body>\r\n</html>\r\n"
    )
    return Answer(status, page)


def too_many(retry_after: str | None = None) -> Answer:
    """A 429, with or without ``Retry-After``."""
    return Answer(429, {"errors": ["Too many requests"]}, {"Retry-After": retry_after} if retry_after else {})


LEADER_ELECTION = Answer(
    503, {"errors": ["Service temporarily unavailable due to an ongoing leader election. Please refresh."]}
)
"""What Flink's REST API answers while it has no leader."""

Behave = Callable[[str, str], Answer]
"""Picks the answer for ``(method, path)``."""


class ChaosServer:
    """A loopback HTTP/1.1 server that misbehaves as told; ``with ChaosServer(behave) as server: server.url``.

    :param behave: picks each request's :class:`Answer` from its method and path.
    """

    def __init__(self, behave: Behave) -> None:
        self.behave = behave
        self.requests: list[tuple[str, str]] = []
        self.accepted = 0
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="chaos-server", daemon=True)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def open_connections(self) -> int:
        """Connections a client still holds open (the server has not seen them closed)."""
        with self._lock:
            return len(self._open)

    def count(self, method: str, pattern: str) -> int:
        """How many requests ``method`` with a path matching ``pattern`` arrived."""
        with self._lock:
            return sum(1 for m, path in self.requests if m == method and re.search(pattern, path))

    def __enter__(self) -> ChaosServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._listener.close()
        with self._lock:
            for conn in list(self._open):
                _close(conn)
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        self._listener.settimeout(0.05)  # a closed listener does not wake accept(): look at _stopped often
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            with self._lock:
                self._open.add(conn)
                self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        try:
            while not self._stopped.is_set():
                request = _read_request(reader)
                if request is None:
                    return
                method, path = request
                with self._lock:
                    self.requests.append((method, path))
                if not self._answer(conn, self.behave(method, path)):
                    return
        except OSError:
            return
        finally:
            reader.close()
            with self._lock:
                self._open.discard(conn)
            _close(conn)

    def _answer(self, conn: socket.socket, answer: Answer) -> bool:
        """Send ``answer``; whether the connection stays usable."""
        head, body = answer.encode()
        if answer.reset_after is not None:
            conn.sendall(head + body[: answer.reset_after])
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()  # with SO_LINGER 0: a TCP RST, not a FIN
            return False
        data = head + body
        if not answer.trickle:
            conn.sendall(data)
            return True
        for index in range(len(data)):
            if self._stopped.wait(answer.trickle):
                return False
            conn.sendall(data[index : index + 1])
        return True


def _read_request(reader: Any) -> tuple[str, str] | None:
    """Read one request (line, headers, body); ``None`` when the client closed the connection."""
    line = reader.readline()
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    length = 0
    while (header := reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = header.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length:
        reader.read(length)
    return method, path


def _close(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
    conn.close()


def client_sockets(port: int) -> int:
    """Established TCP connections of this process to ``127.0.0.1:port`` (to spot a leaked client)."""
    return sum(
        1
        for conn in psutil.Process().net_connections(kind="tcp")
        if conn.raddr and conn.raddr.port == port and conn.status == psutil.CONN_ESTABLISHED
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


class OutageProxy:
    """A loopback proxy in front of a real server that can be made unavailable, then brought back.

    ``up`` forwards every request; ``unavailable`` answers 503 like Flink during a leader election; ``down``
    stops listening (connections are refused) until :meth:`up` listens again on the same port. Switching
    closes the connections clients hold, so pooled keep-alive connections see the change at once.
    :meth:`lose` makes the proxy carry matching requests out upstream and then answer 502 instead of the
    real answer, which it keeps in :attr:`lost` (so a test can clean up what the server made).

    :param upstream: the real server's base URL, e.g. ``http://127.0.0.1:8081``.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.mode = "up"
        self.answered: dict[str, int] = {"forwarded": 0, "unavailable": 0}
        self.lost: list[tuple[str, str, bytes]] = []
        self._lose: list[tuple[str, re.Pattern[str]]] = []
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._forward = requests.Session()
        self._server: LoopbackServer | None = None
        self._port = 0
        self._listen()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    def __enter__(self) -> OutageProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_listening()
        self._forward.close()

    def up(self) -> None:
        """Forward again (listening again on the same port after :meth:`down`)."""
        with self._lock:
            self.mode = "up"
        if self._server is None:
            self._listen()

    def unavailable(self) -> None:
        """Answer every request 503, as Flink does while it elects a leader."""
        with self._lock:
            self.mode = "unavailable"
        self._drop_connections()

    def down(self) -> None:
        """Refuse connections (nothing listens on the port)."""
        with self._lock:
            self.mode = "down"
        self._stop_listening()

    def lose(self, method: str, pattern: str) -> None:
        """Carry out requests ``method`` whose path matches ``pattern`` upstream, then answer 502 instead.

        :param method: HTTP method.
        :param pattern: regular expression searched in the path.
        """
        with self._lock:
            self._lose.append((method, re.compile(pattern)))

    def _listen(self) -> None:
        proxy = self

        class Handler(LoopbackHandler):
            def setup(self) -> None:
                super().setup()
                with proxy._lock:
                    proxy._connections.add(self.connection)

            def finish(self) -> None:
                with proxy._lock:
                    proxy._connections.discard(self.connection)
                with contextlib.suppress(OSError):
                    super().finish()

            def _handle(self) -> None:
                body = self.read_body() or None
                self.answer(*proxy._respond(self.command, self.path, dict(self.headers), body))

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

        self._server = LoopbackServer(Handler, name="outage-proxy", port=self._port).start()
        self._port = self._server.port

    def _respond(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            mode = self.mode
            if mode != "up":
                self.answered["unavailable"] += 1
        if mode != "up":
            _, payload = LEADER_ELECTION.encode()
            return LEADER_ELECTION.status, {"Content-Type": "application/json; charset=UTF-8"}, payload
        kept = {name: value for name, value in headers.items() if name.lower() not in ("host", "connection")}
        answer = self._forward.request(method, self.upstream + path, headers=kept, data=body, timeout=60)
        with self._lock:
            self.answered["forwarded"] += 1
            lose = any(m == method and pattern.search(path) for m, pattern in self._lose)
            if lose:
                self.lost.append((method, path, answer.content))
        if lose:
            page = html_error(502, "Bad Gateway")
            _, payload = page.encode()
            return page.status, {"Content-Type": "text/html"}, payload
        content_type = answer.headers.get("Content-Type", "application/json")
        return answer.status_code, {"Content-Type": content_type}, answer.content

    def _drop_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def _stop_listening(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        self._drop_connections()


class OutageDrill:
    """In a thread: once the proxy forwarded ``polls`` requests, answer 503 (a leader election) until it has
    done so ``unavailable_answers`` times, refuse connections for ``down_for`` seconds, come back, then call
    ``then`` (e.g. cancel the job the wait watches, directly, not through the proxy).

    :param proxy: the proxy the wait talks through.
    :param then: what to do once the API is back.
    :param unavailable_answers: how many 503s to answer.
    :param down_for: seconds of refused connections.
    :param polls: requests to forward before the outage begins.
    """

    def __init__(
        self,
        proxy: OutageProxy,
        then: Callable[[], object],
        *,
        unavailable_answers: int = 10,
        down_for: float = 3.0,
        polls: int = 2,
    ) -> None:
        self.proxy, self.then = proxy, then
        self.unavailable_answers, self.down_for, self.polls = unavailable_answers, down_for, polls
        self.outage_seconds = 0.0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="outage-drill", daemon=True)

    def __enter__(self) -> OutageDrill:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join(timeout=120)
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            if not wait_for(lambda: self.proxy.answered["forwarded"] >= self.polls, timeout=60):
                raise AssertionError("the wait never polled through the proxy")
            began = time.monotonic()
            self.proxy.unavailable()
            if not wait_for(lambda: self.proxy.answered["unavailable"] >= self.unavailable_answers, timeout=60):
                raise AssertionError("the wait stopped polling during the outage")
            self.proxy.down()
            time.sleep(self.down_for)  # connections refused for a while (the fault itself, not a check)
            self.proxy.up()
            self.outage_seconds = time.monotonic() - began
            self.then()
        except BaseException as error:  # reported to the test by __exit__
            self.error = error
            self.proxy.up()
