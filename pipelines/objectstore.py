"""Datasets and reports on S3-compatible object storage (`path = "s3://bucket/prefix/name"`).

Object stores have no rename and no symlink, so the versioned swap of `storage.py` becomes a manifest
switch (docs/decisions/0009-scaleout-dask-s3-delta.md):

    s3://bucket/lake/events/_gdpr_sweep_current.json          <- readers start here (one object)
    s3://bucket/lake/events/_gdpr_sweep_versions/<run_id>/... <- one complete version per run

1. `write_version` writes every object of the new version under its own prefix (files with matches
   rewritten exactly, through a local scratch copy and `storage.rewrite_without_rows`; the others
   copied server-side), then that version's manifest.
2. `publish_version` switches `_gdpr_sweep_current.json` to the new version in one PUT (atomic in S3),
   then deletes every other object under the dataset prefix (superseded versions, a crashed run's
   leftovers, plain files adopted on the first run) and, where the bucket keeps versions, every
   non-current object version and delete marker under the prefix, so no old bytes survive.

A run interrupted before the switch leaves the current manifest on the old complete version; the next
run removes the orphaned objects. Readers list files with `current_files` (or read the manifest's
`files[*].url`); they never list the prefix.

S3 is reached through s3fs; DuckDB reads it through the same filesystem (`register`), since httpfs
cannot be installed here (NOTES.md). `configure` exports the `[s3]` keys as the standard AWS variables
at the edge so pyarrow, s3fs, deltalake and DuckDB agree on endpoint and credentials.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import s3fs

from pipelines import storage
from pipelines.errors import ConfigError, DataFileError, SweepError
from pipelines.match import DatasetMatches
from pipelines.settings import DatasetConfig, S3Settings
from pipelines.sweep import DatasetOutcome, DatasetPlan, FileOutcome, FilePlan

CURRENT = "_gdpr_sweep_current.json"
VERSIONS = "_gdpr_sweep_versions"
_ENV = {"endpoint_url": "AWS_ENDPOINT_URL", "region": "AWS_REGION", "access_key_id": "AWS_ACCESS_KEY_ID",
        "secret_access_key": "AWS_SECRET_ACCESS_KEY"}


class Url(str):
    """An object URL that joins like a Path (`Url("s3://b/p") / "x.parquet"`), so version folders and
    object prefixes go through the same code; a plain Path would fold `s3://` into `s3:/`."""

    def __truediv__(self, other: str) -> Url:
        return Url(f"{self.rstrip('/')}/{str(other).lstrip('/')}")

    @property
    def name(self) -> str:
        return self.rstrip("/").rsplit("/", 1)[-1]

    @property
    def key(self) -> str:
        """`bucket/key` as s3fs names objects."""
        return self.split("://", 1)[1]


def is_url(path: Any) -> bool:
    return isinstance(path, str) and path.startswith("s3://")


def configure(s3: S3Settings) -> None:
    """Export the configured `[s3]` keys as the standard AWS variables for this process (the edge: a flow,
    a task on a Dask worker, the CLI). Keys left unset keep whatever the environment already says."""
    for key, var in _ENV.items():
        value = getattr(s3, key)
        if value:
            os.environ[var] = value
    if s3.region:
        os.environ["AWS_DEFAULT_REGION"] = s3.region


def filesystem(s3: S3Settings) -> s3fs.S3FileSystem:
    """An s3fs filesystem for the configured endpoint; unset keys come from the AWS variables and files."""
    kwargs: dict[str, Any] = {}
    if s3.endpoint_url:
        kwargs["endpoint_url"] = s3.endpoint_url
    if s3.access_key_id and s3.secret_access_key:
        kwargs["key"], kwargs["secret"] = s3.access_key_id, s3.secret_access_key
    if s3.region:
        kwargs["client_kwargs"] = {"region_name": s3.region}
    return s3fs.S3FileSystem(**kwargs)


def register(con: duckdb.DuckDBPyConnection, s3: S3Settings) -> None:
    """Let DuckDB read `s3://` paths through s3fs (per connection)."""
    con.register_filesystem(filesystem(s3))


def storage_options(s3: S3Settings) -> dict[str, str]:
    """deltalake's storage options for the same endpoint and credentials."""
    options = {}
    endpoint = s3.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["AWS_ENDPOINT_URL"] = endpoint
        if endpoint.startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    if s3.region:
        options["AWS_REGION"] = s3.region
    if s3.access_key_id and s3.secret_access_key:
        options["AWS_ACCESS_KEY_ID"], options["AWS_SECRET_ACCESS_KEY"] = s3.access_key_id, s3.secret_access_key
    return options


