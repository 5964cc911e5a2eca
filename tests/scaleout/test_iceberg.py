"""Iceberg tables (`format = "iceberg"`): purge by a copy-on-write commit, expire, delete orphans, search.

Real Iceberg tables written by pyiceberg (SQL catalog on a SQLite file) on tmp_path and on moto's S3
server. The tests' own search (`files_holding`) shares no code with pipelines/datasets/iceberg.py: it
decodes every file under the table location (Parquet values, Avro records with their byte fields,
JSON) and looks for the emails as substrings. The emails are short (at most 16 characters), so column
bounds in manifests hold them whole.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.config.iceberg import IcebergSettings, catalog_properties
from pipelines.config.settings import DatasetConfig
from pipelines.core.match import connect, entries_table, find_matches
from pipelines.datasets import iceberg
from pipelines.datasets.iceberg_files import strip
from pipelines.datasets.iceberg_search import Needles, search
from pipelines.datasets.sweep import verify_versions
from tests import oracle
from tests.helpers import entry
from tests.support.lake import events, lake_toml, profiles

USER = pa.struct([("Email", pa.string()), ("UserId", pa.string())])
EVENTS = pa.schema([("DeviceId", pa.string()), ("Scope", pa.string()), ("User", USER), ("Amount", pa.int64()),
                    ("At", pa.timestamp("us", tz="UTC"))])
PROFILES = pa.schema([("Email", pa.string()), ("UserId", pa.string()), ("DeviceIds", pa.list_(pa.string())),
                      ("Scope", pa.string())])
BLACKLISTED = ["aa-gone@ex.com", "zz-gone@ex.com"]  # unscoped: gone from every scope
# sc@ex.com is blacklisted in "shop" only: its rows in other scopes stay, with their bounds.


def event(email=None, user_id=None, device=None, scope=None, amount=1, anonymous=False):
    return {"DeviceId": device, "Scope": scope, "Amount": amount, "At": None,
            "User": None if anonymous else {"Email": email, "UserId": user_id}}


def profile(email=None, user_id=None, devices=(), scope=None):
    return {"Email": email, "UserId": user_id, "DeviceIds": list(devices), "Scope": scope}


# Two appends per table, so matches are spread over files and the blacklisted emails are the lower /
# upper bounds of some files' Email columns in the manifests.
EVENT_BATCHES = [
    [event("AA-gone@Ex.com", device="dev-1"), event("keep@ex.com", device="dev-2"),
     event(None, device="dev-9"), event("keep2@ex.com", scope="shop"), event(anonymous=True, device="dev-3")],
    [event("zz-gone@ex.com ", scope="shop", amount=5), event("sc@ex.com", scope="Shop"),
     event("sc@ex.com", scope="other"), event("x@ex.com", user_id="u-9"),
     event("keep@ex.com", device="dev-2", amount=7), event(None, device="dev-1", scope="other")],
]
PROFILE_BATCHES = [
    [profile("zz-gone@ex.com", devices=["dev-9"]), profile("keep@ex.com", devices=["dev-2"])],
    [profile("a@ex.com", user_id="u-9", devices=["dev-3"], scope="shop"), profile(None, "u-1")],
]
ENTRIES = [entry(email="aa-gone@ex.com"), entry(email="sc@ex.com", scope="shop"),
           entry(email="zz-gone@ex.com"), entry(user_id="u-9")]


def logical_event(row):
    user = row["User"] or {}
    return {"email": user.get("Email"), "user_id": user.get("UserId"), "scope": row["Scope"],
            "device_id": row["DeviceId"]}


def logical_profile(row):
    return {"email": row["Email"], "user_id": row["UserId"], "scope": row["Scope"], "device_ids": row["DeviceIds"]}


def config_for(name, kind, warehouse, s3_url=None, **columns):
    """`warehouse`: the local folder of the catalog file (and of the tables, without `s3_url`)."""
    url = f"{s3_url}/lake/{name}" if s3_url else None
    settings = IcebergSettings(table=f"lake.{name}", catalog_db=warehouse / "catalog.db")
    return DatasetConfig(name=name, kind=kind, path=Path(url) if url else warehouse / "lake" / name, url=url,
                         format="iceberg", iceberg=settings, **columns)


def events_config(warehouse, s3_url=None):
    return config_for("events", "events", warehouse, s3_url, email="User.Email", user_id="User.UserId",
                      device_id="DeviceId", scope="Scope")


def profiles_config(warehouse, s3_url=None):
    return config_for("profiles", "profiles", warehouse, s3_url, email="Email", user_id="UserId",
                      device_ids="DeviceIds", scope="Scope")


def make_table(config, batches, schema, s3=None):
    from pyiceberg.catalog import load_catalog

    warehouse = config.location.rsplit("/lake/", 1)[0]
    catalog = load_catalog("default", **catalog_properties(config.iceberg, s3),
                           warehouse=warehouse if s3 else Path(warehouse).as_uri())
    if ("lake",) not in catalog.list_namespaces():
        catalog.create_namespace("lake")
    table = catalog.create_table(config.iceberg.table, schema=schema)
    for rows in batches:
        table.append(pa.Table.from_pylist(rows, schema=schema))
    return table


def _texts(value):
    """Every str and bytes leaf of a decoded Avro record (pyiceberg Records, LazyDicts, lists)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            yield v
        elif isinstance(v, bytes):
            yield v.decode("utf-8", "replace")
        elif hasattr(v, "items"):
            stack += [x for kv in v.items() for x in kv]
        elif hasattr(v, "_data"):
            stack += list(v._data)
        elif isinstance(v, list | tuple):
            stack += list(v)


def files_holding(fs, location, needles):
    """Every file under `location` whose decoded content contains a needle (lower-cased substring)."""
    from pyiceberg.avro.file import AvroFile
    from pyiceberg.io.pyarrow import PyArrowFileIO

    hits = []
    for path in sorted(fs.find(location)):
        body = fs.cat_file(path)
        if body[:4] == b"PAR1":
            text = str(pq.read_table(pa.BufferReader(body)).to_pylist())
        elif body[:4] == b"Obj\x01":
            local = Path(os.environ.get("TMPDIR", "/tmp")) / f"avro-{uuid.uuid4().hex}.avro"
            local.write_bytes(body)
            try:
                with AvroFile(PyArrowFileIO().new_input(str(local))) as reader:
                    text = " ".join(t for record in reader for t in _texts(record))
            finally:
                local.unlink()
        elif path.endswith(".json"):
            text = json.dumps(json.loads(body))
        else:
            text = body.decode("utf-8", "replace")
        if any(n in text.lower() for n in needles):
            hits.append(path[len(location) + 1:])
    return hits


def referenced_now(table):
    """The files the table's current metadata references, computed with pyiceberg's own API."""
    files = {table.metadata_location}
    for snapshot in table.metadata.snapshots:
        files.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            files.add(manifest.manifest_path)
            files |= {e.data_file.file_path for e in manifest.fetch_manifest_entry(table.io)}
    return {strip(f) for f in files}


def sweep(configs, entries, s3=None, fs=None):
    """Plan, match, purge, verify and finish each table, as the flow does."""
    import fsspec

    fs = fs or fsspec.filesystem("file")
    plans = [iceberg.plan_table(c, s3) for c in configs]
    table = entries_table(entries)
    with connect() as con:
        if s3 is not None:
            from pipelines.datasets import objectstore
            objectstore.register(con, s3)
        matches = find_matches(con, table, [p.as_input() for p in plans])
        outcomes = [iceberg.purge_table(p, matches.datasets[p.config.name], "r1", s3, fs) for p in plans]
        verification = verify_versions(con, table, [iceberg.verifiable(o) for o in outcomes], list(configs),
                                       matches, True)
    assert verification.ok and verification.matches == 0
    unscoped = [e.email for e in entries if e.email and e.scope is None]
    cleanups = [iceberg.finish_purge(c, o, unscoped, s3, fs) for c, o in zip(configs, outcomes, strict=True)]
    for o in outcomes:
        assert o.rows_in == o.rows_out + o.rows_removed
    return outcomes, cleanups


@pytest.fixture
def tables(tmp_path):
    warehouse = tmp_path / "warehouse"
    warehouse.mkdir()
    profiles, events = profiles_config(warehouse), events_config(warehouse)
    make_table(events, EVENT_BATCHES, EVENTS)
    make_table(profiles, PROFILE_BATCHES, PROFILES)
    return profiles, events


def _location(config, s3=None):
    return strip(iceberg.table_location(iceberg.load_table(config, s3)))


