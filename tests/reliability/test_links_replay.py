"""Property test (issue 13, finding 8; §3 rule 3): over random multi-night sequences of new and
re-delivered raw snapshots, new entries, whitelistings and sweeps, the cleaned data after every night
equals the replay of tests/replay.py: every delivered file's current content swept under that night's
blacklist, with links from every row ever delivered; rows removed from a file stay removed until the
file is delivered again.

Each night runs the sweep's own steps (`pipelines.datasets.scaleout`) without Prefect, as flows/sweep.py wires
them: plan, the two-pass partitioned match with the links remembered in the real registry
(`pipelines.registry.links`), the links found recorded back, then write, verify, publish and (when asked)
delete the consumed raw files. Linking rows are often removed nights before rows from their devices
arrive: the sweep sees those devices only through the registry.

What a tool can know: a link is learnt from a row it reads while an entry names that row. A row that
left the data before any entry named it (re-delivered away, or removed for someone else) cannot link
a later entry; the tool keeps no device graph of people nobody blacklisted
(docs/decisions/0211-remembered-device-links.md). The generator therefore adds an entry for a person
only while every device-carrying row of theirs ever delivered is still in the data; everything else
(scopes, shared devices, whitelisting, re-delivery, both linking modes, raw deletion) is free.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, Phase, event, given, seed, settings
from hypothesis import strategies as st

from pipelines.config.settings import Settings
from pipelines.core.match import with_versions
from pipelines.datasets import scaleout, storage
from pipelines.datasets.sweep import match_fingerprint
from pipelines.registry.links import LinkStore, remember_found, remembered_links
from pipelines.registry.registry import Registry
from tests.helpers import (
    EVENT_SCHEMA,
    PROFILE_SCHEMA,
    events_config,
    make_event,
    make_profile,
    profiles_config,
    write,
)
from tests.replay import Replay
from tests.support.hypothesis_profiles import examples

PEOPLE = 3
DEVICES = ["d0", "d1", "d2", "d3", "d4"]
DATA_SCOPES = [None, "shop", "app", "SHOP"]
ENTRY_SCOPES = [None, None, "shop", "app"]
FILES = {"profiles": ["p1.parquet", "p2.parquet"], "events": ["e1.parquet", "e2.parquet", "e3.parquet"]}
NIGHTS = 5


def email(person: int) -> str:
    return f"person{person}@example.com"


def user_id(person: int) -> str:
    return f"u{person}"


class Lake:
    """A real lake and registry on disk, swept night by night like the flow does."""

    def __init__(self, root: Path, link_through_events: bool, delete_raw: bool):
        self.configs = [profiles_config(root, delete_raw=delete_raw), events_config(root, delete_raw=delete_raw)]
        self.settings = Settings(config_path=root / "gdpr-sweep.toml", work_dir=root / "work",
                                 report_dir=root / "reports", blacklist_db=root / "blacklist.db",
                                 link_devices_through_events=link_through_events, datasets=tuple(self.configs))
        self.registry = Registry(self.settings.blacklist_db)
        self.fingerprint = match_fingerprint(self.configs, link_through_events)
        self.mtime = 1_700_000_000_000_000_000
        self.nights = 0

    def deliver(self, kind: str, rel: str, rows: list[dict]) -> None:
        config = self.configs[0] if kind == "profiles" else self.configs[1]
        made = [make_profile(email=r["email"], user_id=r["user_id"], device_ids=r["device_ids"], scope=r["scope"],
                             profile_id=r["id"]) if kind == "profiles" else
                make_event(email=r["email"], user_id=r["user_id"], device_id=r["device_id"], scope=r["scope"],
                           anonymous=r["email"] is None and r["user_id"] is None, EventType=r["id"])
                for r in rows]
        tmp = write(config.source / f".{rel}.tmp", made, PROFILE_SCHEMA if kind == "profiles" else EVENT_SCHEMA)
        self.mtime += 1_000_000_000
        os.utime(tmp, ns=(self.mtime, self.mtime))
        os.replace(tmp, config.source / rel)  # a delivery never writes into a file the lake may share

    def sweep(self) -> None:
        """flows/sweep.py's steps: plan, match in two passes with remembered links, record the links
        found, write, verify, publish, delete consumed raw files."""
        self.nights += 1
        run_id = f"night{self.nights}"
        snap = self.registry.snapshot()
        entries = with_versions(snap.entries_table(), snap.added)
        plans = [scaleout.plan(self.settings, c, self.fingerprint) for c in self.configs]
        parts = scaleout.partitions(plans, per_dataset=2)
        by_name = {p.config.name: p for p in plans}
        links = [scaleout.link_partition(self.settings, entries, by_name[x.dataset], x.relpaths, snap.version)
                 for x in parts]
        remembered = remembered_links(self.settings, entries)
        remember_found(self.settings, [x.hits for x in links], self.configs, run_id)
        linked = scaleout.union_linked([*(x.linked for x in links), remembered])
        per_part = [scaleout.match_partition(self.settings, entries, by_name[x.dataset], x.relpaths, linked,
                                             snap.version, own) for x, own in zip(parts, links, strict=True)]
        matches = scaleout.merge_matches(plans, parts, per_part, linked)
        outcomes = []
        for p in plans:
            m = matches.datasets[p.config.name]
            scaleout.start_version(self.settings, p, run_id)
            rels = [f.relpath for f in p.files]
            files = scaleout.write_partition(self.settings, p, rels, {r: m.drops[r] for r in rels if r in m.drops},
                                             run_id)
            outcomes.append(scaleout.finish_dataset(self.settings, p, files, m, run_id, snap.version, self.fingerprint))
        pieces = scaleout.verification_slices(outcomes, 2)
        verification = scaleout.merge_verifications(
            [scaleout.verify_partition(self.settings, snap.entries_table(), piece, matches.linked_devices)
             for piece in pieces])
        assert verification.ok, verification
        for plan, outcome in zip(plans, outcomes, strict=True):
            scaleout.publish(self.settings, plan, outcome, [])
            if plan.config.delete_raw:
                scaleout.delete_consumed_raw(self.settings, plan, outcome)

    def cleaned(self, kind: str) -> dict[str, list[str]]:
        config = self.configs[0] if kind == "profiles" else self.configs[1]
        version = storage.current_version(config.path)
        key = "ProfileId" if kind == "profiles" else "EventType"
        return {rel: pq.read_table(version / rel, columns=[key]).column(key).to_pylist()
                for rel in storage.list_parquet(version)} if version else {}


@st.composite
def identity(draw, person: int) -> tuple[str | None, str | None]:
    form = draw(st.sampled_from(["email", "user_id", "both"]))
    spelled = draw(st.sampled_from([email(person), email(person).upper(), f" {email(person)} "]))
    return (spelled if form != "user_id" else None), (user_id(person) if form != "email" else None)


@st.composite
def rows(draw, kind: str, counter: list[int]) -> list[dict]:
    out = []
    for _ in range(draw(st.integers(1, 4))):
        counter[0] += 1
        person = draw(st.integers(-1 if kind == "events" else 0, PEOPLE - 1))  # -1: an anonymous event
        mail, uid = draw(identity(person)) if person >= 0 else (None, None)
        row = {"id": f"{kind[0]}{counter[0]}", "email": mail, "user_id": uid, "scope": draw(st.sampled_from(DATA_SCOPES))}
        if kind == "profiles":
            row["device_ids"] = draw(st.lists(st.sampled_from(DEVICES), max_size=2, unique=True))
        else:
            row["device_id"] = draw(st.one_of(st.none(), st.sampled_from(DEVICES)))
        out.append(row)
    return out


@st.composite
def late_rows(draw, devices: list[str], counter: list[int]) -> list[dict]:
    """Anonymous events from devices whose linking rows a sweep already removed: the finding's case."""
    out = []
    for _ in range(draw(st.integers(1, 3))):
        counter[0] += 1
        out.append({"id": f"e{counter[0]}", "email": None, "user_id": None, "device_id": draw(st.sampled_from(devices)),
                    "scope": draw(st.sampled_from(DATA_SCOPES))})
    return out


