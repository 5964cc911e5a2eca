"""Value types of the configuration file: each says what it accepts and, for errors, what it expected.

A leaf module of `pipelines/settings.py`. Every type is strict about what TOML gives it (`"24"` is
not a number, `1` is not `true`) and carries an `Expect` phrase, so an error reads
`[sweep] deadline_hours: expected a positive number of hours, got "24h"`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, Strict, StrictBool, ValidationInfo
from pydantic_core import PydanticCustomError

S3_SCHEME = "s3://"


@dataclass(frozen=True)
class Expect:
    """Annotation: what a key expects, in words, for the one-line error."""

    phrase: str


def _fail(expect: str) -> PydanticCustomError:
    return PydanticCustomError("config", "expected {expect}", {"expect": expect})


def is_url_path(path: Path) -> bool:
    """A `Path` made from an object-store URL (`s3://b/p` becomes `s3:/b/p`): never resolved locally."""
    return str(path).startswith("s3:/")


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


LocalPath = Annotated[Path, BeforeValidator(_local_path), Expect("a path string")]
"""A local folder or file; relative paths are relative to the configuration file."""
Column = Annotated[str, BeforeValidator(_column), Expect("a column name or dotted path like 'User.Email'")]
Hours = Annotated[float, BeforeValidator(_positive_hours), Expect("a positive number of hours")]
MemoryLimit = Annotated[str, BeforeValidator(_memory_limit), Expect("a size like '1GB'")]
S3Url = Annotated[str, BeforeValidator(_s3_url), Expect("an object-store URL like 's3://bucket/prefix'")]
HttpUrl = Annotated[str, BeforeValidator(_http_url), Expect("an http(s) URL")]
Text = Annotated[str, BeforeValidator(_text), Expect("a non-empty string")]
Flag = Annotated[StrictBool, Expect("true or false")]
Workers = Annotated[int, Strict(), Field(ge=1, le=256), Expect("a whole number from 1 to 256")]
Name = Annotated[str, Strict(), Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"),
                 Expect("1-64 letters, digits, '_' or '-', starting with a letter or digit")]
NoSpace = Annotated[str, Strict(), Field(min_length=1, pattern=r"^\S+$"),
                    Expect("a non-empty string without spaces")]
