"""File modes: nothing the tool writes that holds personal data or reports is world-readable, even when
it runs under the usual umask 022 (docs/reliability.md, "File modes").

- files the tool writes itself (rewritten Parquet, manifests, reports, lock, report chain): 0640 or
  stricter; folders: 0750 or stricter; the registry database and its WAL files: 0600;
- files created by other components in the same process (Prefect's home, SQLite's WAL, temporaries)
  follow the process umask, which the command (and every run, while it holds the run lock) raises to
  at least 027;
- a cleaned file that is a hard link to an unchanged raw snapshot is the raw file itself and keeps its
  mode; its version folder (0750) is what keeps other users out.

How we checked that it fails when the protection is removed: without `restrict_umask()` in
`gdpr_sweep.cli.main` and `storage.run_lock`, the Prefect home, the `clean/` and `reports/` parents and
the `.versions` folders are created 0755 and this test lists them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pipelines.config.settings import load_settings


def _world_bits(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode) & 0o007


def test_nothing_the_run_wrote_is_world_accessible(demo_run):
    settings = load_settings(demo_run.config)
    sample = demo_run.root / "data" / "sample"  # the raw input, written by the sample generator
    reference = demo_run.reference  # the test's own copy of it
    offenders = []
    for dirpath, dirnames, filenames in os.walk(demo_run.root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if (path in (sample, reference) or sample in path.parents or reference in path.parents
                    or path.is_symlink() or path == demo_run.config):
                continue
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                # A hard link to an unchanged raw snapshot: protected by its version folder.
                assert _world_bits(path.parent) == 0, path
                continue
            if _world_bits(path):
                offenders.append(f"{path.relative_to(demo_run.root)} {oct(stat.S_IMODE(st.st_mode))}")
    assert not offenders, offenders
    assert stat.S_IMODE(os.stat(settings.blacklist_db).st_mode) == 0o600
    for ds in settings.datasets:
        version = ds.path.resolve()
        assert stat.S_IMODE(os.stat(version).st_mode) & 0o027 == 0, version
    reports = list(settings.report_dir.rglob("report.json"))
    assert reports and all(stat.S_IMODE(os.stat(r).st_mode) & 0o137 == 0 for r in reports)
