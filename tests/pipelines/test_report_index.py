"""`report_dir/index.html` across runs and `report_dir/notices.jsonl` (issue 18): regenerated after
every run from the chained reports; rows removed per run, entries by status, time to erasure,
deadline compliance, residual findings, chain status; one notice per erased entry and dataset."""

from __future__ import annotations

import json
import os
import re

import pytest

from pipelines.reporting import chain, check_cache, notices, report_index
from tests.helpers import EVENT_SCHEMA, make_event, write
from tests.pipelines.test_report_html import chromium, screenshot  # noqa: F401  (the session fixture)
from tests.report_support import PEOPLE, Lake, personal_strings


@pytest.fixture
def swept(tmp_path):
    """Three runs: Anna (blacklisted 30 h ago) and Bo (2 h ago) erased in run 1, Cleo in run 2, nothing in run 3."""
    lake = Lake(tmp_path, delete_raw=True)
    ids = {"anna": lake.forget("anna", hours_ago=30).blacklist_id, "bo": lake.forget("bo", hours_ago=2).blacklist_id}
    pages = []
    for who in (None, "cleo", None):
        if who:
            ids[who] = lake.forget(who).blacklist_id
        path, _ = lake.run()
        pages.append((path.parent.name, (lake.settings.report_dir / "index.html").read_text()))
    return lake, ids, pages


def test_the_index_is_regenerated_after_every_run_and_shows_each_measure(swept):
    lake, ids, pages = swept
    run_ids = [run_id for run_id, _ in pages]
    for n, (_run_id, page) in enumerate(pages):  # after run n, the page lists runs 0..n and no later one
        assert all(r in page for r in run_ids[:n + 1]) and not any(r in page for r in run_ids[n + 1:])
    data = report_index.collect(lake.settings.report_dir)
    removed = [r["rows_removed"] for r in data.runs]
    assert removed[0] > 0 and removed[1] > 0 and removed[2] == 0
    assert data.status_counts == {"gone": 2, "gone late": 1}
    assert data.decided == (2, 1) and data.compliance_rate == pytest.approx(2 / 3)
    assert data.chain_state["ok"] and data.chain_state["reports_checked"] == 3
    page = pages[-1][1]
    assert "66.7%" in page and "REPORT CHAIN INTACT" in page and "Time to erasure" in page
    assert all(f'href="{r}/report.html"' in page for r in run_ids)  # links work from the folder, no server
    assert not [s for s in personal_strings() + [PEOPLE["cleo"]["email"]] if s in page]
    assert "<script" not in page and not re.search(r"(src|href)=\"(https?:)?//", page)  # self-contained


def test_a_changed_report_shows_as_a_broken_chain_on_the_index(swept):
    lake, _ids, pages = swept
    report = lake.settings.report_dir / pages[0][0] / "report.json"
    report.write_bytes(report.read_bytes().replace(b'"rows_in"', b'"rows_In"', 1))
    page = report_index.write_index(lake.settings.report_dir).read_text()
    assert "REPORT CHAIN BROKEN" in page and pages[0][0] in page
    index = lake.settings.report_dir / "chain.jsonl"
    index.write_text(index.read_text() + "not json\n")  # a damaged chain index: every run still listed
    page = report_index.write_index(lake.settings.report_dir).read_text()
    assert "REPORT CHAIN BROKEN" in page and all(run_id in page for run_id, _ in pages)


def test_notices_list_every_erased_entry_once_per_dataset(swept):
    lake, ids, pages = swept
    report_dir = lake.settings.report_dir
    sent = notices.read_notices(report_dir)
    assert sorted((n["blacklist_id"], n["dataset"]) for n in sent) == sorted(
        (bid, dataset) for bid in ids.values() for dataset in ("profiles", "events"))
    assert {n["run_id"] for n in sent if n["blacklist_id"] == ids["cleo"]} == {pages[1][0]}
    assert all(n["rows_erased"] > 0 and n["kind"] == "sweep" for n in sent)
    assert [n["seq"] for n in sent] == list(range(1, len(sent) + 1))
    # the chain is the source: refreshing again (or after a crash before the append) adds nothing twice
    assert notices.append_missing(report_dir) == 0
    (report_dir / notices.NOTICES_NAME).write_text("".join(json.dumps(n) + "\n" for n in sent[:2]))
    assert notices.append_missing(report_dir) == len(sent) - 2
    assert sorted((n["blacklist_id"], n["dataset"]) for n in notices.read_notices(report_dir)) == sorted(
        (n["blacklist_id"], n["dataset"]) for n in sent)
    text = (report_dir / notices.NOTICES_NAME).read_text()
    assert not [s for s in personal_strings() + [PEOPLE["cleo"]["email"], PEOPLE["cleo"]["user_id"]] if s in text]
    again = notices.read_notices(report_dir)
    assert [n["seq"] for n in again] == list(range(1, len(sent) + 1))
    assert list(notices.notices_since(report_dir, notices.parse_since(again[-1]["recorded_at"]))) == []
    assert list(notices.notices_since(report_dir, notices.parse_since(again[0]["recorded_at"]))) == again[2:]
    assert len(list(notices.notices_since(report_dir, notices.parse_since("2020-01-01")))) == len(sent)


