"""The erasure certificate as one self-contained HTML page (inline CSS, no external assets, prints on A4).

Rendered from the certificate's content alone (`pipelines.reporting.certificate.build_certificate`): BlacklistId,
keyed hashes, dataset names, counts, times, reasons of holds and chain hashes. Every text is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

_CSS = """
body { font: 14px/1.45 "DejaVu Sans", Arial, sans-serif; color: #1a1a1a; margin: 24px auto; max-width: 1000px;
       padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 24px 0 8px; border-bottom: 2px solid #333; }
.meta, .note { color: #555; font-size: 12.5px; }
.verdict { padding: 10px 14px; border: 3px solid; font-weight: bold; margin: 12px 0; }
.ok { border-color: #1b7a1b; color: #1b7a1b; } .open { border-color: #a05a00; color: #a05a00; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; font-size: 12.5px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } td.n { text-align: right; } .mono { font-family: "DejaVu Sans Mono", monospace;
font-size: 11.5px; word-break: break-all; }
@page { size: A4; margin: 14mm; }
@media print { body { margin: 0; max-width: none; font-size: 11px; } tr { break-inside: avoid; } }
"""


def _e(value: Any) -> str:
    return escape("-" if value is None else str(value), quote=True)


def _verdict(cert: dict[str, Any]) -> str:
    c = cert["completion"]
    status = c.get("status")
    if status in ("gone", "gone late"):
        met = "within" if c.get("deadline_met") else "NOT within"
        return (f'<div class="verdict ok">Erasure complete: verified gone at {_e(c["first_verified_gone_at"])}, '
                f"{_e(c['hours_to_gone'])} hours after the deadline started ({_e(c.get('deadline_from'))}), "
                f"{met} the deadline of {_e(c['deadline_hours'])} hours.</div>")
    if status == "held":
        return ('<div class="verdict open">Erasure complete except rows kept under a retention hold '
                "(GDPR Art. 17(3)); see the datasets below. They are erased by the first sweep after the hold "
                "ends.</div>")
    return f'<div class="verdict open">Erasure not complete at the last sweep: status {_e(status)}.</div>'


def _rows(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _residual_html(scan: dict[str, Any] | None) -> str:
    if scan is None:
        return '<p class="note">No residual scan in the report chain: only the configured columns were checked.</p>'
    when = f"Last scan {_e(scan['scanned_at'])} (run <span class=mono>{_e(scan['run_id'])}</span>)"
    if not scan["found"]:
        return f'<p class="note">{when}: this entry was found nowhere else.</p>'
    rows = [[_e(f["target"]), _e(f["kind"]), f"<span class=mono>{_e(f['column'])}</span>", _e(f["rows"])]
            for f in scan["findings"]]
    return (f'<p class="note">{when}: rows of this entry found outside the configured columns (nothing was '
            "deleted for them; configure the column to have it swept).</p>"
            + _rows(["dataset or folder", "kind", "column", "rows"], rows))


def render_html(cert: dict[str, Any]) -> str:
    req = cert["request"]
    datasets = [[_e(d["name"]), _e(d["outcome"]),
                 "<br>".join(f"{_e(run)}: {n}" for run, n in d["rows_removed_by_run"].items()) or "-",
                 "<br>".join(f"{_e(r['how'])}, by {_e(r['at'])} (run {_e(r['run_id'])})" for r in d["removal"])
                 or "-"] for d in cert["datasets"]]
    runs = [[f"<span class=mono>{_e(r['run_id'])}</span>", _e(r["kind"]), _e(r["finished_at"]),
             ", ".join(f"{_e(k)}: {v}" for k, v in r["rows_removed"].items()) or "-",
             f"<span class=mono>{_e(r['report_sha256'])}</span>"] for r in cert["runs"]]
    holds = [[_e(h["at"]), _e(h["action"]), f"<span class=mono>{_e(h['hold_id'])}</span>",
              _e(h["dataset"] or "every dataset"), _e(h["reason"]), _e(h["until"] or "until released")]
             for h in cert["holds"]]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Erasure certificate {_e(cert['blacklist_id'])}</title><style>{_CSS}</style></head><body>",
        "<h1>Erasure certificate</h1>",
        f'<p class="meta">Blacklist entry <span class=mono>{_e(cert["blacklist_id"])}</span> · generated '
        f"{_e(cert['generated_at'])} · report chain head <span class=mono>{_e(cert['chain']['head'])}</span></p>",
        _verdict(cert),
        "<h2>The request</h2>",
        _rows(["BlacklistId", "scope", "received at (UTC)", "channel", "email (keyed hash)", "user id (keyed hash)"],
              [[f"<span class=mono>{_e(cert['blacklist_id'])}</span>", _e(req.get("scope") or "every scope"),
                _e(req.get("received_at")), _e(req.get("channel")), f"<span class=mono>{_e(req.get('email_hmac'))}</span>",
                f"<span class=mono>{_e(req.get('user_id_hmac'))}</span>"]]),
        "<h2>Every configured dataset</h2>",
        _rows(["dataset", "outcome", "rows removed per run", "how the bytes were removed"], datasets),
        "<h2>Retention holds</h2>",
        _rows(["at", "action", "hold", "dataset", "reason", "until"], holds) if holds
        else '<p class="note">No retention hold covered this entry.</p>',
        "<h2>Residual scan (copies outside the configured columns)</h2>",
        _residual_html(cert.get("residual_scan")),
        "<h2>Runs and their chain hashes</h2>",
        _rows(["run", "kind", "finished (UTC)", "rows removed", "report SHA-256"], runs),
        "<h2>How to verify</h2>",
        '<p class="note">The JSON beside this page holds the same content and the SHA-256 of this page. '
        "<code>gdpr-sweep report verify-certificate certificate-&lt;id&gt;.json</code> checks both, the whole "
        "report chain, and rebuilds the content from the reports it cites; no network or database needed. "
        "No email or user id appears here: keyed hashes (HMAC-SHA256, the operator's report secret) stand for them.</p>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
