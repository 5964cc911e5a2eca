"""A registry file written by the previous schema (version 2) opens and is migrated in place, and a bulk
import leaves every entry in the history (docs/decisions/0301-registry-bulk-import.md)."""

from __future__ import annotations

import sqlite3

import pytest

from pipelines.core.errors import SweepError
from pipelines.registry.bulk import _BULK_MIN
from pipelines.registry.registry import Registry
from pipelines.registry.store import SCHEMA_VERSION, _Hasher

# The schema of version 2, as `pipelines/registry/store.py` created it before version 3.
V2_SCHEMA = """
CREATE TABLE entries (blacklist_id TEXT PRIMARY KEY, email TEXT, user_id TEXT, scope TEXT, created_at TEXT NOT NULL,
    source TEXT NOT NULL, added_seq INTEGER, CHECK (email IS NOT NULL OR user_id IS NOT NULL));
CREATE UNIQUE INDEX entries_identity ON entries (coalesce(email, ''), coalesce(user_id, ''), coalesce(scope, ''));
CREATE INDEX entries_user_id ON entries (user_id);
CREATE TABLE history (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, action TEXT NOT NULL,
    blacklist_id TEXT, email_hash TEXT, user_id_hash TEXT, scope TEXT, channel TEXT NOT NULL,
    outcome TEXT NOT NULL DEFAULT 'applied', recorded_at TEXT);
CREATE INDEX history_email ON history (email_hash, at);
CREATE INDEX history_user_id ON history (user_id_hash, at);
CREATE INDEX history_entry ON history (blacklist_id);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
PRAGMA user_version = 2;
"""
KEY = bytes(range(32))
T1, T2 = "2026-10-01T00:00:00.000000Z", "2026-10-02T00:00:00.000000Z"


def make_v2_file(path):
    """A version-2 file: two entries (one with a user id) and a removed one, with their history."""
    h = _Hasher(KEY)
    con = sqlite3.connect(path)
    con.executescript(V2_SCHEMA)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("INSERT INTO meta VALUES ('hmac_key', ?)", [KEY.hex()])
    history = [(T1, "add", "b1", h("kept@example.com"), None, None, "cli", "applied", T1),
               (T1, "add", "b2", h("with.id@example.com"), h("u-7"), "shop", "api", "applied", T1),
               (T1, "add", "b3", h("gone@example.com"), None, None, "cli", "applied", T1),
               (T2, "remove", "b3", h("gone@example.com"), None, None, "cli", "applied", T2)]
    con.executemany("INSERT INTO history (at, action, blacklist_id, email_hash, user_id_hash, scope, channel, outcome, "
                    "recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", history)
    con.executemany("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [("b1", "kept@example.com", None, None, T1, "cli", 1),
                     ("b2", "with.id@example.com", "u-7", "shop", T1, "api", 2)])
    con.commit()
    con.close()


def test_a_version_2_file_is_migrated_on_open(tmp_path):
    db = tmp_path / "blacklist.db"
    make_v2_file(db)
    before = sqlite3.connect(db).execute("SELECT * FROM history ORDER BY seq").fetchall()
    reg = Registry(db)
    assert reg.status(user_id="u-7", scope="shop")["BlacklistId"] == "b2"
    assert reg.status(email="gone@example.com") == {"blacklisted": False, "since": T2, "channel": "cli",
                                                    "BlacklistId": None, "Scope": None}
    assert [r["BlacklistId"] for r in reg.history(email="gone@example.com")] == ["b3", "b3"]
    assert reg.snapshot().version == 4 and {r.blacklist_id for r in reg.snapshot().records} == {"b1", "b2"}
    reg.close()
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert con.execute("SELECT * FROM history ORDER BY seq").fetchall() == before  # the history is untouched
    indexes = dict(con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"))
    assert "WHERE user_id IS NOT NULL" in indexes["entries_user_id"]
    assert "(email_hash) WHERE" in indexes["history_email"] and "(user_id_hash) WHERE" in indexes["history_user_id"]
    con.close()
    # and it keeps working: latest-wins over the migrated history
    assert Registry(db).set_status(email="gone@example.com", blacklisted=True, at=T1, channel="api")["Outcome"] \
        == "superseded"


def test_a_file_of_a_newer_schema_is_refused_in_one_line(tmp_path):
    db = tmp_path / "blacklist.db"
    make_v2_file(db)
    with sqlite3.connect(db) as con:
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SweepError) as err:
        Registry(db).list()
    assert str(err.value).startswith(str(db)) and "newer" in str(err.value) and "\n" not in str(err.value)


def test_every_entry_of_a_bulk_import_is_in_the_history(tmp_path):
    reg = Registry(tmp_path / "blacklist.db")
    items = [{"Email": f"p{i}@example.com", **({"UserId": f"u{i}"} if i % 5 == 0 else {})} for i in range(_BULK_MIN)]
    assert reg.import_optimizely({"items": items})["added"] == _BULK_MIN
    history = reg.history()
    entries = {r.blacklist_id: r for r in reg.snapshot().records}
    assert [row["Seq"] for row in history] == list(range(1, _BULK_MIN + 1))
    assert {(row["Action"], row["Outcome"], row["Channel"]) for row in history} == {("add", "applied", "import")}
    assert sorted(row["BlacklistId"] for row in history) == sorted(entries)
    for i in (0, 1, 4999, _BULK_MIN - 1):
        (row,) = reg.history(email=f"p{i}@example.com")
        assert entries[row["BlacklistId"]].email == f"p{i}@example.com"
        assert (row["UserIdHash"] is not None) == (i % 5 == 0)
    assert [r["BlacklistId"] for r in reg.history(user_id="u5")] == [reg.status(user_id="u5")["BlacklistId"]]
