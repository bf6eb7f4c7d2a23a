"""Split a Flink SQL script into statements, keeping where each one starts.

The SQL Gateway executes one statement per request, so a script must be split client-side. A semicolon
ends a statement except inside ``'...'`` strings (``''`` escapes a quote), ``"..."`` and ```...```
quoted names, ``--`` line comments and ``/* */`` block comments, and inside a statement set:
``EXECUTE STATEMENT SET BEGIN ...; ...; END`` and ``BEGIN STATEMENT SET; ...; END`` each stay one
statement (the set ends at the ``END`` that opens an inner statement, so ``CASE ... END`` inside an
``INSERT`` does not end it).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass

_WORD = re.compile(r"[A-Za-z0-9_$]+")
_QUOTES = "'\"`"
_STATEMENT_SET_HEADS = (("EXECUTE", "STATEMENT", "SET", "BEGIN"), ("BEGIN", "STATEMENT", "SET"))
_HEAD_LENGTH = max(len(head) for head in _STATEMENT_SET_HEADS)
_BEGIN_STATEMENT_SET = re.compile(r"BEGIN(\s+)STATEMENT(\s+)SET(\s*);", re.IGNORECASE)


@dataclass(frozen=True)
class Statement:
    """One statement of a script.

    :param text: the statement without its terminating semicolon, leading/trailing comments and blanks.
    :param line: 1-based script line of the statement's first character.
    :param column: 1-based column of the statement's first character on that line.
    """

    text: str
    line: int
    column: int = 1

    def script_position(self, line: int, column: int | None = None) -> tuple[int, int | None]:
        """Map a position that Flink reports inside this statement to the script's position.

        :param line: 1-based line within the statement text.
        :param column: 1-based column within that line, if known.
        :return: ``(script_line, script_column)``.
        """
        script_line = self.line + line - 1
        if column is None:
            return script_line, None
        return script_line, column + self.column - 1 if line == 1 else column


@dataclass(frozen=True)
class _Token:
    kind: str  # "word", "quoted", "comment", "semicolon", "other"
    start: int
    end: int


def _quoted_end(script: str, start: int) -> int:
    """Index just past the quoted run starting at ``start`` (doubled quote chars escape)."""
    quote = script[start]
    i = start + 1
    while True:
        j = script.find(quote, i)
        if j < 0:
            return len(script)
        if script.startswith(quote * 2, j):
            i = j + 2
            continue
        return j + 1


def _tokens(script: str) -> Iterator[_Token]:
    """Lex just enough SQL to know where statements end; whitespace is skipped."""
    i, n = 0, len(script)
    while i < n:
        ch = script[i]
        if ch.isspace():
            i += 1
            continue
        if script.startswith("--", i):
            j = script.find("\n", i)
            end = n if j < 0 else j
            yield _Token("comment", i, end)
        elif script.startswith("/*", i):
            j = script.find("*/", i + 2)
            end = n if j < 0 else j + 2
            yield _Token("comment", i, end)
        elif ch in _QUOTES:
            end = _quoted_end(script, i)
            yield _Token("quoted", i, end)
        elif ch == ";":
            end = i + 1
            yield _Token("semicolon", i, end)
        elif match := _WORD.match(script, i):
            end = match.end()
            yield _Token("word", i, end)
        else:
            end = i + 1
            yield _Token("other", i, end)
        i = end


class _Splitter:
    """State of one pass over a script's tokens."""

    def __init__(self, script: str) -> None:
        self.script = script
        self.newlines = [i for i, ch in enumerate(script) if ch == "\n"]
        self.statements: list[Statement] = []
        self._reset()

    def _reset(self) -> None:
        self.start: int | None = None
        self.end = 0
        self.head: list[str] | None = []  # leading words, until a non-word token or a full head
        self.in_set = False
        self.inner_start = False  # the next token opens an inner statement of a statement set

    def flush(self) -> None:
        if self.start is not None:
            line_index = bisect.bisect_left(self.newlines, self.start)
            line_start = self.newlines[line_index - 1] + 1 if line_index else 0
            text = self.script[self.start : self.end]
            self.statements.append(Statement(text, line_index + 1, self.start - line_start + 1))
        self._reset()

    def feed(self, token: _Token) -> None:
        if token.kind == "comment":
            return
        if token.kind == "semicolon" and not self.in_set:
            self.flush()
            return
        if self.start is None:
            self.start = token.start
        self.end = token.end
        if token.kind == "semicolon":
            self.inner_start = True
            return
        word = self.script[token.start : token.end].upper() if token.kind == "word" else None
        if self.in_set and self.inner_start and word == "END":
            self.in_set = False
        self.inner_start = False
        self._track_head(word)

    def _track_head(self, word: str | None) -> None:
        if self.head is None:
            return
        if word is None:
            self.head = None
            return
        self.head.append(word)
        if tuple(self.head) in _STATEMENT_SET_HEADS:
            self.in_set = True
            self.inner_start = self.head[0] == "EXECUTE"  # "... BEGIN" may be followed by END at once
            self.head = None
        elif len(self.head) >= _HEAD_LENGTH:
            self.head = None


def split_statements(script: str) -> list[Statement]:
    """Split a SQL script into statements.

    Empty statements and comment-only chunks are dropped. A statement set (``EXECUTE STATEMENT SET
    BEGIN ... END`` or ``BEGIN STATEMENT SET; ... END``) is returned as one statement, text unchanged.

    :param script: the whole script.
    :return: the statements in order, each with the script line and column it starts at.
    """
    splitter = _Splitter(script)
    for token in _tokens(script):
        splitter.feed(token)
    splitter.flush()
    return splitter.statements


def executable_text(statement: str) -> str:
    """The statement as the SQL Gateway can run it in one request.

    ``BEGIN STATEMENT SET; ...; END`` (the SQL client's form, which the gateway only accepts as separate
    requests) becomes ``EXECUTE STATEMENT SET BEGIN ...; END``. Line breaks are kept, so line numbers in
    Flink's errors still match; columns on the first line shift by the longer keyword. Anything else is
    returned unchanged.

    :param statement: one statement as :func:`split_statements` returns it.
    """
    match = _BEGIN_STATEMENT_SET.match(statement)
    if match is None:
        return statement
    newlines = "\n" * match.group(0).count("\n")
    return f"EXECUTE STATEMENT SET BEGIN{newlines}{statement[match.end():]}"
