"""The residual scan in the reports: when it is due, its Markdown and HTML sections, its table artifact,
and the report it writes on its own (`gdpr-sweep scan`: `_operations/<run_id>/residual-scan.json`).

Every section names datasets, columns and BlacklistIds with row counts; never a value.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

from pipelines.config.scan_settings import WEEKLY_HOURS, ScanSettings
from pipelines.reporting import chain

KIND = "residual_scan"
DOC_NAME = "residual-scan.json"
REPORT_VERSION = 1
MAX_ROWS = 500
HELD_NOTE = ("Kept under a retention hold, not residuals: an active hold keeps these entries' rows in these "
             "datasets on purpose (docs/decisions/0271-retention-holds.md).")


def last_scan_at(report_dir: Path) -> str | None:
    """When the newest scan in the chain ran (a sweep's `residuals.scanned_at`, or a `gdpr-sweep scan`)."""
    for item in reversed(chain.read_index(report_dir)):
        doc = chain.load_document(report_dir, item.relpath)
        block = (doc or {}).get("residuals") or {}
        if block.get("scanned") and block.get("scanned_at"):
            return str(block["scanned_at"])
    return None


def due(scan: ScanSettings, last: str | None, now: datetime) -> tuple[bool, str]:
    """Whether a nightly run scans, and why (or why not)."""
    if scan.schedule == "off":
        return False, "schedule off"
    if scan.schedule == "every_run":
        return True, "schedule every_run"
    if last is None:
        return True, "schedule weekly: no scan yet"
    then = datetime.fromisoformat(last.replace("Z", "+00:00"))
    if now - then >= timedelta(hours=WEEKLY_HOURS):
        return True, f"schedule weekly: last scan {last}"
    return False, f"schedule weekly: last scan {last}"


def banner_text(block: dict[str, Any] | None) -> str | None:
    """The one line every page heads with when residuals were found."""
    if not block or not block.get("found"):
        return None
    columns = {(f["target"], f["column"]) for f in block["findings"]}
    return (f"RESIDUALS FOUND: {block['entries_found']} blacklist "
            f"{'entry appears' if block['entries_found'] == 1 else 'entries appear'} in {len(columns)} "
            f"{'column' if len(columns) == 1 else 'columns'} outside the sweep's reach. Nothing was deleted"
            + ("; this run failed." if block.get("fail_on_residuals") else "."))


def markdown(block: dict[str, Any] | None) -> list[str]:
    """The `## Residual scan` section."""
    if not block:
        return []
    lines = ["## Residual scan", ""]
    if not block["scanned"]:
        return lines + [f"- Not scanned this run ({block.get('reason') or block['schedule']})."]
    lines.append(f"- Scanned at {block['scanned_at']}: {len(block['targets'])} datasets and folders, "
                 f"{block['entries_searched']} entries and {block['devices_searched']} linked devices searched "
                 f"in every string value: **{block['status'].upper() if block['found'] else block['status']}**")
    lines += [f"- Not scanned: {s}" for s in block.get("not_scanned", [])]
    lines += ["", "| dataset or folder | files | rows | string values |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {t['name']} ({t['kind']}) | {t['files']} | {t['rows']} | {t['values']} |" for t in block["targets"]]
    if block["found"]:
        lines += ["", block["advice"], "", "| dataset or folder | column | configured | found by | BlacklistId | rows |",
                  "| --- | --- | --- | --- | --- | ---: |"]
        lines += [f"| {f['target']} | `{f['column']}` | {'yes' if f['configured'] else 'no'} | {f['match']} | "
                  f"{f['blacklist_id']} | {f['rows']} |" for f in block["findings"][:MAX_ROWS]]
    held = block.get("held_findings") or []
    if held:
        lines += ["", HELD_NOTE, "", "| dataset | column | found by | BlacklistId | rows | retention hold |",
                  "| --- | --- | --- | --- | ---: | --- |"]
        lines += [f"| {f['target']} | `{f['column']}` | {f['match']} | {f['blacklist_id']} | {f['rows']} | "
                  f"{f['hold_id']} |" for f in held[:MAX_ROWS]]
    return lines


def html(block: dict[str, Any] | None) -> str:
    """The HTML section (same content as `markdown`)."""
    if not block:
        return ""
    out = ["<h2>Residual scan</h2>"]
    if not block["scanned"]:
        return out[0] + f"<p>Not scanned this run ({escape(str(block.get('reason') or block['schedule']))}).</p>"
    cls = "bad" if block["found"] else "good"
    out.append(f"<p>Scanned at {escape(str(block['scanned_at']))}: {len(block['targets'])} datasets and folders, "
               f"{block['entries_searched']} entries and {block['devices_searched']} linked devices searched in "
               f"every string value: <span class=\"{cls}\">{escape(block['status'])}</span>.</p>")
    if block["found"]:
        out.append(f"<p class=\"note\">{escape(block['advice'])}</p><table><tr><th>dataset or folder</th>"
                   "<th>column</th><th>configured</th><th>found by</th><th>BlacklistId</th><th class=n>rows</th></tr>")
        out += [f"<tr><td>{escape(f['target'])}</td><td class=mono>{escape(f['column'])}</td>"
                f"<td>{'yes' if f['configured'] else 'no'}</td><td>{escape(f['match'])}</td>"
                f"<td class=id>{escape(f['blacklist_id'])}</td><td class=n>{f['rows']:,}</td></tr>"
                for f in block["findings"][:MAX_ROWS]]
        out.append("</table>")
    out.append(_held_html(block.get("held_findings") or []))
    out += [f"<p class=\"note\">Not scanned: {escape(s)}</p>" for s in block.get("not_scanned", [])]
    return "".join(out)


def _held_html(held: list[dict[str, Any]]) -> str:
    """Findings where an active retention hold keeps the entry's rows (`held_findings`): shown, not residuals."""
    if not held:
        return ""
    rows = [f"<tr><td>{escape(f['target'])}</td><td class=mono>{escape(f['column'])}</td><td>{escape(f['match'])}</td>"
            f"<td class=id>{escape(f['blacklist_id'])}</td><td class=n>{f['rows']:,}</td>"
            f"<td class=id>{escape(f['hold_id'])}</td></tr>" for f in held[:MAX_ROWS]]
    return (f"<p class=\"note\">{escape(HELD_NOTE)}</p><table><tr><th>dataset</th><th>column</th><th>found by</th>"
            "<th>BlacklistId</th><th class=n>rows</th><th>retention hold</th></tr>" + "".join(rows) + "</table>")


def table_rows(block: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Rows of the Prefect table artifact `gdpr-sweep-residuals`."""
    return [dict(f) for f in ((block or {}).get("findings") or [])[:MAX_ROWS]]


def build_scan_report(run: dict[str, Any], block: dict[str, Any], blacklist_version: int) -> dict[str, Any]:
    """The report of a `gdpr-sweep scan` run (an operation in the report chain)."""
    return {"report_version": REPORT_VERSION, "kind": KIND, "run": run,
            "blacklist": {"version": blacklist_version, "entries": block["entries_searched"]},
            "residuals": block, "verification": {"ok": True}}


def scan_pages(report: dict[str, Any]) -> dict[str, str]:
    run = report["run"]
    banner = banner_text(report["residuals"])
    md = [f"# gdpr-sweep residual scan {run['run_id']}", ""]
    md += [f"> **{banner}**", ""] if banner else []
    md += [f"- Started {run['started_at']}, finished {run['finished_at']}; code version {run['code_version']}; "
           f"blacklist version {report['blacklist']['version']}", "", *markdown(report["residuals"]), "",
           *chain.integrity_markdown(report)]
    page = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
            f"<title>gdpr-sweep residual scan {escape(run['run_id'])}</title>",
            "<style>body{font:14px/1.45 sans-serif;max-width:1100px;margin:24px auto;padding:0 16px}"
            "table{border-collapse:collapse;width:100%}th,td{border:1px solid #ccc;padding:3px 6px;text-align:left}"
            ".bad{color:#b00020;font-weight:bold}.good{color:#1b7a1b;font-weight:bold}.note{color:#555}"
            ".banner{border:3px solid #b00020;color:#b00020;padding:12px;font-weight:bold}</style></head><body>",
            f"<h1>gdpr-sweep residual scan</h1><p>Run <code>{escape(run['run_id'])}</code> · finished "
            f"{escape(run['finished_at'])}</p>"]
    page += [f'<div class="banner">{escape(banner)}</div>'] if banner else []
    page += [html(report["residuals"]), "</body></html>"]
    return {"residual-scan.md": "\n".join(md) + "\n", "residual-scan.html": "\n".join(page) + "\n"}


def write_scan_report(report_dir: Path, report: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    rel = f"{chain.OPERATIONS_DIR}/{report['run']['run_id']}/{DOC_NAME}"
    return chain.write_linked(report_dir, report, scan_pages, rel)