def _check_kept(profiles, events, s3=None):
    """What survives is exactly what the independent oracle keeps, in every column and type."""
    all_events = [r for b in EVENT_BATCHES for r in b]
    all_profiles = [r for b in PROFILE_BATCHES for r in b]
    oracle_entries = [{"email": e.email, "user_id": e.user_id, "scope": e.scope} for e in ENTRIES]
    kept_p, kept_e = oracle.expected_kept(oracle_entries, [logical_profile(r) for r in all_profiles],
                                          [logical_event(r) for r in all_events])
    key = lambda r: repr(sorted(r.items()))  # noqa: E731
    got_e = iceberg.load_table(events, s3).scan().to_arrow()
    got_p = iceberg.load_table(profiles, s3).scan().to_arrow()
    assert got_e.schema.remove_metadata() == EVENTS and got_p.schema.remove_metadata() == PROFILES
    assert sorted(map(key, got_e.to_pylist())) == sorted(key(all_events[i]) for i in kept_e)
    assert sorted(map(key, got_p.to_pylist())) == sorted(key(all_profiles[i]) for i in kept_p)
    return len(all_events) - len(kept_e), len(all_profiles) - len(kept_p)


def test_iceberg_purge_leaves_no_match_no_email_and_no_orphan(tables):
    import fsspec

    profiles, events = tables
    fs = fsspec.filesystem("file")
    schemas = {c.name: iceberg.load_table(c).schema() for c in tables}
    locations = {c.name: _location(c) for c in tables}
    before = {c.name: files_holding(fs, locations[c.name], BLACKLISTED) for c in tables}
    assert any(p.endswith(".parquet") for p in before["events"]), "the data files hold the emails"
    # pyiceberg writes bounds for top-level columns only (docs/environment.md): the profiles' Email
    assert any(p.endswith(".avro") for p in before["profiles"]), "the manifests' bounds hold the emails"
    # the module's own search finds them too, before
    assert search(fs, locations["events"], Needles(BLACKLISTED))

    outcomes, cleanups = sweep(tables, ENTRIES)

    removed_e, removed_p = _check_kept(profiles, events)
    assert outcomes[1].rows_removed == removed_e > 0 and outcomes[0].rows_removed == removed_p > 0
    assert outcomes[1].by_reason.get("linked_device", 0) > 0  # the dev-1 row in scope "other"
    for c in tables:
        table = iceberg.load_table(c)
        assert table.schema() == schemas[c.name]  # field ids, types, nullability: exactly as before
        assert len(table.metadata.snapshots) == 1
        summary = json.dumps(table.current_snapshot().summary.model_dump()).lower()
        assert "@" not in summary and table.current_snapshot().summary[iceberg.SNAPSHOT_RUN_ID] == "r1"
        # No blacklisted email in any file under the location: data, manifests, lists, metadata.
        assert files_holding(fs, locations[c.name], BLACKLISTED) == []
        # Every file left is referenced by the current metadata: no orphan.
        on_disk = {p for p in fs.find(locations[c.name])}
        assert on_disk == referenced_now(table), c.name
    assert cleanups[1].files_deleted > 0 and cleanups[1].snapshots_expired >= 2

    # Readable by pyiceberg and Polars.
    frame = pl.scan_iceberg(iceberg.load_table(events)).collect()
    assert frame.height == sum(map(len, EVENT_BATCHES)) - removed_e

    # A second sweep finds nothing and writes nothing.
    state = {c.name: {p: fs.info(p)["mtime"] for p in fs.find(locations[c.name])} for c in tables}
    meta = {c.name: iceberg.load_table(c).metadata_location for c in tables}
    again, cleanups = sweep(tables, ENTRIES)
    assert [o.rows_removed for o in again] == [0, 0]
    assert all(c.files_deleted == 0 and c.snapshots_expired == 0 for c in cleanups)
    for c in tables:
        assert iceberg.load_table(c).metadata_location == meta[c.name]
        assert {p: fs.info(p)["mtime"] for p in fs.find(locations[c.name])} == state[c.name]


