"""The registry's operations and errors (§2), on a real SQLite file per test."""

from __future__ import annotations

import sqlite3
import uuid

import pytest

from pipelines.core.errors import InputError, NotFound
from pipelines.core.match import ENTRY_SCHEMA, entries_table, with_versions
from pipelines.registry.registry import MAX_WINDOW, Registry

# The list example of the Optimizely Profile Store documentation (seeds/003_*.txt). Its emails are
# obfuscated in the seed ("[email protected]"), so plausible ones stand in for them.
SEED_LIST = {
    "total": 2,
    "count": 2,
    "items": [
        {"BlacklistId": "62a2a514-a5f8-4e57-ae59-fe173167f8b7", "Email": "first@example.com", "Scope": "DefaultScope"},
        {"BlacklistId": "a9780654-80f8-41b5-a716-8da5950783bd", "Email": "second@example.com",
         "Scope": "bacb5c80-191e-433f-9fb2-b07c47b862af"},
    ],
}


@pytest.fixture
def reg(tmp_path):
    return Registry(tmp_path / "blacklist.db")


def db_bytes(tmp_path) -> bytes:
    return b"".join(f.read_bytes() for f in sorted(tmp_path.glob("blacklist.db*")))


# -- add / remove / get ---------------------------------------------------------------------------
def test_add_returns_a_new_entry_then_the_existing_one(reg):
    first, created = reg.add(email=" Lead@Example.com ", scope="shop")
    assert created and first.email == "lead@example.com" and first.user_id is None and first.source == "cli"
    uuid.UUID(first.blacklist_id)
    again, created = reg.add(email="lead@example.com", scope="shop", source="api")
    assert not created and again == first
    assert [(h["Action"], h["Outcome"]) for h in reg.history()] == [("add", "applied"), ("add", "unchanged")]


def test_entries_by_user_id_by_email_or_both_are_distinct(reg):
    a, _ = reg.add(email="p@example.com")
    b, _ = reg.add(user_id="u-1")
    c, _ = reg.add(email="p@example.com", user_id="u-1")
    d, _ = reg.add(email="p@example.com", scope="shop")
    assert len({a.blacklist_id, b.blacklist_id, c.blacklist_id, d.blacklist_id}) == 4
    assert reg.list().total == 4


@pytest.mark.parametrize("kwargs", [
    {},
    {"email": "no-at-sign"},
    {"email": "@example.com"},
    {"email": "a b@example.com"},
    {"email": "x" * 250 + "@ex.com"},
    {"email": "a@b.c", "scope": "Shop"},
    {"email": "a@b.c", "scope": "_x"},
    {"email": "a@b.c", "scope": "s" * 65},
    {"user_id": "   "},
    {"user_id": "u" * 257},
    {"email": "a@b.c", "source": "mail"},
])
def test_invalid_adds_store_nothing(reg, kwargs):
    with pytest.raises(InputError) as err:
        reg.add(**kwargs)
    assert err.value.exit_code == 2
    assert "no-at-sign" not in str(err.value) and "a b@" not in str(err.value)
    assert reg.list().total == 0 and reg.history() == []


def test_remove_and_unknown_ids(reg, tmp_path):
    rec, _ = reg.add(email="gone@example.com", user_id="u-gone")
    assert reg.get(rec.blacklist_id) == rec
    assert reg.remove(rec.blacklist_id, channel="api") == rec
    for call in (lambda: reg.remove(rec.blacklist_id), lambda: reg.get(rec.blacklist_id),
                 lambda: reg.remove("not-an-id")):
        with pytest.raises(NotFound) as err:
            call()
        assert err.value.exit_code == 3
    history = reg.history(rec.blacklist_id)
    assert [(h["Action"], h["Channel"]) for h in history] == [("add", "cli"), ("remove", "api")]
    assert all(len(h["EmailHash"]) == 64 and len(h["UserIdHash"]) == 64 for h in history)
    assert b"gone@example.com" not in db_bytes(tmp_path) and b"u-gone" not in db_bytes(tmp_path)
    assert reg.history(email="Gone@Example.com") == history == reg.history(user_id="u-gone")
    assert reg.history(email="other@example.com") == [] and reg.history(rec.blacklist_id, user_id="x") == []


