"""HTTP faults on loopback: which requests get one, and a request handler that carries them out.

A fault applies to a request *after* it was read and carried out (the case that risks a second job): ``drop``
(close without an answer), ``502``/``504`` (a proxy's answer), ``reset`` (TCP RST), ``hang`` (no answer until
the client gives up). ``reset-before`` resets *without* carrying the request out.
"""

from __future__ import annotations

import re
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urlsplit

from tests.support.loopback import LoopbackHandler

FAULT_KINDS = ("drop", "502", "504", "reset", "hang", "reset-before")


@dataclass
class Fault:
    """A fault for the next ``times`` requests matching ``method`` and the ``path`` pattern.

    With ``after``, it applies only once that other fault has hit (e.g. lookups fail after a lost submit);
    the first ``skip`` matching requests are let through.
    """

    method: str
    path: re.Pattern[str]
    kind: str
    times: int
    after: Fault | None = None
    skip: int = 0
    hits: int = 0
    skipped: int = 0


class FaultPlan:
    """The faults to apply, and every request seen (method, path)."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.heads: list[bytes] = []  # the first 1 kB of each request body, in order
        self.lock = threading.RLock()

    def inject(
        self, method: str, path: str, kind: str, times: int = 1, *, after: Fault | None = None, skip: int = 0
    ) -> Fault:
        """Apply fault ``kind`` to the next ``times`` requests ``method`` whose path matches ``path`` (regex).

        :param method: HTTP method.
        :param path: regular expression searched in the request path.
        :param kind: one of :data:`FAULT_KINDS`.
        :param times: how many matching requests get it.
        :param after: apply only once this fault has hit.
        :param skip: let this many matching requests through first.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}")
        fault = Fault(method, re.compile(path), kind, times, after, skip)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def count(self, method: str, pattern: str) -> int:
        """How many requests ``method`` with a path matching ``pattern`` arrived."""
        with self.lock:
            return sum(1 for m, path in self.requests if m == method and re.search(pattern, path))

    def take(self, method: str, path: str, body: bytes = b"") -> Fault | None:
        """Record the request and return the fault it gets, if any."""
        with self.lock:
            self.requests.append((method, path))
            self.heads.append(body[:1024])
            for fault in self.faults:
                armed = fault.after is None or fault.after.hits > 0
                if armed and fault.hits < fault.times and fault.method == method and fault.path.search(path):
                    if fault.skipped < fault.skip:
                        fault.skipped += 1
                        continue
                    fault.hits += 1
                    return fault
        return None


class FaultyHandler(LoopbackHandler):
    """Reads a request, has :meth:`respond` carry it out, then answers it, or applies its fault instead."""

    plan: ClassVar[FaultPlan]
    hang_for: ClassVar[float] = 3.0

    def respond(self, method: str, target: str, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        """Carry the request out: ``(status, headers, body)``."""
        raise NotImplementedError

    def _handle(self) -> None:
        raw = self.read_body()
        fault = self.plan.take(self.command, urlsplit(self.path).path, raw)
        if fault is not None and fault.kind == "reset-before":
            self._reset()
            return
        status, headers, body = self.respond(self.command, self.path, raw)
        if fault is None:
            self.answer(status, headers, body)
        elif fault.kind in ("502", "504"):
            page = f"<html><body><h1>{fault.kind} Gateway</h1></body></html>".encode()
            self.answer(int(fault.kind), {"Content-Type": "text/html"}, page)
        elif fault.kind == "reset":
            self._reset()
        else:  # drop, or hang: no answer (after a while)
            if fault.kind == "hang":
                time.sleep(self.hang_for)
            self.close_connection = True

    def _reset(self) -> None:
        """Close with a TCP RST (SO_LINGER 0)."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.rfile.close()
        self.wfile.close()
        self.connection.close()

    def handle(self) -> None:
        try:
            super().handle()
        except ValueError:  # flushing the reset connection's closed file
            if not self.wfile.closed:
                raise

    def finish(self) -> None:
        if not self.wfile.closed:
            super().finish()

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle
