"""Savepoints and retained checkpoints a PyFlink job can be restored from.

Locations are kept as Flink reports them (``file:/...`` for local ones); the provider's submit operators
accept that form and ``file:///...`` alike.
"""

from __future__ import annotations

import re
from pathlib import Path

from flink_lessons.rules import Location
from flink_lessons.settings import VariableError


def local_path(location: str) -> Path | None:
    """The local directory of a ``file:`` URI or absolute path; ``None`` for remote storage (s3://...).

    :param location: a savepoint or checkpoint location.
    """
    if location.startswith("file:"):
        return Path(re.sub(r"^file:(//)?", "", location))
    return Path(location) if location.startswith("/") else None


def check_snapshot(location: str) -> str:
    """Check that a savepoint or retained checkpoint exists (its ``_metadata``), when it is on local disk.

    :param location: the snapshot's location.
    :raises VariableError: not a location, or a local snapshot without ``_metadata``.
    """
    try:
        Location()(location)
    except ValueError as err:
        raise VariableError(f"not a snapshot location: {err}") from None
    path = local_path(location)
    if path is not None and not (path / "_metadata").is_file():
        raise VariableError(f"{location} is not a savepoint or checkpoint: {path / '_metadata'} does not exist")
    return location


def latest_retained_checkpoint(checkpoint_dir: str, job_id: str) -> str | None:
    """The newest retained checkpoint of a job in a local checkpoint directory (``<dir>/<job>/chk-N``).

    For jobs the REST API has forgotten (``jobstore.expiration-time``).

    :param checkpoint_dir: the checkpoint storage (``execution.checkpointing.dir``).
    :param job_id: the job whose checkpoints to look at.
    """
    root = local_path(checkpoint_dir)
    if root is None:
        return None
    done = [c for c in (root / job_id).glob("chk-*") if (c / "_metadata").is_file() and c.name[4:].isdigit()]
    return str(max(done, key=lambda c: int(c.name[4:]))) if done else None
