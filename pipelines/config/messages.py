"""One line per configuration error: file, key, what was expected, what was found.

`gdpr-sweep.toml: [sweep] deadline_hours: expected a positive number of hours, got "24h"`. Only the
first problem is reported (fix it and run again); secrets are never echoed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pipelines.config.types import NAME_RE as _NAME_RE

_SECRET_KEYS = {"secret_access_key", "access_key_id"}
_UNKNOWN = ("extra_forbidden", "unexpected_keyword_argument")
_GENERIC = {
    "bool_type": "true or false",
    "string_type": "a string",
    "int_type": "a whole number",
    "float_type": "a number",
    "missing": None,
    "list_type": "an array of tables ([[datasets]])",
    "model_type": "a table",
    "dataclass_type": "a table",
    "dict_type": "a table",
    "too_short": "at least one [[datasets]] table",
    "tuple_type": "an array",
}


def where(loc: tuple[Any, ...]) -> str:
    """`("sweep", "deadline_hours")` -> `[sweep] deadline_hours`; `("datasets", 0, "path")` -> `datasets[0].path`."""
    parts = [p for p in loc if not (isinstance(p, str) and p.startswith("function-"))]
    if not parts:
        return ""
    head, rest = parts[0], parts[1:]
    if head == "datasets" and rest and isinstance(rest[0], int):
        return f"datasets[{rest[0]}]" + "".join(f".{p}" for p in rest[1:])
    if head in ("sweep", "s3", "scan") and rest:
        return f"[{head}] " + ".".join(str(p) for p in rest)
    return ".".join(str(p) for p in parts)


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, int | float):
        text = repr(value)
    elif isinstance(value, dict):
        return "a table"
    elif isinstance(value, list):
        return "an array"
    else:
        text = type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def message(err: dict[str, Any], raw: dict[str, Any] | None = None) -> str:
    """`<key>: <what is wrong>` for one pydantic error; `raw` (the parsed file) names the dataset."""
    loc = tuple(err.get("loc", ()))
    key = where(loc) + _dataset_name(loc, raw)
    kind, msg = err.get("type", ""), str(err.get("msg", ""))
    if kind in _UNKNOWN:
        return f"{key}: unknown key; see README 'Configure' or docs/config.schema.json"
    if kind == "missing":
        return f"{key}: required key is missing"
    if kind == "config" and not msg.startswith("expected "):
        return f"{key}: {msg}" if key else msg  # a rule across keys, worded where it is checked
    if kind == "config":
        expected = msg.removeprefix("expected ")
    elif kind == "literal_error":
        expected = "one of " + str(err.get("ctx", {}).get("expected", "")).replace(" or ", ", ")
    else:
        expected = _GENERIC.get(kind) or msg or "a valid value"
    secret = any(part in _SECRET_KEYS for part in loc)
    shown = "" if secret or "input" not in err else f", got {_shown(err['input'])}"
    return f"{key}: expected {expected}{shown}"


def _dataset_name(loc: tuple[Any, ...], raw: dict[str, Any] | None) -> str:
    """` (events)` for an error inside `datasets[i]` whose table has a valid-looking name."""
    if len(loc) < 2 or loc[0] != "datasets" or not isinstance(loc[1], int) or not isinstance(raw, dict):
        return ""
    tables = raw.get("datasets")
    if not isinstance(tables, list) or loc[1] >= len(tables) or not isinstance(tables[loc[1]], dict):
        return ""
    name = tables[loc[1]].get("name")
    return f" ({name})" if isinstance(name, str) and _NAME_RE.fullmatch(name) else ""


def describe(exc: ValidationError, config_path: Path, raw: dict[str, Any] | None = None) -> str:
    """The one line for the first error of a failed validation of the file at `config_path`."""
    errors = exc.errors(include_url=False)
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{config_path}: {message(dict(errors[0]), raw)}{more}"
