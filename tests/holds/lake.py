"""A three-dataset lake (profiles, events, orders) with Anna, Bo and Cleo, for the hold and certificate
tests: real Parquet files, a real registry file and the real sweep flow under the Prefect harness."""

from __future__ import annotations

from pathlib import Path

from pipelines.config.settings import Settings, load_settings
from tests.helpers import EVENT_SCHEMA, make_event, write
from tests.report_support import PEOPLE, write_config, write_raw
from tests.support.lake import events

ORDERS = events("clean/orders", "raw/orders", name="orders", device_id=None)


def orders_rows() -> list[dict]:
    """Two orders per person (by email), one anonymous order."""
    rows = []
    for key, p in PEOPLE.items():
        user = {"Name": p["name"], "Email": p["email"], "UserId": p["user_id"]}
        rows += [make_event(User=user, EventType=f"order-{key}-1"), make_event(User=user, EventType=f"order-{key}-2")]
    return rows + [make_event(anonymous=True, EventType="order-anon")]


def three_dataset_lake(root: Path) -> Settings:
    config = write_config(root, True, ORDERS)
    write_raw(root)
    write(root / "raw" / "orders" / "orders-0000.parquet", orders_rows(), EVENT_SCHEMA)
    return load_settings(config)


def run_flow(settings: Settings) -> str:
    from flows.sweep import gdpr_sweep

    return gdpr_sweep(config=str(settings.config_path))
