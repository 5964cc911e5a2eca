"""The bulk path of an Optimizely import (an empty registry, >= 50,000 items) records exactly what adding
the items one by one records: one entry per identity (the first item's), one `add` history row each
whose keyed hashes are HMAC-SHA256 under the registry's key, and `added_seq` naming that row."""

from __future__ import annotations

import hashlib
import hmac
import sqlite3

import pytest

from pipelines.registry.bulk import _BULK_MIN
from pipelines.registry.registry import Registry
from pipelines.registry.store import _Hasher


@pytest.mark.parametrize("key", [b"k" * 32, b"\x00\xff" * 16, b"long" * 40])
def test_hasher_is_hmac_sha256(key):
    h = _Hasher(key)
    values = ["a@example.com", "ü@bücher.example", "", "u-1", None]
    expected = [None if v is None else hmac.new(key, v.encode(), hashlib.sha256).hexdigest() for v in values]
    assert [h(v) for v in values] == expected
    assert h.many(values) == expected


def make_items(n: int) -> list[dict]:
    items = []
    for i in range(n):
        item: dict = {"Email": f"Bulk{i}@Example.com "} if i % 4 else {"UserId": f"u{i}"}
        if i % 3 == 0:
            item["Scope"] = "shop"
        if i % 5 == 0:
            item["UserId"] = f"u{i}"
        if i % 7 == 0:
            item["BlacklistId"] = f"{i:08x}-0000-4000-8000-{i:012x}"
        items.append(item)
    return items


def test_bulk_import_records_what_one_by_one_adds_would(tmp_path):
    items = make_items(_BULK_MIN)
    dup = dict(items[7], BlacklistId="ffffffff-0000-4000-8000-000000000000")  # same identity, later, other id
    reg = Registry(tmp_path / "blacklist.db")
    assert reg.import_optimizely({"items": [*items, dup]}) == {"items": _BULK_MIN + 1, "added": _BULK_MIN,
                                                                "existing": 1}
    con = sqlite3.connect(tmp_path / "blacklist.db")
    key = bytes.fromhex(con.execute("SELECT value FROM meta WHERE key = 'hmac_key'").fetchone()[0])
    rows = con.execute("SELECT e.blacklist_id, e.email, e.user_id, e.scope, e.added_seq, h.seq, h.action, "
                       "h.outcome, h.channel, h.email_hash, h.user_id_hash, h.scope, h.at, e.created_at "
                       "FROM entries e JOIN history h ON h.blacklist_id = e.blacklist_id ORDER BY h.seq").fetchall()
    assert con.execute("SELECT count(*) FROM history").fetchone()[0] == _BULK_MIN == len(rows)
    assert [r[4] for r in rows] == [r[5] for r in rows] == list(range(1, _BULK_MIN + 1))  # item order

    def mac(v):
        return None if v is None else hmac.new(key, v.encode(), hashlib.sha256).hexdigest()
    for item, row in zip(items, rows, strict=True):
        email = item.get("Email", "").strip().lower() or None
        assert row[1:4] == (email, item.get("UserId"), item.get("Scope"))
        assert row[6:9] == ("add", "applied", "import")
        assert row[9:12] == (mac(email), mac(item.get("UserId")), item.get("Scope"))
        assert row[12] == row[13]
        if "BlacklistId" in item:
            assert row[0] == item["BlacklistId"]
    assert "ffffffff-0000-4000-8000-000000000000" not in {r[0] for r in rows}  # the first item's id is kept
    indexes = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"entries_identity", "entries_user_id", "history_email", "history_user_id", "history_entry"} <= indexes
    con.close()
    assert reg.status(email="bulk1@example.com")["BlacklistId"] == rows[1][0]


AWKWARD_EMAILS = ["A.B@Example.COM ", " a@b.c0m", "a@b.123", "a@1b.x1", "a@b.c-", "a@-b.com", "a@b-.com", "a@b..com",
                  "ü@bücher.example", "a@xn--bcher-kva.example", "a@XN--bcher-kva.example", "a b@c.com", "a@b.com\n",
                  "\ta@b.com", "a@b.com\u00a0", "a@" + "b" * 63 + ".com", "a@" + "b" * 64 + ".com",
                  "a@" + ".".join(["b" * 60] * 4) + ".com", "a" * 240 + "@bb.com", "a" * 250 + "@bb.com", "", " ",
                  "@b.com", "a@b", "a@@b.com", "a@b.com.", "a@[192.0.2.1]", "a\u200b@b.com", "\"a\"@b.com", "A@B.C"]
AWKWARD_USER_IDS = ["u1", " u1 ", "", " ", "u\t1", "u\x7f", "ü", "u" * 256, "u" * 257, "\u00a0u"]


@pytest.mark.parametrize("item", [{"Email": e} for e in AWKWARD_EMAILS] + [{"UserId": u} for u in AWKWARD_USER_IDS]
                         + [{"Email": "a@b.com", "Scope": s} for s in ("Shop", "defaultscope", "", "a" * 65)]
                         + [{"Email": "a@b.com", "BlacklistId": b} for b in ("X", "AAAAAAAA-0000-4000-8000-000000000000")]
                         + [{"Scope": "shop"}, {"Email": 1}, [], {"Email": "a@b.com", "UserId": None}],
                         ids=lambda item: repr(item)[:40])
def test_columnar_validation_is_the_item_loop(item):
    """The columnar path of a large list gives exactly the item loop's identities, ids and errors."""
    from pipelines.registry.feed import _FAST_MIN, _validate_items, _validated_columns, validate_items

    items = [{"Email": f"x{i}@example.com", "Scope": "shop" if i % 2 else None} for i in range(_FAST_MIN)]
    assert _validated_columns(items) is not None  # ordinary lists do take the columnar path
    items.insert(17, item)
    assert validate_items(items) == _validate_items(items)
