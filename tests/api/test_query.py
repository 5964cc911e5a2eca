"""The `$filter` / `$orderBy` subset, as pure functions (the HTTP tests cover them end to end)."""

from __future__ import annotations

import pytest

from gdpr_sweep.api import parse_filter, parse_order_by, presented_keys
from pipelines.core.errors import InputError


@pytest.mark.parametrize(("text", "expected"), [
    ("Email eq 'a@example.com'", {"email": "a@example.com"}),
    ("Scope eq 'shop' and Email eq 'a@example.com'", {"scope": "shop", "email": "a@example.com"}),
    ("  scope EQ 'shop'   AND   userid eq 'u 1'  ", {"scope": "shop", "user_id": "u 1"}),
    ("Email eq 'o''brien@example.com'", {"email": "o'brien@example.com"}),
    ("Email eq 'a and b@example.com'", {"email": "a and b@example.com"}),
    ("Scope eq null", {"scope": "*"}),
    ("Source eq 'api' and CreatedAt gt '2026-11-01T00:00:00Z' and CreatedAt lt '2026-12-01T00:00:00Z'",
     {"source": "api", "created_after": "2026-11-01T00:00:00Z", "created_before": "2026-12-01T00:00:00Z"}),
])
def test_filter_grammar(text, expected):
    assert parse_filter(text) == expected


@pytest.mark.parametrize("text", [
    "", "   ", "Email", "Email eq", "Email eq a@example.com", "Email eq 'a' or Scope eq 'b'",
    "not Email eq 'a'", "(Email eq 'a')", "Email eq 'a' and", "Email eq 'a' Scope eq 'b'",
    "Email ne 'a'", "CreatedAt eq '2026-11-01'", "Name eq 'x'", "Email eq 'unterminated",
    "Email eq ''", "Email eq 'a' and Email eq 'b'", "Email eq null", "x" * 2001,
    "startswith(Email, 'a')", "Info.Email eq 'a'",
])
def test_filter_rejects_everything_else(text):
    with pytest.raises(InputError, match=r"^\$filter"):
        parse_filter(text)


@pytest.mark.parametrize(("text", "expected"), [
    ("Email", ("Email", False)), ("Email desc", ("Email", True)), ("createdat DESC", ("CreatedAt", True)),
    ("Scope asc", ("Scope", False)),
])
def test_order_by(text, expected):
    assert parse_order_by(text) == expected


@pytest.mark.parametrize("text", ["", "Email,Scope", "Email desc nulls", "Name", "Email up"])
def test_order_by_rejects(text):
    with pytest.raises(InputError, match=r"^\$orderBy"):
        parse_order_by(text)


def test_presented_keys_reads_every_documented_header():
    headers = [(b"Authorization", b"Bearer k1"), (b"x-api-key", b"k2"), (b"X-XNG-AuthToken", b" k3 "),
               (b"authorization", b"epi-single k4"), (b"authorization", b"Basic k5"), (b"x-other", b"k6")]
    assert presented_keys(headers) == [b"k1", b"k2", b"k3", b"k4"]