# -- list -----------------------------------------------------------------------------------------
@pytest.fixture
def populated(reg):
    reg.set_status(email="c@example.com", blacklisted=True, at="2026-11-01T10:00:00Z", channel="event")
    reg.set_status(user_id="u-2", blacklisted=True, at="2026-11-02T10:00:00Z", channel="api")
    reg.import_optimizely({"items": [{"Email": "a@example.com", "Scope": "shop"},
                                     {"Email": "b@example.com", "UserId": "u-1"}]})
    return reg


def test_list_filters(populated):
    def emails(**kw):
        return sorted(str(r.email) for r in populated.list(**kw).items)

    assert emails(email="A@Example.com") == ["a@example.com"]
    assert emails(scope="shop") == ["a@example.com"]
    assert emails(scope="*") == ["None", "b@example.com", "c@example.com"]
    assert emails(user_id="u-1") == ["b@example.com"]
    assert emails(source="event") == ["c@example.com"]
    assert emails(source="import") == ["a@example.com", "b@example.com"]
    assert emails(created_before="2026-11-02T10:00:00Z") == ["c@example.com"]
    assert emails(created_after="2026-11-01T10:00:00+00:00", created_before="2026-11-03") == ["None"]
    assert populated.list(email="nobody@example.com").to_json() == {"total": 0, "count": 0, "items": []}


@pytest.mark.parametrize("field", ["BlacklistId", "Email", "UserId", "Scope", "CreatedAt", "Source"])
@pytest.mark.parametrize("descending", [False, True])
def test_list_sorts_on_every_field(populated, field, descending):
    page = populated.list(order_by=field, descending=descending)
    values = [item[field] for item in page.to_json()["items"]]
    present = [v for v in values if v is not None]
    assert present == sorted(present, reverse=descending)
    assert page.total == page.to_json()["count"] == 4


def test_list_pages(populated):
    everything = [r.blacklist_id for r in populated.list(order_by="BlacklistId").items]
    page = populated.list(order_by="BlacklistId", skip=1, top=2)
    assert page.total == 4 and [r.blacklist_id for r in page.items] == everything[1:3]
    assert populated.list(skip=MAX_WINDOW - 2, top=1).items == []


@pytest.mark.parametrize("kwargs", [
    {"skip": -1}, {"top": 0}, {"skip": MAX_WINDOW - 99, "top": 100}, {"skip": MAX_WINDOW - 1, "top": 1},
    {"top": MAX_WINDOW}, {"order_by": "Name"},
    {"created_after": "yesterday"}, {"source": "mail"}, {"scope": "Bad"}, {"email": "nope"},
])
def test_list_rejects_bad_arguments(populated, kwargs):
    with pytest.raises(InputError):
        populated.list(**kwargs)


# -- CrossEngage status, latest action wins ----------------------------------------------------------
def test_status_by_user_id_and_for_leads_by_email_and_scope(reg):
    assert reg.status(user_id="u-1") == {"blacklisted": False, "since": None, "channel": None,
                                        "BlacklistId": None, "Scope": None}
    done = reg.set_status(user_id="u-1", blacklisted=True, at="2026-11-01T09:00:00+01:00", channel="api")
    assert done["blacklisted"] and done["since"] == "2026-11-01T08:00:00.000000Z" and done["channel"] == "api"
    assert done["Outcome"] == "applied"
    assert reg.status(user_id="u-1")["BlacklistId"] == done["BlacklistId"]

    reg.set_status(email="Lead@Example.com", scope="shop", blacklisted=True, channel="event")
    assert reg.status(email="lead@example.com", scope="shop")["blacklisted"]
    assert not reg.status(email="lead@example.com", scope="other")["blacklisted"]
    assert reg.status(email="lead@example.com")["blacklisted"]  # without a scope: blacklisted somewhere

    reg.add(email="all@example.com")  # no scope: every scope
    assert reg.status(email="all@example.com", scope="anything")["channel"] == "cli"


