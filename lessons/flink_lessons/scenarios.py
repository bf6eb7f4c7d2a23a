"""The SQL scenarios of phases 0 and 1: where their files are, which topics they use, how to render them.

Each scenario is a folder of ``include/sql/`` holding its Jinja SQL template(s), a JSONL fixture (one Kafka
message value per line, malformed ones included verbatim), the expected output of every sink and a README.
Expected outputs that depend on settings (window size, watermark delay...) live in a sub-folder named after
those settings, e.g. ``expected/window_size=10s,watermark_delay=2s/windows.jsonl``.

Run ``.venv/bin/python -m flink_lessons.scenarios render <scenario> <variant>`` to print a rendered script,
e.g. to paste it into the SQL client without Airflow.
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flink_lessons.families import PHASE0, PHASE1
from flink_lessons.job_names import JobName
from flink_lessons.paths import SQL_DIR
from flink_lessons.reports import Summary, dedup_summary, late_summary, malformed_summary
from flink_lessons.settings import RUN_CONF, Family, Settings, resolve


@dataclass(frozen=True)
class Sink:
    """A table a scenario writes, and how its output is read back.

    :param name: the sink's name; its expected output is ``expected[/<settings>]/<name>.jsonl``
        (``<name>.txt`` for print sinks).
    :param topic: the topic role it writes to (``None`` for the print sink).
    :param kind: ``append`` (every message is a row), ``upsert`` (messages are compacted by Kafka key, a
        null value deletes: the result is the table's final state) or ``print`` (TaskManager stdout lines).
    """

    name: str
    topic: str | None
    kind: str = "append"


@dataclass(frozen=True)
class Variant:
    """One SQL script of a scenario.

    :param name: the variant's name; the template is ``<name>.sql.j2``.
    :param sinks: the sinks its jobs write.
    """

    name: str
    sinks: tuple[Sink, ...]

    @property
    def template(self) -> str:
        """The template's file name."""
        return f"{self.name}.sql.j2"

    @property
    def bounded(self) -> bool:
        """Its jobs finish and their rows are read from Kafka; a print job runs until it is cancelled."""
        return all(sink.kind != "print" for sink in self.sinks)


@dataclass(frozen=True)
class Scenario:
    """A scenario folder under ``include/sql``.

    :param name: the folder's name, also the DAG's name after the ``flink_`` prefix.
    :param family: the Variable family its settings come from.
    :param input_topic: the topic role the fixture is produced to.
    :param variants: its SQL scripts.
    :param params: the settings its expected output depends on.
    :param summary: the scenario's own accounting, reported (and checked) after the comparison.
    """

    name: str
    family: Family
    input_topic: str
    variants: tuple[Variant, ...]
    params: tuple[str, ...] = ()
    summary: Summary | None = None

    @property
    def folder(self) -> Path:
        """The scenario's folder."""
        return SQL_DIR / self.name

    @property
    def fixture(self) -> Path:
        """The JSONL fixture: one Kafka message value per line."""
        return self.folder / "input.jsonl"

    @property
    def dag_id(self) -> str:
        """The id of the DAG that runs it."""
        return f"flink_{self.name}"

    def variant(self, name: str) -> Variant:
        """The variant called ``name``.

        :param name: e.g. ``dead_letter``.
        """
        return next(v for v in self.variants if v.name == name)

    @property
    def sinks(self) -> tuple[Sink, ...]:
        """Every sink of every variant."""
        return tuple(sink for variant in self.variants for sink in variant.sinks)

    def topics(self) -> tuple[str, ...]:
        """The topic roles the scenario uses: its input and every Kafka sink."""
        return (self.input_topic, *(sink.topic for sink in self.sinks if sink.topic))

    def expected_dir(self, settings: Settings) -> Path:
        """Where the expected outputs for these settings are.

        :param settings: the run's settings.
        """
        if not self.params:
            return self.folder / "expected"
        key = ",".join(f"{name}={settings.duration(name).text}" for name in self.params)
        return self.folder / "expected" / key

    def expected_path(self, sink: Sink, settings: Settings) -> Path:
        """The expected output of one sink for these settings (it may not exist for custom settings).

        :param sink: the sink.
        :param settings: the run's settings.
        """
        return self.expected_dir(settings) / f"{sink.name}.{'txt' if sink.kind == 'print' else 'jsonl'}"


def print_identifier(scenario: Scenario, tag: str, attempt: int = 1) -> str:
    """The print sink's prefix of one submission: ``<scenario>-<run tag>-<attempt>``.

    Every rendering of a script is an attempt (a rerun from the UI renders it again), so the lines of an
    earlier attempt in the TaskManager's stdout are never counted as this attempt's.

    :param scenario: the scenario.
    :param tag: the run tag.
    :param attempt: which rendering of the script this is (the render task's try number).
    """
    return f"{scenario.name}-{tag}-{attempt}"


def template_context(scenario: Scenario, variant: Variant, settings: Settings, attempt: int = 1) -> dict[str, Any]:
    """The names a scenario template can use.

    ``topics.<role>`` (this run's topic names), ``bootstrap_servers``, ``startup_mode``, ``group_id``,
    ``parallelism``, ``job_name`` (a :class:`~flink_lessons.job_names.JobName`: ``job_name.part('v1')`` names
    one of several jobs), ``print_identifier``, ``run_tag``, and for phase 1 ``window_size``,
    ``window_slide``, ``watermark_delay`` (each with ``.sql``, the interval literal, and ``.ms``).

    :param scenario: the scenario.
    :param variant: the script being rendered.
    :param settings: the run's settings.
    :param attempt: which rendering of the script this is (see :func:`print_identifier`).
    """
    tag = settings.tag
    context: dict[str, Any] = {
        "topics": settings.topics,
        "bootstrap_servers": settings.bootstrap_servers,
        "startup_mode": settings["startup_mode"],
        "group_id": f"flink-{scenario.name}-{variant.name}-{tag}",
        "parallelism": settings["parallelism"],
        "job_name": JobName(scenario.name, variant.name, tag),
        "print_identifier": print_identifier(scenario, tag, attempt),
        "run_tag": tag,
    }
    for name in ("window_size", "window_slide", "watermark_delay"):
        if name in settings.values:
            context[name] = settings.duration(name)
    return context


def sql_literal(value: Any) -> str:
    """The text of a value for inside a SQL string literal: each ``'`` doubled, so the value stays one literal.

    The templates apply it to every value between quotes (``'{{ topics.input | sql_literal }}'``): Jinja
    renders SQL with autoescaping off, so a quote in a setting would otherwise end the literal and rewrite
    the ``WITH`` options.

    :param value: a setting.
    """
    return str(value).replace("'", "''")


def render(scenario: Scenario, variant: Variant, settings: Settings, attempt: int = 1, **overrides: Any) -> str:
    """Render a scenario's SQL template (with the ``sql_literal`` filter, see :func:`sql_literal`).

    :param scenario: the scenario.
    :param variant: which script.
    :param settings: the run's settings.
    :param attempt: which rendering of the script this is (see :func:`print_identifier`).
    :param overrides: context values to replace, e.g. ``parallelism`` for the slots failure check.
    """
    context = {**template_context(scenario, variant, settings, attempt), **overrides}
    return template_environment(scenario.folder).get_template(variant.template).render(**context)


@functools.cache
def template_environment(folder: Path) -> Any:
    """The Jinja environment of one template folder (templates compiled once per process): strict undefined
    values, the ``sql_literal`` filter. Every SQL template of the lessons renders through it.

    :param folder: the templates' folder.
    """
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["sql_literal"] = sql_literal
    return env


PHASE0_PRINT = Scenario(
    name="phase0_print",
    family=PHASE0,
    input_topic="input",
    variants=(Variant("print", (Sink("print", None, "print"),)),),
)


def _phase1(name: str, input_topic: str, *variants: Variant, **more: Any) -> Scenario:
    """A phase 1 scenario: folder ``include/sql/phase1_<name>``, settings from the Variable ``flink_phase1``.

    :param name: the scenario's name after ``phase1_``.
    :param input_topic: the topic role its fixture is produced to.
    :param variants: its SQL scripts.
    :param more: the other :class:`Scenario` fields (``params``, ``summary``).
    """
    return Scenario(f"phase1_{name}", PHASE1, input_topic, variants, **more)


MALFORMED_JSON = _phase1(
    "malformed_json", "malformed_input",
    Variant("ignore_parse_errors", (Sink("parsed", "malformed_parsed"),)),
    Variant("dead_letter", (Sink("clean", "malformed_clean"), Sink("dlq", "malformed_dlq"))),
    summary=malformed_summary,
)  # fmt: skip
SCHEMA_EVOLUTION = _phase1(
    "schema_evolution", "schema_input", Variant("schema_evolution", (Sink("v1", "schema_v1"), Sink("v2", "schema_v2")))
)
EVENT_TIME_WATERMARKS = _phase1(
    "event_time_watermarks", "event_time_input",
    Variant("windows", (Sink("tumble", "event_time_tumble"), Sink("hop", "event_time_hop"))),
    params=("window_size", "window_slide", "watermark_delay"),
)  # fmt: skip
DEDUP = _phase1(
    "dedup", "dedup_input", Variant("dedup", (Sink("first", "dedup_first"), Sink("last", "dedup_last", "upsert"))),
    params=("watermark_delay",), summary=dedup_summary,
)  # fmt: skip
LATE_EVENTS = _phase1(
    "late_events", "late_input", Variant("late_events", (Sink("windows", "late_windows"), Sink("late", "late_events"))),
    params=("window_size", "watermark_delay"), summary=late_summary,
)  # fmt: skip
FAILURE_CHECKS = _phase1(
    "failure_checks", "failure_input",
    Variant("strict_json", (Sink("output", "failure_output"),)), Variant("too_many_slots", ()), Variant("bad_sql", ()),
)  # fmt: skip

SCENARIOS = {s.name: s for s in (PHASE0_PRINT, MALFORMED_JSON, SCHEMA_EVOLUTION, EVENT_TIME_WATERMARKS, DEDUP,
                                 LATE_EVENTS, FAILURE_CHECKS)}  # fmt: skip


def _main(argv: Sequence[str] | None = None) -> None:
    """``render <scenario> <variant> [--set key=json] [--tag t]``: print a rendered script."""
    parser = argparse.ArgumentParser(description="Render a scenario's SQL script with the Variable defaults.")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("render", help="print the rendered SQL")
    cmd.add_argument("scenario", choices=sorted(SCENARIOS))
    cmd.add_argument("variant")
    cmd.add_argument(
        "--set", action="append", default=[], metavar="KEY=JSON",
        help="""override a setting, e.g. --set window_size='"20s"' or --set topics='{"late_input": "x"}'""",
    )  # fmt: skip
    cmd.add_argument("--tag", default="manual", help="the run suffix appended to topic names")
    cmd.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka bootstrap servers as Flink sees them")
    args = parser.parse_args(argv)
    scenario = SCENARIOS[args.scenario]
    overrides: dict[str, Any] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    bootstrap = args.bootstrap
    settings = resolve(scenario.family, (RUN_CONF, overrides), tag=args.tag, connection_bootstrap=lambda _: bootstrap)
    print(render(scenario, scenario.variant(args.variant), settings), end="")


if __name__ == "__main__":
    _main()
