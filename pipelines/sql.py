"""Every SQL statement gdpr-sweep runs, named and in one place.

Values are always bound parameters. Identifiers (column paths from configuration) go through
`column_ref`, the single quoting helper; nothing from data is ever pasted into SQL text.
"""

from __future__ import annotations

from collections.abc import Sequence

# ASCII whitespace: what "trimmed" means for emails, user ids and scopes, in SQL and in Python.
WHITESPACE = " \t\n\r\f\v"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def column_ref(path: Sequence[tuple[str, bool]]) -> str:
    """SQL for a (possibly nested) column: segments are (name, parent_is_map) pairs.

    `[("User", False), ("Email", False)]` -> `t."User"."Email"`; a map parent uses `['key']`.
    """
    sql = "t"
    for name, in_map in path:
        sql += f"[{quote_literal(name)}]" if in_map else f".{quote_ident(name)}"
    return sql


def norm_text(expr: str) -> str:
    """Trimmed, NFC-normalised, lower-cased text; the comparison form of emails (and data scopes).
    Must agree with `pipelines.identity.normalize_email` (NFC, then simple per-character lower-case).

    `trim` with a character list costs three times a plain read on 20M emails, so it runs only where
    the first or last character (code point) is a control character or space: every other value has
    nothing to trim (docs/benchmarks.md, "Sweep")."""
    text = f"CAST({expr} AS VARCHAR)"
    trimmed = (f"CASE WHEN ord({text}[1]) <= 32 OR ord({text}[-1]) <= 32 "
               f"THEN trim({text}, {quote_literal(WHITESPACE)}) ELSE {text} END")
    return f"lower(nfc_normalize({trimmed}))"


def norm_scope(expr: str) -> str:
    """Null, empty or whitespace scope is DefaultScope; scopes compare case-insensitively."""
    return f"coalesce(nullif({norm_text(expr)}, ''), 'defaultscope')"


def identity_scan(email: str | None, user_id: str | None, scope: str | None,
                  device_id: str | None, device_ids: str | None) -> str:
    """One row per data row: which file and row, and its identities. The email is normalised here
    (the candidate filter needs it); the scope is left raw (`raw_scope`) and normalised by
    `norm_scope` only for the few rows that survive a filter."""
    return f"""
        SELECT t.file_index AS file, t.file_row_number AS row,
               {norm_text(email) if email else 'NULL::VARCHAR'} AS email,
               {f'CAST({user_id} AS VARCHAR)' if user_id else 'NULL::VARCHAR'} AS user_id,
               {f'CAST({scope} AS VARCHAR)' if scope else 'NULL::VARCHAR'} AS raw_scope,
               {f'CAST({device_id} AS VARCHAR)' if device_id else 'NULL::VARCHAR'} AS device_id,
               {f'CAST({device_ids} AS VARCHAR[])' if device_ids else 'NULL::VARCHAR[]'} AS device_ids
        FROM read_parquet($files, union_by_name = true) AS t"""


# Rules 1 and 2, first pass: one streaming scan keeps only the rows whose email or user id is any
# entry's (semi-joins against the small entries table; the data itself is never held in memory).
# `$oldest` is the oldest blacklist version among the files: only entries added after it can match.
CREATE_CANDIDATES = """
    CREATE OR REPLACE TEMP TABLE candidates AS
    SELECT i.file, i.row, i.email, i.user_id, {scope} AS scope, i.device_id, i.device_ids
    FROM ({scan}) AS i
    WHERE i.email IN (SELECT email FROM entries WHERE added > $oldest)
       OR i.user_id IN (SELECT user_id FROM entries WHERE added > $oldest)
""".replace("{scope}", norm_scope("i.raw_scope"))

# Rules 1 and 2, exactly, on the few candidates: email or user id matches an entry within the
# entry's scope. `$verified[file + 1]` is the blacklist version the file was verified against: only
# entries added after it can match (incremental sweeps); it is -1 for a file never verified.
INSERT_IDENTITY_HITS = """
    INSERT INTO hits
    SELECT $dataset, i.file, i.row, e.bid, 1, e.scope, i.device_id, i.device_ids, $links
    FROM candidates AS i JOIN entries AS e ON i.email = e.email
    WHERE (e.scope IS NULL OR e.scope = i.scope) AND e.added > $verified[CAST(i.file AS BIGINT) + 1]
    UNION ALL
    SELECT $dataset, i.file, i.row, e.bid, 2, e.scope, i.device_id, i.device_ids, $links
    FROM candidates AS i JOIN entries AS e ON i.user_id = e.user_id
    WHERE (e.scope IS NULL OR e.scope = i.scope) AND e.added > $verified[CAST(i.file AS BIGINT) + 1]
"""

