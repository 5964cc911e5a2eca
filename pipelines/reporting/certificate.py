"""The erasure certificate (§5): one document for one blacklist entry, across every dataset and run.

Built from the report chain alone (`pipelines.reporting.chain`): the sweep reports that name the entry, its
ClearUserData reports, the retention-hold records that cover it and residual-scan findings. Two
facts the chain does not record come from outside: the channel the request came in by (`api`,
`cli`, `event`, `import`: the registry's) and the configured datasets with how each is stored (the
settings'). Everything else, the request's scope, time and keyed hashes included, is derived from
the chain, so `verify_certificate` rebuilds it from the chain up to the head the certificate cites and
compares: a changed byte of the certificate, of a cited report or of the chain index is found offline.

No email or user id in clear: the entry is named by BlacklistId and, like the reports, by keyed hashes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipelines.reporting import chain

CERTIFICATE_VERSION = 1
KIND = "erasure_certificate"
CHANNELS = {"api": "API", "cli": "CLI", "event": "feed (events in a snapshot)", "import": "feed (import file)"}
_REMOVAL = {
    "local": "files holding the rows were rewritten without them; the superseded version was deleted when the "
             "run published",
    "s3": "objects holding the rows were rewritten without them; superseded objects (and their old object "
          "versions) were deleted when the run published",
    "delta": "rows deleted by a Delta MERGE commit; the table was vacuumed with zero retention and older log "
             "files deleted when the run published",
    "iceberg": "data files holding the rows were rewritten by an Iceberg delete; older snapshots were expired and "
               "the files they alone referenced deleted when the run published",
}
_UNKNOWN_REMOVAL = "rows removed by the run; see its report for how the bytes were replaced"


def dataset_descriptor(name: str, storage: str) -> dict[str, str]:
    """`storage`: the dataset's `Dataset.storage_label` (`local`, `s3`, `delta`, `iceberg`)."""
    return {"name": name, "storage": storage}


def _how(storage: str, kind: str) -> str:
    text = _REMOVAL.get(storage, _UNKNOWN_REMOVAL)
    return text if kind == chain.SWEEP else text.replace("the run published", "ClearUserData published")


def _cited(report_dir: Path, upto: str | None) -> list[tuple[chain.ChainLink, dict[str, Any]]]:
    """The chain's records in order, up to and including the record `upto` (a relative path)."""
    out = []
    for item in chain.read_index(report_dir):
        doc = chain.load_document(report_dir, item.relpath)
        if doc is not None:
            out.append((item, doc))
        if upto is not None and item.relpath == upto:
            return out
    if upto is not None:
        raise LookupError(f"the chain has no record {upto}")
    return out


def _names_entry(item: chain.ChainLink, doc: Mapping[str, Any], bid: str) -> bool:
    if item.kind == chain.SWEEP:
        return any(e.get("blacklist_id") == bid for e in doc.get("entries", []))
    if item.kind == "hold":
        return doc["hold"].get("blacklist_id") in (bid, None)
    if item.kind == "clear_user_data":
        return doc.get("blacklist_id") == bid
    return any(f.get("blacklist_id") == bid for f in (doc.get("residuals") or {}).get("findings") or [])


def _entry_of(doc: Mapping[str, Any], bid: str) -> dict[str, Any]:
    return next((e for e in doc.get("entries", []) if e.get("blacklist_id") == bid), {})


def _run(item: chain.ChainLink, doc: Mapping[str, Any], bid: str) -> dict[str, Any]:
    run = doc.get("run", {})
    removed: dict[str, int] = {}
    if item.kind == chain.SWEEP:
        removed = {k: v for k, v in _entry_of(doc, bid).get("rows_removed", {}).items() if v}
    elif item.kind == "clear_user_data":
        removed = {d["name"]: d["rows_removed"] for d in doc.get("datasets", []) if d.get("rows_removed")}
    return {"run_id": item.run_id, "kind": item.kind, "report": item.relpath, "finished_at": run.get("finished_at"),
            "report_sha256": item.report_sha256, "previous_report_sha256": item.previous_report_sha256,
            "rows_removed": removed}


def _last_scan(records: Sequence[tuple[chain.ChainLink, dict[str, Any]]]
               ) -> tuple[chain.ChainLink | None, dict[str, Any]]:
    """The newest residual scan of the chain (a sweep's or a `gdpr-sweep scan`'s `residuals` block): only
    its findings stand; an earlier finding that a later scan no longer sees was dealt with."""
    for item, doc in reversed(records):
        block = doc.get("residuals") or {}
        if isinstance(block, dict) and block.get("scanned"):
            return item, block
    return None, {}


