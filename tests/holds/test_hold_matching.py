"""Retention holds in matching: exactly the rows whose only matches are held (entry, dataset) pairs
are kept, checked against an independent oracle (tests/holds/oracle_holds.py) on hand-written and
generated lakes."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from pipelines.core.holds import HELD_SCHEMA
from pipelines.core.match import connect, entries_table, find_matches
from pipelines.datasets.sweep import plan_dataset, publish_version, verify_versions, write_version
from tests.helpers import (
    EVENT_SCHEMA,
    PROFILE_SCHEMA,
    entry,
    events_config,
    logical_event,
    logical_profile,
    make_event,
    make_profile,
    profiles_config,
    read_dataset,
    write,
)
from tests.holds.oracle_holds import expected_with_holds

A, B = "anna@example.com", "bob@example.com"


def held(*pairs):
    return pa.Table.from_pylist([{"bid": b, "dataset": d} for b, d in pairs], schema=HELD_SCHEMA)


def sweep_with_holds(configs, entries, pairs, run_id="r1"):
    plans = [plan_dataset(c) for c in configs]
    table, holds = entries_table(entries), held(*pairs)
    with connect() as con:
        matches = find_matches(con, table, [p.as_input() for p in plans], True, held=holds)
        outcomes = [write_version(p, matches.datasets[p.config.name], run_id, 1) for p in plans]
        verification = verify_versions(con, table, outcomes, configs, matches, True, held=holds)
    assert verification.ok, verification
    for c, o in zip(configs, outcomes, strict=True):
        publish_version(c, o)
    return matches


def lake(tmp_path, profiles, events):
    write(tmp_path / "raw/profiles/p.parquet", profiles, PROFILE_SCHEMA)
    write(tmp_path / "raw/events/e.parquet", events, EVENT_SCHEMA)
    return [profiles_config(tmp_path), events_config(tmp_path)]


def check_against_oracle(tmp_path, entries, profiles, events, pairs):
    configs = lake(tmp_path, profiles, events)
    matches = sweep_with_holds(configs, entries, pairs)
    expected = expected_with_holds(
        [{"bid": e.blacklist_id, "email": e.email, "user_id": e.user_id, "scope": e.scope} for e in entries],
        [logical_profile(r) for r in profiles], [logical_event(r) for r in events], pairs)
    for config, rows in zip(configs, (profiles, events), strict=True):
        kept, held_by_entry = expected[config.name]
        got = read_dataset(config)
        assert (got.to_pylist() if got is not None else []) == [rows[i] for i in kept], config.name
        assert matches.datasets[config.name].held_by_entry == held_by_entry, config.name
        removed = len(rows) - len(kept)
        assert matches.datasets[config.name].rows_removed == removed


def test_hold_on_one_dataset_keeps_exactly_its_rows(tmp_path):
    entries = [entry(A, bid="A", user_id="ua"), entry(B, bid="B")]
    profiles = [make_profile(A, device_ids=["d1"]), make_profile(B), make_profile("keep@y.z")]
    events = [make_event(A), make_event(device_id="d1", anonymous=True), make_event(B),
              make_event(user_id="ua"), make_event("keep@y.z")]
    check_against_oracle(tmp_path, entries, profiles, events, [("A", "events")])
    got = read_dataset(events_config(tmp_path)).to_pylist()
    assert got == [events[0], events[1], events[3], events[4]]  # A's events, including its linked device
    assert read_dataset(profiles_config(tmp_path)).to_pylist() == [profiles[2]]  # A's profile is not held


def test_row_of_a_held_and_an_unheld_entry_is_erased(tmp_path):
    entries = [entry(A, bid="A"), entry(user_id="u2", bid="B")]
    events = [make_event(A, user_id="u2"), make_event(A), make_event(user_id="u2")]
    check_against_oracle(tmp_path, entries, [make_profile("keep@y.z")], events, [("A", "events")])
    assert read_dataset(events_config(tmp_path)).to_pylist() == [events[1]]


@pytest.mark.parametrize("pairs", [[("A", None)], [(None, "profiles")], [("A", "profiles"), ("B", "events")], []])
def test_entry_wide_and_dataset_wide_holds(tmp_path, pairs):
    entries = [entry(A, bid="A"), entry(B, bid="B", scope="shop")]
    profiles = [make_profile(A, device_ids=["d1"]), make_profile(B, scope="shop", device_ids=["d2"])]
    events = [make_event(A), make_event(B, scope="shop"), make_event(device_id="d1", anonymous=True),
              make_event(device_id="d2", scope="shop", anonymous=True), make_event(device_id="d2", anonymous=True)]
    check_against_oracle(tmp_path, entries, profiles, events, pairs)


@pytest.mark.parametrize("seed", range(12))
def test_generated_lakes_agree_with_the_oracle(tmp_path, seed):
    rnd = random.Random(seed)
    emails = [f"p{i}@example.com" for i in range(6)]
    devices = [f"d{i}" for i in range(6)]
    scopes = [None, "shop", "outlet"]
    entries = [entry(rnd.choice(emails), rnd.choice([None, f"u{i}"]), rnd.choice(scopes), bid=f"E{i}")
               for i in range(3)]
    profiles = [make_profile(rnd.choice(emails + [None]), rnd.choice([None, "u0", "u1", "u2"]),
                             rnd.sample(devices, 2), rnd.choice(scopes)) for _ in range(8)]
    events = [make_event(rnd.choice(emails + [None]), rnd.choice([None, "u0", "u1"]), rnd.choice(devices + [None]),
                         rnd.choice(scopes)) for _ in range(30)]
    pool = [(f"E{i}", d) for i in range(3) for d in ("profiles", "events", None)] + [(None, "events"), (None, "profiles")]
    pairs = rnd.sample(pool, rnd.randint(0, 3))
    check_against_oracle(tmp_path, entries, profiles, events, pairs)
