"""What a Flink SQL script reads and writes, from its own text (pure, no I/O, no OpenLineage import).

The script is split with :func:`~airflow_flink_provider.protocol.statements.split_statements` and read in order,
as the SQL Gateway session runs it:

- ``CREATE [TEMPORARY] TABLE name (...) WITH (...)`` records the table's options and physical columns
  (a CTAS also writes the table);
- ``CREATE [TEMPORARY] VIEW name AS query`` records the tables the query reads (views of views resolve);
- ``CREATE CATALOG name WITH (...)``, ``USE CATALOG c`` and ``USE [c.]db`` decide how names qualify;
- ``INSERT INTO|OVERWRITE target ... query``, alone, after ``EXECUTE`` or inside a statement set, writes
  ``target`` and reads every table named after ``FROM``, ``JOIN``, ``TABLE`` (window functions) or a comma of a
  ``FROM`` list in the query.

A name is looked up qualified with the current catalog and database (``default_catalog.default_database``
until a ``USE``). A table that the script does not define is kept when its catalog is one the script created
(an Iceberg catalog: its tables need no ``CREATE TABLE``); any other unknown name (a CTE, a table of a catalog
made elsewhere) is left out: nothing in the script says where its data lives.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from airflow_flink_provider.protocol.statements import split_statements

DEFAULT_CATALOG = "default_catalog"
DEFAULT_DATABASE = "default_database"

_TOKEN = re.compile(
    r"(?P<space>\s+|--[^\n]*|/\*.*?(?:\*/|\Z))"
    r"|(?P<string>'(?:[^']|'')*'?)"
    r"|(?P<quoted>`(?:[^`]|``)*`?)"
    r"|(?P<word>[A-Za-z_$][A-Za-z0-9_$]*)"
    r"|(?P<number>\d+(?:\.\d+)?)"
    r"|(?P<other>.)",
    re.DOTALL,
)
_SET_HEAD = re.compile(r"^\s*(?:EXECUTE\s+STATEMENT\s+SET\s+BEGIN|BEGIN\s+STATEMENT\s+SET\s*;)", re.IGNORECASE)
_SET_TAIL = re.compile(r"\bEND\s*$", re.IGNORECASE)
_FROM_LIST_END = frozenset(
    {"WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "WINDOW", "UNION", "EXCEPT", "INTERSECT", "ON", "SELECT",
     "MATCH_RECOGNIZE", "FOR", "QUALIFY", "USING"}
)  # fmt: skip
_TYPE_SPACING = (
    (re.compile(r"\s+([),>])"), r"\1"),
    (re.compile(r"([(<])\s+"), r"\1"),
    (re.compile(r"\s+([(<])"), r"\1"),
)
"""How a column type is written back from its tokens: ``DECIMAL(10, 2)``, ``ARRAY<STRING>``."""
_NOT_COLUMNS = frozenset({"WATERMARK", "PRIMARY", "CONSTRAINT", "PERIOD", "LIKE"})


@dataclass(frozen=True)
class Token:
    """One token: ``kind`` is ``string``, ``quoted``, ``word``, ``number`` or ``other``; ``text`` is unquoted."""

    kind: str
    text: str

    def is_word(self, *words: str) -> bool:
        """Whether this is a bare word equal (case-insensitively) to one of ``words``."""
        return self.kind == "word" and self.text.upper() in words

    @property
    def is_name(self) -> bool:
        """A bare or backquoted identifier."""
        return self.kind in ("word", "quoted")


def tokens(text: str) -> list[Token]:
    """The tokens of a statement, comments and blanks dropped, quotes removed from strings and names."""
    out: list[Token] = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "other"
        value = match.group()
        if kind == "space":
            continue
        if kind == "string":
            value = value[1:-1].replace("''", "'") if len(value) > 1 and value.endswith("'") else value[1:]
        elif kind == "quoted":
            value = value[1:-1].replace("``", "`") if len(value) > 1 and value.endswith("`") else value[1:]
        out.append(Token(kind, value))
    return out


@dataclass(frozen=True)
class Column:
    """A physical column of a ``CREATE TABLE``: its name and Flink SQL type as written."""

    name: str
    type: str


@dataclass(frozen=True)
class Table:
    """A table of the script, qualified: ``catalog.database.name``.

    :param catalog: the catalog it lives in.
    :param database: its database.
    :param name: its name.
    :param options: the ``WITH`` options of its ``CREATE TABLE`` (empty for a table of a catalog that the
        script only uses).
    :param columns: its physical columns (computed and metadata columns are not stored data).
    :param catalog_options: the ``WITH`` options of its catalog when the script created the catalog.
    """

    catalog: str
    database: str
    name: str
    options: Mapping[str, str] = field(default_factory=dict)
    columns: tuple[Column, ...] = ()
    catalog_options: Mapping[str, str] = field(default_factory=dict)

    @property
    def qualified(self) -> str:
        """``catalog.database.name``."""
        return f"{self.catalog}.{self.database}.{self.name}"


@dataclass
class SqlLineage:
    """The tables a script reads and writes, each once, in order of first use."""

    inputs: list[Table] = field(default_factory=list)
    outputs: list[Table] = field(default_factory=list)

    def add(self, reads: list[Table], writes: list[Table]) -> None:
        """Record one job statement's reads and writes."""
        for table, into in [(t, self.inputs) for t in reads] + [(t, self.outputs) for t in writes]:
            if all(table.qualified != known.qualified for known in into):
                into.append(table)


