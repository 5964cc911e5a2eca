"""Retention holds in the report hash chain: each placement and release is a sealed record.

A record is an operation report of the chain, `_operations/<time>-hold-<action>-<id8>/hold.json`
(`kind: hold`) with a `hold.md` page beside it, linked to the chain's head and sealed
(`pipelines.reporting.chain.write_linked`), so `gdpr-sweep report verify` covers it and an auditor sees when a
hold was placed or released, by which channel, and why. It names the BlacklistId and the dataset, never a
person's email or user id.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from pipelines.core.holds import Hold
from pipelines.reporting import chain

RECORD_VERSION = 1
RECORD_NAME = "hold.json"
PAGE_NAME = "hold.md"


def record_id(hold: Hold, action: str, at: str) -> str:
    moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
    return f"{moment.strftime('%Y%m%dT%H%M%S%fZ')}-hold-{action}-{hold.hold_id[:8]}"


def build_record(hold: Hold, action: str, at: str) -> dict[str, Any]:
    return {
        "report_version": 2, "kind": "hold", "record_version": RECORD_VERSION,
        "run": {"run_id": record_id(hold, action, at), "started_at": at, "finished_at": at},
        "hold": {"action": action, "at": at, "hold_id": hold.hold_id, "blacklist_id": hold.blacklist_id,
                 "dataset": hold.dataset, "reason": hold.reason, "until": hold.until, "placed_at": hold.placed_at,
                 "channel": hold.release_channel if action == "release" else hold.channel},
    }


def render_markdown(doc: dict[str, Any]) -> str:
    h = doc["hold"]
    what = (f"entry `{h['blacklist_id']}`" if h["blacklist_id"] else "every entry") + \
        (f" in dataset `{h['dataset']}`" if h["dataset"] else " in every dataset")
    verb = "placed" if h["action"] == "place" else "released"
    lines = [f"# Retention hold {verb}: {h['hold_id']}", "",
             f"- {verb.capitalize()} at {h['at']} (channel: {h['channel']})",
             f"- Covers {what}",
             f"- Reason: {h['reason']}",
             f"- Until: {h['until'] or 'released'}"]
    if h["action"] == "release":
        lines.append("- The next sweep erases the rows this hold kept.")
    integrity = doc.get("integrity") or {}
    lines += ["", f"Previous record of the chain: {integrity.get('previous_run_id') or 'none'}"]
    return "\n".join(lines) + "\n"


def record(report_dir: Path, hold: Hold, action: str, at: str) -> Path:
    """Append the placement or release of `hold` to the report chain; return its JSON's path."""
    if action not in ("place", "release"):
        raise ValueError(f"unknown hold action {action!r}")
    doc = build_record(hold, action, at)
    relpath = f"{chain.OPERATIONS_DIR}/{doc['run']['run_id']}/{RECORD_NAME}"
    path, _ = chain.write_linked(report_dir, doc, lambda linked: {PAGE_NAME: render_markdown(linked)}, relpath)
    return path
