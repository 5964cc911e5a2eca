"""Issue 13, finding 8: a device link outlives the rows that made it (§3 rule 3), through the real
flows (sweep, ingest guard, ClearUserData) and the real registry.

Night 1 a person is blacklisted; night 2 the sweep removes their profile (listing device D) and their
events; night 3 a new raw snapshot brings anonymous events from D: they must go, counted under the
entry as `linked_device`. The same for a device linked through an event removed on an earlier night,
and for an ingest batch and ClearUserData. Whitelisting (tests/registry/test_links.py) releases them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq

from pipelines.config.settings import load_settings
from pipelines.datasets import storage
from pipelines.operations.targeted import ingest_batch
from pipelines.registry.registry import Registry
from tests.helpers import EVENT_SCHEMA, PROFILE_SCHEMA, make_event, make_profile, write
from tests.helpers import sweep as helper_sweep
from tests.support.lake import two_datasets, write_lake_config

ANNA, BOB = "anna.links@example.com", "bob.links@example.com"
DEVICE = "dev-anna-5f0c1e"  # listed on Anna's profile only
PHONE = "dev-anna-phone-93b2"  # on an event carrying Anna's email only
OTHER = "dev-bob-77aa01"


def make_lake(root: Path, delete_raw: bool = True):
    return load_settings(write_lake_config(root, *two_datasets(), sweep={"delete_raw": delete_raw}))


def deliver(settings, dataset: str, name: str, rows: list[dict]) -> Path:
    """A raw snapshot file arriving in the dataset's source folder (written beside, then renamed in)."""
    config = settings.dataset(dataset)
    tmp = write(config.source / f".{name}.tmp", rows, PROFILE_SCHEMA if dataset == "profiles" else EVENT_SCHEMA)
    os.replace(tmp, config.source / name)
    return config.source / name


def anonymous(device: str, n: int, tag: str) -> list[dict]:
    return [make_event(device_id=device, anonymous=True, EventType=f"{tag}-{i}") for i in range(n)]


def clean_events(settings) -> list[dict]:
    folder = storage.current_version(settings.dataset("events").path)
    return [r for rel in storage.list_parquet(folder) for r in pq.read_table(folder / rel).to_pylist()]


def sweep(settings) -> dict:
    from flows.sweep import gdpr_sweep

    return json.loads(Path(gdpr_sweep(config=str(settings.config_path))).read_text())


def events_removed(report: dict) -> dict:
    return next(d for d in report["datasets"] if d["name"] == "events")


def report_texts(settings, report: dict) -> str:
    folder = settings.report_dir / report["run"]["run_id"]
    return "".join(p.read_text() for p in sorted(folder.iterdir()) if p.suffix in (".json", ".md", ".html"))


def night_one_and_two(settings) -> str:
    """Night 1: the lake is delivered and Anna is blacklisted. Night 2: the sweep removes her profile
    (listing DEVICE) and her event (from PHONE); the raw files are deleted. Returns her BlacklistId."""
    deliver(settings, "profiles", "p1.parquet", [
        make_profile(email=ANNA, device_ids=[DEVICE], profile_id="anna"),
        make_profile(email=BOB, device_ids=[OTHER], profile_id="bob")])
    deliver(settings, "events", "e1.parquet", [
        make_event(email=ANNA, device_id=PHONE, EventType="anna-login"),
        make_event(email=BOB, device_id=OTHER, EventType="bob-login")])
    record, _ = Registry(settings.blacklist_db).add(email=ANNA)
    second = sweep(settings)
    assert events_removed(second)["removed_by_reason"]["email"] == 1
    assert [r["EventType"] for r in clean_events(settings)] == ["bob-login"]
    assert not any(list(settings.dataset(ds).source.glob("*.parquet")) for ds in ("profiles", "events"))  # raw gone
    return record.blacklist_id


def test_anonymous_events_from_a_removed_profiles_device_go_on_a_later_night(prefect_harness, tmp_path):
    settings = make_lake(tmp_path)
    bid = night_one_and_two(settings)

    deliver(settings, "events", "e2.parquet", anonymous(DEVICE, 3, "anon-anna") + anonymous(OTHER, 2, "anon-bob"))
    third = sweep(settings)

    events = events_removed(third)
    assert events["removed_by_reason"]["linked_device"] == 3
    assert third["verification"]["ok"]
    assert sorted(r["EventType"] for r in clean_events(settings)) == ["anon-bob-0", "anon-bob-1", "bob-login"]
    entry = next(e for e in third["entries"] if e["blacklist_id"] == bid)
    assert entry["rows_removed"] == {"events": 3} and entry["status"] == "gone"
    text = report_texts(settings, third)
    assert DEVICE not in text and PHONE not in text and ANNA not in text
    from pipelines.registry.links import LinkStore

    assert LinkStore(Registry(settings.blacklist_db)).count(bid) == 2  # DEVICE (profile), PHONE (event)


