"""`gdpr-sweep ingest | clear-user-data | suppress | blacklist export --suppression` as a user runs them."""

from __future__ import annotations

import csv
import hashlib
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.config.settings import load_settings
from pipelines.registry.registry import Registry
from tests.helpers import (
    EVENT_SCHEMA,
    PROFILE_SCHEMA,
    lake_config,
    make_event,
    make_profile,
    read_dataset,
    sweep,
    write,
)

CONFIG = lake_config("raw")
E = "anna@example.com"


@pytest.fixture
def lake(run_cli, tmp_path):
    """The `run_cli` folder with a two-dataset configuration, swept once, and two entries."""
    (tmp_path / "gdpr-sweep.toml").write_text(CONFIG)
    settings = load_settings(tmp_path / "gdpr-sweep.toml")
    write(tmp_path / "raw/profiles/p.parquet", [make_profile(E, device_ids=["d1"]), make_profile("bob@example.com")],
          PROFILE_SCHEMA)
    write(tmp_path / "raw/events/e1.parquet", [make_event(E, scope="shop"), make_event("bob@example.com")],
          EVENT_SCHEMA)
    write(tmp_path / "raw/events/e2.parquet", [make_event("cara@example.com")], EVENT_SCHEMA)
    sweep(list(settings.datasets), [])
    registry = Registry(settings.blacklist_db)
    anna = registry.add(email=E)[0].blacklist_id
    registry.add(email="Dave@Example.com", scope="shop")
    return settings, anna


def one_line_error(r, code):
    assert r.code == code, (r.code, r.out, r.err)
    assert r.err.count("\n") == 1 and r.err.startswith("gdpr-sweep: error:")


def test_ingest_appends_counts_and_detects_the_duplicate(run_cli, lake, tmp_path):
    settings, _ = lake
    batch = write(tmp_path / "in/b.parquet", [make_event("ANNA@example.com"), make_event("x@y.z")], EVENT_SCHEMA)
    r = run_cli("ingest", "events", str(batch))
    assert r.code == 0, r.err
    assert (r.json["rows_appended"], r.json["rows_dropped"], r.json["duplicate"]) == (1, 1, False)
    assert "anna" not in r.out.lower()
    again = run_cli("ingest", "events", str(batch), "--delete-raw")
    assert again.code == 0 and again.json["duplicate"] and again.json["rows_appended"] == 0
    assert not batch.exists() and again.json["raw_deleted"] == [str(batch)]
    assert read_dataset(settings.dataset("events")).num_rows == 4


def test_ingest_bad_input_exits_2(run_cli, lake, tmp_path):
    bad = tmp_path / "in/track.jsonl"
    bad.parent.mkdir()
    bad.write_text('{"DeviceId": "d1"}\n{"DeviceId": "d2", "User": {"Email": "z@example.com"}, "Amount": "lots"}\n')
    r = run_cli("ingest", "events", str(bad))
    one_line_error(r, 2)
    assert "line 2" in r.err and "z@example.com" not in r.err
    one_line_error(run_cli("ingest", "nope", str(bad)), 2)
    one_line_error(run_cli("ingest", "events", str(tmp_path / "missing.parquet")), 2)


def test_clear_user_data_and_not_found(run_cli, lake, tmp_path):
    settings, anna = lake
    r = run_cli("clear-user-data", anna)
    assert r.code == 0, r.err
    assert r.json["BlacklistId"] == anna and r.json["rows_removed"] == 2 and r.json["files_rewritten"] == 2
    assert "anna" not in r.out.lower()
    assert json.loads((tmp_path / r.json["report"]).read_text())["kind"] == "clear_user_data"
    missing = run_cli("clear-user-data", "00000000-0000-0000-0000-000000000000")
    one_line_error(missing, 3)
    assert "no blacklist entry" in missing.err
    dave = Registry(settings.blacklist_db).list(scope="shop").items[0].blacklist_id
    no_profile = run_cli("clear-user-data", dave)
    one_line_error(no_profile, 3)
    assert "no profile carries the email" in no_profile.err and "dave" not in no_profile.err.lower()