def test_whitelist_reports_since_when_and_channel(reg):
    reg.set_status(user_id="u-1", blacklisted=True, at="2026-11-01T09:00:00Z", channel="event")
    out = reg.set_status(user_id="u-1", blacklisted=False, at="2026-11-01T10:00:00Z", channel="api")
    assert out == {"blacklisted": False, "since": "2026-11-01T10:00:00.000000Z", "channel": "api",
                   "BlacklistId": None, "Scope": None, "Outcome": "applied"}
    assert reg.list().total == 0


@pytest.mark.parametrize("late_at, late_wins", [("2026-11-01T09:00:00Z", False), ("2026-11-01T11:00:00Z", True)])
def test_latest_action_wins_across_channels(reg, late_at, late_wins):
    """A CLI whitelist at 10:00 beats an event blacklist at 09:00 and loses to one at 11:00."""
    reg.set_status(user_id="u-7", blacklisted=True, at="2026-11-01T08:00:00Z", channel="api")
    reg.set_status(user_id="u-7", blacklisted=False, at="2026-11-01T10:00:00Z", channel="cli")
    out = reg.apply_events([{"id": "u-7", "event": "Blacklisted", "timestamp": late_at}])
    assert out["superseded" if not late_wins else "applied"] == 1
    assert reg.status(user_id="u-7")["blacklisted"] is late_wins
    assert reg.history()[-1]["Outcome"] == ("applied" if late_wins else "superseded")


T = "2026-11-01T10:00:00Z"


@pytest.mark.parametrize("order", ["blacklist first", "whitelist first"])
def test_blacklisting_wins_a_tie_in_one_feed(reg, order):
    """Issue 14: equal timestamps were decided by arrival order; for GDPR the blacklist wins (§2)."""
    lines = [{"email": "t@example.com", "event": "Blacklisted", "timestamp": T},
             {"email": "t@example.com", "event": "Whitelisted", "timestamp": T}]
    reg.apply_events(lines if order == "blacklist first" else lines[::-1])
    assert reg.status(email="t@example.com")["blacklisted"] is True
    assert reg.list().total == 1


@pytest.mark.parametrize("order", ["blacklist first", "whitelist first"])
def test_blacklisting_wins_a_tie_across_channels(reg, order):
    """The same tie arriving through two calls and two channels (an API event, then a snapshot command)."""
    calls = [lambda: reg.set_status(user_id="u-9", blacklisted=True, at=T, channel="api"),
             lambda: reg.apply_events([{"id": "u-9", "event": "Whitelisted", "timestamp": T}])]
    for call in calls if order == "blacklist first" else calls[::-1]:
        call()
    assert reg.status(user_id="u-9")["blacklisted"] is True
    outcomes = [(h["Action"], h["Outcome"]) for h in reg.history()]
    assert ("unset", "superseded") in outcomes or outcomes[0] == ("unset", "unchanged")


def test_a_tie_on_another_scope_does_not_block_a_whitelist(reg):
    """The tie rule weighs only competing actions: a blacklisting of scope `news` at the same instant
    does not stop whitelisting scope `shop`."""
    reg.set_status(email="t@example.com", scope="shop", blacklisted=True, at="2026-11-01T09:00:00Z", channel="api")
    reg.set_status(email="t@example.com", scope="news", blacklisted=True, at=T, channel="api")
    out = reg.set_status(email="t@example.com", scope="shop", blacklisted=False, at=T, channel="api")
    assert out["Outcome"] == "applied"
    assert [r.scope for r in reg.list().items] == ["news"]


def test_a_later_whitelist_still_wins(reg):
    reg.set_status(user_id="u-9", blacklisted=True, at=T, channel="api")
    out = reg.set_status(user_id="u-9", blacklisted=False, at="2026-11-01T10:00:00.000001Z", channel="api")
    assert out["Outcome"] == "applied" and reg.list().total == 0


