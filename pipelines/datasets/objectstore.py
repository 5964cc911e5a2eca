"""S3-compatible object storage: connection, and the few object operations the sweep relies on.

Every operation that reads or replaces data is pinned to the ETag the run read
(docs/decisions/0251-s3-plain-keys-conditional-writes.md):

- `open_pinned` / `download` read one object and fail with `Changed` if it is no longer the bytes the
  run planned (the first request checks the ETag, every ranged read after it sends `If-Match`);
- `put` replaces an object at its own key in one PUT with `If-Match: <etag read>` (or creates it with
  `If-None-Match: *`), so a concurrent writer's object is never overwritten: the PUT fails instead;
- `delete` removes an object with `If-Match` (unversioned bucket) or exactly the versions the run read
  and older (versioned bucket), so a newer object written meanwhile survives.

What the sweep does with them per dataset is `pipelines/datasets/s3dataset.py`. S3 is reached through s3fs
(imported by `filesystem`, not at start-up: ~0.9 s a local lake never pays); DuckDB reads it through the
same filesystem (`register`): httpfs cannot be installed here. `configure` exports the `[s3]` keys as the
AWS variables at the edge so pyarrow, s3fs, deltalake and DuckDB agree on endpoint and credentials.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.config.settings import S3Settings
from pipelines.core.errors import DataFileError, SweepError

if TYPE_CHECKING:
    import s3fs

MARKER = "gdpr-sweep-run"
"""User metadata (`x-amz-meta-gdpr-sweep-run: <run id>`) on every object the sweep writes, so a run that
crashed after a PUT can be recognised by the next one."""
_ENV = {"endpoint_url": "AWS_ENDPOINT_URL", "region": "AWS_REGION", "access_key_id": "AWS_ACCESS_KEY_ID",
        "secret_access_key": "AWS_SECRET_ACCESS_KEY"}
MAX_PUT = 5 * 1024**3
"""S3's limit for one PUT; a rewritten file above it is refused (it cannot be replaced in one request)."""


class Changed(SweepError):
    """An object is not (or no longer) the bytes this run read: another writer replaced or deleted it."""


class Url(str):
    """An object URL that joins like a Path (`Url("s3://b/p") / "x.parquet"`); a plain Path would fold
    `s3://` into `s3:/`."""

    def __truediv__(self, other: str) -> Url:
        return Url(f"{self.rstrip('/')}/{str(other).lstrip('/')}")

    @property
    def name(self) -> str:
        return self.rstrip("/").rsplit("/", 1)[-1]

    @property
    def key(self) -> str:
        """`bucket/key` as s3fs names objects."""
        return self.split("://", 1)[1]

    @property
    def bucket(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def object_key(self) -> str:
        """The key inside the bucket (no bucket, no leading slash)."""
        return self.key.partition("/")[2]


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
    import s3fs  # here, not at module level (see above)
    return s3fs.S3FileSystem(**kwargs)


def register(con: duckdb.DuckDBPyConnection, s3: S3Settings) -> None:
    """Let DuckDB read `s3://` paths through s3fs (per connection). s3fs instances are shared within a
    process and keep their listings: forget them, or DuckDB's glob misses objects written since (by a
    table format's own writer, or another process) and reports "No files found"."""
    fs = filesystem(s3)
    fs.invalidate_cache()
    con.register_filesystem(fs)


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
# Listing and reading, pinned to an ETag


@dataclass(frozen=True)
class ObjectInfo:
    rel: str
    """Key relative to the listed prefix."""
    etag: str
    size: int


def list_objects(fs: s3fs.S3FileSystem, url: str) -> dict[str, ObjectInfo]:
    """Every object under `url/` (one LIST request per 1,000 keys), by key relative to it."""
    root = Url(url)
    prefix = root.object_key.rstrip("/")
    prefix = f"{prefix}/" if prefix else ""
    found: dict[str, ObjectInfo] = {}
    kwargs: dict[str, Any] = {"Bucket": root.bucket, "Prefix": prefix}
    while True:
        page = fs.call_s3("list_objects_v2", **kwargs)
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(prefix):]
            found[rel] = ObjectInfo(rel, obj["ETag"], int(obj["Size"]))
        if not page.get("IsTruncated"):
            return found
        kwargs["ContinuationToken"] = page["NextContinuationToken"]


def is_data(rel: str) -> bool:
    """A plain `*.parquet` object readers see: no part of its key hidden (`.`) or internal (`_`)."""
    return rel.endswith(".parquet") and not any(p.startswith((".", "_")) for p in rel.split("/"))


def cache_listing(fs: s3fs.S3FileSystem, urls: Sequence[str]) -> None:
    """List every object under these prefixes afresh into s3fs's listing cache (one LIST per 1,000
    keys), so DuckDB's reads through `fs` take each object's size and ETag from it: without it DuckDB
    asks for them with ~8 HEAD requests per file (365 files on moto: 52 s instead of 5 s). s3fs pins
    its ranged reads to the listed ETag, so an object replaced since fails the read rather than mixing
    bytes; the run's own checks (`s3dataset.finish`) catch it either way."""
    for url in urls:
        key = Url(url).key.rstrip("/")
        fs.invalidate_cache(key)
        fs.find(key, detail=True)


