"""pipelines.sample.generate: deterministic, schema-exact, linkable sample data, streamed one day at a time."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.sample import events as sample_events
from pipelines.sample import profiles as sample_profiles
from pipelines.sample.generate import GenerateResult, generate

START = date(2026, 11, 1)
SIZES = dict(profiles=400, events=6000, days=4, seed=3, start=START, blacklist=8)

TS = pa.timestamp("us", tz="UTC")
EXPECTED_PROFILE_SCHEMA = pa.schema([
    ("ProfileId", pa.string()),
    ("UserId", pa.string()),
    ("DeviceIds", pa.list_(pa.string())),
    ("Name", pa.string()),
    ("Scope", pa.string()),
    ("FirstSeen", TS),
    ("LastSeen", TS),
    ("UpdateTime", TS),
    ("Visits", pa.int32()),
    ("VisitorGroups", pa.list_(pa.string())),
    ("Info", pa.struct([("Email", pa.string()), ("Website", pa.string()), ("Picture", pa.string()),
                        ("Country", pa.string())])),
    ("ContactInformation", pa.list_(pa.string())),
    ("Payload", pa.struct([("Segment", pa.string()), ("Score", pa.decimal128(10, 2))])),
])
EXPECTED_EVENT_SCHEMA = pa.schema([
    ("DeviceId", pa.string()),
    ("EventType", pa.string()),
    ("Value", pa.string()),
    ("PageUri", pa.string()),
    ("RemoteAddress", pa.string()),
    ("EventTime", TS),
    ("CountryCode", pa.string()),
    ("Scope", pa.string()),
    ("User", pa.struct([("Name", pa.string()), ("Email", pa.string()), ("UserId", pa.string()),
                        ("Info", pa.struct([("Country", pa.string())]))])),
    ("Payload", pa.struct([("Amount", pa.decimal128(12, 2)), ("Items", pa.list_(pa.string()))])),
])


def norm(email: str | None) -> str | None:
    return None if email is None else email.strip().lower()


def scope_key(scope: str | None) -> str:
    return "defaultscope" if scope is None or not scope.strip() else scope.strip().lower()


def files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.parquet"))


def read_rows(folder: Path) -> list[dict]:
    return [row for path in files(folder) for row in pq.read_table(path).to_pylist()]


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> tuple[Path, GenerateResult]:
    out = tmp_path_factory.mktemp("lake")
    return out, generate(out, **SIZES)


@pytest.fixture(scope="module")
def profiles(lake) -> list[dict]:
    return read_rows(lake[0] / "profiles")


@pytest.fixture(scope="module")
def events(lake) -> list[dict]:
    return read_rows(lake[0] / "events")


def test_same_arguments_give_identical_bytes(tmp_path):
    args = dict(profiles=150, events=1500, days=3, seed=11)
    generate(tmp_path / "a", **args)
    generate(tmp_path / "b", **args)
    generate(tmp_path / "c", **{**args, "seed": 12})
    listing = {p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()}
    assert listing == {p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file()}
    assert len(listing) == 1 + 3 + 1  # one profiles file, three days, the blacklist
    for rel in listing:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    assert (tmp_path / "a" / "profiles" / "profiles-0000.parquet").read_bytes() != \
        (tmp_path / "c" / "profiles" / "profiles-0000.parquet").read_bytes()


def test_schemas_are_exact_and_files_zstd(lake):
    out, _ = lake
    for folder, expected in (("profiles", EXPECTED_PROFILE_SCHEMA), ("events", EXPECTED_EVENT_SCHEMA)):
        for path in files(out / folder):
            assert pq.read_schema(path).remove_metadata() == expected, path
            meta = pq.ParquetFile(path).metadata
            codecs = {meta.row_group(g).column(c).compression
                      for g in range(meta.num_row_groups) for c in range(meta.num_columns)}
            assert codecs == {"ZSTD"}, path


def test_one_events_file_per_day_and_row_counts(lake, profiles, events):
    out, result = lake
    days = [START + timedelta(days=d) for d in range(SIZES["days"])]
    assert [p.name for p in files(out / "events")] == [f"{d.isoformat()}.parquet" for d in days]
    assert [p.name for p in files(out / "profiles")] == ["profiles-0000.parquet"]
    assert (result.profiles_files, result.events_files) == (1, SIZES["days"])
    assert len(profiles) == result.profiles_rows == SIZES["profiles"]
    assert len(events) == result.events_rows == SIZES["events"]
    for day, path in zip(days, files(out / "events"), strict=True):
        times = pq.read_table(path, columns=["EventTime"]).column(0).to_pylist()
        day_start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        assert all(day_start <= t < day_start + timedelta(days=1) for t in times)
        assert times == sorted(times)
    assert not [p for p in out.rglob(".*")], "temporary files left behind"


def test_profiles_are_split_into_files(tmp_path, monkeypatch):
    monkeypatch.setattr(sample_profiles, "PROFILES_PER_FILE", 120)
    monkeypatch.setattr(sample_profiles, "PROFILE_BATCH_ROWS", 50)
    result = generate(tmp_path, profiles=300, events=10, days=1, blacklist=2)
    paths = files(tmp_path / "profiles")
    assert [p.name for p in paths] == ["profiles-0000.parquet", "profiles-0001.parquet", "profiles-0002.parquet"]
    assert [pq.ParquetFile(p).metadata.num_rows for p in paths] == [120, 120, 60]
    assert [pq.ParquetFile(p).metadata.num_row_groups for p in paths] == [3, 3, 2]
    assert result.profiles_files == 3
    ids = [r["ProfileId"] for r in read_rows(tmp_path / "profiles")]
    assert len(set(ids)) == 300
    assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", i) for i in ids)


def test_profile_data_has_the_documented_mixtures(profiles):
    user_ids = [p["UserId"] for p in profiles]
    assert 0.1 < user_ids.count(None) / len(profiles) < 0.3  # leads
    assert all(re.fullmatch(r"u\d{7}", u) for u in user_ids if u is not None)
    assert {p["Scope"] for p in profiles} == {None, "", "  ", "DefaultScope", "commercesite", "CommerceSite",
                                              "outlet"}
    device_lists = [p["DeviceIds"] for p in profiles]
    assert None in device_lists and [] in device_lists
    devices = [d for ds in device_lists if ds for d in ds]
    assert len(devices) == len(set(devices)), "a device belongs to exactly one profile"
    assert all(re.fullmatch(r"d-[0-9a-f]{12}", d) for d in devices)
    assert max(len(ds or []) for ds in device_lists) == 3
    emails = [p["Info"]["Email"] for p in profiles if p["Info"]]
    assert any(p["Info"] is None for p in profiles) and None in emails
    assert any(e != norm(e) for e in emails if e) and any(e != e.strip() for e in emails if e)
    present = [norm(e) for e in emails if e]
    assert len(present) == len(set(present))
    assert all(p["FirstSeen"] <= p["LastSeen"] <= p["UpdateTime"] for p in profiles)


def test_blacklist_sample_points_at_profiles(lake, profiles):
    out, result = lake
    document = json.loads((out / "blacklist.json").read_text(encoding="utf-8"))
    assert document == {"total": 8, "count": 8, "items": result.blacklist_sample}
    items = result.blacklist_sample
    by_email = {norm(p["Info"]["Email"]): p for p in profiles if p["Info"] and p["Info"]["Email"]}
    by_user_id = {p["UserId"]: p for p in profiles if p["UserId"]}
    unscoped = [i for i in items if "Email" in i and i.get("Scope") is None]
    scoped = [i for i in items if i.get("Scope") is not None]
    by_user = [i for i in items if "UserId" in i]
    assert (len(unscoped), len(scoped), len(by_user)) == (4, 3, 1)
    assert any("Scope" not in i for i in unscoped) and any("Scope" in i for i in unscoped)
    assert all("BlacklistId" not in i for i in items)
    for item in unscoped + scoped:
        assert item["Email"] == norm(item["Email"]) and item["Email"] in by_email
        assert by_email[item["Email"]]["DeviceIds"], "picked profiles have devices to link"
    for item in scoped:
        assert item["Scope"] == "commercesite"
        assert scope_key(by_email[item["Email"]]["Scope"]) == "commercesite"
    assert set(by_user[0]) == {"UserId"} and by_user[0]["UserId"] in by_user_id
    assert len({i.get("Email") or i.get("UserId") for i in items}) == 8


def test_events_link_to_profiles(profiles, events):
    listed = {d for p in profiles for d in p["DeviceIds"] or []}
    profile_emails = {norm(p["Info"]["Email"]) for p in profiles if p["Info"] and p["Info"]["Email"]}
    anonymous = [e for e in events if e["User"] is None]
    identified = [e for e in events if e["User"] is not None]
    assert 0.2 < len(anonymous) / len(events) < 0.4
    assert sum(e["DeviceId"] in listed for e in anonymous) > len(anonymous) / 2, "anonymous events from profile devices"
    assert any(e["DeviceId"] is None or e["DeviceId"] not in listed for e in anonymous), "strangers"
    emails = [e["User"]["Email"] for e in identified if e["User"]["Email"]]
    assert any(e != norm(e) and norm(e) in profile_emails for e in emails), "other spellings of profile emails"
    assert any(e == e.upper() for e in emails) and any(e != e.strip() for e in emails)
    assert any(norm(e) not in profile_emails for e in emails), "emails of no profile"
    events_only = {e["DeviceId"] for e in identified if e["DeviceId"] and e["DeviceId"] not in listed
                   and norm(e["User"]["Email"]) in profile_emails}
    assert events_only, "devices seen only in events, linked through a profile's email"
    assert 0 < sum(e["DeviceId"] is None for e in events) < len(events) * 0.15


def test_event_user_matches_its_profile(profiles, events):
    by_user_id = {p["UserId"]: p for p in profiles if p["UserId"]}
    checked = 0
    for event in events:
        user = event["User"]
        if user is None or user["UserId"] is None:
            continue
        profile = by_user_id[user["UserId"]]
        assert user["Name"] == profile["Name"]
        if user["Email"] is not None:
            assert norm(user["Email"]) == norm(profile["Info"]["Email"])
        assert scope_key(event["Scope"]) == scope_key(profile["Scope"])
        checked += 1
    assert checked > len(events) / 3
    assert {"COMMERCESITE", "commercesite"} <= {e["Scope"] for e in events}


def test_users_are_active_on_a_few_days(events):
    days_per_user: dict[str, set] = {}
    for event in events:
        if event["User"] and event["User"]["UserId"]:
            days_per_user.setdefault(event["User"]["UserId"], set()).add(event["EventTime"].date())
    assert days_per_user and max(len(d) for d in days_per_user.values()) <= 5
    assert any(len(d) < SIZES["days"] for d in days_per_user.values())


def test_events_stream_one_day_at_a_time(tmp_path, monkeypatch):
    """Each day is planned only after the previous day's file is complete, and built in bounded batches."""
    monkeypatch.setattr(sample_events, "EVENT_BATCH_ROWS", 64)
    planned: list[tuple[int, int]] = []
    batches: list[int] = []
    plan_day, events_table = sample_events._plan_day, sample_events._events_table
    names = [f"{(START + timedelta(days=d)).isoformat()}.parquet" for d in range(5)]

    def spy_plan(pop, day, count, rng):
        on_disk = {p.name for p in files(tmp_path / "events")}
        assert on_disk == set(names[:day]), "earlier days written, later days not yet started"
        planned.append((day, count))
        return plan_day(pop, day, count, rng)

    def spy_table(pop, time, profile, source, rng):
        batches.append(len(time))
        return events_table(pop, time, profile, source, rng)

    monkeypatch.setattr(sample_events, "_plan_day", spy_plan)
    monkeypatch.setattr(sample_events, "_events_table", spy_table)
    generate(tmp_path, profiles=100, events=1000, days=5, blacklist=2)
    assert [d for d, _ in planned] == list(range(5))
    assert sum(c for _, c in planned) == 1000 and max(batches) <= 64
    for (_, count), name in zip(planned, names, strict=True):
        meta = pq.ParquetFile(tmp_path / "events" / name).metadata
        assert meta.num_rows == count and meta.num_row_groups == -(-count // 64)


def test_rerun_replaces_files_and_drops_stale_ones(tmp_path):
    generate(tmp_path, profiles=50, events=100, days=3, blacklist=2)
    (tmp_path / "events" / "notes.txt").write_text("kept")
    generate(tmp_path, profiles=50, events=100, days=2, start=date(2027, 1, 1), blacklist=2)
    assert sorted(p.name for p in (tmp_path / "events").iterdir()) == [
        "2027-01-01.parquet", "2027-01-02.parquet", "notes.txt"]


@pytest.mark.parametrize("kwargs", [dict(days=0), dict(events=-1), dict(profiles=-1), dict(seed=-1),
                                    dict(profiles=5, blacklist=8)])
def test_rejects_invalid_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        generate(tmp_path, **kwargs)


def test_no_profiles_gives_only_stranger_events(tmp_path):
    result = generate(tmp_path, profiles=0, events=50, days=2, blacklist=0)
    assert result.blacklist_sample == [] and result.profiles_files == 1
    assert pq.ParquetFile(tmp_path / "profiles" / "profiles-0000.parquet").metadata.num_rows == 0
    rows = read_rows(tmp_path / "events")
    assert len(rows) == 50 and all(r["User"] is None or r["User"]["UserId"] is None for r in rows)