def test_a_device_linked_through_an_event_removed_earlier_still_goes_until_whitelisted(prefect_harness, tmp_path):
    from pipelines.registry.links import LinkStore

    settings = make_lake(tmp_path)
    bid = night_one_and_two(settings)

    deliver(settings, "events", "e2.parquet", anonymous(PHONE, 2, "anon-phone"))
    third = sweep(settings)

    assert events_removed(third)["removed_by_reason"]["linked_device"] == 2
    assert [r["EventType"] for r in clean_events(settings)] == ["bob-login"]

    # Whitelisting releases her devices: later rows from them are kept; purged rows stay purged.
    Registry(settings.blacklist_db).remove(bid)
    assert LinkStore(Registry(settings.blacklist_db)).count() == 0
    deliver(settings, "events", "e3.parquet", anonymous(PHONE, 1, "after-whitelist"))
    fourth = sweep(settings)
    assert events_removed(fourth)["rows_removed"] == 0
    assert sorted(r["EventType"] for r in clean_events(settings)) == ["after-whitelist-0", "bob-login"]


def test_the_ingest_guard_drops_a_batch_from_a_remembered_device(prefect_harness, tmp_path):
    """The flow and the CLI / HTTP path (`operations.ingest_batch`) alike."""
    from flows.ingest import ingest

    settings = make_lake(tmp_path)
    bid = night_one_and_two(settings)
    batch = write(tmp_path / "landing" / "batch.parquet",
                  anonymous(DEVICE, 2, "anon-anna") + anonymous(OTHER, 1, "anon-bob"), EVENT_SCHEMA)
    later = write(tmp_path / "landing" / "later.parquet", anonymous(PHONE, 1, "anon-phone"), EVENT_SCHEMA)

    summary = ingest(dataset="events", batch=str(batch), config=str(settings.config_path))
    direct = ingest_batch(settings, "events", later)

    assert (summary["rows_appended"], summary["rows_dropped"]) == (1, 2)
    report = json.loads(Path(summary["report"]).read_text())
    assert report["dropped_by_reason"]["linked_device"] == 2 and report["dropped_by_entry"] == {bid: 2}
    assert (direct["rows_appended"], direct["rows_dropped"]) == (0, 1)
    assert sorted(r["EventType"] for r in clean_events(settings)) == ["anon-bob-0", "bob-login"]


def test_clear_user_data_removes_devices_an_ingested_batch_linked(prefect_harness, tmp_path):
    """Anonymous events from Anna's phone are stored; then a batch with her login from that phone is
    dropped by the guard, which keeps the link; ClearUserData then removes the stored phone events."""
    from flows.clear_user_data import clear_user_data

    settings = make_lake(tmp_path)
    deliver(settings, "profiles", "p1.parquet", [make_profile(email=ANNA, device_ids=[DEVICE], profile_id="anna")])
    deliver(settings, "events", "e1.parquet", anonymous(PHONE, 2, "anon-phone") + anonymous(OTHER, 1, "anon-bob"))
    helper_sweep(list(settings.datasets), [])
    record, _ = Registry(settings.blacklist_db).add(email=ANNA)
    login = write(tmp_path / "landing" / "login.parquet",
                  [make_event(email=ANNA, device_id=PHONE, EventType="anna-login")], EVENT_SCHEMA)
    assert ingest_batch(settings, "events", login)["rows_dropped"] == 1

    summary = clear_user_data(blacklist_id=record.blacklist_id, config=str(settings.config_path))

    assert summary["datasets"] == {"profiles": 1, "events": 2}
    assert [r["EventType"] for r in clean_events(settings)] == ["anon-bob-0"]


def test_gdpr_sweep_scan_on_its_own_searches_the_remembered_devices(prefect_harness, tmp_path):
    """`gdpr-sweep scan` finds one of Anna's devices left in a column no rule reads (Bob's event names
    it), though the rows that linked it are gone: it searches the devices remembered with her entry."""
    from gdpr_sweep.scan_ops import residual_scan

    settings = make_lake(tmp_path)
    bid = night_one_and_two(settings)
    deliver(settings, "events", "e2.parquet", [make_event(email=BOB, device_id=OTHER, EventType=DEVICE)])
    sweep(settings)  # kept: the device is in `EventType`, which no rule reads

    summary = residual_scan(settings)

    assert [(f["column"], f["match"], f["blacklist_id"], f["rows"]) for f in summary["findings"]] == [
        ("EventType", "device_id", bid, 1)]
    assert DEVICE not in json.dumps(summary) and DEVICE not in Path(summary["report"]).read_text()
