"""The "last good" record of a PyFlink job: the version that last passed the health gate, and its snapshot.

One Variable per job, ``flink_phase4_last_good__<job_name>``, written by the phase 4 DAGs once a version is
healthy, read by flink_recover_from_savepoint (and by the upgrade, which warns when it disagrees with what
runs). Format 2 (JSON)::

    {"format": 2, "job_name", "version", "flink_job_name", "job_id", "savepoint", "restored_from",
     "recorded_at", "dag_id", "run_id"}

Format 1 (no ``format`` key, no ``flink_job_name``, locations rewritten to ``file:///...``) is read as
format 2: :func:`from_json` migrates it, and the next record writes format 2.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from flink_lessons.job_names import JobName
from flink_lessons.settings import VariableError, load_variable

PREFIX = "flink_phase4_last_good__"
FORMAT = 2


def variable_name(job_name: str) -> str:
    """The Variable that records the last good version of a job.

    :param job_name: the ``job_name`` setting.
    """
    return f"{PREFIX}{job_name}"


@dataclass(frozen=True)
class LastGood:
    """One record.

    :param job_name: the job (``<job>`` of its Flink name).
    :param version: the version that passed the health gate.
    :param flink_job_name: its Flink job name, ``<job>@<version>``.
    :param job_id: the Flink job that passed it.
    :param savepoint: a savepoint of that version, when one was taken or restored.
    :param restored_from: the snapshot the job was started from, if any.
    :param recorded_at: when (UTC, ISO 8601).
    :param dag_id: the DAG that recorded it.
    :param run_id: its run.
    """

    job_name: str
    version: str
    flink_job_name: str
    job_id: str
    savepoint: str | None
    restored_from: str | None
    recorded_at: str
    dag_id: str
    run_id: str

    def to_json(self) -> dict[str, Any]:
        """The Variable's value (format 2)."""
        return {"format": FORMAT, **asdict(self)}


def from_json(data: Any, variable: str = "the last good record") -> LastGood:
    """Read a record of format 1 or 2.

    :param data: the Variable's JSON value.
    :param variable: its name, for messages.
    :raises VariableError: a record that is neither.
    """
    if not isinstance(data, Mapping) or data.get("format", 1) not in (1, FORMAT):
        raise VariableError(f"{variable} is not a last good record of format 1 or {FORMAT}: {data!r}")
    values = {key: data.get(key) for key in LastGood.__dataclass_fields__}
    missing = [key for key in ("job_name", "version", "job_id") if not values[key]]
    if missing:
        raise VariableError(f"{variable} lacks {missing}: {data!r}")
    values["flink_job_name"] = values["flink_job_name"] or str(JobName(values["job_name"], values["version"]))
    return LastGood(**{key: (str(value) if value is not None else None) for key, value in values.items()})  # type: ignore[arg-type]


def read(job_name: str) -> LastGood | None:
    """The job's last good record, or ``None`` (run time only).

    :param job_name: the ``job_name`` setting.
    """
    name = variable_name(job_name)
    data = load_variable(name)
    return None if data is None else from_json(data, f"Variable '{name}'")


def record(
    job_name: str, version: str, job_id: str, *, savepoint: str | None, restored_from: str | None, dag_id: str,
    run_id: str,
) -> LastGood:
    """Write the job's last good record (run time only).

    :param job_name: the ``job_name`` setting.
    :param version: the healthy version.
    :param job_id: its Flink job.
    :param savepoint: a savepoint of it, if any.
    :param restored_from: the snapshot it was started from, if any.
    :param dag_id: the DAG recording it.
    :param run_id: its run.
    """
    from airflow.sdk import Variable

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    good = LastGood(job_name, version, str(JobName(job_name, version)), job_id, savepoint or None,
                    restored_from or None, now, dag_id, run_id)  # fmt: skip
    Variable.set(variable_name(job_name), json.dumps(good.to_json(), sort_keys=True),
                 description="Written by the phase 4 DAGs: the last version that passed the health gate.")  # fmt: skip
    return good
