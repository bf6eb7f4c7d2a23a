"""Splitting SQL scripts into statements: quoting, comments, statement sets, positions."""

from __future__ import annotations

import pytest

from airflow_flink_provider.protocol.statements import Statement, split_statements

pytestmark = pytest.mark.unit


def texts(script: str) -> list[str]:
    return [statement.text for statement in split_statements(script)]


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        pytest.param("SELECT 1; SELECT 2;\nSELECT 3", ["SELECT 1", "SELECT 2", "SELECT 3"], id="plain-lose-semicolons"),
        pytest.param("-- header only;\n/* block; only */;\nSELECT 1;\n-- trailing; comment\n", ["SELECT 1"],
                     id="comment-only-chunks-dropped"),
        pytest.param("SELECT 'a;b' AS x; SELECT 2", ["SELECT 'a;b' AS x", "SELECT 2"], id="semicolon-in-string"),
        pytest.param("SELECT 'it''s; fine', 'x'; SELECT ''';'''", ["SELECT 'it''s; fine', 'x'", "SELECT ''';'''"],
                     id="doubled-quote-escapes"),
        pytest.param('SELECT "a;b" FROM `t;1`; SELECT `x``;y` FROM t',
                     ['SELECT "a;b" FROM `t;1`', "SELECT `x``;y` FROM t"], id="semicolon-in-quoted-identifiers"),
        pytest.param("SELECT '-- not a comment;' AS a, '/* nor; this */' AS b; SELECT 2",
                     ["SELECT '-- not a comment;' AS a, '/* nor; this */' AS b", "SELECT 2"],
                     id="comment-markers-in-strings-are-text"),
        pytest.param("SELECT 1 -- it's a comment; with ' quote\n; SELECT 2 /* don't; */", ["SELECT 1", "SELECT 2"],
                     id="quotes-in-comments-open-no-string"),
        pytest.param("SELECT a, -- the a; column\n  b /* and; b */\nFROM t;",
                     ["SELECT a, -- the a; column\n  b /* and; b */\nFROM t"], id="comments-in-a-statement-kept"),
        pytest.param("SELECT 'open; SELECT 2", ["SELECT 'open; SELECT 2"], id="unterminated-string-runs-to-the-end"),
        pytest.param("SELECT 1; /* never closed; SELECT 2", ["SELECT 1"], id="unterminated-block-comment-dropped"),
    ],
)  # fmt: skip
def test_split_texts(script: str, expected: list[str]) -> None:
    assert texts(script) == expected


def test_empty_script_and_blank_chunks_give_nothing() -> None:
    assert split_statements("") == []
    assert split_statements("  ;;\n ; \t") == []


def test_optimizer_hints_stay_in_the_statement() -> None:
    script = "SELECT /*+ OPTIONS('scan.startup.mode'='earliest-offset') */ * FROM t; SELECT 2"
    assert texts(script)[0] == "SELECT /*+ OPTIONS('scan.startup.mode'='earliest-offset') */ * FROM t"


def test_execute_statement_set_stays_one_statement() -> None:
    script = (
        "CREATE TABLE a (x INT);\n"
        "EXECUTE STATEMENT SET\nBEGIN\n"
        "  INSERT INTO a SELECT 1;\n"
        "  INSERT INTO b SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END FROM c;\n"
        "END;\n"
        "SELECT 3;"
    )
    statements = split_statements(script)
    assert [s.text.split()[0] for s in statements] == ["CREATE", "EXECUTE", "SELECT"]
    assert statements[1].text.endswith("FROM c;\nEND")
    assert "CASE WHEN x > 0 THEN 1 ELSE 0 END" in statements[1].text
    assert statements[1].line == 2
    assert statements[2].line == 7


def test_begin_statement_set_stays_one_statement() -> None:
    script = "begin statement set;\ninsert into a select 1;\ninsert into b select 2;\nend;\nselect 3"
    statements = split_statements(script)
    assert [s.text for s in statements] == [
        "begin statement set;\ninsert into a select 1;\ninsert into b select 2;\nend",
        "select 3",
    ]


def test_statement_set_keywords_split_by_comments_and_newlines() -> None:
    script = "EXECUTE /* c */ STATEMENT\n-- c\nSET BEGIN INSERT INTO a SELECT 1; END; SELECT 2"
    assert len(split_statements(script)) == 2


def test_empty_execute_statement_set_ends_at_end() -> None:
    assert texts("EXECUTE STATEMENT SET BEGIN END; SELECT 1") == ["EXECUTE STATEMENT SET BEGIN END", "SELECT 1"]


def test_end_inside_a_string_or_case_does_not_close_a_set() -> None:
    script = "BEGIN STATEMENT SET; INSERT INTO a SELECT 'END'; INSERT INTO a SELECT CASE WHEN 1=1 THEN 1 END; END;"
    assert len(split_statements(script)) == 1


def test_unclosed_statement_set_runs_to_the_end() -> None:
    script = "BEGIN STATEMENT SET; INSERT INTO a SELECT 1; INSERT INTO a SELECT 2;"
    assert texts(script) == ["BEGIN STATEMENT SET; INSERT INTO a SELECT 1; INSERT INTO a SELECT 2;"]


def test_words_that_only_start_like_a_set_do_not_open_one() -> None:
    assert texts("SET 'a' = 'b'; EXECUTE INSERT INTO t SELECT 1; BEGIN; SELECT 2") == [
        "SET 'a' = 'b'",
        "EXECUTE INSERT INTO t SELECT 1",
        "BEGIN",
        "SELECT 2",
    ]


def test_lines_and_columns_point_at_each_statements_first_character() -> None:
    script = "-- header\n\n  SELECT 1;  SELECT\n 2;\r\n/* c */ SELECT 3"
    statements = split_statements(script)
    assert [(s.line, s.column) for s in statements] == [(3, 3), (3, 14), (5, 9)]
    assert statements[1].text == "SELECT\n 2"
    for statement in statements:
        line = script.splitlines()[statement.line - 1]
        assert line[statement.column - 1 :].startswith(statement.text.splitlines()[0])


def test_script_position_maps_statement_positions_to_script_positions() -> None:
    statement = Statement("SELECT x,\n  y FROM t", line=10, column=5)
    assert statement.script_position(1, 8) == (10, 12)  # first line: shifted by the start column
    assert statement.script_position(2, 3) == (11, 3)  # later lines start at column 1
    assert statement.script_position(2) == (11, None)


def test_statement_positions_from_a_real_split() -> None:
    script = "SET 'a' = 'b';\nSELECT id,\n  name\nFROM t\nWHERE nam = 'a';"
    statement = split_statements(script)[1]
    # Flink reports "From line 4, column 7" for `nam` in that statement.
    assert statement.script_position(4, 7) == (5, 7)
    assert script.splitlines()[4][6:9] == "nam"


def test_dollar_and_unicode_in_words_and_strings() -> None:
    script = "SET '$internal.pipeline.job-id' = 'abc'; SELECT 'héllo; wörld'"
    assert texts(script) == ["SET '$internal.pipeline.job-id' = 'abc'", "SELECT 'héllo; wörld'"]