def _residual_scan(item: chain.ChainLink | None, block: Mapping[str, Any], bid: str) -> dict[str, Any] | None:
    if item is None:
        return None
    found = [{"target": f.get("target"), "kind": f.get("kind", "dataset"), "column": f.get("column"),
              "rows": f.get("rows")}
             for f in block.get("findings") or [] if f.get("blacklist_id") == bid]
    return {"run_id": item.run_id, "report": item.relpath, "scanned_at": block.get("scanned_at"),
            "found": bool(found), "findings": found}


def _dataset(desc: Mapping[str, str], runs: Sequence[dict[str, Any]], latest: Mapping[str, Any],
             holds: Sequence[dict[str, Any]], scan: Mapping[str, Any] | None) -> dict[str, Any]:
    name = desc["name"]
    by_run = {r["run_id"]: r["rows_removed"][name] for r in runs if r["rows_removed"].get(name)}
    removal = [{"run_id": r["run_id"], "at": r["finished_at"], "rows": r["rows_removed"][name],
                "how": _how(desc["storage"], r["kind"])}
               for r in runs if r["rows_removed"].get(name)]
    held = next((h for h in latest.get("held", []) if h["dataset"] == name), None)
    released = [h for h in holds if h["action"] == "release" and h["dataset"] in (name, None)]
    found = [f for f in (scan or {}).get("findings", []) if f["kind"] == "dataset" and f["target"] == name]
    if held is not None:
        outcome = f"held: {held['reason']} until {held['until'] or 'released'}"
    elif by_run:
        total = sum(by_run.values())
        outcome = f"removed: {total} {'row' if total == 1 else 'rows'}"
    else:
        outcome = "none held"
    if found:
        outcome += "; " + "; ".join(f"residual found in column {f['column']} ({f['rows']} "
                                    f"{'row' if f['rows'] == 1 else 'rows'}, scan {scan['run_id']})"  # type: ignore[index]
                                    for f in found)
    return {"name": name, "storage": desc["storage"], "outcome": outcome, "rows_removed": sum(by_run.values()),
            "rows_removed_by_run": by_run, "held": held, "hold_releases": released, "residuals": list(found),
            "removal": removal}


def _request(latest: Mapping[str, Any], channel: str | None) -> dict[str, Any]:
    """The request as the chain's newest sweep report names it (no email or user id: keyed hashes)."""
    return {"scope": latest.get("scope"), "every_scope": bool(latest) and latest.get("scope") is None,
            "received_at": latest.get("created_at"), "channel": CHANNELS.get(channel or "", channel),
            "email_hmac": latest.get("email_hmac"), "user_id_hmac": latest.get("user_id_hmac")}


def build_certificate(report_dir: Path, blacklist_id: str, channel: str | None,
                      datasets: Sequence[Mapping[str, str]], generated_at: str,
                      upto: str | None = None) -> dict[str, Any]:
    """The certificate's content (without `integrity`) from the chain up to record `upto` (default: its
    head). `channel`: how the request came in (the registry's `Source`; the chain does not record it).
    LookupError when no record of the chain names the entry."""
    records = _cited(report_dir, upto)
    if not records:
        raise LookupError("the report chain is empty")
    head = records[-1][0]
    mine = [(item, doc) for item, doc in records if _names_entry(item, doc, blacklist_id)]
    if not mine:
        raise LookupError(f"no report of the chain names blacklist entry {blacklist_id}")
    runs = [_run(item, doc, blacklist_id) for item, doc in mine]
    sweeps = [doc for item, doc in mine if item.kind == chain.SWEEP]
    latest = _entry_of(sweeps[-1], blacklist_id) if sweeps else {}
    holds = [{"action": doc["hold"]["action"], "at": doc["hold"]["at"], "hold_id": doc["hold"]["hold_id"],
              "dataset": doc["hold"]["dataset"], "reason": doc["hold"]["reason"], "until": doc["hold"]["until"],
              "entry_wide": doc["hold"]["blacklist_id"] is None, "run_id": item.run_id}
             for item, doc in mine if item.kind == "hold"]
    scan = _residual_scan(*_last_scan(records), blacklist_id)
    return {
        "certificate_version": CERTIFICATE_VERSION, "kind": KIND, "blacklist_id": blacklist_id,
        "generated_at": generated_at, "request": _request(latest, channel),
        "datasets": [_dataset(d, runs, latest, holds, scan) for d in datasets],
        "runs": runs, "holds": holds, "residual_scan": scan,
        "completion": {key: latest.get(key) for key in ("status", "first_verified_gone_at", "hours_to_gone",
                                                        "deadline_met", "deadline_from", "rows_held")}
        | {"deadline_hours": sweeps[-1].get("deadline_hours") if sweeps else None,
           "last_sweep": next((r["run_id"] for r in reversed(runs) if r["kind"] == chain.SWEEP), None)},
        "chain": {"head": head.relpath, "head_sha256": head.report_sha256, "records_cited": len(runs)},
    }


