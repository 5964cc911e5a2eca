"""`gdpr-sweep hold add | release | list` as a user runs them: validation and exit codes, ClearUserData
keeps held rows, and a held person is still suppressed."""

from __future__ import annotations

import csv
import json

from pipelines.reporting import chain
from tests.cli.test_ops_cli import E, lake, one_line_error  # noqa: F401  (fixture)
from tests.helpers import read_dataset


def test_hold_validation_and_exit_codes(run_cli, lake, tmp_path):  # noqa: F811
    _, anna = lake
    one_line_error(run_cli("hold", "add", "--reason", "tax"), 2)  # neither entry nor dataset
    one_line_error(run_cli("hold", "add", "--dataset", "nope", "--reason", "tax"), 2)
    missing = run_cli("hold", "add", "--blacklist-id", "00000000-0000-0000-0000-000000000000", "--reason", "tax")
    one_line_error(missing, 3)
    one_line_error(run_cli("hold", "add", "--blacklist-id", anna, "--reason", "claim by anna@example.com"), 2)
    one_line_error(run_cli("hold", "add", "--blacklist-id", anna, "--reason", "tax", "--until", "2001-01-01"), 2)
    one_line_error(run_cli("hold", "add", "--blacklist-id", anna, "--reason", "tax", "--until", "soon"), 2)
    one_line_error(run_cli("hold", "add", "--blacklist-id", anna, "--reason", "  "), 2)
    one_line_error(run_cli("hold", "release", "00000000-0000-0000-0000-000000000000"), 3)
    assert run_cli("hold", "list").json == {"total": 0, "items": []}
    assert chain.read_index(tmp_path / "reports") == []  # nothing refused was recorded

    placed = run_cli("hold", "add", "--dataset", "events", "--reason", "litigation 4 O 12/26", "--until", "2031-05-01")
    assert placed.code == 0, placed.err
    assert placed.json["Dataset"] == "events" and placed.json["Until"] == "2031-05-01T00:00:00.000000Z"
    assert run_cli("hold", "release", placed.json["HoldId"]).code == 0
    one_line_error(run_cli("hold", "release", placed.json["HoldId"]), 2)  # already released
    listed = run_cli("hold", "list").json["items"]
    assert [h["State"] for h in listed] == ["released"]
    assert run_cli("hold", "list", "--active").json["total"] == 0
    assert run_cli("report", "list").code == 0 and run_cli("report", "verify").code == 0
    listed = run_cli("report", "list", "--json").json["items"]
    assert [(r["kind"], r["status"].split(":")[0]) for r in listed] == [("hold", "hold placed"), ("hold", "hold released")]


def test_clear_user_data_keeps_held_rows_and_suppression_still_blocks(run_cli, lake, tmp_path):  # noqa: F811
    settings, anna = lake
    assert run_cli("hold", "add", "--blacklist-id", anna, "--dataset", "events", "--reason", "tax").code == 0
    r = run_cli("clear-user-data", anna)
    assert r.code == 0, r.err
    assert r.json["rows_removed"] == 1  # the profile; the held event stays
    events = read_dataset(settings.dataset("events")).to_pylist()
    assert sum(1 for e in events if e["User"] and e["User"]["Email"] == E) == 1
    audience = tmp_path / "audience.csv"
    audience.write_text("Email\nanna@example.com\nzoe@example.com\n")
    s = run_cli("suppress", str(audience), "--email-column", "Email")
    assert s.code == 0 and (s.json["allowed"], s.json["failed"]) == (1, 1)
    failed = list(csv.DictReader(open(tmp_path / "audience.failed.csv")))
    assert failed == [{"Email": "anna@example.com", "reason": "blacklisted"}]
    assert json.loads((tmp_path / r.json["report"]).read_text())["kind"] == "clear_user_data"
