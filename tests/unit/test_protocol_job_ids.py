"""Deterministic job ids and their validation."""

from __future__ import annotations

import re

import pytest

from airflow_flink_provider.protocol.job_ids import deterministic_job_id, validate_job_id

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