def _name(toks: list[Token], i: int) -> tuple[list[str], int]:
    """A dotted name starting at ``toks[i]``: its parts and the index after it."""
    parts: list[str] = []
    while i < len(toks) and toks[i].is_name:
        parts.append(toks[i].text)
        if i + 2 < len(toks) and toks[i + 1].text == "." and toks[i + 2].is_name:
            i += 2
            continue
        i += 1
        break
    return parts, i


def _skip_words(toks: list[Token], i: int, *words: str) -> int:
    """Skip the optional words in order (e.g. ``IF NOT EXISTS``) when they all appear at ``i``."""
    if all(i + k < len(toks) and toks[i + k].is_word(word) for k, word in enumerate(words)):
        return i + len(words)
    return i


def _closing(toks: list[Token], i: int) -> int:
    """Index of the ``)`` that closes the ``(`` at ``toks[i]`` (or the end)."""
    depth = 0
    for j in range(i, len(toks)):
        if toks[j].text == "(" and toks[j].kind == "other":
            depth += 1
        elif toks[j].text == ")" and toks[j].kind == "other":
            depth -= 1
            if depth == 0:
                return j
    return len(toks)


def _top_level_items(toks: list[Token]) -> Iterator[list[Token]]:
    """The comma-separated items of a parenthesized list's inside, nested parentheses and ``<>`` kept whole."""
    depth = 0
    item: list[Token] = []
    for tok in toks:
        if tok.kind == "other" and tok.text in "(<":
            depth += 1
        elif tok.kind == "other" and tok.text in ")>":
            depth -= 1
        if tok.kind == "other" and tok.text == "," and depth == 0:
            yield item
            item = []
            continue
        item.append(tok)
    if item:
        yield item


def _options(toks: list[Token], i: int) -> dict[str, str]:
    """The ``'key' = 'value'`` pairs of the ``WITH (...)`` whose ``(`` is at ``toks[i]``."""
    end = _closing(toks, i)
    options: dict[str, str] = {}
    for item in _top_level_items(toks[i + 1 : end]):
        if len(item) == 3 and item[1].text == "=":
            options[item[0].text] = item[2].text
    return options


def _columns(toks: list[Token]) -> tuple[Column, ...]:
    """Physical columns of a ``CREATE TABLE``'s column list (inside the parentheses)."""
    columns: list[Column] = []
    for item in _top_level_items(toks):
        if len(item) < 2 or not item[0].is_name or (item[0].kind == "word" and item[0].text.upper() in _NOT_COLUMNS):
            continue
        if item[1].is_word("AS"):  # computed column
            continue
        if any(t.is_word("METADATA") for t in item[1:]):
            continue
        end = next((k for k, t in enumerate(item[1:]) if t.is_word("NOT", "NULL", "COMMENT", "PRIMARY")), len(item) - 1)
        type_text = " ".join(t.text for t in item[1 : 1 + end])
        for pattern, replacement in _TYPE_SPACING:
            type_text = pattern.sub(replacement, type_text)
        columns.append(Column(item[0].text, type_text))
    return tuple(columns)


def _references(toks: list[Token]) -> list[list[str]]:
    """Names read by a query: after ``FROM``, ``JOIN``, ``TABLE`` and the commas of a ``FROM`` list."""
    found: list[list[str]] = []
    in_from = [False]
    i = 0
    while i < len(toks):
        tok = toks[i]
        if tok.kind == "other" and tok.text == "(":
            in_from.append(False)
        elif tok.kind == "other" and tok.text == ")":
            if len(in_from) > 1:
                in_from.pop()
        elif tok.is_word("FROM", "JOIN", "TABLE") or (tok.text == "," and tok.kind == "other" and in_from[-1]):
            if tok.is_word("FROM"):
                in_from[-1] = True
            parts, after = _name(toks, i + 1)
            if parts and not (after < len(toks) and toks[after].text == "("):
                found.append(parts)
                i = after
                continue
        elif tok.kind == "word" and tok.text.upper() in _FROM_LIST_END:
            in_from[-1] = False
        i += 1
    return found


