"""`gdpr-sweep blacklist add | remove | list | history` as a user runs them: exit codes and output."""

from __future__ import annotations

import sqlite3

import pytest


def count_entries(tmp_path):
    db = tmp_path / "blacklist.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as con:
        return con.execute("SELECT count(*) FROM entries").fetchone()[0]


def test_add_normalises_and_prints_the_entry(run_cli):
    r = run_cli("blacklist", "add", "--email", "  Anna.Berg@Example.COM ", "--scope", "commercesite")
    assert r.code == 0, r.err
    body = r.json
    assert body["Email"] == "anna.berg@example.com" and body["Scope"] == "commercesite"
    assert body["Created"] is True and len(body["BlacklistId"]) == 36 and body["Source"] == "cli"


def test_duplicate_add_returns_the_existing_entry(run_cli, tmp_path):
    first = run_cli("blacklist", "add", "--email", "a@b.c").json
    second = run_cli("blacklist", "add", "--email", "A@B.C ").json
    assert second["BlacklistId"] == first["BlacklistId"] and second["Created"] is False
    assert count_entries(tmp_path) == 1


@pytest.mark.parametrize("args", [
    ["--email", "not-an-email"],
    ["--email", "@example.com"],
    ["--email", "anna@"],
    ["--email", "an na@example.com"],
    ["--email", "a" * 250 + "@b.cd"],
    ["--email", "a@b.c", "--scope", "Bad Scope"],
    ["--email", "a@b.c", "--scope", "UPPER"],
    ["--email", "a@b.c", "--scope", "_leading"],
    ["--email", "a@b.c", "--scope", "x" * 65],
    [],
])
def test_invalid_input_exits_2_with_one_line_and_stores_nothing(run_cli, tmp_path, args):
    r = run_cli("blacklist", "add", *args)
    assert r.code == 2
    assert r.err.count("\n") == 1 and r.err.startswith("gdpr-sweep: error:")
    assert "not-an-email" not in r.err and "an na@" not in r.err
    assert count_entries(tmp_path) == 0


def test_default_scope_and_user_id_entries(run_cli):
    assert run_cli("blacklist", "add", "--email", "a@b.c", "--scope", "DefaultScope").code == 0
    r = run_cli("blacklist", "add", "--user-id", "u-42")
    assert r.code == 0 and r.json["UserId"] == "u-42" and r.json["Email"] is None


def test_remove_and_unknown_id(run_cli, tmp_path):
    bid = run_cli("blacklist", "add", "--email", "a@b.c").json["BlacklistId"]
    assert run_cli("blacklist", "remove", bid).code == 0
    assert count_entries(tmp_path) == 0
    again = run_cli("blacklist", "remove", bid)
    assert again.code == 3 and "no blacklist entry" in again.err


def test_list_pages_and_sorts(run_cli):
    for i in range(5):
        run_cli("blacklist", "add", "--email", f"user{i}@example.com")
    page = run_cli("blacklist", "list", "--top", "2", "--skip", "1", "--order-by", "Email", "--desc").json
    assert page["total"] == 5 and page["count"] == 2
    assert [i["Email"] for i in page["items"]] == ["user3@example.com", "user2@example.com"]
    assert run_cli("blacklist", "list", "--top", "9999", "--skip", "5").code == 2


def test_history_keeps_no_plaintext_email(run_cli, tmp_path):
    bid = run_cli("blacklist", "add", "--email", "secret.person@example.com").json["BlacklistId"]
    run_cli("blacklist", "remove", bid)
    r = run_cli("blacklist", "history")
    assert [h["Action"] for h in r.json] == ["add", "remove"]
    assert "secret.person" not in r.out
    for f in tmp_path.glob("blacklist.db*"):  # the database, its WAL and shared memory
        assert b"secret.person" not in f.read_bytes(), f


def test_missing_config_is_a_usage_error(run_cli, tmp_path):
    r = run_cli("--config", str(tmp_path / "nope.toml"), "blacklist", "list")
    assert r.code == 2 and "configuration file not found" in r.err
