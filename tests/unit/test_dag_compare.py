"""Reading sink output back and comparing it with expected rows (flink_lessons.compare, flink_lessons.fixtures)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flink_lessons.compare import (
    OutputMismatchError,
    assert_all_match,
    canonical,
    compare_rows,
    load_expected,
    message_record,
    rows_from_records,
)
from flink_lessons.fixtures import fixture_lines, fixture_messages

pytestmark = pytest.mark.unit


class FakeMessage:
    """The parts of confluent_kafka.Message that message_record reads."""

    def __init__(self, offset: int, value: bytes | None, key: bytes | None = None) -> None:
        self._offset, self._value, self._key = offset, value, key

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value


def record(offset: int, value: dict[str, Any] | None, key: str | None = None) -> dict[str, Any]:
    return message_record(FakeMessage(offset, json.dumps(value).encode() if value is not None else None,
                                      key.encode() if key is not None else None))  # fmt: skip


def test_message_record_is_json_serializable() -> None:
    rec = message_record(FakeMessage(3, b'{"a": 1}', b'{"k": "x"}'))
    assert rec == {"partition": 0, "offset": 3, "key": '{"k": "x"}', "value": '{"a": 1}'}
    assert json.loads(json.dumps(rec)) == rec


def test_append_rows_are_in_offset_order_and_redeliveries_count_once() -> None:
    records = [record(1, {"n": 1}), record(0, {"n": 0}), record(1, {"n": 1})]
    assert rows_from_records(records, "append") == [{"n": 0}, {"n": 1}]


def test_upsert_rows_are_the_compacted_table() -> None:
    records = [
        record(0, {"id": "a", "v": 1}, '{"id":"a"}'),
        record(1, {"id": "b", "v": 1}, '{"id":"b"}'),
        record(2, {"id": "a", "v": 2}, '{"id":"a"}'),
        record(3, None, '{"id":"b"}'),
    ]
    assert rows_from_records(records, "upsert") == [{"id": "a", "v": 2}]


def test_records_before_this_attempts_start_are_an_earlier_attempts() -> None:
    """A rerun cleared the submit: the topic holds the first attempt's rows, then this attempt's."""
    first = [record(0, {"id": "a", "v": 1}, '{"id":"a"}'), record(1, {"id": "b", "v": 1}, '{"id":"b"}')]
    again = [record(2, {"id": "a", "v": 1}, '{"id":"a"}'), record(3, None, '{"id":"b"}')]
    assert rows_from_records(first + again, "append", {"0": 2}) == [{"id": "a", "v": 1}]
    assert rows_from_records(first + again, "upsert", {"0": 2}) == [{"id": "a", "v": 1}]
    everything = [{"id": "a", "v": 1}, {"id": "b", "v": 1}, {"id": "a", "v": 1}]
    assert rows_from_records(first + again, "append", {"1": 2}) == everything  # another partition's start


def test_unknown_sink_kind() -> None:
    with pytest.raises(ValueError, match="unknown sink kind"):
        rows_from_records([], "print")


def test_numbers_compare_by_value_and_keys_in_any_order() -> None:
    assert canonical({"b": 7, "a": 12.50}) == canonical({"a": 12.5, "b": 7.0})
    assert canonical({"a": True}) != canonical({"a": 1})


def test_equal_multisets_match_in_any_order() -> None:
    comparison = compare_rows([{"x": 2}, {"x": 1}, {"x": 1}], [{"x": 1}, {"x": 2}, {"x": 1}], "sink")
    assert comparison.ok
    assert_all_match([comparison])


def test_duplicates_matter() -> None:
    comparison = compare_rows([{"x": 1}, {"x": 1}], [{"x": 1}], "sink")
    assert not comparison.ok
    assert comparison.unexpected == ('{"x": 1}',)


def test_the_diff_is_readable() -> None:
    expected = [{"id": 1, "status": "paid"}, {"id": 2, "status": "new"}, {"id": 3, "status": "new"}]
    actual = [{"id": 1, "status": "shipped"}, {"id": 2, "status": "new"}, {"id": 9, "status": "x"}]
    with pytest.raises(OutputMismatchError) as info:
        assert_all_match([compare_rows(actual, expected, "sink 'last'")], "hint: check the settings")
    message = str(info.value)
    assert "sink 'last': expected 3 rows, got 3 (1 matched)" in message
    assert '    - {"id": 1, "status": "paid"}' in message
    assert '    + {"id": 1, "status": "shipped"}' in message
    assert 'differs in status: expected "paid", got "shipped"' in message
    assert message.endswith("hint: check the settings")


def test_text_lines_compare_exactly() -> None:
    assert compare_rows(["+I[1, A]"], ["+I[1, A]"], "print").ok
    comparison = compare_rows(["+I[1, A]"], ["+I[1, B]"], "print")
    assert comparison.missing == ("+I[1, B]",) and comparison.unexpected == ("+I[1, A]",)


def test_load_expected_reads_jsonl_and_text(tmp_path: Path) -> None:
    (tmp_path / "rows.jsonl").write_text('{"a": 1}\n\n{"a": 2}\n')
    (tmp_path / "print.txt").write_text("+I[1]\n+I[2]\n")
    assert load_expected(tmp_path / "rows.jsonl") == [{"a": 1}, {"a": 2}]
    assert load_expected(tmp_path / "print.txt") == ["+I[1]", "+I[2]"]


def test_fixture_messages_are_the_lines_verbatim(tmp_path: Path) -> None:
    path = tmp_path / "input.jsonl"
    path.write_text('{"a": 1}\nnot json\n\n{"a": \n', encoding="utf-8")
    assert fixture_lines(path) == ['{"a": 1}', "not json", '{"a": ']
    assert list(fixture_messages(str(path))) == [(None, b'{"a": 1}'), (None, b"not json"), (None, b'{"a": ')]
