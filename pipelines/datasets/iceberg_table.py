"""Opening a dataset's Iceberg table through its catalog, and what the purge can handle
(pipelines/datasets/iceberg.py; docs/decisions/0281-iceberg-tables.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pipelines.config.iceberg import catalog_properties
from pipelines.config.settings import DatasetConfig, S3Settings
from pipelines.core.errors import ConfigError, SchemaError
from pipelines.datasets.iceberg_files import strip
from pipelines.datasets.objectstore import Url


def load_table(config: DatasetConfig, s3: S3Settings | None = None) -> Any:
    """The dataset's Iceberg table, loaded from its catalog; ConfigError naming the dataset otherwise."""
    from pyiceberg.catalog import load_catalog
    from pyiceberg.exceptions import NoSuchTableError

    assert config.iceberg is not None, "an Iceberg dataset has [datasets.iceberg]"
    settings = config.iceberg
    props = catalog_properties(settings, s3 if config.url else None)
    try:
        catalog = load_catalog(settings.catalog_name, **props)
        return catalog.load_table(settings.table)
    except NoSuchTableError:
        raise ConfigError(f"dataset {config.name!r}: no Iceberg table {settings.table!r} in catalog "
                          f"{settings.catalog_name!r}; check [datasets.iceberg] 'table' and the catalog") from None
    except (ValueError, OSError, ImportError) as exc:  # the message may quote a property value: not repeated
        raise ConfigError(f"dataset {config.name!r}: cannot open the Iceberg catalog {settings.catalog_name!r} "
                          f"({type(exc).__name__}); check [datasets.iceberg]") from None


def open_table(config: DatasetConfig, s3: S3Settings | None = None) -> Any:
    """The table, checked for what the purge supports: one branch (`main`), no delete files, identity
    columns not used by the partition spec, data files under the table location."""
    table = load_table(config, s3)
    where = f"dataset {config.name!r} (Iceberg table {config.iceberg.table!r})"  # type: ignore[union-attr]
    if not _same_location(location(table), config.location):
        raise ConfigError(f"{where}: the catalog puts the table at {location(table)}, 'path' says "
                          f"{config.location}; set 'path' to the table's location")
    others = sorted(name for name in table.metadata.refs if name != "main")
    if others:
        raise ConfigError(f"{where}: branches or tags {others} keep older snapshots (and the rows purged from "
                          "'main'); drop them (pyiceberg: table.manage_snapshots().remove_tag(...) / "
                          "remove_branch(...); Spark: ALTER TABLE ... DROP TAG/BRANCH) before sweeping")
    schema = table.schema()
    for spec in table.metadata.partition_specs:
        for pf in spec.fields:
            source = schema.find_column_name(pf.source_id) or ""
            for role, column in config.identity_columns.items():
                if source == column:
                    raise SchemaError(f"{where}: identity column {column!r} ({role}) is a partition source "
                                      "column; purging by partition is not supported (partition summaries in "
                                      "manifest lists would keep the values)")
    return table


def location(table: Any) -> str:
    return str(table.location()).rstrip("/")


def _same_location(table_location: str, configured: str) -> bool:
    a, b = strip(table_location).rstrip("/"), strip(configured).rstrip("/")
    if "://" in configured:
        return a == b
    return os.path.realpath(a) == os.path.realpath(b)


def reader_path(uri: str) -> Any:
    """What the matcher reads: a local Path (it stats it) or an object URL (DuckDB reads it through s3fs)."""
    if uri.startswith("file://") or "://" not in uri:
        return Path(strip(uri))
    return Url("s3://" + strip(uri))


def relpath(table: Any, uri: str, config: DatasetConfig) -> str:
    root = strip(location(table))
    path = strip(uri)
    if not path.startswith(root + "/"):
        raise ConfigError(f"dataset {config.name!r}: data file {uri} lies outside the table location "
                          f"{location(table)}; the purge cleans and searches the table location only")
    return path[len(root) + 1:]


def current_data_files(table: Any) -> dict[str, Any]:
    """Path -> DataFile of every live file of the current snapshot; SweepError on delete files."""
    snapshot = table.current_snapshot()
    if snapshot is None:
        return {}
    from pyiceberg.manifest import DataFileContent, ManifestContent

    files: dict[str, Any] = {}
    for manifest in snapshot.manifests(table.io):
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
            if manifest.content != ManifestContent.DATA or entry.data_file.content != DataFileContent.DATA:
                raise ConfigError(f"Iceberg table {table.name()!r}: its current snapshot has delete files "
                                  "(merge-on-read); rewrite them into the data files first (Spark: CALL "
                                  "catalog.system.rewrite_data_files(table => '...', options => "
                                  "map('delete-file-threshold', '1'))), then sweep")
            files[entry.data_file.file_path] = entry.data_file
    return dict(sorted(files.items()))
