"""Parquet datasets on S3-compatible prefixes, against moto's real S3 server (`s3_server` in tests/conftest.py).

Objects stay at their own keys (`lake/events/date=.../part-0.parquet`): a file with rows to drop is
replaced in place by one PUT conditional on the ETag the run read; the others are not touched. Each
finding of issues 13 (#7) and 16 (S3) has a test here that fails on commit 23a9caf.
"""

from __future__ import annotations

import json

import duckdb
import polars as pl
import pytest

from pipelines.datasets import objectstore
from tests import oracle
from tests.helpers import (
    EVENT_SCHEMA,
    PROFILE_SCHEMA,
    entry,
    logical_event,
    logical_profile,
    make_event,
    make_profile,
)
from tests.scaleout import s3_support as s3x
from tests.support.lake import events, profiles, s3_table, write_lake_config

GONE = "gone@example.com"
PROFILES = [make_profile(GONE, device_ids=["dev-g"]), make_profile("keep@example.com", device_ids=["dev-k"]),
            make_profile(None, user_id="u-7", scope="shop")]
EVENTS = {
    "date=2026-12-01/part-0.parquet": [make_event(email="Gone@Example.com"),
                                       make_event(email="keep@example.com", device_id="dev-k")],
    "date=2026-12-02/part-0.parquet": [make_event(device_id="dev-g", scope="x"), make_event(user_id="u-7", scope="shop"),
                                       make_event(user_id="u-7", scope="other"),
                                       make_event(anonymous=True, device_id="dev-z")],
    "date=2026-12-03/part-0.parquet": [make_event(email="other@example.com"), make_event(anonymous=True)],
}
ENTRIES = [entry(email=GONE), entry(user_id="u-7", scope="shop")]


def make_lake(s3, tmp_path, versioned=False, events_source=None, delete_raw=False, events=True):
    bucket = s3x.new_bucket(s3, versioned)
    s3x.put(s3, bucket, "lake/profiles/part-0.parquet", PROFILES, PROFILE_SCHEMA)
    if events:
        for rel, rows in EVENTS.items():
            s3x.put(s3, bucket, f"lake/events/{rel}", rows, EVENT_SCHEMA)
    return bucket, s3x.settings_for(tmp_path, s3, bucket, events_source, delete_raw)


def glob_rows(s3, bucket: str, dataset: str = "events") -> list[dict]:
    """What an engine reading the prefix sees: DuckDB over a recursive glob with Hive partitions."""
    with duckdb.connect() as con:
        objectstore.register(con, s3)
        return con.sql(f"SELECT * EXCLUDE (date) FROM read_parquet('s3://{bucket}/lake/{dataset}/**/*.parquet', "
                       "hive_partitioning = true) ORDER BY ALL").to_arrow_table().to_pylist()


def expected():
    all_events = [r for rows in EVENTS.values() for r in rows]
    kept_p, kept_e = oracle.expected_kept(
        [{"email": e.email, "user_id": e.user_id, "scope": e.scope} for e in ENTRIES],
        [logical_profile(r) for r in PROFILES], [logical_event(r) for r in all_events])
    return [PROFILES[i] for i in kept_p], [all_events[i] for i in kept_e]


