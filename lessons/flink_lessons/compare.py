"""Read sink output back and compare it with the expected rows, failing with a readable diff.

Rows are compared as multisets (order-insensitive: a sink's order is not part of its contract). JSON numbers
are compared by value, so ``7``, ``7.0`` and ``7.00`` match. Upsert sinks are compacted by Kafka key first
(a null value deletes the key), so their final table state is compared, not the changelog.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class OutputMismatchError(AssertionError):
    """Actual and expected rows differ; the message is the diff."""


def message_record(message: Any) -> dict[str, Any]:
    """The ``apply_function`` of ConsumeFromTopicOperator: one Kafka message as a JSON-serializable record.

    :param message: a ``confluent_kafka.Message``.
    :return: ``{"partition", "offset", "key", "value"}`` with key and value decoded as UTF-8 (or ``None``).
    """
    key, value = message.key(), message.value()
    return {
        "partition": message.partition(),
        "offset": message.offset(),
        "key": key.decode("utf-8", errors="replace") if key is not None else None,
        "value": value.decode("utf-8", errors="replace") if value is not None else None,
    }


def rows_from_records(
    records: Iterable[Mapping[str, Any]], kind: str, start: Mapping[str, int] | None = None
) -> list[Any]:
    """Sink rows from consumed records, in offset order.

    Records read twice (a consumer group rebalance re-delivers from the last commit) count once. Records
    before ``start`` were written by an earlier try (a rerun cleared the submit task) and are left out.

    :param records: :func:`message_record` outputs.
    :param kind: ``append`` or ``upsert`` (see :class:`flink_lessons.scenarios.Sink`).
    :param start: partition (as text, JSON keys) -> first offset of this try's output.
    """
    first = start or {}
    unique = {(r["partition"], r["offset"]): r for r in records if r["offset"] >= first.get(str(r["partition"]), 0)}
    ordered = [unique[k] for k in sorted(unique)]
    if kind == "append":
        return [json.loads(r["value"]) for r in ordered if r["value"] is not None]
    if kind == "upsert":
        table: dict[str, Any] = {}
        for record in ordered:
            if record["value"] is None:
                table.pop(record["key"], None)
            else:
                table[record["key"]] = json.loads(record["value"])
        return list(table.values())
    raise ValueError(f"unknown sink kind {kind!r}")


def load_expected(path: Path) -> list[Any]:
    """Expected rows: JSON objects (``.jsonl``) or text lines (``.txt``, print sinks); blank lines skipped.

    :param path: the expected-output file.
    """
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [json.loads(line) for line in lines] if path.suffix == ".jsonl" else lines


def _canonical_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return int(value) if float(value).is_integer() else float(value)


def canonical(row: Any) -> str:
    """A row's comparison key: JSON with sorted keys and numbers by value.

    :param row: a JSON value or a text line.
    """
    if isinstance(row, str):
        return row

    def norm(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: norm(v) for k, v in value.items()}
        if isinstance(value, list):
            return [norm(v) for v in value]
        return _canonical_number(value)

    return json.dumps(norm(row), sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing one sink.

    :param label: which sink, for messages.
    :param expected: expected row count.
    :param actual: actual row count.
    :param missing: canonical rows expected but not produced (with multiplicity).
    :param unexpected: canonical rows produced but not expected (with multiplicity).
    """

    label: str
    expected: int
    actual: int
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Whether the rows match exactly."""
        return not self.missing and not self.unexpected

    def diff(self) -> str:
        """The readable diff: counts, then missing (-) and unexpected (+) rows, then field-level hints."""
        matched = self.expected - len(self.missing)
        lines = [f"{self.label}: expected {self.expected} rows, got {self.actual} ({matched} matched)"]
        if self.missing:
            lines.append("  missing (expected, not produced):")
            lines += [f"    - {row}" for row in self.missing]
        if self.unexpected:
            lines.append("  unexpected (produced, not expected):")
            lines += [f"    + {row}" for row in self.unexpected]
        lines += [f"  ~ {hint}" for hint in _field_hints(self.missing, self.unexpected)]
        return "\n".join(lines)


def _field_hints(missing: Sequence[str], unexpected: Sequence[str]) -> list[str]:
    """Pair a missing and an unexpected object row that differ in few fields, and name those fields."""
    hints = []
    spare = [json.loads(row) for row in unexpected if row.startswith("{")]
    for row in missing:
        if not row.startswith("{"):
            continue
        want = json.loads(row)
        best, best_diff = None, None
        for got in spare:
            fields = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
            if best_diff is None or len(fields) < len(best_diff):
                best, best_diff = got, fields
        if best is not None and best_diff is not None and len(best_diff) * 2 <= len(want):
            spare.remove(best)
            changes = ", ".join(
                f"{k}: expected {json.dumps(want.get(k))}, got {json.dumps(best.get(k))}" for k in best_diff
            )
            hints.append(f"closest produced row to {row} differs in {changes}")
    return hints


def compare_rows(actual: Iterable[Any], expected: Iterable[Any], label: str) -> Comparison:
    """Compare two row collections as multisets.

    :param actual: the rows read back.
    :param expected: the expected rows.
    :param label: which sink, for the diff.
    """
    got = Counter(canonical(row) for row in actual)
    want = Counter(canonical(row) for row in expected)
    return Comparison(
        label=label,
        expected=sum(want.values()),
        actual=sum(got.values()),
        missing=tuple(sorted((want - got).elements())),
        unexpected=tuple(sorted((got - want).elements())),
    )


def assert_all_match(comparisons: Sequence[Comparison], hint: str = "") -> None:
    """Raise one error listing every sink that differs.

    :param comparisons: one per sink.
    :param hint: a line appended to the message (e.g. about the settings used).
    :raises OutputMismatchError: when any sink differs.
    """
    failed = [c for c in comparisons if not c.ok]
    if failed:
        message = "Output differs from the expected rows:\n" + "\n".join(c.diff() for c in failed)
        raise OutputMismatchError(message + (f"\n{hint}" if hint else ""))