def test_an_older_action_changes_nothing_but_is_recorded(reg):
    reg.set_status(email="x@example.com", blacklisted=True, at="2026-11-01T10:00:00Z", channel="event")
    version = reg.snapshot().version
    out = reg.set_status(email="x@example.com", blacklisted=False, at="2026-11-01T09:59:59Z", channel="api")
    assert out["blacklisted"] and out["Outcome"] == "superseded"
    assert reg.snapshot().version == version + 1
    last = reg.history()[-1]
    assert (last["Action"], last["Outcome"], last["Channel"], last["BlacklistId"]) == ("unset", "superseded", "api", None)


def test_unscoped_whitelist_removes_every_scope_and_scoped_only_its_own(reg):
    for scope in ("shop", "news", None):
        reg.set_status(email="s@example.com", scope=scope, blacklisted=True, channel="api")
    reg.set_status(email="s@example.com", scope="shop", blacklisted=False, channel="api")
    assert sorted(str(r.scope) for r in reg.list().items) == ["None", "news"]
    reg.set_status(email="s@example.com", blacklisted=False, channel="api")
    assert reg.list().total == 0


def test_whitelisting_a_user_id_removes_entries_naming_it(reg):
    reg.add(email="both@example.com", user_id="u-9")
    reg.set_status(user_id="u-9", blacklisted=False, channel="api")
    assert reg.list().total == 0 and not reg.status(email="both@example.com")["blacklisted"]


@pytest.mark.parametrize("at", ["2026-13-01T00:00:00Z", "soon", "2999-01-01T00:00:00Z"])
def test_set_status_rejects_bad_and_future_times(reg, at):
    with pytest.raises(InputError):
        reg.set_status(user_id="u-1", blacklisted=True, at=at, channel="api")
    assert reg.history() == []


def test_set_status_needs_an_identity_and_a_known_channel(reg):
    with pytest.raises(InputError):
        reg.set_status(blacklisted=True, channel="api")
    with pytest.raises(InputError):
        reg.set_status(user_id="u", blacklisted=True, channel="telepathy")


# -- CrossEngage event feed ---------------------------------------------------------------------------
def test_feed_lines_apply_in_timestamp_order_in_one_go(reg):
    lines = [
        {"id": "u-1", "event": "Whitelisted", "timestamp": "2026-11-01T12:00:00Z"},
        {"id": "u-1", "event": "Blacklisted", "timestamp": "2026-11-01T11:00:00Z", "properties": {"why": "asked"}},
        {"email": "Lead@Example.com", "businessUnit": "shop", "event": "Blacklisted",
         "timestamp": "2026-11-01T11:00:00Z"},
        {"id": 42, "event": "Blacklisted"},
        {"id": "u-3", "event": "PageView"},
    ]
    out = reg.apply_events(lines)
    assert out == {"lines": 5, "ignored": 1, "applied": 4, "unchanged": 0, "superseded": 0, "duplicate": 0,
                   "added": 3, "removed": 1}
    assert not reg.status(user_id="u-1")["blacklisted"]
    assert reg.status(email="lead@example.com", scope="shop")["channel"] == "event"
    assert reg.status(user_id="42")["blacklisted"]
    again = reg.apply_events(lines)  # the same feed again changes nothing
    assert again["duplicate"] == 3 and again["unchanged"] == 1 and again["applied"] == 0  # no timestamp: now


def test_a_bad_feed_line_applies_nothing_and_names_every_bad_line(reg):
    lines = [
        {"id": "u-1", "event": "Blacklisted"},
        {"event": "Blacklisted"},
        "not an object",
        {"email": "not-an-email", "event": "Whitelisted"},
        {"id": "u-2", "event": "Blacklisted", "timestamp": "yesterday"},
        {"id": "u-2", "event": "Blacklisted", "businessUnit": "Not A Scope"},
        {"id": ["u"], "event": "Blacklisted"},
        {"id": "u-4"},
    ]
    with pytest.raises(InputError) as err:
        reg.apply_events(lines)
    message = str(err.value)
    assert "(2, 3, 4, 5, 6, 7, 8)" in message and "nothing imported" in message
    assert "not-an-email" not in message
    assert reg.history() == [] and reg.list().total == 0


