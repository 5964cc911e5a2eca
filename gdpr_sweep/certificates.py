"""Erasure certificates at the edge: what the chain cannot say (the request's channel and scope, from the
registry; the configured datasets, from the settings), then `pipelines.reporting.certificate` builds, seals and
writes one JSON and one HTML document per blacklist entry. Used by `gdpr-sweep report certificate` and
the auditor's `GET /api/reports/certificates/{id}`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.config.report_secret import report_secret
from pipelines.config.settings import Settings
from pipelines.core.errors import InputError, NotFound
from pipelines.datasets.factory import open_datasets
from pipelines.registry.registry import Registry, format_time
from pipelines.reporting import chain
from pipelines.reporting import report as reports
from pipelines.reporting.certificate import build_certificate, dataset_descriptor, seal
from pipelines.reporting.certificate_html import render_html

OUT_DIR = "_certificates"
"""Default folder for certificates inside `report_dir` (a leading `_`: never taken for a run's folder)."""


def ids_for_email(settings: Settings, email: str) -> list[str]:
    """BlacklistIds whose keyed email hash a sweep report of the chain carries (the report secret's)."""
    digest = reports.keyed_hash(report_secret(settings, create=False), "email", email)
    found: set[str] = set()
    for item in chain.read_index(settings.report_dir):
        if item.kind == chain.SWEEP:
            doc = chain.load_document(settings.report_dir, item.relpath) or {}
            found |= {e["blacklist_id"] for e in doc.get("entries", []) if e.get("email_hmac") == digest}
    return sorted(found)


def resolve_id(settings: Settings, blacklist_id: str | None, email: str | None) -> str:
    if (blacklist_id is None) == (email is None):
        raise InputError("give exactly one of --blacklist-id or --email")
    if blacklist_id is not None:
        return blacklist_id
    assert email is not None
    ids = ids_for_email(settings, email)
    if not ids:
        raise NotFound("no report of the chain names a blacklist entry with this email")
    if len(ids) > 1:
        raise InputError(f"{len(ids)} blacklist entries have this email (one per scope): {', '.join(ids)}; "
                         "choose one with --blacklist-id")
    return ids[0]


def _channel(settings: Settings, blacklist_id: str) -> str | None:
    """How the request came in: the entry's `Source`, or (removed since) the channel of its first action."""
    registry = Registry(settings.blacklist_db)
    try:
        return registry.get(blacklist_id).source
    except NotFound:
        history = registry.history(blacklist_id)
        return history[0]["Channel"] if history else None


def make_certificate(settings: Settings, blacklist_id: str, as_of_head: bool = False) -> tuple[dict[str, Any], str]:
    """The sealed certificate and its HTML page; NotFound when no report of the chain names the entry.

    `as_of_head`: date it with the chain head's finish time instead of now, so the JSON and the page
    fetched in two requests (the auditor's routes) are the same pair as long as the chain has not grown."""
    descriptors = [dataset_descriptor(d.config.name, d.storage_label) for d in open_datasets(settings)]
    try:
        with chain.chain_lock(settings.report_dir):  # a consistent head while a sweep may be appending
            at = format_time(datetime.now(UTC))
            if as_of_head:
                top = chain.head(settings.report_dir)
                doc = chain.load_document(settings.report_dir, top.relpath) if top else None
                at = str(((doc or {}).get("run") or {}).get("finished_at") or at)
            content = build_certificate(settings.report_dir, blacklist_id, _channel(settings, blacklist_id),
                                        descriptors, at)
    except LookupError as exc:
        raise NotFound(str(exc)) from None
    html = render_html(content)
    return seal(content, html), html


def default_folder(settings: Settings) -> Path:
    return settings.report_dir / OUT_DIR
