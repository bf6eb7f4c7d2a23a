"""A loopback guard in front of the SQL Gateway that refuses requests made by web pages.

Flink's SQL Gateway 2.1 answers every request with ``Access-Control-Allow-Origin: *`` and rejects the
``web.access-control-allow-origin`` option, so any page open in the user's browser could open a session and
run SQL on the local cluster (a ``text/plain`` POST needs no CORS preflight). Browsers always send an
``Origin`` header with such requests; programs (the provider, curl, the SQL client) do not. The guard listens
on the gateway's public port, answers 403 to any request that carries a foreign ``Origin``, and forwards every
other request to the gateway's private port; on a kept-alive connection each request's head is checked.

Usage: ``python stack/origin_guard.py --listen 8083 --upstream 8084 [--allow-origin URL ...]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable

HOST = "127.0.0.1"
MAX_HEAD = 64 * 1024


def foreign_origin(head: bytes, allowed: frozenset[str]) -> str | None:
    """The request's ``Origin`` when it is present and not allowed, else ``None``.

    :param head: the request line and headers, up to the blank line.
    :param allowed: origins that may call, e.g. ``http://127.0.0.1:8083``.
    """
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"origin":
            origin = value.strip().decode("latin-1")
            return None if origin in allowed else origin
    return None


def content_length(head: bytes) -> int | None:
    """The request body's length, ``0`` without a body, ``None`` for a body of unknown length (chunked).

    :param head: the request line and headers, ending with the blank line.
    """
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"transfer-encoding" and value.strip().lower() != b"identity":
            return None
        if name == b"content-length":
            length = int(value.strip())
    return length


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _answer(writer: asyncio.StreamWriter, status: str, message: str) -> None:
    data = json.dumps({"errors": [message]}).encode()
    writer.write(
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nConnection: close\r\n"
        f"Content-Length: {len(data)}\r\n\r\n".encode()
        + data
    )
    await writer.drain()
    writer.close()


async def _requests(
    reader: asyncio.StreamReader, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter, allowed: frozenset[str]
) -> None:
    """Forward the client's requests one by one (keep-alive), checking each head; stop at a refused one."""
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            origin = foreign_origin(head, allowed)
            if origin is not None:
                await _answer(
                    client, "403 Forbidden", f"Cross-origin request from {origin} refused by the origin guard"
                )
                return
            length = content_length(head)
            if length is None:
                await _answer(client, "411 Length Required", "The origin guard needs a Content-Length")
                return
            upstream.write(head)
            if length:
                upstream.write(await reader.readexactly(length))
            await upstream.drain()
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        return
    finally:
        upstream.close()


def handler(
    upstream: int, allowed: frozenset[str]
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """The connection callback: one upstream connection per client connection, every request head checked.

    :param upstream: the gateway's private port.
    :param allowed: origins that may call.
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, upstream)
        except OSError:
            await _answer(writer, "502 Bad Gateway", "The SQL Gateway behind the origin guard is not running")
            return
        await asyncio.gather(_requests(reader, writer, up_writer, allowed), _pipe(up_reader, writer))

    return handle


async def serve(listen: int, upstream: int, allowed: frozenset[str]) -> None:
    """Serve until cancelled.

    :param listen: the public port.
    :param upstream: the gateway's private port.
    :param allowed: origins that may call.
    """
    server = await asyncio.start_server(handler(upstream, allowed), HOST, listen, limit=MAX_HEAD)
    async with server:
        await server.serve_forever()


def main() -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--upstream", type=int, required=True)
    parser.add_argument("--allow-origin", action="append", default=[])
    args = parser.parse_args()
    asyncio.run(serve(args.listen, args.upstream, frozenset(args.allow_origin)))


if __name__ == "__main__":
    main()