def test_suppress_csv_with_mixed_case_emails_and_scoped_entries(run_cli, lake, tmp_path):
    audience = tmp_path / "out/audience.csv"
    audience.parent.mkdir()
    audience.write_text("Email,BusinessUnit,FirstName,Zip\n"
                        "Anna@Example.COM,outlet,A,01234\n"      # unscoped entry: every scope
                        "dave@example.com,SHOP,D,0042\n"         # scoped entry, its scope in another case
                        "DAVE@example.com,outlet,D,0042\n"       # another scope: allowed
                        "eve@example.com,,E,\n")
    r = run_cli("suppress", str(audience), "--email-column", "Email", "--scope-column", "BusinessUnit")
    assert r.code == 0, r.err
    assert (r.json["rows_in"], r.json["allowed"], r.json["failed"]) == (4, 2, 2)
    allowed = list(csv.DictReader(open(tmp_path / "out/audience.allowed.csv")))
    failed = list(csv.DictReader(open(tmp_path / "out/audience.failed.csv")))
    assert [row["Email"] for row in allowed] == ["DAVE@example.com", "eve@example.com"]
    assert allowed[0]["Zip"] == "0042" and allowed[1]["BusinessUnit"] == ""  # text kept exactly
    assert [(row["Email"], row["reason"]) for row in failed] == [("Anna@Example.COM", "blacklisted"),
                                                                ("dave@example.com", "blacklisted")]
    assert "anna" not in r.out.lower().replace("audience", "")


def test_suppress_parquet_with_a_scope_for_the_whole_file(run_cli, lake, tmp_path):
    table = pa.table({"email": ["dave@example.com", "ok@example.com"], "n": pa.array([1, 2], pa.int16())})
    pq.write_table(table, tmp_path / "msg.parquet")
    r = run_cli("suppress", str(tmp_path / "msg.parquet"), "--scope", "shop",
                "--allowed", str(tmp_path / "send.parquet"), "--failed", str(tmp_path / "failed.parquet"))
    assert r.code == 0, r.err
    assert pq.read_table(tmp_path / "send.parquet").equals(table.slice(1))
    assert pq.read_table(tmp_path / "failed.parquet").column("reason").to_pylist() == ["blacklisted"]
    one_line_error(run_cli("suppress", str(tmp_path / "msg.parquet"), "--email-column", "mail"), 2)


def test_suppress_reads_recipient_fields_as_mail_systems_write_them(run_cli, lake, tmp_path):
    """Issue 14: these three rows all went to the allowed file although anna@example.com is blacklisted."""
    audience = tmp_path / "msg.csv"
    audience.write_text('To,n\n'
                        'Anna <anna@example.com>,1\n'
                        'mailto:anna@example.com,2\n'
                        '"anna@example.com, carl@example.com",3\n'
                        '"Carl <carl@example.com>, fred@example.com",4\n'
                        'carl@example.com fred@example.com,5\n')
    r = run_cli("suppress", str(audience), "--email-column", "To")
    assert r.code == 0, r.err
    assert (r.json["rows_in"], r.json["allowed"], r.json["failed"]) == (5, 1, 4)
    assert r.json["failed_by_reason"] == {"blacklisted": 3, "unparseable": 1}
    failed = list(csv.DictReader(open(tmp_path / "msg.failed.csv")))
    assert [(row["n"], row["reason"]) for row in failed] == [("1", "blacklisted"), ("2", "blacklisted"),
                                                              ("3", "blacklisted"), ("5", "unparseable")]
    assert [row["n"] for row in csv.DictReader(open(tmp_path / "msg.allowed.csv"))] == ["4"]
    assert "anna" not in r.out.lower() and "carl" not in r.out.lower()


def test_suppression_list_plain_and_hashed(run_cli, lake, tmp_path):
    plain = run_cli("blacklist", "export", "--suppression")
    assert plain.code == 0 and plain.out == "anna@example.com\ndave@example.com\n"
    r = run_cli("blacklist", "export", "--suppression", "--hashed", str(tmp_path / "esp.txt"))
    assert r.code == 0 and r.json["count"] == 2 and r.json["hashed"]
    assert (tmp_path / "esp.txt").read_text().split() == sorted(
        hashlib.sha256(e.encode()).hexdigest() for e in ("anna@example.com", "dave@example.com"))
    one_line_error(run_cli("blacklist", "export", "--hashed"), 2)
    assert run_cli("blacklist", "export").json["total"] == 2  # the Optimizely list is unchanged


def test_sweep_has_the_delete_raw_flag(run_cli):
    r = run_cli("sweep", "--help")
    assert r.code == 0 and "--delete-raw" in r.out
