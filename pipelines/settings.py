"""The one typed settings object, loaded once at the edge (CLI, flow parameter) and passed down.

Every key of the configuration file is documented on its field here and in the README.
Relative paths are resolved against the folder of the configuration file.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pipelines.config_overlap import find_overlap
from pipelines.errors import ConfigError
from pipelines.scan_settings import ScanSettings, scan_settings

DatasetKind = Literal["profiles", "events"]
DatasetFormat = Literal["parquet", "delta"]
TaskRunner = Literal["local", "dask"]
_URL_SCHEMES = ("s3://",)
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_COLUMN_KEYS = ("email", "user_id", "device_id", "device_ids", "scope")


@dataclass(frozen=True)
class S3Settings:
    """`[s3]`: how to reach S3-compatible object storage. Every key is optional; what is unset comes from
    the standard AWS variables and files (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    `AWS_REGION`, `AWS_PROFILE`, ~/.aws/...), as with any AWS tool."""

    endpoint_url: str | None = None
    """Endpoint of an S3-compatible service (MinIO, Ceph, moto: `http://127.0.0.1:9000`); None means AWS."""
    region: str | None = None
    """Region name (`eu-central-1`)."""
    access_key_id: str | None = None
    """Access key id; prefer `AWS_ACCESS_KEY_ID` or a profile over putting keys in the file."""
    secret_access_key: str | None = None
    """Secret access key; prefer `AWS_SECRET_ACCESS_KEY` or a profile over putting keys in the file."""

    def __repr__(self) -> str:  # never print the secret
        return f"S3Settings(endpoint_url={self.endpoint_url!r}, region={self.region!r})"


@dataclass(frozen=True)
class DatasetConfig:
    """One managed dataset: a folder of Parquet files and where its identities are."""

    name: str
    """Unique name, used in reports and file names (letters, digits, `_`, `-`)."""
    kind: DatasetKind
    """`profiles` (rule 1; their device ids link devices) or `events` (rules 2 and 3)."""
    path: Path
    """The cleaned dataset analysts query: a folder of `*.parquet` files (kept as a symlink to the current version)."""
    source: Path | None = None
    """Optional folder where raw snapshots land; new or changed files there are taken in by the sweep."""
    email: str | None = None
    """Column holding the email; nested paths with dots (`Info.Email`, `User.Email`)."""
    user_id: str | None = None
    """Column holding the external user id (CrossEngage `id`)."""
    device_id: str | None = None
    """Column holding one device id per row (events' `DeviceId`)."""
    device_ids: str | None = None
    """List column holding several device ids per row (profiles' `DeviceIds`)."""
    scope: str | None = None
    """Column holding the scope; without one, every row belongs to `DefaultScope`."""
    delete_raw: bool | None = None
    """Delete consumed raw snapshot files after a successful run; None means the global default."""
    event_name: str | None = None
    """Events only: column with the event name. Rows named `Blacklisted` / `Whitelisted` are commands
    (CrossEngage) that set the blacklist status before matching. None: the dataset carries no commands."""
    event_time: str | None = None
    """Events only: column with the event's time (timestamp, or ISO-8601 text), so the latest action wins;
    without it a command counts as happening when the sweep reads it."""
    format: DatasetFormat = "parquet"
    """`parquet` (a folder of Parquet files, versioned by the sweep) or `delta` (a Delta Lake table, purged
    with its own delete, then vacuumed and its log checkpointed and cleaned; docs/decisions/0009)."""
    url: str | None = None
    """Object-store location (`s3://bucket/prefix/name`) when `path` was given as a URL; then `path` only
    names it for display and the dataset is read and written through `[s3]` (pipelines/s3dataset.py)."""
    source_url: str | None = None
    """Object-store prefix where raw snapshots land (`source = "s3://..."`, for an object-store dataset);
    new or changed objects there are taken in as from a local `source` folder."""

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


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know, from one TOML file."""

    config_path: Path
    """The file these settings came from."""
    work_dir: Path
    """Working folder: run lock, Prefect home, temporary files. Default `data/work`."""
    report_dir: Path
    """Where each run's audit report folder is written. Default `data/reports`."""
    blacklist_db: Path
    """The blacklist registry, an SQLite database file. Default `data/blacklist.db`."""
    link_devices_through_events: bool = True
    """Rule 3: also link the device ids of events that carry a matching email or user id."""
    delete_raw: bool = False
    """Default for datasets: delete consumed raw snapshot files after a successful run."""
    deadline_hours: float = 24.0
    """An entry older than this whose data is still present fails the run."""
    duckdb_memory_limit: str = "1GB"
    """DuckDB's memory limit for matching (below ~256MB DuckDB fails; see NOTES)."""
    task_runner: TaskRunner = "local"
    """Where the flow's per-file tasks run: `local` (threads in the flow's process) or `dask`
    (prefect-dask's DaskTaskRunner on `dask_address`, or on a local cluster of `dask_workers` processes)."""
    dask_address: str | None = None
    """Scheduler address of an existing Dask cluster (`tcp://host:8786`); None starts a local cluster."""
    dask_workers: int = 2
    """Worker processes of the local Dask cluster started when `task_runner = "dask"` has no address."""
    report_url: str | None = None
    """Optional object-store location (`s3://bucket/prefix`); each run's report folder is also uploaded there."""
    s3: S3Settings = field(default_factory=lambda: S3Settings())
    """How to reach S3-compatible object storage (`[s3]`); unset keys fall back to the standard AWS variables."""
    base_dir: Path | None = None
    """`[sweep] base_dir`: every local path the tool writes or deletes in (datasets' `path` and `source`,
    `work_dir`, `report_dir`, `blacklist_db`) must lie inside it. Default: the configuration file's folder."""
    allow_paths_outside_base: bool = False
    """`[sweep] allow_paths_outside_base`: set true to lift the base-folder rule (docs/reliability.md)."""
    scan: ScanSettings = field(default_factory=lambda: ScanSettings())
    """`[scan]`: the residual scan (pipelines/scan_settings.py)."""
    datasets: tuple[DatasetConfig, ...] = field(default_factory=tuple)

    def dataset(self, name: str) -> DatasetConfig:
        for ds in self.datasets:
            if ds.name == name:
                return ds
        raise ConfigError(f"{self.config_path}: no dataset named {name!r}")


def load_settings(path: Path) -> Settings:
    """Read and validate a configuration file; raise ConfigError naming the file and key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found (use --config or GDPR_SWEEP_CONFIG)") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return settings_from_dict(raw, path)


def settings_from_dict(raw: dict[str, Any], config_path: Path) -> Settings:
    base = config_path.resolve().parent
    sweep = dict(raw.get("sweep", {}))
    where = f"{config_path} [sweep]"
    known = {
        "work_dir", "report_dir", "blacklist_db", "link_devices_through_events", "delete_raw",
        "deadline_hours", "duckdb_memory_limit", "task_runner", "dask_address", "dask_workers", "report_url",
        "base_dir", "allow_paths_outside_base",
    }
    _reject_unknown(sweep, known, where)
    datasets = tuple(
        _dataset(item, base, f"{config_path} datasets[{i}]") for i, item in enumerate(raw.get("datasets", []))
    )
    _reject_unknown(raw, {"sweep", "datasets", "s3", "scan"}, str(config_path))
    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise ConfigError(f"{config_path}: dataset names must be unique, got {names}")
    if not datasets:
        raise ConfigError(f"{config_path}: no [[datasets]] configured")
    overlap = find_overlap(datasets)
    if overlap:
        raise ConfigError(f"{config_path}: {overlap}")
    base_dir = _path(sweep.get("base_dir", "."), base, where, "base_dir")
    allow_outside = _bool(sweep.get("allow_paths_outside_base", False), where, "allow_paths_outside_base")
    settings = Settings(
        config_path=config_path.resolve(),
        base_dir=base_dir,
        allow_paths_outside_base=allow_outside,
        work_dir=_path(sweep.get("work_dir", "data/work"), base, where, "work_dir"),
        report_dir=_path(sweep.get("report_dir", "data/reports"), base, where, "report_dir"),
        blacklist_db=_path(sweep.get("blacklist_db", "data/blacklist.db"), base, where, "blacklist_db"),
        link_devices_through_events=_bool(sweep.get("link_devices_through_events", True), where, "link_devices_through_events"),
        delete_raw=_bool(sweep.get("delete_raw", False), where, "delete_raw"),
        deadline_hours=float(sweep.get("deadline_hours", 24.0)),
        duckdb_memory_limit=str(sweep.get("duckdb_memory_limit", "1GB")),
        **_scaleout(sweep, raw.get("s3", {}), where, f"{config_path} [s3]"),
        scan=scan_settings(raw.get("scan", {}), base, f"{config_path} [scan]"),
        datasets=datasets,
    )
    if not allow_outside:
        _check_inside_base(settings, base_dir, config_path)
    return settings


def _check_inside_base(settings: Settings, base_dir: Path, config_path: Path) -> None:
    """Refuse local paths outside the base folder: a typo or a hostile configuration must not make
    the sweep adopt, rename or delete folders elsewhere on the machine (`..`, absolute paths, symlinked
    parents are all resolved before the check)."""
    real_base = Path(os.path.realpath(base_dir))
    checks = [(f"{config_path} [sweep]", key, getattr(settings, key))
              for key in ("work_dir", "report_dir", "blacklist_db")]
    for i, ds in enumerate(settings.datasets):
        where = f"{config_path} datasets[{i}] ({ds.name})"
        if ds.url is None:
            checks.append((where, "path", ds.path))
        if ds.source is not None:
            checks.append((where, "source", ds.source))
    for where, key, path in checks:
        # The last part may be a symlink (a dataset path points at its current version): resolve the parent.
        real = Path(os.path.realpath(path.parent)) / path.name
        if real != real_base and real_base not in real.parents:
            raise ConfigError(f"{where}: '{key}' ({path}) is outside the base folder {real_base}; move it "
                              "inside, set [sweep] base_dir, or set [sweep] allow_paths_outside_base = true")


def _dataset(item: dict[str, Any], base: Path, where: str) -> DatasetConfig:
    known = {"name", "kind", "path", "source", "delete_raw", "format", "event_name", "event_time", *_COLUMN_KEYS}
    _reject_unknown(item, known, where)
    name = item.get("name")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ConfigError(f"{where}: 'name' must be 1-64 letters, digits, '_' or '-'")
    where = f"{where} ({name})"
    kind = item.get("kind")
    if kind not in ("profiles", "events"):
        raise ConfigError(f"{where}: 'kind' must be 'profiles' or 'events'")
    if "path" not in item:
        raise ConfigError(f"{where}: 'path' is required")
    columns = {key: _column(item.get(key), where, key) for key in _COLUMN_KEYS}
    if not columns["email"] and not columns["user_id"]:
        raise ConfigError(f"{where}: configure at least one of 'email' or 'user_id'")
    delete_raw = item.get("delete_raw")
    fmt = item.get("format", "parquet")
    if fmt not in ("parquet", "delta"):
        raise ConfigError(f"{where}: 'format' must be 'parquet' or 'delta'")
    url = _url(item["path"], where, "path")
    source_url = _url(item.get("source"), where, "source")
    if url and item.get("source") and not source_url:
        raise ConfigError(f"{where}: 'source' of an object-store dataset must be an object-store prefix "
                          "too (s3://bucket/prefix)")
    if source_url and not url:
        raise ConfigError(f"{where}: an object-store 'source' needs an object-store 'path' (s3://bucket/prefix)")
    if fmt == "delta" and item.get("source"):
        raise ConfigError(f"{where}: 'source' is not supported for a Delta table; the sweep purges the table in place")
    return DatasetConfig(
        name=name,
        kind=kind,
        path=Path(url) if url else _path(item["path"], base, where, "path"),
        format=fmt,
        url=url,
        source=_path(item["source"], base, where, "source") if item.get("source") and not url else None,
        source_url=source_url,
        delete_raw=None if delete_raw is None else _bool(delete_raw, where, "delete_raw"),
        **_command_columns(item, kind, where),
        **columns,
    )


def _url(value: Any, where: str, key: str) -> str | None:
    """An object-store URL kept as text (a Path would fold `s3://` into `s3:/`), or None for a local path."""
    if not isinstance(value, str) or not value.startswith(_URL_SCHEMES):
        return None
    bucket = value.split("://", 1)[1].split("/", 1)[0]
    if not bucket:
        raise ConfigError(f"{where}: '{key}' must look like s3://bucket/prefix")
    return value.rstrip("/")


def _scaleout(sweep: dict[str, Any], s3: dict[str, Any], where: str, where_s3: str) -> dict[str, Any]:
    """The `[sweep]` task-runner and report keys and the `[s3]` section (docs/decisions/0009)."""
    runner = sweep.get("task_runner", "local")
    if runner not in ("local", "dask"):
        raise ConfigError(f"{where}: 'task_runner' must be 'local' or 'dask'")
    address = sweep.get("dask_address")
    if address is not None and (not isinstance(address, str) or not address):
        raise ConfigError(f"{where}: 'dask_address' must be a scheduler address like 'tcp://host:8786'")
    workers = sweep.get("dask_workers", 2)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ConfigError(f"{where}: 'dask_workers' must be a positive integer")
    report_url = sweep.get("report_url")
    if report_url is not None and _url(report_url, where, "report_url") is None:
        raise ConfigError(f"{where}: 'report_url' must look like s3://bucket/prefix")
    _reject_unknown(s3, {"endpoint_url", "region", "access_key_id", "secret_access_key"}, where_s3)
    for key, value in s3.items():
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where_s3}: '{key}' must be a non-empty string")
    return {"task_runner": runner, "dask_address": address, "dask_workers": workers,
            "report_url": report_url.rstrip("/") if report_url else None, "s3": S3Settings(**s3)}


def _command_columns(item: dict[str, Any], kind: str, where: str) -> dict[str, str | None]:
    """`event_name` / `event_time`: command events (Blacklisted / Whitelisted) in an events dataset."""
    columns = {key: _column(item.get(key), where, key) for key in ("event_name", "event_time")}
    if any(columns.values()) and kind != "events":
        raise ConfigError(f"{where}: 'event_name' and 'event_time' are for events datasets only")
    if columns["event_time"] and not columns["event_name"]:
        raise ConfigError(f"{where}: 'event_time' needs 'event_name' (the column naming Blacklisted / Whitelisted)")
    return columns


def _column(value: Any, where: str, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or any(not part for part in value.split(".")):
        raise ConfigError(f"{where}: '{key}' must be a column name or dotted path like 'User.Email'")
    return value


def _path(value: Any, base: Path, where: str, key: str) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: '{key}' must be a path string")
    # abspath, not resolve(): a dataset path is a symlink to its current version and must stay one.
    return Path(os.path.abspath(base / value))


def _bool(value: Any, where: str, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: '{key}' must be true or false")
    return value


def _reject_unknown(section: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(section) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; see README 'Configuration'")
