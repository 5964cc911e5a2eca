"""Remembered device links (§3 rule 3): a link outlives the rows that made it.

A run's identity hits (rules 1 and 2) link devices to entries: the devices a matching profile lists,
and, when `link_devices_through_events` is on, the device of a matching event. Once those rows are
removed nothing in the data links the device any more, so the links are kept with the entry in the
registry (`pipelines/registry/links.py`) and every later match gets them back as `extra_linked`.

Two pure steps, tables in and tables out:
- `found_links`: the links a run's identity hits make, as LINK_SCHEMA rows (`bid`, `device`, `via`);
- `remembered`: stored links of the entries being matched, as the matcher's LINKED_SCHEMA rows
  (`device`, `scope`, `bid`), the scope being the entry's (a linked device is removed within the
  scopes its entry covers). Links made through events are left out when linking through events is off.

docs/decisions/0211-remembered-device-links.md explains the choices.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.core.identity import id_key
from pipelines.core.match import LINKED_SCHEMA

LINK_SCHEMA = pa.schema([("bid", pa.string()), ("device", pa.string()), ("via", pa.string())])
"""One remembered link: the entry, the device (its comparison form, `pipelines.core.identity.id_key`) and what
made it."""
VIA = {"profiles": "profile", "events": "event"}
"""A dataset kind -> the `via` of the links its rows make."""


def found_links(hits: Iterable[pa.Table | None], kinds: Mapping[str, str]) -> pa.Table:
    """The distinct links made by identity hits (`pipelines.core.match.HITS_SCHEMA` tables; a hit links
    only where its `links` flag is set). `kinds` maps each dataset name to its kind."""
    parts = [LINK_SCHEMA.empty_table()]
    for table in hits:
        if table is None or not table.num_rows:
            continue
        linking = table.filter(pc.fill_null(table["links"], False))
        via = pa.array([VIA[kinds[name]] for name in linking["dataset"].to_pylist()], pa.string())
        parts.append(_table(linking["bid"], linking["device_id"], via))
        lists = linking["device_ids"].combine_chunks() if linking.num_rows else pa.array([], pa.list_(pa.string()))
        parents = pc.list_parent_indices(lists)
        parts.append(_table(pc.take(linking["bid"], parents), pc.list_flatten(lists), pc.take(via, parents)))
    table = pa.concat_tables(parts)
    # Stored in their comparison form (§2: trimmed; blank is none), one row per device however spelled.
    keyed = pa.array([id_key(d) for d in table["device"].to_pylist()], pa.string())
    table = table.set_column(table.schema.get_field_index("device"), "device", keyed)
    return _distinct(table.filter(pc.is_valid(table["device"])), LINK_SCHEMA)


def remembered(links: pa.Table, entries: pa.Table, link_through_events: bool) -> pa.Table:
    """The stored `links` (LINK_SCHEMA) of the entries in `entries` (the matcher's ENTRY_SCHEMA), as
    LINKED_SCHEMA rows with each entry's scope. Links of entries not in `entries` are dropped."""
    if not link_through_events:
        links = links.filter(pc.equal(links["via"], VIA["profiles"]))
    if not links.num_rows or not entries.num_rows:
        return LINKED_SCHEMA.empty_table()
    scopes = entries.select(["bid", "scope"])
    joined = links.select(["bid", "device"]).join(scopes, keys="bid", join_type="inner")
    return _distinct(joined.select(LINKED_SCHEMA.names), LINKED_SCHEMA)


def _table(bid: pa.Array | pa.ChunkedArray, device: pa.Array | pa.ChunkedArray,
           via: pa.Array | pa.ChunkedArray) -> pa.Table:
    return pa.table({"bid": pc.cast(bid, pa.string()), "device": pc.cast(device, pa.string()),
                     "via": pc.cast(via, pa.string())}, schema=LINK_SCHEMA)


def _distinct(table: pa.Table, schema: pa.Schema) -> pa.Table:
    table = table.cast(schema)
    if not table.num_rows:
        return schema.empty_table()
    grouped = table.group_by(schema.names, use_threads=False).aggregate([])
    return grouped.select(schema.names).sort_by([(n, "ascending") for n in schema.names]).cast(schema)
