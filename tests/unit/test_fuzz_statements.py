"""Fuzzing the statement splitter: any text splits, quickly, into statements found where they say they are."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_flink_provider.protocol.statements import executable_text, split_statements
from tests.unit._fuzz import fuzz

pytestmark = pytest.mark.unit

_SQL_PIECES = [
    "SELECT", "INSERT INTO t", "CASE", "END", "BEGIN", "STATEMENT", "SET", "EXECUTE", "x", "1", " ", " ", "\n",
    "\r\n", "\t", ";", ";", "'", "''", '"', "`", "--", "/*", "*/", "(", ")", ",", "=", "$", "é", "\x00",
]  # fmt: skip
sql_like = st.lists(st.sampled_from(_SQL_PIECES) | st.text(max_size=4), max_size=80).map("".join)


def _offset(script: str, line: int, column: int) -> int:
    """The index of a 1-based (line, column) in ``script``, lines split at ``\\n`` as the splitter does."""
    start = 0
    for _ in range(line - 1):
        start = script.index("\n", start) + 1
    return start + column - 1


@fuzz()
@given(script=sql_like | st.text(max_size=200))
def test_statements_are_where_they_say_in_order_and_trimmed(script: str) -> None:
    position = 0
    for statement in split_statements(script):
        assert statement.text.strip() and statement.text == statement.text.lstrip()
        offset = _offset(script, statement.line, statement.column)
        assert offset >= position, "statements overlap or are out of order"
        assert script.startswith(statement.text, offset)
        position = offset + len(statement.text)


@fuzz()
@given(script=sql_like)
def test_a_statement_splits_into_itself(script: str) -> None:
    for statement in split_statements(script):
        assert [again.text for again in split_statements(statement.text)] == [statement.text]
        assert isinstance(executable_text(statement.text), str)


@fuzz(examples=20, budget_ms=5000)
@given(piece=st.sampled_from(_SQL_PIECES), other=st.sampled_from(_SQL_PIECES))
def test_long_scripts_of_one_repeated_piece_split_in_time(piece: str, other: str) -> None:
    """100 kB of quotes, comment openers or semicolons: the splitter stays within its time budget."""
    script = (piece + other) * (100_000 // len(piece + other))
    for statement in split_statements(script):
        assert statement.text
