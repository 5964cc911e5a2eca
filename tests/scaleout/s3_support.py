"""Helpers for the S3 tests: a bucket on moto's server, Parquet objects, and one sweep driven through
`pipelines.datasets.scaleout`'s steps exactly as flows/sweep.py wires them (without Prefect), with hooks between
the steps where a test acts as a concurrent writer or a reader.

Only scaleout's step functions are called, so the same tests run against older layouts of the code
(they must fail on commit 23a9caf for the findings they reproduce).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.config.settings import load_settings
from pipelines.core.match import entries_table
from pipelines.datasets import objectstore, scaleout
from tests.support.lake import events, profiles, s3_table, write_lake_config


def client(s3):
    return boto3.client("s3", endpoint_url=s3.endpoint_url, region_name=s3.region,
                        aws_access_key_id=s3.access_key_id, aws_secret_access_key=s3.secret_access_key)


def new_bucket(s3, versioned: bool = False) -> str:
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    c = client(s3)
    c.create_bucket(Bucket=bucket)
    if versioned:
        c.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return bucket


def parquet_bytes(rows, schema) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buf)
    return buf.getvalue()


def put(s3, bucket: str, key: str, rows, schema) -> str:
    """Write a Parquet object as another tool would (no sweep marker); return its ETag."""
    return client(s3).put_object(Bucket=bucket, Key=key, Body=parquet_bytes(rows, schema))["ETag"]


def read_rows(s3, bucket: str, key: str) -> list[dict]:
    return pq.read_table(io.BytesIO(client(s3).get_object(Bucket=bucket, Key=key)["Body"].read())).to_pylist()


def settings_for(tmp_path: Path, s3, bucket: str, events_source: str | None = None, delete_raw: bool = False):
    source = f"s3://{bucket}/{events_source}" if events_source else None
    path = write_lake_config(tmp_path, profiles(f"s3://{bucket}/lake/profiles"),
                             events(f"s3://{bucket}/lake/events", source), sweep={"delete_raw": delete_raw},
                             s3=s3_table(s3.endpoint_url))
    return load_settings(path)


def every_version(s3, bucket: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(key, version id) -> (ETag, LastModified) of every object version and delete marker."""
    c = client(s3)
    found, kwargs = {}, {"Bucket": bucket}
    while True:
        page = c.list_object_versions(**kwargs)
        for v in page.get("Versions", []):
            found[(v["Key"], v["VersionId"])] = (v["ETag"], v["LastModified"].isoformat())
        for m in page.get("DeleteMarkers", []):
            found[(m["Key"], m["VersionId"])] = ("delete-marker", m["LastModified"].isoformat())
        if not page.get("IsTruncated"):
            return found
        kwargs.update(KeyMarker=page["NextKeyMarker"], VersionIdMarker=page["NextVersionIdMarker"])


def version_bodies(s3, bucket: str) -> dict[tuple[str, str], bytes]:
    c = client(s3)
    return {(k, v): c.get_object(Bucket=bucket, Key=k, VersionId=v)["Body"].read()
            for (k, v), (etag, _) in every_version(s3, bucket).items() if etag != "delete-marker"}


def text_of(body: bytes) -> str:
    """An object's content as searchable text: Parquet decoded (pages are compressed), else as bytes."""
    if body[:4] == b"PAR1":
        return str(pq.read_table(io.BytesIO(body)).to_pylist()).lower()
    return body.decode("utf-8", "replace").lower()


Hook = Callable[[], None]


def sweep(settings, entries, run_id: str, after_match: Hook | None = None, after_write: Hook | None = None,
          after_publish: Hook | None = None, version: int = 1):
    """One sweep through scaleout's steps, as flows/sweep.py wires them; return (outcomes, verification,
    raw deleted)."""
    from pipelines.datasets.sweep import match_fingerprint

    fingerprint = match_fingerprint(settings.datasets, settings.link_devices_through_events)
    plans = [scaleout.plan(settings, ds, fingerprint) for ds in settings.datasets]
    table = entries_table(entries)
    parts = scaleout.partitions(plans, 1)
    by_name = {p.config.name: p for p in plans}
    links = [scaleout.link_partition(settings, table, by_name[x.dataset], x.relpaths, version) for x in parts]
    linked = scaleout.union_linked(x.linked for x in links)
    per_part = [scaleout.match_partition(settings, table, by_name[x.dataset], x.relpaths, linked, version, own)
                for x, own in zip(parts, links, strict=True)]
    matches = scaleout.merge_matches(plans, parts, per_part, linked)
    if after_match:
        after_match()
    outcomes = []
    for p in plans:
        m = matches.datasets[p.config.name]
        scaleout.start_version(settings, p, run_id)
        rels = [f.relpath for f in p.files]
        files = scaleout.write_partition(settings, p, rels, {r: m.drops[r] for r in rels if r in m.drops}, run_id)
        outcomes.append(scaleout.finish_dataset(settings, p, files, m, run_id, version, fingerprint))
    if after_write:
        after_write()
    pieces = scaleout.verification_slices(outcomes, 1)
    verification = scaleout.merge_verifications(
        [scaleout.verify_partition(settings, table, piece, matches.linked_devices) for piece in pieces])
    assert verification.ok, verification
    deleted = []
    for p, o in zip(plans, outcomes, strict=True):
        scaleout.publish(settings, p, o, [e.email for e in entries if e.email and e.scope is None])
    if after_publish:
        after_publish()
    for p, o in zip(plans, outcomes, strict=True):
        if p.config.delete_raw if p.config.delete_raw is not None else settings.delete_raw:
            deleted += _delete_raw(settings, p, o)
    return outcomes, verification, deleted


def _delete_raw(settings, plan, outcome):
    if hasattr(scaleout, "delete_consumed_raw"):
        return scaleout.delete_consumed_raw(settings, plan, outcome)
    from pipelines.datasets.sweep import delete_consumed_raw
    return delete_consumed_raw(plan)


def fs_for(s3):
    return objectstore.filesystem(s3)
