"""The SQL Gateway's origin guard, on loopback, in front of a small real HTTP server."""

from __future__ import annotations

import asyncio
import http.server
import json
import socket
import threading
import urllib.request
from collections.abc import Iterator
from urllib.error import HTTPError

import pytest

from stack import origin_guard

pytestmark = pytest.mark.unit


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[str] = []  # noqa: RUF012 (shared between the handler instances of one test)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.seen.append(f"{self.path} {body.decode()} connection={self.headers.get('Connection')}")
        data = json.dumps({"sessionHandle": "s-1"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def guard() -> Iterator[int]:
    _Upstream.seen = []
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    listen = _free_port()
    loop = asyncio.new_event_loop()
    task = loop.create_task(origin_guard.serve(listen, upstream.server_address[1], frozenset()))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", listen), timeout=0.1).close()
            break
        except OSError:
            threading.Event().wait(0.05)
    yield listen
    loop.call_soon_threadsafe(task.cancel)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    upstream.shutdown()


def _post(port: int, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/sessions", data=b'{"properties":{}}', headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except HTTPError as err:
        return err.code, err.read().decode()


def test_a_web_page_cannot_open_a_session(guard: int) -> None:
    # A text/plain POST is a "simple" request: a browser sends it cross-origin without a CORS preflight.
    status, body = _post(guard, {"Origin": "http://evil.example", "Content-Type": "text/plain"})
    assert status == 403
    assert "Cross-origin request from http://evil.example refused" in body
    assert _Upstream.seen == []


def test_programs_pass_and_every_request_of_a_kept_alive_connection_is_checked(guard: int) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", guard, timeout=5)
    for _ in range(2):
        conn.request("POST", "/v1/sessions", body=b'{"properties":{}}', headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        assert (response.status, json.loads(response.read())) == (200, {"sessionHandle": "s-1"})
    conn.request("POST", "/v1/sessions", body=b"{}", headers={"Origin": "http://evil.example"})
    assert conn.getresponse().status == 403
    conn.close()
    assert _Upstream.seen == ['/v1/sessions {"properties":{}} connection=None'] * 2


def test_origin_check_is_per_header_not_per_text() -> None:
    head = b"POST / HTTP/1.1\r\nHost: x\r\nX-Note: Origin: http://evil.example\r\n\r\n"
    assert origin_guard.foreign_origin(head, frozenset()) is None
    head = b"POST / HTTP/1.1\r\norigin:  http://evil.example \r\n\r\n"
    assert origin_guard.foreign_origin(head, frozenset()) == "http://evil.example"
    assert origin_guard.foreign_origin(head, frozenset({"http://evil.example"})) is None