def sort_rows(rows):
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def test_s3_keys_stay_and_every_engine_reads_the_cleaned_prefix(s3_server, tmp_path):
    """Issue 16: Glue/Hive partition locations were left empty (objects moved under `_gdpr_sweep_versions/`)."""
    bucket, settings = make_lake(s3_server, tmp_path)
    before = s3x.every_version(s3_server, bucket)
    outcomes, verification, _ = s3x.sweep(settings, ENTRIES, "r1")
    kept_p, kept_e = expected()

    keys = sorted(k for k, _ in s3x.every_version(s3_server, bucket))
    assert keys == sorted(["lake/profiles/part-0.parquet", "lake/profiles/_gdpr_sweep_state.json",
                           "lake/events/_gdpr_sweep_state.json", *(f"lake/events/{r}" for r in EVENTS)])
    assert s3x.read_rows(s3_server, bucket, "lake/profiles/part-0.parquet") == kept_p
    assert sort_rows(glob_rows(s3_server, bucket)) == sort_rows(kept_e)
    # Polars over the same prefix, with the Hive partition column, gets the same rows and the schema.
    frame = pl.scan_parquet(f"s3://{bucket}/lake/events/**/*.parquet", hive_partitioning=True,
                            storage_options={"endpoint_url": s3_server.endpoint_url, "region": "us-east-1",
                                             "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
                            ).collect()
    assert frame.height == len(kept_e) and "date" in frame.columns
    # The file without matches was not touched: same version, same ETag.
    untouched = "lake/events/date=2026-12-03/part-0.parquet"
    assert [v for (k, _), v in s3x.every_version(s3_server, bucket).items() if k == untouched] == \
        [v for (k, _), v in before.items() if k == untouched]
    by_name = {o.name: o for o in outcomes}
    assert by_name["events"].rows_removed == sum(map(len, EVENTS.values())) - len(kept_e) == 3
    assert by_name["profiles"].rows_removed == len(PROFILES) - len(kept_p) == 2
    assert verification.files_checked == 3  # the rewritten objects, re-read as written


def test_s3_quiet_night_writes_nothing(s3_server, tmp_path):
    """Issue 16: every sweep copied every object, even with nothing new."""
    bucket, settings = make_lake(s3_server, tmp_path, versioned=True)
    s3x.sweep(settings, ENTRIES, "r1")
    before = s3x.every_version(s3_server, bucket)
    outcomes, _, _ = s3x.sweep(settings, ENTRIES, "r2")
    assert s3x.every_version(s3_server, bucket) == before  # no PUT, no DELETE, not even of the state
    assert sum(o.rows_removed for o in outcomes) == 0


def test_s3_object_added_after_first_sweep_is_swept_not_deleted(s3_server, tmp_path):
    """Issue 13 finding 7: an object put into the prefix after the first sweep was deleted unread."""
    bucket, settings = make_lake(s3_server, tmp_path)
    s3x.sweep(settings, ENTRIES, "r1")
    late = [make_event(email=GONE), make_event(email="late@example.com"), make_event(user_id="u-7", scope="shop")]
    s3x.put(s3_server, bucket, "lake/events/date=2026-12-04/part-0.parquet", late, EVENT_SCHEMA)
    outcomes, _, _ = s3x.sweep(settings, ENTRIES, "r2")
    assert s3x.read_rows(s3_server, bucket, "lake/events/date=2026-12-04/part-0.parquet") == [late[1]]
    events = next(o for o in outcomes if o.name == "events")
    assert events.rows_in == events.rows_out + events.rows_removed and events.rows_removed == 2


def test_s3_nothing_under_the_prefix_is_deleted_unless_read_and_replaced(s3_server, tmp_path):
    """Issue 13 finding 7, the other half: objects that are no dataset file (markers, notes, hidden or
    internal names) are never deleted, on the first run or later ones."""
    bucket, settings = make_lake(s3_server, tmp_path, versioned=True)
    c = s3x.client(s3_server)
    others = ["lake/events/_SUCCESS", "lake/events/README.txt", "lake/events/.spark/part-9.parquet",
              "lake/events/date=2026-12-01/_committed_123", "lake/events/date=2026-12-02/part-1.csv"]
    for key in others:
        c.put_object(Bucket=bucket, Key=key, Body=b"not a dataset file")
    before = {k: v for k, v in s3x.every_version(s3_server, bucket).items() if k[0] in others}
    s3x.sweep(settings, ENTRIES, "r1")
    s3x.sweep(settings, [*ENTRIES, entry(email="keep@example.com")], "r2")
    assert {k: v for k, v in s3x.every_version(s3_server, bucket).items() if k[0] in others} == before


def test_s3_glob_during_a_run_never_sees_double_rows(s3_server, tmp_path):
    """Issue 16: a prefix glob during a run saw old and new versions together (up to twice the rows)."""
    bucket, settings = make_lake(s3_server, tmp_path)
    before = glob_rows(s3_server, bucket)
    kept_p, kept_e = expected()
    seen = {}
    s3x.sweep(settings, ENTRIES, "r1", after_write=lambda: seen.setdefault("mid", glob_rows(s3_server, bucket)))
    # Mid-run each object is old or new: the rows are the cleaned ones (every file is replaced before
    # the verification step here), never a union of both.
    assert len(seen["mid"]) <= len(before)
    assert sort_rows(seen["mid"]) == sort_rows(kept_e)


def test_s3_concurrent_writer_stops_the_run_for_that_file_and_keeps_its_write(s3_server, tmp_path):
    bucket, settings = make_lake(s3_server, tmp_path)
    theirs = [make_event(email="writer@example.com")]
    key = "lake/events/date=2026-12-01/part-0.parquet"  # has rows to drop
    with pytest.raises(objectstore.Changed, match="date=2026-12-01/part-0.parquet"):
        s3x.sweep(settings, ENTRIES, "r1",
                  after_match=lambda: s3x.put(s3_server, bucket, key, theirs, EVENT_SCHEMA))
    assert s3x.read_rows(s3_server, bucket, key) == theirs  # the writer's object, not overwritten
    # The other file of the dataset was cleaned; the next run sweeps the rest and records everything.
    _, kept_e = expected()
    s3x.sweep(settings, ENTRIES, "r2")
    want = [r for r in kept_e if r not in EVENTS["date=2026-12-01/part-0.parquet"]] + theirs
    assert sort_rows(glob_rows(s3_server, bucket)) == sort_rows(want)


def test_s3_put_is_conditional_on_the_etag_read(s3_server, tmp_path):
    """The S3 server (moto here, as AWS, MinIO and Ceph do) refuses a PUT whose `If-Match` ETag is no
    longer the object's, and an `If-None-Match: *` PUT where an object exists: `objectstore.put` then
    raises `Changed` and the other writer's object stays."""
    bucket = s3x.new_bucket(s3_server)
    fs = s3x.fs_for(s3_server)
    url = f"s3://{bucket}/lake/events/part-0.parquet"
    read = s3x.put(s3_server, bucket, "lake/events/part-0.parquet", [make_event(email="a@example.com")], EVENT_SCHEMA)
    theirs = [make_event(email="writer@example.com")]
    s3x.put(s3_server, bucket, "lake/events/part-0.parquet", theirs, EVENT_SCHEMA)
    with pytest.raises(objectstore.Changed, match="changed since this run read it"):
        objectstore.put(fs, url, b"ours", read, "r1")
    with pytest.raises(objectstore.Changed):
        objectstore.put(fs, url, b"ours", None, "r1")
    assert s3x.read_rows(s3_server, bucket, "lake/events/part-0.parquet") == theirs
    current = objectstore.head(fs, url)["ETag"]
    written = objectstore.put(fs, url, b"ours", current, "r1")  # the ETag it is: replaced
    assert s3x.client(s3_server).get_object(Bucket=bucket, Key="lake/events/part-0.parquet")["Body"].read() == b"ours"
    assert written.etag != current


def test_s3_writer_between_read_and_put_keeps_its_write(s3_server, tmp_path, monkeypatch):
    """A concurrent writer replaces an object after the run downloaded it and before its PUT (the fault
    point is the S3 client, as the crash tests wrap OS calls): the conditional PUT fails, the writer's
    object stays, the run stops naming the file, and the next run sweeps the writer's rows."""
    import s3fs

    bucket, settings = make_lake(s3_server, tmp_path)
    key = "lake/events/date=2026-12-01/part-0.parquet"  # has rows to drop
    theirs = [make_event(email=GONE), make_event(email="writer@example.com")]
    original = s3fs.S3FileSystem.call_s3
    raced = []

    def call_s3(self, method, *args, **kwargs):
        if method == "put_object" and kwargs.get("Key") == key and not raced:
            raced.append(s3x.put(s3_server, bucket, key, theirs, EVENT_SCHEMA))
        return original(self, method, *args, **kwargs)

    monkeypatch.setattr(s3fs.S3FileSystem, "call_s3", call_s3)
    with pytest.raises(objectstore.Changed, match="date=2026-12-01/part-0.parquet"):
        s3x.sweep(settings, ENTRIES, "r1")
    monkeypatch.undo()
    assert raced and s3x.read_rows(s3_server, bucket, key) == theirs  # not overwritten by the run
    s3x.sweep(settings, ENTRIES, "r2")
    assert s3x.read_rows(s3_server, bucket, key) == theirs[1:]


def test_s3_crash_after_the_puts_is_recovered_by_the_next_run(s3_server, tmp_path):
    """A run killed after replacing objects and before recording them (versioned bucket): the replaced
    objects are already the cleaned ones; the next run recognises its own writes, deletes the versions
    they superseded (which hold the purged rows) and records the state."""
    bucket, settings = make_lake(s3_server, tmp_path, versioned=True)

    def crash():
        raise KeyboardInterrupt("killed between write and publish")

    with pytest.raises(KeyboardInterrupt):
        s3x.sweep(settings, ENTRIES, "r1", after_write=crash)
    assert any(GONE in s3x.text_of(b) for b in s3x.version_bodies(s3_server, bucket).values())  # known to work
    _, kept_e = expected()
    assert sort_rows(glob_rows(s3_server, bucket)) == sort_rows(kept_e)  # readers already see cleaned objects
    s3x.sweep(settings, ENTRIES, "r2")
    for (key, _), body in s3x.version_bodies(s3_server, bucket).items():
        assert GONE not in s3x.text_of(body), key
    keys = [k for k, _ in s3x.every_version(s3_server, bucket)]
    assert len(keys) == len(set(keys)) and "lake/events/_gdpr_sweep_state.json" in keys
    before = s3x.every_version(s3_server, bucket)
    s3x.sweep(settings, ENTRIES, "r3")
    assert s3x.every_version(s3_server, bucket) == before


def test_s3_untouched_object_changed_during_the_run_stops_it(s3_server, tmp_path):
    bucket, settings = make_lake(s3_server, tmp_path)
    key = "lake/events/date=2026-12-03/part-0.parquet"  # no rows to drop: matched, not rewritten
    theirs = [make_event(email=GONE)]
    with pytest.raises(objectstore.Changed, match="date=2026-12-03/part-0.parquet: changed"):
        s3x.sweep(settings, ENTRIES, "r1", after_match=lambda: s3x.put(s3_server, bucket, key, theirs, EVENT_SCHEMA))
    assert s3x.read_rows(s3_server, bucket, key) == theirs
    s3x.sweep(settings, ENTRIES, "r2")  # the next run matches the new bytes
    assert s3x.read_rows(s3_server, bucket, key) == []


def test_s3_versioned_bucket_keeps_no_purged_bytes(s3_server, tmp_path):
    bucket, settings = make_lake(s3_server, tmp_path, versioned=True)
    # History from before the sweep: an older version of a file that gets replaced.
    s3x.put(s3_server, bucket, "lake/events/date=2026-12-01/part-0.parquet", EVENTS["date=2026-12-01/part-0.parquet"],
            EVENT_SCHEMA)
    s3x.sweep(settings, ENTRIES, "r1")
    for (key, _), body in s3x.version_bodies(s3_server, bucket).items():
        assert GONE not in s3x.text_of(body), key
    # Exactly one version per key remains.
    keys = [k for k, _ in s3x.every_version(s3_server, bucket)]
    assert len(keys) == len(set(keys))


def test_s3_raw_source_prefix_is_taken_in_copied_and_deleted_when_unchanged(s3_server, tmp_path):
    """Issue 16: a raw `source` on S3 was refused."""
    bucket, settings = make_lake(s3_server, tmp_path, events_source="raw/events", delete_raw=True, events=False)
    for rel, rows in EVENTS.items():
        s3x.put(s3_server, bucket, f"raw/events/{rel}", rows, EVENT_SCHEMA)
    late = "raw/events/date=2026-12-03/part-0.parquet"
    replaced = [make_event(email="again@example.com")]

    def replace_raw():  # after publishing, before raw deletion: this snapshot must survive
        s3x.put(s3_server, bucket, late, replaced, EVENT_SCHEMA)

    _, _, deleted = s3x.sweep(settings, ENTRIES, "r1", after_publish=replace_raw)
    _, kept_e = expected()
    assert sort_rows(glob_rows(s3_server, bucket)) == sort_rows(kept_e)
    assert sorted(deleted) == [f"s3://{bucket}/raw/events/date=2026-12-0{i}/part-0.parquet" for i in (1, 2)]
    assert s3x.read_rows(s3_server, bucket, late) == replaced
    # The next run takes the changed snapshot in, replaces the dataset object and deletes the snapshot.
    _, _, deleted = s3x.sweep(settings, ENTRIES, "r2")
    assert deleted == [f"s3://{bucket}/{late}"]
    assert s3x.read_rows(s3_server, bucket, "lake/events/date=2026-12-03/part-0.parquet") == replaced
    keys = {k for k, _ in s3x.every_version(s3_server, bucket)}
    assert not any(k.startswith("raw/") for k in keys)


def test_s3_raw_source_kept_is_not_taken_in_again(s3_server, tmp_path):
    bucket, settings = make_lake(s3_server, tmp_path, events_source="raw/events", delete_raw=False, events=False)
    for rel, rows in EVENTS.items():
        s3x.put(s3_server, bucket, f"raw/events/{rel}", rows, EVENT_SCHEMA)
    s3x.sweep(settings, ENTRIES, "r1")
    before = s3x.every_version(s3_server, bucket)
    _, _, deleted = s3x.sweep(settings, ENTRIES, "r2")
    assert deleted == [] and s3x.every_version(s3_server, bucket) == before
    # Raw snapshots are copied, not moved: they are still there, unchanged.
    assert s3x.read_rows(s3_server, bucket, "raw/events/date=2026-12-01/part-0.parquet") == \
        EVENTS["date=2026-12-01/part-0.parquet"]


def test_s3_dataset_in_the_old_layout_moves_back_to_plain_keys(s3_server, tmp_path):
    """Issue 16: datasets written by the layout of 23a9caf (`_gdpr_sweep_versions/`, `_gdpr_sweep_current.json`)."""
    bucket, settings = make_lake(s3_server, tmp_path, versioned=True, events=False)
    c = s3x.client(s3_server)
    root, version = "lake/events", "lake/events/_gdpr_sweep_versions/20261205T023000000000Z"
    files = {}
    for rel, rows in EVENTS.items():  # the old layout: every file inside the current version, no plain keys
        body = s3x.parquet_bytes(rows, EVENT_SCHEMA)
        c.put_object(Bucket=bucket, Key=f"{version}/{rel}", Body=body)
        import hashlib
        files[rel] = {"url": f"s3://{bucket}/{version}/{rel}", "rows": len(rows),
                      "sha256": hashlib.sha256(body).hexdigest()}
    manifest = {"manifest_version": 1, "dataset": "events", "run_id": "20261205T023000000000Z",
                "version": f"s3://{bucket}/{version}", "blacklist_version": 1, "files": files}
    c.put_object(Bucket=bucket, Key=f"{version}/_gdpr_sweep_manifest.json", Body=json.dumps(manifest).encode())
    c.put_object(Bucket=bucket, Key=f"{root}/_gdpr_sweep_current.json", Body=json.dumps(manifest).encode())
    c.put_object(Bucket=bucket, Key=f"{root}/_gdpr_sweep_versions/crashed/x.parquet", Body=b"orphan")
    # An object put at a plain key after that sweep is newer than the version's copy: it wins.
    newer = [make_event(email="newer@example.com")]
    s3x.put(s3_server, bucket, f"{root}/date=2026-12-03/part-0.parquet", newer, EVENT_SCHEMA)

    s3x.sweep(settings, ENTRIES, "r1")
    keys = sorted({k for k, _ in s3x.every_version(s3_server, bucket) if k.startswith(root)})
    assert keys == sorted([f"{root}/_gdpr_sweep_state.json", *(f"{root}/{r}" for r in EVENTS)])
    _, kept_e = expected()
    want = [r for r in kept_e if r not in EVENTS["date=2026-12-03/part-0.parquet"]] + newer
    assert sort_rows(glob_rows(s3_server, bucket)) == sort_rows(want)
    for (key, _), body in s3x.version_bodies(s3_server, bucket).items():
        assert GONE not in s3x.text_of(body), key


def test_s3_untouched_known_object_changed_during_the_run_stops_it(s3_server, tmp_path):
    bucket, settings = make_lake(s3_server, tmp_path)
    s3x.sweep(settings, ENTRIES, "r1")  # the state now knows every object (rows, SHA-256): nothing is read
    key = "lake/events/date=2026-12-03/part-0.parquet"
    theirs = [make_event(email=GONE)]
    with pytest.raises(objectstore.Changed, match="changed during the run"):
        s3x.sweep(settings, [*ENTRIES, entry(email="new@example.com")], "r2",
                  after_match=lambda: s3x.put(s3_server, bucket, key, theirs, EVENT_SCHEMA))
    assert s3x.read_rows(s3_server, bucket, key) == theirs
    s3x.sweep(settings, ENTRIES, "r3")
    assert s3x.read_rows(s3_server, bucket, key) == []


def test_s3_sweep_flow_purges_and_reports_to_s3(prefect_harness, s3_server, tmp_path):
    from flows.sweep import gdpr_sweep
    from pipelines.config.settings import load_settings
    from pipelines.registry.registry import Registry

    bucket, _ = make_lake(s3_server, tmp_path)
    fs = objectstore.filesystem(s3_server)
    write_lake_config(tmp_path, profiles(f"s3://{bucket}/lake/profiles"), events(f"s3://{bucket}/lake/events"),
                      sweep={"report_url": f"s3://{bucket}/reports"}, s3=s3_table(s3_server.endpoint_url))
    settings = load_settings(tmp_path / "gdpr-sweep.toml")
    Registry(settings.blacklist_db).add(email=GONE)
    report_path = gdpr_sweep(config=str(settings.config_path))
    report = json.loads(open(report_path).read())

    assert report["verification"]["ok"] and report["verification"]["matches_found"] == 0
    by_name = {d["name"]: d for d in report["datasets"]}
    assert by_name["profiles"]["rows_removed"] == 1 and by_name["events"]["rows_removed"] == 2  # email + linked dev-g
    for d in report["datasets"]:
        assert d["rows_in"] == d["rows_out"] + d["rows_removed"]
    rows = glob_rows(s3_server, bucket)
    assert len(rows) == sum(map(len, EVENTS.values())) - 2
    assert GONE not in json.dumps(rows, default=str).lower()
    run_id = report["run"]["run_id"]
    uploaded = fs.find(f"{bucket}/reports/{run_id}")
    assert f"{bucket}/reports/{run_id}/report.json" in uploaded
    assert json.loads(fs.cat_file(f"{bucket}/reports/{run_id}/report.json")) == report
    assert all(GONE not in fs.cat_file(k).decode("utf-8", "replace").lower() for k in uploaded)
