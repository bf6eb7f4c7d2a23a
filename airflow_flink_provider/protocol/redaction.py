"""Find and mask credentials in text that may reach a log, an exception, an XCom or a rendered field.

One left-to-right pass over the text, in time linear in its length: a single regular expression finds
*anchors* (a word that names a secret, ``://``, ``Bearer``, ``-----BEGIN``), and each anchor is examined
with bounded look-arounds; a value that is found is skipped as a whole, so no character is scanned by more
than a bounded number of anchors. What is recognised:

- table options and assignments whose key names a secret, with the value single-quoted (``''`` escapes,
  as in SQL), double-quoted (``\\`` escapes, as in JSON and JAAS) or bare:
  ``'ssl.truststore.password' = 'x'``, ``"password": "x"``, ``password="x"`` (JAAS), ``password: x``,
  ``jdbc:...;password=x;`` and ``?password=x&...``;
- program arguments: ``--password x``, ``--password=x``, and the list forms ``'--password', 'x'`` and
  ``"--password","x"``;
- URL user-info: ``scheme://user:x@host`` (and Oracle's ``jdbc:oracle:thin:user/x@host``);
- bearer tokens (``Bearer x``) and ``Authorization: Basic x`` headers;
- PEM private keys (``-----BEGIN ... PRIVATE KEY-----`` to the matching END, or to the end of the text).

A key names a secret when it contains one of ``password``, ``passwd``, ``passphrase``, ``pwd``, ``secret``,
``token``, ``credential``, ``jaas``, ``authorization``, ``private key``, ``access key`` or ``api key``
(``.``, ``_`` or ``-`` may join the last words). Redaction keeps the quotes and replaces the value with
``****``; it is idempotent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

MASK = "****"
"""What a secret value is replaced with."""

_SPACE_LIMIT = 64

_KEYWORDS = (
    r"pass(?:wor)?d|passphrase|pwd|secret|token|credential|jaas|authorization"
    r"|(?:private|access|api)[._-]?key"
)
_ANCHOR = re.compile(
    rf"(?P<keyword>{_KEYWORDS})|(?P<url>://)|(?P<bearer>\bbearer[ \t]+)|(?P<pem>-----BEGIN )|(?P<oracle>:thin:)",
    re.IGNORECASE,
)
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_KEY_RUN = re.compile(r"[A-Za-z0-9_.-]*+")
_KEYWORD = re.compile(_KEYWORDS, re.IGNORECASE)
_SINGLE_QUOTED = re.compile(r"(?:[^']|'')*+")
_DOUBLE_QUOTED = re.compile(r'(?:[^"\\]|\\.)*+', re.S)
_BARE_VALUE = re.compile(r"[^\s;,&'\"(){}\[\]<>]++")
_TOKEN_VALUE = re.compile(r"[A-Za-z0-9._~+/=-]++")
_AUTH_SCHEMES = frozenset({"bearer", "basic", "digest", "token", "negotiate"})
_PEM_BEGIN = re.compile(r"(?P<label>[A-Z0-9 ]{0,40}PRIVATE KEY)-----")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----")
_URL_USERINFO = re.compile(r"[^\s/?#@:'\"<>\[\]]{0,512}:(?P<password>[^\s/@'\"<>\[\]]{1,512})@")
_ORACLE_USERINFO = re.compile(r"[^\s/@:'\"]{1,512}/(?P<password>[^\s/@'\"]{1,512})@")
_MASK_REST = " \t\r\n:=,;.'\"*"
_NESTED_DEPTH = 3
"""How many levels :func:`find_secrets` looks into values for nested secrets (each level is one more pass)."""
_NOT_SECRETS = frozenset({"", MASK, "true", "false", "null", "none"})


@dataclass(frozen=True)
class _Found:
    """A secret value at ``text[start:end]``; ``value`` is it unescaped (``''`` -> ``'``, ``\\"`` -> ``"``)."""

    start: int
    end: int
    value: str


def _skip_spaces(text: str, i: int) -> int:
    """Index of the first non-whitespace character from ``i`` (at most a bounded run is skipped)."""
    limit = min(len(text), i + _SPACE_LIMIT)
    while i < limit and text[i].isspace():
        i += 1
    return i


def _skip_blanks(text: str, i: int) -> int:
    """Index of the first character from ``i`` that is not a space or tab (a bounded run is skipped)."""
    limit = min(len(text), i + _SPACE_LIMIT)
    while i < limit and text[i] in " \t":
        i += 1
    return i


def _value_start(text: str, i: int) -> int:
    """Where the value after a separator at ``i - 1`` starts: on the same line, or a quoted one on the next."""
    same_line = _skip_blanks(text, i)
    if same_line < len(text) and text[same_line] not in "\r\n":
        return same_line
    further = _skip_spaces(text, i)
    return further if text[further : further + 1] in ("'", '"', "\\") else same_line


def _quote_at(text: str, i: int) -> str:
    """The quote that starts at ``text[i]``: ``'`` or ``"``, or one escaped by a run of backslashes (``\\"``,
    ``\\\\\\"`` in JSON inside JSON); ``""`` when there is none."""
    end = i
    while end < len(text) and text[end] == "\\":
        end += 1
    return text[i : end + 1] if text[end : end + 1] in ("'", '"') else ""


def _quote_before(text: str, i: int) -> str:
    """The quote that ends just before ``text[i]`` (see :func:`_quote_at`), or ``""``."""
    if i == 0 or text[i - 1] not in ("'", '"'):
        return ""
    start = i - 1
    while start and text[start - 1] == "\\":
        start -= 1
    return text[start:i]


def _unescape(value: str, levels: int = 3) -> str:
    """A value as the program that wrote it meant it: JSON escapes (``\\u00b5``, ``\\n``) or ``\\x`` -> ``x``,
    undone up to ``levels`` times (JSON inside JSON escapes twice).

    :param value: the value as it appears in the text.
    :param levels: how many levels of escaping to undo at most.
    """
    for _ in range(levels):
        if "\\" not in value:
            break
        try:
            unescaped = json.loads(f'"{value}"')
        except ValueError:
            unescaped = re.sub(r"\\(.)", r"\1", value, flags=re.S)
        value = unescaped if isinstance(unescaped, str) else value
    return value


def _quoted_value(text: str, i: int, *, header: bool = False) -> _Found | None:
    """The value starting at ``text[i]``: quoted (up to its closing quote, or the end) or bare.

    :param header: the key is an ``Authorization`` header: after a bare scheme word (``Bearer``) on the
        same line, the credential is the next word.
    """
    if i >= len(text):
        return None
    quote = text[i]
    if quote == "\\" and (escaped := _quote_at(text, i)):  # an escaped quote: \'x\' or \"x\"
        end = text.find(escaped, i + len(escaped))
        end = len(text) if end < 0 else end
        return _Found(i + len(escaped), end, _unescape(text[i + len(escaped) : end]))
    if quote == "'":
        match = _SINGLE_QUOTED.match(text, i + 1)
        assert match is not None  # a possessive star always matches
        return _Found(match.start(), match.end(), _unescape(match.group().replace("''", "'")))
    if quote == '"':
        match = _DOUBLE_QUOTED.match(text, i + 1)
        assert match is not None
        return _Found(match.start(), match.end(), _unescape(match.group()))
    bare = _BARE_VALUE.match(text, i)
    if bare is None:
        return None
    if header and bare.group().lower() in _AUTH_SCHEMES:
        after = _skip_blanks(text, bare.end())
        token = _BARE_VALUE.match(text, after) if after > bare.end() else None
        if token is not None:
            return _Found(token.start(), token.end(), token.group())
    return _Found(bare.start(), bare.end(), _unescape(bare.group()))


def _key_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """Extend a keyword at ``text[start:end]`` to the whole run of key characters around it."""
    while start and text[start - 1] in _KEY_CHARS and text[start - 2 : start - 1] != "\\":  # not a \n escape
        start -= 1
    run = _KEY_RUN.match(text, end)
    assert run is not None  # a possessive star always matches
    return start, run.end()


def _keyed_value(text: str, key_start: int, key_end: int) -> _Found | None:
    """The value assigned to the key ``text[key_start:key_end]`` (which names a secret), if there is one."""
    # A quote before the key that does not close after it opens a string the key is in: "password=x".
    # Quotes may come escaped, as in a repr or a JSON string that holds JSON: \'password\' = \'x\'
    closing = _quote_before(text, key_start)
    if closing and not text.startswith(closing, key_end):
        closing = closing[-1:]  # \'password' = 'x': an escaped quote before, a plain one after
    quoted_key = bool(closing) and text.startswith(closing, key_end)
    i = key_end + len(closing) if quoted_key else key_end
    is_flag = text.startswith("--", key_start)
    j = _skip_spaces(text, i)
    separator = text[j : j + 1]
    if separator in ("=", ":") and not text.startswith("//", j + 1):
        header = "authorization" in text[key_start:key_end].lower()
        return _quoted_value(text, _value_start(text, j + 1), header=header)
    if is_flag and quoted_key and separator == ",":  # ['--password', 'x'] / ["--password","x"]
        value_start = _skip_spaces(text, j + 1)
        return _quoted_value(text, value_start) if _quote_at(text, value_start) else None
    if is_flag and not quoted_key and j > i and separator and not text.startswith("--", j):  # --password x
        return _quoted_value(text, j)
    return None


def _pem_body(text: str, end: int) -> _Found | None:
    """The body of a PEM private key whose ``-----BEGIN `` ends at ``end``."""
    label = _PEM_BEGIN.match(text, end)
    if label is None:
        return None
    body_start = label.end()
    closing = _PEM_END.search(text, body_start)
    body_end = closing.start() if closing else len(text)
    return _Found(body_start, body_end, text[body_start:body_end].strip())


def _value_after(text: str, item: _Found) -> _Found | None:
    """The value after a "value" that is followed by a separator, as in ``Authorization: 'password' = 'x'``
    or ``'a''b' = 'x'``: then the first one was the key of another assignment, or a chain of values."""
    closing = _quote_at(text, item.end)
    if closing and _quote_before(text, item.start) == closing:  # a quoted value
        after = _skip_blanks(text, item.end + len(closing))
        separator = text[after : after + 1]
        if separator == "=" or (separator == ":" and not text.startswith("//", after + 1)):
            return _quoted_value(text, _value_start(text, after + 1))
        if item.value.rstrip()[-1:] in ("=", ":") and _quote_at(text, item.end + len(closing)) == "":
            # '...password=' + 'x': the "closing" quote opened the next value, which follows at once
            return _quoted_value(text, item.end + len(closing))
        return None
    if item.value[-1:] in ("=", ":") and _KEY_RUN.fullmatch(item.value[:-1]):  # bare: password= or password:
        return _quoted_value(text, _value_start(text, item.end))
    return None


def _is_secret_key(value: str) -> bool:
    """Whether a value is the name of a secret's key (``password`` or ``password=``)."""
    name = value[:-1] if value[-1:] in ("=", ":") else value
    return _KEY_RUN.fullmatch(name) is not None and _KEYWORD.search(name) is not None


def _is_secret(item: _Found) -> bool:
    """Whether a found value is worth masking: not a boolean or null, and not masked already (the mask and
    at most some punctuation, as ``****:`` after a second pass over ``Bearer ****:``)."""
    return item.value.lower() not in _NOT_SECRETS and bool(item.value.replace(MASK, "").strip(_MASK_REST))


def _group(match: re.Match[str] | None, group: str | int) -> _Found | None:
    """A match's group as a found value."""
    return _Found(match.start(group), match.end(group), match[group]) if match else None


def _scan(text: str) -> list[_Found]:
    """Every secret value in ``text``, left to right, none overlapping."""
    found: list[_Found] = []
    position = 0
    for anchor in _ANCHOR.finditer(text):
        if anchor.start() < position:
            continue
        kind = anchor.lastgroup
        item: _Found | None
        if kind == "keyword":
            key_start, key_end = _key_bounds(text, anchor.start(), anchor.end())
            item = _keyed_value(text, key_start, key_end)
            if item is None:  # the other keywords of this key would find no value either
                position = key_end
                continue
            following = _value_after(text, item)
            name = item.value.strip()
            if _is_secret_key(name) and (following is not None or name[-1:] in ("=", ":")):
                continue  # it is the key of the next assignment: its keyword anchor comes next
            while following is not None:  # a chain of values ('a''b' = 'c'): mask each one
                if _is_secret(item):
                    found.append(item)
                position = item.end
                item, following = following, _value_after(text, following)
        elif kind in ("url", "oracle"):
            pattern = _URL_USERINFO if kind == "url" else _ORACLE_USERINFO
            item = _group(pattern.match(text, anchor.end()), "password")
        elif kind == "bearer":
            item = _group(_TOKEN_VALUE.match(text, anchor.end()), 0)
        else:
            item = _pem_body(text, anchor.end())
        if item is None or item.start < position:
            continue
        if _is_secret(item):
            found.append(item)
        position = max(position, item.end)
    return found


def redact(text: str) -> str:
    """``text`` with every secret value it holds replaced by ``****`` (quotes and keys kept).

    :param text: a message, a trace, a SQL script, a command line...
    """
    found = _scan(text)
    if not found:
        return text
    parts: list[str] = []
    position = 0
    for item in found:
        parts.append(text[position : item.start])
        parts.append(MASK)
        position = item.end
    parts.append(text[position:])
    return "".join(parts)


def find_secrets(text: str) -> list[str]:
    """The secret values ``text`` holds, each once, in order of appearance.

    Each value comes as written and unescaped (``it''s`` and ``it's``), a header value also as its bare
    credential (``Bearer x`` and ``x``), a private key also line by line, and a value that holds secrets
    of its own (a JAAS config's ``password="x"``) also with those. Register them with Airflow's masker
    (``mask_secret``) so that copies of them elsewhere are hidden too.

    :param text: a SQL script, a command line, a configuration...
    """
    values: dict[str, None] = {}
    _collect(text, values, depth=_NESTED_DEPTH)
    return list(values)


def _collect(text: str, values: dict[str, None], depth: int) -> None:
    """Add the secrets of ``text`` to ``values``; look ``depth`` levels into values for nested ones."""
    for item in _scan(text):
        raw = text[item.start : item.end]
        scheme, _, credential = item.value.partition(" ")
        variants = [raw.strip(), item.value.strip(), *item.value.splitlines()]
        if scheme.lower() in _AUTH_SCHEMES:
            variants.append(credential)
        for value in variants:
            value = value.strip()
            if value and value not in _NOT_SECRETS:
                values[value] = None
        if depth:
            _collect(item.value, values, depth - 1)
