"""What the HTML pages of the reports share (`report_html.py`, `report_index.py`): the style sheet,
status colours, escaping and number formatting, and the frame of an inline SVG bar chart."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

CSS = """
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

STATUS_COLORS = {"gone": "#2ca02c", "gone late": "#9467bd", "held": "#17becf", "open": "#ff7f0e",
                 "overdue": "#d62728"}


def esc(value: Any) -> str:
    return escape(str(value), quote=True)


def num(value: int | float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def nice_max(value: int) -> int:
    """The smallest of 2, 4, 6, 8, 10, 20, 40, ... not below `value`: ticks at 0, half and full are whole."""
    scale = 1
    while True:
        for step in (2, 4, 6, 8, 10):
            if step * scale >= value:
                return step * scale
        scale *= 10


def legend(items: Sequence[tuple[str, str]]) -> str:
    return '<div class="legend">' + "".join(f'<span><i style="background:{c}"></i>{esc(t)}</span>'
                                            for t, c in items) + "</div>"


def svg_open(width: int, height: int, label: str, font_size: int = 12) -> str:
    """The opening tag of a chart: its size, its accessible label (escaped by the caller) and its font."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{label}" '
            f'font-family="DejaVu Sans, Arial, sans-serif" font-size="{font_size}">')


def y_grid(left: int, width: int, base: float, plot_h: float, top: int) -> list[str]:
    """The horizontal grid lines of a vertical bar chart at 0, half and `top`, labelled."""
    lines = []
    for frac in (0, 0.5, 1):
        y = base - plot_h * frac
        lines.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{num(int(top * frac))}</text>')
    return lines
