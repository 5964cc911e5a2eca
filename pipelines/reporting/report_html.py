"""The audit report as one self-contained HTML page: inline CSS and SVG charts, no external assets.

Rendered from the report dict alone (`pipelines.reporting.report.build_report`), so it holds nothing the JSON
does not: BlacklistIds, keyed hashes, counts, paths. Every text from the report is escaped. The
page prints legibly on A4 (print CSS: no backgrounds needed for meaning, tables do not split rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipelines.reporting import residual_report
from pipelines.reporting.html_parts import CSS, STATUS_COLORS, esc, legend, nice_max, num, svg_open, y_grid
from pipelines.reporting.report_holds import holds_html, status_text

REASONS = (("email", "by email", "#1f77b4"), ("user_id", "by user id", "#ff7f0e"),
           ("linked_device", "by linked device", "#2ca02c"))
AGE_BUCKETS = ((0, 6, "0–6 h"), (6, 12, "6–12 h"), (12, 18, "12–18 h"), (18, 24, "18–24 h"),
               (24, 48, "24–48 h"), (48, 24 * 7, "2–7 days"), (24 * 7, float("inf"), "over 7 days"))
MAX_PARTITIONS = 62
MAX_ENTRY_ROWS = 2000



def render_html(report: dict[str, Any]) -> str:
    run, totals, ver = report["run"], report["totals"], report["verification"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>gdpr-sweep purge report {esc(run['run_id'])}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>gdpr-sweep purge report</h1><p class=\"meta\">Run <code>{esc(run['run_id'])}</code> · "
        f"started {esc(run['started_at'])} · finished {esc(run['finished_at'])} · code {esc(run['code_version'])} · "
        f"blacklist version {esc(report['blacklist']['version'])} ({esc(report['blacklist']['entries'])} entries)</p>",
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
        f"<p>{esc(ver['files_checked'])} output files and {esc(ver['rows_checked'])} rows checked against every entry ("
        f"{esc(ver.get('files_reread', ver['files_checked']))} rewritten files re-read and matched again): <span class=\"{'good' if ver['ok'] else 'bad'}\">{esc(ver['matches_found'])} matches found "
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


def _banner(report: dict[str, Any]) -> str:
    overdue = report.get("overdue_entries", [])
    ver = report["verification"]
    hours = report.get("deadline_hours", 24)
    if overdue:
        items = "".join(f"<li>{esc(b)}</li>" for b in overdue)
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
    return f'<div class="banner bad">{esc(text)} See Residual scan below.</div>' if text else ""


def _cards(report: dict[str, Any]) -> str:
    totals, deadline = report["totals"], report.get("deadline", {})
    cards = [("rows in", num(totals["rows_in"])), ("rows out", num(totals["rows_out"])),
             ("rows removed", num(totals["rows_removed"])),
             ("verification matches", num(report["verification"]["matches_found"])),
             ("overdue entries", num(len(report.get("overdue_entries", []))))]
    if deadline:
        cards.append(("entries open / gone", f"{num(deadline['open'])} / {num(deadline['gone'] + deadline['gone_late'])}"))
    return '<div class="cards">' + "".join(f"<div class=\"card\"><b>{v}</b><span>{esc(k)}</span></div>"
                                           for k, v in cards) + "</div>"


def _reason_chart(datasets: Sequence[dict[str, Any]]) -> str:
    """Horizontal stacked bars: one per dataset, split by reason, total at the end."""
    if not datasets:
        return '<p class="note">No datasets.</p>'
    label_w, bar_w, row_h, width = 170, 720, 34, 1000
    top = max([d["rows_removed"] for d in datasets] + [1])
    height = row_h * len(datasets) + 30
    svg = [svg_open(width, height, "Rows removed per dataset and reason", 13)]
    for i, d in enumerate(datasets):
        y = 8 + i * row_h
        svg.append(f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end">{esc(d["name"])}</text>')
        x = float(label_w)
        for key, _label, color in REASONS:
            n = d["removed_by_reason"].get(key, 0)
            w = bar_w * n / top
            if n:
                svg.append(f'<rect x="{x:.1f}" y="{y}" width="{max(w, 1):.1f}" height="24" fill="{color}">'
                           f"<title>{esc(d['name'])} {esc(key)}: {n}</title></rect>")
            x += w
        svg.append(f'<text x="{x + 6:.1f}" y="{y + 17}">{num(d["rows_removed"])}</text>')
    svg.append(f'<line x1="{label_w}" y1="4" x2="{label_w}" y2="{height - 20}" stroke="#333"/>')
    svg.append(f'<text x="{label_w}" y="{height - 4}" fill="#555" font-size="11">0</text>'
               f'<text x="{label_w + bar_w}" y="{height - 4}" fill="#555" font-size="11" text-anchor="end">'
               f"{num(top)} rows</text></svg>")
    return '<div class="chart">' + "".join(svg) + legend([(label, c) for _k, label, c in REASONS]) + "</div>"


def _partition_chart(d: dict[str, Any]) -> str:
    """Vertical bars of rows removed per day (or partition, or file) of one dataset."""
    parts = d.get("removed_by_partition") or {}
    title = f"<h3>{esc(d['name'])}</h3>"
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
    top = nice_max(max(v for _, v in items))
    slot = plot_w / len(items)
    bar = max(min(slot * 0.7, 60), 2)
    svg = [svg_open(width, height, f"Rows removed per partition of {esc(d['name'])}")]
    base = 20 + plot_h
    svg += y_grid(left, width, base, plot_h, top)
    for i, (label, n) in enumerate(items):
        cx = left + slot * (i + 0.5)
        h = plot_h * n / top
        if n:
            svg.append(f'<rect x="{cx - bar / 2:.1f}" y="{base - h:.1f}" width="{bar:.1f}" height="{max(h, 1):.1f}" '
                       f'fill="#1f77b4"><title>{esc(label)}: {n}</title></rect>')
            if len(items) <= 31:
                svg.append(f'<text x="{cx:.1f}" y="{base - h - 4:.1f}" text-anchor="middle" font-size="11">{n}</text>')
        svg.append(f'<text transform="translate({cx + 4:.1f},{base + 8}) rotate(60)" font-size="11">'
                   f"{esc(label[:28])}</text>")
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
    top = nice_max(max(sum(c) for c in counts))
    slot = plot_w / len(AGE_BUCKETS)
    base = 20 + plot_h
    svg = [svg_open(width, height, "Blacklist entries by age and status")]
    svg += y_grid(left, width, base, plot_h, top)
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
                           f'fill="{STATUS_COLORS[status]}"><title>{esc(label)} {status}: {n}</title></rect>')
        total = sum(counts[b])
        svg.append(f'<text x="{cx:.1f}" y="{y - 4:.1f}" text-anchor="middle" font-size="12">{total}</text>'
                   f'<text x="{cx:.1f}" y="{base + 18}" text-anchor="middle">{esc(label)}</text>')
    svg.append(f'<line x1="{deadline_x:.1f}" y1="14" x2="{deadline_x:.1f}" y2="{base}" stroke="#d62728" '
               f'stroke-dasharray="6 4" stroke-width="2"/><text x="{deadline_x + 4:.1f}" y="26" fill="#d62728">'
               "24 h deadline</text></svg>")
    key = legend([(s, STATUS_COLORS[s]) for s in statuses])
    return ('<div class="chart">' + "".join(svg) + key + '<p class="note">Age at this run. Open: data still '
            "present, within the deadline. Overdue: data still present after the deadline.</p></div>")


def _datasets_table(datasets: Sequence[dict[str, Any]], totals: dict[str, Any]) -> str:
    rows = ["<table><tr><th>dataset</th><th class=n>rows in</th><th class=n>rows out</th><th class=n>removed</th>"
            "<th class=n>by email</th><th class=n>by user id</th><th class=n>by linked device</th>"
            "<th>in = out + removed</th></tr>"]
    for d in datasets:
        r = d["removed_by_reason"]
        ok = '<span class="good">yes</span>' if d["conserved"] else '<span class="bad">NO</span>'
        rows.append(f"<tr><td>{esc(d['name'])}</td><td class=n>{num(d['rows_in'])}</td><td class=n>{num(d['rows_out'])}"
                    f"</td><td class=n>{num(d['rows_removed'])}</td><td class=n>{num(r['email'])}</td>"
                    f"<td class=n>{num(r['user_id'])}</td><td class=n>{num(r['linked_device'])}</td><td>{ok}</td></tr>")
    rows.append(f"<tr><th>total</th><th class=n>{num(totals['rows_in'])}</th><th class=n>{num(totals['rows_out'])}"
                f"</th><th class=n>{num(totals['rows_removed'])}</th><th></th><th></th><th></th><th></th></tr></table>")
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
        rows.append(f"<tr><td class=id>{esc(e['blacklist_id'])}</td><td>{esc(e.get('scope') or 'all')}</td>"
                    f"<td class=t>{esc(e['created_at'][:19].replace('T', ' '))}</td>"
                    f"<td class=t>{esc((e.get('first_verified_gone_at') or '-')[:19].replace('T', ' '))}</td>"
                    f"<td class=n>{esc('-' if e.get('hours_to_gone') is None else e['hours_to_gone'])}</td>"
                    f"<td class=n>{num(removed)}</td><td class=n>{num(e['rows_still_present'])}</td>"
                    f"<td class=\"{cls}\">{esc(status_text(e))}</td></tr>")
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
                rows.append(f"<tr><td>{esc(d['name'])}</td><td class=mono>{esc(f['path'])}</td><td>{esc(f['origin'])}</td>"
                            f"<td class=n>{num(f['rows_in'])}</td><td class=n>{num(f['rows_out'])}</td>"
                            f"<td class=mono>{esc(f['sha256_out'])}</td></tr>")
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
        out.append("<ul>" + "".join(f"<li><span class=mono>{esc(p)}</span>"
                                    + (f": {esc(verdicts[p])}" if p in verdicts else "") + "</li>"
                                    for p in held[:200]) + "</ul>")
    return "".join(out)


def _integrity(report: dict[str, Any]) -> str:
    integrity = report.get("integrity") or {}
    prev = integrity.get("previous_run_id")
    return (f"<p>Previous report: {('<code>' + esc(prev) + '</code>') if prev else 'none (first of the chain)'}"
            + (f", SHA-256 <code>{esc(integrity['previous_report_sha256'])}</code>"
               if integrity.get("previous_report_sha256") else "")
            + ".</p><p class=\"note\">This page's SHA-256 and the report's own SHA-256 are recorded in report.json "
            "(<code>integrity</code>). Check every report of the chain with <code>gdpr-sweep report verify</code>; "
            "look a person up with <code>gdpr-sweep report lookup --email …</code> (keyed hashes, operator's secret)."
            "</p>")
