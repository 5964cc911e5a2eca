"""The audit report as one self-contained HTML page: inline CSS and SVG charts, no external assets.

Rendered from the report dict alone (`pipelines.reporting.report.build_report`), so it holds nothing the JSON
does not: BlacklistIds, keyed hashes, counts, paths. Every text from the report is escaped. The
page prints legibly on A4 (print CSS: no backgrounds needed for meaning, tables do not split rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from pipelines.reporting import residual_report
from pipelines.reporting.report_holds import holds_html, status_text

REASONS = (("email", "by email", "#1f77b4"), ("user_id", "by user id", "#ff7f0e"),
           ("linked_device", "by linked device", "#2ca02c"))
STATUS_COLORS = {"gone": "#2ca02c", "gone late": "#9467bd", "held": "#17becf", "open": "#ff7f0e",
                 "overdue": "#d62728"}
AGE_BUCKETS = ((0, 6, "0–6 h"), (6, 12, "6–12 h"), (12, 18, "12–18 h"), (18, 24, "18–24 h"),
               (24, 48, "24–48 h"), (48, 24 * 7, "2–7 days"), (24 * 7, float("inf"), "over 7 days"))
MAX_PARTITIONS = 62
MAX_ENTRY_ROWS = 2000

_CSS = """
:root { --ink: #1a1a1a; --muted: #555; --line: #ccc; --bad: #b00020; --good: #1b7a1b; }
* { box-sizing: border-box; }
body { font: 14px/1.45 "DejaVu Sans", "Liberation Sans", Arial, Helvetica, sans-serif; color: var(--ink);
       margin: 24px auto; max-width: 1100px; padding: 0 16px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 2px solid #333; }
h3 { font-size: 15px; margin: 16px 0 6px; }
.meta { color: var(--muted); margin: 0 0 12px; }
.banner { padding: 12px 16px; border: 3px solid; font-weight: bold; font-size: 16px; margin: 12px 0; }
.banner.ok { border-color: var(--good); color: var(--good); }
.banner.bad { border-color: var(--bad); color: var(--bad); }
.banner ul { margin: 6px 0 0; font-weight: normal; font-family: "DejaVu Sans Mono", monospace; font-size: 13px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }
.card { border: 1px solid var(--line); padding: 8px 12px; min-width: 150px; }
.card b { display: block; font-size: 20px; } .card span { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; font-size: 12.5px; }
th, td { border: 1px solid var(--line); padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td.t { white-space: nowrap; } td.id { font-family: "DejaVu Sans Mono", monospace; font-size: 11.5px; white-space: nowrap; }
code, .mono { font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 12px; word-break: break-all; }
.bad { color: var(--bad); font-weight: bold; } .good { color: var(--good); font-weight: bold; }
.chart { margin: 8px 0 16px; } .chart svg { max-width: 100%; height: auto; }
.legend span { display: inline-block; margin-right: 14px; font-size: 12.5px; }
.legend i { display: inline-block; width: 12px; height: 12px; margin-right: 5px; vertical-align: -1px; }
.note { color: var(--muted); font-size: 12.5px; }
@page { size: A4; margin: 14mm; }
@media print {
  body { margin: 0; max-width: none; font-size: 11px; }
  h2 { break-after: avoid; } tr, .chart, .card, .banner { break-inside: avoid; }
  th { background: none; } * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def render_html(report: dict[str, Any]) -> str:
    run, totals, ver = report["run"], report["totals"], report["verification"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>gdpr-sweep purge report {_e(run['run_id'])}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>gdpr-sweep purge report</h1><p class=\"meta\">Run <code>{_e(run['run_id'])}</code> · "
        f"started {_e(run['started_at'])} · finished {_e(run['finished_at'])} · code {_e(run['code_version'])} · "
        f"blacklist version {_e(report['blacklist']['version'])} ({_e(report['blacklist']['entries'])} entries)</p>",
        _banner(report),
        _residual_banner(report),
        _cards(report),
        "<h2>Rows removed per dataset and reason</h2>",
        _reason_chart(report["datasets"]),
        _datasets_table(report["datasets"], totals),
        "<h2>Rows removed per day or partition</h2>",
        *(_partition_chart(d) for d in report["datasets"]),
        "<h2>Blacklist entries by age</h2>",
        _age_chart(report.get("entries", [])),
        "<h2>Entries and the deadline</h2>",
        _entries_table(report.get("entries", []), report.get("deadline_hours", 24)),
        holds_html(report),
        "<h2>Verification</h2>",
        f"<p>{_e(ver['files_checked'])} output files and {_e(ver['rows_checked'])} rows checked against every entry ("
        f"{_e(ver.get('files_reread', ver['files_checked']))} rewritten files re-read and matched again): <span class=\"{'good' if ver['ok'] else 'bad'}\">{_e(ver['matches_found'])} matches found "
        f"({'PASSED' if ver['ok'] else 'FAILED'})</span>.</p>",
        "<h2>Files rewritten</h2>",
        _files(report["datasets"]),
        "<h2>Raw copies</h2>",
        _raw(report.get("raw_copies", {})),
        residual_report.html(report.get("residuals")),
        "<h2>Integrity</h2>",
        _integrity(report),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _n(value: int | float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def _banner(report: dict[str, Any]) -> str:
    overdue = report.get("overdue_entries", [])
    ver = report["verification"]
    hours = report.get("deadline_hours", 24)
    if overdue:
        items = "".join(f"<li>{_e(b)}</li>" for b in overdue)
        return (f'<div class="banner bad">DEADLINE MISSED: {len(overdue)} blacklist '
                f"{'entry is' if len(overdue) == 1 else 'entries are'} older than {hours:g} hours and "
                f"{'its' if len(overdue) == 1 else 'their'} data is still present. This run failed.<ul>{items}</ul></div>")
    if not ver["ok"]:
        return '<div class="banner bad">VERIFICATION FAILED: the outputs still hold blacklisted rows.</div>'
    open_ = report.get("deadline", {}).get("open", 0)
    note = (f'<br><span style="color:#a05a00">{open_} {"entry still has" if open_ == 1 else "entries still have"} '
            f"rows in raw snapshot copies, within the deadline: see Raw copies and the entries table.</span>"
            if open_ else "")
    return (f'<div class="banner ok">PASSED: verification found no blacklisted rows, and no entry older than '
            f"{hours:g} hours still holds data.{note}</div>")


def _residual_banner(report: dict[str, Any]) -> str:
    text = residual_report.banner_text(report.get("residuals"))
    return f'<div class="banner bad">{_e(text)} See Residual scan below.</div>' if text else ""


def _cards(report: dict[str, Any]) -> str:
    totals, deadline = report["totals"], report.get("deadline", {})
    cards = [("rows in", _n(totals["rows_in"])), ("rows out", _n(totals["rows_out"])),
             ("rows removed", _n(totals["rows_removed"])),
             ("verification matches", _n(report["verification"]["matches_found"])),
             ("overdue entries", _n(len(report.get("overdue_entries", []))))]
    if deadline:
        cards.append(("entries open / gone", f"{_n(deadline['open'])} / {_n(deadline['gone'] + deadline['gone_late'])}"))
    return '<div class="cards">' + "".join(f"<div class=\"card\"><b>{v}</b><span>{_e(k)}</span></div>"
                                           for k, v in cards) + "</div>"


def _nice_max(value: int) -> int:
    """The smallest of 2, 4, 6, 8, 10, 20, 40, ... not below `value`: ticks at 0, half and full are whole."""
    scale = 1
    while True:
        for step in (2, 4, 6, 8, 10):
            if step * scale >= value:
                return step * scale
        scale *= 10


def _legend(items: Sequence[tuple[str, str]]) -> str:
    return '<div class="legend">' + "".join(f'<span><i style="background:{c}"></i>{_e(t)}</span>'
                                            for t, c in items) + "</div>"


def _reason_chart(datasets: Sequence[dict[str, Any]]) -> str:
    """Horizontal stacked bars: one per dataset, split by reason, total at the end."""
    if not datasets:
        return '<p class="note">No datasets.</p>'
    label_w, bar_w, row_h, width = 170, 720, 34, 1000
    top = max([d["rows_removed"] for d in datasets] + [1])
    height = row_h * len(datasets) + 30
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="Rows removed per dataset and reason" '
           'font-family="DejaVu Sans, Arial, sans-serif" font-size="13">']
    for i, d in enumerate(datasets):
        y = 8 + i * row_h
        svg.append(f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end">{_e(d["name"])}</text>')
        x = float(label_w)
        for key, _label, color in REASONS:
            n = d["removed_by_reason"].get(key, 0)
            w = bar_w * n / top
            if n:
                svg.append(f'<rect x="{x:.1f}" y="{y}" width="{max(w, 1):.1f}" height="24" fill="{color}">'
                           f"<title>{_e(d['name'])} {_e(key)}: {n}</title></rect>")
            x += w
        svg.append(f'<text x="{x + 6:.1f}" y="{y + 17}">{_n(d["rows_removed"])}</text>')
    svg.append(f'<line x1="{label_w}" y1="4" x2="{label_w}" y2="{height - 20}" stroke="#333"/>')
    svg.append(f'<text x="{label_w}" y="{height - 4}" fill="#555" font-size="11">0</text>'
               f'<text x="{label_w + bar_w}" y="{height - 4}" fill="#555" font-size="11" text-anchor="end">'
               f"{_n(top)} rows</text></svg>")
    return '<div class="chart">' + "".join(svg) + _legend([(label, c) for _k, label, c in REASONS]) + "</div>"


def _partition_chart(d: dict[str, Any]) -> str:
    """Vertical bars of rows removed per day (or partition, or file) of one dataset."""
    parts = d.get("removed_by_partition") or {}
    title = f"<h3>{_e(d['name'])}</h3>"
    if not parts:
        return title + '<p class="note">No files.</p>'
    items = list(parts.items())
    note = ""
    if len(items) > MAX_PARTITIONS:
        kept = sorted(sorted(items, key=lambda kv: -kv[1])[:MAX_PARTITIONS])
        note = (f'<p class="note">{len(items) - MAX_PARTITIONS} of {len(items)} partitions with the fewest '
                "removals are not drawn; all are counted in report.json.</p>")
        items = kept
    width, height, left, bottom = 1000, 260, 60, 90
    plot_w, plot_h = width - left - 10, height - bottom - 20
    top = _nice_max(max(v for _, v in items))
    slot = plot_w / len(items)
    bar = max(min(slot * 0.7, 60), 2)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="Rows removed per partition of {_e(d["name"])}" '
           'font-family="DejaVu Sans, Arial, sans-serif" font-size="12">']
    base = 20 + plot_h
    for frac in (0, 0.5, 1):
        y = base - plot_h * frac
        svg.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" stroke="#ddd"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{_n(int(top * frac))}</text>')
    for i, (label, n) in enumerate(items):
        cx = left + slot * (i + 0.5)
        h = plot_h * n / top
        if n:
            svg.append(f'<rect x="{cx - bar / 2:.1f}" y="{base - h:.1f}" width="{bar:.1f}" height="{max(h, 1):.1f}" '
                       f'fill="#1f77b4"><title>{_e(label)}: {n}</title></rect>')
            if len(items) <= 31:
                svg.append(f'<text x="{cx:.1f}" y="{base - h - 4:.1f}" text-anchor="middle" font-size="11">{n}</text>')
        svg.append(f'<text transform="translate({cx + 4:.1f},{base + 8}) rotate(60)" font-size="11">'
                   f"{_e(label[:28])}</text>")
    svg.append("</svg>")
    return title + '<div class="chart">' + "".join(svg) + "</div>" + note


def _age_chart(entries: Sequence[dict[str, Any]]) -> str:
    """Entries per age bucket, stacked by status: gone, gone late, open, overdue."""
    if not entries:
        return '<p class="note">No blacklist entries in this run.</p>'
    statuses = list(STATUS_COLORS)
    counts = [[0] * len(statuses) for _ in AGE_BUCKETS]
    for e in entries:
        status = e.get("status") or ("overdue" if e.get("overdue") else "gone")
        for b, (lo, hi, _label) in enumerate(AGE_BUCKETS):
            if lo <= e["age_hours"] < hi:
                counts[b][statuses.index(status)] += 1
                break
    width, height, left, bottom = 1000, 240, 60, 40
    plot_w, plot_h = width - left - 10, height - bottom - 20
    top = _nice_max(max(sum(c) for c in counts))
    slot = plot_w / len(AGE_BUCKETS)
    base = 20 + plot_h
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="Blacklist entries by age and status" '
           'font-family="DejaVu Sans, Arial, sans-serif" font-size="12">']
    for frac in (0, 0.5, 1):
        y = base - plot_h * frac
        svg.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" stroke="#ddd"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{_n(int(top * frac))}</text>')
    deadline_x = left + slot * 4
    for b, (_lo, _hi, label) in enumerate(AGE_BUCKETS):
        cx = left + slot * (b + 0.5)
        y = float(base)
        for s, status in enumerate(statuses):
            n = counts[b][s]
            if n:
                h = plot_h * n / top
                y -= h
                svg.append(f'<rect x="{cx - slot * 0.3:.1f}" y="{y:.1f}" width="{slot * 0.6:.1f}" height="{h:.1f}" '
                           f'fill="{STATUS_COLORS[status]}"><title>{_e(label)} {status}: {n}</title></rect>')
        total = sum(counts[b])
        svg.append(f'<text x="{cx:.1f}" y="{y - 4:.1f}" text-anchor="middle" font-size="12">{total}</text>'
                   f'<text x="{cx:.1f}" y="{base + 18}" text-anchor="middle">{_e(label)}</text>')
    svg.append(f'<line x1="{deadline_x:.1f}" y1="14" x2="{deadline_x:.1f}" y2="{base}" stroke="#d62728" '
               f'stroke-dasharray="6 4" stroke-width="2"/><text x="{deadline_x + 4:.1f}" y="26" fill="#d62728">'
               "24 h deadline</text></svg>")
    legend = _legend([(s, STATUS_COLORS[s]) for s in statuses])
    return ('<div class="chart">' + "".join(svg) + legend + '<p class="note">Age at this run. Open: data still '
            "present, within the deadline. Overdue: data still present after the deadline.</p></div>")


def _datasets_table(datasets: Sequence[dict[str, Any]], totals: dict[str, Any]) -> str:
    rows = ["<table><tr><th>dataset</th><th class=n>rows in</th><th class=n>rows out</th><th class=n>removed</th>"
            "<th class=n>by email</th><th class=n>by user id</th><th class=n>by linked device</th>"
            "<th>in = out + removed</th></tr>"]
    for d in datasets:
        r = d["removed_by_reason"]
        ok = '<span class="good">yes</span>' if d["conserved"] else '<span class="bad">NO</span>'
        rows.append(f"<tr><td>{_e(d['name'])}</td><td class=n>{_n(d['rows_in'])}</td><td class=n>{_n(d['rows_out'])}"
                    f"</td><td class=n>{_n(d['rows_removed'])}</td><td class=n>{_n(r['email'])}</td>"
                    f"<td class=n>{_n(r['user_id'])}</td><td class=n>{_n(r['linked_device'])}</td><td>{ok}</td></tr>")
    rows.append(f"<tr><th>total</th><th class=n>{_n(totals['rows_in'])}</th><th class=n>{_n(totals['rows_out'])}"
                f"</th><th class=n>{_n(totals['rows_removed'])}</th><th></th><th></th><th></th><th></th></tr></table>")
    return "".join(rows)


def _entries_table(entries: Sequence[dict[str, Any]], hours: float) -> str:
    if not entries:
        return '<p class="note">No entries.</p>'
    order = {"overdue": 0, "open": 1, "held": 2, "gone late": 3, "gone": 4}
    ranked = sorted(entries, key=lambda e: (order.get(e.get("status", "gone"), 4), e["created_at"]))
    rows = ["<table><tr><th>BlacklistId</th><th>scope</th><th>created (UTC)</th><th>first verified gone (UTC)</th>"
            "<th class=n>hours to gone</th><th class=n>rows removed</th><th class=n>still present</th>"
            "<th>status</th></tr>"]
    for e in ranked[:MAX_ENTRY_ROWS]:
        status = e.get("status", "")
        cls = "bad" if status == "overdue" else ("good" if status == "gone" else "")
        removed = sum(e["rows_removed"].values())
        rows.append(f"<tr><td class=id>{_e(e['blacklist_id'])}</td><td>{_e(e.get('scope') or 'all')}</td>"
                    f"<td class=t>{_e(e['created_at'][:19].replace('T', ' '))}</td>"
                    f"<td class=t>{_e((e.get('first_verified_gone_at') or '-')[:19].replace('T', ' '))}</td>"
                    f"<td class=n>{_e('-' if e.get('hours_to_gone') is None else e['hours_to_gone'])}</td>"
                    f"<td class=n>{_n(removed)}</td><td class=n>{_n(e['rows_still_present'])}</td>"
                    f"<td class=\"{cls}\">{_e(status_text(e))}</td></tr>")
    rows.append("</table>")
    if len(ranked) > MAX_ENTRY_ROWS:
        rows.append(f'<p class="note">{len(ranked) - MAX_ENTRY_ROWS} more entries (all gone in time) are in '
                    "report.json.</p>")
    rows.append(f'<p class="note">The deadline is {hours:g} hours from an entry\'s creation. Entries are named '
                "by BlacklistId only; report.json adds keyed hashes of their email and user id.</p>")
    return "".join(rows)


def _files(datasets: Sequence[dict[str, Any]]) -> str:
    rows = ["<table><tr><th>dataset</th><th>file</th><th>origin</th><th class=n>rows in</th><th class=n>rows out</th>"
            "<th>SHA-256 of output</th></tr>"]
    count = 0
    for d in datasets:
        for f in d["files"]:
            if f["rewritten"]:
                count += 1
                rows.append(f"<tr><td>{_e(d['name'])}</td><td class=mono>{_e(f['path'])}</td><td>{_e(f['origin'])}</td>"
                            f"<td class=n>{_n(f['rows_in'])}</td><td class=n>{_n(f['rows_out'])}</td>"
                            f"<td class=mono>{_e(f['sha256_out'])}</td></tr>")
    rows.append("</table>")
    total = sum(len(d["files"]) for d in datasets)
    note = (f'<p class="note">{count} of {total} files rewritten; the others held no matching rows and were kept '
            "byte for byte. Every file's input and output checksum is in report.json.</p>")
    return ("".join(rows) if count else "") + note


def _raw(raw: dict[str, Any]) -> str:
    deleted, held = raw.get("deleted", []), raw.get("still_held", [])
    out = [f"<p>Deleted after this run: {len(deleted)}. Still held: "
           f"<span class=\"{'bad' if held else 'good'}\">{len(held)}</span>"
           " (raw snapshot files that may hold blacklisted data until deleted).</p>"]
    if held:
        verdicts = {h["path"]: h["verdict"] for h in raw.get("held", [])}
        out.append("<ul>" + "".join(f"<li><span class=mono>{_e(p)}</span>"
                                    + (f": {_e(verdicts[p])}" if p in verdicts else "") + "</li>"
                                    for p in held[:200]) + "</ul>")
    return "".join(out)


def _integrity(report: dict[str, Any]) -> str:
    integrity = report.get("integrity") or {}
    prev = integrity.get("previous_run_id")
    return (f"<p>Previous report: {('<code>' + _e(prev) + '</code>') if prev else 'none (first of the chain)'}"
            + (f", SHA-256 <code>{_e(integrity['previous_report_sha256'])}</code>"
               if integrity.get("previous_report_sha256") else "")
            + ".</p><p class=\"note\">This page's SHA-256 and the report's own SHA-256 are recorded in report.json "
            "(<code>integrity</code>). Check every report of the chain with <code>gdpr-sweep report verify</code>; "
            "look a person up with <code>gdpr-sweep report lookup --email …</code> (keyed hashes, operator's secret)."
            "</p>")
