"""Integrity (§5, issue 13 findings 2-5 and 9): a run publishes only bytes it matched, and
deletes only bytes it read and replaced.

The races are driven deterministically through `fault_runner.py`, which runs the real `gdpr-sweep`
command with an action hooked just before or after one step of the flow (a raw snapshot replaced
after planning and matching, before the version is written; after the switch, before raw
deletion) or with an OS call failing as a full disk or a denied permission would.

How we checked that these tests fail without their protection: each was run against the code of
commit 23a9caf (raw files hard-linked into versions, deleted unchecked, cleaned files matched only
against new entries, task failures surfacing as Prefect's `UnfinishedRun`) and failed there.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.config.settings import load_settings
from pipelines.datasets import storage
from pipelines.registry.registry import Registry
from tests.helpers import EVENT_SCHEMA, PROFILE_SCHEMA, make_event, make_profile, sweep, write
from tests.reliability.conftest import cli_env, harness_api_url
from tests.reliability.test_hostile_input import state
from tests.support.lake import two_datasets, write_lake_config

RUNNER = Path(__file__).with_name("fault_runner.py")
TARGET = "gone.person@example.com"
KEPT = ["kept1@example.com", "kept2@example.com", "kept3@example.com"]


def events_rows(emails: list[str], tag: str) -> list[dict]:
    return [make_event(e, device_id=f"{tag}-dev{i}", EventType=f"{tag}{i}") for i, e in enumerate(emails)]


def build_lake(root: Path, delete_raw: bool) -> Path:
    """Profiles and two events snapshots; TARGET is blacklisted and has rows in e0 only."""
    root.mkdir(parents=True)
    config = write_lake_config(root, *two_datasets(), sweep={"delete_raw": delete_raw})
    write(root / "raw/profiles/p0.parquet", [make_profile(e, profile_id=f"p{i}") for i, e in
                                            enumerate([TARGET, *KEPT])], PROFILE_SCHEMA)
    write(root / "raw/events/e0.parquet", events_rows([TARGET, *KEPT], "e0"), EVENT_SCHEMA)
    write(root / "raw/events/e1.parquet", events_rows(KEPT, "e1"), EVENT_SCHEMA)
    Registry(load_settings(config).blacklist_db).add(email=TARGET, source="cli")
    return config


def replacement(root: Path) -> Path:
    """e1 again with the same row count, one row now the blacklisted person's (a new snapshot)."""
    return write(root.parent / f"{root.name}-incoming/e1.parquet", events_rows([KEPT[0], TARGET, KEPT[2]], "e1"),
                 EVENT_SCHEMA)


def run_cli(config: Path, *argv: str, hooks=(), faults=()) -> subprocess.CompletedProcess:
    spec = config.parent.parent / f"{config.parent.name}-spec-{len(list(config.parent.parent.iterdir()))}.json"
    spec.write_text(json.dumps({"argv": ["--config", str(config), *argv], "hooks": list(hooks),
                                "faults": list(faults)}))
    return subprocess.run([sys.executable, str(RUNNER), str(spec)], capture_output=True, text=True, timeout=300,
                          env=cli_env(harness_api_url()), cwd=config.parent)


def hook(when: str, step: str, action: str, *args: Path) -> dict:
    return {"when": when, "step": step, "dataset": "events", "action": action, "args": [str(a) for a in args]}


def last_report(config: Path) -> dict:
    reports = sorted(load_settings(config).report_dir.glob("*/report.json"))
    return json.loads(reports[-1].read_text())


def cleaned_emails(config: Path) -> list[str]:
    """Every email in the cleaned datasets (what analysts see)."""
    found = []
    for ds in load_settings(config).datasets:
        for rel in storage.list_parquet(ds.path):
            for row in pq.read_table(ds.path / rel).to_pylist():
                found.append((row.get("Info") or row.get("User") or {}).get("Email"))
    return found


def assert_never_gone_while_held(config: Path) -> None:
    """The acceptance rule: no entry reported `gone` while a cleaned file holds one of its rows."""
    report = last_report(config)
    registry = Registry(load_settings(config).blacklist_db)
    emails = {r.blacklist_id: r.email for r in registry.snapshot().records}
    held = set(cleaned_emails(config))
    for e in report["entries"]:
        if e["status"] in ("gone", "gone late"):
            assert emails[e["blacklist_id"]] not in held, f"entry {e['blacklist_id']} reported gone, rows remain"


def ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]


