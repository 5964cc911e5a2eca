"""Delta tables with the `deletionVectors` feature (issue 16).

deltalake 1.6 (delta-rs) cannot read deletion vectors (its reader refuses the feature; delta-io/delta-rs#1094)
and never writes them: with `delta.enableDeletionVectors = true` its deletes still rewrite files. So:

- a table that has the feature but whose active files carry no vector (created by deltalake, or purged
  by Spark's `REORG ... APPLY (PURGE)`) is swept like any Delta table;
- a table where an active file carries one (Spark and Databricks write them on DELETE, UPDATE, MERGE)
  is refused before anything is written, with the engine and command that rewrites them.

deltalake cannot create a vector, so the test writes one into the log as the Delta protocol defines it
(an `add` action with a `deletionVector` descriptor, here an on-disk one, `storageType` "u").
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from pipelines.config.settings import DatasetConfig
from pipelines.core.errors import ConfigError
from pipelines.core.match import connect, entries_table, find_matches
from pipelines.datasets import delta
from tests.contract import search
from tests.helpers import entry

USER = pa.struct([("Email", pa.string()), ("UserId", pa.string())])
EVENTS = pa.schema([("DeviceId", pa.string()), ("Scope", pa.string()), ("User", USER)])
GONE = "gone@example.com"


def make_table(path: Path) -> DatasetConfig:
    for rows in ([{"DeviceId": "d1", "Scope": None, "User": {"Email": "Gone@Example.com", "UserId": None}},
                  {"DeviceId": "d2", "Scope": None, "User": {"Email": "keep@example.com", "UserId": None}}],
                 [{"DeviceId": "d3", "Scope": None, "User": {"Email": "other@example.com", "UserId": None}}]):
        write_deltalake(str(path), pa.Table.from_pylist(rows, schema=EVENTS), mode="append",
                        configuration={"delta.enableDeletionVectors": "true"})
    return DatasetConfig(name="events", kind="events", path=path, format="delta", email="User.Email",
                         user_id="User.UserId", device_id="DeviceId", scope="Scope")


def sweep(config: DatasetConfig, emails: list[str]) -> delta.DeltaOutcome:
    plan = delta.plan_table(config)
    with connect() as con:
        matches = find_matches(con, entries_table([entry(email=e) for e in emails]), [plan.as_input()])
        outcome = delta.purge_table(con, plan, matches.datasets["events"], "r1", 1)
    delta.finish_purge(config, outcome, emails)
    return outcome


def test_table_with_the_feature_and_no_vector_is_swept(tmp_path):
    config = make_table(tmp_path / "events")
    assert "deletionVectors" in DeltaTable(str(config.path)).protocol().reader_features
    assert search.files_holding(search.local_files(config.path), [GONE])  # the search works here
    outcome = sweep(config, [GONE])
    assert outcome.rows_removed == 1
    files = DeltaTable(str(config.path)).file_uris()  # deltalake's own reader refuses the feature
    rows = duckdb.sql("SELECT \"User\".\"Email\" AS e FROM read_parquet($f) ORDER BY e", params={"f": files}).fetchall()
    assert rows == [("keep@example.com",), ("other@example.com",)]
    assert search.files_holding(search.local_files(config.path), [GONE]) == []


def add_deletion_vector(table_path: Path) -> str:
    """Commit, as Spark does after a DELETE with deletion vectors, the first active file again with a
    vector marking its first row deleted; return that file's path."""
    log = table_path / "_delta_log"
    version = DeltaTable(str(table_path)).version()
    first = [json.loads(x) for x in (log / f"{0:020d}.json").read_text().splitlines()]
    add = next(a["add"] for a in first if "add" in a)
    vector = {"storageType": "u", "pathOrInlineDv": "ab^-aqEH.-t@S}K{vb[*k^", "offset": 1, "sizeInBytes": 36,
              "cardinality": 1}
    actions = [{"commitInfo": {"timestamp": 1, "operation": "DELETE"}},
               {"remove": {"path": add["path"], "dataChange": True, "deletionTimestamp": 1}},
               {"add": {**add, "deletionVector": vector}}]
    (log / f"{version + 1:020d}.json").write_text("".join(json.dumps(a) + "\n" for a in actions))
    return add["path"]


@pytest.mark.parametrize("checkpointed", [False, True], ids=["json-commit", "checkpoint"])
def test_table_with_a_deletion_vector_is_refused_with_the_command_that_rewrites_it(tmp_path, checkpointed):
    config = make_table(tmp_path / "events")
    add_deletion_vector(config.path)
    if checkpointed:  # the vector now stands in a Parquet checkpoint, the commits before it deleted
        DeltaTable(str(config.path)).create_checkpoint()
        for commit in (config.path / "_delta_log").glob("*.json"):
            commit.unlink()
    before = sorted((p.name, p.stat().st_mtime_ns) for p in config.path.rglob("*"))
    with pytest.raises(ConfigError) as info:
        delta.plan_table(config)
    message = str(info.value)
    assert message.startswith("dataset 'events': 1 active file(s) of the Delta table carry deletion vectors")
    assert "deltalake, which gdpr-sweep uses, cannot read or rewrite them" in message
    assert f"Spark (Delta Lake 2.4 or later) or Databricks: REORG TABLE delta.`{config.location}` APPLY (PURGE)" \
        in message
    assert "rewrite the table without them" not in message  # the old advice, which deltalake cannot follow
    assert sorted((p.name, p.stat().st_mtime_ns) for p in config.path.rglob("*")) == before  # nothing written
