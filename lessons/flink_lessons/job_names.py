"""The one convention for Flink job names: ``<job>@<version>[#<run tag>]``.

- ``<job>``: what runs: a PyFlink job's ``job_name`` setting (``orders_enrichment``), or a SQL scenario
  (``phase1_dedup``);
- ``<version>``: which code: a PyFlink version (``v2``) or a scenario's script (``dedup``); a script that
  submits several jobs names each ``<script>.<part>`` (``schema_evolution.v1``);
- ``#<run tag>``: jobs that belong to one DAG run (the phase 0/1 scenarios, flink_deploy_sql) carry its tag,
  so the run's clean-up finds exactly its own jobs. Long-lived PyFlink jobs have no tag: the next DAG run
  finds the running version by ``<job>``.

The Flink UI and ``/jobs/overview`` show these names; :func:`parse` reads them back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

_NAME = re.compile(r"(?P<job>[^@#]+)@(?P<version>[^@#]+)(?:#(?P<tag>[0-9a-f]{8}))?")


@dataclass(frozen=True)
class JobName:
    """A Flink job name in the one convention.

    :param job: what runs.
    :param version: which code.
    :param tag: the DAG run's tag, for jobs of one run.
    """

    job: str
    version: str
    tag: str | None = None

    def __str__(self) -> str:
        return f"{self.job}@{self.version}" + (f"#{self.tag}" if self.tag else "")

    def part(self, name: str) -> JobName:
        """The name of one of several jobs a script submits, e.g. ``<job>@<script>.v1#<tag>``.

        :param name: the part.
        """
        return replace(self, version=f"{self.version}.{name}")


def parse(name: str) -> JobName | None:
    """Read a job name; ``None`` when it does not follow the convention.

    :param name: a Flink job's name.
    """
    match = _NAME.fullmatch(name)
    return JobName(match["job"], match["version"], match["tag"]) if match else None


def jobs_named(
    jobs: Iterable[Mapping[str, Any]], *, job: str | None = None, tag: str | None = None
) -> list[dict[str, Any]]:
    """The ``/jobs/overview`` entries whose name follows the convention and matches, newest first.

    Each entry gets ``version`` (from its name).

    :param jobs: ``/jobs/overview`` entries.
    :param job: keep this ``<job>`` only.
    :param tag: keep this run's jobs only.
    """
    found = []
    for entry in jobs:
        name = parse(str(entry.get("name", "")))
        if name is not None and job in (None, name.job) and tag in (None, name.tag):
            found.append({**entry, "version": name.version})
    return sorted(found, key=lambda entry: entry.get("start-time") or 0, reverse=True)