def test_crash_before_cleanup_is_finished_by_the_next_run(tables):
    """The purge commit landed, the clean-up did not: the next run (with nothing new to remove) expires
    the old snapshots and deletes the old files."""
    import fsspec

    profiles, events = tables
    fs = fsspec.filesystem("file")
    plan = iceberg.plan_table(events)
    with connect() as con:
        matches = find_matches(con, entries_table(ENTRIES), [plan.as_input()])
    iceberg.purge_table(plan, matches.datasets["events"], "r1", None, fs)
    location = _location(events)
    assert files_holding(fs, location, BLACKLISTED), "old files still hold the emails before the clean-up"

    outcomes, cleanups = sweep([events], ENTRIES)
    assert outcomes[0].rows_removed == 0 and cleanups[0].files_deleted > 0
    assert files_holding(fs, location, BLACKLISTED) == []
    assert {p for p in fs.find(location)} == referenced_now(iceberg.load_table(events))


def test_unknown_files_are_deleted_only_after_the_grace_period(tables):
    """A file no metadata names may be a concurrent writer's uncommitted file: kept while young."""
    import fsspec

    profiles, events = tables
    fs = fsspec.filesystem("file")
    location = Path(_location(events))
    stray = location / "data" / "in-flight.parquet"
    pq.write_table(pa.Table.from_pylist([event("keep@ex.com")], schema=EVENTS), stray)
    outcomes, cleanups = sweep([events], ENTRIES)
    assert stray.exists() and cleanups[0].unknown_kept == ("data/in-flight.parquet",)
    plan = iceberg.plan_table(events)
    outcome = iceberg.purge_table(plan, find_matches(connect(), entries_table(ENTRIES),
                                                     [plan.as_input()]).datasets["events"], "r2", None, fs)
    # nothing left to clean: the stray file is only removed by a run that cleans up, once it is old
    iceberg.finish_purge(events, outcome, BLACKLISTED, None, fs)
    assert stray.exists()
    old = os.stat(stray).st_mtime - 25 * 3600
    os.utime(stray, (old, old))
    table = iceberg.load_table(events)
    table.append(pa.Table.from_pylist([event("aa-gone@ex.com")], schema=EVENTS))  # a new delivery to purge
    outcomes, cleanups = sweep([events], ENTRIES)
    assert outcomes[0].rows_removed == 1 and not stray.exists() and cleanups[0].unknown_kept == ()


def test_search_decodes_truncated_bounds():
    needles = Needles(["a-very-long-address@example.com"])
    assert needles.in_bound(b"a-very-long-addr")  # truncate(16) lower bound
    assert needles.in_bound(b"a-very-long-adds")  # upper bound: last character incremented
    assert not needles.in_bound(b"a-very-long")  # too short to be a truncated bound of it
    assert needles.in_text("To: <A-Very-Long-Address@Example.com>, x@y.z")
    assert not needles.in_text("someone-else@example.com")


def test_configuration_file(tmp_path):
    from pipelines.config.settings import settings_from_dict
    from pipelines.core.errors import ConfigError

    base = {"name": "events", "kind": "events", "format": "iceberg", "path": "wh/lake/events", "email": "User.Email"}
    ice = {"table": "lake.events", "catalog_db": "wh/catalog.db"}
    settings = settings_from_dict({"datasets": [{**base, "iceberg": ice}, {**base, "name": "e2",
                                                                           "path": "wh/lake/e2"}
                                                | {"iceberg": {**ice, "table": "lake.e2"}}]},
                                  tmp_path / "gdpr-sweep.toml")  # two tables of one catalog
    props = catalog_properties(settings.datasets[0].iceberg)
    assert props == {"type": "sql", "uri": f"sqlite:///{tmp_path / 'wh' / 'catalog.db'}"}
    secret = {**base, "iceberg": {"table": "lake.events", "catalog": {"type": "rest", "uri": "http://x",
                                                                      "credential": "s3cr3t"}}}
    settings = settings_from_dict({"datasets": [secret]}, tmp_path / "gdpr-sweep.toml")
    assert "s3cr3t" not in repr(settings.datasets[0]) and "s3cr3t" not in str(settings)
    for bad, message in [({**base}, "Iceberg dataset needs"),
                         ({**base, "iceberg": {**ice, "table": "events"}}, "namespace.table"),
                         ({**base, "iceberg": {"table": "lake.events"}}, "catalog_db"),
                         ({**base, "iceberg": {**ice, "catalog_db": "wh/lake/events/c.db"}}, "outside"),
                         ({**base, "format": "parquet", "iceberg": ice}, "Iceberg dataset")]:
        with pytest.raises(ConfigError, match=message):
            settings_from_dict({"datasets": [bad]}, tmp_path / "gdpr-sweep.toml")


