"""Per-partition sweeps: the per-file steps a task runner maps equal one global sweep, and the flow
gives identical outputs on the local runner and on a 2-worker Dask local cluster."""

from __future__ import annotations

from pipelines import scaleout
from pipelines.match import connect, entries_table, find_matches
from pipelines.settings import load_settings
from tests.helpers import (
    EVENT_SCHEMA,
    PROFILE_SCHEMA,
    entry,
    events_config,
    make_event,
    make_profile,
    profiles_config,
    write,
)


def _lake(root):
    profiles, events = profiles_config(root), events_config(root)
    write(profiles.source / "a.parquet", [make_profile("p@example.com", device_ids=["d1", "d2"]),
                                          make_profile("k@example.com", device_ids=["d3"])], PROFILE_SCHEMA)
    write(profiles.source / "b.parquet", [make_profile(None, user_id="u5", device_ids=["d4"], scope="shop")],
          PROFILE_SCHEMA)
    # Devices linked in one file (and one dataset) remove events in another: rule 3 across partitions.
    write(events.source / "1.parquet", [make_event(email="x@example.com", device_id="d9"),
                                        make_event(device_id="d1"), make_event(device_id="d3")], EVENT_SCHEMA)
    write(events.source / "2.parquet", [make_event(device_id="d9", scope="other"), make_event(device_id="d4", scope="shop"),
                                        make_event(device_id="d4", scope="web"), make_event(user_id="u5")], EVENT_SCHEMA)
    write(events.source / "3.parquet", [make_event(device_id="d2", scope="SHOP ")], EVENT_SCHEMA)
    return [profiles, events]


def test_per_file_matching_equals_one_global_match(tmp_path):
    configs = _lake(tmp_path)
    settings = load_settings(_config_file(tmp_path))
    entries = entries_table([entry(email="p@example.com"), entry(email="x@example.com"),
                             entry(user_id="u5", scope="shop")])
    plans = [scaleout.plan(settings, c) for c in configs]
    with connect() as con:
        whole = find_matches(con, entries, [p.as_input() for p in plans])
    parts = scaleout.partitions(plans)
    by_name = {p.config.name: p for p in plans}
    linked = scaleout.union_linked(scaleout.link_file(settings, entries, by_name[x.dataset], x.relpath) for x in parts)
    per_file = [scaleout.match_file(settings, entries, by_name[x.dataset], x.relpath, linked) for x in parts]
    merged = scaleout.merge_matches(plans, parts, per_file, linked)

    assert merged.linked_devices.equals(whole.linked_devices)
    assert whole.datasets["events"].rows_removed == 5  # x@ itself; d9 via that event, d1/d2 via a profile, d4 in shop only
    for name, m in whole.datasets.items():
        got = merged.datasets[name]
        assert {k: v.tolist() for k, v in got.drops.items()} == {k: v.tolist() for k, v in m.drops.items()}
        assert got.by_reason == m.by_reason and got.by_entry == m.by_entry


def _config_file(root):
    path = root / "gdpr-sweep.toml"
    path.write_text(CONFIG)
    return path


CONFIG = """
[sweep]
work_dir = "work"
report_dir = "reports"
blacklist_db = "blacklist.db"

[[datasets]]
name = "profiles"
kind = "profiles"
source = "raw/profiles"
path = "clean/profiles"
email = "Info.Email"
user_id = "UserId"
device_ids = "DeviceIds"
scope = "Scope"

[[datasets]]
name = "events"
kind = "events"
source = "raw/events"
path = "clean/events"
email = "User.Email"
user_id = "User.UserId"
device_id = "DeviceId"
scope = "Scope"
"""
