"""An obviously-correct replay of many nights (§3, rule 3's last sentences), for comparison.

After every night the cleaned data must equal: every delivered file's current content swept under
that night's blacklist, with links from every row ever delivered; rows removed from a file stay
removed until the file is delivered again. This module does exactly that, in plain Python, from the
rows themselves: it keeps every row ever delivered and recomputes every link from scratch each
night. It shares no code with `pipelines` or `gdpr_sweep` (the per-row rules come from
`tests/oracle.py`, the one-night oracle).

Rows are dicts with an `id` and the logical fields `email`, `user_id`, `scope`, and `device_ids`
(profiles) or `device_id` (events).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.oracle import data_scope, devices, identity_match


@dataclass
class Delivery:
    rows: list[dict]
    removed: set[str] = field(default_factory=set)
    """Ids of rows a sweep removed from this delivery: they stay removed until the file is delivered again."""


@dataclass
class Replay:
    link_through_events: bool = True
    files: dict[str, dict[str, Delivery]] = field(default_factory=lambda: {"profiles": {}, "events": {}})
    ever: list[tuple[str, dict]] = field(default_factory=list)
    """(kind, row) for every row ever delivered, superseded or not, removed or not."""
    entries: dict[str, dict] = field(default_factory=dict)
    """BlacklistId -> {"email", "user_id", "scope"} (email normalised, scope None = every scope)."""

    def deliver(self, kind: str, rel: str, rows: list[dict]) -> list[dict]:
        """A new file or a new delivery of a file; returns the rows it supersedes (still present ones)."""
        old = self.files[kind].get(rel)
        self.files[kind][rel] = Delivery(list(rows))
        self.ever += [(kind, r) for r in rows]
        return [r for r in old.rows if r["id"] not in old.removed] if old else []

    def present(self) -> list[dict]:
        """Every row of every delivered file's current content that no sweep removed."""
        return [r for files in self.files.values() for d in files.values() for r in d.rows if r["id"] not in d.removed]

    def links(self) -> set[tuple[str, str | None]]:
        """(device, scope the link covers: None = every scope) from every row ever delivered."""
        found = set()
        for kind, row in self.ever:
            if kind == "events" and not self.link_through_events:
                continue
            for e in self.entries.values():
                if identity_match(row, e):
                    found |= {(d, e["scope"].lower() if e["scope"] else None) for d in devices(row)}
        return found

    def sweep(self) -> list[dict]:
        """One night's sweep under the current blacklist; returns the rows it removed."""
        linked = self.links()
        removed = []
        for kind, files in self.files.items():
            for delivery in files.values():
                for row in delivery.rows:
                    if row["id"] in delivery.removed:
                        continue
                    by_identity = any(identity_match(row, e) for e in self.entries.values())
                    scope = data_scope(row.get("scope"))
                    by_device = kind == "events" and any(
                        (d, None) in linked or (d, scope) in linked for d in devices(row))
                    if by_identity or by_device:
                        delivery.removed.add(row["id"])
                        removed.append(row)
        return removed

    def cleaned(self, kind: str) -> dict[str, list[str]]:
        """Each delivered file's kept row ids, in order."""
        return {rel: [r["id"] for r in d.rows if r["id"] not in d.removed]
                for rel, d in sorted(self.files[kind].items())}