def test_iceberg_table_on_s3(s3_server, tmp_path):
    from pipelines.datasets import objectstore

    fs = objectstore.filesystem(s3_server)
    bucket = f"ice-{uuid.uuid4().hex[:8]}"
    fs.call_s3("create_bucket", Bucket=bucket)
    url = f"s3://{bucket}/warehouse"
    profiles, events = profiles_config(tmp_path, url), events_config(tmp_path, url)
    make_table(events, EVENT_BATCHES, EVENTS, s3_server)
    make_table(profiles, PROFILE_BATCHES, PROFILES, s3_server)
    locations = {c.name: _location(c, s3_server) for c in (profiles, events)}
    assert files_holding(fs, locations["events"], BLACKLISTED)

    outcomes, cleanups = sweep((profiles, events), ENTRIES, s3_server, fs)

    _check_kept(profiles, events, s3_server)
    for c in (profiles, events):
        assert files_holding(fs, locations[c.name], BLACKLISTED) == []
        assert set(fs.find(locations[c.name])) == referenced_now(iceberg.load_table(c, s3_server))
    assert pl.scan_iceberg(iceberg.load_table(events, s3_server)).collect().height == outcomes[1].rows_out
    again, _ = sweep((profiles, events), ENTRIES, s3_server, fs)
    assert [o.rows_removed for o in again] == [0, 0]
    # A delivery after the clean-up listed the location: DuckDB (through the process's s3fs) sees it.
    iceberg.load_table(events, s3_server).append(pa.Table.from_pylist([event("aa-gone@ex.com")], schema=EVENTS))
    late, _ = sweep((profiles, events), ENTRIES, s3_server, fs)
    assert [o.rows_removed for o in late] == [0, 1]


@pytest.mark.parametrize("column", [
    pa.array([["x@ex.com", "aa-gone@ex.com"]], pa.list_(pa.string())),
    pa.array([{"a": {"b": "note: mail AA-GONE@ex.com"}}], pa.struct([("a", pa.struct([("b", pa.string())]))])),
    pa.array([[("k", "aa-gone@ex.com")]], pa.map_(pa.string(), pa.string())),
    pa.array([b"aa-gone@ex.com"], pa.binary()),
    pa.array(["aa-gone@ex.com"], pa.large_string()),
])
def test_search_decodes_every_text_leaf_of_a_parquet_file(tmp_path, column):
    import fsspec

    folder = tmp_path / "t"
    (folder / "data").mkdir(parents=True)
    pq.write_table(pa.table({"c": column}), folder / "data" / "f.parquet", compression="zstd")
    fs = fsspec.filesystem("file")
    assert search(fs, str(folder), Needles(["aa-gone@ex.com"])) == ["data/f.parquet"]
    assert search(fs, str(folder), Needles(["zz-gone@ex.com"])) == []


def test_a_young_unreferenced_file_holding_an_email_fails_the_run(tables):
    import fsspec

    profiles, events = tables
    stray = Path(_location(events)) / "data" / "in-flight.parquet"
    pq.write_table(pa.Table.from_pylist([event("aa-gone@ex.com")], schema=EVENTS), stray)
    with pytest.raises(iceberg.SweepError, match="younger than orphan_grace_hours") as info:
        sweep([events], ENTRIES)
    assert "aa-gone" not in str(info.value) and "data/in-flight.parquet" in str(info.value)
    assert stray.exists()
    # the purge itself went through; the next run (the file is now old) deletes it and passes
    old = os.stat(stray).st_mtime - 25 * 3600
    os.utime(stray, (old, old))
    fs = fsspec.filesystem("file")
    plan = iceberg.plan_table(events)
    outcome = iceberg.purge_table(plan, find_matches(connect(), entries_table(ENTRIES),
                                                     [plan.as_input()]).datasets["events"], "r2", None, fs)
    cleanup = iceberg.finish_purge(events, outcome, BLACKLISTED, None, fs)
    assert not stray.exists() and cleanup.files_deleted >= 1


FLOW_CONFIG = lake_toml(
    profiles("warehouse/lake/profiles", format="iceberg", email="Email",
             iceberg={"table": "lake.profiles", "catalog_db": "warehouse/catalog.db"}),
    events("warehouse/lake/events", format="iceberg",
           iceberg={"table": "lake.events", "catalog_db": "warehouse/catalog.db"}))


