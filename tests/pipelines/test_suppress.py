"""Suppression: outgoing messages and audiences split into allowed and failed (`blacklisted`) rows."""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pytest

from pipelines.core.errors import SchemaError
from pipelines.operations.suppress import (
    RecipientColumns,
    find_recipient_columns,
    split_recipients,
    suppression_list,
)
from tests.helpers import entry

ENTRIES = [entry("anna@example.com"), entry("bob@example.com", scope="shop"), entry(user_id="u7"),
           entry("dora@example.com", scope="DefaultScope"), entry("eve@example.com", "u9", scope="news")]


def audience(**columns):
    return pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})


@pytest.mark.parametrize("email, scope, blocked", [
    ("anna@example.com", None, True),
    ("  ANNA@Example.COM\t", "anything", True),       # unscoped entry: every scope, any case, padded
    ("anna@example.co", None, False),
    ("bob@example.com", "shop", True),
    ("BOB@example.com", " SHOP ", True),              # data scopes compare case-insensitively
    ("bob@example.com", "outlet", False),             # scoped entry: its scope only
    ("bob@example.com", None, False),
    ("dora@example.com", None, True),                 # null, empty, blank scope: DefaultScope
    ("dora@example.com", "", True),
    ("dora@example.com", "   ", True),
    ("dora@example.com", "shop", False),
    (None, None, False),                              # null email never matches
    ("", None, False),
])
def test_email_and_scope_rules(email, scope, blocked):
    table = audience(Email=[email], Scope=[scope])
    cols = RecipientColumns(email="Email", scope="Scope")
    result = split_recipients(table, ENTRIES, cols)
    assert (result.failed.num_rows, result.allowed.num_rows) == ((1, 0) if blocked else (0, 1))


def test_user_id_and_both_columns_and_reason():
    table = audience(Email=["x@y.z", "a@b.c", "eve@example.com", "q@r.s"], UserId=["u1", "u7", None, "u9"],
                     Scope=["shop", "shop", "news", "NEWS"])
    result = split_recipients(table, ENTRIES, RecipientColumns("Email", "UserId", "Scope"))
    assert result.allowed.column("Email").to_pylist() == ["x@y.z"]
    assert result.failed.column("Email").to_pylist() == ["a@b.c", "eve@example.com", "q@r.s"]
    assert result.failed.column("reason").to_pylist() == ["blacklisted"] * 3
    assert result.allowed.schema == table.schema  # allowed rows keep every column as it was


def test_integer_user_ids_compare_as_text():
    table = pa.table({"uid": pa.array([7, 8], pa.int64())})
    result = split_recipients(table, [entry(user_id="7")], RecipientColumns(user_id="uid"))
    assert result.failed.column("uid").to_pylist() == [7]


def test_constant_scope_for_a_file_without_a_scope_column():
    table = audience(email=["bob@example.com", "anna@example.com", "dora@example.com"])
    shop = split_recipients(table, ENTRIES, RecipientColumns(email="email", default_scope="shop"))
    assert shop.allowed.column("email").to_pylist() == ["dora@example.com"]
    default = split_recipients(table, ENTRIES, RecipientColumns(email="email"))
    assert default.allowed.column("email").to_pylist() == ["bob@example.com"]


def test_existing_reason_column_is_kept_and_nothing_blacklisted():
    table = audience(email=["z@z.z"], reason=["welcome"])
    result = split_recipients(table, ENTRIES, RecipientColumns(email="email"))
    assert result.failed.num_rows == 0 and result.reason_column == "suppression_reason"
    assert split_recipients(table, [], RecipientColumns(email="email")).allowed.num_rows == 1


def test_columns_are_found_or_named_in_the_error():
    schema = pa.schema([("E-Mail", pa.string()), ("EMAIL", pa.string()), ("n", pa.int32())])
    assert find_recipient_columns(schema, None, None, None, None, "f.csv").email == "EMAIL"
    with pytest.raises(SchemaError, match="'Scope' \\(scope\\) is missing"):
        find_recipient_columns(schema, "EMAIL", None, "Scope", None, "f.csv")
    with pytest.raises(SchemaError, match="has type int32"):
        find_recipient_columns(schema, "n", None, None, None, "f.csv")
    with pytest.raises(SchemaError, match="no 'email' column"):
        find_recipient_columns(pa.schema([("to", pa.string())]), None, None, None, None, "f.csv")


def test_suppression_list_plain_hashed_and_scoped():
    plain = suppression_list(ENTRIES)
    assert plain == ["anna@example.com", "bob@example.com", "dora@example.com", "eve@example.com"]
    hashed = suppression_list(ENTRIES, hashed=True)
    assert hashed == sorted(hashlib.sha256(e.encode()).hexdigest() for e in plain)
    assert suppression_list(ENTRIES, scope="shop") == ["anna@example.com", "bob@example.com"]


# Issue 14, "Suppression": recipients as mail systems write them.
def test_a_blacklisted_recipient_fails_the_row_however_the_field_is_written():
    fields = ["Anna <anna@example.com>", "mailto:anna@example.com", "anna@example.com, carl@example.com",
              "carl@example.com, \"Doe, Anna\" <ANNA@example.com>", "team: carl@example.com, anna@example.com;",
              "mailto:carl@example.com?cc=anna%40example.com", "\ufeffＡｎｎａ ＜ａｎｎａ＠ｅｘａｍｐｌｅ．ｃｏｍ＞",
              "carl@example.com", "Carl <carl@example.com>, Fred <fred@example.com>"]
    table = audience(Email=fields, n=[str(i) for i in range(len(fields))])
    result = split_recipients(table, ENTRIES, RecipientColumns(email="Email"))
    assert result.failed.column("n").to_pylist() == [str(i) for i in range(7)]
    assert result.failed.column("reason").to_pylist() == ["blacklisted"] * 7
    assert result.allowed.column("n").to_pylist() == ["7", "8"]
    assert result.by_reason == {"blacklisted": 7}


def test_an_unparseable_field_fails_with_its_own_reason():
    fields = ["anna@example.com carl@example.com", "Carl <carl@example.com", "carl", "carl@example.com", None, "",
              "anna@example.com; carl@example.com"]
    table = audience(Email=fields)
    result = split_recipients(table, ENTRIES, RecipientColumns(email="Email"))
    assert result.allowed.column("Email").to_pylist() == ["carl@example.com", None, ""]
    assert result.failed.column("reason").to_pylist() == ["unparseable"] * 4
    assert result.by_reason == {"unparseable": 4}


def test_blacklisted_wins_over_unparseable_and_user_ids_still_count():
    table = audience(Email=["nonsense", "nonsense", "ok@example.com"], UserId=["u7", None, "u7"])
    result = split_recipients(table, ENTRIES, RecipientColumns("Email", "UserId"))
    assert result.failed.column("reason").to_pylist() == ["blacklisted", "unparseable", "blacklisted"]
    assert result.by_reason == {"blacklisted": 2, "unparseable": 1}


def test_each_recipient_in_the_rows_scope():
    """bob@ is blacklisted in `shop` only: a shared field fails in `shop` and passes in `outlet`."""
    table = audience(Email=["carl@example.com, Bob <bob@example.com>"] * 2, Scope=["\u00a0Shop\u200b", "outlet"])
    result = split_recipients(table, ENTRIES, RecipientColumns(email="Email", scope="Scope"))
    assert result.failed.column("Scope").to_pylist() == ["\u00a0Shop\u200b"]
    assert result.allowed.column("Scope").to_pylist() == ["outlet"]
