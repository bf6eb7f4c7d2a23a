"""The phase-3 lessons' SQL scripts: Jinja templates in ``include/sql/phase3_<lesson>/``.

They render through the scenarios' :func:`~flink_lessons.scenarios.template_environment`: values between quotes
go through its ``sql_literal`` filter (each ``'`` doubled), as in every template of the project; table and column
names come from the lessons' own code, never from settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flink_lessons.paths import SQL_DIR
from flink_lessons.scenarios import template_environment


def lesson_dir(lesson: str) -> Path:
    """``include/sql/phase3_<lesson>/``.

    :param lesson: e.g. ``partitioning``.
    """
    return SQL_DIR / f"phase3_{lesson}"


def render(lesson: str, template: str, **context: Any) -> str:
    """Render one of a lesson's templates.

    :param lesson: e.g. ``partitioning``.
    :param template: the file name, e.g. ``aggregate.sql.j2``.
    :param context: the template's values.
    """
    return template_environment(lesson_dir(lesson)).get_template(template).render(**context)


def kafka_source_options(topic: str, bootstrap: str, group_id: str, **options: str) -> dict[str, str]:
    """The ``WITH`` options of a JSON Kafka source table; ``options`` adds or replaces any.

    :param topic: the topic.
    :param bootstrap: Kafka's brokers as Flink reaches them.
    :param group_id: ``properties.group.id``.
    :param options: more options, e.g. ``{"scan.startup.mode": "latest-offset"}``.
    """
    return {
        "connector": "kafka",
        "topic": topic,
        "properties.bootstrap.servers": bootstrap,
        "properties.group.id": group_id,
        "scan.startup.mode": "earliest-offset",
        "format": "json",
        **options,
    }