def person_of(row: dict) -> int | None:
    for person in range(PEOPLE):
        if row["user_id"] == user_id(person) or (row["email"] or "").strip().lower() == email(person):
            return person
    return None


def has_device(row: dict) -> bool:
    return bool(row.get("device_ids") or row.get("device_id"))


def play(lake: Lake, replay: Replay, data) -> None:
    """Draw and play the nights; after each, the lake's cleaned data must equal the replay's."""
    counter = [0]
    gone: set[int] = set()  # people one of whose device-carrying rows has left the data
    bids: list[str] = []
    unlinked: set[str] = set()  # devices of identity rows removed so far
    for night in range(NIGHTS):
        first = ["profiles", "events"] if night == 0 else []  # a dataset with no file at all is refused
        for i in range(len(first) + data.draw(st.integers(1 if unlinked else 0, 2), label="deliveries")):
            kinds = ["profiles", "events", "events"] + (["late"] * 3 if unlinked else [])
            kind = first[i] if i < len(first) else data.draw(st.sampled_from(kinds), label="kind")
            late, kind = kind == "late", "events" if kind == "late" else kind
            rel = data.draw(st.sampled_from(FILES[kind]), label="file")
            delivered = data.draw(late_rows(sorted(unlinked), counter) if late else rows(kind, counter), label="rows")
            lake.deliver(kind, rel, delivered)
            gone |= {p for r in replay.deliver(kind, rel, delivered) if has_device(r) and (p := person_of(r)) is not None}
        for _ in range(data.draw(st.integers(1 if night < 2 else 0, 2), label="blacklist changes")):
            if bids and data.draw(st.integers(0, 3), label="whitelist?") == 0:
                bid = data.draw(st.sampled_from(bids), label="whitelisted")
                lake.registry.remove(bid)
                bids.remove(bid)
                del replay.entries[bid]
                continue
            present = sorted({p for r in replay.present() if has_device(r) and (p := person_of(r)) is not None} - gone)
            person = data.draw(st.sampled_from(present or list(range(PEOPLE))), label="person")  # mostly linkable
            if person in gone:
                continue
            mail, uid = data.draw(identity(person), label="entry identity")
            scope = data.draw(st.sampled_from(ENTRY_SCOPES), label="entry scope")
            record, created = lake.registry.add(email=mail, user_id=uid, scope=scope)
            if created:
                bids.append(record.blacklist_id)
                replay.entries[record.blacklist_id] = {"email": record.email, "user_id": record.user_id,
                                                       "scope": record.scope}
        lake.sweep()
        removed = replay.sweep()
        gone |= {p for r in removed if has_device(r) and (p := person_of(r)) is not None}
        tonight = {d for r in removed if person_of(r) is not None for d in (r.get("device_ids") or [r.get("device_id")]) if d}
        if any(r.get("device_id") in unlinked - tonight for r in removed if person_of(r) is None):
            event("an anonymous event removed through a link whose rows went on an earlier night")
        unlinked |= tonight
        for kind in ("profiles", "events"):
            assert lake.cleaned(kind) == replay.cleaned(kind), (night, kind)
    if LinkStore(lake.registry).count():
        event("links remembered")