def test_sweep_flow_purges_iceberg_tables(prefect_harness, tables, tmp_path):
    import fsspec

    from flows.sweep import gdpr_sweep
    from pipelines.config.settings import load_settings
    from pipelines.registry.registry import Registry

    (tmp_path / "gdpr-sweep.toml").write_text(FLOW_CONFIG)
    settings = load_settings(tmp_path / "gdpr-sweep.toml")
    assert [d.format for d in settings.datasets] == ["iceberg", "iceberg"]
    registry = Registry(settings.blacklist_db)
    for email in BLACKLISTED:
        registry.add(email=email)
    report = json.loads(open(gdpr_sweep(config=str(settings.config_path))).read())

    assert report["verification"]["ok"] and report["totals"]["rows_removed"] > 0
    for d in report["datasets"]:
        assert d["rows_in"] == d["rows_out"] + d["rows_removed"]
    fs = fsspec.filesystem("file")
    for c in tables:
        assert files_holding(fs, _location(c), BLACKLISTED) == []
        assert set(fs.find(_location(c))) == referenced_now(iceberg.load_table(c))
    assert "aa-gone" not in json.dumps(report).lower()
    # Idempotent: the second run removes nothing and commits nothing.
    meta = iceberg.load_table(tables[1]).metadata_location
    again = json.loads(open(gdpr_sweep(config=str(settings.config_path))).read())
    assert again["totals"]["rows_removed"] == 0 and iceberg.load_table(tables[1]).metadata_location == meta


def test_a_commit_between_plan_and_purge_stops_the_run(tables):
    profiles, events = tables
    plan = iceberg.plan_table(events)
    with connect() as con:
        matches = find_matches(con, entries_table(ENTRIES), [plan.as_input()])
    iceberg.load_table(events).append(pa.Table.from_pylist([event("late@ex.com")], schema=EVENTS))
    with pytest.raises(iceberg.SweepError, match="changed during the run"):
        iceberg.purge_table(plan, matches.datasets["events"], "r1")


def test_a_commit_after_the_purge_keeps_its_files(tables):
    """A writer appends after the purge commit and before the clean-up: its data file, manifest and
    manifest list are referenced by the newest metadata and stay; the pre-purge files go."""
    import fsspec

    profiles, events = tables
    fs = fsspec.filesystem("file")
    plan = iceberg.plan_table(events)
    with connect() as con:
        matches = find_matches(con, entries_table(ENTRIES), [plan.as_input()])
    outcome = iceberg.purge_table(plan, matches.datasets["events"], "r1", None, fs)
    iceberg.load_table(events).append(pa.Table.from_pylist([event("late@ex.com", amount=42)], schema=EVENTS))
    iceberg.finish_purge(events, outcome, BLACKLISTED, None, fs)
    table = iceberg.load_table(events)
    rows = table.scan().to_arrow().to_pylist()
    assert len(rows) == outcome.rows_out + 1 and any(r["Amount"] == 42 for r in rows)
    assert set(fs.find(_location(events))) == referenced_now(table)
    assert files_holding(fs, _location(events), BLACKLISTED) == []


def test_rows_deleted_by_another_engine_are_purged_from_the_history(tables):
    """The rows were deleted before the sweep by another writer (here pyiceberg's own delete): nothing is
    left to remove, but older snapshots, their data files and manifests still hold the emails."""
    import fsspec
    from pyiceberg.expressions import In

    profiles, events = tables
    fs = fsspec.filesystem("file")
    iceberg.load_table(profiles).delete(In("Email", ["zz-gone@ex.com"]))
    assert files_holding(fs, _location(profiles), ["zz-gone@ex.com"])
    rows = sorted(map(repr, iceberg.load_table(profiles).scan().to_arrow().to_pylist()))
    outcomes, cleanups = sweep([profiles], [entry(email="zz-gone@ex.com")])
    assert outcomes[0].rows_removed == 0 and cleanups[0].snapshots_expired > 0
    assert files_holding(fs, _location(profiles), ["zz-gone@ex.com"]) == []
    # pyiceberg's delete left the old file's bounds in a `deleted` manifest entry: rewritten by a
    # `replace` commit, which changes no row
    table = iceberg.load_table(profiles)
    assert table.current_snapshot().summary.operation.value == "replace"
    assert sorted(map(repr, table.scan().to_arrow().to_pylist())) == rows
    # and the night after is quiet: nothing committed
    meta = iceberg.load_table(profiles).metadata_location
    outcomes, cleanups = sweep([profiles], [entry(email="zz-gone@ex.com")])
    assert cleanups[0].snapshots_expired == 0 and iceberg.load_table(profiles).metadata_location == meta


