"""Tamper evidence: the hash chain over the reports detects any changed byte and any removed report."""

from __future__ import annotations

import json
import shutil

import pytest

from pipelines.reporting import chain
from tests.report_support import Lake


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    """A report folder with three chained runs (the second and third remove nothing)."""
    lake = Lake(tmp_path_factory.mktemp("chain"))
    lake.forget("anna")
    runs = [lake.run()[1]["run"]["run_id"] for _ in range(2)]
    lake.forget("bo")
    runs.append(lake.run()[1]["run"]["run_id"])
    return lake.settings.report_dir, runs


@pytest.fixture
def reports(three_runs, tmp_path):
    """A private copy of the three runs' report folder, free to tamper with."""
    src, runs = three_runs
    dst = tmp_path / "reports"
    shutil.copytree(src, dst)
    return dst, runs


def test_intact_chain_verifies_and_links_each_report_to_the_previous(reports):
    folder, runs = reports
    result = chain.verify_chain(folder)
    assert result.ok, result.problems
    assert result.reports_checked == 3 and result.head.run_id == runs[-1]
    docs = [chain.load_report(folder, r) for r in runs]
    assert docs[0]["integrity"]["previous_report_sha256"] is None
    for before, after in zip(docs, docs[1:], strict=False):
        assert after["integrity"]["previous_run_id"] == before["run"]["run_id"]
        assert after["integrity"]["previous_report_sha256"] == before["integrity"]["report_sha256"]
    for doc in docs:
        assert doc["integrity"]["report_sha256"] == chain.self_hash(doc)
        assert set(doc["integrity"]["pages"]) == {"report.md", "report.html"}
    assert chain.verify_chain(folder, expect_head=docs[-1]["integrity"]["report_sha256"]).ok


