"""Delta Lake tables (`format = "delta"`): purge with the table's own delete, vacuum, clean the log.

Real Delta tables written by deltalake on tmp_path; the check searches every file under the table
folder (raw bytes, and decoded values of every Parquet file) for the blacklisted emails.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake

from pipelines.config.settings import DatasetConfig
from pipelines.core.match import connect, entries_table, find_matches
from pipelines.datasets import delta
from pipelines.datasets.sweep import verify_versions
from tests import oracle
from tests.helpers import entry
from tests.support.lake import events, lake_toml, profiles

USER = pa.struct([("Email", pa.string()), ("UserId", pa.string())])
EVENTS = pa.schema([("DeviceId", pa.string()), ("Scope", pa.string()), ("User", USER), ("Amount", pa.int64())])
PROFILES = pa.schema([("Email", pa.string()), ("UserId", pa.string()), ("DeviceIds", pa.list_(pa.string())),
                      ("Scope", pa.string())])
BLACKLISTED = ["aaa-gone@example.com", "zzz-gone@example.com"]  # unscoped: gone from every scope
# scoped@example.com is blacklisted in "shop" only: its rows in other scopes stay, with their statistics.


def event(email=None, user_id=None, device=None, scope=None, amount=1, anonymous=False):
    return {"DeviceId": device, "Scope": scope, "Amount": amount,
            "User": None if anonymous else {"Email": email, "UserId": user_id}}


def profile(email=None, user_id=None, devices=(), scope=None):
    return {"Email": email, "UserId": user_id, "DeviceIds": list(devices), "Scope": scope}


# Two appends per table, so matches are spread over files and the blacklisted emails are the
# min / max statistics of some files (the leak docs/environment.md describes).
EVENT_BATCHES = [
    [event("AAA-gone@Example.com", device="dev-1"), event("keep@example.com", device="dev-2"),
     event(None, device="dev-9"), event("keep2@example.com", scope="shop"), event(anonymous=True, device="dev-3")],
    [event("zzz-gone@example.com ", scope="shop", amount=5), event("scoped@example.com", scope="Shop"),
     event("scoped@example.com", scope="other"), event("x@example.com", user_id="u-9"),
     event("keep@example.com", device="dev-2", amount=7), event(None, device="dev-1", scope="other")],
]
PROFILE_BATCHES = [
    [profile("zzz-gone@example.com", devices=["dev-9"]), profile("keep@example.com", devices=["dev-2"])],
    [profile("a@example.com", user_id="u-9", devices=["dev-3"], scope="shop"), profile(None, "u-1")],
]


def logical_event(row):
    user = row["User"] or {}
    return {"email": user.get("Email"), "user_id": user.get("UserId"), "scope": row["Scope"],
            "device_id": row["DeviceId"]}


def logical_profile(row):
    return {"email": row["Email"], "user_id": row["UserId"], "scope": row["Scope"], "device_ids": row["DeviceIds"]}


def make_table(path: Path, batches, schema):
    for i, rows in enumerate(batches):
        write_deltalake(str(path), pa.Table.from_pylist(rows, schema=schema), mode="append" if i else "error")


def files_containing(folder: Path, needles) -> list[str]:
    """Every file under `folder` whose bytes, or (for Parquet) decoded values, contain a needle."""
    hits = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        texts = [data.decode("utf-8", "replace").lower()]
        if data[:4] == b"PAR1":
            table = pq.read_table(path)
            texts.append(str(table.to_pylist()).lower())
            meta = pq.ParquetFile(path).metadata
            texts.append(str([meta.row_group(g).column(c).statistics for g in range(meta.num_row_groups)
                              for c in range(meta.num_columns)]).lower())
        if any(n in t for t in texts for n in needles):
            hits.append(str(path.relative_to(folder)))
    return hits


@pytest.fixture
def tables(tmp_path):
    events = DatasetConfig(name="events", kind="events", path=tmp_path / "events", format="delta",
                           email="User.Email", user_id="User.UserId", device_id="DeviceId", scope="Scope")
    profiles = DatasetConfig(name="profiles", kind="profiles", path=tmp_path / "profiles", format="delta",
                             email="Email", user_id="UserId", device_ids="DeviceIds", scope="Scope")
    make_table(events.path, EVENT_BATCHES, EVENTS)
    make_table(profiles.path, PROFILE_BATCHES, PROFILES)
    return profiles, events


def test_delta_purge_leaves_no_match_and_no_email_anywhere(tables):
    profiles, events = tables
    entries = [entry(email="aaa-gone@example.com"), entry(email="scoped@example.com", scope="shop"),
               entry(email="zzz-gone@example.com"), entry(user_id="u-9")]
    assert files_containing(events.path, BLACKLISTED), "the fixture must put emails into the log statistics"

    plans = [delta.plan_table(c) for c in (profiles, events)]
    table = entries_table(entries)
    with connect() as con:
        matches = find_matches(con, table, [p.as_input() for p in plans])
        outcomes = [delta.purge_table(con, p, matches.datasets[p.config.name], "r1", 1) for p in plans]
        verification = verify_versions(con, table, [delta.verifiable(o) for o in outcomes], [profiles, events],
                                       matches, True)
    assert verification.ok and verification.matches == 0
    for c, o in zip((profiles, events), outcomes, strict=True):
        assert o.rows_in == o.rows_out + o.rows_removed
        delta.finish_purge(c, o, [e.email for e in entries if e.email and e.scope is None])

    # What survives is exactly what the independent oracle keeps, in every column.
    all_events = [r for b in EVENT_BATCHES for r in b]
    all_profiles = [r for b in PROFILE_BATCHES for r in b]
    oracle_entries = [{"email": e.email, "user_id": e.user_id, "scope": e.scope} for e in entries]
    kept_p, kept_e = oracle.expected_kept(oracle_entries, [logical_profile(r) for r in all_profiles],
                                          [logical_event(r) for r in all_events])
    key = lambda r: repr(sorted(r.items()))  # noqa: E731
    got_e = DeltaTable(str(events.path)).to_pyarrow_table()
    got_p = DeltaTable(str(profiles.path)).to_pyarrow_table()
    assert got_e.schema == EVENTS and got_p.schema == PROFILES
    assert sorted(map(key, got_e.to_pylist())) == sorted(key(all_events[i]) for i in kept_e)
    assert sorted(map(key, got_p.to_pylist())) == sorted(key(all_profiles[i]) for i in kept_p)
    assert outcomes[1].rows_removed == len(all_events) - len(kept_e) > 0

    # No blacklisted email anywhere under either table folder: data files, log, checkpoint.
    assert files_containing(events.path, BLACKLISTED) == []
    assert files_containing(profiles.path, BLACKLISTED) == []
    assert (events.path / "_delta_log" / "_last_checkpoint").exists()

    # A second sweep finds nothing and makes no new commit.
    version = DeltaTable(str(events.path)).version()
    plans = [delta.plan_table(c) for c in (profiles, events)]
    with connect() as con:
        again = find_matches(con, table, [p.as_input() for p in plans])
        assert again.rows_removed == 0
        outcome = delta.purge_table(con, plans[1], again.datasets["events"], "r2", 1)
    delta.finish_purge(events, outcome, BLACKLISTED)
    assert outcome.rows_removed == 0 and DeltaTable(str(events.path)).version() == version


def test_partition_on_identity_column_is_refused(tmp_path):
    path = tmp_path / "t"
    write_deltalake(str(path), pa.Table.from_pylist([profile("a@example.com", scope="s")], schema=PROFILES),
                    partition_by=["Scope"])
    config = DatasetConfig(name="p", kind="profiles", path=path, format="delta", email="Email", scope="Scope")
    with pytest.raises(Exception, match="partition column"):
        delta.plan_table(config)


FLOW_CONFIG = lake_toml(profiles("profiles", format="delta", email="Email"),
                        events("events", format="delta"))


def test_sweep_flow_purges_delta_tables(prefect_harness, tables, tmp_path):
    import json

    from flows.sweep import gdpr_sweep
    from pipelines.config.settings import load_settings
    from pipelines.registry.registry import Registry

    (tmp_path / "gdpr-sweep.toml").write_text(FLOW_CONFIG)
    settings = load_settings(tmp_path / "gdpr-sweep.toml")
    assert [d.format for d in settings.datasets] == ["delta", "delta"]
    registry = Registry(settings.blacklist_db)
    for email in BLACKLISTED:
        registry.add(email=email)
    report = json.loads(open(gdpr_sweep(config=str(settings.config_path))).read())

    assert report["verification"]["ok"] and report["totals"]["rows_removed"] > 0
    for d in report["datasets"]:
        assert d["rows_in"] == d["rows_out"] + d["rows_removed"]
    for c in tables:
        assert files_containing(c.path, BLACKLISTED) == []
    # Idempotent: the second run removes nothing and adds no Delta commit.
    version = DeltaTable(str(tables[1].path)).version()
    again = json.loads(open(gdpr_sweep(config=str(settings.config_path))).read())
    assert again["totals"]["rows_removed"] == 0 and DeltaTable(str(tables[1].path)).version() == version


def test_delta_table_on_s3(s3_server, tmp_path):
    """A Delta table on object storage, through the same per-partition steps the flow maps."""
    import uuid

    from pipelines.config.settings import Settings
    from pipelines.datasets import objectstore, scaleout

    fs = objectstore.filesystem(s3_server)
    bucket = f"delta-{uuid.uuid4().hex[:8]}"
    fs.call_s3("create_bucket", Bucket=bucket)
    url = f"s3://{bucket}/lake/events"
    options = objectstore.storage_options(s3_server)
    for i, rows in enumerate(EVENT_BATCHES):
        write_deltalake(url, pa.Table.from_pylist(rows, schema=EVENTS), mode="append" if i else "error",
                        storage_options=options)
    config = DatasetConfig(name="events", kind="events", path=Path(url), url=url, format="delta",
                           email="User.Email", user_id="User.UserId", device_id="DeviceId", scope="Scope")
    settings = Settings(config_path=tmp_path / "x.toml", work_dir=tmp_path / "work", report_dir=tmp_path / "r",
                        blacklist_db=tmp_path / "b.db", s3=s3_server, datasets=(config,))
    entries = entries_table([entry(email="aaa-gone@example.com"), entry(email="zzz-gone@example.com")])

    plan = scaleout.plan(settings, config)
    parts = scaleout.partitions([plan])
    links = [scaleout.link_partition(settings, entries, plan, x.relpaths) for x in parts]
    linked = scaleout.union_linked(x.linked for x in links)
    matches = scaleout.merge_matches([plan], parts, [scaleout.match_partition(settings, entries, plan, x.relpaths,
                                                                              linked, own=own)
                                                     for x, own in zip(parts, links, strict=True)], linked)
    outcome = scaleout.purge_table(settings, plan, matches.datasets["events"], "r1", 1)
    checks = [scaleout.verify_partition(settings, entries, piece, linked)
              for piece in scaleout.verification_slices([outcome])]
    assert scaleout.merge_verifications(checks).ok and outcome.rows_removed == 3  # two emails, one linked device
    scaleout.publish(settings, plan, outcome, BLACKLISTED)

    left = DeltaTable(url, storage_options=options).to_pyarrow_table().to_pylist()
    assert len(left) == sum(map(len, EVENT_BATCHES)) - 3
    for key in fs.find(f"{bucket}/lake/events"):
        body = fs.cat_file(key)
        text = (str(pq.read_table(pa.BufferReader(body)).to_pylist()) if body[:4] == b"PAR1"
                else body.decode("utf-8", "replace")).lower()
        assert not any(n in text for n in BLACKLISTED), key
