"""ClearUserData: `operations.clear_user_data` on tiny hand-made datasets, and the flow on generated data."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.config.settings import load_settings
from pipelines.core.errors import NotFound
from pipelines.datasets import storage
from pipelines.operations.targeted import clear_user_data, ingest_batch
from pipelines.registry.registry import Registry
from tests.flows.conftest_lake import clean_rows, generated_lake, logical, oracle_entries
from tests.helpers import (
    EVENT_SCHEMA,
    PROFILE_SCHEMA,
    lake_config,
    make_event,
    make_profile,
    read_dataset,
    sweep,
    write,
)
from tests.oracle import expected_kept, norm_email

E = "anna@example.com"
CONFIG = lake_config("raw")


def lake(tmp_path, profiles=None, events=None):
    """Raw files, swept once with an empty blacklist, so the cleaned datasets exist as versions."""
    (tmp_path / "gdpr-sweep.toml").write_text(CONFIG)
    settings = load_settings(tmp_path / "gdpr-sweep.toml")
    profiles = profiles or {
        "p1.parquet": [make_profile(E, scope="shop", device_ids=["d1"], profile_id="a1"),
                       make_profile("bob@example.com", profile_id="b1")],
        "p2.parquet": [make_profile(" Anna@Example.COM", scope="outlet", profile_id="a2"),
                       make_profile("carl@example.com", device_ids=["d9"], profile_id="c1")],
        "p3.parquet": [make_profile("dora@example.com", profile_id="d1")],
    }
    events = events or {
        "e1.parquet": [make_event(E, scope="shop"), make_event("bob@example.com", device_id="d5")],
        "e2.parquet": [make_event(device_id="d1", anonymous=True, scope="news"), make_event("x@y.z")],
        "e3.parquet": [make_event("carl@example.com", device_id="d9"), make_event(device_id="d9", anonymous=True)],
        "e4.parquet": [make_event("ANNA@example.com", scope=None, device_id="d2"),
                       make_event(device_id="d2", anonymous=True)],
    }
    for name, rows in profiles.items():
        write(tmp_path / "raw/profiles" / name, rows, PROFILE_SCHEMA)
    for name, rows in events.items():
        write(tmp_path / "raw/events" / name, rows, EVENT_SCHEMA)
    sweep(list(settings.datasets), [])
    return settings


def inodes(config):
    folder = storage.current_version(config.path)
    return {rel: os.stat(folder / rel).st_ino for rel in storage.list_parquet(folder)}


def emails(table, kind):
    if kind == "profiles":
        return [(r["Info"] or {}).get("Email") for r in table.to_pylist()]
    return [(r["User"] or {}).get("Email") for r in table.to_pylist()]


def test_clear_removes_every_scope_and_file_and_rewrites_only_those(tmp_path):
    settings = lake(tmp_path)
    profiles, events = settings.datasets
    before_p, before_e = inodes(profiles), inodes(events)
    bid = Registry(settings.blacklist_db).add(email=E)[0].blacklist_id

    summary = clear_user_data(settings, bid, check_raw=True)

    assert summary["BlacklistId"] == bid and summary["rows_removed"] == 6
    assert summary["files_rewritten"] == 5 and summary["datasets"] == {"profiles": 2, "events": 4}
    assert E not in json.dumps(summary).lower()
    kept_p, kept_e = read_dataset(profiles), read_dataset(events)
    assert sorted(r["ProfileId"] for r in kept_p.to_pylist()) == ["b1", "c1", "d1"]
    assert not any(e and "anna" in e.lower() for e in emails(kept_e, "events"))
    assert {r["DeviceId"] for r in kept_e.to_pylist()} == {"d5", "d9", None}
    after_p, after_e = inodes(profiles), inodes(events)
    # files without her rows are the same inode (hard links), files with them are new
    assert after_p["p3.parquet"] == before_p["p3.parquet"] and after_e["e3.parquet"] == before_e["e3.parquet"]
    for rel in ("p1.parquet", "p2.parquet"):
        assert after_p[rel] != before_p[rel]
    for rel in ("e1.parquet", "e2.parquet", "e4.parquet"):
        assert after_e[rel] != before_e[rel]
    # schema kept exactly
    folder = storage.current_version(events.path)
    assert pq.read_schema(folder / "e1.parquet").equals(EVENT_SCHEMA, check_metadata=False)

    report_path = summary["report"]
    report = json.loads(open(report_path).read())
    assert report["kind"] == "clear_user_data" and report["blacklist_id"] == bid
    assert report["verification"]["ok"] and report["totals"]["rows_removed"] == 6
    for d in report["datasets"]:
        assert d["conserved"]
    text = open(report_path).read() + open(report_path.replace(".json", ".md")).read()
    assert "anna" not in text.lower() and "d1\"" not in text
    # the raw snapshots still hold her rows, and the report says so, per file
    held = {os.path.basename(h["path"]): h for h in report["raw_copies"]["held"]}
    assert held["p1.parquet"]["blacklisted_rows"] == 1 and held["p3.parquet"]["blacklisted_rows"] == 0
    assert held["e2.parquet"]["holds_blacklisted_data"] and "HOLDS" in held["e2.parquet"]["verdict"]


def test_scoped_entry_clears_only_its_scope(tmp_path):
    settings = lake(tmp_path)
    profiles, events = settings.datasets
    bid = Registry(settings.blacklist_db).add(email=E, scope="shop")[0].blacklist_id
    before_e = inodes(events)

    summary = clear_user_data(settings, bid)

    assert summary["datasets"] == {"profiles": 1, "events": 1}
    held = json.loads(open(summary["report"]).read())["raw_copies"]["held"]  # raw files not read by default
    assert len(held) == 7 and all(h["verdict"].startswith("NOT CHECKED") and h["holds_blacklisted_data"] for h in held)
    assert sorted(r["ProfileId"] for r in read_dataset(profiles).to_pylist()) == ["a2", "b1", "c1", "d1"]
    # the anonymous d1 event is in scope `news`: outside the entry's scope, kept
    kept = read_dataset(events).to_pylist()
    assert len(kept) == 7 and any(r["DeviceId"] == "d1" for r in kept)
    assert inodes(events)["e2.parquet"] == before_e["e2.parquet"]


def test_user_id_only_entry(tmp_path):
    settings = lake(tmp_path, profiles={"p.parquet": [make_profile(None, user_id="u7", device_ids=["d3"]),
                                                      make_profile("o@y.z", user_id="u8")]},
                    events={"e.parquet": [make_event(user_id="u7"), make_event(device_id="d3", anonymous=True),
                                          make_event(user_id="u8")]})
    bid = Registry(settings.blacklist_db).add(user_id="u7")[0].blacklist_id
    summary = clear_user_data(settings, bid)
    assert summary["datasets"] == {"profiles": 1, "events": 2}
    assert [r["UserId"] for r in read_dataset(settings.datasets[0]).to_pylist()] == ["u8"]


def test_unknown_entry_is_not_found(tmp_path):
    settings = lake(tmp_path)
    with pytest.raises(NotFound, match="no blacklist entry"):
        clear_user_data(settings, "00000000-0000-0000-0000-000000000000")


def test_no_profile_with_the_email_is_not_found_and_changes_nothing(tmp_path):
    settings = lake(tmp_path)
    profiles, events = settings.datasets
    registry = Registry(settings.blacklist_db)
    bid = registry.add(email="x@y.z")[0].blacklist_id  # an event carries it, no profile does
    before = (storage.current_version(profiles.path), storage.current_version(events.path), inodes(events))
    with pytest.raises(NotFound, match="no profile carries the email") as err:
        clear_user_data(settings, bid)
    assert err.value.exit_code == 3 and "x@y.z" not in str(err.value)
    assert (storage.current_version(profiles.path), storage.current_version(events.path), inodes(events)) == before
    assert not settings.report_dir.exists() or not list(settings.report_dir.iterdir())
    # a scoped entry whose email has a profile only in another scope: not found either
    bid2 = registry.add(email=E, scope="news")[0].blacklist_id
    with pytest.raises(NotFound):
        clear_user_data(settings, bid2)


def test_sweep_after_clear_keeps_state_and_removes_nothing_more(tmp_path):
    settings = lake(tmp_path)
    bid = Registry(settings.blacklist_db).add(email=E)[0].blacklist_id
    clear_user_data(settings, bid)
    snapshot = Registry(settings.blacklist_db).snapshot()
    outcomes, _ = sweep(list(settings.datasets), snapshot.entries, run_id="r2")
    assert sum(o.rows_removed for o in outcomes) == 0


def per_file_rows(config):
    folder = storage.current_version(config.path)
    return {rel: pq.read_table(folder / rel).to_pylist() for rel in storage.list_parquet(folder)}


def test_clear_user_data_flow_on_generated_data(prefect_harness, tmp_path):
    from flows.clear_user_data import clear_user_data as clear_flow

    settings = generated_lake(tmp_path)
    profiles, events = settings.dataset("profiles"), settings.dataset("events")
    # the person with a profile whose events are spread over the most files
    with_profile = {norm_email(r["Info"]["Email"]) for r in clean_rows(profiles) if (r["Info"] or {}).get("Email")}
    files_of: dict[str, set[str]] = {}
    for rel, rows in per_file_rows(events).items():
        for r in rows:
            email = norm_email((r["User"] or {}).get("Email"))
            if email in with_profile:
                files_of.setdefault(email, set()).add(rel)
    person = max(sorted(files_of), key=lambda e: len(files_of[e]))
    assert len(files_of[person]) >= 2
    # more of their events arrive in other scopes, spelled differently
    extra = [make_event(person.upper(), scope="outlet"), make_event(f"  {person} ", scope="Brand_X")]
    batch = tmp_path / "landing/extra.parquet"
    batch.parent.mkdir()
    gen_schema = pq.read_schema(next(iter(storage.current_version(events.path).glob("*.parquet"))))
    rows = [{**{f.name: None for f in gen_schema}, "DeviceId": r["DeviceId"], "Scope": r["Scope"],
             "EventType": "view", "User": {"Name": "N", "Email": r["User"]["Email"], "UserId": None, "Info": None}}
            for r in extra]
    pq.write_table(pa.Table.from_pylist(rows, schema=gen_schema), batch)
    assert ingest_batch(settings, "events", batch)["rows_appended"] == 2

    registry = Registry(settings.blacklist_db)
    record = registry.add(email=person)[0]
    entries = oracle_entries([record])
    before_p, before_e = per_file_rows(profiles), per_file_rows(events)
    all_p = [(rel, r) for rel, rows in before_p.items() for r in rows]
    all_e = [(rel, r) for rel, rows in before_e.items() for r in rows]
    kept_p, kept_e = expected_kept(entries, logical([r for _, r in all_p], "profiles"),
                                   logical([r for _, r in all_e], "events"))
    removed_e = set(range(len(all_e))) - set(kept_e)
    touched = {all_e[i][0] for i in removed_e}
    scopes = {all_e[i][1]["Scope"] for i in removed_e}
    assert len(touched) >= 3 and {"outlet", "Brand_X"} <= scopes
    inodes_before = inodes(events)

    summary = clear_flow(blacklist_id=record.blacklist_id, config=str(settings.config_path))

    expected = (len(all_p) - len(kept_p)) + len(removed_e)
    assert summary["rows_removed"] == expected and summary["datasets"]["events"] == len(removed_e)
    after_e = [r for rows in per_file_rows(events).values() for r in rows]
    assert after_e == [all_e[i][1] for i in kept_e]
    after_inodes = inodes(events)
    for rel, ino in inodes_before.items():
        assert (after_inodes[rel] != ino) == (rel in touched), rel
    assert summary["files_rewritten"] == len(touched) + len({all_p[i][0] for i in set(range(len(all_p))) - set(kept_p)})
    assert person not in json.dumps(summary) and person not in open(summary["report"]).read().lower()

    nobody = registry.add(email="nobody.at.all@example.com")[0]
    with pytest.raises(NotFound):
        clear_flow(blacklist_id=nobody.blacklist_id, config=str(settings.config_path))
