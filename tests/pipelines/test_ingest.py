"""Ingest guard: batches of profiles and events (Parquet, JSON lines) checked before they join the data."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.config.settings import load_settings
from pipelines.core.errors import InputError, SchemaError
from pipelines.datasets import storage
from pipelines.operations.ingest import IngestStats
from pipelines.operations.targeted import ingest_batch
from pipelines.registry.registry import Registry
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

E = "anna@example.com"
CONFIG = lake_config("raw")


@pytest.fixture
def settings(tmp_path):
    """A swept lake: two profiles (one of them blacklisted later, with device d1) and two events."""
    (tmp_path / "gdpr-sweep.toml").write_text(CONFIG)
    settings = load_settings(tmp_path / "gdpr-sweep.toml")
    write(tmp_path / "raw/profiles/p.parquet",
          [make_profile(E, device_ids=["d1"], profile_id="a1"), make_profile("bob@example.com", profile_id="b1")],
          PROFILE_SCHEMA)
    write(tmp_path / "raw/events/e.parquet", [make_event("bob@example.com"), make_event("cara@example.com")],
          EVENT_SCHEMA)
    sweep(list(settings.datasets), [])
    registry = Registry(settings.blacklist_db)
    registry.add(email=E)
    registry.add(email="dave@example.com", scope="shop")
    return settings


def rows(settings, name):
    return read_dataset(settings.dataset(name)).num_rows


def test_batch_with_nothing_blacklisted_is_appended_exactly(settings, tmp_path):
    batch = [make_event("bob@example.com", device_id="d5"), make_event("dave@example.com", scope="outlet")]
    path = write(tmp_path / "in/b1.parquet", batch, EVENT_SCHEMA, compression="snappy")
    summary = ingest_batch(settings, "events", path)
    assert (summary["rows_in"], summary["rows_appended"], summary["rows_dropped"]) == (2, 2, 0)
    assert not summary["duplicate"] and summary["file"].startswith("ingest/")
    written = storage.current_version(settings.dataset("events").path) / summary["file"]
    assert pq.read_table(written).to_pylist() == batch
    assert pq.read_schema(written).equals(EVENT_SCHEMA, check_metadata=False)
    assert rows(settings, "events") == 4 and path.exists()


def test_blacklisted_rows_are_dropped_and_counted(settings, tmp_path):
    batch = [make_event("  ANNA@Example.com"),                        # email, case and padding
             make_event(device_id="d1", anonymous=True),             # device of her stored profile
             make_event("dave@example.com", scope="SHOP"),           # scoped entry, its scope
             make_event("dave@example.com", scope="outlet"),         # another scope: kept
             make_event("x@y.z", device_id="d7"), make_event(device_id="d7", anonymous=True)]
    path = write(tmp_path / "in/b.parquet", batch, EVENT_SCHEMA)
    summary = ingest_batch(settings, "events", path)
    assert (summary["rows_in"], summary["rows_appended"], summary["rows_dropped"]) == (6, 3, 3)
    report = json.loads(open(summary["report"]).read())
    assert report["dropped_by_reason"] == {"email": 2, "user_id": 0, "linked_device": 1}
    assert report["conserved"] and report["verification"]["ok"] and report["output"]["rows"] == 3
    text = open(summary["report"]).read() + open(summary["report"].replace(".json", ".md")).read()
    assert "anna" not in text.lower() and "dave" not in text.lower()
    # the batch file still holds blacklisted rows: the report says so
    assert report["raw_copies"]["held"][0]["blacklisted_rows"] == 3
    kept = read_dataset(settings.dataset("events")).to_pylist()
    assert [(r["User"] or {}).get("Email") for r in kept if r["Scope"] == "outlet"] == ["dave@example.com"]


def test_batch_of_only_blacklisted_rows_adds_nothing_and_is_then_a_duplicate(settings, tmp_path):
    path = write(tmp_path / "in/all.parquet", [make_event(E), make_event(device_id="d1", anonymous=True)],
                 EVENT_SCHEMA)
    before = sorted(storage.list_parquet(storage.current_version(settings.dataset("events").path)))
    summary = ingest_batch(settings, "events", path)
    assert (summary["rows_appended"], summary["rows_dropped"], summary["file"]) == (0, 2, None)
    assert sorted(storage.list_parquet(storage.current_version(settings.dataset("events").path))) == before
    again = ingest_batch(settings, "events", path)
    assert again["duplicate"] and again["rows_appended"] == 0


def test_duplicate_batch_adds_nothing_even_after_a_sweep(settings, tmp_path):
    path = write(tmp_path / "in/b.parquet", [make_event("bob@example.com")], EVENT_SCHEMA)
    first = ingest_batch(settings, "events", path)
    assert first["rows_appended"] == 1 and rows(settings, "events") == 3
    copy = tmp_path / "in/copy-of-b.parquet"
    copy.write_bytes(path.read_bytes())
    second = ingest_batch(settings, "events", copy)
    assert second["duplicate"] and rows(settings, "events") == 3
    report = json.loads(open(second["report"]).read())
    assert report["duplicate_of"]["run_id"] == first["run_id"]
    snapshot = Registry(settings.blacklist_db).snapshot()
    sweep(list(settings.datasets), snapshot.entries, run_id="r2", version=snapshot.version)
    third = ingest_batch(settings, "events", path)
    assert third["duplicate"] and rows(settings, "events") == 3


def test_profiles_batch_never_creates_or_updates_a_blacklisted_profile(settings, tmp_path):
    batch = [make_profile("Anna@example.com", profile_id="a1", Visits=9),  # update of her profile: dropped
             make_profile(E, profile_id="new"),                             # creation: dropped
             make_profile("bob@example.com", profile_id="b1", Visits=7)]    # update of another: kept
    path = write(tmp_path / "in/p.parquet", batch, PROFILE_SCHEMA)
    summary = ingest_batch(settings, "profiles", path)
    assert (summary["rows_appended"], summary["rows_dropped"]) == (1, 2)
    written = storage.current_version(settings.dataset("profiles").path) / summary["file"]
    assert [r["ProfileId"] for r in pq.read_table(written).to_pylist()] == ["b1"]


def test_jsonl_events_are_converted_with_the_dataset_schema(settings, tmp_path):
    path = tmp_path / "in/track.jsonl"
    path.parent.mkdir(parents=True)
    lines = [{"DeviceId": "d9", "EventType": "click", "EventTime": "2026-11-02T08:00:00Z", "Amount": "2.5",
              "User": {"Email": "Bob@Example.com", "Name": "B"}},
             {"DeviceId": "d1", "EventType": "click", "EventTime": "2026-11-02T08:00:01Z"},
             {"EventType": "view", "User": {"Email": "ANNA@example.com"}, "Scope": "shop"}]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    summary = ingest_batch(settings, "events", path)
    assert (summary["rows_in"], summary["rows_appended"], summary["rows_dropped"]) == (3, 1, 2)
    written = storage.current_version(settings.dataset("events").path) / summary["file"]
    table = pq.read_table(written)
    assert table.schema.equals(EVENT_SCHEMA, check_metadata=False)
    assert table.column("DeviceId").to_pylist() == ["d9"] and str(table.column("Amount")[0]) == "2.500"
    assert not list((settings.work_dir / "tmp").glob("**/*.parquet"))  # converted copy removed


@pytest.mark.parametrize("content, problem", [
    ('{"DeviceId": "d1"}\n{"DeviceId": "d2", "EventTime": "yesterday"}\n', "line 2"),
    ('{"DeviceId": "d1"}\n\n{"DeviceId": "d2", "Color": "red"}\n', "line 3"),
    ('{"DeviceId": "d1"}\n{"User": {"Email": "secret@example.com"}, "DeviceId": 5}\n', "line 2"),
    ('{"DeviceId": "d1"}\nnot json\n', "line 2"),
    ('[1, 2]\n', "line 1"),
])
def test_jsonl_line_that_does_not_fit_names_the_line_and_changes_nothing(settings, tmp_path, content, problem):
    path = tmp_path / "in/bad.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    before = storage.current_version(settings.dataset("events").path)
    with pytest.raises(InputError, match=problem) as err:
        ingest_batch(settings, "events", path)
    assert err.value.exit_code == 2 and "secret" not in str(err.value) and "yesterday" not in str(err.value)
    assert storage.current_version(settings.dataset("events").path) == before


def test_batch_with_another_schema_is_refused(settings, tmp_path):
    other = EVENT_SCHEMA.set(5, pa.field("Amount", pa.float64()))
    path = write(tmp_path / "in/b.parquet", [make_event("bob@example.com", Amount=1.5)], other)
    with pytest.raises(SchemaError, match="different types \\['Amount'\\]"):
        ingest_batch(settings, "events", path)


def test_empty_batch_and_unknown_format(settings, tmp_path):
    path = write(tmp_path / "in/empty.parquet", [], EVENT_SCHEMA)
    with pytest.raises(InputError, match="no rows"):
        ingest_batch(settings, "events", path)
    csv = tmp_path / "in/b.csv"
    csv.write_text("a\n")
    with pytest.raises(InputError, match="unknown batch format"):
        ingest_batch(settings, "events", csv)


def test_delete_raw_removes_the_consumed_batch(settings, tmp_path):
    path = write(tmp_path / "in/b.parquet", [make_event(E), make_event("bob@example.com")], EVENT_SCHEMA)
    summary = ingest_batch(settings, "events", path, delete_raw=True)
    assert not path.exists() and summary["raw_deleted"] == [str(path)]
    report = json.loads(open(summary["report"]).read())
    assert report["raw_copies"]["deleted"] == [str(path)] and report["raw_copies"]["held"] == []
    assert rows(settings, "events") == 3


def test_first_batch_creates_the_dataset(tmp_path):
    (tmp_path / "gdpr-sweep.toml").write_text(CONFIG)
    settings = load_settings(tmp_path / "gdpr-sweep.toml")
    Registry(settings.blacklist_db).add(email=E)
    path = write(tmp_path / "in/b.parquet", [make_event(E), make_event("bob@example.com")], EVENT_SCHEMA)
    summary = ingest_batch(settings, "events", path)
    assert summary["rows_appended"] == 1 and rows(settings, "events") == 1


def test_stats_conserve_rows():
    with pytest.raises(AssertionError):
        IngestStats(rows_in=3, rows_appended=2, dropped_by_reason={"email": 2})


def test_sweep_deletes_raw_files_taken_in_earlier_and_unchanged(tmp_path):
    from pipelines.datasets.sweep import delete_consumed_raw, plan_dataset

    (tmp_path / "gdpr-sweep.toml").write_text(CONFIG)
    settings = load_settings(tmp_path / "gdpr-sweep.toml")
    events = settings.dataset("events")
    old = write(tmp_path / "raw/events/old.parquet", [make_event("bob@example.com")], EVENT_SCHEMA)
    sweep([events], [])  # takes old.parquet in
    new = write(tmp_path / "raw/events/new.parquet", [make_event("x@y.z")], EVENT_SCHEMA)
    plan = plan_dataset(events)  # a later run: takes new.parquet in, old.parquet is unchanged
    assert {f.relpath: f.origin for f in plan.files} == {"new.parquet": "source", "old.parquet": "clean"}
    sweep([events], [], run_id="r2")
    assert sorted(delete_consumed_raw(plan)) == [str(new), str(old)]
    assert read_dataset(events).num_rows == 2  # the cleaned data keeps its rows (hard links are separate names)


def test_the_guard_refuses_a_kind_that_takes_no_batch_before_reading_anything(tmp_path):
    from dataclasses import replace

    from pipelines.core.errors import ConfigError
    from pipelines.operations.targeted import ingest_batch

    (tmp_path / "gdpr-sweep.toml").write_text(CONFIG)
    settings = load_settings(tmp_path / "gdpr-sweep.toml")
    events = settings.dataset("events")
    for other, kind in ((replace(events, format="delta"), "Delta table"),
                        (replace(events, url="s3://bucket/events"), "S3 prefix")):
        with pytest.raises(ConfigError, match=f"'events'.*{kind}"):
            ingest_batch(replace(settings, datasets=(other,)), "events", tmp_path / "nothing.jsonl")
