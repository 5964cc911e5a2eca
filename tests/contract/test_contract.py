"""One contract for every kind of dataset (issue 16): the same lake, blacklist and cases on a local
folder, an S3 prefix (moto's real server), a Delta table local and on S3 (and Iceberg, see conftest.py).

The sweep runs through the real flow (and, for the crash, the real `gdpr-sweep sweep` command in a
process that is killed between two steps); the checks read the data back as a user's engine would
and search every byte of the location with an independent decoding search (search.py).
"""

from __future__ import annotations

from tests.contract import lake
from tests.contract.conftest import changes, make_backend, read_all, sweep
from tests.contract.crash import kill_between_steps


def test_removes_by_email_user_id_linked_device_and_scope(scenario):
    """§3: the unscoped email (any case), the user id, the device linked through the person's profile,
    and the scoped entry in its scope only; every other row keeps every value."""
    for name, kept in lake.KEPT.items():
        assert lake.row_ids(scenario.before[name]) == {r["RowId"] for rows in lake.FILES[name].values() for r in rows}
        assert lake.row_ids(scenario.after[name]) == kept, name
        before = lake.rows_by_id(scenario.before[name])
        assert lake.rows_by_id(scenario.after[name]) == {i: before[i] for i in kept}, name
    removed = {d["name"]: d["rows_removed"] for d in scenario.report["datasets"]}
    assert removed == {"profiles": 3, "events": 4}
    reasons = {d["name"]: d.get("removed_by_reason") for d in scenario.report["datasets"]}
    assert reasons["events"]["linked_device"] == 1, reasons
    assert scenario.report["verification"]["ok"] and scenario.report["verification"]["matches_found"] == 0


def test_schema_kept_exactly(scenario):
    """The schema as the kind's reader sees it (nested, list, map, decimal, timestamp, non-null) is
    equal before and after, and every data file's schema is that schema."""
    for name in lake.FILES:
        assert scenario.after[name].schema.equals(scenario.before[name].schema), name
        assert scenario.after_late[name].schema.equals(scenario.before[name].schema), name
        for schema in scenario.backend.file_schemas(name):
            assert schema.equals(scenario.before[name].schema), (name, schema)


def test_second_sweep_is_idempotent_and_writes_nothing(scenario):
    """A quiet night removes nothing and rewrites nothing: no data file, object version, ETag or Delta
    log entry changes; a local folder gets no new version folder, manifest or symlink switch (kinds.py)."""
    assert sum(d["rows_removed"] for d in scenario.quiet_report["datasets"]) == 0
    assert scenario.quiet_changes == {}


def test_file_added_between_sweeps_is_swept_and_kept(scenario):
    """A file (an object, a table commit) added after a sweep is swept by the next one: its
    blacklisted rows go (the linked device too, though the profile that linked it is long gone), the
    others stay, and so does every earlier row."""
    for name, kept in lake.KEPT_AFTER_LATE.items():
        assert lake.row_ids(scenario.after_late[name]) == kept, name
    removed = {d["name"]: d["rows_removed"] for d in scenario.late_report["datasets"]}
    assert removed == {"profiles": 0, "events": 2}


def test_decoding_search_finds_the_email_before_and_nowhere_after(scenario):
    """The search finds the unscoped entry's email before the sweep (so it works on this kind's files)
    and in no file of the location after each sweep; the scoped entry's email is still found (its
    rows in another scope stay)."""
    assert scenario.hits_before, "the search found nothing before the sweep: it proves nothing"
    assert scenario.hits_after == []
    assert scenario.hits_after_late == []
    assert scenario.scoped_hits_after


def test_crash_between_steps_is_recovered(backend_kind, prefect_harness, s3_server, tmp_path):
    """`gdpr-sweep sweep` killed (SIGKILL) after the first dataset was published and before the second
    was: the next run completes, the data is what an uninterrupted sweep leaves, and no byte of the
    location holds the unscoped email."""
    fmt, store = backend_kind
    backend = make_backend(fmt, store, tmp_path, s3_server)
    config = lake.build(backend, tmp_path)
    before = read_all(backend)
    assert backend.files_holding([lake.GONE])
    killed = kill_between_steps(config, after_publish_of="profiles")
    assert killed.returncode == -9, killed.stderr[-2000:]
    report = sweep(config)
    assert report["verification"]["ok"]
    after = read_all(backend)
    for name, kept in lake.KEPT.items():
        b = lake.rows_by_id(before[name])
        assert lake.rows_by_id(after[name]) == {i: b[i] for i in kept}, name
        assert after[name].schema.equals(before[name].schema), name
    assert backend.files_holding([lake.GONE]) == []
    quiet_from = backend.identities()
    sweep(config)
    assert changes(quiet_from, backend.identities()) == {}
