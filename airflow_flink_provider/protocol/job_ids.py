"""Deterministic Flink job ids, decided before submit so a retry can find the job it started."""

from __future__ import annotations

import hashlib
import re

_JOB_ID = re.compile(r"[0-9a-f]{32}")
_SEPARATOR = "\x1f"  # ASCII unit separator: ("ab", "c") and ("a", "bc") give different ids


def deterministic_job_id(*parts: str) -> str:
    """Derive a Flink job id (32 lowercase hex digits) from the given parts.

    The same parts always give the same id; any change in any part gives another one.

    :param parts: e.g. DAG id, task id, run id and other try-independent inputs.
    """
    if not parts:
        raise ValueError("deterministic_job_id needs at least one part")
    digest = hashlib.sha256(_SEPARATOR.join(parts).encode("utf-8")).hexdigest()
    return digest[:32]


def validate_job_id(job_id: str) -> str:
    """Check that ``job_id`` is a Flink job id (32 hex digits) and return it in lowercase.

    :param job_id: the id to check; upper-case hex is accepted and normalised.
    :raises ValueError: when it is not 32 hex digits.
    """
    normalized = job_id.strip().lower() if isinstance(job_id, str) else ""
    if not _JOB_ID.fullmatch(normalized):
        raise ValueError(f"not a Flink job id (expected 32 hex digits): {job_id!r}")
    return normalized
