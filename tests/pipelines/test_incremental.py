"""Incremental sweeps are exact: after any sequence of adds, removes, new raw files and sweeps, the
cleaned data equals what a full sweep gives (tests/oracle.py applied to the same data), and files
that hold no match are carried over as hard links, never rewritten. At every sweep the flow's
partitioned two-pass match (pipelines/datasets/scaleout.py, pass 2 reusing pass 1's identity hits) must give
exactly the rows of the one global match.

The blacklist version here is a counter with the registry's meaning (one step per add or remove;
an entry is new for every file verified before the step that added it). One test runs through the
real registry (SQLite) to tie the two together.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.config.settings import Settings
from pipelines.core.match import connect, entries_table, find_matches, with_versions
from pipelines.core.model import Entry, MatchResult
from pipelines.datasets import scaleout, storage
from pipelines.datasets.sweep import (
    match_fingerprint,
    plan_dataset,
    publish_version,
    verify_versions,
    write_version,
)
from pipelines.registry.registry import Registry
from tests import oracle
from tests.helpers import (
    EVENT_SCHEMA,
    PROFILE_SCHEMA,
    events_config,
    logical_event,
    logical_profile,
    make_event,
    make_profile,
    profiles_config,
    write,
)
from tests.support.hypothesis_profiles import examples

EMAILS = ["ann@example.com", "bo@example.com", "cy@example.com"]
USER_IDS = ["u1", "u2", "u3"]
DEVICES = ["d1", "d2", "d3", "d4"]
ENTRY_SCOPES = [None, "commercesite", "outlet"]
DATA_SCOPES = [None, "", " ", "commercesite", "CommerceSite", "outlet", "DefaultScope"]


def _spelling(email: str, variant: int) -> str:
    return [email, email.upper(), f"  {email} ", email.title()][variant]


emails_in_data = st.one_of(st.none(), st.builds(_spelling, st.sampled_from(EMAILS), st.integers(0, 3)))
user_ids = st.one_of(st.none(), st.sampled_from(USER_IDS))
scopes = st.sampled_from(DATA_SCOPES)

profile_rows = st.lists(st.fixed_dictionaries({
    "email": emails_in_data, "user_id": user_ids, "scope": scopes,
    "device_ids": st.lists(st.sampled_from(DEVICES), max_size=2)}), max_size=4)
event_rows = st.lists(st.fixed_dictionaries({
    "email": emails_in_data, "user_id": user_ids, "scope": scopes,
    "device_id": st.one_of(st.none(), st.sampled_from(DEVICES))}), max_size=5)
entries = st.builds(
    lambda email, user_id, scope: (email, user_id if email is None or user_id else None, scope),
    st.one_of(st.none(), st.sampled_from(EMAILS)), st.sampled_from(USER_IDS), st.sampled_from(ENTRY_SCOPES))
operations = st.lists(st.one_of(
    st.tuples(st.just("add"), entries),
    st.tuples(st.just("remove"), st.integers(0, 20)),
    st.tuples(st.just("sweep")),
    st.tuples(st.just("events_file"), st.sampled_from(["e2.parquet", "e3.parquet", "e1.parquet"]), event_rows),
    st.tuples(st.just("profiles_file"), st.sampled_from(["p2.parquet", "p1.parquet"]), profile_rows),
), max_size=8)


@dataclass
class Lake:
    """Real files, swept by the pipeline; beside them the rows the oracle says each file must hold."""

    root: Path
    link_through_events: bool = True
    version: int = 0
    entries: dict[str, tuple[Entry, int]] = field(default_factory=dict)
    expected: dict[str, dict[str, list[dict]]] = field(default_factory=lambda: {"profiles": {}, "events": {}})
    pending: dict[str, dict[str, list[dict]]] = field(default_factory=lambda: {"profiles": {}, "events": {}})
    rows_made: int = 0
    mtime: int = 1_700_000_000_000_000_000
    sweeps: int = 0

    def __post_init__(self) -> None:
        self.configs = [profiles_config(self.root), events_config(self.root)]
        self.fingerprint = match_fingerprint(self.configs, self.link_through_events)
        self.settings = Settings(config_path=self.root / "gdpr-sweep.toml", work_dir=self.root / "work",
                                 report_dir=self.root / "reports", blacklist_db=self.root / "blacklist.db",
                                 link_devices_through_events=self.link_through_events, datasets=tuple(self.configs))

    # -- changes ---------------------------------------------------------------------------
    def add(self, email: str | None, user_id: str | None, scope: str | None) -> None:
        self.version += 1
        bid = f"bid-{self.version}"
        self.entries[bid] = (Entry(bid, email, user_id, scope), self.version)

    def remove(self, index: int) -> None:
        if self.entries:
            self.version += 1
            del self.entries[sorted(self.entries)[index % len(self.entries)]]

    def raw_file(self, kind: str, rel: str, logical: list[dict]) -> None:
        """A new or replaced raw snapshot file; each row carries a unique id (ProfileId / EventType)."""
        rows = []
        for r in logical:
            self.rows_made += 1
            if kind == "profiles":
                rows.append(make_profile(email=r["email"], user_id=r["user_id"], device_ids=r["device_ids"],
                                         scope=r["scope"], profile_id=f"p{self.rows_made}"))
            else:
                rows.append(make_event(email=r["email"], user_id=r["user_id"], device_id=r["device_id"],
                                       scope=r["scope"], EventType=f"e{self.rows_made}"))
        config = self.configs[0] if kind == "profiles" else self.configs[1]
        path = write(config.source / rel, rows, PROFILE_SCHEMA if kind == "profiles" else EVENT_SCHEMA)
        self.mtime += 1_000_000
        os.utime(path, ns=(self.mtime, self.mtime))
        self.pending[kind][rel] = rows

    # -- the sweep and its oracle ------------------------------------------------------------
    def sweep(self) -> None:
        self.sweeps += 1
        previous = {c.name: _inodes(c.path) for c in self.configs}
        plans = [plan_dataset(c, self.fingerprint) for c in self.configs]
        current = [e for e, _ in self.entries.values()]
        table = with_versions(entries_table(current), {bid: v for bid, (_, v) in self.entries.items()})
        with connect() as con:
            matches = find_matches(con, table, [p.as_input(self.version) for p in plans], self.link_through_events)
            _assert_same_rows(_two_passes(self.settings, table, plans, self.version), matches)
            outcomes = [write_version(p, matches.datasets[p.config.name], f"r{self.sweeps}", self.version,
                                      self.fingerprint) for p in plans]
            verification = verify_versions(con, entries_table(current), outcomes, self.configs, matches,
                                           self.link_through_events)
        assert verification.ok, verification
        for c, o in zip(self.configs, outcomes, strict=True):
            publish_version(c, o)
        self._expect(current)
        for c, o in zip(self.configs, outcomes, strict=True):
            self._check_carried(c, o, previous[c.name])

    def _expect(self, current: list[Entry]) -> None:
        for kind in ("profiles", "events"):
            self.expected[kind].update(self.pending[kind])
            self.pending[kind] = {}
        flat = {kind: [(rel, row) for rel in sorted(files) for row in files[rel]]
                for kind, files in self.expected.items()}
        as_dicts = [{"email": e.email, "user_id": e.user_id, "scope": e.scope} for e in current]
        kept_p, kept_e = oracle.expected_kept(as_dicts, [logical_profile(r) for _, r in flat["profiles"]],
                                              [logical_event(r) for _, r in flat["events"]], self.link_through_events)
        for kind, kept in (("profiles", kept_p), ("events", kept_e)):
            files: dict[str, list[dict]] = {rel: [] for rel in self.expected[kind]}
            for i in kept:
                rel, row = flat[kind][i]
                files[rel].append(row)
            self.expected[kind] = files

    def _check_carried(self, config, outcome, previous: dict[str, int]) -> None:
        """A file the run did not rewrite is the previous version's file itself (same inode)."""
        for f in outcome.files:
            if f.origin == "clean" and not f.rewritten:
                assert os.stat(outcome.version / f.relpath).st_ino == previous[f.relpath]

    def assert_clean_data_expected(self) -> None:
        for config in self.configs:
            version = storage.current_version(config.path)
            on_disk = {rel: pq.read_table(version / rel).to_pylist() for rel in storage.list_parquet(version)} \
                if version else {}
            assert on_disk == self.expected[config.name], config.name