def head(fs: s3fs.S3FileSystem, url: str) -> dict[str, Any] | None:
    """The object's HEAD response (ETag, VersionId, Metadata, ...), or None if it does not exist."""
    u = Url(url)
    try:
        return dict(fs.call_s3("head_object", Bucket=u.bucket, Key=u.object_key))
    except FileNotFoundError:
        return None


def open_pinned(fs: s3fs.S3FileSystem, url: str, etag: str) -> IO[bytes]:
    """Open `url` for reading only if it still has `etag`; every later ranged read sends `If-Match`, so
    a replacement mid-read fails (`s3fs` raises FileExpired) instead of mixing two objects' bytes."""
    fs.invalidate_cache(Url(url).key)
    try:
        fh = fs.open(Url(url).key, "rb", block_size=1 << 22)
    except FileNotFoundError:
        raise Changed(f"{url}: deleted since this run listed it") from None
    if fh.details.get("ETag") != etag:
        fh.close()
        raise Changed(f"{url}: changed since this run read it (another writer replaced it)")
    return fh  # type: ignore[no-any-return]


def download(fs: s3fs.S3FileSystem, url: str, etag: str, dest: Path) -> str:
    """Copy the object to `dest` if it still has `etag`; return the SHA-256 of the bytes."""
    digest = hashlib.sha256()
    with open_pinned(fs, url, etag) as src, open(dest, "wb") as out:
        for chunk in _chunks(src, url):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def sha256(fs: s3fs.S3FileSystem, url: str, etag: str) -> str:
    digest = hashlib.sha256()
    with open_pinned(fs, url, etag) as src:
        for chunk in _chunks(src, url):
            digest.update(chunk)
    return digest.hexdigest()


def _chunks(fh: IO[bytes], url: str) -> Iterator[bytes]:
    from s3fs.utils import FileExpired  # loaded: `fh` is an s3fs file
    try:
        yield from iter(lambda: fh.read(1 << 22), b"")
    except (FileExpired, FileNotFoundError):
        raise Changed(f"{url}: changed while this run read it (another writer replaced it)") from None


def num_rows(fs: s3fs.S3FileSystem, url: str, etag: str) -> int:
    """Rows of the object with `etag` (its Parquet footer)."""
    from s3fs.utils import FileExpired  # loaded: `fs` is an s3fs filesystem
    try:
        with open_pinned(fs, url, etag) as fh:
            return int(pq.ParquetFile(fh).metadata.num_rows)
    except FileExpired:
        raise Changed(f"{url}: changed while this run read it (another writer replaced it)") from None
    except (OSError, pa.ArrowException) as exc:
        if isinstance(exc, Changed):
            raise
        raise DataFileError(f"{url}: not a readable Parquet file ({type(exc).__name__})") from None


# ---------------------------------------------------------------------------------------------
# Conditional writes and deletes


@dataclass(frozen=True)
class Written:
    etag: str
    version_id: str | None


def put(fs: s3fs.S3FileSystem, url: str, data: bytes, if_match: str | None, run_id: str) -> Written:
    """Write `data` at `url` in one PUT: replacing exactly the object with ETag `if_match`, or (None)
    creating it where no object is. Raises `Changed` if another writer got there first."""
    u = Url(url)
    if len(data) > MAX_PUT:
        raise SweepError(f"{url}: the rewritten file is {len(data)} bytes, above S3's 5 GiB single-PUT limit; "
                         "split the dataset into smaller files and run again")
    condition = {"IfMatch": if_match} if if_match is not None else {"IfNoneMatch": "*"}
    try:
        out = fs.call_s3("put_object", Bucket=u.bucket, Key=u.object_key, Body=data,
                         Metadata={MARKER: run_id}, **condition)
    except (FileNotFoundError, FileExistsError):
        raise Changed(f"{url}: changed since this run read it (another writer replaced, deleted or created "
                      "it); left as the other writer made it") from None
    except OSError as exc:
        if _precondition_failed(exc):
            raise Changed(f"{url}: changed since this run read it (another writer replaced it); "
                          "left as the other writer made it") from None
        raise
    finally:
        fs.invalidate_cache(u.key)
    return Written(out["ETag"], out.get("VersionId"))


def _precondition_failed(exc: BaseException) -> bool:
    cause = exc.__cause__
    response = getattr(cause, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412)


def versioned(fs: s3fs.S3FileSystem, bucket: str) -> bool:
    """Whether the bucket keeps object versions (enabled now, or suspended after it was)."""
    return fs.call_s3("get_bucket_versioning", Bucket=bucket).get("Status") in ("Enabled", "Suspended")


@dataclass(frozen=True)
class ObjectVersion:
    key: str
    version_id: str
    etag: str
    latest: bool


