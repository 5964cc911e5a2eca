"""An independent, obviously-correct implementation of §3 in plain Python, for comparison.

Rows are dicts with the logical fields `email`, `user_id`, `scope`, `device_id`, `device_ids`.
It shares no code with `pipelines`.
"""

from __future__ import annotations

import unicodedata

# Unicode White_Space (U+0009-U+000D, U+0020, U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029,
# U+202F, U+205F, U+3000) and the zero-width characters and BOM (U+200B-U+200D, U+2060, U+FEFF).
WS = "".join(map(chr, [*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029,
                       0x202F, 0x205F, 0x3000, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF]))


def lower_each(text):
    """Unicode simple case mapping, one character at a time (the first character of each full
    mapping: U+0130 `İ` -> `i`, never `i` + combining dot; `Σ` -> `σ` wherever it stands)."""
    return "".join(ch.lower()[:1] for ch in text)


def trimmed(value):
    """Trimmed text, None when blank (or null)."""
    if value is None:
        return None
    return str(value).strip(WS) or None


def norm_email(value):
    """Trimmed, in Unicode normal form KC (compatibility forms folded), lower-cased."""
    value = trimmed(value)
    return None if value is None else lower_each(unicodedata.normalize("NFKC", value))


def data_scope(value):
    value = trimmed(value)
    return "defaultscope" if value is None else lower_each(value)


def covers(entry, scope):
    return entry["scope"] is None or entry["scope"].lower() == scope


def identity_match(row, entry):
    if not covers(entry, data_scope(row.get("scope"))):
        return False
    email = norm_email(row.get("email"))
    user_id = trimmed(row.get("user_id"))
    by_email = entry.get("email") is not None and email is not None and email == entry["email"]
    by_user = entry.get("user_id") is not None and user_id is not None and user_id == entry["user_id"]
    return by_email or by_user


def devices(row):
    found = [trimmed(row.get("device_id"))] + [trimmed(d) for d in row.get("device_ids") or []]
    return [d for d in found if d is not None]


def expected_kept(entries, profiles, events, link_through_events=True):
    """Indexes of the profile rows and event rows a correct sweep keeps."""
    linked = set()  # (device, entry scope or None)
    removed_profiles = set()
    for i, row in enumerate(profiles):
        for e in entries:
            if identity_match(row, e):
                removed_profiles.add(i)
                linked.update((d, e["scope"].lower() if e["scope"] else None) for d in devices(row))
    removed_events = set()
    for i, row in enumerate(events):
        for e in entries:
            if identity_match(row, e):
                removed_events.add(i)
                if link_through_events:
                    linked.update((d, e["scope"].lower() if e["scope"] else None) for d in devices(row))
    for i, row in enumerate(events):
        scope = data_scope(row.get("scope"))
        if any((d, None) in linked or (d, scope) in linked for d in devices(row)):
            removed_events.add(i)
    kept_p = [i for i in range(len(profiles)) if i not in removed_profiles]
    kept_e = [i for i in range(len(events)) if i not in removed_events]
    return kept_p, kept_e
