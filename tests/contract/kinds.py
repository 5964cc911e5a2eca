"""The kinds of dataset the contract suite runs on: where the lake lives (a local folder or a versioned
S3 bucket on moto's server) times how a dataset is stored (plain Parquet files, a Delta table, an
Iceberg table). The tests only write data the way another tool would, read it back the way a user's
engine would, and look at every byte under the location; the sweep itself runs through the flow or
the `gdpr-sweep` command line. Adding a kind of dataset = one `Format` here + one parameter in
conftest.py's `BACKENDS`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from tests.contract import search
from tests.support.lake import s3_table

# ---- where the lake lives -------------------------------------------------------------------------


class LocalStore:
    """The lake is the folder `root/lake`; configuration paths are relative to `root`."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lake = root / "lake"
        self.lake.mkdir(parents=True)

    def url(self, dataset: str) -> str:
        return f"lake/{dataset}"

    def path(self, dataset: str) -> str:
        return str(self.lake / dataset)

    def tables(self) -> dict[str, Any]:
        """Top-level configuration tables the store needs."""
        return {}

    def filesystem(self) -> Any:
        return pa.fs.LocalFileSystem()

    def write_parquet(self, dataset: str, rel: str, table: pa.Table) -> None:
        target = self.lake / dataset / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, target)

    def files(self) -> Iterator[tuple[str, bytes]]:
        return search.local_files(self.lake)

    def identities(self) -> dict[str, Any]:
        """Everything in the lake folder, bookkeeping included: each file by (inode, size, mtime), each
        symlink by its target, each folder by its presence. A quiet night must leave it all as it was
        (no new version folder, manifest or symlink switch)."""
        seen: dict[str, Any] = {}
        for folder, dirs, names in os.walk(self.lake):
            for name in dirs + names:
                path = Path(folder) / name
                rel = str(path.relative_to(self.lake))
                if path.is_symlink():
                    seen[rel] = ("link", os.readlink(path))
                elif path.is_dir():
                    seen[rel] = ("dir",)
                else:
                    st = path.stat()
                    seen[rel] = (st.st_ino, st.st_size, st.st_mtime_ns)
        return seen


class S3Store:
    """The lake is `s3://<bucket>/lake` in a versioned bucket of its own on moto's server."""

    name = "s3"

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        self.bucket = f"lake-{uuid.uuid4().hex[:8]}"
        self.client = boto3.client("s3", endpoint_url=s3.endpoint_url, region_name=s3.region,
                                   aws_access_key_id=s3.access_key_id, aws_secret_access_key=s3.secret_access_key)
        self.client.create_bucket(Bucket=self.bucket)
        self.client.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})

    def url(self, dataset: str) -> str:
        return f"s3://{self.bucket}/lake/{dataset}"

    def path(self, dataset: str) -> str:
        return self.url(dataset)

    def tables(self) -> dict[str, Any]:
        return {"s3": s3_table(self.s3.endpoint_url)}

    def storage_options(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.s3.endpoint_url, "AWS_REGION": self.s3.region,
                "AWS_ACCESS_KEY_ID": self.s3.access_key_id, "AWS_SECRET_ACCESS_KEY": self.s3.secret_access_key,
                "AWS_ALLOW_HTTP": "true"}

    def filesystem(self) -> Any:
        return pa.fs.S3FileSystem(endpoint_override=self.s3.endpoint_url, region=self.s3.region,
                                  access_key=self.s3.access_key_id, secret_key=self.s3.secret_access_key,
                                  scheme="http")

    def write_parquet(self, dataset: str, rel: str, table: pa.Table) -> None:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        self.client.put_object(Bucket=self.bucket, Key=f"lake/{dataset}/{rel}", Body=sink.getvalue().to_pybytes())

    def files(self) -> Iterator[tuple[str, bytes]]:
        return search.s3_files(self.client, self.bucket, "lake/")

    def identities(self) -> dict[str, Any]:
        """(key, version id) -> (ETag, LastModified) of every object version and delete marker."""
        seen: dict[str, Any] = {}
        kwargs = {"Bucket": self.bucket, "Prefix": "lake/"}
        while True:
            page = self.client.list_object_versions(**kwargs)
            for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                seen[f"{v['Key']}@{v['VersionId']}"] = (v.get("ETag", "delete-marker"), v["LastModified"].isoformat())
            if not page.get("IsTruncated"):
                return seen
            kwargs.update(KeyMarker=page["NextKeyMarker"], VersionIdMarker=page["NextVersionIdMarker"])


Store = LocalStore | S3Store

# ---- how a dataset is stored ------------------------------------------------------------------------


