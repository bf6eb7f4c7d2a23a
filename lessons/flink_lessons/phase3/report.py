"""A lesson's report: its measured tables and each measurement judged against the lesson's expectation.

An expectation is a documented relation with its tolerance (``>= 2.0``, ``<= 1.25``, ``< aligned``) or an
exact count (``== 0`` lost events). :class:`LessonReport` is JSON-able (an XCom) and renders as text (the
task log). Pure Python.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Check:
    """One measurement against its expectation.

    :param name: what is measured.
    :param measured: the value measured (``None``: could not be measured, which fails the check).
    :param relation: ``>=``, ``<=``, ``==``, ``<`` or ``>``.
    :param expected: the value it is compared with.
    :param why: the documented relation in words (where the expected value comes from).
    :param ok: whether the measurement holds.
    """

    name: str
    measured: Any
    relation: str
    expected: Any
    why: str
    ok: bool

    @property
    def text(self) -> str:
        """``name: measured (expected relation expected: why) ok|FAILED``."""
        verdict = "ok" if self.ok else "FAILED"
        return (
            f"{self.name}: {fmt(self.measured)} (expected {self.relation} {fmt(self.expected)}: {self.why}) {verdict}"
        )


_RELATIONS = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    "in": lambda a, b: a in b,
}


def check(name: str, measured: Any, relation: str, expected: Any, why: str) -> Check:
    """Judge ``measured <relation> expected``; a missing measurement fails.

    :param name: what is measured.
    :param measured: the value.
    :param relation: one of ``>=``, ``<=``, ``==``, ``>``, ``<``.
    :param expected: the value to compare with.
    :param why: the relation in words.
    """
    compare = _RELATIONS[relation]
    ok = measured is not None and expected is not None and bool(compare(measured, expected))
    return Check(name, measured, relation, expected, why, ok)


@dataclass
class LessonReport:
    """What a lesson measured and how it compares with what the lesson teaches.

    :param lesson: the lesson's id, e.g. ``partitioning``.
    :param title: one line.
    :param settings: the settings it ran with.
    :param tables: name -> rows (dicts with the same keys), the measured tables.
    :param checks: each measurement against its expectation.
    :param notes: what to look at, caveats.
    """

    lesson: str
    title: str
    settings: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every check holds."""
        return all(c.ok for c in self.checks)

    def failed(self) -> list[Check]:
        """The checks that do not hold."""
        return [c for c in self.checks if not c.ok]

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (for an XCom)."""
        return {
            "lesson": self.lesson,
            "title": self.title,
            "ok": self.ok,
            "settings": _jsonable(self.settings),
            "tables": _jsonable(self.tables),
            "checks": [asdict(c) for c in self.checks],
            "notes": list(self.notes),
        }

    def render(self) -> str:
        """The report as text: the tables, then each check, then the notes."""
        lines = [f"== {self.lesson}: {self.title}"]
        for name, rows in self.tables.items():
            lines += ["", f"-- {name}", *table_lines(rows)]
        lines += ["", "-- measured vs expected"]
        lines += [("  " if c.ok else "! ") + c.text for c in self.checks]
        if self.notes:
            lines += ["", *(f"note: {n}" for n in self.notes)]
        lines.append(f"\n{'ALL EXPECTATIONS HOLD' if self.ok else f'{len(self.failed())} EXPECTATION(S) FAILED'}")
        return "\n".join(lines)


def fmt(value: Any) -> str:
    """A value for a table cell: numbers rounded for reading, ``None`` as ``-``.

    :param value: the value.
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {fmt(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    return str(value)


def table_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Rows as an aligned text table (columns from the first row).

    :param rows: dicts with the same keys.
    """
    if not rows:
        return ["(no rows)"]
    columns = list(rows[0])
    cells = [[fmt(row.get(col)) for col in columns] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in cells)) for i, col in enumerate(columns)]
    header = "  ".join(col.ljust(w) for col, w in zip(columns, widths, strict=True))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return [header, rule, *body]


def max_over_median(values: Iterable[float]) -> float | None:
    """The skew of a load: the largest value over the median (``None`` without values or a zero median).

    :param values: per-subtask (or per-partition) loads.
    """
    data = [float(v) for v in values]
    if not data:
        return None
    middle = statistics.median(data)
    return None if middle <= 0 else max(data) / middle


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
