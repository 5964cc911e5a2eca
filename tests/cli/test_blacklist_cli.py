"""`gdpr-sweep blacklist add | remove | list | history` as a user runs them: exit codes and output."""

from __future__ import annotations

import json
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


SEED_LIST = {"total": 2, "count": 2, "items": [
    {"BlacklistId": "62a2a514-a5f8-4e57-ae59-fe173167f8b7", "Email": "first@example.com", "Scope": "DefaultScope"},
    {"BlacklistId": "a9780654-80f8-41b5-a716-8da5950783bd", "Email": "second@example.com",
     "Scope": "bacb5c80-191e-433f-9fb2-b07c47b862af"}]}


def test_optimizely_import_and_export_round_trip(run_cli, tmp_path):
    src = tmp_path / "list.json"
    src.write_text(json.dumps(SEED_LIST))
    r = run_cli("blacklist", "import", str(src))
    assert r.code == 0, r.err
    assert r.json["added"] == 2 and r.json["format"] == "optimizely"
    assert json.loads(run_cli("blacklist", "export").out) == SEED_LIST
    out = tmp_path / "out" / "export.json"
    r = run_cli("blacklist", "export", str(out))
    assert r.code == 0 and json.loads(out.read_text()) == SEED_LIST
    assert out.stat().st_mode & 0o007 == 0  # holds emails: never world-readable


@pytest.mark.parametrize("fmt, text, lines", [
    ("crossengage", '{"id": "u-1", "event": "Blacklisted"}\n\n{"event": "Blacklisted"}\n{"email": "x", '
                    '"event": "Whitelisted"}\n', "(3, 4)"),
    ("crossengage", '{"id": "u-1", "event": "Blacklisted"}\nnot json\n', "(2)"),
    ("optimizely", '{"items": [{"Email": "ok@example.com"}, {"Email": "secret person@example.com"}]}', "(2)"),
    ("optimizely", '{"items": [', "not valid JSON"),
])
def test_a_malformed_import_exits_2_names_the_lines_and_imports_nothing(run_cli, tmp_path, fmt, text, lines):
    src = tmp_path / "bad.txt"
    src.write_text(text)
    r = run_cli("blacklist", "import", str(src), "--format", fmt)
    assert r.code == 2, r.err
    assert lines in r.err and r.err.count("\n") == 1 and "secret person" not in r.err
    assert count_entries(tmp_path) == 0
    assert run_cli("blacklist", "history").json == []


def test_import_of_a_missing_file_exits_2(run_cli, tmp_path):
    r = run_cli("blacklist", "import", str(tmp_path / "nope.json"))
    assert r.code == 2 and "no such file" in r.err


def test_feed_import_status_and_set(run_cli, tmp_path):
    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"id": "u-1", "event": "Blacklisted", "timestamp": "2026-11-01T09:00:00Z"}\n'
                    '{"email": "Lead@Example.com", "businessUnit": "shop", "event": "Blacklisted"}\n'
                    '{"id": "u-1", "event": "Purchase"}\n')
    r = run_cli("blacklist", "import", str(feed), "--format", "crossengage")
    assert r.code == 0, r.err
    assert r.json["applied"] == 2 and r.json["ignored"] == 1
    status = run_cli("blacklist", "status", "--user-id", "u-1").json
    assert status["blacklisted"] and status["since"] == "2026-11-01T09:00:00.000000Z" and status["channel"] == "import"
    assert run_cli("blacklist", "status", "--email", "lead@example.com", "--scope", "shop").json["blacklisted"]
    assert not run_cli("blacklist", "status", "--email", "lead@example.com", "--scope", "news").json["blacklisted"]

    older = run_cli("blacklist", "set", "--user-id", "u-1", "--whitelisted", "--at", "2026-11-01T08:00:00Z").json
    assert older["blacklisted"] and older["Outcome"] == "superseded"
    newer = run_cli("blacklist", "set", "--user-id", "u-1", "--whitelisted").json
    assert not newer["blacklisted"] and newer["channel"] == "cli"
    assert run_cli("blacklist", "status").code == 2  # no identity
    assert run_cli("blacklist", "status", "--email", "bad").code == 2