def _two_passes(settings: Settings, entries, plans, version: int) -> MatchResult:
    """The flow's match: two partitions per dataset, pass 1 (identity scan) then pass 2 (device scan)."""
    parts = scaleout.partitions(plans, per_dataset=2)
    by_name = {p.config.name: p for p in plans}
    links = [scaleout.link_partition(settings, entries, by_name[x.dataset], x.relpaths, version) for x in parts]
    linked = scaleout.union_linked(x.linked for x in links)
    per_part = [scaleout.match_partition(settings, entries, by_name[x.dataset], x.relpaths, linked, version, own)
                for x, own in zip(parts, links, strict=True)]
    return scaleout.merge_matches(plans, parts, per_part, linked)


def _assert_same_rows(got: MatchResult, expected: MatchResult) -> None:
    for name, m in expected.datasets.items():
        g = got.datasets[name]
        assert {k: v.tolist() for k, v in g.drops.items()} == {k: v.tolist() for k, v in m.drops.items()}, name
        assert (g.by_reason, g.by_entry) == (m.by_reason, m.by_entry), name


def _inodes(dataset: Path) -> dict[str, int]:
    return {rel: os.stat(dataset / rel).st_ino for rel in storage.list_parquet(dataset)}


def _run(root: Path, raw_profiles, raw_events, ops, link_through_events=True) -> Lake:
    lake = Lake(root, link_through_events)
    lake.raw_file("profiles", "p1.parquet", raw_profiles)
    lake.raw_file("events", "e1.parquet", raw_events)
    for op in ops:
        if op[0] == "add":
            lake.add(*op[1])
        elif op[0] == "remove":
            lake.remove(op[1])
        elif op[0] == "sweep":
            lake.sweep()
            lake.assert_clean_data_expected()
        else:
            lake.raw_file("profiles" if op[0] == "profiles_file" else "events", op[1], op[2])
    lake.sweep()
    lake.assert_clean_data_expected()
    return lake


