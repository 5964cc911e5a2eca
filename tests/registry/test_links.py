"""Remembered device links in the real registry file: kept with their entry, released by every kind of
whitelisting, never kept for an entry that is gone, and not left behind in the database's bytes."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipelines.core.links import LINK_SCHEMA, found_links, remembered
from pipelines.core.match import HITS_SCHEMA, LINKED_SCHEMA, entries_table
from pipelines.core.model import Entry
from pipelines.registry.links import LinkStore
from pipelines.registry.registry import Registry

DEVICES = ["dev-7c1f0e99", "dev-2b8d41aa"]


def links_of(bid: str, devices=DEVICES, via: str = "profile") -> pa.Table:
    return pa.Table.from_pylist([{"bid": bid, "device": d, "via": via} for d in devices], schema=LINK_SCHEMA)


def stored_bytes(registry: Registry) -> bytes:
    registry.close()
    db = registry.path
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*") if p.is_file())


@pytest.fixture
def registry(tmp_path):
    reg = Registry(tmp_path / "blacklist.db")
    yield reg
    reg.close()


def test_links_are_kept_with_their_entry_and_counted(registry):
    anna, _ = registry.add(email="anna@example.com")
    bob, _ = registry.add(user_id="u2", scope="shop")
    store = LinkStore(registry)
    assert store.load().num_rows == 0 and store.count() == 0  # no table yet: nothing

    assert store.record(links_of(anna.blacklist_id), "run-1") == 2
    assert store.record(links_of(anna.blacklist_id), "run-2") == 0  # already known
    assert store.record(links_of(bob.blacklist_id, DEVICES[:1], "event")) == 1

    assert (store.count(anna.blacklist_id), store.count(bob.blacklist_id), store.count()) == (2, 1, 3)
    assert store.load().to_pylist() == sorted(
        links_of(anna.blacklist_id).to_pylist() + links_of(bob.blacklist_id, DEVICES[:1], "event").to_pylist(),
        key=lambda r: (r["bid"], r["device"], r["via"]))


@pytest.mark.parametrize("whitelist", ["remove", "set_status", "event"])
def test_every_kind_of_whitelisting_releases_the_devices(registry, whitelist):
    anna, _ = registry.add(email="anna@example.com")
    bob, _ = registry.add(email="bob@example.com")
    store = LinkStore(registry)
    store.record(links_of(anna.blacklist_id))
    store.record(links_of(bob.blacklist_id, ["dev-bob-0001"]))
    if whitelist == "remove":
        registry.remove(anna.blacklist_id)
    elif whitelist == "set_status":
        registry.set_status(email="anna@example.com", blacklisted=False, channel="api")
    else:
        registry.apply_events([{"event": "Whitelisted", "email": "anna@example.com"}])

    assert store.count(anna.blacklist_id) == 0 and store.count(bob.blacklist_id) == 1
    assert [r["bid"] for r in store.load().to_pylist()] == [bob.blacklist_id]
    data = stored_bytes(registry)
    assert not any(d.encode() in data for d in DEVICES)  # overwritten (secure_delete), WAL folded back
    assert b"dev-bob-0001" in data


def test_a_link_for_an_entry_removed_meanwhile_is_not_kept(registry):
    """A sweep read the blacklist, the entry was whitelisted while it ran; its links must not stay."""
    anna, _ = registry.add(email="anna@example.com")
    registry.remove(anna.blacklist_id)
    store = LinkStore(registry)
    assert store.record(links_of(anna.blacklist_id)) == 0
    assert store.count() == 0
    again, _ = registry.add(email="anna@example.com")  # blacklisted again: a new entry, no old links
    assert again.blacklist_id != anna.blacklist_id and store.count(again.blacklist_id) == 0


def test_history_and_exports_never_hold_the_devices(registry):
    anna, _ = registry.add(email="anna@example.com")
    LinkStore(registry).record(links_of(anna.blacklist_id))
    text = repr(registry.history()) + repr(registry.export_optimizely()) + repr(registry.snapshot().table)
    assert not any(d in text for d in DEVICES)


# -- the pure steps (pipelines/core/links.py) --------------------------------------------------------


def hit(dataset: str, bid: str, device_id=None, device_ids=None, links=True) -> dict:
    return {"dataset": dataset, "file": 0, "row": 0, "bid": bid, "rank": 1, "entry_scope": None,
            "device_id": device_id, "device_ids": device_ids, "links": links}


def test_found_links_take_listed_and_event_devices_with_what_made_them():
    hits = pa.Table.from_pylist([
        hit("profiles", "b1", device_ids=["d1", None, " ", "d2"]),
        hit("events", "b1", device_id="d3"),
        hit("events", "b2", device_id="d4", links=False),  # linking through events is off for it
        hit("events", "b2", device_id=None),
        hit("profiles", "b1", device_ids=["d1"]),
        hit("profiles", "b1", device_ids=["\u200b d2\t", "\ufeff"]),  # §2: trimmed, blank is none
    ], schema=HITS_SCHEMA)
    found = found_links([hits, None, HITS_SCHEMA.empty_table()], {"profiles": "profiles", "events": "events"})
    assert found.to_pylist() == [{"bid": "b1", "device": "d1", "via": "profile"},
                                 {"bid": "b1", "device": "d2", "via": "profile"},
                                 {"bid": "b1", "device": "d3", "via": "event"}]


def test_found_links_are_normalised_and_blank_devices_link_nothing():
    """Issue 14: devices are remembered as the matcher compares them (trimmed of Unicode whitespace,
    zero-width characters and BOM); a blank one is no device."""
    hits = pa.Table.from_pylist([
        hit("profiles", "b1", device_ids=["", "\u00a0", "\u200b\ufeff", " d1\u3000", "d1"]),
        hit("events", "b1", device_id="\u2028"),
    ], schema=HITS_SCHEMA)
    found = found_links([hits], {"profiles": "profiles", "events": "events"})
    assert found.to_pylist() == [{"bid": "b1", "device": "d1", "via": "profile"}]


def test_remembered_links_take_their_entrys_scope_and_the_linking_switch():
    entries = entries_table([Entry("b1", "a@example.com"), Entry("b2", None, "u2", "Shop")])
    links = pa.Table.from_pylist([
        {"bid": "b1", "device": "d1", "via": "profile"}, {"bid": "b2", "device": "d2", "via": "event"},
        {"bid": "gone", "device": "d3", "via": "profile"}], schema=LINK_SCHEMA)
    on = remembered(links, entries, link_through_events=True)
    assert on.schema == LINKED_SCHEMA
    assert on.to_pylist() == [{"device": "d1", "scope": None, "bid": "b1"},
                              {"device": "d2", "scope": "shop", "bid": "b2"}]
    assert remembered(links, entries, link_through_events=False).to_pylist() == [
        {"device": "d1", "scope": None, "bid": "b1"}]