def test_iceberg_table_on_s3_through_the_flows_steps(s3_server, tmp_path):
    """The per-partition steps the flow maps (pipelines/datasets/scaleout.py), on moto's S3 server."""
    from pipelines.config.settings import Settings
    from pipelines.datasets import objectstore, scaleout

    fs = objectstore.filesystem(s3_server)
    bucket = f"ice-{uuid.uuid4().hex[:8]}"
    fs.call_s3("create_bucket", Bucket=bucket)
    events = events_config(tmp_path, f"s3://{bucket}/warehouse")
    make_table(events, EVENT_BATCHES, EVENTS, s3_server)
    settings = Settings(config_path=tmp_path / "x.toml", work_dir=tmp_path / "work", report_dir=tmp_path / "r",
                        blacklist_db=tmp_path / "b.db", s3=s3_server, datasets=(events,))
    entries = entries_table([entry(email="aa-gone@ex.com"), entry(email="zz-gone@ex.com")])

    plan = scaleout.plan(settings, events)
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

    assert iceberg.load_table(events, s3_server).scan().to_arrow().num_rows == sum(map(len, EVENT_BATCHES)) - 3
    assert files_holding(fs, _location(events, s3_server), BLACKLISTED) == []


def test_clear_user_data_on_iceberg_tables(tables, tmp_path):
    """ClearUserData through the storage interface: the entry's rows (profile, events, linked device) go
    in one commit per table, older snapshots and files too; the summary names no email."""
    import fsspec

    from pipelines.config.settings import load_settings
    from pipelines.operations.targeted import clear_user_data
    from pipelines.registry.registry import Registry

    profiles, events = tables
    (tmp_path / "gdpr-sweep.toml").write_text(FLOW_CONFIG)
    settings = load_settings(tmp_path / "gdpr-sweep.toml")
    fs = fsspec.filesystem("file")
    assert files_holding(fs, _location(profiles), ["zz-gone@ex.com"])
    bid = Registry(settings.blacklist_db).add(email="zz-gone@ex.com")[0].blacklist_id
    summary = clear_user_data(settings, bid)

    assert summary["datasets"] == {"profiles": 1, "events": 2}  # the profile; its email's event and its device's
    for c in tables:
        assert files_holding(fs, _location(c), ["zz-gone@ex.com"]) == []
        assert set(fs.find(_location(c))) == referenced_now(iceberg.load_table(c))
    assert "zz-gone" not in json.dumps(summary)
    left = iceberg.load_table(events).scan().to_arrow().to_pylist()
    assert len(left) == sum(map(len, EVENT_BATCHES)) - 2 and all(r["DeviceId"] != "dev-9" for r in left)


def test_rows_under_a_retention_hold_stay_and_do_not_fail_the_location_check(prefect_harness, tables, tmp_path):
    """An unscoped entry held in `profiles` keeps its rows there (and so its email in the table's data
    files and manifest bounds): that table's location check does not count it; `events` is purged."""
    import fsspec

    from flows.sweep import gdpr_sweep
    from pipelines.config.settings import load_settings
    from pipelines.registry.holds import HoldStore
    from pipelines.registry.registry import Registry

    (tmp_path / "gdpr-sweep.toml").write_text(FLOW_CONFIG)
    settings = load_settings(tmp_path / "gdpr-sweep.toml")
    bid = Registry(settings.blacklist_db).add(email="zz-gone@ex.com")[0].blacklist_id
    HoldStore(settings).place(bid, "profiles", "litigation", None)
    report = json.loads(open(gdpr_sweep(config=str(settings.config_path))).read())

    assert report["verification"]["ok"]
    removed = {d["name"]: d["rows_removed"] for d in report["datasets"]}
    assert removed["profiles"] == 0 and removed["events"] >= 1
    fs = fsspec.filesystem("file")
    assert files_holding(fs, _location(tables[0]), ["zz-gone@ex.com"])
    assert files_holding(fs, _location(tables[1]), ["zz-gone@ex.com"]) == []
