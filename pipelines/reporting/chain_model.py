"""The report chain's model: names in the report folder, canonical bytes and hashes, a chain link.

A leaf of `pipelines.reporting.chain` (which re-exports these names): see its docstring for the design."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

INDEX_NAME = "chain.jsonl"
REPORT_NAME = "report.json"
PAGE_NAMES = ("report.md", "report.html")
SWEEP = "sweep"
OPERATIONS_DIR = "_operations"
"""Operation reports (ClearUserData, ingest, ...) live in `report_dir/_operations/<run_id>/<name>.json`."""
LOCK_NAME = ".chain.lock"
_RUN_ID_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.-]{0,127}")
_DOC_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,63}\.json")


def canonical_bytes(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def pretty_bytes(doc: Mapping[str, Any]) -> bytes:
    """The exact bytes of a report file (what `storage.write_json_atomic` writes)."""
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def self_hash(report: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of `report` without `integrity.report_sha256`."""
    integrity = {k: v for k, v in report.get("integrity", {}).items() if k != "report_sha256"}
    return sha256_bytes(canonical_bytes({**report, "integrity": integrity}))


def link(report: dict[str, Any], previous: ChainLink | None) -> dict[str, Any]:
    """Return `report` with the start of its `integrity` block: the previous report's id and hash."""
    return {**report, "integrity": {
        "algorithm": "sha256",
        "canonical_form": "JSON, keys sorted, separators ',' ':', UTF-8, without integrity.report_sha256",
        "previous_run_id": previous.run_id if previous else None,
        "previous_report_sha256": previous.report_sha256 if previous else None,
    }}


def seal(report: dict[str, Any], pages: Mapping[str, str]) -> dict[str, Any]:
    """Return the linked `report` with the SHA-256 of its pages and of itself."""
    integrity = {**report["integrity"],
                 "pages": {name: sha256_bytes(text.encode("utf-8")) for name, text in sorted(pages.items())}}
    sealed = {**report, "integrity": integrity}
    integrity["report_sha256"] = self_hash(sealed)
    return sealed


def integrity_markdown(report: Mapping[str, Any]) -> list[str]:
    """The Markdown lines an operation's page ends with: its place in the chain."""
    integrity = report.get("integrity") or {}
    previous = integrity.get("previous_run_id")
    return ["## Integrity", "",
            f"- Previous report in the chain: {previous or 'none (first of the chain)'}"
            + (f", SHA-256 `{integrity['previous_report_sha256']}`" if integrity.get("previous_report_sha256") else ""),
            "- This page's SHA-256 and the report's own are in the JSON beside it (`integrity`); check the whole "
            "chain with `gdpr-sweep report verify`."]


@dataclass(frozen=True)
class ChainLink:
    """One line of `chain.jsonl`."""

    run_id: str
    report_sha256: str
    previous_report_sha256: str | None
    kind: str = SWEEP
    """`sweep`, or the operation's report `kind` (`clear_user_data`, `ingest`, ...)."""
    path: str | None = None
    """The report's JSON relative to the report folder; None for a sweep (`<run_id>/report.json`)."""

    @property
    def relpath(self) -> str:
        return self.path or f"{self.run_id}/{REPORT_NAME}"

    def to_json(self) -> dict[str, Any]:
        line: dict[str, Any] = {"run_id": self.run_id, "report_sha256": self.report_sha256,
                                "previous_report_sha256": self.previous_report_sha256, "kind": self.kind}
        if self.path is not None:
            line["path"] = self.path
        return line


def valid_relpath(relpath: str) -> bool:
    """A report path the chain may name: `<run_id>/report.json` or `_operations/<run_id>/<name>.json`."""
    parts = relpath.split("/")
    if len(parts) == 2:
        return bool(_RUN_ID_RE.fullmatch(parts[0])) and parts[1] == REPORT_NAME
    return (len(parts) == 3 and parts[0] == OPERATIONS_DIR and bool(_RUN_ID_RE.fullmatch(parts[1]))
            and bool(_DOC_NAME_RE.fullmatch(parts[2])))