def one_line_error(proc: subprocess.CompletedProcess, code: int, *mentions: str) -> str:
    """Exit `code`, exactly one `gdpr-sweep: error:` line naming `mentions`, and no traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr and "UnfinishedRun" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("gdpr-sweep: error:")]
    assert len(lines) == 1, proc.stderr[-3000:]
    for m in mentions:
        assert m in lines[0], lines[0]
    return lines[0]


def visible(config: Path) -> dict[str, dict[str, list]]:
    out = {}
    for ds in load_settings(config).datasets:
        out[ds.name] = {rel: pq.read_table(ds.path / rel).to_pylist() for rel in storage.list_parquet(ds.path)}
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Finding 2: a raw snapshot replaced while the sweep runs (after planning and matching).


def test_raw_replaced_mid_run_is_not_published_unmatched(prefect_harness, tmp_path):
    config = build_lake(tmp_path / "lake", delete_raw=True)
    raw = config.parent / "raw/events/e1.parquet"
    new = replacement(config.parent)
    proc = run_cli(config, "sweep", hooks=[hook("before", "start_version", "move_over", new, raw)])
    ok(proc)
    assert TARGET not in cleaned_emails(config)  # 23a9caf: the new e1 was hard-linked in, unmatched
    assert raw.exists() and sha256(raw) == sha256(new)  # not deleted: the run never read these bytes
    report = last_report(config)
    changed = report["file_integrity"]["changed_since_read"]
    assert [c["path"] for c in changed] == [str(raw)]
    [entry] = report["entries"]
    assert entry["status"] not in ("gone", "gone late") and entry["rows_in_raw_copies"] == {"events": 1}
    assert_never_gone_while_held(config)

    ok(run_cli(config, "sweep"))  # the next run takes the new snapshot in
    assert TARGET not in cleaned_emails(config) and not raw.exists()
    assert last_report(config)["entries"][0]["status"] == "gone"
    assert_never_gone_while_held(config)


# ---------------------------------------------------------------------------------------------
# Finding 3: a raw snapshot replaced after the version is published, before raw deletion.


def test_raw_replaced_before_deletion_is_kept(prefect_harness, tmp_path):
    config = build_lake(tmp_path / "lake", delete_raw=True)
    raw = config.parent / "raw/events/e1.parquet"
    new = replacement(config.parent)
    proc = run_cli(config, "sweep", hooks=[hook("after", "publish", "copy_over", new, raw)])  # `cp` in place
    ok(proc)
    assert raw.exists() and sha256(raw) == sha256(new)  # 23a9caf: deleted unread, its rows lost
    report = last_report(config)
    assert [c["path"] for c in report["file_integrity"]["changed_since_read"]] == [str(raw)]
    assert str(raw) not in report["raw_copies"]["deleted"]
    assert report["entries"][0]["status"] not in ("gone", "gone late")
    assert_never_gone_while_held(config)

    ok(run_cli(config, "sweep"))
    kept_rows = [r for r in visible(config)["events"]["e1.parquet"]]
    assert [r["User"]["Email"] for r in kept_rows] == [KEPT[0], KEPT[2]]  # its other rows are not lost
    assert not raw.exists() and last_report(config)["entries"][0]["status"] == "gone"


# ---------------------------------------------------------------------------------------------
# Finding 4: a cleaned file rewritten in place between runs.


def test_cleaned_file_rewritten_in_place_is_matched_and_reported(prefect_harness, tmp_path):
    config = build_lake(tmp_path / "lake", delete_raw=True)
    ok(run_cli(config, "sweep"))
    clean = load_settings(config).datasets[1].path / "e1.parquet"
    table = pa.Table.from_pylist(events_rows([KEPT[0], TARGET, KEPT[2]], "x"), schema=EVENT_SCHEMA)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    with open(clean, "r+b") as fh:  # in place: same inode, as a tool writing "its" file would
        fh.truncate(0)
        fh.write(sink.getvalue().to_pybytes())
    tampered = sha256(clean)

    ok(run_cli(config, "sweep"))
    assert TARGET not in cleaned_emails(config)  # 23a9caf: the row survived (only new entries were matched)
    report = last_report(config)
    [changed] = report["file_integrity"]["changed_outside_tool"]
    assert changed["path"] == str(load_settings(config).datasets[1].path / "e1.parquet")
    [events] = [d for d in report["datasets"] if d["name"] == "events"]
    [e1] = [f for f in events["files"] if f["path"] == "e1.parquet"]
    assert e1["sha256_in"] == tampered and e1["rows_in"] == 3 and e1["rows_out"] == 2
    outputs = sum(len(d["files"]) for d in report["datasets"])
    assert report["verification"]["files_checked"] == outputs == 3  # 23a9caf: 0 / only rewritten files
    assert_never_gone_while_held(config)


# ---------------------------------------------------------------------------------------------
# Finding 5: with delete_raw = false, raw and cleaned files never share an inode.


def test_cp_over_a_kept_raw_snapshot_does_not_change_the_cleaned_data(tmp_path):
    config = build_lake(tmp_path / "lake", delete_raw=False)
    settings = load_settings(config)
    snapshot = Registry(settings.blacklist_db).snapshot()
    sweep(list(settings.datasets), snapshot.entries, run_id="r1", version=snapshot.version)
    before = visible(config)
    raw_inodes = {os.stat(p).st_ino for p in (config.parent / "raw").rglob("*.parquet")}
    clean_inodes = {os.stat(ds.path / rel).st_ino for ds in settings.datasets for rel in storage.list_parquet(ds.path)}
    assert not raw_inodes & clean_inodes  # 23a9caf: unchanged raw files were hard-linked in

    raw = config.parent / "raw/events/e1.parquet"
    with open(replacement(config.parent), "rb") as src, open(raw, "r+b") as dst:  # `cp new raw`
        dst.truncate(0)
        dst.write(src.read())
    assert visible(config) == before  # the analysts' data did not move under their feet

    sweep(list(settings.datasets), snapshot.entries, run_id="r2", version=snapshot.version)  # taken in next run
    assert TARGET not in cleaned_emails(config)
    assert [r["User"]["Email"] for r in visible(config)["events"]["e1.parquet"]] == [KEPT[0], KEPT[2]]


# ---------------------------------------------------------------------------------------------
# Finding 9: failures a user meets end in one line, the documented exit code, data intact.


def test_raw_file_deleted_mid_run_ends_cleanly(prefect_harness, tmp_path):
    config = build_lake(tmp_path / "lake", delete_raw=True)
    raw = config.parent / "raw/events/e1.parquet"
    expected = pq.read_table(raw).to_pylist()
    proc = run_cli(config, "sweep", hooks=[hook("before", "start_version", "delete", raw)])
    ok(proc)  # 23a9caf: FileNotFoundError in a partition task, then "UnfinishedRun" tracebacks
    assert visible(config)["events"]["e1.parquet"] == expected  # the run had read it: nothing lost
    assert str(raw) not in last_report(config)["raw_copies"]["deleted"]


def test_disk_full_while_writing_ends_in_one_line_and_keeps_the_previous_version(prefect_harness, tmp_path):
    config = build_lake(tmp_path / "lake", delete_raw=True)
    ok(run_cli(config, "sweep"))
    before = visible(config)
    raw_before = sorted((config.parent / "raw").rglob("*"))
    write(config.parent / "raw/events/e2.parquet", events_rows([TARGET, KEPT[1]], "e2"), EVENT_SCHEMA)
    proc = run_cli(config, "sweep", faults=[{"call": "ParquetWriter.write_table", "errno": 28, "match": ""}])
    line = one_line_error(proc, 1, "no space left", "e2.parquet")
    assert "Traceback" not in proc.stdout
    assert visible(config) == before and line
    assert (config.parent / "raw/events/e2.parquet").exists()  # nothing deleted
    assert set((config.parent / "raw").rglob("*")) == {*raw_before, config.parent / "raw/events/e2.parquet"}
    for ds in load_settings(config).datasets:  # no half-written version or copies left behind
        assert list(storage.versions_dir(ds.path).iterdir()) == [storage.current_version(ds.path)]

    ok(run_cli(config, "sweep"))  # space again: the next run completes
    assert TARGET not in cleaned_emails(config) and "e2.parquet" in visible(config)["events"]


def test_permission_denied_deleting_raw_ends_in_one_line(prefect_harness, tmp_path):
    config = build_lake(tmp_path / "lake", delete_raw=True)
    raw_events = config.parent / "raw" / "events"
    faults = [{"call": call, "errno": 13, "match": str(raw_events)} for call in ("os.unlink", "os.rename")]
    proc = run_cli(config, "sweep", faults=faults)
    one_line_error(proc, 1, "permission denied", str(raw_events))
    assert TARGET not in cleaned_emails(config)  # the new version is published and complete
    assert sorted(p.name for p in raw_events.iterdir()) == ["e0.parquet", "e1.parquet"]  # kept, not lost
    report = last_report(config)  # the run is reported, and the kept raw files with it
    assert sorted(report["raw_copies"]["still_held"]) == sorted(str(p) for p in raw_events.iterdir())
    assert report["entries"][0]["status"] not in ("gone", "gone late")  # e0 still holds the person's row
    assert_never_gone_while_held(config)


def test_debug_shows_the_traceback(prefect_harness, tmp_path):
    config = build_lake(tmp_path / "lake", delete_raw=True)
    proc = run_cli(config, "--debug", "sweep", faults=[{"call": "ParquetWriter.write_table", "errno": 28,
                                                        "match": ""}])
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "gdpr-sweep: error:" in proc.stderr


def test_lock_held_ends_in_one_line_and_changes_nothing(prefect_harness, tmp_path):
    """Another process holds the run lock: each command that writes datasets exits 1 with one line
    naming the lock file, no traceback, and leaves the lake as it was."""
    config = build_lake(tmp_path / "lake", delete_raw=True)
    settings = load_settings(config)
    batch = write(tmp_path / "batch.parquet", events_rows(KEPT, "b"), EVENT_SCHEMA)
    [entry] = Registry(settings.blacklist_db).snapshot().records
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    lock = settings.work_dir / "sweep.lock"
    with open(lock, "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        before = state(config.parent)
        for argv in (["sweep"], ["ingest", "events", str(batch)], ["clear-user-data", entry.blacklist_id]):
            one_line_error(run_cli(config, *argv), 1, "another gdpr-sweep run holds", str(lock))
            assert state(config.parent) == before, argv
