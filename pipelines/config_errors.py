"""One line per configuration error: file, key, what was expected, what was found.

`gdpr-sweep.toml: [sweep] deadline_hours: expected a positive number of hours, got "24h"`. Only the
first problem is reported (fix it and run again); secrets are never echoed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pipelines.config_types import Expect

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
}


def where(loc: tuple[Any, ...]) -> str:
    """`("sweep", "deadline_hours")` -> `[sweep] deadline_hours`; `("datasets", 0, "path")` -> `datasets[0].path`."""
    parts = [p for p in loc if p not in ("function-after[_consistent()]", "function-before[_object_store_path()]")]
    if not parts:
        return "(file)"
    head, rest = parts[0], parts[1:]
    if head == "datasets" and rest and isinstance(rest[0], int):
        return f"datasets[{rest[0]}]" + "".join(f".{p}" for p in rest[1:])
    if head in ("sweep", "s3") and rest:
        return f"[{head}] " + ".".join(str(p) for p in rest)
    return ".".join(str(p) for p in parts)


def _expect(loc: tuple[Any, ...]) -> str | None:
    """The `Expect` phrase annotated on the field at `loc`, if any."""
    from pipelines.settings import DatasetConfig, S3Settings, SweepSettings

    section = {"sweep": SweepSettings, "s3": S3Settings, "datasets": DatasetConfig}.get(loc[0]) if loc else None
    name = loc[-1] if loc else None
    if section is None or not isinstance(name, str):
        return None
    info = section.__pydantic_fields__.get(name)  # type: ignore[attr-defined]
    for meta in getattr(info, "metadata", ()):
        if isinstance(meta, Expect):
            return meta.phrase
    return None


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


def message(err: dict[str, Any]) -> str:
    """`<key>: <what is wrong>` for one pydantic error."""
    loc = tuple(err.get("loc", ()))
    key = where(loc)
    kind = err.get("type", "")
    if kind in _UNKNOWN:
        return f"{key}: unknown key; see README 'Configure' or docs/config.schema.json"
    if kind == "missing":
        return f"{key}: required key is missing"
    if kind == "config" and not (loc and isinstance(loc[-1], str) and _expect(loc)):
        return f"{key}: {err.get('msg')}"  # a rule across keys, worded where it is checked
    if kind == "config":
        expected = err.get("msg", "").removeprefix("expected ")
    elif kind == "literal_error":
        expected = "one of " + str(err.get("ctx", {}).get("expected", "")).replace(" or ", ", ")
    else:
        expected = _expect(loc) or _GENERIC.get(kind) or err.get("msg", "a valid value")
    shown = "" if (loc and loc[-1] in _SECRET_KEYS) or "input" not in err else f", got {_shown(err['input'])}"
    return f"{key}: expected {expected}{shown}"


def describe(exc: ValidationError, config_path: Path, raw: dict[str, Any] | None = None) -> str:
    """The one line for the first error of a failed validation of the file at `config_path`."""
    errors = exc.errors(include_url=False)
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{config_path}: {message(errors[0])}{more}"
