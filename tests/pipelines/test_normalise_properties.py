"""Issue 14, property-based: the one identity normalisation (docs/spec.md §2) is the same in DuckDB
(`pipelines/core/sql.py`) and in Python (`pipelines/core/identity.py`), and a sweep removes every variant of a
blacklisted address that people's tools write: padded with any Unicode whitespace, zero-width
character or BOM, in any case, in fullwidth forms; entry and data side alike.

The generated text draws from every character Python calls whitespace (a superset of the Unicode
White_Space property: it adds U+001C..U+001F, which are not trimmed) and every format character
(general category Cf: the zero-width characters and the BOM, which are trimmed, and ~160 others such
as U+00AD SOFT HYPHEN or U+200E LEFT-TO-RIGHT MARK, which are not), mixed with arbitrary text.
How we checked the tests fail: with the data side trimming ASCII only (the code before issue 14), or
without NFKC, each test finds a counterexample within its first few examples.
"""

from __future__ import annotations

import itertools
import shutil
import sys
import tempfile
import unicodedata
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.core.email_rules import validate_email
from pipelines.core.identity import TRIM_CHARS, data_scope_key, email_key, id_key, normalize_email
from pipelines.core.match import connect, entries_table, find_matches
from pipelines.core.model import DatasetInput, Entry
from pipelines.core.sql import norm_email, norm_id, norm_scope
from tests.helpers import (
    EVENT_SCHEMA,
    PROFILE_SCHEMA,
    events_config,
    make_event,
    make_profile,
    profiles_config,
    write,
)
from tests.support.hypothesis_profiles import examples

EVERY_CHAR = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
WHITESPACE = [c for c in EVERY_CHAR if c.isspace()]
FORMAT = [c for c in EVERY_CHAR if unicodedata.category(c) == "Cf"]
PADDING = sorted(set(WHITESPACE) | set(FORMAT))
"""Every whitespace and format character: some are trimmed (TRIM_CHARS), the rest must survive."""
FULLWIDTH = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}
"""ASCII `!`..`~` -> U+FF01..U+FF5E, the forms East Asian input methods type; NFKC folds them back."""

ADDRESSES = ["anna@example.com", "o'neil+news@mail.example.org", "zoë@example.com", "jörg@bücher.example"]
OTHERS = ["anna@example.co", "nna@example.com", "bob@example.com"]

