"""The contract suite's lake: the same profiles and events, schema and blacklist on every backend.

Each row has a `RowId`; the expected survivors are listed by hand (not computed by the product's
rules). The schemas hold every kind of column a rewrite must keep: a non-nullable column, nested
structs (the identity columns among them), a list, a list of structs, a map, decimals, timestamps
with a time zone, dates, floats, booleans and binary.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from tests.support.lake import events, profiles, write_lake_config

GONE = "gone@example.com"  # unscoped entry: must be gone from every byte of the location
SCOPED = "scoped@example.com"  # blacklisted in scope "shop" only: stays in scope "other"
USER_ID = "u-7"
LATE = "late@example.com"

USER = pa.struct([("Name", pa.string()), ("Email", pa.string()), ("UserId", pa.string())])
ITEM = pa.struct([("Sku", pa.string()), ("Qty", pa.int32())])
PROFILES = pa.schema([
    pa.field("RowId", pa.string(), nullable=False),
    ("UserId", pa.string()),
    ("DeviceIds", pa.list_(pa.string())),
    ("Scope", pa.string()),
    ("Info", pa.struct([("Email", pa.string()), ("Country", pa.string())])),
    ("Visits", pa.int32()),
    ("Score", pa.decimal128(10, 2)),
    ("Attrs", pa.map_(pa.string(), pa.string())),
    ("UpdateTime", pa.timestamp("us", tz="UTC")),
])
EVENTS = pa.schema([
    pa.field("RowId", pa.string(), nullable=False),
    ("DeviceId", pa.string()),
    ("Scope", pa.string()),
    ("User", USER),
    ("Items", pa.list_(ITEM)),
    ("Attrs", pa.map_(pa.string(), pa.string())),
    ("EventTime", pa.timestamp("us", tz="UTC")),
    ("Day", pa.date32()),
    ("Amount", pa.decimal128(12, 3)),
    ("Ratio", pa.float64()),
    ("Flag", pa.bool_()),
    ("Payload", pa.binary()),
])
T0 = datetime(2026, 11, 1, 12, 0, 0, 123456, tzinfo=UTC)


def profile(row_id, email=None, user_id=None, devices=(), scope=None):
    return {"RowId": row_id, "UserId": user_id, "DeviceIds": list(devices), "Scope": scope,
            "Info": {"Email": email, "Country": "DE"}, "Visits": 3, "Score": Decimal("12.34"),
            "Attrs": [("tier", "gold")], "UpdateTime": T0}


def event(row_id, email=None, user_id=None, device=None, scope=None, anonymous=False):
    return {"RowId": row_id, "DeviceId": device, "Scope": scope,
            "User": None if anonymous else {"Name": "N", "Email": email, "UserId": user_id},
            "Items": [{"Sku": "sku-1", "Qty": 2}], "Attrs": [("utm", "mail")], "EventTime": T0,
            "Day": date(2026, 11, 1), "Amount": Decimal("1.005"), "Ratio": 0.5, "Flag": True, "Payload": b"\x00\x01"}


PROFILE_FILES = {
    "part-0.parquet": [profile("p-gone", GONE, devices=["dev-g"]), profile("p-keep", "keep@example.com", devices=["dev-k"]),
                       profile("p-uid", None, USER_ID, scope="shop")],
    "part-1.parquet": [profile("p-scoped-shop", SCOPED, scope="shop"), profile("p-scoped-other", SCOPED, scope="other")],
}
EVENT_FILES = {
    "date=2026-12-01/part-0.parquet": [event("e-gone", "Gone@Example.com"), event("e-keep", "keep@example.com", device="dev-k")],
    "date=2026-12-02/part-0.parquet": [event("e-device", device="dev-g", anonymous=True),
                                       event("e-uid", user_id=USER_ID, scope="shop"),
                                       event("e-scoped-shop", SCOPED, scope="Shop"),
                                       event("e-scoped-other", SCOPED, scope="other")],
    "date=2026-12-03/part-0.parquet": [event("e-other", "other@example.com"), event("e-anon", anonymous=True, device="dev-z")],
}
# Added between sweeps: the unscoped email, a remembered linked device, and a row to keep.
LATE_FILE = ("date=2026-12-04/part-0.parquet",
             [event("e-late-gone", GONE), event("e-late-device", device="dev-g", anonymous=True),
              event("e-late-keep", LATE)])

KEPT = {"profiles": {"p-keep", "p-scoped-other"},
        "events": {"e-keep", "e-scoped-other", "e-other", "e-anon"}}
KEPT_AFTER_LATE = {"profiles": KEPT["profiles"], "events": KEPT["events"] | {"e-late-keep"}}
ENTRIES = [{"email": GONE}, {"user_id": USER_ID}, {"email": SCOPED, "scope": "shop"}]
SCHEMAS = {"profiles": PROFILES, "events": EVENTS}
FILES = {"profiles": PROFILE_FILES, "events": EVENT_FILES}

def build(backend, root: Path) -> Path:
    """Write the lake through `backend`, the configuration and the blacklist; return the config path."""
    from pipelines.config.settings import load_settings
    from pipelines.registry.registry import Registry

    for name, files in FILES.items():
        for rel, rows in files.items():
            backend.write(name, rel, rows, SCHEMAS[name])
    config = write_lake_config(root, profiles(**backend.dataset_keys("profiles")),
                               events(**backend.dataset_keys("events")), scan={"schedule": "off"},
                               **backend.store.tables())
    registry = Registry(load_settings(config).blacklist_db)
    for e in ENTRIES:
        registry.add(**e)
    return config


def row_ids(table: pa.Table) -> set[str]:
    return set(table.column("RowId").to_pylist())


def rows_by_id(table: pa.Table) -> dict[str, dict]:
    return {r["RowId"]: r for r in table.to_pylist()}