def test_a_clear_user_data_report_gives_notices_and_an_ingest_none():
    clear = {"kind": "clear_user_data", "blacklist_id": "bid-1", "run": {"run_id": "r1", "finished_at": "t"},
             "datasets": [{"name": "profiles", "rows_removed": 1}, {"name": "events", "rows_removed": 0}]}
    assert [(r["blacklist_id"], r["dataset"], r["rows_erased"]) for r in notices.records_for("x", clear)] == [
        ("bid-1", "profiles", 1)]
    assert notices.records_for("y", {"kind": "ingest", "rows_dropped": 3, "dropped_by_entry": {"bid-1": 3}}) == []


def test_the_index_page_renders_in_headless_chromium(chromium, tmp_path):  # noqa: F811
    from PIL import Image

    from gdpr_sweep.scan_ops import residual_scan

    (tmp_path / "lake").mkdir()
    lake = Lake(tmp_path / "lake", delete_raw=True)
    lake.forget("anna", hours_ago=30)
    lake.forget("bo", hours_ago=2)
    lake.run()
    lake.forget("cleo", hours_ago=1)
    lake.run()
    write(lake.settings.datasets[1].source / "2026-11-03.parquet",  # a copy of Anna's address in a column
          [make_event(device_id="dev-x", EventType=f"mailto:{PEOPLE['anna']['email']}")], EVENT_SCHEMA)
    lake.run()
    residual_scan(lake.settings, fail=False)
    page = lake.settings.report_dir / "index.html"
    assert "residuals found" in page.read_text()
    png = tmp_path / "index.png"
    screenshot(chromium, page, png, tmp_path / "chromium-profile", size="1200,2400")

    image = Image.open(png).convert("RGB")
    assert image.size == (1200, 2400)
    colors = image.getcolors(maxcolors=1 << 20) or []
    white = sum(n for n, rgb in colors if min(rgb) >= 245)
    assert len(colors) > 50, "screenshot has almost no colours: blank page?"
    assert white < 0.97 * image.width * image.height, "screenshot is (nearly) all white"
    green = sum(n for n, (r, g, b) in colors if g > 120 and r < 80 and b < 80)  # "gone" bars, intact chain
    blue = sum(n for n, (r, g, b) in colors if b > 150 and r < 80 and 90 < g < 150)  # sweep bars
    purple = sum(n for n, (r, g, b) in colors if 120 < r < 170 and g < 130 and b > 160)  # "gone late"
    assert green > 500 and blue > 500 and purple > 200, (green, blue, purple)
    assert chain.verify_chain(lake.settings.report_dir).ok


def test_a_refresh_checks_in_full_only_reports_whose_bytes_changed(swept):
    """docs/decisions/0292: the second refresh takes unchanged reports from the check cache, a report
    with one changed byte (its mtime put back) is checked again and shown broken, and the page is the
    same with and without the cache."""
    lake, _ids, pages = swept
    folder = lake.settings.report_dir
    with_cache = report_index.render_index(report_index.collect(folder))
    again = check_cache.CheckCache.load(folder)
    assert report_index.render_index(report_index.collect(folder, again)) == with_cache
    assert again.full_checks == []  # every report came from the cache: none re-serialised
    (folder / check_cache.CACHE_NAME).unlink()
    cold = check_cache.CheckCache.load(folder)
    assert report_index.render_index(report_index.collect(folder, cold)) == with_cache
    assert len(cold.full_checks) == len(pages)

    report = folder / pages[1][0] / "report.json"
    stat = report.stat()
    data = report.read_bytes()
    at = data.index(b'"rows_in": ') + len(b'"rows_in": ')
    report.write_bytes(data[:at] + (b"8" if data[at:at + 1] != b"8" else b"9") + data[at + 1:])
    os.utime(report, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after = check_cache.CheckCache.load(folder)
    page = report_index.write_index(folder).read_text()
    state = report_index.collect(folder, after).chain_state
    assert after.full_checks == [f"{pages[1][0]}/report.json"]
    assert "REPORT CHAIN BROKEN" in page and not state["ok"]
    assert [p["run_id"] for p in state["problems"]] == [pages[1][0]]


@pytest.mark.parametrize("damage", [b"not json", b'{"version": 99, "passed": {}}', b'{"version": 1, "passed": []}'])
def test_a_damaged_check_cache_is_ignored_and_rebuilt(swept, damage):
    lake, _ids, pages = swept
    folder = lake.settings.report_dir
    (folder / check_cache.CACHE_NAME).write_bytes(damage)
    cache = check_cache.CheckCache.load(folder)
    assert report_index.collect(folder, cache).chain_state["ok"] and len(cache.full_checks) == len(pages)
    assert check_cache.CheckCache.load(folder).passed == cache.passed


def test_a_forged_cache_entry_for_other_bytes_is_not_trusted(swept):
    """An entry only vouches for the exact bytes, path and report hash it was recorded with."""
    lake, _ids, pages = swept
    folder = lake.settings.report_dir
    report_index.collect(folder)
    report = folder / pages[0][0] / "report.json"
    report.write_bytes(report.read_bytes().replace(b'"rows_in"', b'"rows_In"', 1))
    cache = check_cache.CheckCache.load(folder)
    sha, (rel, claimed) = next((k, v) for k, v in cache.passed.items() if v[0] == f"{pages[1][0]}/report.json")
    cache.passed[sha] = (f"{pages[0][0]}/report.json", claimed)  # another report's entry moved to this path
    assert not report_index.collect(folder, cache).chain_state["ok"]