@settings(max_examples=examples(ci=15, thorough=150), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw_profiles=profile_rows, raw_events=event_rows, ops=operations, link=st.booleans())
def test_incremental_sweeps_match_the_oracle(tmp_path_factory, raw_profiles, raw_events, ops, link):
    _run(tmp_path_factory.mktemp("lake"), raw_profiles, raw_events, ops, link)


def _three_days(lake: Lake) -> None:
    lake.raw_file("profiles", "p1.parquet", [
        {"email": "ann@example.com", "user_id": None, "scope": None, "device_ids": ["d1"]},
        {"email": "bo@example.com", "user_id": None, "scope": None, "device_ids": ["d2"]}])
    lake.raw_file("events", "e1.parquet", [{"email": None, "user_id": None, "scope": None, "device_id": "d1"}])
    lake.raw_file("events", "e2.parquet", [{"email": None, "user_id": None, "scope": None, "device_id": "d2"}])
    lake.raw_file("events", "e3.parquet", [{"email": "cy@example.com", "user_id": None, "scope": None,
                                            "device_id": "d3"}])


def test_a_new_entry_rewrites_only_the_files_it_touches(tmp_path):
    lake = Lake(tmp_path)
    _three_days(lake)
    lake.add("ann@example.com", None, None)
    lake.sweep()  # ann's profile and e1 (her device) go
    lake.add("bo@example.com", None, None)
    before = {rel: os.stat(lake.configs[1].path / rel).st_ino for rel in ("e1.parquet", "e3.parquet")}
    lake.sweep()  # bo's profile and e2 (his device); e1 and e3 untouched
    lake.assert_clean_data_expected()
    after = {rel: os.stat(lake.configs[1].path / rel).st_ino for rel in ("e1.parquet", "e3.parquet")}
    assert after == before
    manifest = storage.read_manifest(storage.current_version(lake.configs[1].path))
    assert {f["blacklist_version"] for f in manifest["files"].values()} == {lake.version}


