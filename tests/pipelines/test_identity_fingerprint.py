"""Changing the identity normalisation re-matches an existing lake once (issue 14; decision 0007).

A lake swept before the change has files recorded as verified under the old normalisation. A row
the old rules let through (here an email padded with a no-break space) must be removed by the next
sweep, although the entry is older than the file's verified version: the normalisation is part of
the match fingerprint, so the next sweep falls back to a full match. (Since decision 0201 every sweep
matches every file against every entry anyway; the fingerprint is recorded, not relied on.)
"""

from __future__ import annotations

import hashlib
import json

from pipelines.core.match import connect, entries_table, find_matches, with_versions
from pipelines.datasets.sweep import match_fingerprint, plan_dataset, publish_version, write_version
from tests.helpers import PROFILE_SCHEMA, entry, make_profile, profiles_config, read_dataset, write

E = "anna@example.com"


def fingerprint_before_issue_14(configs, link_through_events: bool) -> str:
    """`match_fingerprint` as commit 23a9caf computed it (without the normalisation)."""
    shape = {"datasets": sorted([c.name, c.kind, c.identity_columns] for c in configs),
             "link_devices_through_events": link_through_events}
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()


def _sweep(config, entries, version, fingerprint, added, run_id):
    plan = plan_dataset(config, fingerprint)
    table = with_versions(entries_table(entries), added)
    with connect() as con:
        matches = find_matches(con, table, [plan.as_input(version)])
    outcome = write_version(plan, matches.datasets[config.name], run_id, version, fingerprint)
    publish_version(config, outcome)
    return outcome


def test_a_new_normalisation_changes_the_fingerprint(tmp_path):
    configs = [profiles_config(tmp_path)]
    assert match_fingerprint(configs, True) != fingerprint_before_issue_14(configs, True)


def test_a_lake_verified_under_the_old_normalisation_is_matched_again(tmp_path):
    write(tmp_path / "raw/profiles/p.parquet", [make_profile(f"\u00a0{E}"), make_profile("bo@example.com")],
          PROFILE_SCHEMA)
    config = profiles_config(tmp_path)
    old = fingerprint_before_issue_14([config], True)
    # What the old code left: the entry (added at version 3) did not match the padded row, and the
    # file was recorded as verified at version 5 under the old fingerprint.
    _sweep(config, [], 5, old, {}, "r1")
    assert read_dataset(config).num_rows == 2
    outcome = _sweep(config, [entry(E, bid="A")], 5, match_fingerprint([config], True), {"A": 3}, "r2")
    assert outcome.rows_removed == 1
    assert [r["Info"]["Email"] for r in read_dataset(config).to_pylist()] == ["bo@example.com"]


def test_an_old_entry_is_matched_even_under_an_unchanged_fingerprint(tmp_path):
    """Every sweep matches every cleaned file against every entry (decision 0201, §5), so the
    fingerprint no longer narrows the match: under the current fingerprint too, an old entry is
    matched against a file verified after it, and the padded row goes."""
    write(tmp_path / "raw/profiles/p.parquet", [make_profile(f"\u00a0{E}")], PROFILE_SCHEMA)
    config = profiles_config(tmp_path)
    current = match_fingerprint([config], True)
    _sweep(config, [], 5, current, {}, "r1")
    outcome = _sweep(config, [entry(E, bid="A")], 5, current, {"A": 3}, "r2")
    assert outcome.rows_removed == 1