def _positions(size: int, count: int = 48) -> list[int]:
    return sorted({0, size - 1, *range(0, size, max(1, size // count))})


@pytest.mark.parametrize("name", ["report.json", "report.md", "report.html"])
@pytest.mark.parametrize("which", [0, 1, 2])
def test_one_changed_byte_anywhere_in_any_report_is_named(reports, name, which):
    folder, runs = reports
    path = folder / runs[which] / name
    original = path.read_bytes()
    positions = _positions(len(original))
    if name == "report.json":  # also every kind of whitespace and digit the pretty JSON holds
        positions += [original.index(b" "), original.index(b"\n"), original.index(b'": ') + 2,
                      next(i for i, c in enumerate(original) if chr(c).isdigit())]
    for pos in positions:
        for flip in (0x01, 0x20):
            changed = bytearray(original)
            changed[pos] ^= flip
            path.write_bytes(bytes(changed))
            result = chain.verify_chain(folder)
            assert not result.ok, (name, pos, flip)
            assert [p.run_id for p in result.problems] == [runs[which]], (pos, result.problems)
            assert result.problems[0].problem == "changed"
    path.write_bytes(original)
    assert chain.verify_chain(folder).ok


def test_reformatted_json_with_the_same_content_is_still_a_change(reports):
    folder, runs = reports
    path = folder / runs[1] / "report.json"
    path.write_text(json.dumps(json.loads(path.read_text()), indent=4, sort_keys=True) + "\n")
    problems = chain.verify_chain(folder).problems
    assert [(p.run_id, p.problem) for p in problems] == [(runs[1], "changed")]
    assert "formatting" in problems[0].detail


def test_a_rewritten_report_with_a_recomputed_self_hash_breaks_the_link_from_its_successor(reports):
    folder, runs = reports
    path = folder / runs[0] / "report.json"
    doc = json.loads(path.read_text())
    doc["totals"]["rows_removed"] += 1
    doc["integrity"]["report_sha256"] = chain.self_hash(doc)
    path.write_bytes(chain.pretty_bytes(doc))
    result = chain.verify_chain(folder)
    assert not result.ok and {p.run_id for p in result.problems} == {runs[0]}


@pytest.mark.parametrize("which", [0, 1, 2])
def test_a_deleted_report_folder_is_named(reports, which):
    folder, runs = reports
    shutil.rmtree(folder / runs[which])
    result = chain.verify_chain(folder)
    assert [(p.run_id, p.problem) for p in result.problems] == [(runs[which], "removed")]


@pytest.mark.parametrize("which", [0, 1])
def test_a_report_deleted_together_with_its_index_line_is_named_by_its_successor(reports, which):
    folder, runs = reports
    shutil.rmtree(folder / runs[which])
    index = folder / chain.INDEX_NAME
    index.write_text("".join(line + "\n" for line in index.read_text().splitlines() if runs[which] not in line))
    result = chain.verify_chain(folder)
    assert runs[which] in {p.run_id for p in result.problems if p.problem == "removed"}


def test_the_newest_report_and_its_index_line_deleted_is_caught_by_the_expected_head(reports):
    folder, runs = reports
    head = chain.load_report(folder, runs[-1])["integrity"]["report_sha256"]
    shutil.rmtree(folder / runs[-1])
    index = folder / chain.INDEX_NAME
    index.write_text("".join(line + "\n" for line in index.read_text().splitlines()[:-1]))
    assert chain.verify_chain(folder).ok  # nothing inside the folder can tell: hence the external head
    assert not chain.verify_chain(folder, expect_head=head).ok


@pytest.mark.parametrize("name", ["report.md", "report.html", "report.json"])
def test_a_deleted_page_is_named(reports, name):
    folder, runs = reports
    (folder / runs[1] / name).unlink()
    assert [(p.run_id, p.problem) for p in chain.verify_chain(folder).problems] == [(runs[1], "removed")]


def test_a_changed_or_deleted_index_is_reported(reports):
    folder, runs = reports
    index = folder / chain.INDEX_NAME
    lines = [json.loads(line) for line in index.read_text().splitlines()]
    lines[0]["report_sha256"] = "0" * 64
    index.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert [p.run_id for p in chain.verify_chain(folder).problems] == [runs[0]]
    index.write_text("not json\n")
    assert "index_damaged" in {p.problem for p in chain.verify_chain(folder).problems}
    index.unlink()
    problems = chain.verify_chain(folder).problems
    assert {p.problem for p in problems} == {"index_damaged", "not_in_chain"}
    assert {p.run_id for p in problems if p.problem == "not_in_chain"} == set(runs)


def test_an_inserted_report_is_not_in_the_chain(reports):
    folder, runs = reports
    shutil.copytree(folder / runs[1], folder / "20991231T000000000000Z")
    problems = chain.verify_chain(folder).problems
    assert [(p.run_id, p.problem) for p in problems][-1][0] == "20991231T000000000000Z"


def test_a_report_written_before_its_index_line_is_adopted_by_the_next_run(tmp_path):
    """A crash between report.json and the index line: the next run links to it instead of forking."""
    lake = Lake(tmp_path)
    lake.forget("anna")
    lake.run()
    index = lake.settings.report_dir / chain.INDEX_NAME
    _, second = lake.run()
    lines = index.read_text().splitlines()
    index.write_text(lines[0] + "\n")  # as if the run stopped before appending its line
    _, third = lake.run()
    assert third["integrity"]["previous_run_id"] == second["run"]["run_id"]
    assert chain.verify_chain(lake.settings.report_dir).ok


def independent_check(folder, previous_claim):
    """The README's recipe, written without gdpr-sweep's code: what an auditor can run on their own."""
    import hashlib

    raw = (folder / "report.json").read_bytes()
    doc = json.loads(raw)
    assert raw == (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
    claimed = doc["integrity"].pop("report_sha256")
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert hashlib.sha256(canonical).hexdigest() == claimed
    for page, digest in doc["integrity"]["pages"].items():
        assert hashlib.sha256((folder / page).read_bytes()).hexdigest() == digest
    assert doc["integrity"]["previous_report_sha256"] == previous_claim
    return claimed


def test_an_auditor_can_check_the_chain_without_our_code(reports):
    folder, runs = reports
    claim = None
    for run_id in runs:
        claim = independent_check(folder / run_id, claim)
    assert claim == chain.verify_chain(folder).head.report_sha256
