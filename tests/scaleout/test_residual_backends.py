"""The residual scan reads every kind of dataset the sweep reads (issue 18): a Delta table's active
files and an S3 dataset's objects, each once, and finds a copy of a blacklisted address there."""

from __future__ import annotations

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from pipelines.assurance import residual
from pipelines.assurance.residual_scan import run_scan
from pipelines.config.settings import load_settings
from pipelines.core.model import Entry
from tests.scaleout.s3_support import new_bucket, put, settings_for
from tests.support.lake import profiles, write_lake_config

ANNA = Entry("bid-anna", "anna@example.com", None, None)
SCHEMA = pa.schema([("UserId", pa.string()), ("Scope", pa.string()),
                    ("Info", pa.struct([("Email", pa.string())])), ("DeviceIds", pa.list_(pa.string())),
                    ("Notes", pa.string())])


def profile(n: int, notes: str | None = None) -> dict:
    return {"UserId": f"u{n}", "Scope": None, "Info": {"Email": f"p{n}@example.net"}, "DeviceIds": [], "Notes": notes}


def counting(monkeypatch) -> list[str]:
    opened: list[str] = []
    real = residual.open_input

    def open_counted(path, fs=None):
        opened.append(str(path))
        return real(path, fs)

    monkeypatch.setattr(residual, "open_input", open_counted)
    return opened


def test_a_delta_table_is_scanned_in_its_active_files(tmp_path, monkeypatch):
    table = tmp_path / "profiles"
    write_deltalake(str(table), pa.Table.from_pylist([profile(1, "hanna@example.com")], schema=SCHEMA))
    write_deltalake(str(table), pa.Table.from_pylist([profile(2, "cc: ANNA@example.com")], schema=SCHEMA),
                    mode="append")
    write_lake_config(tmp_path, profiles(table, format="delta"))
    opened = counting(monkeypatch)
    result = run_scan(load_settings(tmp_path / "gdpr-sweep.toml"), [ANNA])
    assert [(f.target, f.column, f.blacklist_id, f.rows) for f in result.findings] == [
        ("profiles", "Notes", "bid-anna", 1)]
    active = sorted(DeltaTable(str(table)).file_uris())
    assert sorted(opened) == active and result.targets[0]["rows"] == 2


def test_an_s3_dataset_is_scanned_object_by_object(s3_server, tmp_path, monkeypatch):
    bucket = new_bucket(s3_server)
    put(s3_server, bucket, "lake/profiles/part-0.parquet", [profile(1, "mailto:anna%40example.com")], SCHEMA)
    put(s3_server, bucket, "lake/profiles/part-1.parquet", [profile(2, "anna@example.co")], SCHEMA)
    events = pa.schema([("User", pa.struct([("Email", pa.string()), ("UserId", pa.string())])),
                        ("DeviceId", pa.string()), ("Scope", pa.string())])
    put(s3_server, bucket, "lake/events/e.parquet",
        [{"User": {"Email": None, "UserId": None}, "DeviceId": "web:anna@example.com", "Scope": None}], events)
    # a raw snapshot of the same name waiting in `source`: not searched, and it does not hide the cleaned one
    put(s3_server, bucket, "raw/events/e.parquet",
        [{"User": {"Email": "anna@example.com", "UserId": None}, "DeviceId": "d", "Scope": None}], events)
    settings = settings_for(tmp_path, s3_server, bucket, events_source="raw/events")
    opened = counting(monkeypatch)
    result = run_scan(settings, [ANNA])
    assert [(f.target, f.column, f.configured, f.rows) for f in result.findings] == [
        ("profiles", "Notes", False, 1), ("events", "DeviceId", True, 1)]
    assert sorted(opened) == sorted(f"s3://{bucket}/lake/{k}" for k in
                                    ("profiles/part-0.parquet", "profiles/part-1.parquet", "events/e.parquet"))


def test_an_iceberg_table_is_scanned_in_its_current_data_files(tmp_path, monkeypatch):
    from pyiceberg.catalog import load_catalog

    catalog = load_catalog("default", type="sql", uri=f"sqlite:///{tmp_path / 'catalog.db'}",
                           warehouse=(tmp_path / "warehouse").as_uri())
    catalog.create_namespace("lake")
    table = catalog.create_table("lake.profiles", schema=SCHEMA)
    table.append(pa.Table.from_pylist([profile(1, "hanna@example.com")], schema=SCHEMA))
    table.append(pa.Table.from_pylist([profile(2, "cc: ANNA@example.com")], schema=SCHEMA))
    write_lake_config(tmp_path, profiles(tmp_path / "warehouse" / "lake" / "profiles", format="iceberg",
                                         iceberg={"table": "lake.profiles", "catalog_db": "catalog.db"}))
    opened = counting(monkeypatch)
    result = run_scan(load_settings(tmp_path / "gdpr-sweep.toml"), [ANNA])
    assert [(f.target, f.column, f.blacklist_id, f.rows) for f in result.findings] == [
        ("profiles", "Notes", "bid-anna", 1)]
    current = sorted(t.file.file_path.removeprefix("file://") for t in table.scan().plan_files())
    assert sorted(opened) == current and result.targets[0]["rows"] == 2
