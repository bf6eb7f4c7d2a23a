"""Hypothesis settings shared by the fuzz tests: a time budget per example and a few hundred examples.

``FUZZ_EXAMPLES=5000 pytest tests/unit/test_fuzz_*.py`` runs a deeper search (``make test`` keeps the default).
"""

from __future__ import annotations

import os
from datetime import timedelta

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))


def fuzz(examples: int = EXAMPLES, budget_ms: int = 2000) -> settings:
    """Settings for one fuzz test.

    :param examples: how many examples (scaled by ``FUZZ_EXAMPLES`` when it is set).
    :param budget_ms: the time budget of one example: a slower one fails the test (Hypothesis ``deadline``).
    """
    scale = EXAMPLES / 300
    return settings(
        max_examples=max(1, round(examples * scale)),
        deadline=timedelta(milliseconds=budget_ms),
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
