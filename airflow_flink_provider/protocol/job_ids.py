"""Deterministic Flink job ids and what they are derived from, decided before submit.

A job id is ``deterministic_job_id(dag, task, run, map index, purpose, generation)``. The *purpose* names
what the job runs, with a fingerprint of it, so an unchanged job keeps its id across retries and a changed
one gets a new id:

- SQL: :func:`sql_purposes` gives each job statement ``sql:<hash of the normalized statement>:<n>``, where
  ``n`` counts identical statements in the script (not the statement's position), so inserting a statement
  leaves the other ids alone, and editing an INSERT makes it a new job.
- Jar and PyFlink: :func:`fingerprint` of what is submitted (see ``FlinkJobSubmitOperator``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

_JOB_ID = re.compile(r"[0-9a-f]{32}")
_SEPARATOR = "\x1f"  # ASCII unit separator: ("ab", "c") and ("a", "bc") give different ids
# One SQL token at a time: a quoted literal or name (kept as is), a comment, blanks, or anything else.
_SQL_PIECE = re.compile(
    r"""(?P<quoted>'(?:[^']|'')*'?|"(?:[^"]|"")*"?|`(?:[^`]|``)*`?)"""
    r"""|(?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))"""
    r"""|(?P<blank>\s+)"""
    r"""|(?P<other>[^'"`\s/-]+|.)""",
    re.DOTALL,
)
FINGERPRINT_LENGTH = 16
"""Hex digits of a fingerprint kept in a purpose (64 bits: collisions within one task are not a concern)."""


def deterministic_job_id(*parts: str) -> str:
    """Derive a Flink job id (32 lowercase hex digits) from the given parts.

    The same parts always give the same id; any change in any part gives another one. Savepoint trigger
    ids (also 32 hex digits) are derived the same way.

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


def normalize_sql(statement: str) -> str:
    """A statement with comments dropped and blanks outside quotes collapsed to one space.

    Quoted literals and names keep their text exactly; letter case is kept (Flink's names are
    case-sensitive). Two statements that differ only in layout or comments normalize to the same text.

    :param statement: one SQL statement.
    """
    out: list[str] = []
    for piece in _SQL_PIECE.finditer(statement):
        if piece.lastgroup in ("comment", "blank"):
            if out and out[-1] != " ":
                out.append(" ")
        else:
            out.append(piece.group())
    if out and out[-1] == " ":
        out.pop()
    return "".join(out)


def fingerprint(value: Any) -> str:
    """A short stable hash of a JSON-able value (mapping keys sorted).

    :param value: what identifies a submission, e.g. a dict of its arguments.
    """
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:FINGERPRINT_LENGTH]


def sql_purposes(statements: Iterable[str]) -> list[str]:
    """The purpose of each job statement: ``sql:<fingerprint of the normalized text>:<occurrence>``.

    The occurrence counts statements with the same normalized text, from 1, in script order.

    :param statements: the script's job statements, in order.
    """
    seen: dict[str, int] = {}
    purposes = []
    for statement in statements:
        digest = fingerprint(normalize_sql(statement))
        seen[digest] = seen.get(digest, 0) + 1
        purposes.append(f"sql:{digest}:{seen[digest]}")
    return purposes


def submission_purpose(fields: Mapping[str, Any]) -> str:
    """The purpose of a jar or PyFlink submission: ``job:<fingerprint of its fields>``.

    :param fields: what is submitted (see ``FlinkJobSubmitOperator``).
    """
    return f"job:{fingerprint(dict(fields))}"
