"""The demo's set-up: sample data and a handful of sample blacklist entries."""

from __future__ import annotations

import json

from pipelines.config.settings import Settings
from pipelines.registry.registry import Registry


def prepare_demo(settings: Settings, *, events: int, profiles: int) -> int:
    """Generate sample data if it is missing; add the sample blacklist. Return entries added."""
    from pipelines.sample.generate import generate

    sample = settings.config_path.parent / "data" / "sample"
    if not (sample / "blacklist.json").exists():
        generate(sample, profiles=profiles, events=events)
    items = json.loads((sample / "blacklist.json").read_text(encoding="utf-8"))["items"]
    registry = Registry(settings.blacklist_db)
    added = 0
    for item in items:
        _, created = registry.add(email=item.get("Email"), user_id=item.get("UserId"),
                                  scope=item.get("Scope"), source="import")
        added += created
    return added
