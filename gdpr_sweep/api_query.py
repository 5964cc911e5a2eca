"""Query parameters of the Optimizely list: `$filter` (a small OData subset), `$orderBy`, `$skip`,
`$top`, and the checks every path applies to its query string and ids (docs/decisions/0006)."""

from __future__ import annotations

import re

from fastapi import Request

from pipelines.core.errors import InputError, NotFound
from pipelines.registry.registry import FIELDS

MAX_FILTER_LENGTH = 2000
_PARAM_NAME_RE = re.compile(r"\$?[A-Za-z_]{1,40}")
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


_FILTER_FIELDS = {"Email": "email", "Scope": "scope", "UserId": "user_id", "Source": "source"}
_TOKEN_RE = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<bad>\S))")


def parse_filter(text: str) -> dict[str, str]:
    """`Email eq 'x' and Scope eq 'y'` -> {"email": "x", "scope": "y"}; InputError on anything else.

    Clauses: `Email|Scope|UserId|Source eq '<text>'`, `Scope eq null` (entries for every scope),
    `CreatedAt gt|lt '<ISO time>'`, joined by `and`.
    Quotes inside a literal are doubled (`'o''brien@example.com'`). Field names and operators are
    matched case-insensitively; values exactly.
    """
    if len(text) > MAX_FILTER_LENGTH:
        raise InputError(f"$filter: longer than {MAX_FILTER_LENGTH} characters")
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:  # only trailing whitespace is left
            break
        pos = m.end()
        kind = m.lastgroup or "bad"
        tokens.append((kind, m.group(kind)))
    usage = ("$filter: use clauses like Email eq 'x', Scope eq 'y', UserId eq 'z', Source eq 'api', "
             "CreatedAt gt '2026-11-01T00:00:00Z', joined by 'and'")
    if not tokens:
        raise InputError(f"{usage} (got an empty filter)")
    fields = {name.lower(): name for name in (*_FILTER_FIELDS, "CreatedAt")}
    out: dict[str, str] = {}
    i = 0
    while True:
        clause = tokens[i:i + 3]
        if len(clause) == 3 and clause[2] == ("word", "null") and clause[0][1].lower() == "scope":
            clause[2] = ("str", "'*'")  # `Scope eq null`: the entries for every scope
        if len(clause) < 3 or clause[0][0] != "word" or clause[1][0] != "word" or clause[2][0] != "str":
            raise InputError(f"{usage} (clause {len(out) + 1} is not of that form)")
        field = fields.get(clause[0][1].lower())
        op = clause[1][1].lower()
        value = clause[2][1][1:-1].replace("''", "'")
        if field is None:
            raise InputError(f"$filter: unknown field {clause[0][1][:40]!r}; use one of "
                             f"{', '.join(fields.values())}")
        if field == "CreatedAt":
            if op not in ("gt", "lt"):
                raise InputError("$filter: CreatedAt supports 'gt' and 'lt'")
            key = "created_after" if op == "gt" else "created_before"
        else:
            if op != "eq":
                raise InputError(f"$filter: {field} supports 'eq' only")
            key = _FILTER_FIELDS[field]
        if not value:
            raise InputError(f"$filter: {field} needs a non-empty value")
        if key in out:
            raise InputError(f"$filter: {field} {op} appears twice")
        out[key] = value
        i += 3
        if i == len(tokens):
            return out
        if tokens[i][0] != "word" or tokens[i][1].lower() != "and":
            raise InputError(f"{usage} (only 'and' may join clauses)")
        i += 1


def parse_order_by(text: str) -> tuple[str, bool]:
    """`Email desc` -> ("Email", True). One field of FIELDS, optional `asc` / `desc`."""
    parts = text.split()
    names = {name.lower(): name for name in FIELDS}
    if not 1 <= len(parts) <= 2 or parts[0].lower() not in names or (
            len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
        raise InputError(f"$orderBy: use '<field> [asc|desc]' with a field of {', '.join(FIELDS)}")
    return names[parts[0].lower()], len(parts) == 2 and parts[1].lower() == "desc"


def non_negative_int(name: str, raw: str | None, default: int) -> int:
    if raw is None:
        return default
    if not raw.strip().isdigit() or len(raw) > 9:
        raise InputError(f"{name}: expected a non-negative integer")
    return int(raw)


def reject_unknown_params(request: Request, allowed: tuple[str, ...] = ()) -> None:
    unknown = sorted({k for k in request.query_params if k not in allowed})
    if unknown:
        # name plain parameter names back (a typo like `$fitler`); never anything that could be data
        shown = ", ".join(repr(k) if _PARAM_NAME_RE.fullmatch(k) else "(unnamed)" for k in unknown[:5])
        hint = f"; allowed: {', '.join(allowed)}" if allowed else "; this path takes none"
        raise InputError(f"unknown query parameter(s) {shown}{hint}")
    repeated = sorted({k for k in allowed if len(request.query_params.getlist(k)) > 1})
    if repeated:
        raise InputError(f"query parameter(s) given more than once: {', '.join(repeated)}")


def checked_id(blacklist_id: str) -> str:
    """BlacklistIds are UUIDs; anything else cannot exist (and is not echoed back)."""
    if not _UUID_RE.fullmatch(blacklist_id):
        raise NotFound("no blacklist entry with that id (a BlacklistId is a UUID)")
    return blacklist_id.lower()


