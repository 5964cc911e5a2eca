"""Tamper evidence for audit reports: a hash chain over every run's report (issue 5).

Each `report.json` carries an `integrity` block:

- `report_sha256`: SHA-256 of the report's canonical JSON (keys sorted, no whitespace, UTF-8) with
  this one field left out. The file on disk must also be exactly the report's pretty form (indent 2,
  keys sorted): any changed byte, even whitespace, breaks one of the two checks.
- `previous_run_id` / `previous_report_sha256`: the report written before it (None for the first).
- `pages`: SHA-256 of the run's `report.md` and `report.html`, so the human pages are covered too.

`chain.jsonl` in the report folder lists the reports in order (one JSON line per run). It lets
`verify_chain` notice a deleted latest report; a deleted earlier report is named by its successor's
`previous_run_id`. Someone who can rewrite every file can rebuild a chain: compare the head hash
with one recorded elsewhere (the Prefect artifact of the run, or `report verify --expect-head`).

Reading and writing here is limited to the report folder; all writes go through `storage`'s atomic
helpers.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines import storage

INDEX_NAME = "chain.jsonl"
LOCK_NAME = ".chain.lock"
REPORT_NAME = "report.json"
PAGE_NAMES = ("report.md", "report.html")
_RUN_ID_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.-]{0,127}")


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


@dataclass(frozen=True)
class ChainLink:
    """One line of `chain.jsonl`."""

    run_id: str
    report_sha256: str
    previous_report_sha256: str | None

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "report_sha256": self.report_sha256,
                "previous_report_sha256": self.previous_report_sha256}


# -- reading the report folder -----------------------------------------------------------------


def report_folders(report_dir: Path) -> list[str]:
    """Run ids that have a folder in `report_dir`, oldest first (run ids sort by time)."""
    if not report_dir.is_dir():
        return []
    return sorted(p.name for p in report_dir.iterdir() if p.is_dir() and _RUN_ID_RE.fullmatch(p.name))


def read_index(report_dir: Path) -> list[ChainLink]:
    """The chain index, oldest first; an unreadable line raises ValueError naming it."""
    path = report_dir / INDEX_NAME
    if not path.exists():
        return []
    links = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            links.append(ChainLink(str(raw["run_id"]), str(raw["report_sha256"]), raw["previous_report_sha256"]))
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{path}: line {n} is not a chain entry") from None
    return links


def load_report(report_dir: Path, run_id: str) -> dict[str, Any] | None:
    """A run's report.json as a dict, or None when missing or not JSON."""
    path = report_dir / run_id / REPORT_NAME
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def iter_reports(report_dir: Path) -> Iterator[dict[str, Any]]:
    """Every readable report, oldest first."""
    for run_id in report_folders(report_dir):
        doc = load_report(report_dir, run_id)
        if doc is not None:
            yield doc


def kind(doc: Mapping[str, Any]) -> str:
    """What a chained record is: `sweep` (a run's report; records before kinds existed are sweeps),
    or another operation's record (`hold`: a retention hold placed or released, pipelines/hold_records.py)."""
    return str(doc.get("kind") or "sweep")


def latest_of_kind(report_dir: Path, wanted: str = "sweep") -> dict[str, Any] | None:
    """The newest record of the chain of one kind (the previous sweep report, to carry its entries'
    state forward past other records), or None."""
    for entry in reversed(read_index(report_dir)):
        doc = load_report(report_dir, entry.run_id)
        if doc is not None and kind(doc) == wanted:
            return doc
    return None


@contextmanager
def locked(report_dir: Path) -> Iterator[None]:
    """Serialise writers of the chain (a sweep's report, a hold placed from the API meanwhile): each
    reads the head and appends under this lock, so two records never claim the same predecessor."""
    report_dir.mkdir(parents=True, exist_ok=True)
    with open(report_dir / LOCK_NAME, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def head(report_dir: Path) -> ChainLink | None:
    """The newest report of the chain, to link the next report to.

    A report whose run crashed between writing report.json and appending to the index is adopted
    here (appended to the index) when it is intact and links to the current head.
    """
    links = read_index(report_dir)
    last = links[-1] if links else None
    known = {link.run_id for link in links}
    for run_id in report_folders(report_dir):
        if run_id in known or (last is not None and run_id <= last.run_id):
            continue
        doc = load_report(report_dir, run_id)
        if doc is None or _problem(report_dir, run_id, doc) is not None:
            continue
        integrity = doc["integrity"]
        if integrity.get("previous_report_sha256") == (last.report_sha256 if last else None):
            last = ChainLink(run_id, integrity["report_sha256"], integrity.get("previous_report_sha256"))
            append_index(report_dir, last)
    return last


def append_index(report_dir: Path, link: ChainLink) -> None:
    """Add one line to `chain.jsonl` (the whole file is rewritten atomically)."""
    path = report_dir / INDEX_NAME
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    if existing and not existing.endswith("\n"):
        existing += "\n"
    storage.write_text_atomic(path, existing + json.dumps(link.to_json(), sort_keys=True) + "\n")


def write_sealed(report_dir: Path, report: dict[str, Any], pages: Mapping[str, str]) -> Path:
    """Write the pages, then report.json, then the index line; return report.json's path."""
    run_id = report["run"]["run_id"]
    folder = report_dir / run_id
    for name, text in pages.items():
        storage.write_text_atomic(folder / name, text)
    path = folder / REPORT_NAME
    storage.write_json_atomic(path, report)
    integrity = report["integrity"]
    append_index(report_dir, ChainLink(run_id, integrity["report_sha256"], integrity["previous_report_sha256"]))
    return path


# -- verification --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    run_id: str
    problem: str
    """`changed`, `removed`, `not_in_chain` or `index_damaged`."""
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"run_id": self.run_id, "problem": self.problem, "detail": self.detail}


