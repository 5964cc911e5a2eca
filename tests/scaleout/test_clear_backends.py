"""ClearUserData on every kind of dataset, through the storage interface (pipelines/datasets/base.py):
an S3 prefix on moto's real S3 server and a real local Delta table. Before the interface (main at
26e762a and earlier) both were refused with a ConfigError ("work on local Parquet datasets")."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake

from pipelines.config.settings import load_settings
from pipelines.operations.targeted import clear_user_data
from pipelines.registry.registry import Registry
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
from tests.support.lake import events, profiles, write_lake_config

GONE = "gone@example.com"
PROFILES = [make_profile(GONE, device_ids=["dev-g"]), make_profile("keep@example.com", device_ids=["dev-k"])]
EVENTS = {
    "date=2026-12-01/part-0.parquet": [make_event(email="Gone@Example.com"),
                                       make_event(email="keep@example.com", device_id="dev-k")],
    "date=2026-12-02/part-0.parquet": [make_event(device_id="dev-g", scope="x"), make_event(anonymous=True)],
    "date=2026-12-03/part-0.parquet": [make_event(email="other@example.com"), make_event(user_id="u-7")],
}


def expected():
    all_events = [r for rows in EVENTS.values() for r in rows]
    kept_p, kept_e = oracle.expected_kept([{"email": GONE, "user_id": None, "scope": None}],
                                          [logical_profile(r) for r in PROFILES],
                                          [logical_event(r) for r in all_events])
    return [PROFILES[i] for i in kept_p], [all_events[i] for i in kept_e]


def _plain(value):
    """Timestamps as UTC instants (a reader may return them in another zone), the rest as text."""
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else str(value)


def rows_key(rows):
    return sorted(json.dumps(r, sort_keys=True, default=_plain) for r in rows)


def test_clear_user_data_on_an_s3_prefix_replaces_only_objects_holding_the_entry(s3_server, tmp_path):
    bucket = s3x.new_bucket(s3_server, versioned=True)
    s3x.put(s3_server, bucket, "lake/profiles/part-0.parquet", PROFILES, PROFILE_SCHEMA)
    for rel, rows in EVENTS.items():
        s3x.put(s3_server, bucket, f"lake/events/{rel}", rows, EVENT_SCHEMA)
    settings = s3x.settings_for(tmp_path, s3_server, bucket)
    s3x.sweep(settings, [entry(email="nobody@example.com")], "r0")  # the state: every object verified at 1
    before = {k: etag for (k, _), (etag, _) in s3x.every_version(s3_server, bucket).items()}

    bid = Registry(settings.blacklist_db).add(email=GONE)[0].blacklist_id
    summary = clear_user_data(settings, bid)

    kept_profiles, kept_events = expected()
    assert summary["rows_removed"] == len(PROFILES) + sum(map(len, EVENTS.values())) - len(kept_profiles) \
        - len(kept_events) > 0
    events_now = [r for rel in EVENTS for r in s3x.read_rows(s3_server, bucket, f"lake/events/{rel}")]
    assert rows_key(events_now) == rows_key(kept_events)
    assert rows_key(s3x.read_rows(s3_server, bucket, "lake/profiles/part-0.parquet")) == rows_key(kept_profiles)
    after = {k: etag for (k, _), (etag, _) in s3x.every_version(s3_server, bucket).items()}
    untouched = "lake/events/date=2026-12-03/part-0.parquet"  # no row of the entry: not rewritten
    assert after[untouched] == before[untouched]
    # keys stay; no version of any object (superseded ones are deleted) still holds the email
    assert {k for k in after if k.endswith(".parquet")} == {k for k in before if k.endswith(".parquet")}
    assert not any(GONE in s3x.text_of(b) for b in s3x.version_bodies(s3_server, bucket).values())
    state = json.loads(s3x.client(s3_server).get_object(
        Bucket=bucket, Key="lake/events/_gdpr_sweep_state.json")["Body"].read())
    assert state["files"][untouched.removeprefix("lake/events/")]["verified"] == 1  # what the sweep verified stays recorded

    # the next sweep finds nothing more and writes no data object
    etags = {k: v for k, v in s3x.every_version(s3_server, bucket).items() if k[0].endswith(".parquet")}
    s3x.sweep(settings, [entry(email=GONE)], "r2", version=2)
    assert {k: v for k, v in s3x.every_version(s3_server, bucket).items() if k[0].endswith(".parquet")} == etags


def _delta_lake(tmp_path: Path):
    write_deltalake(str(tmp_path / "clean/profiles"), pa.Table.from_pylist(PROFILES, schema=PROFILE_SCHEMA))
    for i, rows in enumerate(EVENTS.values()):  # one commit per batch: the email is some file's min/max
        write_deltalake(str(tmp_path / "clean/events"), pa.Table.from_pylist(rows, schema=EVENT_SCHEMA),
                        mode="append" if i else "error")
    return load_settings(write_lake_config(tmp_path, profiles("clean/profiles", format="delta"),
                                           events("clean/events", format="delta")))


def _location_text(folder: Path) -> str:
    """Every file under a table's location, decoded (Parquet pages are compressed: a byte grep proves nothing)."""
    texts = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        body = path.read_bytes()
        texts.append(str(pq.read_table(path).to_pylist()) if body[:4] == b"PAR1"
                     else body.decode("utf-8", "replace"))
    return "\n".join(texts).lower()


def test_clear_user_data_on_a_delta_table_purges_rows_history_and_log(tmp_path):
    settings = _delta_lake(tmp_path)
    assert GONE in _location_text(tmp_path / "clean/events")  # the search below can find it
    bid = Registry(settings.blacklist_db).add(email=GONE)[0].blacklist_id

    summary = clear_user_data(settings, bid)

    kept_profiles, kept_events = expected()
    assert rows_key(DeltaTable(str(tmp_path / "clean/events")).to_pyarrow_table().to_pylist()) == rows_key(kept_events)
    assert rows_key(DeltaTable(str(tmp_path / "clean/profiles")).to_pyarrow_table().to_pylist()) == \
        rows_key(kept_profiles)
    assert summary["datasets"] == {"profiles": 1, "events": 2}
    for name in ("profiles", "events"):  # old files vacuumed, log before the checkpoint deleted
        assert GONE not in _location_text(tmp_path / "clean" / name)
    assert GONE not in json.dumps(summary)
