"""Residual scan (issue 18): a blacklisted person outside the configured columns is found, per column,
in every shape a copy takes; a similar address is not; every file is read once, whatever the entries."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.assurance import residual
from pipelines.assurance.residual_scan import run_scan
from pipelines.config.settings import load_settings
from pipelines.core.model import Entry
from tests.support.lake import events, lake_toml

ANNA = Entry("bid-anna", "anna@example.com", "u-anna-42", None)
SCOPED = Entry("bid-shop", "zoe@example.org", None, "shop")
SCHEMA = pa.schema([
    ("EventId", pa.string()),
    ("Scope", pa.string()),
    ("User", pa.struct([("Email", pa.string()), ("UserId", pa.string())])),
    ("DeviceId", pa.string()),
    ("ContactEmail", pa.string()),
    ("Payload", pa.large_string()),
    ("Url", pa.string()),
    ("Meta", pa.struct([("Link", pa.string()), ("Visits", pa.int32())])),
    ("Tags", pa.list_(pa.string())),
    ("Attrs", pa.map_(pa.string(), pa.string())),
])


def event(i: int, **values) -> dict:
    row = {"EventId": f"e{i}", "Scope": None, "User": {"Email": None, "UserId": None}, "DeviceId": f"dev-{i}",
           "ContactEmail": None, "Payload": None, "Url": None, "Meta": {"Link": None, "Visits": i}, "Tags": [],
           "Attrs": []}
    row.update(values)
    return row


ROWS = [
    event(0, ContactEmail="Anna@Example.COM"),                                       # unconfigured column
    event(1, Payload=json.dumps({"to": ["x@example.net", "ANNA@example.com"], "n": 1})),  # JSON payload
    event(2, Url="https://t.example.net/open?c=9&e=anna%40example.com&x=1"),          # percent-encoded URL
    event(3, Meta={"Link": "mailto:anna@example.com?subject=Hi", "Visits": 3}),       # struct field
    event(4, Url="https://t.example.net/open?e=anna%2540example.com"),                # encoded twice
    event(5, Tags=["vip", " u-anna-42 "], Attrs=[("friend", "u-anna-42")]),          # user id: list, map value
    # other people with similar addresses: never Anna
    event(6, ContactEmail="hanna@example.com", Payload='{"to": "anna@example.co"}',
          Url="https://t.example.net/?e=hanna%40example.com", Meta={"Link": "mailto:anna@example.com.au", "Visits": 6}),
    event(7, ContactEmail="joanna@example.com", Payload="write to anna@example.community",
          Tags=["u-anna-421", "xu-anna-42"]),
    # Zoe is blacklisted for the scope `shop` only: found in her scope, not in another
    event(8, Scope="Shop", ContactEmail="zoe@example.org"),
    event(9, Scope="other", ContactEmail="zoe@example.org"),
]

CONFIG = lake_toml(events())


@pytest.fixture
def lake(tmp_path):
    (tmp_path / "gdpr-sweep.toml").write_text(CONFIG)
    folder = tmp_path / "clean" / "events"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(ROWS[:5], schema=SCHEMA), folder / "part-0.parquet")
    pq.write_table(pa.Table.from_pylist(ROWS[5:], schema=SCHEMA), folder / "part-1.parquet", row_group_size=2)
    return load_settings(tmp_path / "gdpr-sweep.toml")


def by_column(result, blacklist_id):
    return {(f.column, f.match): f.rows for f in result.findings if f.blacklist_id == blacklist_id}


def test_each_copy_is_found_under_its_column_and_similar_addresses_are_not(lake):
    result = run_scan(lake, [ANNA, SCOPED])
    assert by_column(result, "bid-anna") == {
        ("ContactEmail", "email"): 1,
        ("Payload", "email"): 1,
        ("Url", "email"): 2,
        ("Meta.Link", "email"): 1,
        ("Tags[]", "user_id"): 1,
        ("Attrs{value}", "user_id"): 1,
    }
    assert by_column(result, "bid-shop") == {("ContactEmail", "email"): 1}
    assert all(not f.configured and f.target == "events" and f.kind == "dataset" for f in result.findings)
    assert result.targets == ({"name": "events", "kind": "dataset", "files": 2, "rows": 10,
                               "values": result.targets[0]["values"]},)


def test_linked_devices_are_found_as_whole_values_and_a_configured_column_is_marked(lake):
    result = run_scan(lake, [ANNA], devices=[("bid-anna", "dev-7"), ("bid-gone", "dev-8")])
    found = {(f.column, f.match): (f.rows, f.configured) for f in result.findings}
    assert found[("DeviceId", "device_id")] == (1, True)
    assert result.devices == 1  # a device of an entry not in the blacklist is not searched


def test_no_entries_no_findings(lake):
    result = run_scan(lake, [])
    assert result.findings == () and result.targets[0]["rows"] == 10


class CountingFile(io.FileIO):
    """A real file whose reads are counted (bytes), to prove the scan reads each file once."""

    bytes_read: dict[str, int] = {}

    def read(self, size=-1):
        data = super().read(size)
        CountingFile.bytes_read[self.name] = CountingFile.bytes_read.get(self.name, 0) + len(data)
        return data

    def readinto(self, buffer):
        n = super().readinto(buffer)
        CountingFile.bytes_read[self.name] = CountingFile.bytes_read.get(self.name, 0) + (n or 0)
        return n


def test_each_file_is_opened_once_and_read_alike_for_one_entry_or_five_hundred(lake, monkeypatch):
    opened: list[str] = []

    def counting_open(path: Path, fs=None):
        opened.append(str(path))
        return CountingFile(str(path), "rb")  # the real file, its reads counted

    monkeypatch.setattr(residual, "open_input", counting_open)
    files = sorted(str(p) for p in lake.datasets[0].path.glob("*.parquet"))
    reads = []
    for entries in (1, 500):
        opened.clear()
        CountingFile.bytes_read = {}
        many = [ANNA] + [Entry(f"bid-{i}", f"person{i}@example.com", f"u-{i}", None) for i in range(entries - 1)]
        result = run_scan(lake, many)
        assert sorted(opened) == files  # one open per file
        assert by_column(result, "bid-anna")[("Payload", "email")] == 1
        reads.append(dict(CountingFile.bytes_read))
    assert reads[0] == reads[1]  # the same bytes, whatever the number of entries
    for f in files:  # each data page once; the footer is read ahead once more when the file is opened
        assert 0 < reads[0][f] <= 2 * Path(f).stat().st_size, f


def test_folders_under_a_lake_root_that_are_no_dataset_are_scanned_for_unscoped_entries(lake, tmp_path):
    config = tmp_path / "gdpr-sweep.toml"
    config.write_text(lake_toml(events(), scan={"lake_roots": ["."]}))
    exports = tmp_path / "exports" / "day=2026-11-01"
    exports.mkdir(parents=True)
    pq.write_table(pa.table({"note": ["call ANNA@example.com", "zoe@example.org"]}), exports / "x.parquet")
    settings = load_settings(config)
    result = run_scan(settings, [ANNA, SCOPED])
    folders = [f for f in result.findings if f.kind == "folder"]
    assert [(f.target, f.column, f.blacklist_id, f.rows) for f in folders] == [
        (str(tmp_path / "exports"), "note", "bid-anna", 1)]
    assert {t["name"] for t in result.targets} == {"events", str(tmp_path / "exports")}  # the dataset once


def test_gdpr_sweep_scan_searches_the_devices_remembered_with_an_entry(lake):
    from gdpr_sweep.scan_ops import residual_scan
    from pipelines.core.links import LINK_SCHEMA
    from pipelines.registry.links import LinkStore
    from pipelines.registry.registry import Registry

    registry = Registry(lake.blacklist_db)
    anna, _ = registry.add(email="anna@example.com")
    LinkStore(registry).record(pa.Table.from_pylist([{"bid": anna.blacklist_id, "device": "dev-7", "via": "profile"}],
                                                    schema=LINK_SCHEMA))
    summary = residual_scan(lake, fail=False)
    found = {(f["column"], f["match"]): f["rows"] for f in summary["findings"]}
    assert found[("DeviceId", "device_id")] == 1 and found[("ContactEmail", "email")] == 1
    assert "dev-7" not in json.dumps(summary)


def test_string_view_columns_as_delta_rs_writes_them_are_searched(tmp_path):
    (tmp_path / "gdpr-sweep.toml").write_text(CONFIG)
    folder = tmp_path / "clean" / "events"
    folder.mkdir(parents=True)
    view = pa.schema([("Scope", pa.string_view()), ("User", pa.struct([("Email", pa.string_view()),
                                                                        ("UserId", pa.string_view())])),
                      ("DeviceId", pa.string_view()), ("Notes", pa.list_(pa.string_view()))])
    rows = [{"Scope": None, "User": {"Email": "x@example.net", "UserId": None}, "DeviceId": "d1",
             "Notes": ["to: anna@example.com", "hanna@example.com"]}]
    pq.write_table(pa.Table.from_pylist(rows, schema=view), folder / "part-0.parquet")
    assert pq.read_schema(folder / "part-0.parquet").field("DeviceId").type == pa.string_view()
    result = run_scan(load_settings(tmp_path / "gdpr-sweep.toml"), [ANNA])
    assert by_column(result, "bid-anna") == {("Notes[]", "email"): 1}


def test_findings_kept_under_a_retention_hold_are_shown_in_the_markdown_and_html_pages():
    """`held_findings` are not residuals, but the pages show them (with the hold) as the JSON does."""
    from pipelines.assurance.residual_scan import excluding_held
    from pipelines.core.holds import Hold
    from pipelines.reporting import residual_report

    finding = {"kind": "dataset", "target": "orders", "column": "Billing.Contact", "configured": False,
               "match": "email", "blacklist_id": "bid-held", "rows": 2}
    other = {**finding, "target": "events", "column": "Note", "blacklist_id": "bid-other", "rows": 1}
    block = {"scanned": True, "scanned_at": "2026-12-07T02:00:00Z", "targets": [], "entries_searched": 2,
             "devices_searched": 0, "findings": [finding, other], "found": True, "status": "residuals found",
             "advice": "advice", "entries_found": 2, "not_scanned": []}
    hold = Hold("hold-1234", "bid-held", "orders", "invoice retention", None, "2026-12-01T00:00:00.000000Z", "cli")
    held = excluding_held(block, [hold], "2026-12-07T02:00:00.000000Z")
    assert [f["blacklist_id"] for f in held["findings"]] == ["bid-other"]

    md, page = "\n".join(residual_report.markdown(held)), residual_report.html(held)
    assert "| orders | `Billing.Contact` | email | bid-held | 2 | hold-1234 |" in md
    assert "<td class=id>bid-held</td><td class=n>2</td><td class=id>hold-1234</td>" in page
    assert residual_report.HELD_NOTE in md and "retention hold" in page
    nothing_held = "\n".join(residual_report.markdown(block)) + residual_report.html(block)
    assert "hold-1234" not in nothing_held and "retention hold" not in nothing_held
