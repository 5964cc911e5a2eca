"""The one builder of lake configuration files (`gdpr-sweep.toml`) for tests and benchmarks.

A configuration is a `[sweep]` table, optional top-level tables (`[s3]`, `[scan]`, ...) and one
`[[datasets]]` table per dataset, written from plain dicts:

    write_lake_config(root, profiles(source="raw/profiles"), events(source="raw/events"))
    lake_toml(events(path="s3://b/lake/events"), sweep={"delete_raw": True}, s3=S3_TESTING | {...})

`profiles()` and `events()` carry the Optimizely columns of the test tables (tests/helpers.py); a
keyword overrides one key, `None` drops it. tests/layout checks that no other test or bench file
writes a `[[datasets]]` table itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SWEEP = {"work_dir": "work", "report_dir": "reports", "blacklist_db": "blacklist.db"}
PROFILE_COLUMNS = {"email": "Info.Email", "user_id": "UserId", "device_ids": "DeviceIds", "scope": "Scope"}
EVENT_COLUMNS = {"email": "User.Email", "user_id": "User.UserId", "device_id": "DeviceId", "scope": "Scope"}
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def s3_table(endpoint_url: str, key: str = "testing") -> dict[str, str]:
    """The `[s3]` table reaching moto's server at `endpoint_url` (any key: moto checks none)."""
    return {"endpoint_url": endpoint_url, "region": "us-east-1", "access_key_id": key, "secret_access_key": key}


def dataset(name: str, kind: str, path: str | Path | None = None, **keys: Any) -> dict[str, Any]:
    """One `[[datasets]]` table; keys set to None are left out."""
    table: dict[str, Any] = {"name": name, "kind": kind, "path": path if path is not None else f"clean/{name}"}
    table.update(keys)
    return {k: v for k, v in table.items() if v is not None}


def profiles(path: str | Path | None = None, source: str | Path | None = None, name: str = "profiles",
             **keys: Any) -> dict[str, Any]:
    """The profiles dataset of the test tables (`Info.Email`, `UserId`, `DeviceIds`, `Scope`)."""
    return dataset(name, "profiles", path, source=source, **{**PROFILE_COLUMNS, **keys})


def events(path: str | Path | None = None, source: str | Path | None = None, name: str = "events",
           **keys: Any) -> dict[str, Any]:
    """The events dataset of the test tables (`User.Email`, `User.UserId`, `DeviceId`, `Scope`)."""
    return dataset(name, "events", path, source=source, **{**EVENT_COLUMNS, **keys})


def two_datasets(source_root: str | Path | None = "raw", clean_root: str | Path = "clean",
                 **keys: Any) -> list[dict[str, Any]]:
    """Profiles and events under `<clean_root>/<name>`, raw snapshots under `<source_root>/<name>`
    (None: no source); `keys` go into both tables (e.g. `format="delta"`)."""
    def src(name: str) -> str | None:
        return None if source_root is None else f"{source_root}/{name}"

    return [profiles(f"{clean_root}/profiles", src("profiles"), **keys),
            events(f"{clean_root}/events", src("events"), **keys)]


def lake_toml(*datasets: Mapping[str, Any], sweep: Mapping[str, Any] | None = None,
              **tables: Mapping[str, Any]) -> str:
    """The configuration text: `[sweep]` (SWEEP updated by `sweep`, None drops a key), every table of
    `tables` in order, then the datasets. Tables are separated by one blank line."""
    head = {k: v for k, v in {**SWEEP, **(sweep or {})}.items() if v is not None}
    parts = [_table("[sweep]", head)]
    parts += [_table(f"[{name}]", body) for name, body in tables.items()]
    parts += [_table("[[datasets]]", ds) for ds in datasets]
    return "\n\n".join(parts) + "\n"


def dataset_tables(*datasets: Mapping[str, Any]) -> str:
    """Only the `[[datasets]]` tables, to append to a configuration a test wrote before."""
    return "\n" + "\n\n".join(_table("[[datasets]]", ds) for ds in datasets) + "\n"


def write_lake_config(root: Path, *datasets: Mapping[str, Any], name: str = "gdpr-sweep.toml",
                      **kwargs: Any) -> Path:
    """Write `lake_toml(*datasets, **kwargs)` to `root/name` (folders created) and return its path."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    path.write_text(lake_toml(*datasets, **kwargs), encoding="utf-8")
    return path


def value(v: Any) -> str:
    """One TOML value: strings and paths as basic strings, booleans, numbers, arrays, inline tables."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str | Path):
        return json.dumps(str(v), ensure_ascii=False)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"no TOML value for {type(v).__name__}")


def _key(k: str) -> str:
    return k if _BARE_KEY.fullmatch(k) else json.dumps(k)


def _table(header: str, body: Mapping[str, Any]) -> str:
    return "\n".join([header, *(f"{_key(k)} = {value(v)}" for k, v in body.items())])


def sample_lake(root: Path, events: int, profiles: int, days: int, blacklist: int, **sweep: Any):  # noqa: ANN201
    """A benchmark's lake: the sample generator's data under `root/sample` (generated once, kept between
    runs), a fresh configuration over it (`sweep` keys added to `[sweep]`), no cleaned data, reports
    or registry left from a previous run, and the sample blacklist imported. Returns its Settings."""
    import json
    import shutil
    import time

    from pipelines.config.settings import load_settings
    from pipelines.registry.registry import Registry

    root.mkdir(parents=True, exist_ok=True)
    sample = root / "sample"
    if not (sample / "blacklist.json").exists():
        from pipelines.sample.generate import generate

        t0 = time.perf_counter()
        generate(sample, profiles=profiles, events=events, days=days, blacklist=blacklist)
        print(f"generated in {time.perf_counter() - t0:.1f} s", flush=True)
    config = write_lake_config(root, *two_datasets("sample"), sweep=sweep)
    for stale in ("clean", "work", "reports"):
        shutil.rmtree(root / stale, ignore_errors=True)
    for db in root.glob("blacklist.db*"):
        db.unlink()
    settings = load_settings(config)
    registry = Registry(settings.blacklist_db)
    for item in json.loads((sample / "blacklist.json").read_text())["items"]:
        registry.add(email=item.get("Email"), user_id=item.get("UserId"), scope=item.get("Scope"), source="import")
    return settings