# -- Optimizely list format -------------------------------------------------------------------------
def test_seed_list_imports_and_exports_back_to_the_same_entries(reg, tmp_path):
    assert reg.import_optimizely(SEED_LIST) == {"items": 2, "added": 2, "existing": 0}
    assert reg.export_optimizely() == SEED_LIST
    other = Registry(tmp_path / "other.db")
    other.import_optimizely(reg.export_optimizely())
    assert other.export_optimizely() == SEED_LIST
    assert reg.import_optimizely(SEED_LIST) == {"items": 2, "added": 0, "existing": 2}
    assert reg.export_optimizely() == SEED_LIST


def test_export_carries_user_ids_and_unscoped_entries(reg):
    reg.add(user_id="u-1")
    reg.add(email="a@example.com")
    items = reg.export_optimizely()["items"]
    assert items[0]["UserId"] == "u-1" and items[0]["Email"] is None and items[0]["Scope"] is None
    assert "UserId" not in items[1]


@pytest.mark.parametrize("doc, lines", [
    ({"items": [{"Email": "ok@example.com"}, {"Email": "bad"}, {"Scope": "shop"}]}, "(2, 3)"),
    ({"items": [{"Email": "ok@example.com", "BlacklistId": "nope"}]}, "(1)"),
    ({"items": [{"Email": "a@example.com", "BlacklistId": SEED_LIST["items"][0]["BlacklistId"]},
                {"Email": "b@example.com", "BlacklistId": SEED_LIST["items"][0]["BlacklistId"]}]}, "(2)"),
    ({"items": [{"Email": 7}, "x"]}, "(1, 2)"),
])
def test_a_bad_optimizely_list_imports_nothing(reg, doc, lines):
    with pytest.raises(InputError) as err:
        reg.import_optimizely(doc)
    assert lines in str(err.value) and "nothing imported" in str(err.value)
    assert reg.list().total == 0 and reg.history() == []


@pytest.mark.parametrize("doc", [{"total": 1}, [1, 2], "x", {"count": 3, "items": [{"Email": "a@example.com"}]}])
def test_a_malformed_optimizely_document_is_rejected(reg, doc):
    with pytest.raises(InputError):
        reg.import_optimizely(doc if not isinstance(doc, list) else {"items": doc, "count": 5})
    assert reg.list().total == 0


def test_an_id_already_taken_by_another_entry_is_a_conflict(reg):
    reg.import_optimizely(SEED_LIST)
    clash = {"items": [{"Email": "new@example.com"},
                       {"BlacklistId": SEED_LIST["items"][1]["BlacklistId"], "Email": "other@example.com"}]}
    with pytest.raises(InputError) as err:
        reg.import_optimizely(clash)
    assert "(2)" in str(err.value)
    assert reg.export_optimizely() == SEED_LIST


def test_bulk_import_into_an_empty_registry(reg):
    n = 60_000
    items = [{"Email": f"bulk{i}@example.com", "Scope": "shop" if i % 2 else None} for i in range(n)]
    items.append({"Email": "bulk0@example.com"})  # the same identity twice: one entry
    assert reg.import_optimizely({"items": items}) == {"items": n + 1, "added": n, "existing": 1}
    snap = reg.snapshot()
    assert snap.count == n and snap.version == n
    assert len(set(snap.table["blacklist_id"].to_pylist())) == n
    assert all(uuid.UUID(b).version == 4 for b in snap.table["blacklist_id"].to_pylist()[:1000])
    assert sorted(snap.table["added_seq"].to_pylist()) == list(range(1, n + 1))
    assert reg.status(email="bulk7@example.com", scope="shop")["channel"] == "import"
    assert reg.add(email="bulk1@example.com", scope="shop")[1] is False  # indexes are back


# -- snapshot ---------------------------------------------------------------------------------------
def test_snapshot_is_one_version_in_arrow(reg):
    assert reg.snapshot().version == 0 and reg.snapshot().count == 0
    a, _ = reg.add(email="a@example.com", scope="DefaultScope")
    b, _ = reg.add(user_id="u-1")
    reg.remove(b.blacklist_id)
    snap = reg.snapshot()
    assert snap.version == 3 and [r.blacklist_id for r in snap.records] == [a.blacklist_id]
    table = snap.entries_table()
    assert table.schema == ENTRY_SCHEMA
    assert table["scope"].to_pylist() == ["defaultscope"]  # entry scopes compare lower-cased
    assert snap.added == {a.blacklist_id: 1}
    # The same table the slow path builds entry by entry:
    assert table.equals(with_versions(entries_table(snap.entries), snap.added))


