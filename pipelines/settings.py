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

from pipelines.errors import ConfigError

DatasetKind = Literal["profiles", "events"]
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_COLUMN_KEYS = ("email", "user_id", "device_id", "device_ids", "scope")


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
        "deadline_hours", "duckdb_memory_limit",
    }
    _reject_unknown(sweep, known, where)
    datasets = tuple(
        _dataset(item, base, f"{config_path} datasets[{i}]") for i, item in enumerate(raw.get("datasets", []))
    )
    _reject_unknown(raw, {"sweep", "datasets"}, str(config_path))
    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise ConfigError(f"{config_path}: dataset names must be unique, got {names}")
    if not datasets:
        raise ConfigError(f"{config_path}: no [[datasets]] configured")
    return Settings(
        config_path=config_path.resolve(),
        work_dir=_path(sweep.get("work_dir", "data/work"), base, where, "work_dir"),
        report_dir=_path(sweep.get("report_dir", "data/reports"), base, where, "report_dir"),
        blacklist_db=_path(sweep.get("blacklist_db", "data/blacklist.db"), base, where, "blacklist_db"),
        link_devices_through_events=_bool(sweep.get("link_devices_through_events", True), where, "link_devices_through_events"),
        delete_raw=_bool(sweep.get("delete_raw", False), where, "delete_raw"),
        deadline_hours=float(sweep.get("deadline_hours", 24.0)),
        duckdb_memory_limit=str(sweep.get("duckdb_memory_limit", "1GB")),
        datasets=datasets,
    )


def _dataset(item: dict[str, Any], base: Path, where: str) -> DatasetConfig:
    known = {"name", "kind", "path", "source", "delete_raw", *_COLUMN_KEYS}
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
    return DatasetConfig(
        name=name,
        kind=kind,
        path=_path(item["path"], base, where, "path"),
        source=_path(item["source"], base, where, "source") if item.get("source") else None,
        delete_raw=None if delete_raw is None else _bool(delete_raw, where, "delete_raw"),
        **columns,
    )


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
