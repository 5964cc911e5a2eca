"""The identity normalisation (docs/spec.md §2): SQL (`pipelines/core/sql.py`) and Python
(`pipelines/core/identity.py`) agree, on edge values here and on generated values in
tests/pipelines/test_normalise_properties.py.

The SQL side trims ASCII values in DuckDB only where the first or last code point is a control
character or space (a full `trim` with a character list is slow) and hands every non-ASCII value to
the Python definition. These values sit at the edges of that split: whitespace of every kind at
either end, a Prepend character (U+0600) before a trailing space, empty and blank values, control
characters that are not trimmed, combining marks, fullwidth forms, case mappings that differ between
Python's `str.lower` and per-character lower-casing.
"""

from __future__ import annotations

import sys
import unicodedata

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.core.identity import (
    TRIM_CHARS,
    WHITE_SPACE,
    ZERO_WIDTH,
    data_scope_key,
    email_key,
    id_key,
    lower_simple,
    normalize_email,
)
from pipelines.core.match import connect
from pipelines.core.sql import (
    email_or_blank,
    id_or_blank,
    identity_scan,
    norm_email,
    norm_id,
    norm_scope,
    normalised,
)

EDGE_VALUES = [
    "", " ", "\t", "\r\n", " \t\n\r\f\v ", "a@b.de", " a@b.de", "a@b.de ", "\tA@B.DE\n", "\va@b.de\f",
    "\u0600 ", "x\u0600 ", "a@b.de\u0600 ", " \u0600a@b.de", "\x01a@b.de", "a@b.de\x1f", "\x00", "\x7f",
    "\x1ca@b.de\x1d", "\u00a0a@b.de", "a@b.de\u00a0", "\u2003a@b.de", "ZOE\u0308@EXAMPLE.COM",
    " Zo\u00eb@Example.com ", "e\u0301", " \u0301", "\u0301 ", "İNCI@EXAMPLE.COM", "ΟΔΟΣ@EXAMPLE.GR ",
    "\U0001F600 ", " \U0001F600", "\ufeffanna@example.com\u200b", "\u3000Anna@Example.com\u2028",
    "\u0085anna@example.com\u202f", "\u2007anna@example.com\u2060", "ａｎｎａ@ｅｘａｍｐｌｅ．ｃｏｍ",
    "\u200b", "\u00a0\u200b\ufeff \t", "a\u00a0b", "a\u200bb", "\u00adanna@example.com", "\u200eanna@example.com",
    "\u212aelvin@example.com", "ﬁ@example.com", "\u2126@x.y", " \u00a8a@b.de",
]


def sql_forms(values: list[str | None]) -> list[tuple[str | None, str | None, str | None]]:
    with connect() as con:
        rows = con.execute(f"SELECT {norm_email('v')}, {norm_id('v')}, {norm_scope('v')} "
                           "FROM (SELECT unnest($vs) AS v, generate_subscripts($vs, 1) AS i) ORDER BY i",
                           {"vs": values}).fetchall()
    return rows


@pytest.mark.parametrize("value", EDGE_VALUES, ids=[repr(v) for v in EDGE_VALUES])
def test_sql_normalisation_matches_python(value):
    assert sql_forms([value]) == [(email_key(value), id_key(value), data_scope_key(value))]


def test_blank_variants_differ_only_in_blank_ascii_values():
    """`email_or_blank` / `id_or_blank` (the identity scan's cheaper inner forms) give '' where
    `norm_email` / `norm_id` give NULL for an ASCII value, and the very same value everywhere else."""
    values = [*EDGE_VALUES, None]
    with connect() as con:
        rows = con.execute(f"SELECT v, {email_or_blank('v')}, {id_or_blank('v')} "
                           "FROM (SELECT unnest($vs) AS v, generate_subscripts($vs, 1) AS i) ORDER BY i",
                           {"vs": values}).fetchall()
    for value, email, user_id in rows:
        blank = "" if value is not None and value.isascii() else None
        assert email == (email_key(value) if email_key(value) is not None else blank), repr(value)
        assert user_id == (id_key(value) if id_key(value) is not None else blank), repr(value)


def test_the_identity_scan_gives_null_for_blank_identities(tmp_path):
    values = [*EDGE_VALUES, None]
    path = tmp_path / "ids.parquet"
    pq.write_table(pa.table({"e": values, "u": values}), path)
    with connect() as con:
        scan = normalised(identity_scan("t.e", "t.u", None, None, None))  # as pass 1 normalises the rows it keeps
        rows = con.execute(f"SELECT email, user_id FROM ({scan}) ORDER BY row",
                           {"files": [str(path)]}).fetchall()
    assert rows == [(email_key(v), id_key(v)) for v in values]


def test_null_stays_null():
    assert sql_forms([None]) == [(None, None, "defaultscope")]


def test_many_values_in_one_vector_agree():
    """ASCII and non-ASCII values mixed in one DuckDB vector: each takes its own branch."""
    values = EDGE_VALUES * 50 + [None] * 10
    assert sql_forms(values) == [(email_key(v), id_key(v), data_scope_key(v)) for v in values]


def test_the_trim_list_is_white_space_plus_zero_width():
    every_zs = {chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Zs"}
    assert every_zs <= set(WHITE_SPACE)
    assert set("\t\n\v\f\r\x85\u2028\u2029") <= set(WHITE_SPACE) and len(WHITE_SPACE) == 25
    assert ZERO_WIDTH == "\u200b\u200c\u200d\u2060\ufeff" and TRIM_CHARS == WHITE_SPACE + ZERO_WIDTH


@pytest.mark.parametrize("pad", list(TRIM_CHARS), ids=[f"U+{ord(c):04X}" for c in TRIM_CHARS])
def test_every_trimmed_character_is_trimmed_from_entries_and_data(pad):
    """Issue 14: the blacklist side stripped Python's whitespace, the data side ASCII only."""
    raw = f"{pad}{pad}Anna@Example.com{pad}"
    assert normalize_email(raw) == "anna@example.com"
    assert sql_forms([raw])[0][0] == "anna@example.com"
    assert sql_forms([f"{pad}u1{pad}"])[0][1] == "u1"
    assert sql_forms([f"{pad}Shop{pad}"])[0][2] == "shop"
    assert sql_forms([pad * 3]) == [(None, None, "defaultscope")]


def test_fullwidth_and_compatibility_forms_fold():
    assert normalize_email("ＡＮＮＡ@ＥＸＡＭＰＬＥ．ＣＯＭ") == "anna@example.com"
    assert sql_forms(["ＡＮＮＡ@ＥＸＡＭＰＬＥ．ＣＯＭ"])[0][0] == "anna@example.com"
    assert email_key("\u212aim@example.com") == "kim@example.com"  # KELVIN SIGN


def test_user_and_device_ids_keep_their_case():
    assert sql_forms(["\u00a0AbC-1\u200b"])[0][1] == id_key("\u00a0AbC-1\u200b") == "AbC-1"


def test_lower_simple_is_per_character():
    assert lower_simple("İΣ") == "iσ" and lower_simple("ΟΔΟΣ") == "οδοσ" and lower_simple("ABC") == "abc"