@dataclass(frozen=True)
class ChainVerification:
    reports_checked: int
    head: ChainLink | None
    problems: tuple[Problem, ...]
    unchained: tuple[str, ...] = field(default_factory=tuple)
    """Reports written before tamper evidence existed (report_version 1): listed, not checked."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "reports_checked": self.reports_checked,
                "head": self.head.to_json() if self.head else None,
                "problems": [p.to_json() for p in self.problems], "unchained": list(self.unchained)}


def _problem(report_dir: Path, run_id: str, doc: dict[str, Any] | None) -> Problem | None:
    """What is wrong with one run's report files, or None when they are intact."""
    path = report_dir / run_id / REPORT_NAME
    if not path.exists():
        return Problem(run_id, "removed", f"{path} is missing")
    if doc is None:
        return Problem(run_id, "changed", f"{path} is not valid JSON")
    integrity = doc.get("integrity")
    if not isinstance(integrity, dict) or "report_sha256" not in integrity:
        return Problem(run_id, "changed", f"{path} has no integrity block")
    if doc.get("run", {}).get("run_id") != run_id:
        return Problem(run_id, "changed", f"{path} names run {str(doc.get('run', {}).get('run_id'))[:64]!r}")
    if integrity["report_sha256"] != self_hash(doc):
        return Problem(run_id, "changed", f"{path}: content does not match its report_sha256")
    if path.read_bytes() != pretty_bytes(doc):
        return Problem(run_id, "changed", f"{path}: bytes differ from the sealed form (formatting edited)")
    for name, digest in sorted(integrity.get("pages", {}).items()):
        page = report_dir / run_id / name
        if not page.exists():
            return Problem(run_id, "removed", f"{page} is missing")
        if storage.sha256_file(page) != digest:
            return Problem(run_id, "changed", f"{page} does not match the SHA-256 in report.json")
    return None


def verify_chain(report_dir: Path, expect_head: str | None = None) -> ChainVerification:
    """Check every report in `report_dir` and the links between them; name each changed or removed one."""
    problems: list[Problem] = []
    try:
        links = read_index(report_dir)
    except ValueError as exc:
        problems.append(Problem("-", "index_damaged", str(exc)))
        links = []
    folders = report_folders(report_dir)
    docs = {run_id: load_report(report_dir, run_id) for run_id in folders}
    unchained = tuple(r for r, d in docs.items() if d is not None and d.get("report_version", 0) < 2
                      and "integrity" not in d)
    indexed = {link.run_id for link in links}
    if not links and any(r not in unchained for r in folders):
        problems.append(Problem("-", "index_damaged", f"{report_dir / INDEX_NAME} is missing or empty"))

    # 1. each report listed in the index: present, intact, hash as recorded, linked to its predecessor
    accepted: set[str | None] = {None}  # the hash of the report before, as recorded in the index and as found
    for link in links:
        doc = docs.get(link.run_id)
        problem = _problem(report_dir, link.run_id, doc)
        if problem is None and doc is not None:
            integrity = doc["integrity"]
            if integrity["report_sha256"] != link.report_sha256:
                problem = Problem(link.run_id, "changed", "report_sha256 differs from the one recorded in the index")
            elif integrity.get("previous_report_sha256") not in accepted:
                named = integrity.get("previous_run_id")
                if named and named not in indexed:
                    problem = Problem(str(named), "removed",
                                      f"report {link.run_id} links to it, but it is not in the chain")
                else:
                    problem = Problem(link.run_id, "changed", "does not link to the report before it in the chain")
        if problem is not None:
            problems.append(problem)
        accepted = {link.report_sha256}
        if doc is not None and _problem(report_dir, link.run_id, doc) is None:
            accepted.add(doc["integrity"]["report_sha256"])

    # 2. reports not in the index, and reports named by a successor that are gone entirely
    for run_id in docs:
        if run_id in indexed or run_id in unchained:
            continue
        problems.append(Problem(run_id, "not_in_chain", f"{report_dir / run_id} is not listed in {INDEX_NAME}"))
    flagged = {p.run_id for p in problems}
    for run_id, doc in docs.items():
        if doc is None or run_id in flagged or run_id in unchained or _problem(report_dir, run_id, doc) is not None:
            continue  # only an intact report's claims are trusted
        named = doc["integrity"].get("previous_run_id")
        if named and named not in indexed and named not in docs and not any(p.run_id == named for p in problems):
            problems.append(Problem(named, "removed", "named as previous report by a later report; no trace left"))

    head_link = links[-1] if links else None
    if expect_head is not None and (head_link is None or head_link.report_sha256 != expect_head.lower()):
        problems.append(Problem(head_link.run_id if head_link else "-", "changed",
                                "the newest report's SHA-256 is not the expected head"))
    return ChainVerification(len(links), head_link, tuple(problems), unchained)
