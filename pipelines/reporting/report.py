"""The audit report (§5): a versioned JSON document with stable keys, and its Markdown page.

Built only from the run's statistics objects; it names entries by BlacklistId and files by path,
never a person's email, name or device id. Entries carry keyed hashes (HMAC-SHA256 with the
operator's report secret) of their email and user id, so `gdpr-sweep report lookup` can find a
person without any report holding the plaintext. The HTML page is `pipelines.reporting.report_html`; the
hash chain sealing each report is `pipelines.reporting.chain`.

Report versions: 1 (walking skeleton); 2 adds per-entry `email_hmac`, `user_id_hmac`,
`first_verified_gone_at`, `hours_to_gone`, `deadline_met`, `status`, `rows_in_raw_copies`; the
blocks `deadline`, `identity_hash`, `integrity`; per dataset `removed_by_partition`; 3 adds the block
`residuals` (the residual scan, `pipelines.assurance.residual_scan.residual_block`) and, for retention holds,
the block `holds`, per entry `rows_held`, `held` and `deadline_from`, per dataset `rows_held`, and the
entry status `held`. Every key of version 1 is kept with its meaning.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pipelines.core.holds import HoldState
from pipelines.core.identity_hash import key_id, keyed_hash  # noqa: F401  (re-exported: `report.keyed_hash`)
from pipelines.core.model import DatasetOutcome, Verification
from pipelines.reporting import residual_report
from pipelines.reporting.deadline import EntryDeadline, entry_deadlines
from pipelines.reporting.report_holds import holds_markdown, status_text

REPORT_VERSION = 3
HASH_ALGORITHM = "HMAC-SHA256"
_DAY_RE = re.compile(r"(\d{4}-\d{2}-\d{2})")


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
    email_hmac: str | None = None
    user_id_hmac: str | None = None


def partition_label(relpath: str) -> str:
    """The day (YYYY-MM-DD in the path), else the partition folder, else the file name."""
    day = _DAY_RE.search(relpath)
    if day:
        return day.group(1)
    folder = relpath.rsplit("/", 1)[0] if "/" in relpath else ""
    return folder or relpath.removesuffix(".parquet")


def build_report(run: RunInfo, entries: Sequence[EntryInfo], outcomes: Sequence[DatasetOutcome],
                 verification: Verification, raw_deleted: Sequence[str], raw_held: Sequence[str],
                 now: datetime, *, raw_rows_by_entry: Mapping[str, Mapping[str, int]] | None = None,
                 previous: Mapping[str, Any] | None = None, identity_key_id: str | None = None,
                 raw_unchecked: Sequence[str] = (),
                 now_text: str | None = None, raw_files: Sequence[Mapping[str, Any]] = (),
                 residuals: Mapping[str, Any] | None = None, holds: HoldState | None = None,
                 file_changes: Sequence[Mapping[str, str]] = ()) -> dict[str, Any]:
    """The report of one run. `raw_rows_by_entry` (BlacklistId -> dataset -> rows) counts an entry's
    rows still held in raw snapshot files; `previous` is the previous report of the chain, whose
    `first_verified_gone_at` times are carried forward; `raw_unchecked` lists raw files that could
    not be read: while there are any, no entry counts as gone; `raw_files` says per raw file still held
    whether it holds blacklisted rows (`pipelines.datasets.raw.raw_report`); `residuals` is the residual scan's
    block (`pipelines.assurance.residual_scan.residual_block`), None when the run did not consider one; `holds`:
    the retention holds the run applied and the rows they kept (entries `held`, never `gone`, while
    rows are kept); `file_changes` lists the files that changed since the run read them or outside
    the tool (`pipelines.datasets.fileid.FileChange`)."""
    raw_rows_by_entry = raw_rows_by_entry or {}
    now_text = now_text or now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    datasets = [_dataset(o) for o in outcomes]
    removed_by_entry = _removed_by_entry(outcomes)
    ordered = sorted(entries, key=lambda e: e.blacklist_id)
    still = {e.blacklist_id: verification.matches_by_entry.get(e.blacklist_id, 0)
             + sum(raw_rows_by_entry.get(e.blacklist_id, {}).values()) for e in ordered}
    holds = holds or HoldState((), now_text)
    deadlines = entry_deadlines([(e.blacklist_id, e.created_at) for e in ordered], still,
                                (previous or {}).get("entries", []), now, now_text, run.deadline_hours,
                                unverified=bool(raw_unchecked), **_hold_inputs(holds, ordered))
    entry_rows = [_entry(e, d, removed_by_entry, raw_rows_by_entry) | {"rows_held": holds.entry_rows(e.blacklist_id),
                                                                       "held": holds.entry_held(e.blacklist_id),
                                                                       "deadline_from": d.deadline_from}
                  for e, d in zip(ordered, deadlines, strict=True)]
    for d in datasets:
        d["rows_held"] = sum(holds.held_rows.get(d["name"], {}).values())
    return {
        "report_version": REPORT_VERSION,
        "run": {
            "run_id": run.run_id, "started_at": run.started_at, "finished_at": run.finished_at,
            "code_version": run.code_version, "config": run.config_path,
            "link_devices_through_events": run.link_devices_through_events,
        },
        "blacklist": {"version": run.blacklist_version, "entries": len(entries)},
        "totals": {key: sum(d[key] for d in datasets) for key in ("rows_in", "rows_out", "rows_removed")},
        "datasets": datasets,
        "entries": entry_rows,
        "overdue_entries": [e["blacklist_id"] for e in entry_rows if e["overdue"]],
        "deadline_hours": run.deadline_hours,
        "deadline": _deadline_block(run.deadline_hours, now_text, deadlines, raw_unchecked),
        "identity_hash": {
            "algorithm": HASH_ALGORITHM, "key_id": identity_key_id,
            "input": "'email:' + trimmed lower-cased email, or 'user_id:' + trimmed user id",
        },
        **_checks(verification, file_changes),
        "raw_copies": {"deleted": list(raw_deleted), "still_held": list(raw_held), "held": [dict(f) for f in raw_files]},
        "residuals": dict(residuals) if residuals is not None else None,
        "holds": holds.report_block(),
    }


def _checks(verification: Verification, file_changes: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """The verification of the outputs, and the files that changed since read or outside the tool."""
    return {
        "verification": {
            "files_checked": verification.files_checked, "rows_checked": verification.rows_checked,
            "matches_found": verification.matches, "ok": verification.ok,
            "files_reread": verification.files_reread, "rows_reread": verification.rows_reread,
        },
        "file_integrity": {
            "changed_since_read": [dict(c) for c in file_changes if c["what"] == "changed since read"],
            "changed_outside_tool": [dict(c) for c in file_changes if c["what"] == "changed outside the tool"],
        },
    }


def _removed_by_entry(outcomes: Sequence[DatasetOutcome]) -> dict[str, dict[str, int]]:
    """BlacklistId -> dataset -> rows removed."""
    removed: dict[str, dict[str, int]] = {}
    for o in outcomes:
        for bid, n in o.by_entry.items():
            removed.setdefault(bid, {})[o.name] = n
    return removed


def _hold_inputs(holds: HoldState, ordered: Sequence[EntryInfo]) -> dict[str, Any]:
    """`entry_deadlines`' hold arguments: rows kept per entry, and when each entry's hold ended."""
    ended = {h.blacklist_id: h.ended_at(holds.now_text) for h in holds.holds
             if h.blacklist_id and h.ended_at(holds.now_text)}
    return {"rows_held": {e.blacklist_id: sum(holds.entry_rows(e.blacklist_id).values()) for e in ordered},
            "hold_ended": ended}


def _deadline_block(hours: float, now_text: str, deadlines: Sequence[EntryDeadline],
                    raw_unchecked: Sequence[str]) -> dict[str, Any]:
    counts = {key: sum(d.status == status for d in deadlines) for key, status in (
        ("overdue", "overdue"), ("open", "open"), ("gone", "gone"), ("gone_late", "gone late"), ("held", "held"))}
    return {"hours": hours, "checked_at": now_text, **counts,
            "where_checked": "cleaned datasets (verification) and raw snapshot files still in each `source`",
            "raw_copies_unchecked": list(raw_unchecked)}


def _entry(e: EntryInfo, d: EntryDeadline, removed: Mapping[str, Mapping[str, int]],
           raw: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    return {
        "blacklist_id": e.blacklist_id, "created_at": e.created_at, "scope": e.scope,
        "email_hmac": e.email_hmac, "user_id_hmac": e.user_id_hmac,
        "age_hours": d.age_hours, "rows_removed": dict(removed.get(e.blacklist_id, {})),
        "rows_still_present": d.rows_still_present, "rows_in_raw_copies": dict(raw.get(e.blacklist_id, {})),
        "first_verified_gone_at": d.first_verified_gone_at, "hours_to_gone": d.hours_to_gone,
        "deadline_met": d.deadline_met, "status": d.status, "overdue": d.overdue,
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
        "removed_by_partition": _by_partition(o),
    }


def _by_partition(o: DatasetOutcome) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in o.files:
        label = partition_label(f.relpath)
        out[label] = out.get(label, 0) + f.rows_in - f.rows_out
    return dict(sorted(out.items()))


def render_markdown(report: dict[str, Any]) -> str:
    run, totals, ver = report["run"], report["totals"], report["verification"]
    deadline = report.get("deadline", {})
    overdue = report["overdue_entries"]
    lines = [f"# gdpr-sweep purge report {run['run_id']}", "", *_banners_markdown(report)]
    lines += [
        f"- Started {run['started_at']}, finished {run['finished_at']}",
        f"- Code version {run['code_version']}; blacklist version {report['blacklist']['version']} "
        f"({report['blacklist']['entries']} entries)",
        f"- Verification: {ver['files_checked']} files, {ver['rows_checked']} rows checked against every entry "
        f"({ver.get('files_reread', ver['files_checked'])} rewritten files re-read), "
        f"{ver['matches_found']} matches found: **{'PASSED' if ver['ok'] else 'FAILED'}**",
        f"- Overdue entries (older than {report['deadline_hours']:g} h, data still present): "
        f"**{len(overdue)}**",
    ]
    if deadline:
        lines.append(f"- Deadline: {deadline['gone']} entries gone in time, {deadline['gone_late']} gone late, "
                     f"{deadline['open']} open within the deadline, {deadline['overdue']} overdue, "
                     f"{deadline.get('held', 0)} held under a retention hold "
                     f"(checked: {deadline['where_checked']})")
    integrity = report.get("integrity")
    if integrity:
        lines.append(f"- Previous report: {integrity['previous_run_id'] or 'none (first of the chain)'}"
                     + (f", SHA-256 `{integrity['previous_report_sha256']}`" if integrity["previous_report_sha256"]
                        else ""))
    lines += [
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
    lines += ["", "## Entries", "",
              "| BlacklistId | created | age (h) | rows removed | still present | first verified gone | "
              "hours to gone | status |",
              "| --- | --- | ---: | --- | ---: | --- | ---: | --- |"]
    for e in report["entries"]:
        removed = ", ".join(f"{k}: {v}" for k, v in sorted(e["rows_removed"].items())) or "0"
        lines.append(f"| {e['blacklist_id']} | {e['created_at']} | {e['age_hours']} | {removed} | "
                     f"{e['rows_still_present']} | {e.get('first_verified_gone_at') or '-'} | "
                     f"{_or_dash(e.get('hours_to_gone'))} | {status_text(e)} |")
    lines += _files_markdown(report) + holds_markdown(report) + _raw_markdown(report)
    lines += _file_integrity(report.get("file_integrity", {}))
    residual_lines = residual_report.markdown(report.get("residuals"))
    if residual_lines:
        lines += ["", *residual_lines]
    if integrity:
        lines += ["", "## Integrity", "",
                  "This page's SHA-256 and the report's own SHA-256 are in `report.json` (`integrity`); "
                  "check the whole chain with `gdpr-sweep report verify`."]
    return "\n".join(lines) + "\n"


def _file_integrity(block: Mapping[str, Any]) -> list[str]:
    """Files that changed since the run read them, or outside the tool (paths and checksums only)."""
    since, outside = block.get("changed_since_read", []), block.get("changed_outside_tool", [])
    lines = ["", "## Files changed since read or outside the tool", "",
             f"- Changed since this run read them: {len(since)}"]
    lines += [f"  - `{c['path']}` ({c['dataset']}): {c['action']}" for c in since]
    lines.append(f"- Cleaned files changed outside gdpr-sweep: {len(outside)}")
    lines += [f"  - `{c['path']}` ({c['dataset']}): {c['action']}" for c in outside]
    return lines


def _banners_markdown(report: dict[str, Any]) -> list[str]:
    """The quoted lines a page opens with: a missed deadline, residuals found."""
    lines: list[str] = []
    overdue = report["overdue_entries"]
    if overdue:
        lines += [f"> **DEADLINE MISSED: {_entries(len(overdue))} older than {report['deadline_hours']:g} h "
                  "with data still present. This run failed.**", ">"]
        lines += [f"> - `{bid}`" for bid in overdue]
        lines.append("")
    residual_banner = residual_report.banner_text(report.get("residuals"))
    if residual_banner:
        lines += [f"> **{residual_banner}** See Residual scan below.", ""]
    return lines


def _files_markdown(report: dict[str, Any]) -> list[str]:
    lines = ["", "## Files", ""]
    for d in report["datasets"]:
        rewritten = [f for f in d["files"] if f["rewritten"]]
        lines.append(f"- **{d['name']}**: {len(d['files'])} files, {len(rewritten)} rewritten")
        for f in rewritten:
            lines.append(f"  - `{f['path']}` ({f['origin']}): {f['rows_in']} -> {f['rows_out']} rows, "
                         f"sha256 `{f['sha256_out'][:16]}…`")
    return lines


def _raw_markdown(report: dict[str, Any]) -> list[str]:
    raw = report["raw_copies"]
    lines = ["", "## Raw copies", "", f"- Deleted after this run: {len(raw['deleted'])}"]
    lines += [f"  - `{p}`" for p in raw["deleted"]]
    lines.append(f"- Still held (raw snapshots that may hold blacklisted data until deleted): {len(raw['still_held'])}")
    verdicts = {h["path"]: h["verdict"] for h in raw.get("held", [])}
    lines += [f"  - `{p}`" + (f": {verdicts[p]}" if p in verdicts else "") for p in raw["still_held"]]
    return lines


def _entries(n: int) -> str:
    return f"{n} blacklist {'entry' if n == 1 else 'entries'}"


def _or_dash(value: Any) -> str:
    return "-" if value is None else str(value)


def summary_markdown(report: dict[str, Any], report_path: str | None = None) -> str:
    """A short Markdown summary (Prefect artifact, terminal): totals, verification, deadline, hashes."""
    run, totals, ver = report["run"], report["totals"], report["verification"]
    overdue = report["overdue_entries"]
    lines = [f"# gdpr-sweep run {run['run_id']}", ""]
    if overdue:
        lines += [f"**DEADLINE MISSED: {_entries(len(overdue))} older than {report['deadline_hours']:g} h "
                  "with data still present. The run failed.**", ""] + [f"- `{bid}`" for bid in overdue] + [""]
    residuals = report.get("residuals")
    residual_banner = residual_report.banner_text(residuals)
    if residual_banner:
        lines += [f"**{residual_banner}**", ""]
    lines += [
        f"- Finished {run['finished_at']}; blacklist version {report['blacklist']['version']} "
        f"({report['blacklist']['entries']} entries)",
        f"- Rows in {totals['rows_in']}, out {totals['rows_out']}, removed {totals['rows_removed']}",
        f"- Verification: {ver['matches_found']} matches in {ver['rows_checked']} rows re-read: "
        f"**{'PASSED' if ver['ok'] else 'FAILED'}**",
    ]
    deadline = report.get("deadline")
    if deadline:
        lines.append(f"- Deadline ({deadline['hours']:g} h): {deadline['gone']} gone in time, "
                     f"{deadline['gone_late']} gone late, {deadline['open']} open, **{deadline['overdue']} overdue**")
    if residuals:
        lines.append(f"- Residual scan: {residuals['status']}"
                     + (f" ({len(residuals['findings'])} findings)" if residuals["found"] else ""))
    lines.append("")
    lines += ["| dataset | rows in | rows out | removed | email | user id | linked device |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for d in report["datasets"]:
        r = d["removed_by_reason"]
        lines.append(f"| {d['name']} | {d['rows_in']} | {d['rows_out']} | {d['rows_removed']} | {r['email']} | "
                     f"{r['user_id']} | {r['linked_device']} |")
    integrity = report.get("integrity")
    if integrity:
        lines += ["", f"Report SHA-256: `{integrity['report_sha256']}`",
                  f"Previous report: `{integrity['previous_report_sha256'] or 'none'}`"]
    if report_path:
        lines += ["", f"Report: `{report_path}`"]
    return "\n".join(lines) + "\n"


ARTIFACT_ROWS = 500
"""At most this many rows per Prefect table artifact; report.json has every row."""
_STATUS_ORDER = {"overdue": 0, "open": 1, "held": 2, "gone late": 3, "gone": 4}


def dataset_table(dataset: dict[str, Any], limit: int = ARTIFACT_ROWS) -> list[dict[str, Any]]:
    """One row per file of a dataset (Prefect table artifact): paths, counts and checksums only.
    Rewritten files first; at most `limit` rows."""
    files = sorted(dataset["files"], key=lambda f: (not f["rewritten"], f["path"]))[:limit]
    return [{"file": f["path"], "origin": f["origin"], "rows_in": f["rows_in"], "rows_out": f["rows_out"],
             "rows_removed": f["rows_removed"], "rewritten": f["rewritten"], "sha256_out": f["sha256_out"]}
            for f in files]


def deadline_table(report: dict[str, Any], limit: int = ARTIFACT_ROWS) -> list[dict[str, Any]]:
    """One row per entry: BlacklistId, creation, first verified gone, rows still present, status.
    Overdue entries first, then open, gone late, gone; at most `limit` rows."""
    entries = sorted(report["entries"], key=lambda e: (_STATUS_ORDER.get(e.get("status") or "", 4), e["created_at"]))
    return [{"blacklist_id": e["blacklist_id"], "created_at": e["created_at"],
             "first_verified_gone_at": e.get("first_verified_gone_at"), "hours_to_gone": e.get("hours_to_gone"),
             "rows_still_present": e["rows_still_present"], "status": e.get("status")}
            for e in entries[:limit]]


def report_paths(report_dir: Path, run_id: str) -> tuple[Path, Path]:
    folder = report_dir / run_id
    return folder / "report.json", folder / "report.md"
