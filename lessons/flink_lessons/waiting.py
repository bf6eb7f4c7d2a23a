"""Waiting on a condition: the one polling loop of the lessons, their benchmarks and the integration tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(what: str, condition: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """Poll ``condition`` until it returns a truthy value (returned), or raise after ``timeout`` seconds.

    :param what: what is awaited, for the error.
    :param condition: called until truthy.
    :param timeout: seconds.
    :param interval: seconds between calls.
    :raises TimeoutError: naming ``what``.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {timeout:.0f}s")
        time.sleep(interval)