def test_whitelisting_rewrites_nothing_and_purged_data_stays_purged(tmp_path):
    lake = Lake(tmp_path)
    _three_days(lake)
    lake.add("ann@example.com", None, None)
    lake.sweep()
    inodes = {c.name: {rel: os.stat(c.path / rel).st_ino for rel in storage.list_parquet(c.path)}
              for c in lake.configs}
    lake.remove(0)
    lake.sweep()
    lake.assert_clean_data_expected()
    assert {c.name: {rel: os.stat(c.path / rel).st_ino for rel in storage.list_parquet(c.path)}
            for c in lake.configs} == inodes
    assert [r["ProfileId"] for r in pq.read_table(lake.configs[0].path / "p1.parquet").to_pylist()] == ["p2"]


def test_an_old_entry_still_applies_to_a_new_raw_file_and_its_linked_devices(tmp_path):
    """Rows of a new snapshot are matched against every entry; a device they link is removed from
    files verified long ago too."""
    lake = Lake(tmp_path)
    _three_days(lake)
    lake.add("cy@example.com", None, None)
    lake.sweep()  # e3 (cy's own event) goes; e1, e2 stay
    lake.raw_file("events", "e4.parquet", [{"email": "CY@example.com ", "user_id": None, "scope": None,
                                            "device_id": "d1"}])
    lake.sweep()  # e4 matches cy by email and links d1: e1 goes too
    lake.assert_clean_data_expected()
    assert lake.expected["events"]["e1.parquet"] == []


def test_a_changed_configuration_matches_everything_again(tmp_path):
    lake = Lake(tmp_path, link_through_events=False)
    _three_days(lake)
    lake.raw_file("events", "e2.parquet", [{"email": "cy@example.com", "user_id": None, "scope": None,
                                            "device_id": "d2"}])
    lake.add("cy@example.com", None, None)
    lake.sweep()
    relinked = Lake(tmp_path, link_through_events=True)  # same files, linking through events now on
    relinked.version, relinked.entries, relinked.sweeps = lake.version, dict(lake.entries), lake.sweeps
    relinked.expected = lake.expected
    plans = [plan_dataset(c, relinked.fingerprint) for c in relinked.configs]
    assert all(f.verified is None for p in plans for f in p.files)
    relinked.sweep()
    relinked.assert_clean_data_expected()


def test_entry_versions_come_from_the_real_registry(tmp_path):
    """The flow's wiring: the registry snapshot's `added` versions drive which entries a file needs."""
    registry = Registry(tmp_path / "blacklist.db")
    lake = Lake(tmp_path)
    _three_days(lake)
    registry.add(email="ann@example.com")

    def sweep_from_registry():
        snap = registry.snapshot()
        lake.entries = {e.blacklist_id: (e, snap.added.get(e.blacklist_id, 2**62)) for e in snap.entries}
        lake.version = snap.version
        lake.sweep()
        lake.assert_clean_data_expected()

    sweep_from_registry()
    plans = [plan_dataset(c, lake.fingerprint) for c in lake.configs]
    assert {f.verified for p in plans for f in p.files} == {registry.snapshot().version}
    registry.add(email="bo@example.com")
    e1 = os.stat(lake.configs[1].path / "e1.parquet").st_ino
    sweep_from_registry()
    assert os.stat(lake.configs[1].path / "e1.parquet").st_ino == e1
    assert lake.expected["events"]["e2.parquet"] == []
