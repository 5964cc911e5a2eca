"""CrossEngage command events read out of an events snapshot (§2, "Events as commands").

Rows of an events dataset whose `event_name` column says `Blacklisted` or `Whitelisted` set the
blacklist status of the person they carry, as of the row's `event_time`. This module only reads
them, as CrossEngage event-feed items (`id`, `email`, `businessUnit`, `event`, `timestamp`); the
registry validates and applies them, latest action winning (pipelines/registry/registry.py).

Addressing, as in CrossEngage: a row with a user id addresses that user in every scope (an external
id names one person across business units); a row with only an email (a lead) addresses that
email within the row's scope when it has one, else in every scope. Data scopes are trimmed and
lower-cased, as they are compared (docs/decisions/0103-registry-semantics.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipelines.config.settings import DatasetConfig
from pipelines.core import sql
from pipelines.core.errors import ConfigError, SchemaError
from pipelines.core.match import check_schema, connect, resolve_column
from pipelines.core.schemas import read_schema
from pipelines.datasets.sweep import snapshot_files

COMMAND_NAMES = ("Blacklisted", "Whitelisted")


@dataclass(frozen=True)
class CommandBatch:
    """The command events of one dataset, in file and row order."""

    dataset: str
    items: list[dict[str, Any]] = field(default_factory=list)
    """CrossEngage feed items, ready for `Registry.apply_events`."""
    origins: list[str] = field(default_factory=list)
    """Where each item came from (`file row N`), for error messages; never personal data."""
    files: int = 0


def command_files(config: DatasetConfig) -> list[Path]:
    """The snapshot's files in local folders: new raw files in `source`, then the current cleaned files
    (same name: raw wins). `Dataset.command_files` is the way in for any kind (pipelines/datasets/base.py)."""
    return snapshot_files(config)


def read_commands(config: DatasetConfig, files: Sequence[Path] | None = None,
                  con: duckdb.DuckDBPyConnection | None = None) -> CommandBatch:
    """Read the `Blacklisted` / `Whitelisted` rows of an events dataset (none when `event_name` is unset)."""
    if not config.event_name:
        return CommandBatch(config.name)
    if con is None:
        with connect() as own:
            return read_commands(config, files, own)
    if config.kind != "events":
        raise ConfigError(f"dataset {config.name!r}: 'event_name' is for events datasets only")
    paths = list(files) if files is not None else command_files(config)
    items: list[dict[str, Any]] = []
    origins: list[str] = []
    for path in paths:
        table = con.sql(_command_sql(config, path), params={"file": str(path), "names": list(COMMAND_NAMES)})
        rel = _relative(config, path)
        for row in table.to_arrow_table().to_pylist():
            items.append(_feed_item(row))
            origins.append(f"dataset {config.name!r} file {rel} row {row['row']}")
    return CommandBatch(config.name, items, origins, len(paths))


def _relative(config: DatasetConfig, path: Path) -> str:
    for folder in (config.source, config.path):
        if folder is not None and folder in path.parents:
            return str(path.relative_to(folder))
    return path.name


def _command_sql(config: DatasetConfig, path: Path) -> str:
    where = f"dataset {config.name!r}, file {path}"
    resolved = check_schema(config, path)  # the identity columns, as the sweep checks them
    schema = read_schema(path)
    name = _checked(schema, config.event_name or "", where, "event_name", text_only=True)
    time = _checked(schema, config.event_time, where, "event_time") if config.event_time else "NULL"
    email = sql.column_ref(resolved["email"]) if "email" in resolved else "NULL"
    user_id = sql.column_ref(resolved["user_id"]) if "user_id" in resolved else "NULL"
    scope = sql.column_ref(resolved["scope"]) if "scope" in resolved else "NULL"
    return f"""
        SELECT t.file_row_number AS row, CAST({name} AS VARCHAR) AS event,
               CAST({email} AS VARCHAR) AS email, CAST({user_id} AS VARCHAR) AS user_id,
               {sql.scope_text(scope)} AS scope,
               {time} AS at
        FROM read_parquet($file, file_row_number = true) AS t
        WHERE CAST({name} AS VARCHAR) IN (SELECT unnest($names))
        ORDER BY t.file_row_number"""


def _checked(schema: pa.Schema, dotted: str, where: str, key: str, text_only: bool = False) -> str:
    segments = resolve_column(schema, dotted, where)
    leaf: pa.DataType = schema.field(segments[0][0]).type
    for part, in_map in segments[1:]:
        leaf = leaf.item_type if in_map else leaf.field(part).type
    if pa.types.is_dictionary(leaf):
        leaf = leaf.value_type
    text = pa.types.is_string(leaf) or pa.types.is_large_string(leaf) or pa.types.is_string_view(leaf)
    if not text and (text_only or not pa.types.is_timestamp(leaf)):
        expected = "a string" if text_only else "a timestamp or ISO-8601 string"
        raise SchemaError(f"{where}: column {dotted!r} ({key}) has type {leaf}, expected {expected}")
    return sql.column_ref(segments)


def _feed_item(row: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {"event": row["event"]}
    if row["user_id"] is not None:
        item["id"] = row["user_id"]
    if row["email"] is not None:
        item["email"] = row["email"]
        if row["user_id"] is None and row["scope"] is not None:
            item["businessUnit"] = row["scope"]
    at = row["at"]
    if isinstance(at, datetime):
        at = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
    if at is not None:
        item["timestamp"] = at
    return item
