"""Verification's first scan (`may_match`): false only where §3 matches nothing, so verification
may skip the exact match there; true on every row the exact match would find."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipelines.core.match import LINKED_SCHEMA, connect, entries_table, find_matches, may_match
from pipelines.core.model import DatasetInput, DatasetOutcome, FileOutcome, MatchResult
from pipelines.datasets.sweep import verify_versions
from tests.helpers import (
    EVENT_SCHEMA,
    PROFILE_SCHEMA,
    entry,
    events_config,
    make_event,
    make_profile,
    profiles_config,
    write,
)
from tests.pipelines.test_rules import CASES

E = "anna@example.com"


def _inputs(tmp_path, profiles, events, **event_overrides):
    p = write(tmp_path / "p" / "part.parquet", profiles, PROFILE_SCHEMA)
    e = write(tmp_path / "e" / "part.parquet", events, EVENT_SCHEMA)
    return [DatasetInput(profiles_config(tmp_path), {"part.parquet": p}),
            DatasetInput(events_config(tmp_path, **event_overrides), {"part.parquet": e})]


def _linked(*devices: str) -> pa.Table:
    return pa.table({"device": list(devices), "scope": [None] * len(devices), "bid": ["b1"] * len(devices)},
                    schema=LINKED_SCHEMA)


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_true_wherever_the_exact_match_finds_a_row(tmp_path, case):
    """Every §3 case, with the devices the match links given as verification gives them."""
    entries, profiles, events = CASES[case][:3]
    inputs = _inputs(tmp_path, profiles, events)
    table = entries_table(entries)
    with connect() as con:
        linked = find_matches(con, table, inputs).linked_devices
        exact = find_matches(con, table, inputs, extra_linked=linked)
        assert may_match(con, table, inputs, linked) or exact.rows_removed == 0


@pytest.mark.parametrize(("events", "linked", "expected"), [
    ([make_event("bob@example.com", device_id="d2")], [], False),
    ([make_event(" ANNA@Example.com\t")], [], True),
    ([make_event(user_id=" u1 ", anonymous=False)], [], True),
    ([make_event(device_id=" d1\t", anonymous=True)], ["d1"], True),
    ([make_event(device_id="d2", anonymous=True)], ["d1"], False),
    ([make_event(device_id="", anonymous=True), make_event(device_id=" ", anonymous=True)], ["d1"], False),
    ([make_event(E, scope="outlet")], [], True),  # scopes ignored: a superset of the exact match
], ids=["clean", "padded email", "padded user id", "padded linked device", "other device", "blank devices",
        "other scope"])
def test_each_identity_and_linked_devices(tmp_path, events, linked, expected):
    inputs = _inputs(tmp_path, [make_profile("bob@example.com")], events)
    with connect() as con:
        assert may_match(con, entries_table([entry(E), entry(user_id="u1")]), inputs, _linked(*linked)) is expected


@pytest.mark.parametrize("devices", [["x", " d1 "], ["d1"]], ids=["padded in a list", "in a list"])
def test_a_linked_device_in_a_device_list(tmp_path, devices):
    """Events with a list of device ids (`device_ids`): each element is compared, normalised."""
    schema = pa.schema([*EVENT_SCHEMA, ("DeviceIds", pa.list_(pa.string()))])
    e = write(tmp_path / "e" / "part.parquet", [make_event(anonymous=True, DeviceIds=devices),
                                                make_event(anonymous=True, DeviceIds=None),
                                                make_event(anonymous=True, DeviceIds=["", None])], schema)
    inputs = [DatasetInput(events_config(tmp_path, device_ids="DeviceIds"), {"part.parquet": e})]
    with connect() as con:
        assert may_match(con, entries_table([entry(E)]), inputs, _linked("d1")) is True
        assert may_match(con, entries_table([entry(E)]), inputs, _linked("d9")) is False


@pytest.mark.parametrize(("events", "found"), [
    ([make_event("bob@example.com"), make_event(device_id="d2", anonymous=True)], 0),
    ([make_event("bob@example.com"), make_event(" anna@example.com")], 1),
    ([make_event(device_id="d1", anonymous=True), make_event(E, scope="outlet")], 2),
], ids=["clean", "an email left", "a linked device and a scoped email left"])
def test_verification_counts_what_a_rewritten_file_still_holds(tmp_path, events, found):
    """Clean outputs take the one-scan path; anything `may_match` finds is counted by the exact match."""
    path = write(tmp_path / "v" / "part.parquet", events, EVENT_SCHEMA)
    config = events_config(tmp_path)
    files = (FileOutcome("part.parquet", "clean", len(events), len(events), "x", "x", True),)
    outcome = DatasetOutcome("events", "events", path.parent, files, {}, {})
    with connect() as con:
        result = verify_versions(con, entries_table([entry(E, bid="b1")]), [outcome], [config],
                                 MatchResult({}, _linked("d1")), True)
    assert (result.matches, result.matches_by_entry, result.files_reread) == (found, {"b1": found} if found else {}, 1)
