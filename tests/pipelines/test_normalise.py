"""`sql.norm_text`, the SQL form of email normalisation, agrees with the Python one on edge values.

`norm_text` trims only values whose first or last code point is a control character or space (a
full `trim` with a character list is slow); these values sit at the edges of that shortcut: leading
or trailing whitespace of every kind it trims, a Prepend character (U+0600) before a trailing space,
which a grapheme-based "last character" would hide, empty and whitespace-only values, control
characters that are not trimmed, non-ASCII whitespace that is not trimmed, combining marks.
How we checked it fails: testing `ord(x[-1]) < 32` instead of `<= 32` fails on 'a@b.de ', and
dropping the `OR ord(x[-1]) <= 32` half fails on every value with whitespace at the end only.
"""

from __future__ import annotations

import unicodedata

import duckdb
import pytest

from pipelines.identity import lower_simple
from pipelines.sql import WHITESPACE, norm_text

EDGE_VALUES = [
    "", " ", "\t", "\r\n", " \t\n\r\f\v ", "a@b.de", " a@b.de", "a@b.de ", "\tA@B.DE\n", "\va@b.de\f",
    "\u0600 ", "x\u0600 ", "a@b.de\u0600 ", " \u0600a@b.de", "\x01a@b.de", "a@b.de\x1f", "\x00", "\x7f",
    "\u00a0a@b.de", "a@b.de\u00a0", "\u2003a@b.de", "ZOE\u0308@EXAMPLE.COM", " Zo\u00eb@Example.com ",
    "e\u0301", " \u0301", "\u0301 ", "İNCI@EXAMPLE.COM", "ΟΔΟΣ@EXAMPLE.GR ", "\U0001F600 ", " \U0001F600",
]


def python_form(value: str) -> str:
    """What `norm_text` must return: trim ASCII whitespace, NFC, simple lower-case (identity.py)."""
    return lower_simple(unicodedata.normalize("NFC", value.strip(WHITESPACE)))


@pytest.mark.parametrize("value", EDGE_VALUES, ids=[repr(v) for v in EDGE_VALUES])
def test_sql_normalisation_matches_python(value):
    with duckdb.connect() as con:
        got = con.execute(f"SELECT {norm_text('$v')}", {"v": value}).fetchone()[0]
    assert got == python_form(value)


def test_null_stays_null():
    with duckdb.connect() as con:
        assert con.execute(f"SELECT {norm_text('NULL::VARCHAR')}").fetchone()[0] is None
