"""Record every HTTP call made through ``requests`` (what the provider's sync transport uses): the profile.

A missed target needs to show where the time goes; for the provider's paths that is which REST calls it
makes and how long each takes. ``normalize_path`` folds ids out of paths so calls group by operation.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from benchmarks.core import median

_JOB_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?:_[^/]+)?")
_NUMBER = re.compile(r"(?<=/)\d+(?=/|$)")


def normalize_path(path: str) -> str:
    """A URL path with ids replaced by placeholders, e.g. ``/jobs/{id}``, ``/jars/{uuid}/run``.

    :param path: the request path (a query string is dropped).
    """
    path = path.split("?", 1)[0]
    path = _UUID.sub("{uuid}", path)
    path = _JOB_ID.sub("{id}", path)
    return _NUMBER.sub("{n}", path)


@dataclass(frozen=True)
class Call:
    """One HTTP call.

    :param method: HTTP method.
    :param path: normalized path.
    :param status: response status (0 when no response came).
    :param seconds: time from send to response.
    """

    method: str
    path: str
    status: int
    seconds: float


def group_calls(calls: Sequence[Call]) -> list[dict[str, Any]]:
    """Calls grouped by ``METHOD path``: count, total and median seconds; the slowest group first.

    :param calls: the recorded calls.
    """
    groups: dict[str, list[Call]] = {}
    for call in calls:
        groups.setdefault(f"{call.method} {call.path}", []).append(call)
    rows = [
        {
            "call": key,
            "count": len(items),
            "total_s": round(sum(c.seconds for c in items), 4),
            "median_s": round(median(c.seconds for c in items), 4),
            "statuses": sorted({c.status for c in items}),
        }
        for key, items in groups.items()
    ]
    return sorted(rows, key=lambda row: -float(row["total_s"]))


class HttpRecorder:
    """Patches ``requests.Session.send`` while active and records each call."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()

    @contextmanager
    def active(self) -> Iterator[HttpRecorder]:
        """Record calls made inside the ``with`` block."""
        original = requests.Session.send
        recorder = self

        def send(session: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> Any:
            began = time.perf_counter()
            status = 0
            try:
                response = original(session, request, **kwargs)
                status = response.status_code
                return response
            finally:
                path = urlsplit(request.url or "").path
                with recorder._lock:
                    recorder.calls.append(
                        Call(str(request.method), normalize_path(path), status, time.perf_counter() - began)
                    )

        requests.Session.send = send  # type: ignore[method-assign,assignment]
        try:
            yield self
        finally:
            requests.Session.send = original  # type: ignore[method-assign]

    def take(self) -> list[Call]:
        """The calls recorded so far, clearing the record."""
        with self._lock:
            calls, self.calls = self.calls, []
        return calls
