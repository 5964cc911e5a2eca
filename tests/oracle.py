"""An independent, obviously-correct implementation of SPEC §3 in plain Python, for comparison.

Rows are dicts with the logical fields `email`, `user_id`, `scope`, `device_id`, `device_ids`.
It shares no code with `pipelines`.
"""

from __future__ import annotations

import unicodedata

WS = " \t\n\r\f\v"


def lower_each(text):
    """Unicode simple case mapping, one character at a time (the first character of each full
    mapping: U+0130 `İ` -> `i`, never `i` + combining dot; `Σ` -> `σ` wherever it stands)."""
    return "".join(ch.lower()[:1] for ch in text)


def norm_email(value):
    """Trimmed, in Unicode normal form C (precomposed), lower-cased."""
    return None if value is None else lower_each(unicodedata.normalize("NFC", value.strip(WS)))


def data_scope(value):
    if value is None or value.strip(WS) == "":
        return "defaultscope"
    return value.strip(WS).lower()


def covers(entry, scope):
    return entry["scope"] is None or entry["scope"].lower() == scope


def identity_match(row, entry):
    if not covers(entry, data_scope(row.get("scope"))):
        return False
    email = norm_email(row.get("email"))
    user_id = row.get("user_id")
    by_email = entry.get("email") is not None and email is not None and email == entry["email"]
    by_user = entry.get("user_id") is not None and user_id is not None and str(user_id) == entry["user_id"]
    return by_email or by_user


def devices(row):
    found = []
    if row.get("device_id") is not None:
        found.append(str(row["device_id"]))
    for d in row.get("device_ids") or []:
        if d is not None:
            found.append(str(d))
    return found


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
