"""Tamper evidence for audit reports: a hash chain over every run's report (issue 5).

Each `report.json` carries an `integrity` block:

- `report_sha256`: SHA-256 of the report's canonical JSON (keys sorted, no whitespace, UTF-8) with
  this one field left out. The file on disk must also be exactly the report's pretty form (indent 2,
  keys sorted): any changed byte, even whitespace, breaks one of the two checks.
- `previous_run_id` / `previous_report_sha256`: the report written before it (None for the first).
- `pages`: SHA-256 of the run's `report.md` and `report.html`, so the human pages are covered too.

`chain.jsonl` in the report folder lists the reports in order (one JSON line per run). It lets
`verify_chain` notice a deleted latest report; a deleted earlier report is named by its successor's
`previous_run_id`.

Every operation joins the same chain (docs/decisions/0263-one-chain-for-every-operation.md): a sweep's
report is `<run_id>/report.json` with pages `report.md` and `report.html` beside it; an operation's
(ClearUserData, ingest guard, ...) is `_operations/<run_id>/<name>.json` with its pages beside it, and
its index line names its `kind` and `path`. `write_linked` links, seals and writes any of them under one
lock (`.chain.lock`), so writers in other processes (a hold placed over HTTP) cannot fork the chain. Someone who can rewrite every file can rebuild a chain: compare the head hash
with one recorded elsewhere (the Prefect artifact of the run, or `report verify --expect-head`).

Reading and writing here is limited to the report folder; all writes go through `storage`'s atomic
helpers.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.datasets import storage
from pipelines.reporting.chain_model import (  # noqa: F401  (re-exported: `chain.X` is the public name)
    _DOC_NAME_RE,
    _RUN_ID_RE,
    INDEX_NAME,
    LOCK_NAME,
    OPERATIONS_DIR,
    PAGE_NAMES,
    REPORT_NAME,
    SWEEP,
    ChainLink,
    canonical_bytes,
    integrity_markdown,
    link,
    pretty_bytes,
    seal,
    self_hash,
    sha256_bytes,
    valid_relpath,
)
from pipelines.reporting.check_cache import CheckCache

# -- reading the report folder -----------------------------------------------------------------


def report_folders(report_dir: Path) -> list[str]:
    """Run ids that have a folder in `report_dir`, oldest first (run ids sort by time)."""
    if not report_dir.is_dir():
        return []
    return sorted(p.name for p in report_dir.iterdir() if p.is_dir() and _RUN_ID_RE.fullmatch(p.name))


def operation_documents(report_dir: Path) -> list[str]:
    """Relative paths of the operation reports (`_operations/<run_id>/<name>.json`), oldest run first."""
    base = report_dir / OPERATIONS_DIR
    if not base.is_dir():
        return []
    found = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and _RUN_ID_RE.fullmatch(p.name)):
        found += [f"{OPERATIONS_DIR}/{folder.name}/{f.name}" for f in sorted(folder.iterdir())
                  if f.is_file() and _DOC_NAME_RE.fullmatch(f.name)]
    return found


def documents(report_dir: Path) -> list[str]:
    """Every report on disk, sweep and operation alike, by relative path, ordered by run id."""
    sweeps = [f"{run_id}/{REPORT_NAME}" for run_id in report_folders(report_dir)]
    return sorted(sweeps + operation_documents(report_dir), key=lambda rel: (run_id_of(rel), rel))


def run_id_of(relpath: str) -> str:
    parts = relpath.split("/")
    return parts[1] if parts[0] == OPERATIONS_DIR else parts[0]


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
            item = ChainLink(str(raw["run_id"]), str(raw["report_sha256"]), raw["previous_report_sha256"],
                             str(raw.get("kind", SWEEP)), raw.get("path"))
            if item.path is not None and (not isinstance(item.path, str) or not valid_relpath(item.path)
                                          or run_id_of(item.path) != item.run_id):
                raise ValueError
            links.append(item)
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{path}: line {n} is not a chain entry") from None
    return links


def load_report(report_dir: Path, run_id: str) -> dict[str, Any] | None:
    """A sweep run's report.json as a dict, or None when missing or not JSON."""
    return load_document(report_dir, f"{run_id}/{REPORT_NAME}")


def load_document(report_dir: Path, relpath: str) -> dict[str, Any] | None:
    """Any chained report by relative path, as a dict; None when missing or not JSON."""
    path = report_dir / relpath
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


def head(report_dir: Path) -> ChainLink | None:
    """The newest report of the chain, to link the next report to.

    A report whose run crashed between writing its JSON and appending to the index is adopted here
    (appended to the index) when it is intact and links to the current head.
    """
    links = read_index(report_dir)
    last = links[-1] if links else None
    known = {link.relpath for link in links}
    for rel in documents(report_dir):
        run_id = run_id_of(rel)
        if rel in known or (last is not None and run_id <= last.run_id):
            continue
        doc = load_document(report_dir, rel)
        if doc is None or _problem(report_dir, rel, doc) is not None:
            continue
        integrity = doc["integrity"]
        if integrity.get("previous_report_sha256") == (last.report_sha256 if last else None):
            last = _link_for(rel, doc)
            append_index(report_dir, last)
    return last