CREATE_HITS = """
    CREATE OR REPLACE TEMP TABLE hits (
        dataset VARCHAR, file BIGINT, row BIGINT, bid VARCHAR, rank TINYINT,
        entry_scope VARCHAR, device_id VARCHAR, device_ids VARCHAR[], links BOOLEAN)
"""

# Rule 3, first half: devices linked to a matched row (profile lists; events when enabled).
# A linked device is removed within the scope of the entry that linked it (NULL: every scope).
CREATE_LINKED = """
    CREATE OR REPLACE TEMP TABLE linked AS
    SELECT DISTINCT device, scope, bid FROM (
        SELECT device_id AS device, entry_scope AS scope, bid FROM hits WHERE links
        UNION ALL
        SELECT unnest(device_ids) AS device, entry_scope AS scope, bid FROM hits WHERE links
        UNION ALL
        SELECT device, scope, bid FROM extra_linked
    ) WHERE device IS NOT NULL
"""

ANY_LINKED = "SELECT count(*) > 0 FROM linked"

# A first pass's identity hits (`find_matches(links_only=True)`), in and out, so the second pass
# does not scan the identity columns again.
INSERT_PRIOR_HITS = "INSERT INTO hits SELECT * FROM prior_hits"
IDENTITY_HITS = "SELECT * FROM hits WHERE rank < 3 ORDER BY dataset, file, row, bid, rank"

# Rule 3, second half: event rows from a linked device, within the linked scope. `{devices}` is
# `device_rows(...)`: one streaming scan, the linked table is small.
INSERT_DEVICE_HITS = """
    INSERT INTO hits
    SELECT $dataset, d.file, d.row, l.bid, 3, l.scope, NULL, NULL, false
    FROM ({devices}) AS d JOIN linked AS l ON d.device = l.device
    WHERE l.scope IS NULL OR l.scope = {scope}
""".replace("{scope}", norm_scope("d.raw_scope"))


def device_rows(scan: str, device_id: bool, device_ids: bool) -> str:
    """(file, row, raw_scope, device) per device of each row, in a single pass over `scan`."""
    if device_id and device_ids:
        device = "unnest(list_concat([device_id], device_ids))"
    elif device_ids:
        device = "unnest(device_ids)"
    else:
        device = "device_id"
    return f"SELECT file, row, raw_scope, {device} AS device FROM ({scan})"


# Rows to drop per file, and counts per reason (each row once, by its first reason) and per entry.
ROWS_TO_DROP = """
    SELECT file, list(DISTINCT row ORDER BY row) AS rows
    FROM hits WHERE dataset = $dataset GROUP BY file ORDER BY file
"""

REMOVED_BY_REASON = """
    SELECT rank, count(*) FROM (
        SELECT min(rank) AS rank FROM hits WHERE dataset = $dataset GROUP BY file, row
    ) GROUP BY rank ORDER BY rank
"""

REMOVED_BY_ENTRY = """
    SELECT bid, count(DISTINCT (file, row)) FROM hits WHERE dataset = $dataset
    GROUP BY bid ORDER BY bid
"""

LINKED_DEVICES = "SELECT device, scope, bid FROM linked ORDER BY device, scope, bid"

# Retention holds (pipelines/holds.py): after matching as usual, a row whose every hit is an
# (entry, dataset) pair an active hold covers is kept. Its hits move to `held_hits` (counted as held);
# a row that any unheld hit matches stays in `hits` and is removed.
CREATE_HELD_HITS = """
    CREATE OR REPLACE TEMP TABLE held_hits AS
    SELECT h.* FROM hits AS h
    WHERE NOT EXISTS (
        SELECT 1 FROM hits AS u
        WHERE u.dataset = h.dataset AND u.file = h.file AND u.row = h.row
          AND NOT EXISTS (SELECT 1 FROM held AS k WHERE (k.bid IS NULL OR k.bid = u.bid)
                                                   AND (k.dataset IS NULL OR k.dataset = u.dataset)))
"""
CREATE_NO_HELD_HITS = "CREATE OR REPLACE TEMP TABLE held_hits AS SELECT * FROM hits LIMIT 0"
DELETE_HELD_HITS = """
    DELETE FROM hits WHERE EXISTS (
        SELECT 1 FROM held_hits AS k WHERE k.dataset = hits.dataset AND k.file = hits.file AND k.row = hits.row)
"""
HELD_BY_ENTRY = """
    SELECT bid, count(DISTINCT (file, row)) FROM held_hits WHERE dataset = $dataset
    GROUP BY bid ORDER BY bid
"""