# ---------------------------------------------------------------------------------------------
# Reading


def read_current(fs: s3fs.S3FileSystem, url: str) -> dict[str, Any]:
    """The dataset's current manifest, or {} when no sweep has published one yet."""
    path = Url(url) / CURRENT
    try:
        raw = fs.cat_file(path.key)
    except FileNotFoundError:
        return {}
    try:
        return dict(json.loads(raw))
    except ValueError as exc:
        raise SweepError(f"{path}: unreadable manifest ({exc}); restore it from the bucket's versions") from None


def current_files(fs: s3fs.S3FileSystem, url: str) -> list[str]:
    """What a reader should read: the current version's file URLs (e.g. for DuckDB's read_parquet)."""
    manifest = read_current(fs, url)
    return [f["url"] for _, f in sorted(manifest.get("files", {}).items())]


def list_parquet(fs: s3fs.S3FileSystem, url: str) -> list[str]:
    """Relative paths of plain `*.parquet` objects under `url` (hidden, `_` and sweep objects skipped)."""
    root = Url(url).key.rstrip("/")
    found = []
    for key in fs.find(root):
        rel = key[len(root) + 1:]
        parts = rel.split("/")
        if rel.endswith(".parquet") and not any(p.startswith((".", "_")) for p in parts):
            found.append(rel)
    return sorted(found)


def num_rows(fs: s3fs.S3FileSystem, url: str) -> int:
    try:
        with fs.open(Url(url).key, "rb") as fh:
            return int(pq.ParquetFile(fh).metadata.num_rows)
    except (OSError, pa.ArrowException) as exc:
        raise DataFileError(f"{url}: not a readable Parquet file ({type(exc).__name__})") from None


def sha256(fs: s3fs.S3FileSystem, url: str) -> str:
    digest = hashlib.sha256()
    with fs.open(Url(url).key, "rb", block_size=1 << 22) as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def plan_dataset(config: DatasetConfig, fs: s3fs.S3FileSystem) -> DatasetPlan:
    """Each file of the current version (from its manifest), or on the first run the plain Parquet
    objects under the prefix, which the sweep then adopts."""
    if not config.url:
        raise ConfigError(f"dataset {config.name!r}: not an object-store dataset")
    root = Url(config.url)
    manifest = read_current(fs, root)
    files = []
    if manifest:
        for rel, entry in sorted(manifest.get("files", {}).items()):
            files.append(FilePlan(rel, Url(entry["url"]), "clean", int(entry["rows"]), entry.get("sha256")))
    else:
        for rel in list_parquet(fs, root):
            url = root / rel
            files.append(FilePlan(rel, url, "clean", num_rows(fs, url), None))
    return DatasetPlan(config, tuple(files), None, manifest)


# ---------------------------------------------------------------------------------------------
# Writing: a complete new version under its own prefix, then the switch.


@contextmanager
def _scratch(work_dir: Path) -> Iterator[Path]:
    work_dir.mkdir(parents=True, exist_ok=True, mode=storage.DIR_MODE)
    folder = Path(tempfile.mkdtemp(prefix="s3-rewrite-", dir=work_dir))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def version_url(config: DatasetConfig, run_id: str) -> Url:
    return Url(config.url or "") / VERSIONS / run_id


def write_file(fs: s3fs.S3FileSystem, f: FilePlan, out: Url, drop: np.ndarray | None, work_dir: Path) -> FileOutcome:
    """One file of the new version: rewritten without `drop` rows (exactly, via a local scratch copy),
    or copied server-side when nothing in it matched."""
    sha_in = f.sha256 or sha256(fs, f.input_path)
    if drop is not None and len(drop):
        with _scratch(work_dir) as tmp:
            src, dst = tmp / "in.parquet", tmp / "out.parquet"
            fs.get_file(Url(f.input_path).key, str(src))
            written = storage.rewrite_without_rows(src, dst, drop)
            if written.rows_in != f.rows:
                raise AssertionError(f"{f.input_path}: read {written.rows_in} rows, manifest says {f.rows}")
            sha_out = storage.sha256_file(dst)
            fs.put_file(str(dst), out.key)
        return FileOutcome(f.relpath, f.origin, f.rows, written.rows_out, sha_in, sha_out, True)
    fs.copy(Url(f.input_path).key, out.key)
    return FileOutcome(f.relpath, f.origin, f.rows, f.rows, sha_in, sha_in, False)


