"""The one typed settings object, loaded once at the edge (CLI, flow parameter) and passed down.

The configuration file's keys are the fields below (pydantic dataclasses: typed, range-checked,
unknown keys refused); their docstrings are the documentation and the descriptions of the file's
JSON Schema (docs/config.schema.json, `gdpr-sweep config schema`). To add a `[sweep]` key,
add one field with a type from `pipelines/config/types.py` (or a plain strict type), a default and a
docstring to `SweepSettings`; it is then read, checked, documented in the schema and available as
`settings.<key>`. Relative paths are resolved against the folder of the configuration file.
Errors: one line naming file, key and expectation (`pipelines/config/messages.py`); rules on where the
configured locations may lie: `pipelines/config/paths.py` (`LOCATION_CHECKS`).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator
from pydantic.dataclasses import dataclass
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from pipelines.config.iceberg import IcebergSettings
from pipelines.config.messages import describe
from pipelines.config.paths import check_locations
from pipelines.config.scan_settings import ScanSettings
from pipelines.config.types import (
    Column,
    Flag,
    Hours,
    HttpUrl,
    LocalPath,
    MemoryLimit,
    Name,
    NoSpace,
    S3Url,
    Text,
    Workers,
    object_store_url,
)
from pipelines.core.errors import ConfigError

DatasetKind = Literal["profiles", "events"]
DatasetFormat = Literal["parquet", "delta", "iceberg"]
TaskRunner = Literal["local", "dask"]
_COLUMN_KEYS = ("email", "user_id", "device_id", "device_ids", "scope")
_MODEL = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_default=True)


@dataclass(frozen=True, config=_MODEL, kw_only=True)
class S3Settings:
    """`[s3]`: how to reach S3-compatible object storage. Every key is optional; what is unset comes from
    the standard AWS variables and files (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    `AWS_REGION`, `AWS_PROFILE`, ~/.aws/...), as with any AWS tool."""

    endpoint_url: HttpUrl | None = None
    """Endpoint of an S3-compatible service (MinIO, Ceph, moto: `http://127.0.0.1:9000`); unset means AWS."""
    region: Text | None = None
    """Region name (`eu-central-1`)."""
    access_key_id: Text | None = None
    """Access key id; prefer `AWS_ACCESS_KEY_ID` or a profile over putting keys in the file."""
    secret_access_key: Text | None = None
    """Secret access key; prefer `AWS_SECRET_ACCESS_KEY` or a profile over putting keys in the file."""

    def __repr__(self) -> str:  # never print the secret
        return f"S3Settings(endpoint_url={self.endpoint_url!r}, region={self.region!r})"


@dataclass(frozen=True, config=_MODEL)
class DatasetConfig:
    """`[[datasets]]`: one managed dataset, a folder of Parquet files (or a Delta table), and where its
    identities are."""

    name: Name
    """Unique name, used in reports and file names (letters, digits, `_`, `-`)."""
    kind: DatasetKind
    """`profiles` (rule 1; their device ids link devices) or `events` (rules 2 and 3)."""
    path: LocalPath
    """The cleaned dataset analysts query: a folder of `*.parquet` files (kept as a symlink to the current
    version), or an object-store prefix `s3://bucket/prefix`."""
    source: LocalPath | None = None
    """Optional folder where raw snapshots land; new or changed files there are taken in by the sweep."""
    email: Column | None = None
    """Column holding the email; nested paths with dots (`Info.Email`, `User.Email`)."""
    user_id: Column | None = None
    """Column holding the external user id (CrossEngage `id`)."""
    device_id: Column | None = None
    """Column holding one device id per row (events' `DeviceId`)."""
    device_ids: Column | None = None
    """List column holding several device ids per row (profiles' `DeviceIds`)."""
    scope: Column | None = None
    """Column holding the scope; without one, every row belongs to `DefaultScope`."""
    delete_raw: Flag | None = None
    """Delete consumed raw snapshot files after a successful run; unset means `[sweep] delete_raw`."""
    event_name: Column | None = None
    """Events only: column with the event name. Rows named `Blacklisted` / `Whitelisted` are commands
    (CrossEngage) that set the blacklist status before matching. Unset: the dataset carries no commands."""
    event_time: Column | None = None
    """Events only: column with the event's time (timestamp, or ISO-8601 text), so the latest action wins;
    without it a command counts as happening when the sweep reads it."""
    format: DatasetFormat = "parquet"
    """`parquet` (a folder of Parquet files, versioned by the sweep), `delta` (a Delta Lake table, purged
    with its own delete, then vacuumed and its log checkpointed and cleaned; docs/decisions/0009) or
    `iceberg` (an Iceberg table, `[datasets.iceberg]`; `path` is the table's location; purged by a
    copy-on-write commit, then old snapshots expired and unreferenced files deleted; docs/decisions/0281)."""
    iceberg: IcebergSettings | None = None
    """`[datasets.iceberg]`: the table and its catalog, for `format = "iceberg"` (pipelines/config/iceberg.py)."""
    url: SkipJsonSchema[str | None] = None
    """Not a file key: the object-store location when `path` was given as `s3://...`; then `path` only
    names it for display and the dataset is read and written through `[s3]` (pipelines/datasets/s3dataset.py)."""
    source_url: SkipJsonSchema[str | None] = None
    """Not a file key: the object-store prefix where raw snapshots land, when `source` was given as
    `s3://...` (for an object-store dataset); new or changed objects there are taken in as from a folder."""

    @model_validator(mode="before")
    @classmethod
    def _object_store_urls(cls, data: Any, info: ValidationInfo) -> Any:
        """`path = "s3://..."` sets `url`, `source = "s3://..."` sets `source_url` (a Path would fold
        `s3://` into `s3:/`)."""
        if not isinstance(data, dict):
            return data
        if info.context is not None:  # from the file (code may pass both forms)
            for key in ("url", "source_url"):
                if key in data:
                    given_as = "path" if key == "url" else "source"
                    raise PydanticCustomError("config", f"'{key}' is not a key of the file; give 's3://...' "
                                                        f"as '{given_as}'")
        data = dict(data)
        url = object_store_url(data, "path")
        if url:
            data.update(url=url, path=Path(url))
        source_url = object_store_url(data, "source")
        if source_url:
            data.update(source_url=source_url, source=None)
        return data

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> DatasetConfig:
        """Rules across keys, checked on the file's tables (code and tests may build partial configs)."""
        if info.context is None:
            return self
        if not self.email and not self.user_id:
            raise PydanticCustomError("config", "configure at least one of 'email' or 'user_id'")
        if (self.event_name or self.event_time) and self.kind != "events":
            raise PydanticCustomError("config", "'event_name' and 'event_time' are for events datasets only")
        if self.event_time and not self.event_name:
            raise PydanticCustomError("config", "'event_time' needs 'event_name' (the column naming "
                                                "Blacklisted / Whitelisted)")
        if self.source is not None and self.url:
            raise PydanticCustomError("config", "'source' of an object-store dataset must be an object-store "
                                                "prefix too (s3://bucket/prefix)")
        if self.source_url and not self.url:
            raise PydanticCustomError("config", "an object-store 'source' needs an object-store 'path' "
                                                "(s3://bucket/prefix)")
        if (self.source is not None or self.source_url) and self.format in ("delta", "iceberg"):
            raise PydanticCustomError("config", "'source' is not supported for a Delta or Iceberg table; the "
                                                "sweep purges the table in place")
        if (self.format == "iceberg") != (self.iceberg is not None):
            raise PydanticCustomError("config", "an Iceberg dataset needs both 'format = \"iceberg\"' and a "
                                                "[datasets.iceberg] table naming its 'table'")
        db = self.iceberg.catalog_db if self.iceberg is not None else None
        if db is not None and not self.url and Path(os.path.abspath(db)).is_relative_to(os.path.abspath(self.path)):
            raise PydanticCustomError("config", "'catalog_db' must lie outside the table's location ('path'): "
                                                "the sweep deletes files there that the table does not reference")
        return self

    @property
    def location(self) -> str:
        """Where the dataset lives: its URL on object storage, else its local path."""
        return self.url or str(self.path)

    @property
    def identity_columns(self) -> dict[str, str]:
        """Configured identity columns by role (`email`, `user_id`, ...)."""
        return {key: getattr(self, key) for key in _COLUMN_KEYS if getattr(self, key)}

    @property
    def device_columns(self) -> tuple[str, ...]:
        return tuple(c for c in (self.device_id, self.device_ids) if c)


@dataclass(frozen=True, config=_MODEL, kw_only=True)
class SweepSettings:
    """`[sweep]`: how runs work. Each key is one field here, and an attribute of `Settings`."""

    work_dir: LocalPath = Path("data/work")
    """Working folder: run lock, Prefect home (`PREFECT_HOME`), temporary files."""
    report_dir: LocalPath = Path("data/reports")
    """Where each run's audit report folder is written."""
    blacklist_db: LocalPath = Path("data/blacklist.db")
    """The blacklist registry, an SQLite database file (WAL mode)."""
    link_devices_through_events: Flag = True
    """Rule 3: also link the device ids of events that carry a matching email or user id; false links
    profile-listed devices only."""
    delete_raw: Flag = False
    """Default for datasets: delete the raw snapshot files a successful run took in."""
    deadline_hours: Hours = 24.0
    """An entry older than this (hours, more than 0, at most 720) whose data is still present fails the run."""
    duckdb_memory_limit: MemoryLimit = "1GB"
    """DuckDB's memory limit while matching (at least 256MB: below it DuckDB fails)."""
    task_runner: TaskRunner = "local"
    """Where the flow's per-file tasks run: `local` (threads in the flow's process) or `dask`
    (prefect-dask's DaskTaskRunner on `dask_address`, or on a local cluster of `dask_workers` processes)."""
    dask_address: NoSpace | None = None
    """Scheduler address of an existing Dask cluster (`tcp://host:8786`); unset starts a local cluster."""
    dask_workers: Workers = 2
    """Worker processes (1-256) of the local Dask cluster started when `task_runner = "dask"` has no address."""
    report_url: S3Url | None = None
    """Optional object-store location (`s3://bucket/prefix`); each run's report folder is also uploaded there."""
    base_dir: LocalPath | None = None
    """Every local path the tool writes or deletes in (datasets' `path` and `source`, `work_dir`,
    `report_dir`, `blacklist_db`) must lie inside it. Default: the configuration file's folder."""
    allow_paths_outside_base: Flag = False
    """Set true to lift the base-folder rule (docs/reliability.md)."""


@dataclass(frozen=True, config=_MODEL, kw_only=True)
class Settings(SweepSettings):
    """Everything a run needs to know, from one TOML file: the `[sweep]` keys as attributes, plus these."""

    config_path: Path
    """The file these settings came from."""
    s3: S3Settings = field(default_factory=S3Settings)
    """How to reach S3-compatible object storage (`[s3]`); unset keys fall back to the standard AWS variables."""
    scan: ScanSettings = field(default_factory=ScanSettings)
    """`[scan]`: the residual scan (pipelines/config/scan_settings.py)."""
    datasets: tuple[DatasetConfig, ...] = ()
    """The `[[datasets]]` tables."""

    def dataset(self, name: str) -> DatasetConfig:
        for ds in self.datasets:
            if ds.name == name:
                return ds
        raise ConfigError(f"{self.config_path}: no dataset named {name!r}")


class ConfigFile(BaseModel):
    """The configuration file (`gdpr-sweep.toml`) of gdpr-sweep: a `[sweep]` table, optional `[s3]` and
    `[scan]` tables and one `[[datasets]]` table per managed dataset."""

    model_config = _MODEL
    sweep: SweepSettings = Field(default_factory=SweepSettings)
    """How runs work."""
    s3: S3Settings = Field(default_factory=S3Settings)
    """How to reach S3-compatible object storage."""
    scan: ScanSettings = Field(default_factory=ScanSettings)
    """The residual scan: when the nightly sweep also searches every column, and which other folders."""
    datasets: list[DatasetConfig] = Field(min_length=1)
    """The managed datasets, one `[[datasets]]` table each."""

    @model_validator(mode="before")
    @classmethod
    def _tables(cls, data: Any) -> Any:
        """Absent tables are validated as empty ones, so their defaults are resolved like given values."""
        if isinstance(data, dict):
            return {"sweep": {}, "s3": {}, "scan": {}, **data}
        return data

    @model_validator(mode="after")
    def _unique_names(self) -> ConfigFile:
        names = [d.name for d in self.datasets]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise PydanticCustomError("config", "datasets: every dataset needs its own 'name'; repeated: {names}",
                                      {"names": ", ".join(repeated)})
        return self


def load_settings(path: Path) -> Settings:
    """Read and validate a configuration file; raise ConfigError naming the file and key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found (use --config or GDPR_SWEEP_CONFIG)") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a configuration file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return settings_from_dict(raw, path)


def settings_from_dict(raw: dict[str, Any], config_path: Path) -> Settings:
    """Validate the file's content (`raw`, as TOML parsed it) into Settings; ConfigError on any problem."""
    base = config_path.resolve().parent
    try:
        config = ConfigFile.model_validate(raw, context={"base": base})
    except ValidationError as exc:
        raise ConfigError(describe(exc, config_path, raw)) from None
    sweep = {f.name: getattr(config.sweep, f.name) for f in dataclasses.fields(SweepSettings)}
    settings = Settings(**{**sweep, "base_dir": config.sweep.base_dir or base},
                        config_path=config_path.resolve(), s3=config.s3, scan=config.scan,
                        datasets=tuple(config.datasets))
    check_locations(settings, config_path)
    return settings
