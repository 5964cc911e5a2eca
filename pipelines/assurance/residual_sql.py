"""The residual scan's statements and the normalisation they call (pipelines/assurance/residual.py).

Two queries per batch of string values (`leaves`: col, row, scope, value):

- `EMAIL_HITS` on the values that may hold an address (`mailish`, prefiltered by `prefilter_pattern`):
  percent-decode (twice, for `%2540`), fold the text as emails are folded (NFKC and lower case:
  `pipelines.core.identity`), extract every email-shaped token with one regular expression, and join the
  tokens against the entries' emails. A token glued to a query parameter (`e=anna@...`) or a
  path (`/anna@...`) also yields the part after the first and after the last such separator, so
  `?e=anna@example.com` finds `anna@example.com` while `hanna@example.com` and `anna@example.co`
  stay different addresses.
- `ID_HITS` on every value: the whole value, trimmed as identities are trimmed, against the
  entries' user ids and linked device ids.

A row counts for an entry when the entry covers the row's scope (`scope` is the normalised data
scope, NULL in folders that are no dataset, where only entries for every scope apply).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import duckdb
import pyarrow as pa

from pipelines.core.identity import data_scope_key, id_key, lower_simple

FOLD_FN, ID_FN = "gdpr_residual_fold", "gdpr_residual_id"
_LOCAL = r"\pL\pN\pM._+'!#$&*/=?^`{|}~-"
TOKEN = rf"[{_LOCAL}]+@[\pL\pN\pM.-]+"
"""An email-shaped token: a local part of the characters addresses use, `@`, a domain."""
_SEPARATORS = r"=?/&#!$*^{|}~'`"
FIRST_SEP = rf"^[^@{_SEPARATORS}]*[{_SEPARATORS}]"
LAST_SEP = rf"^[^@]*[{_SEPARATORS}]"


def prefilter_pattern() -> str:
    """Values worth tokenising: an `@` (also fullwidth or small form), or one percent-encoded."""
    return "@|%40|%2540|\uff20|\ufe6b"


def _fold_expr(text: str) -> str:
    return f"(CASE WHEN strlen({text}) = length({text}) THEN lower({text}) ELSE {FOLD_FN}({text}) END)"


def _id_expr(text: str) -> str:
    """The trimmed form of a whole value; only values that could need trimming leave DuckDB."""
    return (f"(CASE WHEN strlen({text}) = length({text}) AND ord({text}[1]) > 32 AND ord({text}[-1]) > 32 "
            f"THEN {text} ELSE {ID_FN}({text}) END)")


EMAIL_HITS = f"""
WITH decoded AS (
    SELECT col, "row", scope,
           CASE WHEN contains(value, '%') THEN url_decode(url_decode(value)) ELSE value END AS t
    FROM mailish),
folded AS (SELECT col, "row", scope, {_fold_expr("t")} AS t FROM decoded),
tokens AS (SELECT col, "row", scope, unnest(regexp_extract_all(t, $token)) AS tok FROM folded),
candidates AS (
    SELECT DISTINCT col, "row", scope,
           trim(unnest([tok, regexp_replace(tok, $first_sep, ''), regexp_replace(tok, $last_sep, '')]), '.')
               AS email
    FROM tokens)
SELECT c.col, 'email' AS match, e.bid, count(DISTINCT c."row") AS n
FROM candidates AS c JOIN entry_emails AS e ON c.email = e.email
WHERE e.scope IS NULL OR e.scope = c.scope
GROUP BY ALL
"""

EMAIL_PARAMS = {"token": TOKEN, "first_sep": FIRST_SEP, "last_sep": LAST_SEP}

ID_HITS = f"""
SELECT l.col, i.kind AS match, i.bid, count(DISTINCT l."row") AS n
FROM leaves AS l JOIN entry_ids AS i ON {_id_expr("l.value")} = i.id
WHERE i.scope IS NULL OR i.scope = l.scope
GROUP BY ALL
"""


def fold_text(text: str) -> str:
    """A whole text folded the way emails are (NFKC, then simple lower case), so every address in it
    appears in its comparison form."""
    return lower_simple(unicodedata.normalize("NFKC", text))


def id_form(value: str) -> str | None:
    """A whole value as user ids and device ids compare: trimmed; None when blank (the one
    normalisation, `pipelines.core.identity.id_key`: Unicode whitespace, zero-width characters, BOM)."""
    return id_key(value)


def _vectorised(fn: Callable[[str], str | None]) -> Callable[[pa.Array], pa.Array]:
    def run(values: pa.Array) -> pa.Array:
        return pa.array([None if v is None else fn(v) for v in values.to_pylist()], pa.string())
    return run


def register(con: duckdb.DuckDBPyConnection) -> None:
    """The Python definitions of folding and trimming, for the (rare) values DuckDB cannot do alone."""
    for name, fn in ((FOLD_FN, fold_text), (ID_FN, id_form)):
        con.create_function(name, _vectorised(fn), [duckdb.sqltype("VARCHAR")],  # type: ignore[call-overload]
                            duckdb.sqltype("VARCHAR"), type="arrow", null_handling="special", side_effects=False)


def scope_keys(values: pa.Array) -> pa.Array:
    """Data scopes as the sweep compares them (`pipelines.core.identity.data_scope_key`), per row."""
    encoded = values.cast(pa.string()).dictionary_encode()
    keys = pa.array([data_scope_key(v) for v in encoded.dictionary.to_pylist()], pa.string())
    default = data_scope_key(None)
    indices = encoded.indices.fill_null(len(keys))
    return pa.concat_arrays([keys, pa.array([default], pa.string())]).take(indices)