def _link_for(relpath: str, doc: Mapping[str, Any]) -> ChainLink:
    integrity = doc["integrity"]
    if relpath.startswith(OPERATIONS_DIR + "/"):
        return ChainLink(run_id_of(relpath), integrity["report_sha256"], integrity.get("previous_report_sha256"),
                         str(doc.get("kind") or "operation"), relpath)
    return ChainLink(run_id_of(relpath), integrity["report_sha256"], integrity.get("previous_report_sha256"))


def latest(report_dir: Path, kind: str = SWEEP) -> dict[str, Any] | None:
    """The newest intact report of one kind in the chain (e.g. the last sweep's, whose deadline times
    the next sweep carries forward), or None. Its content check comes from the check cache when its
    exact bytes passed before (docs/decisions/0331-nightly-fixed-costs.md)."""
    with chain_lock(report_dir):
        head(report_dir)  # adopts a report a crashed run wrote but did not index
    cache = CheckCache.load(report_dir)
    try:
        for item in reversed(read_index(report_dir)):
            if item.kind == kind:
                doc = load_document(report_dir, item.relpath)
                if doc is not None and _problem(report_dir, item.relpath, doc, cache) is None:
                    return doc
        return None
    finally:
        cache.save()


@contextmanager
def chain_lock(report_dir: Path) -> Iterator[None]:
    """Serialise writers of the chain (any process): read the head, link, write, append."""
    report_dir.mkdir(parents=True, exist_ok=True, mode=storage.DIR_MODE)
    with open(report_dir / LOCK_NAME, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def write_linked(report_dir: Path, report: dict[str, Any], render: Callable[[dict[str, Any]], Mapping[str, str]],
                 relpath: str | None = None) -> tuple[Path, dict[str, Any]]:
    """Link `report` to the chain's head, render its pages (`render(linked_report)` -> name -> text, beside
    the JSON), seal and write everything, under the chain lock. `relpath` None: a sweep's report.
    Return the JSON's path and the sealed report."""
    with chain_lock(report_dir):
        linked = link(report, head(report_dir))
        pages = dict(render(linked))
        sealed = seal(linked, pages)
        return write_sealed(report_dir, sealed, pages, relpath), sealed


def append_index(report_dir: Path, link: ChainLink) -> None:
    """Add one line to `chain.jsonl` (the whole file is rewritten atomically)."""
    path = report_dir / INDEX_NAME
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    if existing and not existing.endswith("\n"):
        existing += "\n"
    storage.write_text_atomic(path, existing + json.dumps(link.to_json(), sort_keys=True) + "\n")


def write_sealed(report_dir: Path, report: dict[str, Any], pages: Mapping[str, str],
                 relpath: str | None = None) -> Path:
    """Write the pages, then the report's JSON, then the index line; return the JSON's path.
    `relpath` None: a sweep's `<run_id>/report.json`; else an operation's `_operations/<run_id>/<name>.json`."""
    run_id = report["run"]["run_id"]
    rel = relpath or f"{run_id}/{REPORT_NAME}"
    if not valid_relpath(rel) or run_id_of(rel) != run_id:
        raise ValueError(f"not a report path for run {run_id}: {rel}")
    path = report_dir / rel
    for name, text in pages.items():
        storage.write_text_atomic(path.parent / name, text)
    data = pretty_bytes(report)  # what `storage.write_json_atomic` writes, serialised once
    storage.write_text_atomic(path, data.decode("utf-8"))
    claimed = report["integrity"]["report_sha256"]
    if claimed == self_hash(report):  # the bytes just written pass the content check: no re-serialising later
        cache = CheckCache.load(report_dir)
        cache.record(rel, sha256_bytes(data), claimed)
        cache.save()
    append_index(report_dir, _link_for(rel, report))
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


def _problem(report_dir: Path, relpath: str, doc: dict[str, Any] | None,
             cache: CheckCache | None = None) -> Problem | None:
    """What is wrong with one report's files (by relative path), or None when they are intact.
    `cache`: skip the content check of bytes that passed it before (`check_cache`)."""
    run_id = run_id_of(relpath)
    path = report_dir / relpath
    if not path.exists():
        return Problem(run_id, "removed", f"{path} is missing")
    if doc is None:
        return Problem(run_id, "changed", f"{path} is not valid JSON")
    integrity = doc.get("integrity")
    if not isinstance(integrity, dict) or "report_sha256" not in integrity:
        return Problem(run_id, "changed", f"{path} has no integrity block")
    if doc.get("run", {}).get("run_id") != run_id:
        return Problem(run_id, "changed", f"{path} names run {str(doc.get('run', {}).get('run_id'))[:64]!r}")
    data = path.read_bytes()
    digest = sha256_bytes(data) if cache is not None else ""
    if cache is None or not cache.hit(relpath, digest, integrity["report_sha256"]):
        if integrity["report_sha256"] != self_hash(doc):
            return Problem(run_id, "changed", f"{path}: content does not match its report_sha256")
        if data != pretty_bytes(doc):
            return Problem(run_id, "changed", f"{path}: bytes differ from the sealed form (formatting edited)")
        if cache is not None:
            cache.record(relpath, digest, integrity["report_sha256"])
    for name, digest in sorted(integrity.get("pages", {}).items()):
        if not _RUN_ID_RE.fullmatch(name):
            return Problem(run_id, "changed", f"{path} names a page outside its folder")
        page = path.parent / name
        if not page.exists():
            return Problem(run_id, "removed", f"{page} is missing")
        if storage.sha256_file(page) != digest:
            return Problem(run_id, "changed", f"{page} does not match the SHA-256 in report.json")
    return None


def _index_or_problem(report_dir: Path) -> tuple[list[ChainLink], list[Problem]]:
    """The chain index's links, or none and the problem that it cannot be read."""
    try:
        return read_index(report_dir), []
    except ValueError as exc:
        return [], [Problem("-", "index_damaged", str(exc))]


def _problems_once(report_dir: Path, docs: Mapping[str, dict[str, Any] | None],
                   cache: CheckCache | None) -> Callable[[str], Problem | None]:
    """`_problem` of a report by relative path, worked out at most once per report (it hashes and
    re-serialises the whole document, about a second for a report of 10,000 entries)."""
    checked: dict[str, Problem | None] = {}

    def problem_of(rel: str) -> Problem | None:
        if rel not in checked:
            checked[rel] = _problem(report_dir, rel, docs.get(rel), cache)
        return checked[rel]
    return problem_of


def verify_chain(report_dir: Path, expect_head: str | None = None,
                 loaded: Mapping[str, dict[str, Any] | None] | None = None,
                 cache: CheckCache | None = None) -> ChainVerification:
    """Check every report in `report_dir` and the links between them; name each changed or removed one.
    `loaded`: the documents the caller has just read (`load_document` by relative path), not read again.
    `cache`: reports whose exact bytes passed before skip their content check (the index page only)."""
    links, problems = _index_or_problem(report_dir)
    docs = {rel: (loaded or {}).get(rel) if rel in (loaded or {}) else load_document(report_dir, rel)
            for rel in documents(report_dir)}
    unchained_rels = {r for r, d in docs.items() if d is not None and d.get("report_version", 0) < 2
                      and "integrity" not in d}
    unchained = tuple(run_id_of(r) for r in sorted(unchained_rels, key=lambda r: (run_id_of(r), r)))
    indexed = {link.run_id for link in links}
    indexed_paths = {link.relpath for link in links}
    run_ids = {run_id_of(r) for r in docs}
    if not links and any(r not in unchained_rels for r in docs):
        problems.append(Problem("-", "index_damaged", f"{report_dir / INDEX_NAME} is missing or empty"))
    problem_of = _problems_once(report_dir, docs, cache)

    # 1. each report listed in the index: present, intact, hash as recorded, linked to its predecessor
    accepted: set[str | None] = {None}  # the hash of the report before, as recorded in the index and as found
    for entry in links:
        doc = docs.get(entry.relpath)
        problem = problem_of(entry.relpath)
        if problem is None and doc is not None:
            integrity = doc["integrity"]
            if integrity["report_sha256"] != entry.report_sha256:
                problem = Problem(entry.run_id, "changed", "report_sha256 differs from the one recorded in the index")
            elif integrity.get("previous_report_sha256") not in accepted:
                named = integrity.get("previous_run_id")
                if named and named not in indexed:
                    problem = Problem(str(named), "removed",
                                      f"report {entry.run_id} links to it, but it is not in the chain")
                else:
                    problem = Problem(entry.run_id, "changed", "does not entry to the report before it in the chain")
        problems += [problem] if problem is not None else []
        accepted = {entry.report_sha256}
        if doc is not None and problem_of(entry.relpath) is None:
            accepted.add(doc["integrity"]["report_sha256"])

    # 2. reports not in the index, and reports named by a successor that are gone entirely
    for rel in docs:
        if rel in indexed_paths or rel in unchained_rels:
            continue
        problems.append(Problem(run_id_of(rel), "not_in_chain",
                                f"{(report_dir / rel).parent} is not listed in {INDEX_NAME}"))
    flagged = {p.run_id for p in problems}
    for rel, doc in docs.items():
        if (doc is None or run_id_of(rel) in flagged or rel in unchained_rels
                or problem_of(rel) is not None):
            continue  # only an intact report's claims are trusted
        named = doc["integrity"].get("previous_run_id")
        if named and named not in indexed and named not in run_ids and not any(p.run_id == named for p in problems):
            problems.append(Problem(named, "removed", "named as previous report by a later report; no trace left"))

    head_link = links[-1] if links else None
    if expect_head is not None and (head_link is None or head_link.report_sha256 != expect_head.lower()):
        problems.append(Problem(head_link.run_id if head_link else "-", "changed",
                                "the newest report's SHA-256 is not the expected head"))
    return ChainVerification(len(links), head_link, tuple(problems), unchained)
