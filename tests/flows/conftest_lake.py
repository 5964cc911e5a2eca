"""A small generated lake for the ingest and ClearUserData flow tests: sample data, its sample
blacklist, swept once (so the cleaned datasets exist as versions). Helpers compare with the oracle."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from gdpr_sweep.demo import prepare_demo
from pipelines.config.settings import load_settings
from pipelines.datasets import storage
from pipelines.registry.registry import Registry
from tests.helpers import lake_config, logical_event, logical_profile, sweep

CONFIG = lake_config("data/sample")


def generated_lake(tmp_path, profiles=300, events=6000):
    (tmp_path / "gdpr-sweep.toml").write_text(CONFIG)
    settings = load_settings(tmp_path / "gdpr-sweep.toml")
    prepare_demo(settings, events=events, profiles=profiles)
    snapshot = Registry(settings.blacklist_db).snapshot()
    sweep(list(settings.datasets), snapshot.entries, version=snapshot.version)
    return settings


def clean_rows(config) -> list[dict]:
    folder = storage.current_version(config.path)
    files = storage.list_parquet(folder)
    return pa.concat_tables([pq.read_table(folder / f) for f in files]).to_pylist() if files else []


def oracle_entries(records) -> list[dict]:
    return [{"email": r.email, "user_id": r.user_id, "scope": r.scope} for r in records]


def logical(rows, kind):
    return [logical_profile(r) if kind == "profiles" else logical_event(r) for r in rows]
