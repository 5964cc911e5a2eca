"""Every SQL statement gdpr-sweep runs, named and in one place.

Values are always bound parameters. Identifiers (column paths from configuration) go through
`column_ref`, the single quoting helper; nothing from data is ever pasted into SQL text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import duckdb
from duckdb.func import FunctionNullHandling, PythonUDFType

from pipelines.core.identity import TRIM_CHARS, email_key, id_key, scope_text_key

_EMPTY = "''"
_ASCII_TRIM = "".join(ch for ch in TRIM_CHARS if ch.isascii())
"""The part of `TRIM_CHARS` an ASCII value can hold: TAB, LF, VT, FF, CR and space."""

# Non-ASCII values are normalised by the Python definition itself (DuckDB 2.0 has `nfc_normalize`
# but no NFKC, and its `lower` follows its own Unicode tables): `register_functions` makes these
# scalar functions on every connection (`pipelines.core.match.connect`). ASCII values never leave DuckDB.
# docs/decisions/0221-identity-normalisation.md says why and what it costs.
EMAIL_FN, ID_FN, SCOPE_FN = "gdpr_email_key", "gdpr_id_key", "gdpr_scope_text"

_FUNCTIONS: dict[str, Callable[[str | None], str | None]] = {
    EMAIL_FN: email_key, ID_FN: id_key, SCOPE_FN: scope_text_key}


def register_functions(con: duckdb.DuckDBPyConnection) -> None:
    """Register the non-ASCII branch of `norm_email` / `norm_id` / `scope_text` on `con`.

    Native (row-at-a-time) functions: DuckDB calls them only for the rows of a vector that take the
    non-ASCII branch, so a vector with one non-ASCII value costs one call (an Arrow function would
    pay a per-vector conversion that is dearer than a few rows)."""
    for name, fn in _FUNCTIONS.items():
        con.create_function(name, fn, [duckdb.sqltype("VARCHAR")], duckdb.sqltype("VARCHAR"),
                            type=PythonUDFType.NATIVE, null_handling=FunctionNullHandling.SPECIAL,
                            side_effects=False)


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


def _ascii_trimmed(text: str, blank_null: bool = True) -> str:
    """An ASCII value trimmed; when nothing is left NULL, or '' with `blank_null=False` (where an outer
    query turns it into NULL or only compares it with normalised values). `trim` with a character list is slow (three times a plain read on 20M emails), so
    it runs only where the first or last character is a control character or space: every other value
    has nothing to trim (docs/benchmarks.md, "Sweep"). An empty value has no first character (`ord` is
    -1) and takes the `trim` branch too."""
    trimmed = f"trim({text}, {quote_literal(_ASCII_TRIM)})"
    return (f"CASE WHEN ord({text}[1]) <= 32 OR ord({text}[-1]) <= 32 "
            f"THEN {f'nullif({trimmed}, {_EMPTY})' if blank_null else trimmed} ELSE {text} END")


def _normalised(expr: str, ascii_form: Callable[[str], str], function: str) -> str:
    """ASCII values (and NULL) in DuckDB, the rest by the Python definition. `strlen` (bytes) equals
    `length` (code points) only for ASCII text; the test costs about a fifth of a plain read."""
    text = f"CAST({expr} AS VARCHAR)"
    return (f"(CASE WHEN {text} IS NULL OR strlen({text}) = length({text}) THEN {ascii_form(text)} "
            f"ELSE {function}({text}) END)")


def norm_email(expr: str) -> str:
    """The comparison form of an email (`pipelines.core.identity.email_key`): trimmed, NFKC, lower-cased;
    NULL when blank. NFKC changes no ASCII text, so ASCII values need only trim and `lower`."""
    return _normalised(expr, lambda t: f"lower({_ascii_trimmed(t)})", EMAIL_FN)


def norm_id(expr: str) -> str:
    """The comparison form of a user id or device id (`pipelines.core.identity.id_key`): trimmed; NULL when blank."""
    return _normalised(expr, _ascii_trimmed, ID_FN)


def email_or_blank(expr: str) -> str:
    """`norm_email` except that a value blank after trimming is '' instead of NULL (the Python
    definition's non-ASCII branch still gives NULL): for a query that applies `nullif(x, '')` to the
    column one level up, or that only compares it with normalised values (never '').
    DuckDB's `nullif(a, '')` evaluates `a` twice: in the normalising CASE that doubled the cost of every
    value that needs trimming (about a third of the whole normalisation on the benchmark's emails)."""
    return _normalised(expr, lambda t: f"lower({_ascii_trimmed(t, blank_null=False)})", EMAIL_FN)


def id_or_blank(expr: str) -> str:
    """`norm_id`, a blank value '' instead of NULL (as `email_or_blank`)."""
    return _normalised(expr, lambda t: _ascii_trimmed(t, blank_null=False), ID_FN)


def scope_text(expr: str) -> str:
    """A data scope trimmed and lower-cased, NULL when blank (CrossEngage commands keep that apart)."""
    return _normalised(expr, lambda t: f"lower({_ascii_trimmed(t)})", SCOPE_FN)


def norm_scope(expr: str) -> str:
    """The comparison key of a data scope (`pipelines.core.identity.data_scope_key`): null or blank is
    DefaultScope; scopes compare case-insensitively."""
    return f"coalesce({scope_text(expr)}, 'defaultscope')"


def identity_scan(email: str | None, user_id: str | None, scope: str | None,
                  device_id: str | None, device_ids: str | None) -> str:
    """One row per data row: which file and row, and its identities, as text and not yet normalised
    (`raw_email`, `raw_user_id`, `raw_scope`, ...): they are normalised only for the rows that survive
    a filter (`PREFILTERED`, `create_candidates`)."""
    return f"""
        SELECT t.file_index AS file, t.file_row_number AS row,
               {f'CAST({email} AS VARCHAR)' if email else 'NULL::VARCHAR'} AS raw_email,
               {f'CAST({user_id} AS VARCHAR)' if user_id else 'NULL::VARCHAR'} AS raw_user_id,
               {f'CAST({scope} AS VARCHAR)' if scope else 'NULL::VARCHAR'} AS raw_scope,
               {f'CAST({device_id} AS VARCHAR)' if device_id else 'NULL::VARCHAR'} AS device_id,
               {f'CAST({device_ids} AS VARCHAR[])' if device_ids else 'NULL::VARCHAR[]'} AS device_ids
        FROM read_parquet($files, union_by_name = true) AS t"""


def plain_ascii(text: str) -> str:
    """TRUE for a value whose normal form is the value itself, lower-cased for an email: ASCII, and
    neither first nor last character a control character or space (nothing to trim, NFKC changes no
    ASCII). FALSE for every other value, the empty one included (`ord` of no character is -1); NULL
    for NULL."""
    return f"(strlen({text}) = length({text}) AND ord({text}[1]) > 32 AND ord({text}[-1]) > 32)"


# Rules 1 and 2, first pass, in one streaming scan with two filters. The first keeps the rows that can
# match: a plain value (`plain_ascii`) whose lower-cased email or user id is an entry's (its normal
# form is exactly that), and every value that is not plain (non-ASCII, or a space or control character
# at an end). Normalising each value in the scan costs about twice the read itself; testing and
# lower-casing costs a fraction. The second, on the normalised values of the rows the first kept, is
# the exact filter: every row whose normal form matches passes the first, so the candidates are exactly
# the rows whose normalised email or user id is an entry's. Nothing between the two is materialised:
# the rows that are not plain can be a large share of a lake (15 % of the generated emails are padded),
# and a table of them held 15M rows at 100M events (decision 0331). `$oldest` is the oldest blacklist
# version among the files: only entries added after it can match.
PREFILTERED = """
    SELECT i.* FROM ({scan}) AS i
    WHERE lower(i.raw_email) IN (SELECT email FROM entries WHERE added > $oldest)
       OR NOT {plain_email}
       OR i.raw_user_id IN (SELECT user_id FROM entries WHERE added > $oldest)
       OR NOT {plain_user_id}
""".replace("{plain_email}", plain_ascii("i.raw_email")).replace("{plain_user_id}", plain_ascii("i.raw_user_id"))


def normalised(source: str) -> str:
    """The rows of `source` (columns of `identity_scan`) with `email` and `user_id` in their normal
    form, NULL when blank (`nullif` one level up: see `email_or_blank`)."""
    return f"""
        SELECT file, row, nullif(email, '') AS email, nullif(user_id, '') AS user_id,
               raw_scope, device_id, device_ids
        FROM (
            SELECT file, row, {email_or_blank('raw_email')} AS email, {id_or_blank('raw_user_id')} AS user_id,
                   raw_scope, device_id, device_ids
            FROM ({source})
        )"""


_CREATE_CANDIDATES = """
    CREATE OR REPLACE TEMP TABLE candidates AS
    SELECT i.file, i.row, i.email, i.user_id, {scope} AS scope, i.device_id, i.device_ids
    FROM ({normalised}) AS i
    WHERE i.email IN (SELECT email FROM entries WHERE added > $oldest)
       OR i.user_id IN (SELECT user_id FROM entries WHERE added > $oldest)
""".replace("{scope}", norm_scope("i.raw_scope")).replace("{normalised}", normalised(PREFILTERED))


def create_candidates(scan: str) -> str:
    """The statement of the first pass over the rows of `scan` (an `identity_scan`)."""
    return _CREATE_CANDIDATES.replace("{scan}", scan)

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
# Device ids are normalised (`norm_id`): a blank one is NULL and links nothing.
CREATE_LINKED = """
    CREATE OR REPLACE TEMP TABLE linked AS
    SELECT DISTINCT device, scope, bid FROM (
        SELECT {device} AS device, scope, bid FROM (
            SELECT device_id AS raw, entry_scope AS scope, bid FROM hits WHERE links
            UNION ALL
            SELECT unnest(device_ids) AS raw, entry_scope AS scope, bid FROM hits WHERE links
            UNION ALL
            SELECT device AS raw, scope, bid FROM extra_linked
        )
    ) WHERE device IS NOT NULL
""".replace("{device}", norm_id("raw"))

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
    """(file, row, raw_scope, device) per device of each row, in a single pass over `scan`; devices
    normalised (`id_or_blank`), so a blank one joins nothing."""
    if device_id and device_ids:
        device = "unnest(list_concat([device_id], device_ids))"
    elif device_ids:
        device = "unnest(device_ids)"
    else:
        device = "device_id"
    # a blank device is '' here (`id_or_blank`): it joins no linked device (those are never blank)
    return (f"SELECT file, row, raw_scope, {id_or_blank('raw_device')} AS device "
            f"FROM (SELECT file, row, raw_scope, {device} AS raw_device FROM ({scan}))")


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

# Retention holds (pipelines/core/holds.py): after matching as usual, a row whose every hit is an
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


# Verification's first look (`pipelines.core.match.may_match`): one streaming scan per dataset counts the
# rows whose email or user id is any entry's, or (events) whose device is a linked one, scopes and holds
# ignored: a superset of the rows `find_matches` would match. `{devices}` is `device_test(...)` or `false`.
SUSPECT_DEVICES = f"""
    CREATE OR REPLACE TEMP TABLE suspect_devices AS
    SELECT DISTINCT device FROM (SELECT {norm_id("device")} AS device FROM maybe_linked) WHERE device IS NOT NULL
"""
COUNT_SUSPECTS = """
    SELECT count(*) FROM ({scan}) AS i
    WHERE i.email IN (SELECT email FROM entries) OR i.user_id IN (SELECT user_id FROM entries) OR {devices}
"""


def device_test(device_id: bool, device_ids: bool) -> str:
    """Whether a row of the identity scan (`i`) carries a device of `suspect_devices`, normalised as
    `device_rows` normalises it; no device column: false."""
    tests = []
    if device_id:
        tests.append(f"{id_or_blank('i.device_id')} IN (SELECT device FROM suspect_devices)")
    if device_ids:
        tests.append(f"list_has_any(list_transform(i.device_ids, lambda x: {id_or_blank('x')}), "
                     "(SELECT coalesce(list(device), []) FROM suspect_devices))")
    return "(" + " OR ".join(tests) + ")" if tests else "false"
