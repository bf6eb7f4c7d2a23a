"""Plain request/response values, the retry policy and URL helpers."""

from __future__ import annotations

import pytest

from airflow_flink_provider.protocol.http import (
    Request,
    Response,
    RetryPolicy,
    is_retryable_status,
    join_url,
    path_segment,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
def test_server_failures_timeouts_and_throttling_are_retryable(status: int) -> None:
    assert is_retryable_status(status)


@pytest.mark.parametrize("status", [200, 202, 301, 400, 401, 403, 404, 409, 422, 501, 505])
def test_client_errors_and_unsupported_features_are_not(status: int) -> None:
    assert not is_retryable_status(status)


@pytest.mark.parametrize(
    ("method", "expected"),
    [("GET", True), ("get", True), ("DELETE", True), ("PUT", True), ("POST", False), ("PATCH", False)],
)
def test_idempotency_defaults_from_the_method(method: str, expected: bool) -> None:
    assert Request(method, "/x").safe_to_repeat is expected


def test_idempotency_can_be_declared() -> None:
    assert Request("POST", "/x", idempotent=True).safe_to_repeat
    assert not Request("GET", "/x", idempotent=False).safe_to_repeat


def test_response_ok_is_2xx_only() -> None:
    assert Response(200, None, "").ok and Response(202, {}, "{}").ok
    assert not Response(199, None, "").ok and not Response(300, None, "").ok and not Response(404, None, "").ok


@pytest.mark.parametrize(
    ("base", "path", "url"),
    [
        ("http://h:8081", "/jobs", "http://h:8081/jobs"),
        ("http://h:8081/", "jobs", "http://h:8081/jobs"),
        ("https://proxy/flink/", "/v4/sessions", "https://proxy/flink/v4/sessions"),
    ],
)
def test_join_url(base: str, path: str, url: str) -> None:
    assert join_url(base, path) == url


def test_path_segment_cannot_escape_its_segment() -> None:
    assert path_segment("../jars/x?y=1") == "..%2Fjars%2Fx%3Fy%3D1"
    assert path_segment("127.0.0.1:46147-84d93a") == "127.0.0.1%3A46147-84d93a"


def test_retry_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match=">= 1"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(initial=-1)