@settings(max_examples=examples(ci=8, thorough=80), deadline=None, database=None, phases=[Phase.generate, Phase.shrink],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), link_through_events=st.booleans(), delete_raw=st.booleans())
def test_nightly_sweeps_equal_the_replay_of_the_nights(data, link_through_events, delete_raw):
    nights_against_replay(data, link_through_events, delete_raw)


@pytest.mark.xfail(strict=True, reason="known bug found on 2026-12-08 (already at af79064): on night 4 the lake "
                   "keeps a late event of a linked device that the replay removes; see docs/known-issues.md")
@seed(281790586470122425295756346317670545085)
@settings(max_examples=8, deadline=None, database=None, phases=[Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), link_through_events=st.booleans(), delete_raw=st.booleans())
def test_known_bug_late_event_of_a_linked_device_kept(data, link_through_events, delete_raw):
    """The counterexample the property above found in a fresh-clone run, pinned by its seed (the
    generation phase only: it fails in seconds). Strict: once fixed, this fails until the mark goes."""
    nights_against_replay(data, link_through_events, delete_raw)


def nights_against_replay(data, link_through_events, delete_raw):
    root = Path(tempfile.mkdtemp(prefix="gdpr-links-replay-"))
    lake = Lake(root, link_through_events, delete_raw)
    try:
        play(lake, Replay(link_through_events), data)
    finally:
        lake.registry.close()
        shutil.rmtree(root, ignore_errors=True)
