"""§3, table-driven on tiny files: each case states which rows survive, by hand."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

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
    sweep,
    write,
)
from tests.oracle import expected_kept

E = "anna@example.com"

CASES = {
    # name: (entries, profiles, events, kept profile indexes, kept event indexes)
    "email exact": ([entry(E)], [make_profile(E), make_profile("bob@example.com")], [make_event(E)], [1], []),
    "case and padding": ([entry(E)], [make_profile("  Anna@EXAMPLE.com\t")],
                         [make_event("ANNA@example.COM "), make_event("anna@example.co")], [], [1]),
    "null email never matches": ([entry(E)], [make_profile(None), make_profile(None, no_info=True)],
                                 [make_event(None), make_event(anonymous=True)], [0, 1], [0, 1]),
    "user id matches": ([entry(user_id="u1")], [make_profile("x@y.z", user_id="u1"), make_profile(E, user_id="u2")],
                        [make_event(user_id="u1"), make_event(user_id="U1")], [1], [1]),
    "entry with both matches either": ([entry(E, "u9")], [make_profile("x@y.z", user_id="u9"), make_profile(E)],
                                       [make_event(E), make_event(user_id="u9"), make_event("o@y.z", "u8")],
                                       [], [2]),
    "scoped entry only its scope": ([entry(E, scope="shop")],
                                    [make_profile(E, scope="shop"), make_profile(E, scope="other"),
                                     make_profile(E, scope=None)],
                                    [make_event(E, scope="SHOP"), make_event(E, scope=" Shop "),
                                     make_event(E, scope="outlet")], [1, 2], [2]),
    "null and blank scope are DefaultScope": ([entry(E, scope="DefaultScope")],
                                              [make_profile(E, scope=None), make_profile(E, scope=""),
                                               make_profile(E, scope="   "), make_profile(E, scope="shop")],
                                              [make_event(E, scope="defaultscope")], [3], []),
    "unscoped entry covers every scope": ([entry(E)], [make_profile(E, scope="a"), make_profile(E, scope=None)],
                                          [make_event(E, scope="b")], [], []),
    "devices on removed profile": ([entry(E)], [make_profile(E, device_ids=["d1", "d2"]), make_profile("b@y.z", device_ids=["d3"])],
                                   [make_event(device_id="d1", anonymous=True), make_event(device_id="d2", email="other@y.z"),
                                    make_event(device_id="d3", anonymous=True), make_event(device_id=None, anonymous=True)],
                                   [1], [2, 3]),
    "device linked through events": ([entry(E)], [],
                                     [make_event(E, device_id="d7"), make_event(device_id="d7", anonymous=True),
                                      make_event(device_id="d8", anonymous=True)], [], [2]),
    "one hop only": ([entry(E)], [make_profile(E, device_ids=["d1"])],
                     [make_event("other@y.z", device_id="d1"), make_event("other@y.z", device_id="d2")], [], [1]),
    "scoped entry links devices within its scope": ([entry(E, scope="shop")],
                                                    [make_profile(E, scope="shop", device_ids=["d1"])],
                                                    [make_event(device_id="d1", scope="shop", anonymous=True),
                                                     make_event(device_id="d1", scope="outlet", anonymous=True),
                                                     make_event(device_id="d1", scope="Shop", anonymous=True)], [], [1]),
    "unscoped entry links devices everywhere": ([entry(E)], [make_profile(E, scope="shop", device_ids=["d1"])],
                                                [make_event(device_id="d1", scope="outlet", anonymous=True),
                                                 make_event(device_id="d1", scope=None, anonymous=True)], [], []),
    "null device ids on profile": ([entry(E)], [make_profile(E, device_ids=None), make_profile(E, device_ids=[None])],
                                   [make_event(device_id=None, anonymous=True)], [], [0]),
    "nothing blacklisted": ([], [make_profile(E)], [make_event(E)], [0], [0]),
    # Issue 14, "Identities": data as CRMs, web forms and spreadsheets write it.
    "unicode whitespace, zero-width and BOM padding": (
        [entry(E)], [make_profile(f"\u00a0{E}\u2007"), make_profile(f"\u202f{E}\u3000"), make_profile(f"\u0085{E}\u2028")],
        [make_event(f"\u200b{E}"), make_event(f"\ufeff{E}\u200b"), make_event(f"\u2060 {E}\u200d\t"),
         make_event(f"a\u00a0{E}")], [], [3]),
    "fullwidth and case variants": ([entry(E)], [make_profile("ａｎｎａ@ｅｘａｍｐｌｅ．ｃｏｍ")],
                                    [make_event("ＡＮＮＡ@Example.COM"), make_event("anna@example.con")], [], [1]),
    "scoped entry matches padded data scopes": (
        [entry(E, scope="shop")], [make_profile(E, scope="\u00a0shop\u200b"), make_profile(E, scope="\ufeff")],
        [make_event(E, scope="\u3000SHOP\u2028"), make_event(E, scope="\u00a0outlet")], [1], [1]),
    "blank device ids never link": (
        [entry(E)], [make_profile(E, device_ids=["", " ", "\u00a0\u200b", "d1"])],
        [make_event(device_id="", anonymous=True), make_event(device_id=" ", anonymous=True),
         make_event(device_id="\ufeff", email="other@y.z"), make_event(device_id=None, anonymous=True),
         make_event(device_id="d1", anonymous=True)], [], [0, 1, 2, 3]),
    "blank device id of a matched event links nothing": (
        [entry(E)], [], [make_event(E, device_id=" "), make_event(device_id="", anonymous=True),
                         make_event(device_id="\u3000", anonymous=True), make_event(device_id=" ", anonymous=True)],
        [], [1, 2, 3]),
    "device and user ids compare trimmed": (
        [entry(E), entry(user_id="u1")], [make_profile(E, device_ids=["\u00a0d1\u200b"]),
                                          make_profile("x@y.z", user_id="\ufeffu1\u3000")],
        [make_event(device_id="d1", anonymous=True), make_event(device_id=" d1 ", anonymous=True),
         make_event(device_id="D1", anonymous=True), make_event(user_id="u1\u00a0")], [], [2]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_rule(tmp_path, name):
    entries, profiles, events, kept_p, kept_e = CASES[name]
    write(tmp_path / "raw/profiles/p.parquet", profiles, PROFILE_SCHEMA)
    write(tmp_path / "raw/events/e.parquet", events, EVENT_SCHEMA)
    configs = [profiles_config(tmp_path), events_config(tmp_path)]
    outcomes, _ = sweep(configs, entries)
    got_p, got_e = read_dataset(configs[0]).to_pylist(), read_dataset(configs[1]).to_pylist()
    assert got_p == [profiles[i] for i in kept_p]
    assert got_e == [events[i] for i in kept_e]
    as_dicts = [{"email": e.email, "user_id": e.user_id, "scope": e.scope} for e in entries]
    oracle = expected_kept(as_dicts, [logical_profile(r) for r in profiles], [logical_event(r) for r in events])
    assert oracle == (kept_p, kept_e), "the oracle disagrees with the hand-written expectation"
    for o in outcomes:
        assert o.rows_in == o.rows_out + o.rows_removed


def test_linking_through_events_can_be_turned_off(tmp_path):
    write(tmp_path / "raw/profiles/p.parquet", [make_profile(E, device_ids=["d1"])], PROFILE_SCHEMA)
    events = [make_event(E, device_id="d7"), make_event(device_id="d7", anonymous=True),
              make_event(device_id="d1", anonymous=True)]
    write(tmp_path / "raw/events/e.parquet", events, EVENT_SCHEMA)
    configs = [profiles_config(tmp_path), events_config(tmp_path)]
    sweep(configs, [entry(E)], link_through_events=False)
    assert read_dataset(configs[1]).to_pylist() == [events[1]]


def test_reasons_and_entries_are_counted(tmp_path):
    write(tmp_path / "raw/profiles/p.parquet", [make_profile(E, user_id="u1", device_ids=["d1"])], PROFILE_SCHEMA)
    write(tmp_path / "raw/events/e.parquet", [make_event(E), make_event(user_id="u1"),
                                              make_event(device_id="d1", anonymous=True),
                                              make_event("keep@y.z")], EVENT_SCHEMA)
    configs = [profiles_config(tmp_path), events_config(tmp_path)]
    (profiles, events), _ = sweep(configs, [entry(E, bid="A"), entry(user_id="u1", bid="B")])
    assert profiles.by_reason == {"email": 1}
    assert profiles.by_entry == {"A": 1, "B": 1}
    assert events.by_reason == {"email": 1, "user_id": 1, "linked_device": 1}
    assert (events.rows_in, events.rows_out, events.rows_removed) == (4, 1, 3)


def test_types_and_metadata_survive_a_rewrite(tmp_path):
    rows = [make_profile(E), make_profile("keep@y.z", device_ids=["d9"], scope="shop")]
    src = write(tmp_path / "raw/profiles/p.parquet", rows, PROFILE_SCHEMA, compression="snappy")
    config = profiles_config(tmp_path)
    sweep([config], [entry(E)])
    out = config.path / "p.parquet"
    assert pq.read_schema(out) == pq.read_schema(src)
    assert pq.read_schema(out).field("UpdateTime").type.tz == "Europe/Berlin"
    assert pq.ParquetFile(out).metadata.row_group(0).column(0).compression == "SNAPPY"
    assert pq.read_table(out).to_pylist() == rows[1:]


def test_all_rows_removed_leaves_an_empty_file_with_the_schema(tmp_path):
    src = write(tmp_path / "raw/profiles/p.parquet", [make_profile(E)], PROFILE_SCHEMA)
    config = profiles_config(tmp_path)
    sweep([config], [entry(E)])
    out = pq.read_table(config.path / "p.parquet")
    assert out.num_rows == 0 and out.schema == pq.read_schema(src)


def test_second_sweep_changes_nothing(tmp_path):
    write(tmp_path / "raw/profiles/p.parquet", [make_profile(E), make_profile("b@y.z")], PROFILE_SCHEMA)
    write(tmp_path / "raw/events/e.parquet", [make_event(E), make_event("b@y.z")], EVENT_SCHEMA)
    configs = [profiles_config(tmp_path), events_config(tmp_path)]
    sweep(configs, [entry(E)], run_id="r1")
    before = {c.name: (c.path / f).read_bytes() for c in configs for f in ("p.parquet", "e.parquet")
              if (c.path / f).exists()}
    outcomes, _ = sweep(configs, [entry(E)], run_id="r2")
    assert [o.rows_removed for o in outcomes] == [0, 0]
    assert not any(f.rewritten for o in outcomes for f in o.files)
    assert all(f.origin == "clean" for o in outcomes for f in o.files)
    after = {c.name: (c.path / f).read_bytes() for c in configs for f in ("p.parquet", "e.parquet")
             if (c.path / f).exists()}
    assert before == after
