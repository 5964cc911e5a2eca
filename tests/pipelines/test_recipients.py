"""Recipient fields parsed as RFC 5322 address lists and `mailto:` URIs (issue 14, "Suppression")."""

from __future__ import annotations

import pytest

from pipelines.core.recipients import recipient_addresses

A, C = "anna@example.com", "carl@example.com"

PARSED = {
    # field: the normalised addresses it names
    "anna@example.com": [A],
    "  Anna@Example.COM\u00a0": [A],
    "Anna <anna@example.com>": [A],
    '"Doe, Anna" <Anna@Example.com>': [A],
    "=?utf-8?q?Anna_D=C3=B6e?= <anna@example.com>": [A],
    "anna@example.com (Anna Doe)": [A],
    "(work) anna(at home)@example.com": [A],
    "anna@example.com, carl@example.com": [A, C],
    "Anna <anna@example.com>, Carl <carl@example.com>": [A, C],
    "anna@example.com,,carl@example.com,": [A, C],
    "friends: anna@example.com, Carl <carl@example.com>;": [A, C],
    "friends: anna@example.com;, carl@example.com": [A, C],
    "undisclosed-recipients:;": [],
    "mailto:anna@example.com": [A],
    "MAILTO:Anna@Example.com?subject=Hello&body=Hi": [A],
    "mailto:anna%40example.com,carl@example.com": [A, C],
    "mailto:?to=anna@example.com&cc=carl@example.com": [A, C],
    "mailto:dora@example.com?bcc=%22Anna%22%20%3Canna@example.com%3E": ["dora@example.com", A],
    "<mailto:anna@example.com>": [A],
    "Anna <mailto:anna@example.com>": [A],
    "\u00a0anna@example.com,\u200bcarl@example.com\ufeff": [A, C],
    "ａｎｎａ＠ｅｘａｍｐｌｅ．ｃｏｍ": [A],
    "Ａｎｎａ ＜ａｎｎａ＠ｅｘａｍｐｌｅ．ｃｏｍ＞": [A],
    "zoë@exämple.com": ["zoë@exämple.com"],
    "o'neil@example.com": ["o'neil@example.com"],
    '"anna doe"@example.com': ['"anna doe"@example.com'],
    "anna@[192.0.2.1]": ["anna@[192.0.2.1]"],
}

BLANK = [None, "", "   ", "\u00a0\u200b\ufeff"]

UNPARSEABLE = [
    "anna", "anna@", "@example.com", "a@b@c", "<anna@example.com", "anna@example.com>",
    "anna@example.com carl@example.com",      # a missing comma: which is which?
    "anna@example.com; carl@example.com",     # Outlook's separator is no RFC 5322 list
    "Anna Doe anna@example.com", "Anna <anna@example.com> <carl@example.com>",
    "'anna@example.com'",                     # quoted by a spreadsheet: the domain would be `example.com'`
    "friends: anna@example.com",              # a group without its `;`
    "anna@example.com\nBcc: carl@example.com", "anna@example.com\x00", ",",
    "mailto:", "mailto:anna", "mailto:?subject=hi", "mailto:anna@example.com?cc", "anna@example.com.",
]


@pytest.mark.parametrize("field", list(PARSED), ids=[repr(f) for f in PARSED])
def test_fields_that_name_addresses(field):
    assert recipient_addresses(field) == PARSED[field]


@pytest.mark.parametrize("field", BLANK, ids=repr)
def test_blank_fields_name_no_recipient(field):
    assert recipient_addresses(field) == []


@pytest.mark.parametrize("field", UNPARSEABLE, ids=repr)
def test_unparseable_fields(field):
    assert recipient_addresses(field) is None