AGREE = settings(max_examples=examples(ci=150, thorough=3000), deadline=None, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SWEEP = settings(max_examples=examples(ci=30, thorough=600), deadline=None, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def con():
    with connect(threads=1) as c:
        yield c


@pytest.fixture(scope="module")
def folder():
    path = Path(tempfile.mkdtemp(prefix="gdpr-sweep-normalise-"))
    yield path, itertools.count()
    shutil.rmtree(path, ignore_errors=True)


def sql_forms(con, values: list[str | None]) -> list[tuple[str | None, str | None, str | None]]:
    return con.execute(f"SELECT {norm_email('v')}, {norm_id('v')}, {norm_scope('v')} "
                       "FROM (SELECT unnest($vs) AS v, generate_subscripts($vs, 1) AS i) ORDER BY i",
                       {"vs": values}).fetchall()


def python_forms(values: list[str | None]) -> list[tuple[str | None, str | None, str | None]]:
    return [(email_key(v), id_key(v), data_scope_key(v)) for v in values]


identity_text = st.text(st.one_of(st.sampled_from(PADDING), st.sampled_from(list(FULLWIDTH.values())),
                                  st.characters(exclude_categories=["Cs"]), st.sampled_from("aAzZ@.-_ ")), max_size=12)


@AGREE
@given(values=st.lists(st.one_of(st.none(), identity_text), min_size=1, max_size=40))
def test_sql_and_python_agree(con, values):
    assert sql_forms(con, values) == python_forms(values)


def test_sql_and_python_agree_on_every_whitespace_and_format_character(con):
    """Each such character alone, at either end, inside, and around ASCII and non-ASCII text."""
    values = [form.format(c) for c in PADDING
              for form in ("{0}", "{0}{0}", "{0}Anna@Example.com", "anna@example.com{0}", "a{0}b", "{0}ＡＮＮＡ{0}",
                           "{0}zoë{0}", "\u00a0{0}u1{0}\u200b")]
    assert sql_forms(con, values) == python_forms(values)


def test_normalising_twice_changes_nothing():
    """Stored entries are re-normalised where they are matched (`pipelines.core.match.normalised_entries`):
    that is safe only because the normalisation is idempotent: checked for every character it can
    change (one with a decomposition or a case mapping, whitespace, format)."""
    changeable = [c for c in EVERY_CHAR if unicodedata.decomposition(c) or c.lower() != c or c in PADDING]
    assert len(changeable) > 5000
    for c in changeable:
        for value in (c, f"a{c}b", f"{c}a"):
            once = email_key(value)
            assert email_key(once) == once, f"U+{ord(c):04X}"
            assert id_key(id_key(value)) == id_key(value)


@st.composite
def variant(draw, address: str) -> str:
    """How a CRM, a web form or a spreadsheet may write `address`: padded with trimmed characters,
    any character in either case or in its fullwidth form."""
    pad = st.text(st.sampled_from(TRIM_CHARS), max_size=4)
    chars = []
    for ch in address:
        form = draw(st.sampled_from(["same", "upper", "fullwidth"]))
        if form == "upper":
            ch = ch.upper()
        elif form == "fullwidth":
            ch = FULLWIDTH.get(ch.upper() if draw(st.booleans()) else ch, ch)
        chars.append(ch)
    return draw(pad) + "".join(chars) + draw(pad)


@st.composite
def not_a_variant(draw) -> str:
    """Text that must NOT match: another address padded the same way, or the address with a
    character inside or at an end that the normalisation keeps (a format character such as U+00AD)."""
    kept = [c for c in PADDING if c not in TRIM_CHARS and not c.isspace()]
    if draw(st.booleans()):
        return draw(variant(draw(st.sampled_from(OTHERS))))
    address = draw(st.sampled_from(ADDRESSES))
    at = draw(st.sampled_from([0, len(address), address.index("@")]))
    return address[:at] + draw(st.sampled_from(kept)) + address[at:]


def blank() -> st.SearchStrategy[str]:
    return st.text(st.sampled_from(TRIM_CHARS), max_size=3)


@SWEEP
@given(data=st.data())
def test_the_sweep_removes_every_variant_of_a_blacklisted_address(con, folder, data):
    root_folder, counter = folder
    root = root_folder / str(next(counter))
    address = data.draw(st.sampled_from(ADDRESSES))
    entry_email = validate_email(data.draw(variant(address)))  # the entry side, as the registry stores it
    assert entry_email == normalize_email(address)
    variants = data.draw(st.lists(variant(address), min_size=1, max_size=6))
    others = data.draw(st.lists(not_a_variant(), max_size=4))
    # The person's profile lists devices, some of them blank (padding only): blank ids link nothing.
    blanks = data.draw(st.lists(blank(), min_size=1, max_size=3))
    profiles = [make_profile(v, device_ids=[*blanks, "dev-1"]) for v in variants]
    profiles += [make_profile(o, device_ids=list(blanks)) for o in others]
    events = ([make_event(v) for v in variants] + [make_event(o) for o in others]
              + [make_event(device_id=b, anonymous=True) for b in data.draw(st.lists(blank(), min_size=1, max_size=3))]
              + [make_event(device_id=data.draw(st.text(st.sampled_from(TRIM_CHARS), max_size=2)) + "dev-1",
                            anonymous=True)])
    write(root / "raw/profiles/p.parquet", profiles, PROFILE_SCHEMA)
    write(root / "raw/events/e.parquet", events, EVENT_SCHEMA)
    pconf, econf = profiles_config(root), events_config(root)
    inputs = [DatasetInput(pconf, {"p.parquet": root / "raw/profiles/p.parquet"}),
              DatasetInput(econf, {"e.parquet": root / "raw/events/e.parquet"})]
    found = find_matches(con, entries_table([Entry("A", entry_email)]), inputs)
    n, m = len(variants), len(others)
    assert found.datasets["profiles"].drops.get("p.parquet", pa.array([])).tolist() == list(range(n))
    # Events: every variant, and the one event from the linked device `dev-1`; no blank-device event.
    assert found.datasets["events"].drops["e.parquet"].tolist() == [*range(n), len(events) - 1]
    assert len(events) - 1 - n - m >= 1  # the blank-device events exist and were kept
