"""Value types of the configuration file: each says what it accepts and, for errors, what it expected.

A leaf module of `pipelines/config/settings.py`. Every type is strict about what TOML gives it (`"24"` is
not a number, `1` is not `true`, `true` is not a number) and its check raises the phrase of the
one-line error (`[sweep] deadline_hours: expected a positive number of hours, ..., got "24h"`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo, WithJsonSchema
from pydantic_core import PydanticCustomError

S3_SCHEME = "s3://"


def _fail(expect: str) -> PydanticCustomError:
    return PydanticCustomError("config", "expected {expect}", {"expect": expect})


def is_url_path(path: Path) -> bool:
    """A `Path` made from an object-store URL (`s3://b/p` becomes `s3:/b/p`): never resolved locally."""
    return str(path).startswith("s3:/")


def object_store_url(table: dict[str, Any], key: str) -> str | None:
    """The `s3://` URL at `table[key]` without a trailing slash, or None if the value is not one."""
    value = table.get(key)
    if not isinstance(value, str) or not value.startswith(S3_SCHEME):
        return None
    if not value[len(S3_SCHEME):].split("/", 1)[0] or any(ch.isspace() for ch in value):
        raise PydanticCustomError("config", "'{key}' must look like s3://bucket/prefix", {"key": key})
    return value.rstrip("/")


def _local_path(value: Any, info: ValidationInfo) -> Path:
    """A path string from the file, resolved against the file's folder (context `base`); a Path
    object from code is kept as given. abspath, not resolve(): a dataset path is a symlink."""
    if isinstance(value, str) and value and "\x00" not in value:
        value = Path(value)
    if not isinstance(value, Path):
        raise _fail("a path string")
    base = (info.context or {}).get("base")
    if base is not None and not value.is_absolute() and not is_url_path(value):
        return Path(os.path.abspath(Path(base) / value))
    return value


def _column(value: Any) -> str:
    if not isinstance(value, str) or not value or any(not part.strip() for part in value.split(".")):
        raise _fail("a column name or dotted path like 'User.Email'")
    return value


def _positive_hours(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 720:
        raise _fail("a positive number of hours, at most 720 (30 days)")
    return float(value)


_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)", re.IGNORECASE)
_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def _memory_limit(value: Any) -> str:
    match = _SIZE_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None or float(match.group(1)) * _UNITS[match.group(2).upper()] < 256 * 10**6:
        raise _fail("a size like '1GB' or '512MiB', at least 256MB (DuckDB fails below)")
    return value.strip()


def _s3_url(value: Any) -> str:
    if (not isinstance(value, str) or not value.startswith(S3_SCHEME)
            or not value[len(S3_SCHEME):].split("/", 1)[0] or any(ch.isspace() for ch in value)):
        raise _fail("an object-store URL like 's3://bucket/prefix'")
    return value.rstrip("/")


def _http_url(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
        raise _fail("an http(s) URL like 'http://127.0.0.1:9000'")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail("a non-empty string")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail("true or false")
    return value


def _workers(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 256:
        raise _fail("a whole number from 1 to 256")
    return value


NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def _name(value: Any) -> str:
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise _fail("a name of 1-64 letters, digits, '_' or '-', starting with a letter or digit")
    return value


def _no_space(value: Any) -> str:
    if not isinstance(value, str) or not value or any(ch.isspace() for ch in value):
        raise _fail("a non-empty string without spaces, like 'tcp://host:8786'")
    return value


def _schema(json_type: str, description: str, **constraints: Any) -> WithJsonSchema:
    """The type's JSON Schema (docs/config.schema.json), stated next to the check that enforces it."""
    return WithJsonSchema({"type": json_type, "description": description, **constraints})


# Each type: the Python type, the check that gives the one-line error, and what the JSON Schema says.
LocalPath = Annotated[Path, BeforeValidator(_local_path), _schema(
    "string", "A local path; relative paths are relative to the configuration file.", minLength=1)]
Column = Annotated[str, BeforeValidator(_column), _schema(
    "string", "A column name, or a dotted path into structs ('User.Email').",
    pattern=r"^[^.]*[^.\s][^.]*(\.[^.]*[^.\s][^.]*)*$")]
Hours = Annotated[float, BeforeValidator(_positive_hours), _schema(
    "number", "Hours, more than 0, at most 720.", exclusiveMinimum=0, maximum=720)]
MemoryLimit = Annotated[str, BeforeValidator(_memory_limit), _schema(
    "string", "A size like '1GB' or '512MiB', at least 256MB.", pattern=r"^\d+(\.\d+)?\s*([KkMmGgTt][Ii]?)?[Bb]$")]
S3Url = Annotated[str, BeforeValidator(_s3_url), _schema(
    "string", "An object-store URL like 's3://bucket/prefix'.", pattern=r"^s3://[^/\s]+(/\S*)?$")]
HttpUrl = Annotated[str, BeforeValidator(_http_url), _schema(
    "string", "An http(s) URL like 'http://127.0.0.1:9000'.", pattern=r"^https?://[^\s/]+(/\S*)?$")]
Text = Annotated[str, BeforeValidator(_text), _schema("string", "A non-empty string.", pattern=r"\S")]
Flag = Annotated[bool, BeforeValidator(_flag), _schema("boolean", "true or false.")]
Workers = Annotated[int, BeforeValidator(_workers), _schema(
    "integer", "A whole number from 1 to 256.", minimum=1, maximum=256)]
Name = Annotated[str, BeforeValidator(_name), _schema(
    "string", "1-64 letters, digits, '_' or '-', starting with a letter or digit.", pattern=f"^{NAME_RE.pattern}$")]
NoSpace = Annotated[str, BeforeValidator(_no_space), _schema(
    "string", "A non-empty string without spaces.", pattern=r"^\S+$")]
