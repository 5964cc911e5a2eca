"""`gdpr-sweep report list | show | verify | lookup` as an auditor runs them: output and exit codes."""

from __future__ import annotations

import json
import os
import shutil
import stat

import pytest

from pipelines.config.report_secret import ENV_SECRET, ENV_SECRET_FILE, report_secret
from tests.report_support import PEOPLE, SECRET, Lake, personal_strings
from tests.support.procs import run_cli


@pytest.fixture
def lake(tmp_path):
    lake = Lake(tmp_path, delete_raw=True)
    lake.forget("anna", hours_ago=5)
    lake.run()
    lake.forget("bo", by="user_id")
    lake.run()
    return lake


def cli(lake, *args, secret: bytes | None = SECRET, env: dict[str, str] | None = None):
    environ = {k: v for k, v in os.environ.items() if k not in (ENV_SECRET, ENV_SECRET_FILE)}
    if secret is not None:
        environ[ENV_SECRET] = secret.decode()
    environ.update(env or {})
    return run_cli(lake.config, "report", *args, env=environ, cwd=lake.root, timeout=120)


def runs(lake):
    return sorted(p.name for p in lake.settings.report_dir.iterdir() if p.is_dir())


def test_list_and_show(lake):
    listed = cli(lake, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)["items"]
    assert [i["run_id"] for i in items] == runs(lake) and [i["status"] for i in items] == ["passed", "passed"]
    assert [i["rows_removed"] for i in items] == [3, 3]
    table = cli(lake, "list")
    assert table.returncode == 0 and table.stdout.splitlines()[0].startswith("RUN") and runs(lake)[1] in table.stdout

    shown = cli(lake, "show")
    assert shown.returncode == 0 and f"run {runs(lake)[1]}" in shown.stdout and "report.html:" in shown.stdout
    first = cli(lake, "show", runs(lake)[0][:17], "--json")
    assert first.returncode == 0 and json.loads(first.stdout)["run"]["run_id"] == runs(lake)[0]
    missing = cli(lake, "show", "19990101")
    assert missing.returncode == 3 and missing.stderr.startswith("gdpr-sweep: error: no report for run")


def test_verify_passes_then_names_a_changed_and_a_removed_report(lake):
    ok = cli(lake, "verify", "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["ok"] is True and json.loads(ok.stdout)["reports_checked"] == 2
    first, second = runs(lake)

    page = lake.settings.report_dir / second / "report.md"
    data = bytearray(page.read_bytes())
    data[len(data) // 2] ^= 0x04
    page.write_bytes(bytes(data))
    shutil.rmtree(lake.settings.report_dir / first)
    bad = cli(lake, "verify")
    assert bad.returncode == 1
    assert f"REMOVED: {first}" in bad.stdout and f"CHANGED: {second}" in bad.stdout and "2 problems" in bad.stdout


def test_verify_against_an_expected_head(lake):
    head = json.loads(cli(lake, "verify", "--json").stdout)["head"]["report_sha256"]
    assert cli(lake, "verify", "--expect-head", head).returncode == 0
    assert cli(lake, "verify", "--expect-head", "0" * 64).returncode == 1


def test_lookup_finds_a_purged_email_and_user_id_without_any_report_holding_them(lake):
    anna = PEOPLE["anna"]["email"]
    found = cli(lake, "lookup", "--email", "  " + anna.upper(), "--json")
    assert found.returncode == 0, found.stderr
    answer = json.loads(found.stdout)
    assert answer["found"] and answer["purged"] and answer["identity"] == "email"
    (entry,) = answer["entries"]
    assert entry["first_verified_gone_at"] and entry["status"] == "gone" and 4.9 < entry["hours_to_gone"] < 5.2
    assert answer["purged_in_runs"] == [runs(lake)[0]] and len(answer["runs"]) == 2
    assert answer["runs"][0]["rows_removed"] == {"profiles": 1, "events": 2}
    assert anna not in found.stdout.lower()

    text = cli(lake, "lookup", "--email", anna)
    assert text.returncode == 0 and "first verified gone 20" in text.stdout and runs(lake)[0] in text.stdout

    by_id = cli(lake, "lookup", "--user-id", "u-bo", "--json")
    assert by_id.returncode == 0 and json.loads(by_id.stdout)["purged_in_runs"] == [runs(lake)[1]]

    for p in lake.settings.report_dir.rglob("*"):
        if p.is_file():
            assert not any(s.lower() in p.read_text().lower() for s in personal_strings()), p.name


def test_lookup_of_someone_never_blacklisted_is_not_found(lake):
    r = cli(lake, "lookup", "--email", PEOPLE["cleo"]["email"])
    assert r.returncode == 3 and "no blacklist entry with this email in 2 reports" in r.stderr
    assert PEOPLE["cleo"]["email"] not in r.stderr


def test_lookup_with_another_secret_finds_nothing_and_says_why(lake):
    r = cli(lake, "lookup", "--email", PEOPLE["anna"]["email"], secret=b"another-secret-of-enough-length")
    assert r.returncode == 3 and "2 written with another report secret" in r.stderr


@pytest.mark.parametrize("args, code", [
    ([], 2), (["--email", "a@b.c", "--user-id", "u"], 2), (["--email", "not-an-email"], 2),
])
def test_lookup_usage_errors(lake, args, code):
    r = cli(lake, "lookup", *args)
    assert r.returncode == code and r.stderr.startswith("gdpr-sweep: error:") and "not-an-email" not in r.stderr


def test_default_secret_file_is_created_0600_in_work_dir_and_used_by_lookup(tmp_path):
    lake = Lake(tmp_path, delete_raw=True)
    lake.forget("anna")
    secret = report_secret(lake.settings, environ={})
    path = lake.settings.work_dir / "report-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and report_secret(lake.settings, environ={}) == secret
    lake.run(secret=secret)
    r = cli(lake, "lookup", "--email", PEOPLE["anna"]["email"], "--json", secret=None)
    assert r.returncode == 0, r.stderr
    missing = cli(lake, "lookup", "--email", "a@b.c", secret=None,
                  env={ENV_SECRET_FILE: str(tmp_path / "nowhere")})
    assert missing.returncode == 2 and "report secret file not found" in missing.stderr
    assert cli(lake, "lookup", "--email", "a@b.c", secret=b"short").returncode == 2


def test_no_reports_yet(tmp_path):
    lake = Lake(tmp_path)
    assert cli(lake, "list").stdout.startswith("no reports")
    assert cli(lake, "show").returncode == 3
    assert cli(lake, "verify").returncode == 0