# -- sealing, writing and verifying -------------------------------------------------------------


def seal(content: Mapping[str, Any], html: str) -> dict[str, Any]:
    """The certificate with its `integrity`: SHA-256 of the HTML page and of its own canonical JSON."""
    doc = {**content, "integrity": {"algorithm": "sha256", "html_sha256": chain.sha256_bytes(html.encode("utf-8")),
                                    "canonical_form": "JSON, keys sorted, separators ',' ':', UTF-8, "
                                                      "without integrity.certificate_sha256"}}
    doc["integrity"]["certificate_sha256"] = _self_hash(doc)
    return doc


def _self_hash(doc: Mapping[str, Any]) -> str:
    integrity = {k: v for k, v in doc.get("integrity", {}).items() if k != "certificate_sha256"}
    return chain.sha256_bytes(chain.canonical_bytes({**doc, "integrity": integrity}))


def write(folder: Path, doc: Mapping[str, Any], html: str) -> tuple[Path, Path]:
    """Write `<folder>/certificate-<BlacklistId>.json` and `.html` (atomically, HTML first)."""
    from pipelines.datasets import storage

    stem = folder / f"certificate-{doc['blacklist_id']}"
    storage.write_text_atomic(stem.with_suffix(".html"), html)
    storage.write_text_atomic(stem.with_suffix(".json"), chain.pretty_bytes(doc).decode("utf-8"))
    return stem.with_suffix(".json"), stem.with_suffix(".html")


def _channel_of(request: Mapping[str, Any]) -> str | None:
    shown = request.get("channel")
    return next((k for k, v in CHANNELS.items() if v == shown), shown)


def verify_certificate(path: Path, report_dir: Path) -> list[str]:
    """Problems with a certificate (its JSON or HTML path), checked offline against the report chain:
    its own bytes and hash, its HTML page's hash, the chain's integrity, and its content rebuilt from
    the chain up to the head it cites. An empty list: it holds."""
    json_path = path.with_suffix(".json")
    try:
        raw = json_path.read_bytes()
        doc = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError) as exc:
        return [f"{json_path}: cannot read the certificate ({type(exc).__name__})"]
    if not isinstance(doc, dict) or doc.get("kind") != KIND or not isinstance(doc.get("integrity"), dict):
        return [f"{json_path}: not an erasure certificate"]
    problems = []
    if doc["integrity"].get("certificate_sha256") != _self_hash(doc):
        problems.append(f"{json_path}: content does not match its certificate_sha256")
    if raw != chain.pretty_bytes(doc):
        problems.append(f"{json_path}: bytes differ from the sealed form (formatting edited)")
    html_path = json_path.with_suffix(".html")
    if not html_path.exists():
        problems.append(f"{html_path} is missing")
    elif chain.sha256_bytes(html_path.read_bytes()) != doc["integrity"].get("html_sha256"):
        problems.append(f"{html_path} does not match the html_sha256 in the certificate")
    checked = chain.verify_chain(report_dir)
    problems += [f"report chain: {p.problem} {p.run_id}: {p.detail}" for p in checked.problems]
    try:
        again = build_certificate(report_dir, doc["blacklist_id"], _channel_of(doc["request"]),
                                  [{"name": d["name"], "storage": d["storage"]} for d in doc["datasets"]],
                                  doc["generated_at"], doc["chain"]["head"])
    except (LookupError, KeyError, TypeError, ValueError) as exc:
        return problems + [f"cannot rebuild the certificate from the chain: {exc}"]
    content = {k: v for k, v in doc.items() if k != "integrity"}
    for key in sorted(set(content) | set(again)):
        if content.get(key) != again.get(key):
            problems.append(f"{json_path}: '{key}' differs from what the report chain says")
    return problems