def write_version(fs: s3fs.S3FileSystem, plan: DatasetPlan, matches: DatasetMatches, run_id: str,
                  blacklist_version: int, work_dir: Path) -> DatasetOutcome:
    """Write the dataset's complete new version under `_gdpr_sweep_versions/<run_id>/`; readers do not
    see it until `publish_version` switches the manifest."""
    version = version_url(plan.config, run_id)
    if plan.previous_manifest.get("version") == str(version):
        raise SweepError(f"dataset {plan.config.name!r}: run id {run_id} is the current version; use a new run id")
    if fs.exists(version.key):
        fs.rm(version.key, recursive=True)
    outcomes = tuple(write_file(fs, f, version / f.relpath, matches.drops.get(f.relpath), work_dir)
                     for f in plan.files)
    return finish_version(fs, plan, outcomes, matches, run_id, blacklist_version)


def finish_version(fs: s3fs.S3FileSystem, plan: DatasetPlan, outcomes: tuple[FileOutcome, ...],
                   matches: DatasetMatches, run_id: str, blacklist_version: int) -> DatasetOutcome:
    """Record the version's manifest beside its files (not yet current) and return the outcome."""
    version = version_url(plan.config, run_id)
    fs.pipe_file((version / storage.MANIFEST_NAME).key, _json(_manifest(plan.config, version, run_id,
                                                                         blacklist_version, outcomes)))
    return DatasetOutcome(plan.config.name, plan.config.kind, version, outcomes,  # type: ignore[arg-type]
                          dict(matches.by_reason), dict(matches.by_entry))


def _manifest(config: DatasetConfig, version: Url, run_id: str, blacklist_version: int,
              outcomes: tuple[FileOutcome, ...]) -> dict[str, Any]:
    return {
        "manifest_version": 1, "dataset": config.name, "run_id": run_id, "version": str(version),
        "blacklist_version": blacklist_version,
        "files": {o.relpath: {"url": str(version / o.relpath), "rows": o.rows_out, "sha256": o.sha256_out}
                  for o in outcomes},
    }


def _json(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


@dataclass(frozen=True)
class Published:
    objects_deleted: int
    old_versions_deleted: int


def publish_version(fs: s3fs.S3FileSystem, config: DatasetConfig, outcome: DatasetOutcome) -> Published:
    """Switch the current manifest to the outcome's version in one PUT, then delete everything else
    under the dataset prefix, including non-current object versions in a versioned bucket."""
    root = Url(config.url or "")
    version = Url(str(outcome.version))
    pending = json.loads(fs.cat_file((version / storage.MANIFEST_NAME).key))
    missing = [rel for rel, f in pending["files"].items() if not fs.exists(Url(f["url"]).key)]
    if missing:
        raise SweepError(f"dataset {config.name!r}: version {version.name} lacks {len(missing)} file(s); "
                         "not switching")
    fs.pipe_file((root / CURRENT).key, _json(pending))
    fs.invalidate_cache()
    keep_prefix = version.key.rstrip("/") + "/"
    current_key = (root / CURRENT).key
    stale = [k for k in fs.find(root.key) if k != current_key and not k.startswith(keep_prefix)]
    if stale:
        fs.rm(stale)
    return Published(len(stale), _delete_old_object_versions(fs, root))


def _delete_old_object_versions(fs: s3fs.S3FileSystem, root: Url) -> int:
    """In a versioned bucket, delete every non-current version and delete marker under `root`."""
    bucket, _, prefix = root.key.partition("/")
    status = fs.call_s3("get_bucket_versioning", Bucket=bucket).get("Status")
    if status not in ("Enabled", "Suspended"):
        return 0
    doomed: list[dict[str, str]] = []
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix.rstrip("/") + "/"}
    while True:
        page = fs.call_s3("list_object_versions", **kwargs)
        for v in page.get("Versions", []):
            if not v.get("IsLatest"):
                doomed.append({"Key": v["Key"], "VersionId": v["VersionId"]})
        for m in page.get("DeleteMarkers", []):
            doomed.append({"Key": m["Key"], "VersionId": m["VersionId"]})
        if not page.get("IsTruncated"):
            break
        kwargs.update(KeyMarker=page["NextKeyMarker"], VersionIdMarker=page["NextVersionIdMarker"])
    for i in range(0, len(doomed), 1000):
        fs.call_s3("delete_objects", Bucket=bucket, Delete={"Objects": doomed[i:i + 1000], "Quiet": True})
    return len(doomed)


def upload_report(fs: s3fs.S3FileSystem, folder: Path, report_url: str) -> list[str]:
    """Copy one run's report folder to `report_url/<folder name>/`; return the object URLs."""
    target = Url(report_url) / folder.name
    urls = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        url = target / path.relative_to(folder).as_posix()
        fs.put_file(str(path), url.key)
        urls.append(str(url))
    return urls