def versions_of(fs: s3fs.S3FileSystem, url: str) -> list[ObjectVersion]:
    """Every stored version of exactly this key, newest first as S3 lists them (delete markers, which
    hold no bytes, are left out; a key whose latest entry is one has no version marked `latest`)."""
    u = Url(url)
    found: list[ObjectVersion] = []
    kwargs: dict[str, Any] = {"Bucket": u.bucket, "Prefix": u.object_key}
    while True:
        page = fs.call_s3("list_object_versions", **kwargs)
        found += [ObjectVersion(v["Key"], v["VersionId"], v["ETag"], bool(v["IsLatest"]))
                  for v in page.get("Versions", []) if v["Key"] == u.object_key]
        if not page.get("IsTruncated"):
            return found
        kwargs.update(KeyMarker=page["NextKeyMarker"], VersionIdMarker=page["NextVersionIdMarker"])


def delete_versions(fs: s3fs.S3FileSystem, bucket: str, versions: list[ObjectVersion]) -> int:
    """Permanently delete these object versions (by id: a version written meanwhile is not touched)."""
    for i in range(0, len(versions), 1000):
        batch = [{"Key": v.key, "VersionId": v.version_id} for v in versions[i:i + 1000]]
        out = fs.call_s3("delete_objects", Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        if out.get("Errors"):
            first = out["Errors"][0]
            raise SweepError(f"s3://{bucket}/{first.get('Key')}: could not delete an old object version "
                             f"({first.get('Code')}); check object lock / MFA delete on the bucket")
    return len(versions)


def superseded(fs: s3fs.S3FileSystem, url: str, since: str) -> list[ObjectVersion]:
    """The versions of `url` older than version `since` (one this run wrote or recovered), which hold
    the bytes it replaced; none if `since` is no longer stored."""
    versions = versions_of(fs, url)
    ids = [v.version_id for v in versions]
    return versions[ids.index(since) + 1:] if since in ids else []


def noncurrent(fs: s3fs.S3FileSystem, url: str) -> list[ObjectVersion]:
    """Every object version under the prefix `url` that is not the current object of its key, and every
    delete marker: what a versioned bucket keeps of objects replaced or deleted (none elsewhere)."""
    root = Url(url)
    if not versioned(fs, root.bucket):
        return []
    found: list[ObjectVersion] = []
    kwargs: dict[str, Any] = {"Bucket": root.bucket, "Prefix": root.object_key.rstrip("/") + "/"}
    while True:
        page = fs.call_s3("list_object_versions", **kwargs)
        found += [ObjectVersion(v["Key"], v["VersionId"], v.get("ETag", ""), False)
                  for v in page.get("Versions", []) + page.get("DeleteMarkers", []) if not v["IsLatest"]]
        found += [ObjectVersion(m["Key"], m["VersionId"], "", True) for m in page.get("DeleteMarkers", [])
                  if m["IsLatest"]]
        if not page.get("IsTruncated"):
            return found
        kwargs.update(KeyMarker=page["NextKeyMarker"], VersionIdMarker=page["NextVersionIdMarker"])


def purge_keys(fs: s3fs.S3FileSystem, url: str, names: Sequence[str]) -> int:
    """Delete every object, object version and delete marker whose key under `url` starts with one of
    `names` (the sweep's own internal objects only)."""
    root = Url(url)
    base = root.object_key.rstrip("/")
    doomed: list[ObjectVersion] = []
    for name in names:
        kwargs: dict[str, Any] = {"Bucket": root.bucket, "Prefix": f"{base}/{name}" if base else name}
        while True:
            page = fs.call_s3("list_object_versions", **kwargs)
            doomed += [ObjectVersion(v["Key"], v["VersionId"], v.get("ETag", ""), bool(v["IsLatest"]))
                       for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
            if not page.get("IsTruncated"):
                break
            kwargs.update(KeyMarker=page["NextKeyMarker"], VersionIdMarker=page["NextVersionIdMarker"])
    return delete_versions(fs, root.bucket, doomed)


def delete(fs: s3fs.S3FileSystem, url: str, etag: str, version_id: str | None) -> bool:
    """Delete the object this run read (ETag `etag`): in a versioned bucket that version and every older
    one, by id, oldest first (no older version resurfaces); otherwise one DELETE with `If-Match`.
    Return False (nothing deleted) if the object changed since."""
    u = Url(url)
    if version_id is not None:
        versions = versions_of(fs, url)
        ids = [v.version_id for v in versions]
        if version_id not in ids or not versions[ids.index(version_id)].latest:
            return False
        for v in reversed(versions[ids.index(version_id):]):
            fs.call_s3("delete_object", Bucket=u.bucket, Key=u.object_key, VersionId=v.version_id)
        fs.invalidate_cache(u.key)
        return True
    try:
        fs.call_s3("delete_object", Bucket=u.bucket, Key=u.object_key, IfMatch=etag)
    except FileNotFoundError:
        return False
    except OSError as exc:
        if _precondition_failed(exc):
            return False
        raise
    finally:
        fs.invalidate_cache(u.key)
    return True


def upload_report(fs: s3fs.S3FileSystem, folder: Path, report_url: str) -> list[str]:
    """Copy one run's report folder to `report_url/<folder name>/`; return the object URLs."""
    target = Url(report_url) / folder.name
    urls = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        url = target / path.relative_to(folder).as_posix()
        fs.put_file(str(path), url.key)
        urls.append(str(url))
    return urls
