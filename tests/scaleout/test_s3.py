"""Datasets on S3-compatible storage: a real moto S3 server on 127.0.0.1, started by the fixture.

The sweep reads plain Parquet objects, purges, writes a new version under its own prefix, switches the
manifest and deletes every superseded object and object version. A run stopped before the switch
leaves readers on the old complete version.
"""

from __future__ import annotations

import io
import json
import uuid

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import objectstore
from pipelines.match import connect, entries_table, find_matches
from pipelines.settings import DatasetConfig
from pipelines.sweep import verify_versions
from tests import oracle
from tests.helpers import (
    EVENT_SCHEMA,
    PROFILE_SCHEMA,
    entry,
    events_config,
    logical_event,
    logical_profile,
    make_event,
    make_profile,
    profiles_config,
)

GONE = "gone@example.com"
PROFILES = [make_profile(GONE, device_ids=["dev-g"]), make_profile("keep@example.com", device_ids=["dev-k"]),
            make_profile(None, user_id="u-7", scope="shop")]
EVENTS = [
    [make_event(email="Gone@Example.com"), make_event(email="keep@example.com", device_id="dev-k")],
    [make_event(device_id="dev-g", scope="x"), make_event(user_id="u-7", scope="shop"),
     make_event(user_id="u-7", scope="other"), make_event(anonymous=True, device_id="dev-z")],
]


def put_parquet(fs, url: str, rows, schema) -> None:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buf)
    fs.pipe_file(objectstore.Url(url).key, buf.getvalue())


def read_current(fs, url: str) -> pa.Table:
    return pa.concat_tables([pq.read_table(io.BytesIO(fs.cat_file(objectstore.Url(u).key)))
                             for u in objectstore.current_files(fs, url)])


