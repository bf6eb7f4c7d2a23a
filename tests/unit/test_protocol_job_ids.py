"""Deterministic job ids and their validation."""

from __future__ import annotations

import re

import pytest

from airflow_flink_provider.protocol.job_ids import (
    deterministic_job_id,
    fingerprint,
    normalize_sql,
    sql_purposes,
    submission_purpose,
    validate_job_id,
)

pytestmark = pytest.mark.unit


def test_same_parts_give_the_same_32_hex_id() -> None:
    first = deterministic_job_id("dag", "task", "run-1")
    assert first == deterministic_job_id("dag", "task", "run-1")
    assert re.fullmatch(r"[0-9a-f]{32}", first)


def test_any_changed_part_changes_the_id() -> None:
    ids = {
        deterministic_job_id("dag", "task", "run-1"),
        deterministic_job_id("dag", "task", "run-2"),
        deterministic_job_id("dag", "task2", "run-1"),
        deterministic_job_id("dag2", "task", "run-1"),
    }
    assert len(ids) == 4


def test_part_boundaries_matter() -> None:
    assert deterministic_job_id("ab", "c") != deterministic_job_id("a", "bc")
    assert deterministic_job_id("abc") != deterministic_job_id("ab", "c")


def test_no_parts_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one part"):
        deterministic_job_id()


def test_generated_ids_validate() -> None:
    job_id = deterministic_job_id("x")
    assert validate_job_id(job_id) == job_id


def test_upper_case_and_surrounding_blanks_are_normalised() -> None:
    assert validate_job_id(" 0123456789ABCDEF0123456789ABCDEF\n") == "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    "bad",
    ["", "0123", "0123456789abcdef0123456789abcdeg", "0123456789abcdef0123456789abcdef0", "not-a-job-id", None, 12],
)
def test_anything_else_is_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match="not a Flink job id"):
        validate_job_id(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("INSERT  INTO t\n\tSELECT 1", "INSERT INTO t SELECT 1"),
        ("INSERT INTO t -- comment\nSELECT 1", "INSERT INTO t SELECT 1"),
        ("INSERT INTO t /* a\nblock */ SELECT 1", "INSERT INTO t SELECT 1"),
        ("SELECT 'a  -- not a comment'", "SELECT 'a  -- not a comment'"),
        ("SELECT 'it''s  two'", "SELECT 'it''s  two'"),
        ("SELECT `my  col` FROM t", "SELECT `my  col` FROM t"),
        ('SELECT "a  b"', 'SELECT "a  b"'),
        ("SELECT a-b, c/d FROM t", "SELECT a-b, c/d FROM t"),
        ("  select 1  ", "select 1"),
        ("SELECT 'unterminated  ", "SELECT 'unterminated  "),
        ("SELECT 1 /* unterminated", "SELECT 1"),
    ],
)
def test_normalize_sql_drops_comments_and_blanks_outside_quotes(text: str, normalized: str) -> None:
    assert normalize_sql(text) == normalized


def test_sql_purposes_count_identical_statements_not_positions() -> None:
    a, b = "INSERT INTO a SELECT 1", "INSERT INTO b SELECT 2"
    purposes = sql_purposes([a, b, "INSERT  INTO a\nSELECT 1"])

    assert purposes[0].endswith(":1") and purposes[2].endswith(":2")
    assert purposes[0].rsplit(":", 1)[0] == purposes[2].rsplit(":", 1)[0]
    assert sql_purposes(["INSERT INTO c SELECT 3", a, b])[1:] == purposes[:2]  # inserting a statement before
    assert sql_purposes(["INSERT INTO a SELECT 2"])[0] != purposes[0]  # an edit


def test_case_is_part_of_a_statement() -> None:
    assert sql_purposes(["INSERT INTO T SELECT 1"]) != sql_purposes(["INSERT INTO t SELECT 1"])


def test_fingerprint_is_stable_and_key_order_free() -> None:
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": "1"})
    assert submission_purpose({"a": 1}) == f"job:{fingerprint({'a': 1})}"
    assert re.fullmatch(r"[0-9a-f]{16}", fingerprint(None))
