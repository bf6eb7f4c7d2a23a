"""Fuzzing root-cause extraction: any server answer becomes a typed FlinkError, in time, safe to print and pickle."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from airflow_flink_provider.protocol.errors import FlinkError, error_from_response, root_cause
from tests.unit._fuzz import fuzz

pytestmark = pytest.mark.unit

_TRACE_PIECES = [
    "Caused by: ", "org.apache.flink.table.api.ValidationException: ", "java.lang.RuntimeException: ",
    "\tat org.apache.Foo.bar(Foo.java:1)\n", "\t... 12 more\n", "\tSuppressed: x\n", "<Exception on server side:\n",
    "End of exception on server side>", "CompletionException: ", "\n", " ", "SQL parse failed. ",
    "Encountered \"x\" at line 3, column 7", "NoResourceAvailableException",
    "Could not find any factory for identifier 'k'", "DuplicateJobSubmissionException", "Job 0123 not found",
    "'password' = 'hunter2-Zq9'", "x", "é",
]  # fmt: skip
traces = st.lists(st.sampled_from(_TRACE_PIECES) | st.text(max_size=6), max_size=60).map("".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | traces,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
bodies = (
    st.fixed_dictionaries({"errors": st.lists(st.none() | traces | st.text(max_size=40), max_size=4)})
    | json_values
    | st.binary(max_size=200)
    | traces
)


@fuzz()
@given(trace=traces | st.text(max_size=300))
def test_root_cause_of_any_text_is_text(trace: str) -> None:
    cause = root_cause(trace)
    assert isinstance(cause, str)
    assert len(cause) <= len(trace) + 3  # "..." when the cause is cut


@fuzz()
@given(status=st.integers(min_value=100, max_value=599), body=bodies)
def test_any_answer_becomes_a_typed_error_that_prints_and_pickles(status: int, body: object) -> None:
    error = error_from_response(status, body)
    assert isinstance(error, FlinkError)
    assert error.message and isinstance(str(error), str) and isinstance(repr(error), str)
    assert error.status == status
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error) and str(again) == str(error)
    assert "hunter2-Zq9" not in str(error) + repr(error) + str(error.root_cause) + str(error.hint)


@fuzz(examples=100)
@given(secret=st.text(alphabet="abcdefXYZ0123456789-_", min_size=8, max_size=20), noise=traces)
def test_a_secret_in_a_failing_sql_line_never_reaches_the_error(secret: str, noise: str) -> None:
    assume(secret not in noise)
    trace = (
        'org.apache.flink.table.api.SqlParserException: SQL parse failed. Encountered "WITH" at line 3\n'
        f"{noise}\n3 | 'properties.sasl.jaas.config' = 'PlainLoginModule required password=\"{secret}\";'\n"
        f"Caused by: org.apache.calcite.sql.parser.SqlParseException: 'password' = '{secret}'"
    )
    error = error_from_response(400, {"errors": ["Internal server error.", trace]})
    assert secret not in str(error) + repr(error) + pickle.dumps(error).decode("latin-1")