def test_a_version_1_database_is_migrated_in_place(tmp_path):
    db = tmp_path / "blacklist.db"
    with sqlite3.connect(db) as con:
        con.executescript("""
            CREATE TABLE entries (blacklist_id TEXT PRIMARY KEY, email TEXT, user_id TEXT, scope TEXT,
                created_at TEXT NOT NULL, source TEXT NOT NULL);
            CREATE TABLE history (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, action TEXT NOT NULL,
                blacklist_id TEXT NOT NULL, email_hash TEXT, user_id_hash TEXT, scope TEXT, channel TEXT NOT NULL);
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            INSERT INTO entries VALUES ('b1', 'old@example.com', NULL, NULL, '2026-10-01T00:00:00.000000Z', 'cli');
            INSERT INTO history (at, action, blacklist_id, email_hash, channel)
                VALUES ('2026-10-01T00:00:00.000000Z', 'add', 'b1', 'h', 'cli');
        """)
    reg = Registry(db)
    assert reg.snapshot().added == {"b1": 1}
    assert reg.history()[0]["Outcome"] == "applied"
    reg.set_status(email="new@example.com", blacklisted=False, channel="api")
    assert reg.history()[-1]["BlacklistId"] is None and reg.snapshot().version == 2


# -- the kept snapshot ------------------------------------------------------------------------------
def as_set(snapshot):
    return {tuple(row.values()) for row in snapshot.table.to_pylist()}


def test_kept_snapshot_is_brought_up_to_date_and_equals_a_full_read(reg, tmp_path):
    kept, _ = reg.add(email="kept@example.com")
    gone, _ = reg.add(user_id="u-gone")
    first = reg.snapshot()
    cache = tmp_path / "blacklist.db.snapshot.arrow"
    assert cache.exists() and cache.stat().st_mode & 0o077 == 0
    assert reg.snapshot().table.equals(first.table)  # same version: read from the kept file

    reg.add(email="new@example.com", scope="shop")
    reg.set_status(user_id="u-9", blacklisted=True, channel="api")
    assert cache.exists()  # additions keep it: the next snapshot reads only what changed
    reg.import_optimizely({"items": [{"BlacklistId": gone.blacklist_id, "UserId": "u-gone"}]})  # existing
    updated = reg.snapshot()
    reg.add(user_id="u-10")  # the kept file is still the first version's: the delta grows
    later = reg.snapshot()
    cache.unlink()
    full = reg.snapshot()
    assert later.version == full.version and as_set(later) == as_set(full) and later.count == 5
    assert as_set(updated) == as_set(full) - {row for row in as_set(full) if row[2] == "u-10"}


def test_a_removal_drops_the_kept_snapshot(reg, tmp_path):
    rec, _ = reg.add(email="secret.person@example.com")
    reg.add(email="other@example.com")
    reg.snapshot()
    reg.remove(rec.blacklist_id)
    assert not (tmp_path / "blacklist.db.snapshot.arrow").exists()
    assert b"secret.person" not in db_bytes(tmp_path)
    assert [r.email for r in reg.snapshot().records] == ["other@example.com"]


def test_a_kept_snapshot_of_another_database_or_a_broken_one_is_ignored(tmp_path):
    one, two = Registry(tmp_path / "one" / "blacklist.db"), Registry(tmp_path / "two" / "blacklist.db")
    one.add(email="a@example.com")
    two.add(email="b@example.com")
    one.snapshot()
    cache = tmp_path / "one" / "blacklist.db.snapshot.arrow"
    (tmp_path / "two" / "blacklist.db.snapshot.arrow").write_bytes(cache.read_bytes())  # same version 1
    assert [r.email for r in two.snapshot().records] == ["b@example.com"]
    cache.write_bytes(b"not arrow")
    assert [r.email for r in one.snapshot().records] == ["a@example.com"]
