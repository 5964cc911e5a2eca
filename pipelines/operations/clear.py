"""ClearUserData (§4): remove one blacklist entry's rows now, rewriting only the files that hold them.

The steps reuse the sweep's machinery: `plan_current` lists the current cleaned files (never raw
snapshots: taking those in is the nightly sweep's job, with the whole blacklist), `find_matches`
runs with a one-entry table, `write_version` rewrites the files with matches and hard-links the
others, `verify_versions` re-reads, `publish_version` swaps. `entry_found` is the Optimizely 404
rule, and `build_clear_report` the small audit report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipelines.config.settings import DatasetConfig
from pipelines.core.errors import ConfigError, NotFound, SweepError
from pipelines.core.match import entries_table, find_matches
from pipelines.core.model import DatasetOutcome, DatasetPlan, Entry, FilePlan, MatchResult, Verification
from pipelines.datasets import storage
from pipelines.datasets.raw import RawFile, raw_report
from pipelines.datasets.sweep import publish_version, verify_versions, write_version
from pipelines.reporting import chain, report_index

REPORT_VERSION = 2
"""1: first version; 2 adds `integrity` (the report joins the sweep's hash chain, `pipelines.reporting.chain`)."""
OPERATIONS_DIR = chain.OPERATIONS_DIR
"""Ingest and ClearUserData reports live in `report_dir/_operations/<run_id>/`, in the same hash chain as
the sweep's reports (`report_dir/<run_id>/report.json`)."""
MANIFEST_CARRIED = ("ingested_batches", "match_fingerprint")
"""Manifest keys a targeted run's new version inherits from the one it replaces: removing rows, or
adding a batch verified against the whole blacklist, keeps the earlier verification valid."""


def plan_current(config: DatasetConfig) -> DatasetPlan:
    """The dataset's current cleaned files as a plan (no raw snapshot files). Local Parquet datasets
    only: Delta tables and object storage are purged by the nightly sweep (ConfigError here)."""
    if config.format != "parquet" or config.url:
        raise ConfigError(f"dataset {config.name!r}: ingest and ClearUserData work on local Parquet datasets; "
                          "this one is purged by the nightly sweep (gdpr-sweep sweep)")
    previous = storage.current_version(config.path)
    manifest = storage.read_manifest(previous)
    known = manifest.get("files", {})
    files: list[FilePlan] = []
    if previous is not None:
        for rel in storage.list_parquet(previous):
            entry = known.get(rel, {})
            files.append(FilePlan(rel, previous / rel, "clean", storage.num_rows(previous / rel),
                                  entry.get("sha256"), entry.get("source")))
    return DatasetPlan(config, tuple(files), previous, manifest)


def entry_found(match: MatchResult, configs: Sequence[DatasetConfig]) -> bool:
    """Optimizely's ClearUserData 404 rule: does any profile carry the entry's email or user id?

    Only profiles datasets count; a lake without one falls back to any dataset.
    """
    names = [c.name for c in configs if c.kind == "profiles"] or [c.name for c in configs]
    return any(match.datasets[n].rows_removed or match.datasets[n].held_by_entry for n in names if n in match.datasets)


def restore_manifest(version: Path, previous: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
    """After `write_version`: files carried over keep the blacklist version they were last checked
    against (a targeted run checks one entry or one batch, not the whole blacklist), and keys such
    as `ingested_batches` are inherited. `extra` is merged in last."""
    path = version / storage.MANIFEST_NAME
    manifest = storage.read_manifest(version)
    old_files = previous.get("files", {})
    for rel, entry in manifest.get("files", {}).items():
        if rel in old_files and "blacklist_version" in old_files[rel]:
            entry["blacklist_version"] = old_files[rel]["blacklist_version"]
    for key in MANIFEST_CARRIED:
        if key in previous:
            manifest[key] = previous[key]
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(manifest.get(key), dict):
            manifest[key] = {**manifest[key], **value}
        else:
            manifest[key] = value
    storage.write_json_atomic(path, manifest)


@dataclass(frozen=True)
class ClearRun:
    run_id: str
    started_at: str
    finished_at: str
    code_version: str
    blacklist_version: int
    blacklist_id: str
    config_path: str


def build_clear_report(run: ClearRun, outcomes: Sequence[DatasetOutcome], unchanged: Sequence[str],
                       verification: Verification, raw_held: Sequence[RawFile]) -> dict[str, Any]:
    """The ClearUserData audit report: what was removed for one BlacklistId, from which files."""
    datasets: list[dict[str, Any]] = []
    for o in outcomes:
        datasets.append({
            "name": o.name, "kind": o.kind, "rows_in": o.rows_in, "rows_out": o.rows_out,
            "rows_removed": o.rows_removed, "conserved": o.rows_in == o.rows_out + o.rows_removed,
            "removed_by_reason": {r: o.by_reason.get(r, 0) for r in ("email", "user_id", "linked_device")},
            "files_rewritten": [
                {"path": f.relpath, "rows_in": f.rows_in, "rows_out": f.rows_out, "sha256_in": f.sha256_in,
                 "sha256_out": f.sha256_out} for f in o.files if f.rewritten],
            "files_unchanged": sum(1 for f in o.files if not f.rewritten),
        })
    return {
        "report_version": REPORT_VERSION,
        "kind": "clear_user_data",
        "run": {"run_id": run.run_id, "started_at": run.started_at, "finished_at": run.finished_at,
                "code_version": run.code_version, "config": run.config_path},
        "blacklist": {"version": run.blacklist_version},
        "blacklist_id": run.blacklist_id,
        "totals": {"rows_removed": sum(d["rows_removed"] for d in datasets),
                   "files_rewritten": sum(len(d["files_rewritten"]) for d in datasets)},
        "datasets": datasets,
        "datasets_unchanged": list(unchanged),
        "verification": {"files_checked": verification.files_checked, "rows_checked": verification.rows_checked,
                         "matches_found": verification.matches, "ok": verification.ok},
        "raw_copies": raw_report([], raw_held),
    }


def render_clear_markdown(report: dict[str, Any]) -> str:
    run, ver = report["run"], report["verification"]
    lines = [
        f"# gdpr-sweep ClearUserData {run['run_id']}",
        "",
        f"- Blacklist entry `{report['blacklist_id']}` (blacklist version {report['blacklist']['version']})",
        f"- Started {run['started_at']}, finished {run['finished_at']}; code version {run['code_version']}",
        f"- Rows removed: **{report['totals']['rows_removed']}** from "
        f"{report['totals']['files_rewritten']} rewritten files",
        f"- Verification: {ver['files_checked']} files, {ver['rows_checked']} rows re-read, "
        f"{ver['matches_found']} matches found: **{'PASSED' if ver['ok'] else 'FAILED'}**",
        "",
        "| dataset | rows in | rows out | removed | by email | by user id | by linked device | files rewritten |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for d in report["datasets"]:
        r = d["removed_by_reason"]
        lines.append(f"| {d['name']} | {d['rows_in']} | {d['rows_out']} | {d['rows_removed']} | {r['email']} | "
                     f"{r['user_id']} | {r['linked_device']} | {len(d['files_rewritten'])} |")
    for d in report["datasets"]:
        for f in d["files_rewritten"]:
            lines.append(f"- `{d['name']}/{f['path']}`: {f['rows_in']} -> {f['rows_out']} rows")
    if report["datasets_unchanged"]:
        lines.append(f"- Unchanged datasets (no rows of this entry): {', '.join(report['datasets_unchanged'])}")
    lines += ["", *raw_markdown(report["raw_copies"]), "", *chain.integrity_markdown(report)]
    return "\n".join(lines) + "\n"


def raw_markdown(raw: dict[str, Any]) -> list[str]:
    lines = ["## Raw copies", "", f"- Deleted: {len(raw['deleted'])}"]
    lines += [f"  - `{p}`" for p in raw["deleted"]]
    lines.append(f"- Still held: {len(raw['held'])}")
    for h in raw["held"]:
        lines.append(f"  - `{h['path']}` ({h['dataset']}): {h['verdict']}")
    return lines


# ---------------------------------------------------------------------------------------------
# The steps, run in order by `pipelines.operations.targeted.clear_user_data` (directly, or as tasks of a flow).


@dataclass(frozen=True)
class ClearTarget:
    """The one entry being cleared, as a one-row entries table, and the blacklist version read."""

    blacklist_id: str
    entries: pa.Table
    identity: str
    """`email` or `user id`: what a profile must carry for the entry to be found."""
    blacklist_version: int


def clear_target(entry: Entry, blacklist_version: int) -> ClearTarget:
    return ClearTarget(entry.blacklist_id, entries_table([entry]), "email" if entry.email else "user id",
                       blacklist_version)


def match_entry(con: duckdb.DuckDBPyConnection, target: ClearTarget, plans: Sequence[DatasetPlan],
                link_through_events: bool, remembered: pa.Table | None = None,
                held: pa.Table | None = None) -> MatchResult:
    """§3 restricted to the one entry; NotFound (nothing changed) when no profile carries it.
    `remembered`: the entry's device links kept from earlier runs (pipelines/core/links.py). Rows an
    active retention hold covers (`held`, pipelines/core/holds.py) are kept."""
    match = find_matches(con, target.entries, [p.as_input() for p in plans], link_through_events,
                         extra_linked=remembered, held=held)
    if not entry_found(match, [p.config for p in plans]):
        raise NotFound(f"no profile carries the {target.identity} of blacklist entry {target.blacklist_id}; "
                       "nothing removed (the nightly sweep still removes any other data within the deadline)")
    return match


def purge_entry(plans: Sequence[DatasetPlan], match: MatchResult, run_id: str) -> list[tuple[DatasetPlan, DatasetOutcome]]:
    """Write a new version of each dataset that holds the entry's rows (other files hard-linked)."""
    written = []
    for plan in plans:
        matches = match.datasets[plan.config.name]
        if not matches.rows_removed:
            continue
        previous = plan.previous_manifest
        outcome = write_version(plan, matches, run_id, int(previous.get("blacklist_version", 0)))
        restore_manifest(outcome.version, previous)
        written.append((plan, outcome))
    return written


def verify_entry(con: duckdb.DuckDBPyConnection, target: ClearTarget, written: Sequence[tuple[DatasetPlan, DatasetOutcome]],
                 match: MatchResult, link_through_events: bool, held: pa.Table | None = None) -> Verification:
    """Re-read the new versions; SweepError (nothing published) if any of the entry's rows remain
    (other than those a retention hold keeps)."""
    verification = verify_versions(con, target.entries, [o for _, o in written], [p.config for p, _ in written],
                                   match, link_through_events, held)
    if not verification.ok:
        for plan, _ in written:
            storage.remove_stale_versions(plan.config.path)
        raise SweepError(f"verification found {verification.matches} rows of blacklist entry "
                         f"{target.blacklist_id} in the new outputs; nothing was published")
    return verification


def publish_entry(written: Sequence[tuple[DatasetPlan, DatasetOutcome]]) -> None:
    for plan, outcome in written:
        publish_version(plan.config, outcome)


def write_clear_report(report_dir: Path, run: ClearRun, plans: Sequence[DatasetPlan],
                       written: Sequence[tuple[DatasetPlan, DatasetOutcome]], verification: Verification,
                       raw_held: Sequence[RawFile]) -> tuple[Path, dict[str, Any]]:
    """Write `<report_dir>/_operations/<run_id>/clear-user-data.json` and `.md`; return the JSON path and the report."""
    changed = {p.config.name for p, _ in written}
    unchanged = [p.config.name for p in plans if p.config.name not in changed]
    report = build_clear_report(run, [o for _, o in written], unchanged, verification, raw_held)
    sealed = chain.write_linked(report_dir, report, lambda r: {"clear-user-data.md": render_clear_markdown(r)},
                                f"{OPERATIONS_DIR}/{run.run_id}/clear-user-data.json")
    report_index.refresh(report_dir)  # notices for recipients, index.html
    return sealed


def clear_summary(path: Path, report: dict[str, Any]) -> dict[str, Any]:
    """What ClearUserData answers (CLI, HTTP API, flow result): ids and counts, never an email."""
    bid = report["blacklist_id"]
    return {"BlacklistId": bid, "message": f"Successfully removed data for blacklist item {bid}",
            "rows_removed": report["totals"]["rows_removed"], "files_rewritten": report["totals"]["files_rewritten"],
            "datasets": {d["name"]: d["rows_removed"] for d in report["datasets"]}, "report": str(path)}