@pytest.fixture
def lake(s3_server, tmp_path):
    """A versioned bucket with a profiles dataset (1 file) and an events dataset (2 files)."""
    fs = objectstore.filesystem(s3_server)
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    fs.call_s3("create_bucket", Bucket=bucket)
    fs.call_s3("put_bucket_versioning", Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    root = f"s3://{bucket}/gdpr"
    put_parquet(fs, f"{root}/profiles/part-0.parquet", PROFILES, PROFILE_SCHEMA)
    for i, rows in enumerate(EVENTS):
        put_parquet(fs, f"{root}/events/day={i}/part-0.parquet", rows, EVENT_SCHEMA)
    configs = [profiles_config(tmp_path, path=None, source=None, url=f"{root}/profiles"),
               events_config(tmp_path, path=None, source=None, url=f"{root}/events")]
    configs = [DatasetConfig(**{**c.__dict__, "path": c.url}) for c in configs]
    return fs, bucket, configs


def run(fs, s3, configs, entries, run_id, work_dir, publish=True):
    """One sweep over object-store datasets, as the flow wires it."""
    plans = [objectstore.plan_dataset(c, fs) for c in configs]
    table = entries_table(entries)
    with connect() as con:
        objectstore.register(con, s3)
        matches = find_matches(con, table, [p.as_input() for p in plans])
        outcomes = [objectstore.write_version(fs, p, matches.datasets[p.config.name], run_id, 1, work_dir)
                    for p in plans]
        verification = verify_versions(con, table, outcomes, configs, matches, True)
    assert verification.ok
    if publish:
        for c, o in zip(configs, outcomes, strict=True):
            objectstore.publish_version(fs, c, o)
    return outcomes


def every_object_version(s3, bucket):
    """The bytes of every object version in the bucket (current and old)."""
    client = boto3.client("s3", endpoint_url=s3.endpoint_url, region_name=s3.region,
                          aws_access_key_id=s3.access_key_id, aws_secret_access_key=s3.secret_access_key)
    page = client.list_object_versions(Bucket=bucket)
    assert not page.get("IsTruncated")
    return {(v["Key"], v["VersionId"]): client.get_object(Bucket=bucket, Key=v["Key"],
                                                          VersionId=v["VersionId"])["Body"].read()
            for v in page.get("Versions", [])}


def test_s3_sweep_reads_purges_writes_and_leaves_no_old_bytes(lake, s3_server, tmp_path):
    fs, bucket, (profiles, events) = lake
    entries = [entry(email=GONE), entry(user_id="u-7", scope="shop")]
    outcomes = run(fs, s3_server, [profiles, events], entries, "r1", tmp_path / "work")

    all_events = [r for b in EVENTS for r in b]
    kept_p, kept_e = oracle.expected_kept(
        [{"email": e.email, "user_id": e.user_id, "scope": e.scope} for e in entries],
        [logical_profile(r) for r in PROFILES], [logical_event(r) for r in all_events])
    got_p, got_e = read_current(fs, profiles.url), read_current(fs, events.url)
    assert got_p.schema == PROFILE_SCHEMA and got_e.schema == EVENT_SCHEMA
    assert got_p.to_pylist() == [PROFILES[i] for i in kept_p]
    assert got_e.to_pylist() == [all_events[i] for i in kept_e]
    for o in outcomes:
        assert o.rows_in == o.rows_out + o.rows_removed
    assert sum(o.rows_removed for o in outcomes) == len(PROFILES) + len(all_events) - len(kept_p) - len(kept_e)

    # Only the manifest and the current version remain, and no object version anywhere holds the email.
    manifest = json.loads(fs.cat_file(f"{bucket}/gdpr/events/{objectstore.CURRENT}"))
    assert manifest["run_id"] == "r1" and sorted(manifest["files"]) == ["day=0/part-0.parquet", "day=1/part-0.parquet"]
    keys = sorted(fs.find(f"{bucket}/gdpr/events"))
    assert keys == sorted([f"{bucket}/gdpr/events/{objectstore.CURRENT}",
                           f"{bucket}/gdpr/events/{objectstore.VERSIONS}/r1/_gdpr_sweep_manifest.json"]
                          + [objectstore.Url(f["url"]).key for f in manifest["files"].values()])
    for (key, _), body in every_object_version(s3_server, bucket).items():
        text = (str(pq.read_table(io.BytesIO(body)).to_pylist()) if body[:4] == b"PAR1" else body.decode()).lower()
        assert GONE not in text, key

    # Idempotent: a second sweep removes nothing.
    again = run(fs, s3_server, [profiles, events], entries, "r2", tmp_path / "work")
    assert sum(o.rows_removed for o in again) == 0
    assert read_current(fs, events.url).to_pylist() == got_e.to_pylist()


def test_s3_run_interrupted_before_switch_leaves_complete_version(lake, s3_server, tmp_path):
    fs, bucket, (profiles, events) = lake
    run(fs, s3_server, [profiles, events], [entry(email=GONE)], "r1", tmp_path / "work")
    before = read_current(fs, events.url)
    files_before = objectstore.current_files(fs, events.url)

    # Run 2 writes its complete new version but stops before the switch (a crash, a kill).
    later = [entry(email=GONE), entry(email="keep@example.com")]
    run(fs, s3_server, [profiles, events], later, "r2", tmp_path / "work", publish=False)
    assert fs.exists(f"{bucket}/gdpr/events/{objectstore.VERSIONS}/r2/_gdpr_sweep_manifest.json")
    assert objectstore.current_files(fs, events.url) == files_before
    assert all(fs.exists(objectstore.Url(u).key) for u in files_before)
    assert read_current(fs, events.url).to_pylist() == before.to_pylist()

    # The next complete run switches and removes the orphaned version.
    run(fs, s3_server, [profiles, events], later, "r3", tmp_path / "work")
    assert not fs.exists(f"{bucket}/gdpr/events/{objectstore.VERSIONS}/r2")
    emails = {(r["User"] or {}).get("Email") for r in read_current(fs, events.url).to_pylist()}
    assert "keep@example.com" not in emails and len(read_current(fs, events.url)) < len(before)


FLOW_CONFIG = """
[sweep]
work_dir = "work"
report_dir = "reports"
blacklist_db = "blacklist.db"
report_url = "s3://{bucket}/reports"

[s3]
endpoint_url = "{endpoint}"
region = "us-east-1"
access_key_id = "testing"
secret_access_key = "testing"

[[datasets]]
name = "profiles"
kind = "profiles"
path = "s3://{bucket}/gdpr/profiles"
email = "Info.Email"
user_id = "UserId"
device_ids = "DeviceIds"
scope = "Scope"

[[datasets]]
name = "events"
kind = "events"
path = "s3://{bucket}/gdpr/events"
email = "User.Email"
user_id = "User.UserId"
device_id = "DeviceId"
scope = "Scope"
"""


def test_s3_sweep_flow_purges_and_reports_to_s3(prefect_harness, lake, s3_server, tmp_path):
    from flows.sweep import gdpr_sweep
    from gdpr_sweep.registry import Registry
    from pipelines.settings import load_settings

    fs, bucket, (profiles, events) = lake
    (tmp_path / "gdpr-sweep.toml").write_text(FLOW_CONFIG.format(bucket=bucket, endpoint=s3_server.endpoint_url))
    settings = load_settings(tmp_path / "gdpr-sweep.toml")
    Registry(settings.blacklist_db).add(email=GONE)
    report_path = gdpr_sweep(config=str(settings.config_path))
    report = json.loads(open(report_path).read())

    assert report["verification"]["ok"] and report["verification"]["matches_found"] == 0
    by_name = {d["name"]: d for d in report["datasets"]}
    assert by_name["profiles"]["rows_removed"] == 1 and by_name["events"]["rows_removed"] == 2  # email + linked dev-g
    for d in report["datasets"]:
        assert d["rows_in"] == d["rows_out"] + d["rows_removed"]
    emails = {(r["User"] or {}).get("Email") for r in read_current(fs, events.url).to_pylist()}
    assert "Gone@Example.com" not in emails and len(read_current(fs, events.url)) == len(EVENTS[0] + EVENTS[1]) - 2
    run_id = report["run"]["run_id"]
    uploaded = fs.find(f"{bucket}/reports/{run_id}")
    assert f"{bucket}/reports/{run_id}/report.json" in uploaded
    assert json.loads(fs.cat_file(f"{bucket}/reports/{run_id}/report.json")) == report
    assert all(GONE not in fs.cat_file(k).decode("utf-8", "replace").lower() for k in uploaded)
