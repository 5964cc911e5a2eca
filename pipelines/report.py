"""The audit report (SPEC §5): a versioned JSON document with stable keys, and its Markdown page.

Built only from the run's statistics objects; it names entries by BlacklistId and files by path,
never a person's email, name or device id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pipelines.sweep import DatasetOutcome, Verification

REPORT_VERSION = 1


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    started_at: str
    finished_at: str
    code_version: str
    blacklist_version: int
    config_path: str
    link_devices_through_events: bool
    deadline_hours: float


@dataclass(frozen=True)
class EntryInfo:
    blacklist_id: str
    created_at: str
    scope: str | None


def build_report(run: RunInfo, entries: Sequence[EntryInfo], outcomes: Sequence[DatasetOutcome],
                 verification: Verification, raw_deleted: Sequence[str], raw_held: Sequence[str],
                 now: datetime) -> dict[str, Any]:
    datasets = [_dataset(o) for o in outcomes]
    removed_by_entry: dict[str, dict[str, int]] = {}
    for o in outcomes:
        for bid, n in o.by_entry.items():
            removed_by_entry.setdefault(bid, {})[o.name] = n
    entry_rows = []
    for e in sorted(entries, key=lambda e: e.blacklist_id):
        age = (now - datetime.fromisoformat(e.created_at.replace("Z", "+00:00"))).total_seconds() / 3600
        still = verification.matches_by_entry.get(e.blacklist_id, 0)
        entry_rows.append({
            "blacklist_id": e.blacklist_id, "created_at": e.created_at, "scope": e.scope,
            "age_hours": round(age, 2), "rows_removed": removed_by_entry.get(e.blacklist_id, {}),
            "rows_still_present": still, "overdue": bool(still and age > run.deadline_hours),
        })
    return {
        "report_version": REPORT_VERSION,
        "run": {
            "run_id": run.run_id, "started_at": run.started_at, "finished_at": run.finished_at,
            "code_version": run.code_version, "config": run.config_path,
            "link_devices_through_events": run.link_devices_through_events,
        },
        "blacklist": {"version": run.blacklist_version, "entries": len(entries)},
        "totals": {
            "rows_in": sum(d["rows_in"] for d in datasets),
            "rows_out": sum(d["rows_out"] for d in datasets),
            "rows_removed": sum(d["rows_removed"] for d in datasets),
        },
        "datasets": datasets,
        "entries": entry_rows,
        "overdue_entries": [e["blacklist_id"] for e in entry_rows if e["overdue"]],
        "deadline_hours": run.deadline_hours,
        "verification": {
            "files_checked": verification.files_checked, "rows_checked": verification.rows_checked,
            "matches_found": verification.matches, "ok": verification.ok,
        },
        "raw_copies": {"deleted": list(raw_deleted), "still_held": list(raw_held)},
    }


def _dataset(o: DatasetOutcome) -> dict[str, Any]:
    return {
        "name": o.name, "kind": o.kind,
        "rows_in": o.rows_in, "rows_out": o.rows_out, "rows_removed": o.rows_removed,
        "conserved": o.rows_in == o.rows_out + o.rows_removed,
        "removed_by_reason": {r: o.by_reason.get(r, 0) for r in ("email", "user_id", "linked_device")},
        "files": [
            {"path": f.relpath, "origin": f.origin, "rows_in": f.rows_in, "rows_out": f.rows_out,
             "rows_removed": f.rows_in - f.rows_out, "sha256_in": f.sha256_in, "sha256_out": f.sha256_out,
             "rewritten": f.rewritten}
            for f in o.files
        ],
    }


def render_markdown(report: dict[str, Any]) -> str:
    run, totals, ver = report["run"], report["totals"], report["verification"]
    lines = [
        f"# gdpr-sweep purge report {run['run_id']}",
        "",
        f"- Started {run['started_at']}, finished {run['finished_at']}",
        f"- Code version {run['code_version']}; blacklist version {report['blacklist']['version']} "
        f"({report['blacklist']['entries']} entries)",
        f"- Verification: {ver['files_checked']} files, {ver['rows_checked']} rows re-read, "
        f"{ver['matches_found']} matches found: **{'PASSED' if ver['ok'] else 'FAILED'}**",
        f"- Overdue entries (older than {report['deadline_hours']:g} h, data still present): "
        f"**{len(report['overdue_entries'])}**",
        "",
        "## Datasets",
        "",
        "| dataset | rows in | rows out | removed | by email | by user id | by linked device | in = out + removed |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for d in report["datasets"]:
        r = d["removed_by_reason"]
        lines.append(f"| {d['name']} | {d['rows_in']} | {d['rows_out']} | {d['rows_removed']} | {r['email']} | "
                     f"{r['user_id']} | {r['linked_device']} | {'yes' if d['conserved'] else 'NO'} |")
    lines.append(f"| **total** | {totals['rows_in']} | {totals['rows_out']} | {totals['rows_removed']} | | | | |")
    lines += ["", "## Entries", "", "| BlacklistId | created | age (h) | rows removed | still present |",
              "| --- | --- | ---: | --- | ---: |"]
    for e in report["entries"]:
        removed = ", ".join(f"{k}: {v}" for k, v in sorted(e["rows_removed"].items())) or "0"
        lines.append(f"| {e['blacklist_id']} | {e['created_at']} | {e['age_hours']} | {removed} | "
                     f"{e['rows_still_present']} |")
    lines += ["", "## Files", ""]
    for d in report["datasets"]:
        rewritten = [f for f in d["files"] if f["rewritten"]]
        lines.append(f"- **{d['name']}**: {len(d['files'])} files, {len(rewritten)} rewritten")
        for f in rewritten:
            lines.append(f"  - `{f['path']}` ({f['origin']}): {f['rows_in']} -> {f['rows_out']} rows, "
                         f"sha256 `{f['sha256_out'][:16]}…`")
    raw = report["raw_copies"]
    lines += ["", "## Raw copies", "", f"- Deleted after this run: {len(raw['deleted'])}"]
    lines += [f"  - `{p}`" for p in raw["deleted"]]
    lines.append(f"- Still held (raw snapshots that may hold blacklisted data until deleted): {len(raw['still_held'])}")
    lines += [f"  - `{p}`" for p in raw["still_held"]]
    return "\n".join(lines) + "\n"


def report_paths(report_dir: Path, run_id: str) -> tuple[Path, Path]:
    folder = report_dir / run_id
    return folder / "report.json", folder / "report.md"
