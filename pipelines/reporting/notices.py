"""Notices for recipients (GDPR Art. 17(2) and 19): `report_dir/notices.jsonl`, one record per erased
entry and dataset per run, so downstream processors the data was disclosed to can poll what to erase.

A record names the BlacklistId, the dataset, the run (its kind and the report it is sealed in), the
rows erased and when; never an email, user id or device id. Records are derived from the report chain:
`append_missing` adds the records of every chained report not yet noticed, so a run that stopped
between writing its report and its notices is caught up by the next one, and nothing is noticed twice.
Each record carries `seq` (1, 2, ... in file order) and `recorded_at` (when it was appended), the
cursor a poller passes back as `since` (README "Auditor access").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.core.errors import InputError
from pipelines.datasets import storage
from pipelines.reporting import chain

NOTICES_NAME = "notices.jsonl"
NOTICE_VERSION = 1
ERASING_KINDS = ("sweep", "clear_user_data")
"""Reports whose removals are erasures of stored data. An ingest drops rows before they are stored
(nothing was ever disclosed); a residual scan deletes nothing."""


def erasures(doc: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(BlacklistId, dataset, rows) erased by one report's run, in a stable order."""
    kind = doc.get("kind") or chain.SWEEP
    if kind == chain.SWEEP:
        found = [(e["blacklist_id"], name, int(n)) for e in doc.get("entries") or []
                 for name, n in (e.get("rows_removed") or {}).items() if n]
    elif kind == "clear_user_data":
        found = [(doc["blacklist_id"], d["name"], int(d["rows_removed"])) for d in doc.get("datasets") or []
                 if d.get("rows_removed")]
    else:
        found = []
    return sorted(found)


def records_for(relpath: str, doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The notices of one report (without `seq` / `recorded_at`)."""
    run = doc.get("run") or {}
    return [{"notice_version": NOTICE_VERSION, "blacklist_id": bid, "dataset": dataset, "rows_erased": rows,
             "run_id": run.get("run_id"), "kind": doc.get("kind") or chain.SWEEP, "erased_at": run.get("finished_at"),
             "report": relpath, "report_sha256": (doc.get("integrity") or {}).get("report_sha256")}
            for bid, dataset, rows in erasures(doc)]


def read_notices(report_dir: Path) -> list[dict[str, Any]]:
    """Every record of `notices.jsonl`, in order (an unreadable line is an error naming it)."""
    path = report_dir / NOTICES_NAME
    if not path.exists():
        return []
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                raise InputError(f"{path}: line {n} is not valid JSON") from None
    return out


def append_missing(report_dir: Path, now: datetime | None = None,
                   loaded: dict[str, dict[str, Any] | None] | None = None) -> int:
    """Append the notices of every chained report that has none yet; return how many records were added.
    `loaded`: filled with the documents read (relative path -> document), for the index to reuse.

    Under the chain lock, so two runs cannot notice the same report twice; the file is rewritten
    atomically (old lines byte for byte, then the new ones)."""
    loaded = {} if loaded is None else loaded
    with chain.chain_lock(report_dir):
        existing = read_notices(report_dir)
        noticed = {_key(r) for r in existing}
        stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        seq = max((int(r.get("seq", 0)) for r in existing), default=0)
        new = []
        for link in chain.read_index(report_dir):
            doc = loaded[link.relpath] = chain.load_document(report_dir, link.relpath)
            if doc is None:
                continue  # a missing report: `report verify` names it; nothing to notice from it
            for record in records_for(link.relpath, doc):
                if _key(record) in noticed:
                    continue
                seq += 1
                new.append({**record, "seq": seq, "recorded_at": stamp})
        if new:
            path = report_dir / NOTICES_NAME
            old = path.read_text(encoding="utf-8") if path.exists() else ""
            if old and not old.endswith("\n"):
                old += "\n"
            storage.write_text_atomic(path, old + "".join(_line(r) for r in new))
        return len(new)


def _key(record: dict[str, Any]) -> tuple[Any, Any, Any]:
    return record.get("report"), record.get("blacklist_id"), record.get("dataset")


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n"


def parse_since(since: str | None) -> datetime | None:
    """`since` as given to the API: an ISO-8601 time (`Z` or an offset; a date alone is midnight UTC)."""
    if since is None or not since.strip():
        return None
    text = since.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError("since: expected an ISO-8601 time such as 2026-12-07T00:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def notices_since(report_dir: Path, since: datetime | None) -> Iterator[dict[str, Any]]:
    """Records appended strictly after `since` (all when None), in file order."""
    for record in read_notices(report_dir):
        if since is None or _time(record.get("recorded_at")) > since:
            yield record


def _time(text: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
