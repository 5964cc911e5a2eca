"""ClearUserData and ingest-guard reports join the sweep's hash chain (issue 18, "Every operation in the chain")."""

from __future__ import annotations

import json
import shutil

import pytest

from pipelines.operations.targeted import clear_user_data, ingest_batch
from pipelines.reporting import chain
from tests.helpers import EVENT_SCHEMA, make_event, write
from tests.report_support import PEOPLE, Lake
from tests.support.procs import run_cli


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """sweep, ClearUserData, ingest, sweep: four reports of three kinds in one chain."""
    lake = Lake(tmp_path_factory.mktemp("ops"), delete_raw=True)
    lake.forget("anna")
    first = lake.run()[1]["run"]["run_id"]
    bo = lake.forget("bo")
    clear = clear_user_data(lake.settings, bo.blacklist_id)
    batch = write(lake.root / "landing" / "batch.parquet",
                  [make_event(email=PEOPLE["anna"]["email"], device_id="d-new"), make_event(email="zed@example.com")],
                  EVENT_SCHEMA)
    ingest = ingest_batch(lake.settings, "events", batch)
    last = lake.run()[1]["run"]["run_id"]
    return lake, [first, clear["report"], ingest["report"], last]


@pytest.fixture
def reports(mixed, tmp_path):
    lake, runs = mixed
    dst = tmp_path / "reports"
    shutil.copytree(lake.settings.report_dir, dst)
    return dst, runs


def test_every_operation_is_a_link_of_one_chain(reports):
    folder, (first, clear_path, ingest_path, last) = reports
    links = chain.read_index(folder)
    assert [link.kind for link in links] == ["sweep", "clear_user_data", "ingest", "sweep"]
    assert links[1].relpath == chain.OPERATIONS_DIR + "/" + links[1].run_id + "/clear-user-data.json"
    assert str(folder / links[1].relpath).endswith(clear_path.split("/reports/", 1)[1])
    docs = [chain.load_document(folder, link.relpath) for link in links]
    for before, after in zip(docs, docs[1:], strict=False):
        assert after["integrity"]["previous_report_sha256"] == before["integrity"]["report_sha256"]
        assert after["integrity"]["previous_run_id"] == before["run"]["run_id"]
    assert docs[1]["integrity"]["pages"].keys() == {"clear-user-data.md"}
    assert docs[2]["integrity"]["pages"].keys() == {"ingest.md"}
    result = chain.verify_chain(folder)
    assert result.ok and result.reports_checked == 4 and result.head.run_id == last


def test_the_sweep_after_an_operation_carries_deadline_times_from_the_last_sweep(reports):
    folder, (first, *_rest, last) = reports
    before = {e["blacklist_id"]: e for e in chain.load_report(folder, first)["entries"]}
    after = {e["blacklist_id"]: e for e in chain.load_report(folder, last)["entries"]}
    (anna,) = before
    assert before[anna]["first_verified_gone_at"] is not None
    assert after[anna]["first_verified_gone_at"] == before[anna]["first_verified_gone_at"]


@pytest.mark.parametrize("which", [1, 2])
@pytest.mark.parametrize("page", [False, True])
def test_a_changed_byte_in_an_operation_report_or_its_page_is_named(reports, which, page):
    folder, _ = reports
    link = chain.read_index(folder)[which]
    path = folder / link.relpath
    if page:
        path = path.with_suffix(".md")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    result = chain.verify_chain(folder)
    assert [(p.run_id, p.problem) for p in result.problems] == [(link.run_id, "changed")]


def test_a_removed_operation_report_is_named(reports):
    folder, _ = reports
    link = chain.read_index(folder)[1]
    shutil.rmtree((folder / link.relpath).parent)
    result = chain.verify_chain(folder)
    assert not result.ok and (link.run_id, "removed") in [(p.run_id, p.problem) for p in result.problems]


def test_an_operation_report_slipped_in_is_named(reports):
    folder, _ = reports
    link = chain.read_index(folder)[2]
    fake = folder / chain.OPERATIONS_DIR / "29991231T000000000000Z-ingest"
    shutil.copytree((folder / link.relpath).parent, fake)
    doc = json.loads((fake / "ingest.json").read_text())
    doc["run"]["run_id"] = fake.name
    (fake / "ingest.json").write_text(json.dumps(doc))
    result = chain.verify_chain(folder)
    assert (fake.name, "not_in_chain") in [(p.run_id, p.problem) for p in result.problems]


def test_report_list_and_verify_cover_operations(mixed):
    lake, _ = mixed
    def cli(*args):
        return run_cli(lake.config, "report", *args, timeout=120)
    listed = cli("list", "--json")
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)["items"]
    assert [i["kind"] for i in items] == ["sweep", "clear_user_data", "ingest", "sweep"]
    assert items[1]["rows_removed"] > 0 and items[2]["rows_removed"] == 1
    assert all(i["status"] == "passed" for i in items)
    table = cli("list").stdout
    assert "clear_user_data" in table and "ingest" in table
    verified = cli("verify", "--json")
    assert verified.returncode == 0 and json.loads(verified.stdout)["reports_checked"] == 4