class ParquetFiles:
    """A folder or prefix of Parquet files (Hive-style subfolders), read as an engine reads a glob."""

    name = "parquet"

    def keys(self, store: Store, dataset: str) -> dict[str, Any]:
        return {}

    def write(self, store: Store, dataset: str, rel: str, table: pa.Table) -> None:
        store.write_parquet(dataset, rel, table)

    def read(self, store: Store, dataset: str) -> pa.Table:
        fs = store.filesystem()
        root = store.path(dataset).removeprefix("s3://")
        data = pads.dataset(root, filesystem=fs, format="parquet", partitioning=None)  # skips `_` and `.` names
        return data.to_table()

    def file_schemas(self, store: Store, dataset: str) -> list[pa.Schema]:
        fs = store.filesystem()
        root = store.path(dataset).removeprefix("s3://")
        data = pads.dataset(root, filesystem=fs, format="parquet", partitioning=None)
        return [pq.read_schema(f, filesystem=fs) for f in data.files]


class DeltaTables:
    """A Delta table written and read by deltalake (delta-rs), as a Spark-free pipeline would."""

    name = "delta"

    def keys(self, store: Store, dataset: str) -> dict[str, Any]:
        return {"format": "delta"}

    def _options(self, store: Store) -> dict[str, str] | None:
        return store.storage_options() if isinstance(store, S3Store) else None

    def write(self, store: Store, dataset: str, rel: str, table: pa.Table) -> None:
        from deltalake import write_deltalake

        write_deltalake(store.path(dataset), table, mode="append", storage_options=self._options(store))

    def read(self, store: Store, dataset: str) -> pa.Table:
        from deltalake import DeltaTable

        return DeltaTable(store.path(dataset), storage_options=self._options(store)).to_pyarrow_table()

    def file_schemas(self, store: Store, dataset: str) -> list[pa.Schema]:
        return [self.read(store, dataset).schema]


class IcebergTables:
    """An Iceberg table written and read by pyiceberg through its SQL catalog on a SQLite file, the
    table's location being the dataset's folder or prefix."""

    name = "iceberg"

    def __init__(self, catalog_db: Path) -> None:
        catalog_db.parent.mkdir(parents=True, exist_ok=True)
        self.catalog_db = catalog_db

    def keys(self, store: Store, dataset: str) -> dict[str, Any]:
        return {"format": "iceberg", "iceberg": {"table": f"lake.{dataset}", "catalog_db": self.catalog_db}}

    def _catalog(self, store: Store) -> Any:
        from pyiceberg.catalog.sql import SqlCatalog

        props = {"uri": f"sqlite:///{self.catalog_db}"}
        if isinstance(store, S3Store):
            props.update({"s3.endpoint": store.s3.endpoint_url, "s3.region": store.s3.region,
                          "s3.access-key-id": store.s3.access_key_id, "s3.secret-access-key": store.s3.secret_access_key})
        return SqlCatalog("default", **props)

    def _location(self, store: Store, dataset: str) -> str:
        return store.path(dataset) if isinstance(store, S3Store) else Path(store.path(dataset)).as_uri()

    def write(self, store: Store, dataset: str, rel: str, table: pa.Table) -> None:
        catalog = self._catalog(store)
        if ("lake",) not in catalog.list_namespaces():
            catalog.create_namespace("lake")
        if not catalog.table_exists(f"lake.{dataset}"):
            catalog.create_table(f"lake.{dataset}", schema=table.schema, location=self._location(store, dataset))
        catalog.load_table(f"lake.{dataset}").append(table)

    def read(self, store: Store, dataset: str) -> pa.Table:
        return self._catalog(store).load_table(f"lake.{dataset}").scan().to_arrow()

    def file_schemas(self, store: Store, dataset: str) -> list[pa.Schema]:
        return [self.read(store, dataset).schema]


@dataclass(frozen=True)
class Backend:
    """One parameter of the contract suite: a format on a store."""

    store: Store
    format: ParquetFiles | DeltaTables | IcebergTables

    @property
    def name(self) -> str:
        return f"{self.format.name}-{self.store.name}"

    def dataset_keys(self, dataset: str) -> dict[str, Any]:
        """The dataset's `path` and the format's keys in its configuration table."""
        return {"path": self.store.url(dataset), **self.format.keys(self.store, dataset)}

    def write(self, dataset: str, rel: str, rows: list[dict], schema: pa.Schema) -> None:
        self.format.write(self.store, dataset, rel, pa.Table.from_pylist(rows, schema=schema))

    def read(self, dataset: str) -> pa.Table:
        return self.format.read(self.store, dataset)

    def file_schemas(self, dataset: str) -> list[pa.Schema]:
        return self.format.file_schemas(self.store, dataset)

    def files_holding(self, needles: list[str]) -> list[str]:
        return search.files_holding(self.store.files(), needles)

    def identities(self) -> dict[str, Any]:
        return self.store.identities()
