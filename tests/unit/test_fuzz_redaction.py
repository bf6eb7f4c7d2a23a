"""Fuzzing redaction: any text is handled in time, and a secret in any supported form never survives."""

from __future__ import annotations

import json

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from airflow_flink_provider.protocol.redaction import MASK, find_secrets, redact
from tests.unit._fuzz import fuzz

pytestmark = pytest.mark.unit


_PIECES = [
    "password", "'password'", "token", "secret", "jaas", "Bearer ", "Authorization: ", "--password", "://", "u:p@",
    "-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----", "=", ":", " = ", "'", "''", '"', "\\", ",", ";",
    "&", "?", " ", "\n", "x", "hunter2", "jdbc:oracle:thin:", "/",
]  # fmt: skip
secretish = st.lists(st.sampled_from(_PIECES) | st.text(max_size=4), max_size=60).map("".join)

# A secret value that is not also part of its surroundings: no quotes, separators or spaces in it, and not
# starting with "--" (after --password, that reads as the next option: a documented ambiguity).
secret_values = st.text(
    alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters="!#%+-._~"),
    min_size=6,
    max_size=24,
).filter(lambda value: value.lower() not in {"bearer", "basic"} and "**" not in value and not value.startswith("--"))

ascii_secret_values = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#%+-._~", min_size=6, max_size=24
).filter(lambda value: value.lower() not in {"bearer", "basic"} and not value.startswith("--"))

FORMS = [
    "'password' = '{s}'",
    "'properties.sasl.jaas.config' = 'PlainLoginModule required username=\"u\" password=\"{s}\";'",
    "'s3.secret-key'='{s}'",
    '"password": "{s}"',
    "password={s}",
    'password="{s}"',
    "password: {s}",
    "https://user:{s}@host:8081/x",
    "jdbc:mysql://db/x?user=u&password={s}&ssl=1",
    "jdbc:sqlserver://db;password={s};x=1",
    "Authorization: Bearer {s}",
    "{{'Authorization': 'Bearer {s}'}}",
    "--password {s}",
    "--token={s}",
    "['--password', '{s}']",
    '["--api-key","{s}"]',
    "-----BEGIN RSA PRIVATE KEY-----\n{s}\n-----END RSA PRIVATE KEY-----",
]


@fuzz()
@given(text=secretish | st.text(max_size=300))
def test_any_text_redacts_in_time_and_idempotently(text: str) -> None:
    once = redact(text)
    assert isinstance(once, str)
    assert redact(once) == once
    assert find_secrets(once) == []
    for secret in find_secrets(text):
        assert secret and secret.strip() == secret


plain_text = st.text(alphabet=st.sampled_from("abc XYZ 019 ,.;()\n\t-_/"), max_size=80)


@fuzz()
@given(
    form=st.sampled_from(FORMS),
    secret=secret_values,
    before=plain_text,
    after=st.sampled_from(["", " ", "\n", ", 'topic' = 't'", ";\nSELECT 1", " and more text"]),
)
def test_a_secret_in_any_form_is_masked_and_found(form: str, secret: str, before: str, after: str) -> None:
    assume(secret not in before + form + after)
    text = f"{before}\n{form.format(s=secret)}{after}"
    assert secret not in redact(text)
    assert MASK in redact(text)
    assert secret in find_secrets(text)


WRAPPERS = {
    "json": json.dumps,
    "repr": repr,
    "json list": lambda text: json.dumps([text]),
    "repr list": lambda text: repr([text]),
    "json in json": lambda text: json.dumps({"error": json.dumps({"detail": text})}),
}


@fuzz()
@given(
    form=st.sampled_from(FORMS),
    secret=ascii_secret_values,  # JSON writes other characters as \uXXXX: not the secret any more
    wrapper=st.sampled_from(sorted(WRAPPERS)),
    before=plain_text,
)
def test_a_secret_in_a_repr_or_json_string_is_masked(form: str, secret: str, wrapper: str, before: str) -> None:
    """Errors and XComs reach logs as a repr or JSON, where quotes come escaped (\\' and \\")."""
    assume(secret not in before + form)
    text = WRAPPERS[wrapper](f"{before}\n{form.format(s=secret)}")
    assert secret not in redact(text)
    assert any(secret in value for value in find_secrets(text))


@fuzz()
@given(form=st.sampled_from(FORMS), secret=secret_values, before=secretish, after=secretish)
def test_a_secret_in_hostile_surroundings_is_still_masked_and_covered(
    form: str, secret: str, before: str, after: str
) -> None:
    """Around unclosed quotes, PEM headers or other keys, the secret may end up inside a larger value:
    still masked, and inside a value find_secrets returns."""
    assume(secret not in before + form + after)
    text = f"{before}\n{form.format(s=secret)}\n{after}"
    assert secret not in redact(text)
    assert any(secret in value for value in find_secrets(text))


@fuzz(examples=15, budget_ms=5000)
@given(piece=st.sampled_from(_PIECES), other=st.sampled_from(_PIECES))
def test_long_keyword_dense_text_redacts_in_time(piece: str, other: str) -> None:
    """64 kB of one or two pieces repeated (keywords, quotes, separators): within the time budget."""
    text = "'" + (piece + other) * (64_000 // len(piece + other))
    assert isinstance(redact(text), str)
