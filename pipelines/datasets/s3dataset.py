"""A Parquet dataset on an S3-compatible prefix, swept in place (docs/decisions/0251-s3-plain-keys-conditional-writes.md).

The dataset's objects stay at their own keys (`s3://lake/events/date=.../part-0.parquet`), so any
engine reading the prefix, and a Glue/Hive table over it, sees the cleaned data:

1. `plan`: one LIST of the prefix. Each plain `*.parquet` object is a file of the dataset, with the
   ETag the run read; the state object `_gdpr_sweep_state.json` (beside them, skipped by readers as
   every `_` name is) says which of them an earlier sweep verified, against which blacklist version.
   New or changed objects (an ETag the state does not know) are matched against every entry. A raw
   `source` prefix adds its new or changed snapshots; a dataset still in the layout of before
   2026-12-06 (`_gdpr_sweep_current.json`, `_gdpr_sweep_versions/`) adds its current version's files,
   which this run moves back to plain keys.
2. `write_files`: a file with rows to drop is downloaded (pinned to its ETag), rewritten exactly by
   `storage.rewrite_without_rows` and PUT back at its own key with `If-Match: <ETag read>`; a raw
   snapshot or a legacy file is PUT at its key with `If-Match` on the object planned there, or
   `If-None-Match: *` where there was none. Every other object is not touched. An object that changed
   since it was read makes its PUT fail: the run stops for that file (`objectstore.Changed`).
3. `finish`: one LIST again; an untouched object whose ETag moved was changed during the run (so its
   match may not be of these bytes): the run stops for it too.
4. `verify` re-reads each replaced object (pinned to the ETag this run wrote) and matches it again.
5. `publish`: in a versioned bucket, delete the superseded versions of every replaced object (they hold
   the purged rows); remove the legacy layout; then write the state (only if it changed, so a quiet
   night writes nothing). `delete_consumed_raw` deletes raw snapshots unchanged since they were read.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import duckdb
import numpy as np
import pyarrow as pa

from pipelines.config.settings import DatasetConfig
from pipelines.core.errors import InputError, SweepError
from pipelines.core.match import find_matches
from pipelines.core.model import (
    DatasetInput,
    DatasetMatches,
    DatasetOutcome,
    DatasetPlan,
    FileOutcome,
    FilePlan,
    MatchResult,
    Verification,
)
from pipelines.datasets import objectstore, storage
from pipelines.datasets.objectstore import Changed, Url

if TYPE_CHECKING:  # s3fs and its botocore tree cost ~0.9 s to import: loaded where S3 is opened
    import s3fs


STATE = "_gdpr_sweep_state.json"
LEGACY_CURRENT = "_gdpr_sweep_current.json"
LEGACY_VERSIONS = "_gdpr_sweep_versions"


@dataclass(frozen=True)
class ObjectPlan(FilePlan):
    """One file of an S3 dataset: `input_path` is the object read (the dataset's own key, a raw
    snapshot, or a legacy version's copy), `etag` the ETag read."""

    etag: str = ""
    target_etag: str | None = None
    """ETag of the object at the dataset's own key when planned; None where there was none."""
    legacy: bool = False
    recovered_version: str | None = None
    """The current version of a dataset object an earlier run wrote and crashed before recording (its
    superseded versions are deleted at publish)."""


@dataclass(frozen=True)
class ObjectOutcome(FileOutcome):
    etag_out: str = ""
    version_out: str | None = None
    written: bool = False
    """Whether this run PUT the object (rewritten, or a raw snapshot / legacy file placed at its key)."""


@dataclass(frozen=True)
class S3Outcome(DatasetOutcome):
    state: dict[str, Any] = field(default_factory=dict)
    """The state to record once the run is verified."""
    run_id: str = ""


# ---------------------------------------------------------------------------------------------
# Plan


def _ref(url: Url) -> Path:
    """`FilePlan.input_path` is typed Path; for an object it holds the Url itself (a str, which
    pyarrow and DuckDB open through the registered filesystem): a Path would fold `s3://` to `s3:/`."""
    return cast(Path, url)


def read_state(fs: s3fs.S3FileSystem, root: Url) -> tuple[dict[str, Any], str | None]:
    """The state object and its ETag, or ({}, None) before the first sweep."""
    info = objectstore.head(fs, root / STATE)
    if info is None:
        return {}, None
    with objectstore.open_pinned(fs, root / STATE, info["ETag"]) as fh:
        raw = fh.read()
    try:
        return dict(json.loads(raw)), info["ETag"]
    except ValueError as exc:
        raise SweepError(f"{root / STATE}: unreadable sweep state ({exc}); delete it (the next run then "
                         "matches every object against every entry) or restore it") from None


def plan(config: DatasetConfig, fs: s3fs.S3FileSystem, fingerprint: str | None = None) -> DatasetPlan:
    root = Url(config.url or "")
    state, state_etag = read_state(fs, root)
    listing = objectstore.list_objects(fs, root)
    known = state.get("files", {})
    incremental = fingerprint is not None and state.get("match_fingerprint") == fingerprint
    files: dict[str, ObjectPlan] = {}
    for rel, info in sorted(listing.items()):
        if not objectstore.is_data(rel):
            continue
        entry = known.get(rel, {})
        if entry.get("etag") == info.etag:
            files[rel] = ObjectPlan(rel, _ref(root / rel), "clean", int(entry["rows"]), entry.get("sha256"),
                                    verified=entry.get("verified") if incremental else None,
                                    etag=info.etag, target_etag=info.etag)
        else:
            files[rel] = _unknown(fs, root / rel, rel, info.etag)
    if LEGACY_CURRENT in listing:
        for f in _legacy_files(fs, root, listing):
            files.setdefault(f.relpath, f)  # an object put at the plain key since then is newer
    sources: dict[str, str] = {}
    if config.source_url:
        for rel, info in sorted(objectstore.list_objects(fs, config.source_url).items()):
            if not objectstore.is_data(rel):
                continue
            sources[rel] = info.etag
            if state.get("sources", {}).get(rel) == info.etag:
                continue  # taken in by an earlier run, unchanged since
            src = Url(config.source_url) / rel
            here = listing.get(rel)
            files[rel] = ObjectPlan(rel, _ref(src), "source", objectstore.num_rows(fs, src, info.etag), None,
                                    etag=info.etag, target_etag=here.etag if here else None)
    if not files and not state:
        where = f"no Parquet objects in {config.source_url} and " if config.source_url else ""
        raise InputError(f"dataset {config.name!r}: {where}no Parquet objects under {root}; "
                         "check 'source' and 'path' in the configuration")
    context = {"state": state, "state_etag": state_etag, "legacy": LEGACY_CURRENT in listing,
               "sources_seen": sources}
    return DatasetPlan(config, tuple(files[r] for r in sorted(files)), None, context)


def _unknown(fs: s3fs.S3FileSystem, url: Url, rel: str, etag: str) -> ObjectPlan:
    """An object no sweep recorded: new, changed outside the tool, or written by a run that crashed."""
    info = objectstore.head(fs, url)
    if info is None or info["ETag"] != etag:
        raise Changed(f"{url}: changed while this run listed it; run again")
    ours = objectstore.MARKER in {k.lower() for k in info.get("Metadata", {})}
    return ObjectPlan(rel, _ref(url), "clean", objectstore.num_rows(fs, url, etag), None, etag=etag, target_etag=etag,
                      recovered_version=info.get("VersionId") if ours else None)


def _legacy_files(fs: s3fs.S3FileSystem, root: Url, listing: dict[str, objectstore.ObjectInfo]) -> list[ObjectPlan]:
    """The current version's files of a dataset swept before 2026-12-06, to be moved to plain keys."""
    info = listing[LEGACY_CURRENT]
    with objectstore.open_pinned(fs, root / LEGACY_CURRENT, info.etag) as fh:
        manifest = json.loads(fh.read())
    found = []
    for rel, entry in sorted(manifest.get("files", {}).items()):
        url = Url(entry["url"])
        inside = url.key[len(root.key) + 1:] if url.key.startswith(root.key + "/") else None
        if inside is None or inside not in listing:
            raise SweepError(f"{root / LEGACY_CURRENT}: lists {url}, which is missing; restore it from the "
                             "bucket's versions or delete the manifest to sweep the plain objects only")
        found.append(ObjectPlan(rel, _ref(url), "clean", int(entry["rows"]), entry.get("sha256"),
                                etag=listing[inside].etag, target_etag=None, legacy=True))
    return found


# ---------------------------------------------------------------------------------------------
# Write: each file with rows to drop replaced at its own key by one conditional PUT


@contextmanager
def _scratch(work_dir: Path) -> Iterator[Path]:
    work_dir.mkdir(parents=True, exist_ok=True, mode=storage.DIR_MODE)
    folder = Path(tempfile.mkdtemp(prefix="s3-rewrite-", dir=work_dir))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_file(fs: s3fs.S3FileSystem, root: Url, f: ObjectPlan, drop: np.ndarray | None, run_id: str,
               work_dir: Path) -> ObjectOutcome:
    """Replace the file at its key if it has rows to drop (or is a raw snapshot or legacy file to
    place there); leave it untouched otherwise."""
    if not (drop is not None and len(drop)) and f.origin == "clean" and not f.legacy:
        sha = f.sha256 or objectstore.sha256(fs, str(f.input_path), f.etag)
        return ObjectOutcome(f.relpath, f.origin, f.rows, f.rows, sha, sha, False, etag_out=f.etag)
    with _scratch(work_dir) as tmp:
        src = tmp / "in.parquet"
        sha_in = objectstore.download(fs, str(f.input_path), f.etag, src)
        out, rows_out = src, f.rows
        if drop is not None and len(drop):
            out = tmp / "out.parquet"
            written = storage.rewrite_without_rows(src, out, drop)
            if written.rows_in != f.rows:
                raise AssertionError(f"{f.input_path}: read {written.rows_in} rows, planned {f.rows}")
            rows_out = written.rows_out
        if storage.num_rows(out) != rows_out:
            raise AssertionError(f"{f.input_path}: rewritten file does not hold {rows_out} rows; not written")
        sha_out = storage.sha256_file(out) if out is not src else sha_in
        put = objectstore.put(fs, root / f.relpath, out.read_bytes(), f.target_etag, run_id)
    return ObjectOutcome(f.relpath, f.origin, f.rows, rows_out, sha_in, sha_out, out is not src,
                         etag_out=put.etag, version_out=put.version_id, written=True)


def write_files(fs: s3fs.S3FileSystem, plan: DatasetPlan, relpaths: Sequence[str], drops: dict[str, np.ndarray],
                run_id: str, work_dir: Path) -> list[ObjectOutcome]:
    """These files, one after the other; a file that changed since it was read is left to its writer
    and, once the others are done, the run stops naming it."""
    root = Url(plan.config.url or "")
    by_rel = {f.relpath: f for f in plan.files}
    outcomes, changed = [], []
    for rel in relpaths:
        f = by_rel[rel]
        assert isinstance(f, ObjectPlan)
        try:
            outcomes.append(write_file(fs, root, f, drops.get(rel), run_id, work_dir))
        except Changed as exc:
            changed.append(str(exc))
    if changed:
        raise Changed(_changed_message(plan.config.name, changed))
    return outcomes


def _changed_message(dataset: str, changed: list[str]) -> str:
    more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
    return (f"dataset {dataset!r}: {changed[0]}{more}; such objects were not replaced and the next run "
            "sweeps them; every other object is either its old or its cleaned version")


def finish(fs: s3fs.S3FileSystem, plan: DatasetPlan, outcomes: Sequence[ObjectOutcome], matches: DatasetMatches,
           run_id: str, blacklist_version: int, fingerprint: str | None) -> S3Outcome:
    """Check that no untouched object changed during the run (one LIST), and compute the new state."""
    root = Url(plan.config.url or "")
    listing = objectstore.list_objects(fs, root)
    moved = [str(root / o.relpath) for o in outcomes
             if not o.written and (listing.get(o.relpath) is None or listing[o.relpath].etag != o.etag_out)]
    if moved:
        raise Changed(_changed_message(plan.config.name, [f"{moved[0]}: changed during the run"] * len(moved)))
    old = plan.previous_manifest.get("state", {})
    taken = {f.relpath: f.etag for f in plan.files if isinstance(f, ObjectPlan) and f.origin == "source"}
    sources = {rel: etag for rel, etag in {**old.get("sources", {}), **taken}.items()
               if plan.previous_manifest.get("sources_seen", {}).get(rel) == etag}
    state = {"state_version": 1, "dataset": plan.config.name, "match_fingerprint": fingerprint,
             "files": {o.relpath: {"etag": o.etag_out, "rows": o.rows_out, "sha256": o.sha256_out,
                                   "verified": blacklist_version} for o in outcomes},
             "sources": dict(sorted(sources.items()))}
    return S3Outcome(plan.config.name, plan.config.kind, root, tuple(outcomes),  # type: ignore[arg-type]
                     dict(matches.by_reason), dict(matches.by_entry), state, run_id)


# ---------------------------------------------------------------------------------------------
# Verify: each replaced object, pinned to the ETag this run wrote


def verify(con: duckdb.DuckDBPyConnection, fs: s3fs.S3FileSystem, config: DatasetConfig, entries: pa.Table,
           piece: DatasetOutcome, match: MatchResult, link_through_events: bool, work_dir: Path,
           held: pa.Table | None = None) -> Verification:
    """Download each object this run rewrote (as it wrote it) and apply §3 again with every linked
    device; check its row count. Objects not rewritten hold bytes the match read, unchanged (`finish`).
    Rows an active retention hold keeps (`held`) are not matches."""
    root = Url(config.url or "")
    rewritten = [f for f in piece.files if f.rewritten]
    with _scratch(work_dir) as tmp:
        local = {}
        for i, f in enumerate(rewritten):
            assert isinstance(f, ObjectOutcome)
            local[f.relpath] = tmp / f"{i}.parquet"
            objectstore.download(fs, root / f.relpath, f.etag_out, local[f.relpath])
            if storage.num_rows(local[f.relpath]) != f.rows_out:
                raise AssertionError(f"{root / f.relpath}: row count differs from the {f.rows_out} written")
        again = find_matches(con, entries, [DatasetInput(config, local)] if local else [], link_through_events,
                             extra_linked=match.linked_devices, held=held)
    by_entry: dict[str, int] = {}
    for m in again.datasets.values():
        for bid, n in m.by_entry.items():
            by_entry[bid] = by_entry.get(bid, 0) + n
    return Verification(files_checked=len(rewritten), rows_checked=sum(f.rows_out for f in rewritten),
                        matches=again.rows_removed, matches_by_entry=by_entry)
