"""An independent statement of §3 with retention holds, in plain Python (shares no code with
`pipelines`): which entries match each row, and which rows a sweep keeps when some (entry, dataset)
pairs are held. A row is kept when no entry matches it, or when every entry that matches it is held
in the row's dataset."""

from __future__ import annotations

from tests.oracle import data_scope, devices, identity_match


def matching_entries(entries, profiles, events, link_through_events=True):
    """Per dataset, per row index: the set of BlacklistIds that remove it (rules 1-3, one hop)."""
    linked = set()  # (device, entry scope or None, bid)
    found = {"profiles": [set() for _ in profiles], "events": [set() for _ in events]}
    for name, rows in (("profiles", profiles), ("events", events)):
        for i, row in enumerate(rows):
            for e in entries:
                if identity_match(row, e):
                    found[name][i].add(e["bid"])
                    if name == "profiles" or link_through_events:
                        linked.update((d, e["scope"].lower() if e["scope"] else None, e["bid"]) for d in devices(row))
    for i, row in enumerate(events):
        scope = data_scope(row.get("scope"))
        for d, s, bid in linked:
            if d in devices(row) and (s is None or s == scope):
                found["events"][i].add(bid)
    return found


def is_held(pairs, bid, dataset):
    """`pairs`: (bid or None, dataset or None) of the active holds; None covers everything."""
    return any((b is None or b == bid) and (d is None or d == dataset) for b, d in pairs)


def expected_with_holds(entries, profiles, events, pairs, link_through_events=True):
    """(kept row indexes, held rows per bid) per dataset."""
    found = matching_entries(entries, profiles, events, link_through_events)
    out = {}
    for name, per_row in found.items():
        kept, held = [], {}
        for i, bids in enumerate(per_row):
            if not bids:
                kept.append(i)
            elif all(is_held(pairs, b, name) for b in bids):
                kept.append(i)
                for b in bids:
                    held[b] = held.get(b, 0) + 1
        out[name] = (kept, held)
    return out
