"""`[datasets.iceberg]`: where an Iceberg table (`format = "iceberg"`) is registered and how it is reached.

A leaf of `pipelines/config/settings.py` (like `scan_settings.py`). The embedded catalog is pyiceberg's SQL
catalog on a local SQLite file (`catalog_db`); `catalog` hands pyiceberg any other catalog's properties
instead (REST, Glue, Hive, ...). The dataset's `path` is the table's location (where its `data/` and
`metadata/` folders are): the sweep deletes unreferenced files there, so it must be the table's own. Catalog property values can be secrets (`credential`, `token`, keys): they are
never printed (`__repr__`) and never logged. docs/decisions/0281-iceberg-tables.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ConfigDict, field_validator, model_validator
from pydantic.dataclasses import dataclass
from pydantic_core import PydanticCustomError

from pipelines.config.types import Hours, LocalPath, Name, Text

_MODEL = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_default=True)


@dataclass(frozen=True, config=_MODEL, kw_only=True)
class IcebergSettings:
    """`[datasets.iceberg]`: the Iceberg table of a dataset with `format = "iceberg"` and its catalog: the
    SQLite file of pyiceberg's SQL catalog (`catalog_db`) or any other catalog's properties (`catalog`).
    The dataset's `path` is the table's location (a local folder or `s3://bucket/prefix`)."""

    table: Text
    """The table's identifier in the catalog, `namespace.table` (`lake.events`)."""
    catalog_name: Name = "default"
    """The catalog's name as the table was registered under it (pyiceberg's SQL catalog stores it per row)."""
    catalog_db: LocalPath | None = None
    """The SQLite file of pyiceberg's SQL catalog (the embedded catalog; a local file, also for a table on
    object storage). Outside the table's location."""
    catalog: dict[str, Text] | None = None
    """Any catalog pyiceberg supports, by its properties (`type = "rest"`, `uri`, `credential`, `warehouse`,
    `s3.endpoint`, ...), instead of the SQLite file. `[s3]` fills the `s3.*` properties left unset.
    Values are never printed or logged."""
    orphan_grace_hours: Hours = 24.0
    """Files under the table location that no metadata this run read has ever named (a concurrent
    writer's uncommitted files, or old leftovers) are deleted only once older than this."""

    @field_validator("table")
    @classmethod
    def _identifier(cls, value: str) -> str:
        parts = value.split(".")
        if len(parts) < 2 or any(not p.strip() for p in parts):
            raise PydanticCustomError("config", "expected a table identifier 'namespace.table'")
        return value

    @model_validator(mode="after")
    def _one_catalog(self) -> IcebergSettings:
        if (self.catalog_db is None) == (self.catalog is None):
            raise PydanticCustomError("config", "name the table's catalog: either 'catalog_db' (the SQLite file "
                                                "of pyiceberg's SQL catalog) or 'catalog' (its properties)")
        return self

    def __repr__(self) -> str:  # catalog properties may hold credentials
        return (f"IcebergSettings(table={self.table!r}, catalog_name={self.catalog_name!r}, "
                f"catalog_db={self.catalog_db!r}, catalog={sorted(self.catalog or {})!r})")


def catalog_properties(settings: IcebergSettings, s3: Any = None) -> dict[str, str]:
    """The pyiceberg catalog properties; `s3` (S3Settings) fills the `s3.*` FileIO properties the
    catalog's own leave unset."""
    if settings.catalog is not None:
        props = dict(settings.catalog)
    else:
        assert settings.catalog_db is not None
        props = {"type": "sql", "uri": f"sqlite:///{Path(settings.catalog_db).absolute()}"}
    if s3 is not None:
        for key, value in (("s3.endpoint", s3.endpoint_url), ("s3.region", s3.region),
                           ("s3.access-key-id", s3.access_key_id), ("s3.secret-access-key", s3.secret_access_key)):
            if value:
                props.setdefault(key, value)
    return props
