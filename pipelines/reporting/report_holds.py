"""Retention holds in a run's report pages (Markdown and HTML): which rows were kept and why.

Rendered from the report dict alone (`holds` block, entries' `held`), like the rest of the pages:
BlacklistIds, dataset names, the hold's reason and end date, counts. Every text is escaped in HTML.
"""

from __future__ import annotations

from html import escape
from typing import Any


def status_text(entry: dict[str, Any]) -> str:
    """An entry's status as the pages show it: `held: <reason> until <date>` for rows kept by a hold."""
    status = entry.get("status") or ""
    if status != "held":
        return status.upper() if status == "overdue" else status
    parts = [f"{h['dataset']}: {h.get('reason') or 'hold'}"
             + (f" until {h['until'][:10]}" if h.get("until") else " until released") for h in entry.get("held", [])]
    return "held (" + "; ".join(parts) + ")" if parts else "held"


def _hold_line(h: dict[str, Any]) -> str:
    what = (f"entry {h['blacklist_id']}" if h.get("blacklist_id") else "every entry") + \
        (f" in dataset {h['dataset']}" if h.get("dataset") else " in every dataset")
    until = f"until {h['until']}" if h.get("until") else "until released"
    return f"hold {h['hold_id']}: {what}, {until}; reason: {h['reason']}"


def holds_markdown(report: dict[str, Any]) -> list[str]:
    block = report.get("holds") or {}
    active, ended = block.get("active", []), block.get("ended_since_last_sweep", [])
    if not active and not ended:
        return []
    held = block.get("rows_held", {})
    lines = ["", "## Retention holds", "",
             f"- Rows kept under a hold (reported `held`, not removed): "
             f"{', '.join(f'{d}: {n}' for d, n in held.items()) or 'none'}"]
    lines += [f"- Active {_hold_line(h)}" for h in active]
    lines += [f"- Ended {h['ended_at']}: {_hold_line(h)}; its rows are erased by this run" for h in ended]
    return lines


def holds_html(report: dict[str, Any]) -> str:
    block = report.get("holds") or {}
    active, ended = block.get("active", []), block.get("ended_since_last_sweep", [])
    if not active and not ended:
        return ""
    held = block.get("rows_held", {})
    items = [f"<li>Active {escape(_hold_line(h))}</li>" for h in active]
    items += [f"<li>Ended {escape(h['ended_at'])}: {escape(_hold_line(h))}; its rows are erased by this run</li>"
              for h in ended]
    counts = ", ".join(f"{escape(d)}: {n:,}" for d, n in held.items()) or "none"
    return (f"<h2>Retention holds</h2><p>Rows kept under a hold (reported <b>held</b>, not removed): {counts}.</p>"
            f"<ul>{''.join(items)}</ul>")
