"""Typed errors from real Flink 2.1.3 answers (captured from the local stack; stack frames trimmed)."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from airflow_flink_provider.protocol.errors import (
    FlinkConnectionError,
    FlinkDuplicateJobError,
    FlinkError,
    FlinkJobFailedError,
    FlinkJobJsonParseError,
    FlinkJobMissingConnectorError,
    FlinkJobResourceError,
    FlinkJsonParseError,
    FlinkMissingConnectorError,
    FlinkNotFoundError,
    FlinkResourceError,
    FlinkSqlError,
    FlinkTimeoutError,
    error_from_response,
    error_from_text,
    hint_for,
    job_failed_error,
    redact,
    root_cause,
    sql_position,
)

pytestmark = pytest.mark.unit

# Answers captured from the local Flink 2.1.3 stack (REST :8081, SQL Gateway :8083), by name: {status, body}.
# Only the stack frames after the first of each exception were dropped.
ANSWERS = Path(__file__).parent / "data" / "flink_errors" / "answers.json"
SAMPLES: dict[str, Any] = json.loads(ANSWERS.read_text())


def sample(name: str) -> tuple[int, Any]:
    return SAMPLES[name]["status"], SAMPLES[name]["body"]


def error(name: str) -> FlinkError:
    status, body = sample(name)
    return error_from_response(status, body)


# --- root causes -----------------------------------------------------------------------------------


def test_root_cause_is_the_last_caused_by_with_a_short_class_name() -> None:
    trace = sample("rest_job_unknown")[1]["errors"][0]
    assert root_cause(trace) == "FlinkJobNotFoundException: Could not find Flink job (0123456789abcdef0123456789abcdef)"


def test_root_cause_without_caused_by_is_the_top_exception() -> None:
    trace = sample("rest_savepoint_status_unknown")[1]["errors"][0]
    assert root_cause(trace).startswith("RestHandlerException: There is no savepoint operation with triggerId=")


def test_root_cause_strips_the_server_side_wrapper_and_keeps_multi_line_messages() -> None:
    trace = sample("gw_select_bad_connector_result0")[1]["errors"][1]
    assert trace.startswith("<Exception on server side:")
    cause = root_cause(trace)
    assert cause.startswith("ValidationException: Could not find any factory for identifier 'nosuch'")
    assert "Available factory identifiers are:" in cause
    assert "kafka" in cause.splitlines()
    assert "End of exception" not in cause
    assert "\tat " not in cause and "more" not in cause.splitlines()[-1]


def test_long_messages_are_cut_to_a_dozen_lines() -> None:
    cause = root_cause(sample("gw_parse_result0")[1]["errors"][1])
    assert cause.startswith('ParseException: Encountered "t" at line 1, column 16.\nWas expecting one of:')
    assert len(cause.splitlines()) == 13 and cause.endswith("...")


def test_wrapper_exceptions_are_unwrapped() -> None:
    trace = (
        "java.util.concurrent.CompletionException: java.util.concurrent.CompletionException: "
        "org.apache.flink.runtime.messages.FlinkJobNotFoundException: Could not find Flink job (ab)\n"
        "\tat java.base/java.util.concurrent.CompletableFuture.encodeThrowable(CompletableFuture.java:332)\n"
    )
    assert root_cause(trace) == "FlinkJobNotFoundException: Could not find Flink job (ab)"


def test_root_cause_of_plain_text_is_the_text() -> None:
    assert root_cause("  Unable to load requested file /nosuchpath. \n") == "Unable to load requested file /nosuchpath."


def test_suppressed_exceptions_are_not_taken_for_the_root_cause() -> None:
    trace = (
        "java.lang.RuntimeException: outer\n\tat a.B.c(B.java:1)\n"
        "\tSuppressed: java.lang.IllegalStateException: side issue\n\t\tat a.B.d(B.java:2)\n"
        "Caused by: org.apache.flink.FooException: the real one\n\tat a.B.e(B.java:3)\n"
    )
    assert root_cause(trace) == "FooException: the real one"


# --- error_from_response on captured answers -----------------------------------------------------

NOT_FOUND = [
    ("rest_job_unknown", 404, "FlinkJobNotFoundException: Could not find Flink job"),
    ("rest_cancel_unknown", 404, "FlinkJobNotFoundException: Could not find Flink job"),
    ("rest_exceptions_unknown", 404, "FlinkJobNotFoundException: Could not find Flink job"),
    ("rest_savepoint_status_unknown", 404, "RestHandlerException: There is no savepoint operation"),
    ("rest_tm_stdout_unknown", 404, "UnknownTaskExecutorException: No TaskExecutor registered under nosuch."),
    ("rest_jar_run_unknown", 500, "RestHandlerException: Jar file /tmp/"),
    ("rest_jar_delete_unknown", 400, "RestHandlerException: File nosuch.jar does not exist in"),
    ("gw_close_again", 500, "SqlGatewayException: Session 'd3f7afb3-6dd4-4447-91f6-76d19d4b217c' does not exist."),
    ("gw_session_unknown_heartbeat", 500, "SqlGatewayException: Session 'c0b5cb50"),
    ("gw_session_unknown_exec", 500, "SqlGatewayException: Session 'c0b5cb50"),
    ("gw_op_unknown_status", 500, "SqlGatewayException: Can not find the submitted operation in the OperationManager"),
]


@pytest.mark.parametrize(("name", "status", "message"), NOT_FOUND)
def test_unknown_ids_are_not_found_errors(name: str, status: int, message: str) -> None:
    err = error(name)
    assert type(err) is FlinkNotFoundError
    assert err.status == status
    assert err.message.startswith(message)
    assert err.hint is not None and "does not know this id" in err.hint
    assert not err.retryable  # the gateway says 500, but a missing session stays missing


SQL = [
    ("gw_parse_result0", 1, 16, 'ParseException: Encountered "t" at line 1, column 16.'),
    ("gw_parse_multiline_result0", 4, 7, "SqlValidatorException: Column 'nam' not found in any table"),
    ("gw_validate_result0", 1, 8, "SqlValidatorException: Column 'nope' not found in any table"),
    ("gw_table_missing_result0", 1, 15, "SqlValidatorException: Object 'no_such_table' not found"),
    ("gw_configure_bad", 1, 8, 'ParseException: Encountered "TABLEX" at line 1, column 8.'),
]


@pytest.mark.parametrize(("name", "line", "column", "message"), SQL)
def test_sql_errors_carry_line_and_column(name: str, line: int, column: int, message: str) -> None:
    err = error(name)
    assert isinstance(err, FlinkSqlError)
    assert (err.line, err.column) == (line, column)
    assert err.message.startswith(message)
    assert err.hint == f"Flink rejected the SQL near line {line}, column {column} of the statement: " + (
        "check names, types and syntax there."
    )
    assert err.status == 500 and not err.retryable


@pytest.mark.parametrize(
    ("name", "message", "hint"),
    [
        ("gw_two_statements_result0", "IllegalArgumentException: only single statement supported", "split_statements"),
        (
            "gw_configure_select",
            "UnsupportedOperationException: Unsupported statement for configuring session",
            "execute_statement",
        ),
    ],
)
def test_sql_errors_without_position_get_specific_hints(name: str, message: str, hint: str) -> None:
    err = error(name)
    assert isinstance(err, FlinkSqlError)
    assert err.line is None and err.column is None
    assert err.message.startswith(message)
    assert err.hint is not None and hint in err.hint


def test_duplicate_job_id_is_read_through_the_nested_server_trace() -> None:
    err = error("gw_duplicate_job")
    assert type(err) is FlinkDuplicateJobError
    assert err.message == "DuplicateJobSubmissionException: Job has already been submitted."
    assert err.hint is not None and "find_job" in err.hint
    assert not err.retryable


def test_missing_connector_names_the_identifier() -> None:
    err = error("gw_select_bad_connector_result0")
    assert type(err) is FlinkMissingConnectorError
    assert err.hint is not None and "'nosuch'" in err.hint and "classpath" in err.hint


def test_bad_request_body_is_a_plain_error_with_a_format_hint() -> None:
    err = error("rest_jar_run_badbody")
    assert type(err) is FlinkError and err.status == 400
    assert err.message.startswith(
        'InvalidFormatException: Cannot deserialize value of type `java.lang.Integer` from String "abc"'
    )
    assert err.hint is not None and "request body" in err.hint
    assert not err.retryable


@pytest.mark.parametrize("name", ["rest_bad_job_id", "gw_session_bad_handle"])
def test_malformed_ids_in_urls(name: str) -> None:
    err = error(name)
    assert type(err) is FlinkError and err.status == 400
    assert "Cannot resolve path parameter" in err.message
    assert err.hint is not None and "32 hex digits" in err.hint


def test_conflict_is_a_plain_error() -> None:
    err = error("rest_cancel_finished")
    assert type(err) is FlinkError and err.status == 409
    assert "already reached another terminal state (FINISHED)" in err.message


def test_generic_server_failure_is_retryable() -> None:
    err = error_from_response(503, {"errors": ["Service temporarily unavailable due to an ongoing leader election."]})
    assert type(err) is FlinkError and err.retryable
    assert err.message == "Service temporarily unavailable due to an ongoing leader election."


def test_unknown_path_with_plain_error_list() -> None:
    err = error_from_response(404, {"errors": ["Unable to load requested file /nosuchpath."]})
    assert type(err) is FlinkNotFoundError and err.message == "Unable to load requested file /nosuchpath."


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
        (b"upstream reset", "upstream reset"),
        ("", "Flink reported an error without details"),
        (None, "Flink reported an error without details"),
        ({"unexpected": 1}, "{'unexpected': 1}"),
        ({"errors": "just a string"}, "just a string"),
    ],
)
def test_non_flink_bodies_still_give_an_error(body: Any, message: str) -> None:
    err = error_from_response(502, body)
    assert type(err) is FlinkError and err.message == message and err.status == 502


def test_str_shows_status_and_hint() -> None:
    text = str(error("rest_job_unknown"))
    assert text.startswith("FlinkJobNotFoundException: Could not find Flink job")
    assert "(HTTP 404)\nHint: Flink does not know this id" in text


# --- hints ------------------------------------------------------------------------------------------


def test_slots_hint_from_the_real_exception_history() -> None:
    entry = sample("job_exceptions_no_slots")[1]["exceptionHistory"]["entries"][0]
    cause = root_cause(entry["stacktrace"])
    assert cause == "NoResourceAvailableException: Could not acquire the minimum required resources."
    hint = hint_for(cause)
    assert hint is not None and "slots" in hint and "parallelism" in hint


@pytest.mark.parametrize(
    "text",
    [
        "java.io.IOException: Failed to deserialize JSON '{\"id\": 1,'.",
        "Caused by: org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParseException: "
        "Unexpected end-of-input",
    ],
)
def test_json_hint(text: str) -> None:
    assert "json.ignore-parse-errors" in (hint_for(text) or "")
    assert isinstance(error_from_text(text), FlinkJsonParseError)


def test_savepoint_directory_hint() -> None:
    text = "java.lang.IllegalStateException: No savepoint directory configured. You can either specify a directory"
    assert "execution.checkpointing.savepoint-dir" in (hint_for(text) or "")


def test_no_hint_for_unknown_failures() -> None:
    assert hint_for("java.lang.RuntimeException: something else") is None


def test_sql_position_takes_the_first_mention() -> None:
    assert sql_position("From line 2, column 3 to line 2, column 9: x") == (2, 3)
    assert sql_position('Encountered "x" at line 10, column 1.') == (10, 1)
    assert sql_position("no position") == (None, None)


# --- job failures -------------------------------------------------------------------------------


def test_real_bad_json_job_failure() -> None:
    from airflow_flink_provider.protocol.rest import root_cause_of

    cause = root_cause_of(sample("job_exceptions_bad_json")[1])
    assert cause == (
        "JsonEOFException: Unexpected end-of-input within/between Object entries\n"
        " at [Source: UNKNOWN; line: 1, column: 19]"
    )
    err = job_failed_error("ab" * 16, cause)
    assert isinstance(err, FlinkJobJsonParseError) and isinstance(err, FlinkJsonParseError)
    assert err.hint is not None and "json.ignore-parse-errors" in err.hint


def test_jar_run_on_a_jobmanager_without_add_opens() -> None:
    err = error("rest_jar_run_without_add_opens")
    assert type(err) is FlinkError and err.status == 400 and not err.retryable
    assert err.message.startswith("ExceptionInInitializerError")
    assert err.hint is not None and "--add-opens" in err.hint


def test_job_failed_for_lack_of_slots_is_both_kinds() -> None:
    err = job_failed_error("ab" * 16, "NoResourceAvailableException: Could not acquire the minimum required resources.")
    assert isinstance(err, FlinkJobResourceError)
    assert isinstance(err, FlinkJobFailedError) and isinstance(err, FlinkResourceError)
    assert err.job_id == "ab" * 16
    assert err.message.startswith(f"Flink job {'ab' * 16} is FAILED: NoResourceAvailableException")
    assert err.hint is not None and "slots" in err.hint


@pytest.mark.parametrize(
    ("cause", "cls"),
    [
        ("ValidationException: Could not find any factory for identifier 'kafka'", FlinkJobMissingConnectorError),
        ("IOException: Failed to deserialize JSON '{bad'.", FlinkJobJsonParseError),
        ("ArithmeticException: / by zero", FlinkJobFailedError),
    ],
)
def test_job_failed_error_types_by_cause(cause: str, cls: type[FlinkJobFailedError]) -> None:
    err = job_failed_error("0" * 32, cause)
    assert type(err) is cls and err.root_cause == cause


def test_job_failed_without_recorded_cause() -> None:
    err = job_failed_error("0" * 32, None)
    assert type(err) is FlinkJobFailedError and "no exception recorded" in err.message and err.root_cause is None


# --- retryability, copying, pickling, secrets -----------------------------------------------------


def test_retryable_by_kind() -> None:
    assert FlinkConnectionError("refused").retryable
    assert FlinkTimeoutError("slow", transient=True).retryable
    assert not FlinkTimeoutError("waited too long").retryable
    assert FlinkError("boom", status=500).retryable
    assert not FlinkError("boom").retryable
    assert not FlinkSqlError("bad", status=500).retryable


@pytest.mark.parametrize("name", ["gw_parse_result0", "rest_job_unknown", "gw_select_bad_connector_result0"])
def test_errors_survive_pickle_and_copy(name: str) -> None:
    err = error(name)
    for clone in (pickle.loads(pickle.dumps(err)), copy.copy(err), copy.deepcopy(err)):
        assert type(clone) is type(err)
        assert clone.__dict__ == err.__dict__
        assert str(clone) == str(err)


def test_secrets_in_table_options_never_reach_the_message() -> None:
    trace = (
        "org.apache.flink.table.api.ValidationException: Unable to create a source for reading table 't'.\n\n"
        "Table options are:\n\n'connector'='nosuch'\n'properties.sasl.jaas.config'='x required password=\"p4ss\";'\n"
        "'password'='hunter2'\n\tat a.B.c(B.java:1)\n"
    )
    err = error_from_response(500, {"errors": ["Internal server error.", trace]})
    for text in (err.message, err.root_cause or "", str(err)):
        assert "p4ss" not in text and "hunter2" not in text
    assert "'password'='****'" in err.message


def test_redact_keeps_harmless_options() -> None:
    assert redact("'connector'='kafka' 'topic'='t'") == "'connector'='kafka' 'topic'='t'"
    assert redact("'s3.secret-key'='abc' 'token'='x'") == "'s3.secret-key'='****' 'token'='****'"


def test_root_cause_masks_secrets_it_quotes() -> None:
    trace = (
        "org.apache.flink.runtime.JobException: Recovery is suppressed\n"
        "\tat org.apache.flink.Foo.bar(Foo.java:1)\n"
        "Caused by: java.lang.NumberFormatException: For input string: 'password=hunter2-Zq9'. Invalid character"
    )
    assert root_cause(trace) == "NumberFormatException: For input string: 'password=****'. Invalid character"


def test_an_unknown_table_is_a_sql_error_not_a_retryable_one() -> None:
    body = {
        "errors": [
            "Internal server error.",
            "org.apache.flink.table.api.TableException: Cannot find table '`default_catalog`.`default_database`."
            "`missing`' in any of the catalogs [default_catalog], nor as a temporary table.",
        ]
    }
    error = error_from_response(500, body)
    assert isinstance(error, FlinkSqlError) and not error.retryable
    assert error.hint is not None and "rejected the SQL" in error.hint
