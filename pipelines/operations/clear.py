"""ClearUserData (§4): remove one blacklist entry's rows now, rewriting only the files that hold them.

The steps reuse the sweep's machinery through the storage interface (pipelines/datasets/base.py), so
they work on every kind of dataset: `plan_current` lists the current files (never raw snapshots:
taking those in is the nightly sweep's job, with the whole blacklist), `find_matches` runs with a
one-entry table, `Dataset.purge_targeted` rewrites the files with matches (a table kind: one commit
of its own), `Dataset.verify` re-reads, `Dataset.publish` switches readers. `entry_found` is the Optimizely 404
rule, and `build_clear_report` the small audit report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipelines.config.settings import DatasetConfig, Settings
from pipelines.core.errors import NotFound, SweepError
from pipelines.core.match import entries_table, find_matches
from pipelines.core.model import DatasetOutcome, DatasetPlan, Entry, MatchResult, Verification
from pipelines.datasets.factory import open_dataset
from pipelines.datasets.raw import RawFile, raw_report
from pipelines.datasets.scaleout import merge_verifications
from pipelines.datasets.sweep import MANIFEST_CARRIED, restore_manifest  # noqa: F401 - the ingest guard's
from pipelines.reporting import chain, report_index

REPORT_VERSION = 2
"""1: first version; 2 adds `integrity` (the report joins the sweep's hash chain, `pipelines.reporting.chain`)."""
OPERATIONS_DIR = chain.OPERATIONS_DIR
"""Ingest and ClearUserData reports live in `report_dir/_operations/<run_id>/`, in the same hash chain as
the sweep's reports (`report_dir/<run_id>/report.json`)."""


def plan_current(settings: Settings, config: DatasetConfig) -> DatasetPlan:
    """The dataset's current files as a plan (no raw snapshot files), whatever its kind (`Dataset.current`)."""
    return open_dataset(config, settings).current()


def entry_found(match: MatchResult, configs: Sequence[DatasetConfig]) -> bool:
    """Optimizely's ClearUserData 404 rule: does any profile carry the entry's email or user id?

    Only profiles datasets count; a lake without one falls back to any dataset.
    """
    names = [c.name for c in configs if c.kind == "profiles"] or [c.name for c in configs]
    return any(match.datasets[n].rows_removed or match.datasets[n].held_by_entry for n in names if n in match.datasets)


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
    unscoped_emails: tuple[str, ...] = ()
    """The entry's email if it has no scope: a table kind proves it gone from its whole location."""


def clear_target(entry: Entry, blacklist_version: int) -> ClearTarget:
    return ClearTarget(entry.blacklist_id, entries_table([entry]), "email" if entry.email else "user id",
                       blacklist_version, (entry.email,) if entry.email and entry.scope is None else ())


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


def purge_entry(settings: Settings, plans: Sequence[DatasetPlan], match: MatchResult,
                run_id: str) -> list[tuple[DatasetPlan, DatasetOutcome]]:
    """Purge the entry's rows from each dataset that holds them (`Dataset.purge_targeted`: only the
    files holding them are rewritten; what earlier runs verified stays recorded)."""
    written = []
    for plan in plans:
        matches = match.datasets[plan.config.name]
        if matches.rows_removed:
            written.append((plan, open_dataset(plan.config, settings).purge_targeted(plan, matches, run_id)))
    return written


def verify_entry(con: duckdb.DuckDBPyConnection, settings: Settings, target: ClearTarget,
                 written: Sequence[tuple[DatasetPlan, DatasetOutcome]], match: MatchResult,
                 held: pa.Table | None = None) -> Verification:
    """Re-read what was written; SweepError (nothing published) if any of the entry's rows remain
    (other than those a retention hold keeps). `con` can read every dataset (scaleout.open_connection)."""
    checks = []
    for plan, outcome in written:
        dataset = open_dataset(plan.config, settings)
        checks.append(dataset.verify(con, target.entries, dataset.verifiable(outcome), match.linked_devices, held))
    verification = merge_verifications(checks)
    if not verification.ok:
        for plan, outcome in written:
            open_dataset(plan.config, settings).discard(outcome)
        raise SweepError(f"verification found {verification.matches} rows of blacklist entry "
                         f"{target.blacklist_id} in the new outputs; nothing was published")
    return verification


def publish_entry(settings: Settings, target: ClearTarget, written: Sequence[tuple[DatasetPlan, DatasetOutcome]]) -> None:
    for plan, outcome in written:
        open_dataset(plan.config, settings).publish(plan, outcome, target.unscoped_emails)


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