class _Session:
    """The state a script builds up, statement by statement, as a gateway session would."""

    def __init__(self) -> None:
        self.catalog = DEFAULT_CATALOG
        self.database = DEFAULT_DATABASE
        self.catalogs: dict[str, dict[str, str]] = {}
        self.tables: dict[str, Table] = {}
        self.views: dict[str, list[Table]] = {}
        self.lineage = SqlLineage()

    def qualify(self, parts: list[str]) -> tuple[str, str, str]:
        """``catalog, database, name`` of a 1-, 2- or 3-part name."""
        if len(parts) >= 3:
            return parts[-3], parts[-2], parts[-1]
        if len(parts) == 2:
            return self.catalog, parts[0], parts[1]
        return self.catalog, self.database, parts[0]

    def resolve(self, parts: list[str], seen: frozenset[str] = frozenset()) -> list[Table]:
        """The tables a name stands for: itself, a view's tables, or nothing (unknown)."""
        catalog, database, name = self.qualify(parts)
        key = f"{catalog}.{database}.{name}"
        if key in self.views and key not in seen:
            return self.views[key]
        if key in self.tables:
            return [self.tables[key]]
        if catalog in self.catalogs:
            return [Table(catalog, database, name, catalog_options=self.catalogs[catalog])]
        return []

    def reads(self, toks: list[Token]) -> list[Table]:
        """The tables a query reads, views resolved."""
        tables: list[Table] = []
        for parts in _references(toks):
            for table in self.resolve(parts):
                if all(table.qualified != t.qualified for t in tables):
                    tables.append(table)
        return tables

    def run(self, text: str) -> None:
        """Read one statement."""
        if _SET_HEAD.match(text):
            inner = _SET_TAIL.sub("", _SET_HEAD.sub("", text, count=1))
            for statement in split_statements(inner):
                self.run(statement.text)
            return
        toks = tokens(text)
        if not toks:
            return
        if toks[0].is_word("EXECUTE") and len(toks) > 1 and toks[1].is_word("INSERT"):
            toks = toks[1:]
        head = toks[0].text.upper() if toks[0].kind == "word" else ""
        if head == "INSERT":
            self._insert(toks)
        elif head in ("CREATE", "REPLACE"):
            self._create(toks)
        elif head == "USE":
            self._use(toks)

    def _insert(self, toks: list[Token]) -> None:
        i = 2 if len(toks) > 1 and toks[1].is_word("INTO", "OVERWRITE") else 1
        i = _skip_words(toks, i, "TABLE")
        parts, after = _name(toks, i)
        if parts:
            self.lineage.add(self.reads(toks[after:]), self.resolve(parts))

    def _use(self, toks: list[Token]) -> None:
        if len(toks) > 1 and toks[1].is_word("CATALOG"):
            parts, _ = _name(toks, 2)
            if parts:
                self.catalog, self.database = parts[0], DEFAULT_DATABASE
            return
        parts, _ = _name(toks, 1)
        if len(parts) == 2:
            self.catalog, self.database = parts
        elif parts:
            self.database = parts[0]

    def _create(self, toks: list[Token]) -> None:
        i = 1
        i = _skip_words(toks, i, "OR", "REPLACE")
        i = _skip_words(toks, i, "TEMPORARY")
        i = _skip_words(toks, i, "SYSTEM")
        if i >= len(toks) or not toks[i].is_word("TABLE", "VIEW", "CATALOG"):
            return
        what = toks[i].text.upper()
        i = _skip_words(toks, i + 1, "IF", "NOT", "EXISTS")
        parts, i = _name(toks, i)
        if not parts:
            return
        if what == "CATALOG":
            if i < len(toks) and toks[i].is_word("WITH") and i + 1 < len(toks):
                self.catalogs[parts[0]] = _options(toks, i + 1)
            return
        catalog, database, name = self.qualify(parts)
        key = f"{catalog}.{database}.{name}"
        columns: tuple[Column, ...] = ()
        if i < len(toks) and toks[i].text == "(":
            end = _closing(toks, i)
            if what == "TABLE":
                columns = _columns(toks[i + 1 : end])
            i = end + 1
        if what == "VIEW":
            self.views[key] = self.reads(toks[i:])
            return
        options: dict[str, str] = {}
        as_at = len(toks)
        for j in range(i, len(toks)):
            if toks[j].is_word("WITH") and j + 1 < len(toks) and toks[j + 1].text == "(" and not options:
                options = _options(toks, j + 1)
            elif toks[j].is_word("AS"):
                as_at = j
                break
        table = Table(catalog, database, name, options, columns, self.catalogs.get(catalog, {}))
        self.tables[key] = table
        if as_at < len(toks):  # CREATE TABLE ... AS SELECT: a job that writes the new table
            self.lineage.add(self.reads(toks[as_at:]), [table])


def sql_lineage(script: str) -> SqlLineage:
    """The tables the job statements (INSERTs, statement sets, CTAS) of ``script`` read and write.

    :param script: the rendered SQL script the operator ran.
    """
    session = _Session()
    for statement in split_statements(script):
        session.run(statement.text)
    return session.lineage
