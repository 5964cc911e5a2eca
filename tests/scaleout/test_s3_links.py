"""Issue 13, finding 8 on object storage: a device link outlives the rows that made it (§3 rule 3)
for an S3 dataset too, through the real sweep flow, moto's S3 server and the real registry.

Night 1 Anna is blacklisted and the sweep removes her profile (listing DEVICE) and her event (from
PHONE). Night 2 a new object lands in the events prefix with anonymous events from DEVICE, PHONE and
Bob's device: Anna's devices' rows go, counted under her entry as `linked_device`; Bob's row stays.
On commit 23a9caf the new object is deleted unread (finding 7); with S3 objects swept but links not
remembered, the anonymous rows from Anna's devices are kept.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.registry.registry import Registry
from tests.helpers import EVENT_SCHEMA, PROFILE_SCHEMA, make_event, make_profile
from tests.scaleout import s3_support as s3x

ANNA, BOB = "anna.s3links@example.com", "bob.s3links@example.com"
DEVICE = "dev-anna-s3-41d0"  # listed on Anna's profile only
PHONE = "dev-anna-phone-s3-7c2e"  # on an event carrying Anna's email only
OTHER = "dev-bob-s3-0b9f"


def sweep(settings) -> dict:
    from flows.sweep import gdpr_sweep

    return json.loads(Path(gdpr_sweep(config=str(settings.config_path))).read_text())


def events_of(report: dict) -> dict:
    return next(d for d in report["datasets"] if d["name"] == "events")


def test_s3_object_from_a_remembered_device_is_swept_on_a_later_night(prefect_harness, s3_server, tmp_path):
    bucket = s3x.new_bucket(s3_server)
    s3x.put(s3_server, bucket, "lake/profiles/part-0.parquet",
            [make_profile(email=ANNA, device_ids=[DEVICE], profile_id="anna"),
             make_profile(email=BOB, device_ids=[OTHER], profile_id="bob")], PROFILE_SCHEMA)
    s3x.put(s3_server, bucket, "lake/events/day=1/part-0.parquet",
            [make_event(email=ANNA, device_id=PHONE, EventType="anna-login"),
             make_event(email=BOB, device_id=OTHER, EventType="bob-login")], EVENT_SCHEMA)
    settings = s3x.settings_for(tmp_path, s3_server, bucket)
    record, _ = Registry(settings.blacklist_db).add(email=ANNA)
    first = sweep(settings)
    assert events_of(first)["removed_by_reason"] == {"email": 1, "user_id": 0, "linked_device": 0}
    assert [r["ProfileId"] for r in s3x.read_rows(s3_server, bucket, "lake/profiles/part-0.parquet")] == ["bob"]

    late = "lake/events/day=2/part-0.parquet"
    s3x.put(s3_server, bucket, late,
            [make_event(device_id=DEVICE, anonymous=True, EventType="anon-device"),
             make_event(device_id=PHONE, anonymous=True, EventType="anon-phone"),
             make_event(device_id=OTHER, anonymous=True, EventType="anon-bob"),
             make_event(device_id=DEVICE, anonymous=True, EventType="anon-device-2")], EVENT_SCHEMA)
    second = sweep(settings)

    assert [r["EventType"] for r in s3x.read_rows(s3_server, bucket, late)] == ["anon-bob"]
    events = events_of(second)
    assert events["removed_by_reason"] == {"email": 0, "user_id": 0, "linked_device": 3}
    assert events["rows_in"] == events["rows_out"] + events["rows_removed"]
    entry = next(e for e in second["entries"] if e["blacklist_id"] == record.blacklist_id)
    assert entry["rows_removed"] == {"events": 3} and entry["status"] == "gone"
    assert second["verification"]["ok"]
    folder = settings.report_dir / second["run"]["run_id"]
    text = "".join(p.read_text() for p in sorted(folder.iterdir()) if p.suffix in (".json", ".md", ".html"))
    assert DEVICE not in text and PHONE not in text and ANNA not in text
