"""`report_dir/index.html`: every run at a glance, regenerated after each report is written.

One self-contained page (inline CSS and SVG, no script, no external asset), readable from the folder
with no server: rows removed per run, blacklist entries by status, time-to-erasure distribution,
deadline compliance rate, residual findings, the state of the report chain, and every run with a link
to its own page. Built from the chained reports alone (`collect`), so it holds nothing they do not:
BlacklistIds, counts, times, paths. `refresh` also appends the erasure notices (`pipelines.reporting.notices`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.datasets import storage
from pipelines.reporting import chain, notices, report_catalog
from pipelines.reporting.check_cache import CheckCache
from pipelines.reporting.html_parts import CSS, STATUS_COLORS, esc, legend, nice_max, num, svg_open, y_grid

INDEX_NAME = "index.html"
KIND_COLORS = {"sweep": "#1f77b4", "clear_user_data": "#ff7f0e", "ingest": "#2ca02c"}
OTHER_COLOR = "#8c564b"
ERASURE_BUCKETS = ((0, 1, "under 1 h"), (1, 6, "1–6 h"), (6, 12, "6–12 h"), (12, 24, "12–24 h"),
                   (24, 48, "24–48 h"), (48, 24 * 7, "2–7 days"), (24 * 7, float("inf"), "over 7 days"))
MAX_RUN_BARS = 60
MAX_RUN_ROWS = 1000


@dataclass
class IndexData:
    """What the page shows; every number is derived from the reports in the chain."""

    runs: list[dict[str, Any]]
    """`report_catalog.list_row` per report, plus `page` (its HTML or Markdown page, relative)."""
    entries: dict[str, dict[str, Any]]
    """BlacklistId -> the entry as the newest sweep report that lists it has it."""
    deadline_hours: float
    residual_runs: list[dict[str, Any]]
    latest_residuals: dict[str, Any] | None
    chain_state: dict[str, Any]
    status_counts: dict[str, int] = field(default_factory=dict)

    @property
    def decided(self) -> tuple[int, int]:
        """(entries erased within the deadline, entries that missed it: late or overdue)."""
        met = sum(1 for e in self.entries.values() if e.get("deadline_met") is True)
        missed = sum(1 for e in self.entries.values() if e.get("deadline_met") is False)
        return met, missed

    @property
    def compliance_rate(self) -> float | None:
        met, missed = self.decided
        return met / (met + missed) if met + missed else None


def _page(report_dir: Path, relpath: str) -> str | None:
    folder = (report_dir / relpath).parent
    stem = Path(relpath).stem
    for name in ("report.html", f"{stem}.html", f"{stem}.md"):
        if (folder / name).is_file():
            return str(Path(relpath).parent / name)
    return None


def collect(report_dir: Path, cache: CheckCache | None = None,
            read: Mapping[str, dict[str, Any] | None] | None = None) -> IndexData:
    """Read every report once and gather what the index shows; the chain's state says whether they
    are the chained, unchanged ones. `cache`: the reports' check cache (`check_cache`, loaded from
    `report_dir` when None), updated and saved. `read`: documents just read by the caller (relative
    path -> document, as `chain.load_document` returned them), not read again."""
    runs, entries, residual_runs = [], {}, []
    latest_residuals, deadline_hours = None, 24.0
    latest_sweep: dict[str, Any] | None = None
    loaded: dict[str, dict[str, Any] | None] = {}
    read = read or {}
    for relpath in chain.documents(report_dir):  # what is on disk: a damaged chain index still shows every run
        doc = loaded[relpath] = read[relpath] if relpath in read else chain.load_document(report_dir, relpath)
        row = report_catalog.list_row(report_dir, relpath, doc)
        runs.append({**row, "page": _page(report_dir, relpath)})
        if doc is None:
            continue
        if (doc.get("kind") or chain.SWEEP) == chain.SWEEP:
            latest_sweep = doc
            deadline_hours = float(doc.get("deadline_hours") or deadline_hours)
            for e in doc.get("entries") or []:
                entries[e["blacklist_id"]] = e
        block = doc.get("residuals") or {}
        if block.get("scanned"):
            latest_residuals = block
            residual_runs.append({"run_id": row["run_id"], "kind": row["kind"], "scanned_at": block.get("scanned_at"),
                                  "status": block.get("status"), "findings": len(block.get("findings") or []),
                                  "entries_found": block.get("entries_found", 0), "page": runs[-1]["page"]})
    current = {e["blacklist_id"] for e in (latest_sweep or {}).get("entries") or []}
    counts: dict[str, int] = {}
    for bid in sorted(current):
        status = entries[bid].get("status") or "unknown"
        counts[status] = counts.get(status, 0) + 1
    cache = cache if cache is not None else CheckCache.load(report_dir)
    verification = chain.verify_chain(report_dir, loaded=loaded, cache=cache)  # the documents read above
    cache.keep_only(set(loaded))
    cache.save()
    chain_state = {"ok": verification.ok, "reports_checked": verification.reports_checked,
                   "head": verification.head.to_json() if verification.head else None,
                   "problems": [p.to_json() for p in verification.problems]}
    return IndexData(runs, entries, deadline_hours, residual_runs, latest_residuals, chain_state, counts)


def refresh(report_dir: Path) -> Path:
    """After a report is written: append its erasure notices, then regenerate `index.html`."""
    read: dict[str, dict[str, Any] | None] = {}
    notices.append_missing(report_dir, loaded=read)
    return write_index(report_dir, read)


def write_index(report_dir: Path, read: Mapping[str, dict[str, Any] | None] | None = None) -> Path:
    """Regenerate `index.html`; `read`: documents the caller has just read (see `collect`)."""
    path = report_dir / INDEX_NAME
    storage.write_text_atomic(path, render_index(collect(report_dir, read=read)))
    return path


# -- the page --------------------------------------------------------------------------------------


def render_index(data: IndexData) -> str:
    rate = data.compliance_rate
    met, missed = data.decided
    head = data.chain_state.get("head") or {}
    last = data.runs[-1] if data.runs else None
    cards = [("runs", num(len(data.runs))),
             ("rows removed, all runs", num(sum(r["rows_removed"] or 0 for r in data.runs if r["kind"] != "ingest"))),
             ("deadline compliance", "–" if rate is None else f"{rate:.1%}"),
             ("entries now", num(sum(data.status_counts.values()))),
             ("residual findings (last scan)", num(len((data.latest_residuals or {}).get("findings") or []))),
             ("report chain", "intact" if data.chain_state["ok"] else "BROKEN")]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>gdpr-sweep reports: index</title>", f"<style>{CSS}</style></head><body>",
        "<h1>gdpr-sweep reports</h1>",
        f'<p class="meta">{num(len(data.runs))} reports · newest {esc(last["run_id"]) if last else "none"} '
        f"({esc(last['finished_at']) if last else '–'}) · regenerated after every run</p>",
        _chain_banner(data.chain_state),
        '<div class="cards">' + "".join(f'<div class="card"><b>{v}</b><span>{esc(k)}</span></div>'
                                        for k, v in cards) + "</div>",
        "<h2>Rows removed per run</h2>", _runs_chart(data.runs),
        "<h2>Blacklist entries by status</h2>", _status_chart(data.status_counts),
        "<h2>Time to erasure</h2>", _erasure_chart(data.entries, data.deadline_hours),
        f'<p class="note">Deadline compliance: <b>{"–" if rate is None else f"{rate:.1%}"}</b> ({met} '
        f"{'entry' if met == 1 else 'entries'} erased within {data.deadline_hours:g} h, {missed} late or overdue; "
        "entries still open within the deadline are not counted). Each entry as the newest report that lists "
        "it has it.</p>",
        "<h2>Residual findings</h2>", _residuals(data.residual_runs, data.latest_residuals),
        "<h2>Report chain</h2>", _chain(data.chain_state, head),
        "<h2>Runs</h2>", _runs_table(data.runs),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def _chain_banner(state: dict[str, Any]) -> str:
    if state["ok"]:
        return (f'<div class="banner ok">REPORT CHAIN INTACT: {state["reports_checked"]} reports checked when this '
                "page was written.</div>")
    return (f'<div class="banner bad">REPORT CHAIN BROKEN: {len(state["problems"])} '
            f"{'problem' if len(state['problems']) == 1 else 'problems'}; see Report chain below.</div>")


def _color(kind: str | None) -> str:
    return KIND_COLORS.get(kind or "", OTHER_COLOR)


def _runs_chart(runs: Sequence[dict[str, Any]]) -> str:
    """Vertical bars: rows removed (dropped, for ingests) per run, coloured by kind; the newest runs."""
    shown = [r for r in runs if r["rows_removed"] is not None][-MAX_RUN_BARS:]
    if not shown:
        return '<p class="note">No runs yet.</p>'
    width, height, left, bottom = 1000, 260, 60, 110
    plot_w, plot_h = width - left - 10, height - bottom - 20
    top = nice_max(max([r["rows_removed"] for r in shown] + [1]))
    slot = plot_w / len(shown)
    bar = max(min(slot * 0.7, 50), 2)
    base = 20 + plot_h
    svg = [svg_open(width, height, "Rows removed per run")]
    svg += y_grid(left, width, base, plot_h, top)
    for i, r in enumerate(shown):
        cx = left + slot * (i + 0.5)
        n = r["rows_removed"]
        h = plot_h * n / top
        svg.append(f'<rect x="{cx - bar / 2:.1f}" y="{base - max(h, 1):.1f}" width="{bar:.1f}" '
                   f'height="{max(h, 1):.1f}" fill="{_color(r["kind"])}"><title>{esc(r["run_id"])} '
                   f'({esc(r["kind"])}): {n}</title></rect>')
        if len(shown) <= 31:
            svg.append(f'<text x="{cx:.1f}" y="{base - h - 4:.1f}" text-anchor="middle" font-size="11">{n}</text>')
        svg.append(f'<text transform="translate({cx + 4:.1f},{base + 8}) rotate(60)" font-size="10">'
                   f"{esc((r['finished_at'] or r['run_id'])[:16])}</text>")
    svg.append("</svg>")
    kinds = sorted({r["kind"] or "" for r in shown})
    note = (f'<p class="note">The newest {MAX_RUN_BARS} of {len(runs)} runs; every run is in the table below.</p>'
            if len(runs) > MAX_RUN_BARS else "")
    return ('<div class="chart">' + "".join(svg) + legend([(k or "unknown", _color(k)) for k in kinds])
            + '<p class="note">Ingest runs count the rows they dropped before storing them.</p></div>' + note)


def _hbars(items: Sequence[tuple[str, int, str]], label: str) -> str:
    """Horizontal bars, one per (label, count, colour)."""
    label_w, bar_w, row_h, width = 170, 720, 30, 1000
    top = max([n for _, n, _ in items] + [1])
    height = row_h * len(items) + 12
    svg = [svg_open(width, height, esc(label), 13)]
    for i, (name, n, color) in enumerate(items):
        y = 6 + i * row_h
        w = bar_w * n / top
        svg.append(f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{esc(name)}</text>')
        if n:
            svg.append(f'<rect x="{label_w}" y="{y}" width="{max(w, 1):.1f}" height="22" fill="{color}">'
                       f"<title>{esc(name)}: {n}</title></rect>")
        svg.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 16}">{num(n)}</text>')
    svg.append(f'<line x1="{label_w}" y1="2" x2="{label_w}" y2="{height - 4}" stroke="#333"/></svg>')
    return '<div class="chart">' + "".join(svg) + "</div>"


def _status_chart(counts: dict[str, int]) -> str:
    if not counts:
        return '<p class="note">No blacklist entries in the newest sweep report.</p>'
    order = [s for s in STATUS_COLORS if s in counts] + sorted(s for s in counts if s not in STATUS_COLORS)
    chart = _hbars([(s, counts[s], STATUS_COLORS.get(s, OTHER_COLOR)) for s in order], "Entries by status")
    return chart + ('<p class="note">The entries of the newest sweep report. Gone: no row left anywhere the sweep '
                    "looks; open: rows left, within the deadline; overdue: rows left after it; held: rows kept "
                    "under a retention hold (GDPR Art. 17(3)), erased by the first sweep after it ends.</p>")


def _erasure_chart(entries: dict[str, dict[str, Any]], deadline_hours: float) -> str:
    hours = [float(e["hours_to_gone"]) for e in entries.values() if e.get("hours_to_gone") is not None]
    if not hours:
        return '<p class="note">No entry has been erased yet.</p>'
    items = []
    for lo, hi, label in ERASURE_BUCKETS:
        n = sum(1 for h in hours if lo <= h < hi)
        items.append((label, n, STATUS_COLORS["gone"] if hi <= deadline_hours else STATUS_COLORS["gone late"]))
    ordered = sorted(hours)
    median = ordered[len(ordered) // 2] if len(ordered) % 2 else (ordered[len(ordered) // 2 - 1]
                                                                  + ordered[len(ordered) // 2]) / 2
    return (_hbars(items, "Hours from blacklisting to erasure") + legend(
        [(f"within {deadline_hours:g} h", STATUS_COLORS["gone"]), ("after it", STATUS_COLORS["gone late"])])
        + f'<p class="note">{num(len(hours))} erased entries: median {median:.1f} h, longest {ordered[-1]:.1f} h '
          "(from the entry's creation to the first report that found none of its rows).</p>")


def _residuals(runs: Sequence[dict[str, Any]], latest: dict[str, Any] | None) -> str:
    if not runs:
        return '<p class="note">No residual scan has run yet (<code>gdpr-sweep scan</code>, or <code>[scan] '\
               "schedule</code> in the nightly sweep).</p>"
    out = ["<table><tr><th>run</th><th>kind</th><th>scanned at</th><th>status</th><th class=n>findings</th>"
           "<th class=n>entries found</th></tr>"]
    for r in reversed(runs[-50:]):
        cls = "bad" if r["findings"] else "good"
        out.append(f"<tr><td class=id>{_link(r['run_id'], r['page'])}</td><td>{esc(r['kind'])}</td>"
                   f"<td class=t>{esc(r['scanned_at'])}</td><td class={cls}>{esc(r['status'])}</td>"
                   f"<td class=n>{num(r['findings'])}</td><td class=n>{num(r['entries_found'])}</td></tr>")
    out.append("</table>")
    findings = (latest or {}).get("findings") or []
    if findings:
        columns: dict[tuple[str, str], set[str]] = {}
        rows: dict[tuple[str, str], int] = {}
        for f in findings:
            key = (f["target"], f["column"])
            columns.setdefault(key, set()).add(f["blacklist_id"])
            rows[key] = rows.get(key, 0) + int(f["rows"])
        out.append("<h3>Columns with findings in the newest scan</h3><table><tr><th>dataset or folder</th>"
                   "<th>column</th><th class=n>entries</th><th class=n>rows</th></tr>")
        out += [f"<tr><td>{esc(t)}</td><td class=mono>{esc(c)}</td><td class=n>{num(len(columns[(t, c)]))}</td>"
                f"<td class=n>{num(rows[(t, c)])}</td></tr>" for t, c in sorted(columns)]
        out.append("</table>")
    return "".join(out)


def _chain(state: dict[str, Any], head: dict[str, Any]) -> str:
    out = [f"<p>{state['reports_checked']} reports checked: "
           + ('<span class="good">chain intact</span>' if state["ok"] else '<span class="bad">chain broken</span>')
           + (f"; head <code>{esc(head.get('run_id'))}</code> SHA-256 <code>{esc(head.get('report_sha256'))}</code>"
              if head else "") + ".</p>"]
    if state["problems"]:
        out.append("<table><tr><th>run</th><th>problem</th><th>detail</th></tr>")
        out += [f"<tr><td class=id>{esc(p['run_id'])}</td><td class=bad>{esc(p['problem'])}</td>"
                f"<td>{esc(p['detail'])}</td></tr>" for p in state["problems"]]
        out.append("</table>")
    out.append('<p class="note">Checked when this page was written. Check again at any time with '
               "<code>gdpr-sweep report verify</code>.</p>")
    return "".join(out)


def _link(text: str, page: str | None) -> str:
    return f'<a href="{esc(page)}">{esc(text)}</a>' if page else esc(text)


def _runs_table(runs: Sequence[dict[str, Any]]) -> str:
    if not runs:
        return '<p class="note">No reports yet.</p>'
    out = ["<table><tr><th>run</th><th>kind</th><th>finished (UTC)</th><th class=n>rows removed</th>"
           "<th>status</th></tr>"]
    for r in list(reversed(runs))[:MAX_RUN_ROWS]:
        cls = "good" if r["status"] == "passed" or r["kind"] == "hold" else "bad"  # a hold record is no failure
        out.append(f"<tr><td class=id>{_link(r['run_id'], r['page'])}</td><td>{esc(r['kind'] or '–')}</td>"
                   f"<td class=t>{esc(r['finished_at'] or '–')}</td>"
                   f"<td class=n>{'–' if r['rows_removed'] is None else num(r['rows_removed'])}</td>"
                   f"<td class={cls}>{esc(r['status'])}</td></tr>")
    out.append("</table>")
    if len(runs) > MAX_RUN_ROWS:
        out.append(f'<p class="note">The newest {MAX_RUN_ROWS} of {len(runs)} runs; '
                   "<code>gdpr-sweep report list</code> lists all.</p>")
    return "".join(out)
